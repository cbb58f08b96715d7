"""HTML to PDF through WeasyPrint, without WeasyPrint's side effect on image checks.

Importing WeasyPrint sets Pillow's process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` to True, so
after the first certificate or report PDF a process would accept a truncated photo or bank image
as whole (and report "damaged" files differently). Every PDF goes through :func:`html_to_pdf`,
which imports WeasyPrint and puts Pillow's strict default back; the pictures Microcred renders
into PDFs are its own (SVG charts, generated PNG artwork), never truncated."""
from __future__ import annotations

import sys

from PIL import ImageFile


def html_to_pdf(html: str, *, base_url: str | None = None) -> bytes:
    strict = ImageFile.LOAD_TRUNCATED_IMAGES
    from weasyprint import HTML

    ImageFile.LOAD_TRUNCATED_IMAGES = strict
    return HTML(string=html, base_url=base_url).write_pdf()


def html_to_pdf_parts(html: str, *, base_url: str | None = None
                      ) -> tuple[bytes, list[tuple[int, str, int, tuple[float, float]]]]:
    """The PDF and its headings' bookmarks as ``(level, label, page index, (x, y))`` in PDF
    points (origin bottom left), for a caller that merges several PDFs into one and rebuilds
    the outline (a process pool worker: arguments and result pickle)."""
    strict = ImageFile.LOAD_TRUNCATED_IMAGES
    from weasyprint import HTML

    ImageFile.LOAD_TRUNCATED_IMAGES = strict
    document = HTML(string=html, base_url=base_url).render()
    marks = []
    for n, page in enumerate(document.pages):
        for level, label, (x, y), _state in page.bookmarks:
            marks.append((level, label, n, (x * 0.75, (page.height - y) * 0.75)))
    return document.write_pdf(), marks


def main(argv: list[str]) -> int:
    """``python -m microcred.pdf IN OUT``: render the pickled list of ``(html, base_url)`` in IN
    (``-``: read from standard input, once WeasyPrint is imported, so a caller may start the
    worker before its HTML is ready) with :func:`html_to_pdf_parts` and pickle the list of
    results to OUT. A worker process of a caller that renders one PDF in parts (OUT is the
    caller's own temporary file); a plain process, not a multiprocessing child, so it never
    imports the caller's main module."""
    import pickle

    if argv[0] == "-":
        import weasyprint  # noqa: F401  (the import is most of a worker's start: done first)

        jobs = pickle.load(sys.stdin.buffer)
    else:
        with open(argv[0], "rb") as fh:
            jobs = pickle.load(fh)
    results = [html_to_pdf_parts(html, base_url=base_url) for html, base_url in jobs]
    with open(argv[1], "wb") as fh:
        pickle.dump(results, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
