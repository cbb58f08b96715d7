"""HTML to PDF through WeasyPrint, without WeasyPrint's side effect on image checks.

Importing WeasyPrint sets Pillow's process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` to True, so
after the first certificate or report PDF a process would accept a truncated photo or bank image
as whole (and report "damaged" files differently). Every PDF goes through :func:`html_to_pdf`,
which imports WeasyPrint and puts Pillow's strict default back; the pictures Microcred renders
into PDFs are its own (SVG charts, generated PNG artwork), never truncated."""
from __future__ import annotations

from PIL import ImageFile


def html_to_pdf(html: str, *, base_url: str | None = None) -> bytes:
    strict = ImageFile.LOAD_TRUNCATED_IMAGES
    from weasyprint import HTML

    ImageFile.LOAD_TRUNCATED_IMAGES = strict
    return HTML(string=html, base_url=base_url).write_pdf()
