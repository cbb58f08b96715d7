"""The item-analysis report rendered three ways from one :class:`ItemAnalysisReport`: the
workspace page (``templates/psych/report.html``, through Flask), a PDF (``report_pdf.html``
through WeasyPrint: cover, summary, one section per item, page numbers) and CSV/JSON of every
table. The PDF is rendered with a plain Jinja environment over the same templates folder, so
the command line needs no web app.
"""
from __future__ import annotations

import atexit
import csv
import io
import itertools
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from assessment.psych.charts import Chart, PendingChart, fill_pending
from assessment.psych.report import ItemAnalysisReport
from microcred.pdf import html_to_pdf, html_to_pdf_parts
from microcred.workers import default_workers

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
log = logging.getLogger(__name__)


def chart_img(chart: Chart | PendingChart | None, css_class: str = "chart", *,
              pdf: bool = False) -> Markup:
    """The chart as an ``<img>`` with its text alternative (:meth:`Chart.img`); a chart still
    to be drawn as its marker (:class:`PendingChart`, filled in by :func:`fill_pending`)."""
    if chart is None:
        return Markup("")
    return chart.img(css_class, pdf=pdf)


def pdf_chart_img(chart: Chart | None, css_class: str = "chart") -> Markup:
    return chart_img(chart, css_class, pdf=True)


def css_string(value: object) -> Markup:
    """``value`` as a quoted CSS string for a ``<style>`` rule (``content: ...``): HTML escaping
    is wrong there (CSS does not read entities, so ``A&B`` would print as ``A&amp;B``); every
    character but letters, digits and a few safe marks is written as a CSS hex escape
    (``\\26 `` for ``&``), so no quote, backslash, newline or ``</style>`` can leave the string."""
    safe = []
    for ch in str(value):
        if ch.isalnum() or ch in " -_.,:/()":
            safe.append(ch)
        else:
            safe.append(f"\\{ord(ch):x} ")
    return Markup('"{}"'.format("".join(safe)))


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.globals["chart_img"] = pdf_chart_img
    env.filters["css_string"] = css_string
    return env


def render_pdf_html(report: ItemAnalysisReport, *, part: str = "all",
                    items: list | None = None) -> str:
    """The PDF's HTML: ``part`` "all" (the whole report, page numbers by CSS), "front" (cover,
    summary, tables) or "items" (the sections of ``items``); the parts carry no footers, which
    :func:`render_pdf` stamps on the merged PDF. Item charts not drawn yet
    (:class:`PendingChart`) are drawn here."""
    html, pending = _part_html(report, part, items)
    return fill_pending(html, pending) if pending else html


def _part_html(report: ItemAnalysisReport, part: str, items: list | None = None
               ) -> tuple[str, list[PendingChart]]:
    """The part's HTML with a marker for each chart not drawn yet, and those charts."""
    items = report.items if items is None else items
    html = _env().get_template("psych/report_pdf.html").render(r=report, part=part, items=items)
    pending = [] if part == "front" else [c for i in items for c in i.pending_charts]
    return html, pending


#: from this many items the PDF is rendered in parts by a process pool (below: one process, so
#: tests and small reports pay no pool start)
PARALLEL_FROM = 40
#: most worker processes a PDF is rendered with by default
MAX_WORKERS = 4
#: the front matter (cover, summary, the item tables) costs about as much to render as this
#: share of the item sections (200 items in two processes, loaded 2-core sandbox: front 4.1 CPU
#: s, an item section with its two charts drawn 0.12 s; a worker started with the report's
#: data, :func:`prestart_pdf_workers`, begins when this process does)
FRONT_WEIGHT = 0.17


def pdf_workers(n_items: int) -> int:
    """How many processes render the PDF: ``MICROCRED_PDF_WORKERS``, by default one per idle
    CPU (:func:`microcred.workers.default_workers`, at most :data:`MAX_WORKERS`), from
    :data:`PARALLEL_FROM` items (1 below)."""
    configured = os.environ.get("MICROCRED_PDF_WORKERS", "").strip()
    if configured:
        try:
            workers = int(configured)
        except ValueError:
            raise ValueError(
                f"MICROCRED_PDF_WORKERS must be a whole number, not {configured!r}") from None
    else:
        workers = default_workers(MAX_WORKERS)
    return max(1, workers) if n_items >= PARALLEL_FROM else 1


