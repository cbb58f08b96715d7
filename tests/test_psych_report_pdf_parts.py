"""The item-analysis PDF rendered in parts (issue 14: "renders to PDF in under 20 s"): the front
matter and runs of item sections rendered at once by this process and a worker process, merged
with pypdf, footers stamped afterwards, must read as the single-process PDF does: same pages,
same sections in order, "Page N of M" right on every page, same outline and title."""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

from pypdf import PdfReader

from assessment.exams import Exam
from assessment.models import load_all
from assessment.psych.report import ReportScope, report_from_matrix
from assessment.psych.report_output import render_pdf

BENCH = Path(__file__).resolve().parents[1] / "bench" / "report.py"


def _simulated(n_items: int, code: str, title: str):
    """(exam, response matrix, item parameters): 300 candidates on ``n_items`` items, simulated
    as bench/report.py does, so these tests render the data the bench times."""
    spec = importlib.util.spec_from_file_location("bench_report", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    load_all()
    matrix, params = bench.simulate(n_items, 300)
    return Exam(id=1, code=code, title=title, pass_percent=60.0), matrix, params


def _report(n_items: int):
    exam, matrix, params = _simulated(n_items, "PARTS", "Parts exam")
    return report_from_matrix(ReportScope(exam), matrix, params, with_charts=False)


def _read(pdf: bytes):
    reader = PdfReader(io.BytesIO(pdf))

    def outline(entries, depth=0):
        out = []
        for e in entries:
            if isinstance(e, list):
                out += outline(e, depth + 1)
            else:
                out.append((depth, e.title, reader.get_destination_page_number(e)))
        return out

    return reader, [p.extract_text() for p in reader.pages], outline(reader.outline)


def test_a_report_rendered_in_parts_reads_as_the_single_process_one():
    report = _report(5)
    single, single_text, single_outline = _read(render_pdf(report, chunks=1))
    seen = []
    parts, parts_text, parts_outline = _read(render_pdf(
        report, chunks=2, workers=2, progress=lambda done, total: seen.append((done, total))))
    m = len(single.pages)
    assert m >= 3 + len(report.items) and len(parts.pages) == m
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)  # front, 2 runs of items, footers
    # every item has its section, in order, on the same page
    for i in report.items:
        assert [n for n, t in enumerate(parts_text) if i.label in t.splitlines()[0]] == \
               [n for n, t in enumerate(single_text) if i.label in t.splitlines()[0]]
    # footers: none on the cover, "Page N of M" and the exam on every other page
    assert "Page " not in parts_text[0]
    for n, text in enumerate(parts_text[1:], 2):
        assert f"Page {n} of {m}" in text and "PARTS item analysis" in text
        assert text.count("Page ") == 1
    assert parts_outline == single_outline
    assert [d for d, _, _ in parts_outline[:3]] == [0, 1, 1]
    assert parts.metadata.title == single.metadata.title == "Item-analysis report: Parts exam"
    # in one process (no worker) the same
    _, inproc_text, inproc_outline = _read(render_pdf(report, chunks=3, workers=1))
    assert inproc_text == parts_text and inproc_outline == parts_outline


def test_with_charts_the_parts_file_stays_near_the_single_process_size():
    """Merging used to rewrite every page's content uncompressed (pypdf's merge_page) and keep a
    form object per centred chart label: the split file was three times the single one. Now
    the pages are kept as rendered and each footer is one small form object."""
    exam, matrix, params = _simulated(4, "SIZE", "Size exam")
    report = report_from_matrix(ReportScope(exam), matrix, params, with_charts=True)
    assert all(i.icc is not None and i.trace is not None for i in report.items)
    single_pdf, parts_pdf = render_pdf(report, chunks=1), render_pdf(report, chunks=2, workers=2)
    single, single_text, single_outline = _read(single_pdf)
    parts, parts_text, parts_outline = _read(parts_pdf)
    assert len(parts.pages) == len(single.pages) and parts_outline == single_outline
    # the same words on every page (the charts' labels included), footers and all
    assert [sorted(t.split()) for t in parts_text] == [sorted(t.split()) for t in single_text]
    # what remains is a font subset and a few objects per extra document (the front matter,
    # the second run, the footers): about 12 KB each here, a tenth of the file at 200 items
    assert len(parts_pdf) - len(single_pdf) < 3 * 16_000 + 0.1 * len(single_pdf), \
        (len(parts_pdf), len(single_pdf))
    # one form object per page (its footer), none per chart label
    for page in parts.pages:
        xobjects = page["/Resources"].get("/XObject", {})
        assert sum(1 for name in xobjects if not name.startswith("/MicrocredFooter")) <= 2


def test_an_exam_code_with_css_or_html_specials_prints_as_written_in_the_footer():
    """The footer's text is a CSS string in a <style> rule: HTML escaping there printed
    "R&amp;D" (CSS reads no entities). Both footer templates (one process, and the stamped
    footers of a PDF rendered in parts) must print the code as it is written."""
    code = "R&D'\"</style>\\x"
    report = _report(2)
    report.scope.exam.code = code
    for kwargs in ({"chunks": 1}, {"chunks": 2, "workers": 1}):
        reader = PdfReader(io.BytesIO(render_pdf(report, **kwargs)))
        for page in reader.pages[1:]:
            text = page.extract_text()
            assert f"{code} item analysis" in text, (kwargs, text[-200:])
            assert "&amp;" not in text and "&#39;" not in text and "&#34;" not in text


