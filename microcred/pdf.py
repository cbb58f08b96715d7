"""HTML to PDF through WeasyPrint, without WeasyPrint's side effect on image checks.

Importing WeasyPrint sets Pillow's process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` to True, so
after the first certificate or report PDF a process would accept a truncated photo or bank image
as whole (and report "damaged" files differently). Every PDF goes through :func:`html_to_pdf`,
which imports WeasyPrint and puts Pillow's strict default back; the pictures Microcred renders
into PDFs are its own (SVG charts, generated PNG artwork), never truncated."""
from __future__ import annotations

import sys
import weakref

from PIL import ImageFile


def _weasyprint_html():
    """WeasyPrint's ``HTML``, imported with Pillow's strict default put back and the SVG text
    cache installed (:func:`_cache_svg_letters`)."""
    strict = ImageFile.LOAD_TRUNCATED_IMAGES
    from weasyprint import HTML

    ImageFile.LOAD_TRUNCATED_IMAGES = strict
    _cache_svg_letters()
    return HTML


def _cache_svg_letters() -> None:
    """Lay out each SVG letter once per document, not once per occurrence.

    WeasyPrint (70) draws an SVG ``<text>`` letter by letter: for every character of every
    label it builds a Pango layout (``split_first_line``) and builds it again when drawing
    (``Layout.reactivate``). A report's 400 charts have some 30,000 letters in a few dozen
    distinct (letter, font) pairs; that was about a third of the time WeasyPrint spent on the
    charts. The result of a layout depends only on the text, the font and the document's font
    configuration, so it is remembered per font configuration (one per document) and its
    Pango layout stays active for the next drawing of the same letter. Only the SVG text's
    calls are served from the cache (their style is ``weasyprint.svg.text.Style``; the HTML
    layout imported the function before this replaces it); the PDF is byte for byte the same.
    """
    try:  # WeasyPrint's internals (70; the project asks for >= 62): without them, no cache
        from weasyprint.svg.text import Style as SvgTextStyle
        from weasyprint.text import line_break

        original = line_break.split_first_line
        line_break.Layout.reactivate  # noqa: B018
    except (ImportError, AttributeError):
        return
    if getattr(original, "microcred_cached", False):
        return
    by_fonts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    class SharedLayout(line_break.Layout):
        def reactivate(self, style) -> None:
            if getattr(self, "layout", None) is None:  # deactivated: set up again
                super().reactivate(style)

    def split_first_line(text, style, context, max_width, justification_spacing,
                         is_line_start=True, minimum=False):
        if not isinstance(style, SvgTextStyle):
            return original(text, style, context, max_width, justification_spacing,
                            is_line_start, minimum)
        # what svg.text.text sets on its style (the rest is CSS's initial values)
        key = (text, tuple(style["font_family"]), style["font_style"], style["font_weight"],
               style["font_size"], style["direction"], max_width, justification_spacing,
               is_line_start, minimum)
        cache = by_fonts.setdefault(style.font_config, {})
        result = cache.get(key)
        if result is None:
            result = original(text, style, context, max_width, justification_spacing,
                              is_line_start, minimum)
            result[0].__class__ = SharedLayout
            cache[key] = result
        return result

    split_first_line.microcred_cached = True
    line_break.split_first_line = split_first_line


def html_to_pdf(html: str, *, base_url: str | None = None) -> bytes:
    return _weasyprint_html()(string=html, base_url=base_url).write_pdf()


def html_to_pdf_parts(html: str, *, base_url: str | None = None
                      ) -> tuple[bytes, list[tuple[int, str, int, tuple[float, float]]]]:
    """The PDF and its headings' bookmarks as ``(level, label, page index, (x, y))`` in PDF
    points (origin bottom left), for a caller that merges several PDFs into one and rebuilds
    the outline (a process pool worker: arguments and result pickle)."""
    document = _weasyprint_html()(string=html, base_url=base_url).render()
    marks = []
    for n, page in enumerate(document.pages):
        for level, label, (x, y), _state in page.bookmarks:
            marks.append((level, label, n, (x * 0.75, (page.height - y) * 0.75)))
    return document.write_pdf(), marks


def main(argv: list[str]) -> int:
    """``python -m microcred.pdf IN OUT [MODULE...]``: render the pickled list of jobs in IN
    (``-``: read from standard input, once WeasyPrint and the MODULEs are imported, so a caller
    may start the worker before its HTML is ready) with :func:`html_to_pdf_parts` and pickle
    the list of results to OUT (``-``: standard output; anything else the libraries print
    goes to standard error). A job is ``(html, base_url)``, or ``(html, base_url, (module,
    function, args))`` whose HTML is first passed through ``module.function(html, *args)``
    (the report's charts, drawn here: :func:`assessment.psych.charts.fill_pending`). A worker
    process of a caller that renders one PDF in parts (OUT is the caller's own temporary
    file); a plain process, not a multiprocessing child, so it never imports the caller's main
    module."""
    import importlib
    import os
    import pickle

    if argv[1] == "-":  # the results alone on standard output
        out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    else:
        out = open(argv[1], "wb")  # noqa: SIM115  (closed below, after the work)
    if argv[0] == "-":
        import weasyprint  # noqa: F401  (the import is most of a worker's start: done first)

        for module in argv[2:]:
            importlib.import_module(module)
        jobs = pickle.load(sys.stdin.buffer)
    else:
        with open(argv[0], "rb") as fh:
            jobs = pickle.load(fh)
    results = []
    for html, base_url, *prepare in jobs:
        if prepare:
            module, function, args = prepare[0]
            html = getattr(importlib.import_module(module), function)(html, *args)
        results.append(html_to_pdf_parts(html, base_url=base_url))
    with out:
        pickle.dump(results, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