def item_runs(n_items: int, chunks: int) -> list[range]:
    """``chunks`` contiguous runs of the item sections, about equal in cost once the first,
    rendered with the front matter, is shortened by the front's weight (:data:`FRONT_WEIGHT`);
    every run has at least one item."""
    chunks = max(1, min(chunks, n_items))
    per = n_items * (1 + FRONT_WEIGHT) / chunks
    first = min(max(1, round(per - n_items * FRONT_WEIGHT)), n_items - (chunks - 1))
    rest, others = n_items - first, chunks - 1
    bounds = [0, first] + [first + round(rest * k / others) for k in range(1, others + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds)]


def render_pdf(report: ItemAnalysisReport, *,
               progress: Callable[[int, int], None] | None = None,
               chunks: int | None = None, workers: int | None = None) -> bytes:
    """The report as PDF; ``progress(done, total)`` is told of each part rendered.

    A large report is rendered in parts at once: the front matter and ``chunks`` runs of item
    sections (default: one per worker, of about equal cost: :func:`item_runs`), each its own
    WeasyPrint document, this process and ``python -m microcred.pdf`` worker processes
    rendering at once, merged in order with pypdf; the footers ("Page N of M", the exam and
    date) are then stamped from one footer-only document of M pages (:func:`_stamp`), and the
    outline is rebuilt from the parts' headings, so the result reads as the single-process PDF
    does. ``chunks`` and
    ``workers`` force the split (tests); with one worker the parts render here, in order."""
    if workers is None:  # workers started with the report's data decided it already
        workers = 1 + _ready_count() if _ready_count() else pdf_workers(len(report.items))
    workers = max(1, workers)
    if chunks is None:
        chunks = workers
    chunks = max(1, min(chunks, len(report.items)))
    if chunks == 1:
        if progress:
            progress(0, 1)
        pdf = html_to_pdf(render_pdf_html(report), base_url=str(TEMPLATES))
        if progress:
            progress(1, 1)
        return pdf
    runs = item_runs(len(report.items), chunks)
    n_htmls = 1 + len(runs)
    total = n_htmls + 1
    if progress:
        progress(0, total)
    # this process renders the front matter and the first run of items; each other worker
    # process one run each (contiguous groups, in order)
    n_groups = max(1, min(workers, n_htmls - 1))
    groups = [[0, 1]] + [[] for _ in range(n_groups - 1)]
    for n in range(2, n_htmls):
        groups[1 + (n - 2) * (n_groups - 1) // max(1, n_htmls - 2)
               if n_groups > 1 else 0].append(n)
    parts: list = [None] * n_htmls
    # the item charts not drawn yet are drawn by the process that renders their part
    preload = [_CHARTS] if any(i.pending_charts for i in report.items) else []
    # the workers start (and import WeasyPrint), or were started with the report's data, while
    # this process writes the HTML
    waiting = [(group, _take_worker(preload)) for group in groups[1:] if group]
    try:
        htmls = [_part_html(report, "front")] + [
            _part_html(report, "items", report.items[run.start:run.stop]) for run in runs]
    except BaseException:
        for _, proc in waiting:
            if proc is not None:
                proc.kill()
                proc.communicate()
        raise
    started = [(group, _send_jobs(proc, [_job(*htmls[n]) for n in group]))
               for group, proc in waiting]
    done = 0
    for n in groups[0]:
        parts[n] = _render_part(*htmls[n])
        done += 1
        if progress:
            progress(done, total)
    for group, worker in started:
        for n, result in zip(group, _finish_worker(*worker)):
            parts[n] = result
        done += len(group)
        if progress:
            progress(done, total)
    for n, h in enumerate(htmls):  # a worker that could not start or failed: render here
        if parts[n] is None:
            parts[n] = _render_part(*h)
    pdf = _merge(report, parts)
    if progress:
        progress(total, total)
    return pdf


