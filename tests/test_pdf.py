"""Rendering a PDF leaves the process's image checks strict.

WeasyPrint's import sets Pillow's ``LOAD_TRUNCATED_IMAGES``; before ``microcred.pdf`` a worker that
had served one certificate PDF then took a cut-short image as whole, and the bank's media checks
answered differently depending on which test had run first in the worker."""
from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFile
from sqlalchemy import func, select

from itembank.media import Media, MediaError, store_media
from microcred.pdf import html_to_pdf


def _cut_png() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((64, 48), 40).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()[:400]


def test_a_pdf_is_rendered_and_a_cut_image_is_still_refused_after_it(db):
    pdf = html_to_pdf("<h1>Certificate</h1><p>for a test</p>")
    assert pdf.startswith(b"%PDF-")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(MediaError, match="damaged"):
        store_media(db, _cut_png(), filename="photo.png")
    with pytest.raises(MediaError, match="neither an image"):
        store_media(db, b"\x89PNG\r\n\x1a\n broken after the signature", filename="photo.png")
    assert db.scalar(select(func.count()).select_from(Media)) == 0


def test_svg_letters_laid_out_once_draw_the_same_pdf_as_weasyprint_alone(tmp_path):
    """:func:`microcred.pdf._cache_svg_letters` serves WeasyPrint's SVG text layout from a
    cache (the report's charts repeat the same few letters thousands of times). The PDF must be
    the one WeasyPrint draws without it, byte for byte: a chart whose drawing failed would
    only be logged by WeasyPrint and left blank, so the bytes are compared, not the text."""
    import subprocess
    import sys

    import numpy as np

    from assessment.psych import charts

    theta = np.linspace(-4, 4, 81)
    icc = charts.item_characteristic_curve("Q1 v1", theta, 1 / (1 + np.exp(-theta)),
                                           [-1, 0, 1], [0.2, 0.5, 0.8], [30, 40, 30],
                                           model="2pl")
    trace = charts.option_trace_lines("Q1 v1", [("A", True, [0.2, 0.4, 0.6, 0.8, 0.9]),
                                                ("B", False, [0.5, 0.4, 0.3, 0.1, 0.05])])
    page = "".join(f"<p>{c.img(pdf=True)}</p>" for c in (icc, trace, icc)).encode()
    (tmp_path / "page.html").write_bytes(page)
    weasyprint_alone = ("import sys; from weasyprint import HTML;"
                        " page = open(sys.argv[1], encoding='utf-8').read();"
                        " sys.stdout.buffer.write("
                        "HTML(string=page, base_url=sys.argv[2]).write_pdf())")
    plain = subprocess.run(
        [sys.executable, "-c", weasyprint_alone, str(tmp_path / "page.html"), str(tmp_path)],
        capture_output=True, check=True).stdout
    cached = html_to_pdf(page.decode(), base_url=str(tmp_path))
    from pypdf import PdfReader

    words = PdfReader(io.BytesIO(plain)).pages[0].extract_text()
    assert "quintile" in words.replace(" ", "") and "(key)" in words.replace(" ", "")
    assert cached == plain