def test_a_worker_that_dies_before_reading_its_parts_leaves_them_to_this_process(monkeypatch,
                                                                                caplog):
    """The worker starts before its HTML is written and is sent its parts through a pipe; one
    that ends at once (here: a program that exits 1 without reading) must not lose its parts or
    hang the render: this process renders them, and the PDF is the same."""
    import assessment.psych.report_output as output

    report = _report(5)
    _, whole_text, whole_outline = _read(render_pdf(report, chunks=3, workers=1))
    monkeypatch.setattr(output.sys, "executable", "/bin/false")
    with caplog.at_level("WARNING"):
        _, text, outline = _read(render_pdf(report, chunks=3, workers=3))
    assert text == whole_text and outline == whole_outline
    assert "report PDF worker failed" in caplog.text


def test_item_charts_drawn_by_the_processes_rendering_the_parts_are_the_same(monkeypatch,
                                                                           caplog):
    """A report built for its PDF leaves its item charts undrawn (``item_charts_later``): each
    is drawn by the process that renders its item's part, at once with the other parts' layout.
    The HTML must be the one of a report whose charts were drawn first, and the PDF must read
    the same in one process, in parts, and when a worker dies (its parts and their charts are
    then drawn and rendered here)."""
    import assessment.psych.report_output as output
    from assessment.psych.charts import PendingChart
    from assessment.psych.report_output import render_pdf_html

    exam, matrix, params = _simulated(4, "LATER", "Later exam")
    now = report_from_matrix(ReportScope(exam), matrix, params, with_charts=True)
    later = report_from_matrix(ReportScope(exam), matrix, params, with_charts=True,
                               item_charts_later=True)
    later.generated_at = now.generated_at
    assert all(isinstance(c, PendingChart) for i in later.items for c in (i.icc, i.trace))
    assert later.histogram is not None and later.histogram.svg == now.histogram.svg
    assert render_pdf_html(later) == render_pdf_html(now)
    _, now_text, now_outline = _read(render_pdf(now, chunks=2, workers=1))
    for kwargs in ({"chunks": 1}, {"chunks": 2, "workers": 2}):
        _, text, outline = _read(render_pdf(later, **kwargs))
        assert [sorted(t.split()) for t in text] == [sorted(t.split()) for t in now_text]
    with caplog.at_level("WARNING"):
        _, text, outline = _read(render_pdf(later, chunks=2, workers=2))
    assert "report PDF worker failed" not in caplog.text  # the worker drew its charts
    assert text == now_text and outline == now_outline
    monkeypatch.setattr(output.sys, "executable", "/bin/false")
    _, text, outline = _read(render_pdf(later, chunks=3, workers=3))
    assert text == now_text and outline == now_outline


def test_workers_started_with_the_report_s_data_render_its_pdf(monkeypatch, caplog):
    """A report built for its PDF starts the PDF's part workers before its statistics
    (:func:`prestart_pdf_workers`), so their imports overlap the statistics; render_pdf takes
    them (as many parts as they were started for) and the PDF reads as one rendered here."""
    import assessment.psych.report_output as output

    spec = importlib.util.spec_from_file_location("bench_report", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    load_all()
    matrix, params = bench.simulate(output.PARALLEL_FROM, 200)
    exam = Exam(id=1, code="EARLY", title="Early exam", pass_percent=60.0)
    monkeypatch.setenv("MICROCRED_PDF_WORKERS", "2")
    report = report_from_matrix(ReportScope(exam), matrix, params, with_charts=True,
                                item_charts_later=True)
    assert output._ready_count() == 1
    monkeypatch.setenv("MICROCRED_PDF_WORKERS", "1")  # the waiting worker decides, not this
    seen = []
    with caplog.at_level("WARNING"):
        pdf = render_pdf(report, progress=lambda done, total: seen.append((done, total)))
    assert output._ready_count() == 0 and "report PDF worker failed" not in caplog.text
    assert seen[-1] == (4, 4)  # front, two runs of items, footers: it rendered in parts
    reader, text, outline = _read(pdf)
    _, here_text, here_outline = _read(render_pdf(report, chunks=2, workers=1))
    assert text == here_text and outline == here_outline
    assert len(reader.pages) >= 3 + output.PARALLEL_FROM


def test_a_failure_in_this_process_ends_the_workers_it_started(monkeypatch):
    """A worker sends its results through a pipe read at the end: if this process fails first
    (here: its own part), a worker left running would wait on that pipe for as long as this
    process lives (a job worker lives long). It is ended with the failure."""
    import pytest

    import assessment.psych.report_output as output

    report = _report(5)
    procs = []
    start = output._start_worker

    def recorded(preload=()):
        procs.append(start(preload))
        return procs[-1]

    def fails(html, pending):
        raise RuntimeError("layout failed")

    monkeypatch.setattr(output, "_start_worker", recorded)
    monkeypatch.setattr(output, "_render_part", fails)
    with pytest.raises(RuntimeError, match="layout failed"):
        render_pdf(report, chunks=3, workers=3)
    assert len(procs) == 2 and all(p.returncode is not None for p in procs)