#: where a worker finds :func:`fill_pending` (and imports it, with matplotlib, while it waits)
_CHARTS = "assessment.psych.charts"


def _job(html: str, pending: list[PendingChart]) -> tuple:
    """A worker's job (:func:`microcred.pdf.main`): the part's HTML, and its charts to draw
    into it first."""
    if not pending:
        return html, str(TEMPLATES)
    return html, str(TEMPLATES), (_CHARTS, "fill_pending", (pending,))


def _render_part(html: str, pending: list[PendingChart]):
    """A part rendered here, as a worker renders its :func:`_job`."""
    return html_to_pdf_parts(fill_pending(html, pending) if pending else html,
                             base_url=str(TEMPLATES))


#: part workers started before their report was ready (:func:`prestart_pdf_workers`):
#: (process, modules it imported), taken by the next :func:`render_pdf`
_READY: list[tuple[subprocess.Popen, tuple[str, ...]]] = []
_READY_LOCK = threading.Lock()


def prestart_pdf_workers(n_items: int, *, charts: bool = True) -> None:
    """Start now the worker processes a PDF of ``n_items`` items will be rendered with
    (:func:`pdf_workers`, less this process), importing WeasyPrint (and, with ``charts``, the
    chart module with matplotlib) while the caller computes the report's statistics on one CPU;
    the next :func:`render_pdf` in this process takes them. Workers already waiting count; an
    unused one ends with this process (its standard input closes)."""
    wanted = pdf_workers(n_items) - 1
    preload = (_CHARTS,) if charts else ()
    with _READY_LOCK:
        _READY[:] = [(proc, mods) for proc, mods in _READY if proc.poll() is None]
        for _ in range(wanted - len(_READY)):
            proc = _start_worker(preload)
            if proc is None:
                break
            _READY.append((proc, preload))


def _ready_count() -> int:
    with _READY_LOCK:
        return sum(1 for proc, _ in _READY if proc.poll() is None)


def _take_worker(preload: list[str]) -> subprocess.Popen | None:
    """A waiting worker that imported ``preload`` (:func:`prestart_pdf_workers`), else a new
    one (:func:`_start_worker`)."""
    with _READY_LOCK:
        for k, (proc, mods) in enumerate(_READY):
            if proc.poll() is None and set(preload) <= set(mods):
                del _READY[k]
                return proc
    return _start_worker(tuple(preload))


@atexit.register
def _end_waiting_workers() -> None:
    with _READY_LOCK:
        for proc, _ in _READY:
            proc.kill()
            proc.communicate()
        _READY.clear()


def _start_worker(preload: tuple[str, ...] = ()) -> subprocess.Popen | None:
    """A ``python -m microcred.pdf - - [MODULE...]`` process, importing WeasyPrint (and
    ``preload``) until it is sent its jobs (:func:`_send_jobs`), its results on its standard
    output; None if it cannot start."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    try:
        return subprocess.Popen([sys.executable, "-m", "microcred.pdf", "-", "-", *preload],
                                env=env, cwd=str(ROOT), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError:
        return None


def _send_jobs(proc: subprocess.Popen | None, jobs: list[tuple]):
    """Give a started worker its jobs (:func:`_job`), from a thread: the pipe holds 64 KB, and
    the worker reads only once WeasyPrint is imported, which this process need not wait for.
    ``(None,)`` for a worker that could not start (its parts are rendered here); one that dies
    before reading fails in :func:`_finish_worker`, with the same effect."""
    if proc is None:
        return (None,)

    def send(stream=proc.stdin) -> None:
        try:
            pickle.dump(jobs, stream)
            stream.close()
        except (OSError, ValueError):  # it died (a broken pipe): _finish_worker sees it
            pass

    sender = threading.Thread(target=send, name="microcred-pdf-send", daemon=True)
    proc.stdin = None  # the thread writes and closes it; communicate() must not touch it
    sender.start()
    return proc, sender


def _finish_worker(proc: subprocess.Popen | None,
                   sender: threading.Thread | None = None) -> list:
    """The worker's results, or nothing (its parts are then rendered here) if it failed."""
    if proc is None:
        return []
    out, err = proc.communicate()
    if sender is not None:
        sender.join()
    if proc.returncode != 0:
        log.warning("report PDF worker failed (%s): %s", proc.returncode,
                    err.decode(errors="replace")[-2000:])
        return []
    return pickle.loads(out)


