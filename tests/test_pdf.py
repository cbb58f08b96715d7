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