def _merge(report: ItemAnalysisReport, parts: list[tuple[bytes, list]]) -> bytes:
    """The parts' pages in order, each footer stamped on its page, the outline rebuilt."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import Fit

    writer = PdfWriter()
    marks = []  # (level, label, page index, (x, y)) over the whole document
    for data, bookmarks in parts:
        first = len(writer.pages)
        writer.append(PdfReader(io.BytesIO(data)), import_outline=False)
        marks += [(level, label, first + page, pos) for level, label, page, pos in bookmarks]
    n_pages = len(writer.pages)
    footers = PdfReader(io.BytesIO(html_to_pdf(
        _env().get_template("psych/report_pdf_footers.html").render(r=report, n_pages=n_pages),
        base_url=str(TEMPLATES))))
    if len(footers.pages) != n_pages:  # never seen; a wrong footer would be worse than none
        raise RuntimeError(f"report PDF: {len(footers.pages)} footer pages for {n_pages} pages")
    _stamp(writer, footers)
    # the outline as WeasyPrint builds it: a heading nests under the last one of a lower level
    stack: list = []  # (level, outline item)
    for level, label, page, (x, y) in marks:
        while stack and stack[-1][0] >= level:
            stack.pop()
        parent = stack[-1][1] if stack else None
        item = writer.add_outline_item(title=label, page_number=page, parent=parent,
                                       fit=Fit.xyz(x, y, 0))
        stack.append((level, item))
    front = PdfReader(io.BytesIO(parts[0][0])).metadata or {}
    writer.add_metadata({k: v for k, v in front.items() if isinstance(v, str)})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _stamp(writer, footers) -> None:
    """Each page of ``footers`` drawn over the page of ``writer`` with its number, as a form
    XObject with its own resources: the page's content stream is left as it is (still
    compressed; pypdf's ``merge_page`` parsed and rewrote every page's content, uncompressed,
    which made the merged file three times the size), and no resource is renamed."""
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
    )

    def stream(data: bytes):
        obj = DecodedStreamObject()
        obj.set_data(data)
        return writer._add_object(obj)

    # the page's own drawing in q/Q: it may leave a transformation in force (WeasyPrint's
    # pages start by flipping the y axis), which the footer must not inherit
    save = stream(b"q\n")
    for n, (page, footer) in enumerate(zip(writer.pages, footers.pages)):
        form = DecodedStreamObject()
        form.set_data(footer.get_contents().get_data())
        form.update({
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): ArrayObject(footer.mediabox),
            NameObject("/Resources"): footer["/Resources"].clone(writer),
        })
        # a name of its own on each page: a part's pages share one resources dictionary
        # (WeasyPrint's), which is extended, not copied per page
        name = NameObject(f"/MicrocredFooter{n}")
        resources = page["/Resources"]
        if "/XObject" not in resources:
            resources[NameObject("/XObject")] = DictionaryObject()
        resources["/XObject"].get_object()[name] = writer._add_object(form.flate_encode())
        contents = page.raw_get("/Contents")  # the reference: a stream is never inlined
        own = list(contents.get_object()) if isinstance(contents.get_object(), ArrayObject) \
            else [contents]
        page[NameObject("/Contents")] = ArrayObject(
            [save, *own, stream(f"Q\nq {name} Do Q\n".encode())])


def table_csv(report: ItemAnalysisReport, name: str) -> str:
    """One table as CSV (raises KeyError for a table the report does not have)."""
    cols, rows = report.tables()[name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(cols)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def tables_zip(report: ItemAnalysisReport) -> bytes:
    """Every table as ``<name>.csv`` plus ``report.json``, in one zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in report.tables():
            zf.writestr(f"{name}.csv", table_csv(report, name))
        zf.writestr("report.json", report_json(report))
    return buf.getvalue()


def report_json(report: ItemAnalysisReport) -> str:
    return json.dumps(report.to_dict(), indent=1, ensure_ascii=False)
