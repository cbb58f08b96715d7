"""The item-analysis report (assessment.psych.report): one report model rendered as the workspace
page, a PDF and CSV/JSON; its numbers checked against the engine called directly on a matrix
built here; who may see it; bad scopes."""
from __future__ import annotations

import io
import json
import os
import re
import time
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import select

from assessment.demo_program import load_demo
from assessment.exams import Exam
from assessment.psych import charts
from assessment.psych.calibration import calibrate_exam
from assessment.psych.report import ReportScope, build_report, report_from_matrix
from assessment.psych.report_output import render_pdf
from assessment.psych.response_matrix import score_matrix
from assessment.psych.runs import approve_run, record_run
from assessment.users import User
from bench.report import simulate
from itembank.parameters import current_parameters
from psychometrics import item_analysis
from psychometrics.dif import mantel_haenszel
from psychometrics.equating import raw_for_theta
from psychometrics.irt.models import ItemParameters

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def demo(db):
    """The demo program with 60 simulated past candidates over its two forms."""
    creds = load_demo(db, history=60)
    db.commit()
    return db.scalar(select(Exam)), {role: (email, password) for role, email, password in creds}


@pytest.fixture
def psych_client(client, demo, signin, db):
    exam, creds = demo
    email, password = creds["psychometrician"]
    user = db.scalar(select(User).where(User.email == email))
    signin(client, user, password)
    return client, exam, user


@pytest.fixture
def approved(demo, db):
    """The demo with a 2PL calibration approved (before anyone signs in: SQLite has one writer)."""
    exam, creds = demo
    user = db.scalar(select(User).where(User.email == creds["psychometrician"][0]))
    result = calibrate_exam(db, exam, model="2pl", max_iter=200)
    run = record_run(db, result, run_by_id=user.id, max_iter=200)
    approve_run(db, run, by=user, reason="report test", override_not_converged=True)
    db.commit()
    return exam


@sqlite_only
def test_the_page_has_every_table_and_a_section_per_item(psych_client, db):
    client, exam, _ = psych_client
    page = client.get(f"/psych/exams/{exam.code}/report")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    matrix = score_matrix(db, exam)
    for version in matrix.versions:
        assert f'id="item-{version.id}"' in html, f"no section for version {version.id}"
    for table in ("table-items", "table-reliability", "table-flags"):
        assert f'id="{table}"' in html and "data-sortable" in html
    assert "No item has approved IRT parameters yet" in html  # demo ships none approved
    assert "DIF is not reported" in html  # no candidate attribute is recorded
    # charts are images of SVG with their text alternative
    assert html.count('src="data:image/svg+xml;base64,') >= len(matrix.versions)
    assert re.search(r'alt="Option trace lines of [^"]+\. Proportion choosing each option', html)
    assert "psych/sortable.js" in html
    # the item's text preview, type and domain sit in its section
    v = matrix.versions[0]
    section = html.split(f'id="item-{v.id}"')[1].split("</section>")[0]
    assert v.item_type in section and v.domain_code in section
    assert re.sub(r"<[^>]+>", "", v.stem).split()[0] in section
    assert "as candidates see it" in section  # the bank's rendering of the whole item


@sqlite_only
def test_numbers_match_the_engine_on_the_same_matrix(psych_client, db):
    client, exam, _ = psych_client
    doc = client.get(f"/psych/exams/{exam.code}/report.json").get_json()
    matrix = score_matrix(db, exam)
    direct = item_analysis(matrix.scores, item_ids=matrix.item_ids)
    by_label = {row["item"]: row for row in doc["tables"]["items"]}
    assert len(by_label) == len(matrix.versions) == doc["n_items"]
    for stats in direct.items:
        assert by_label[stats.id]["p"] == pytest.approx(stats.p, abs=1e-4)
        assert by_label[stats.id]["corrected_r"] == pytest.approx(stats.corrected_r, abs=1e-4)
    totals = np.nansum(matrix.scores, axis=1).astype(int)
    assert {row["raw_score"]: row["candidates"] for row in doc["tables"]["score_distribution"]} \
        == {int(s): int((totals == s).sum()) for s in np.unique(totals)}
    distractors = doc["tables"]["distractors"]
    assert {d["item"] for d in distractors} == set(by_label)
    for label in by_label:  # each item's option proportions sum to 1
        assert sum(d["proportion"] for d in distractors if d["item"] == label) == pytest.approx(1, abs=1e-3)


@sqlite_only
def test_with_approved_parameters_the_report_has_irt_fit_and_the_cut_in_theta(approved, db):
    exam = approved
    report = build_report(db, ReportScope(exam), with_charts=False)
    assert report.has_irt
    calibrated = [i for i in report.items if i.irt is not None]
    assert len(calibrated) >= len(report.items) - 2 and all(i.irt.se.get("b") for i in calibrated)
    assert any(i.irt.fit for i in report.items)  # S-X2 on each complete form
    matrix = score_matrix(db, exam)
    rows = current_parameters(db, [v.id for v in matrix.versions])
    assert any(form.theta_cut is not None for form in report.forms), report.notes
    for form in report.forms:
        if form.theta_cut is None:  # 30 candidates a form: a slope may come out negative
            assert any(f"form {form.code}: no theta for the raw cut" in n and "not increasing" in n
                       for n in report.notes), report.notes
            continue
        # the theta cut is where the form's test characteristic curve reaches the raw cut
        form_id = next(f.id for f in matrix.forms.values() if f.code == form.code)
        vs = [matrix.versions[j] for j in matrix.form_block(form_id)[1]]
        assert form.raw_cut == int(np.ceil(exam.pass_percent / 100 * form.n_items - 1e-9))
        vs = [v for v in vs if v.id in rows]
        params = ItemParameters("2pl", [rows[v.id].a for v in vs], [rows[v.id].b for v in vs])
        expected_raw = (form.raw_cut if len(vs) == form.n_items
                        else exam.pass_percent / 100 * len(vs))  # the calibrated items only
        assert raw_for_theta(params, [form.theta_cut])[0] == pytest.approx(expected_raw, abs=1e-6)
        # CSEM at the cut = 1/sqrt(test information there) (Lord, 1980, eq. 5-5)
        info = (params.a**2 * (p := params.prob([form.theta_cut])[:, 1, 0]) * (1 - p)).sum()
        assert form.csem_theta_at_cut == pytest.approx(1 / np.sqrt(info), rel=1e-6)
    tables = report.tables()
    assert "irt" in tables and len(tables["irt"][1]) == len(calibrated)


def test_the_pdf_has_a_cover_a_summary_and_a_page_per_item():
    """On a small simulated report (bench/report.py's simulation: 2PL, two forms)."""
    matrix, params = simulate(6, 400)
    exam = Exam(id=1, code="SIM", title="Simulated exam", pass_percent=60.0)
    report = report_from_matrix(ReportScope(exam), matrix, params)
    assert all(i.icc is not None and i.trace is not None for i in report.items)
    assert all(f.information is not None and f.theta_cut is not None for f in report.forms)
    reader = PdfReader(io.BytesIO(render_pdf(report)))
    texts = [p.extract_text() for p in reader.pages]
    assert "Item-analysis report" in texts[0] and "Simulated exam" in texts[0]
    assert "Page" not in texts[0]  # no number on the cover
    assert re.search(r"Page 2 of \d+", texts[1])
    assert "Approved IRT parameters" in "".join(texts)
    # every item's section is on a page of its own, after cover, summary and the tables
    labels = [i.label for i in report.items]
    pages_of = {label: [n for n, t in enumerate(texts) if f"Distractor analysis of {label}:" in t]
                for label in labels}
    assert all(len(p) == 1 for p in pages_of.values()), pages_of
    assert len({p[0] for p in pages_of.values()}) == len(labels)
    # cover, summary and tables first, then one page per item (sections are short here)
    assert sorted(p[0] for p in pages_of.values()) == list(range(len(texts) - len(labels), len(texts)))
    assert len(texts) >= 3 + len(labels)


@sqlite_only
def test_the_pdf_route_downloads_the_report(psych_client, monkeypatch):
    from assessment.psych import views

    real = views.build_report
    monkeypatch.setattr(views, "build_report",  # charts are checked above; keep this quick
                        lambda *a, **kw: real(*a, **{**kw, "with_charts": False}))
    client, exam, _ = psych_client
    form = exam.forms[0].form.code
    resp = client.get(f"/psych/exams/{exam.code}/report.pdf?form={form}")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert "attachment" in resp.headers["Content-Disposition"]
    assert f"form {form}" in PdfReader(io.BytesIO(resp.data)).pages[0].extract_text()


def _label(v):
    return v.item.code if v.version == 1 else f"{v.item.code} v{v.version}"


@sqlite_only
def test_every_table_downloads_as_csv_and_in_one_zip(psych_client, db):
    client, exam, _ = psych_client
    archive = client.get(f"/psych/exams/{exam.code}/report.zip")
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(archive.data)).namelist())
    assert {"items.csv", "distractors.csv", "reliability.csv", "score_distribution.csv",
            "flags.csv", "report.json"} <= names
    items_csv = client.get(f"/psych/exams/{exam.code}/report/items.csv")
    assert items_csv.status_code == 200 and items_csv.mimetype == "text/csv"
    lines = items_csv.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("item,version_id,type,domain,version")
    assert len(lines) == 1 + len(score_matrix(db, exam).versions)
    assert client.get(f"/psych/exams/{exam.code}/report/nope.csv").status_code == 404


@sqlite_only
def test_a_form_and_date_range_narrow_the_report_and_bad_ones_are_refused(psych_client, db):
    client, exam, _ = psych_client
    form = exam.forms[0].form
    doc = client.get(f"/psych/exams/{exam.code}/report.json?form={form.code}").get_json()
    assert doc["form"] == form.code
    assert [r["form"] for r in doc["tables"]["reliability"]] == [form.code]
    bad_date = client.get(f"/psych/exams/{exam.code}/report?since=31-12-2020")
    assert bad_date.status_code == 422
    assert "since must be a date as YYYY-MM-DD" in bad_date.get_data(as_text=True)
    assert client.get(f"/psych/exams/{exam.code}/report.json?form=NOPE").status_code == 422
    backwards = client.get(f"/psych/exams/{exam.code}/report.json?since=2030-01-02&until=2030-01-01")
    assert backwards.status_code == 422 and "date range is empty" in backwards.get_json()["message"]
    future = client.get(f"/psych/exams/{exam.code}/report?since=2999-01-01")
    assert future.status_code == 200
    assert "no finalized results in the chosen form and dates" in future.get_data(as_text=True)
    assert client.get("/psych/exams/NOPE/report").status_code == 404


@sqlite_only
def test_only_psychometricians_and_admins_see_reports(client, make_user, signin, demo):
    exam, _ = demo
    urls = [f"/psych/exams/{exam.code}/report", f"/psych/exams/{exam.code}/report.pdf",
            f"/psych/exams/{exam.code}/report.json", f"/psych/exams/{exam.code}/report.zip",
            f"/psych/exams/{exam.code}/report/items.csv"]
    for url in urls:
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and "/signin" in anonymous.headers["Location"]
    for role in ("candidate", "proctor"):
        with client.application.test_client() as other:
            signin(other, make_user(role))
            for url in urls:
                assert other.get(url).status_code == 403, (role, url)
    with client.application.test_client() as admin:
        signin(admin, make_user("admin"))
        assert admin.get(urls[2]).status_code == 200


@sqlite_only
def test_dif_by_a_candidate_attribute_uses_mantel_haenszel_per_form(demo, db):
    exam, _ = demo
    matrix = score_matrix(db, exam)
    rng = np.random.default_rng(7)
    groups = {rid: str(g) for rid, g in zip(matrix.result_ids, rng.integers(0, 2, matrix.n_persons))}
    scope = ReportScope(exam, dif_attribute="simulated group")
    report = report_from_matrix(scope, matrix, {}, groups=groups, focal="1", with_charts=False)
    assert report.has_dif and report.dif_note is None
    dif = report.tables()["dif"][1]
    form = matrix.forms[min(matrix.forms)]
    rows, cols = matrix.form_block(form.id)
    direct = mantel_haenszel(matrix.scores[np.ix_(rows, cols)],
                             np.array([groups[r] for r in np.array(matrix.result_ids)[rows]]),
                             focal="1", item_ids=[matrix.item_ids[j] for j in cols])
    mine = {(row[0], row[1]): row for row in dif}
    for r in direct:
        row = mine[(r.item, form.code)]
        assert row[8] == r.ets_class
        assert row[4] == pytest.approx(r.d_dif, abs=1e-4)


def test_charts_are_valid_labelled_deterministic_svg():
    theta = np.linspace(-4, 4, 81)
    p = 1 / (1 + np.exp(-1.2 * (theta - 0.4)))
    made = [
        charts.item_characteristic_curve("Q1", theta, p, [-1, 0, 1], [0.2, 0.5, 0.8], [30, 40, 30],
                                         model="2pl"),
        charts.option_trace_lines("Q1", [("A", True, [0.2, 0.4, 0.6, 0.8, 0.9]),
                                         ("B", False, [0.5, 0.3, 0.2, 0.1, 0.05])]),
        charts.information_and_csem(theta, 4 * p * (1 - p) + 0.1, 1 / np.sqrt(4 * p * (1 - p) + 0.1),
                                    cut_theta=0.4),
        charts.score_histogram({3: 5, 4: 9, 5: 12, 6: 4}, cut=5, max_score=8),
    ]
    for chart in made:
        root = ET.fromstring(chart.svg)
        assert root.tag == f"{SVG}svg" and root.get("role") == "img"
        title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
        assert title.text == chart.title and desc.text == chart.desc
        assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
        ids = [e.get("id") for e in root.iter() if e.get("id")]
        assert len(ids) == len(set(ids))
        assert chart.alt.startswith(chart.title)
        # no inline CSS (the site's CSP forbids it): presentation attributes instead
        assert "style=" not in chart.svg and "<style" not in chart.svg
        assert 'fill="' in chart.svg and 'stroke="' in chart.svg
    assert "At the cut (theta 0.40)" in made[2].desc
    assert "Cut at 5: 16 of 30 at or above it." in made[3].desc
    again = charts.score_histogram({3: 5, 4: 9, 5: 12, 6: 4}, cut=5, max_score=8)
    assert again.svg == made[3].svg


def test_reused_item_figures_carry_nothing_from_one_item_to_the_next():
    """The ICC and option-trace figures are drawn again for every item (for speed): a chart must
    not show the previous item's options or points, and drawing the same input again gives the
    same SVG. The slimmed SVG keeps every reference resolvable."""
    four = [("A", True, [0.2, 0.4, 0.6, 0.8, 0.9]), ("B", False, [0.3, 0.3, 0.2, 0.1, 0.05]),
            ("C", False, [0.3, 0.2, 0.1, 0.05, 0.03]), ("D", False, [0.2, 0.1, 0.1, 0.05, 0.02])]
    two = [("A", True, [0.2, 0.4, 0.6, 0.8, 0.9]), ("B", False, [0.8, 0.6, 0.4, 0.2, 0.1])]
    first = charts.option_trace_lines("Q1", four)
    second = charts.option_trace_lines("Q2", two)
    texts = [t.text for t in ET.fromstring(second.svg).iter(f"{SVG}text")]
    assert "A (key)" in texts and "B" in texts and "C" not in texts and "D" not in texts
    assert charts.option_trace_lines("Q1", four).svg == first.svg
    theta = np.linspace(-4, 4, 81)
    p = 1 / (1 + np.exp(-theta))
    with_points = charts.item_characteristic_curve("Q1", theta, p, [-1, 1], [0.3, 0.7], [50, 50],
                                                   model="2pl")
    without = charts.item_characteristic_curve("Q2", theta, p, model="rasch")
    texts = [t.text for t in ET.fromstring(without.svg).iter(f"{SVG}text")]
    assert "RASCH curve" in texts and "observed (ability groups)" not in texts
    assert "observed (ability groups)" in with_points.svg and "2PL curve" in with_points.svg
    for chart in (first, second, with_points, without):
        root = ET.fromstring(chart.svg)
        ids = {e.get("id") for e in root.iter() if e.get("id")}
        refs = re.findall(r'(?:xlink:href="#|url\(#)([^")]+)', chart.svg)
        assert refs and set(refs) <= ids
        assert "<metadata" not in chart.svg and "<g>" not in chart.svg
        assert not any(g.attrib.keys() <= {"id"} for g in root.iter(f"{SVG}g"))


def test_charts_drawn_in_a_process_pool_are_the_charts_drawn_here(monkeypatch):
    """``draw_many`` (the report's item charts) gives the same SVGs, in order, from a pool of
    processes as in this one; it names a request that is not a chart, and a bad setting."""
    theta = np.linspace(-4, 4, 81)
    p = 1 / (1 + np.exp(-theta))
    requests = [
        ("option_trace_lines", ("Q1", [("A", True, [0.2, 0.4, 0.6, 0.8, 0.9]),
                                       ("B", False, [0.8, 0.6, 0.4, 0.2, 0.1])]), {}),
        ("item_characteristic_curve", ("Q1", theta, p, [-1, 1], [0.3, 0.7], [50, 50]),
         {"model": "2pl"}),
        ("score_histogram", ({3: 5, 4: 9},), {"cut": 4}),
    ]
    here = charts.draw_many(requests, workers=1)
    pooled = charts.draw_many(requests, workers=2)
    assert [c.svg for c in pooled] == [c.svg for c in here]
    assert here[0].title == "Option trace lines of Q1"
    with pytest.raises(ValueError, match="'open' is not a chart"):
        charts.draw_many([("open", ("/etc/passwd",), {})], workers=1)
    monkeypatch.setenv("MICROCRED_CHART_WORKERS", "two")
    with pytest.raises(ValueError, match="MICROCRED_CHART_WORKERS must be a whole number"):
        charts.chart_workers(400)
    monkeypatch.setenv("MICROCRED_CHART_WORKERS", "1")
    assert charts.chart_workers(400) == 1
    monkeypatch.setenv("MICROCRED_CHART_WORKERS", "2")
    assert charts.chart_workers(charts.POOL_FROM - 1) == 1  # too few to be worth a pool
    monkeypatch.delenv("MICROCRED_CHART_WORKERS")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr("microcred.workers.busy_cpus", lambda: 0.0)
    assert charts.chart_workers(400) == 2  # by default one per idle CPU

@sqlite_only
def test_the_command_writes_the_tables(demo, db, settings, monkeypatch, tmp_path):
    from assessment.cli import main

    exam, _ = demo
    monkeypatch.setenv("MICROCRED_DATABASE_URL", settings.database_url)
    archive, doc = tmp_path / "r.zip", tmp_path / "r.json"
    result = CliRunner().invoke(main, ["report", "item-analysis", "--exam", exam.code,
                                       "--csv-zip", str(archive), "--json", str(doc)])
    assert result.exit_code == 0, result.output
    assert "items.csv" in zipfile.ZipFile(archive).namelist()
    assert json.loads(doc.read_text())["exam"] == exam.code
    nowhere = CliRunner().invoke(main, ["report", "item-analysis", "--exam", exam.code])
    assert nowhere.exit_code == 2 and "--pdf" in nowhere.output
    missing = CliRunner().invoke(main, ["report", "item-analysis", "--exam", "NOPE", "--json", str(doc)])
    assert missing.exit_code != 0 and "no exam NOPE" in missing.output


def test_score_distribution_of_long_forms_counts_totals_beyond_49():
    """Totals above 49 points were refused as one "item" of the engine's 0..49 categories."""
    matrix, params = simulate(100, 200)  # two 60-item forms
    exam = Exam(id=1, code="LONG", title="Long exam", pass_percent=60.0)
    report = report_from_matrix(ReportScope(exam), matrix, params, with_charts=False)
    totals = np.nansum(matrix.scores, axis=1).astype(int)
    assert report.distribution.n == 200 and report.distribution.max == totals.max()
    assert report.distribution.frequencies == {int(s): int((totals == s).sum()) for s in np.unique(totals)}
    assert [f.n_items for f in report.forms] == [60, 60]


def test_the_pdf_copy_of_a_chart_anchors_every_label_at_its_start():
    """WeasyPrint draws a centred or end-anchored SVG label through a PDF object of its own
    (4,000 of them in a 200-item report); the PDF's copy of a chart moves each such label to
    start where the anchor put it, by the font's advance widths, and changes nothing else."""
    theta = np.linspace(-4, 4, 81)
    chart = charts.item_characteristic_curve("Q1", theta, 1 / (1 + np.exp(-theta)),
                                             [-1, 1], [0.3, 0.7], [50, 50], model="2pl")
    anchored = re.findall(r'<text [^>]*text-anchor="(?:middle|end)"[^>]*>[^<]*</text>', chart.svg)
    assert len(anchored) >= 8  # tick labels and axis titles
    pdf_svg = chart.pdf_svg
    assert 'text-anchor="middle"' not in pdf_svg and 'text-anchor="end"' not in pdf_svg
    before = ET.fromstring(chart.svg)
    after = ET.fromstring(pdf_svg)
    b_texts, a_texts = list(before.iter(f"{SVG}text")), list(after.iter(f"{SVG}text"))
    assert [t.text for t in a_texts] == [t.text for t in b_texts]
    for b, a in zip(b_texts, a_texts):
        assert a.get("y") == b.get("y") and a.get("transform") == b.get("transform")
        width = charts._text_width(b.text, float(b.get("font-size")[:-2]), "DejaVu Sans")
        share = {"middle": 0.5, "end": 1.0}.get(b.get("text-anchor"), 0.0)
        assert float(a.get("x")) == pytest.approx(float(b.get("x")) - share * width, abs=0.06)
    # the y-axis title is rotated about its anchor point: it moves along its own baseline
    rotated = [a for a in a_texts if a.get("transform")]
    assert rotated and all(a.get("text-anchor") in (None, "start") for a in rotated)
    # widths are the font's: a longer label is wider, "−4" (a minus sign) wider than "4"
    assert charts._text_width("ability (theta)", 9, "DejaVu Sans") > \
        charts._text_width("0.5", 9, "DejaVu Sans") > 0
    assert charts._text_width("−4", 9, "DejaVu Sans") > charts._text_width("4", 9, "DejaVu Sans")
    # everything but the labels' x is unchanged
    strip = re.compile(r'<text [^>]*>')
    assert strip.sub("", pdf_svg) == strip.sub("", chart.svg)


def test_workers_default_to_the_idle_cpus_and_the_setting_overrides(monkeypatch):
    """Workers pay only on idle CPUs: by default one process per idle CPU (CPUs less those other
    work keeps busy), at most MAX_WORKERS; the settings override."""
    from assessment.psych import report_output

    monkeypatch.delenv("MICROCRED_CHART_WORKERS", raising=False)
    monkeypatch.delenv("MICROCRED_PDF_WORKERS", raising=False)

    def machine(cpus, load):  # load: as a load average would count it, this process included
        monkeypatch.setattr("os.cpu_count", lambda: cpus)
        monkeypatch.setattr("microcred.workers.busy_cpus", lambda: max(0.0, load - 1.0))

    machine(2, 1.0)  # quiet: this process alone
    assert charts.chart_workers(400) == 2 and report_output.pdf_workers(200) == 2
    assert charts.chart_workers(charts.POOL_FROM - 1) == 1
    assert report_output.pdf_workers(report_output.PARALLEL_FROM - 1) == 1
    machine(2, 1.7)  # a neighbour most of the time: no core to spare
    assert charts.chart_workers(400) == 1 and report_output.pdf_workers(200) == 1
    machine(2, 16.0)  # the shared sandbox on a busy day
    assert charts.chart_workers(400) == 1 and report_output.pdf_workers(200) == 1
    machine(8, 3.0)
    assert report_output.pdf_workers(200) == charts.MAX_WORKERS == report_output.MAX_WORKERS == 4
    machine(64, 0.2)
    assert charts.chart_workers(400) == 4 and report_output.pdf_workers(200) == 4
    machine(1, 0.0)
    assert charts.chart_workers(400) == 1 and report_output.pdf_workers(200) == 1
    machine(2, 16.0)
    monkeypatch.setenv("MICROCRED_PDF_WORKERS", "3")
    assert report_output.pdf_workers(200) == 3
    monkeypatch.setenv("MICROCRED_PDF_WORKERS", "three")
    with pytest.raises(ValueError, match="MICROCRED_PDF_WORKERS must be a whole number"):
        report_output.pdf_workers(200)


def test_item_runs_cover_every_item_once_in_order_the_first_shortened_by_the_front():
    from assessment.psych.report_output import FRONT_WEIGHT, item_runs

    for n, chunks in [(200, 2), (200, 4), (41, 3), (5, 2), (3, 3), (2, 5), (1, 2), (7, 1)]:
        runs = item_runs(n, chunks)
        assert [i for r in runs for i in r] == list(range(n))
        assert len(runs) == min(chunks, n) and all(len(r) >= 1 for r in runs)
    runs = item_runs(200, 2)
    # the front matter weighs 0.2 of the items: this process's share (front + first run) and
    # the worker's are equal
    assert len(runs[0]) + FRONT_WEIGHT * 200 == pytest.approx(len(runs[1]), abs=1)
    assert [len(r) for r in item_runs(200, 4)] == [24, 59, 58, 59]


def test_remembered_label_measures_are_the_svg_renderers_own():
    """Charts remember each label's measure across figures (matplotlib's cache is per renderer,
    and every savefig makes a new one); what is remembered must be what the renderer measures,
    for every size, weight and family asked, and generic families as the rc settings resolve."""
    import matplotlib
    from matplotlib.backends.backend_svg import RendererSVG
    from matplotlib.font_manager import FontProperties

    from assessment.psych import charts

    renderer = RendererSVG(100, 100, io.StringIO())
    for family in ("DejaVu Sans", "sans-serif", "monospace"):
        for size in (7, 9):
            for weight in ("normal", "bold"):
                prop = FontProperties(family=family, size=size, weight=weight)
                for text in ("ability (theta)", "−4", "0.5", "A (key)"):
                    assert RendererSVG.get_text_width_height_descent(renderer, text, prop, False) \
                        == charts._SVG_MEASURE(renderer, text, prop, False)
    with matplotlib.rc_context({"font.sans-serif": ["DejaVu Sans Mono"]}):
        prop = FontProperties(family="sans-serif", size=9)
        # measured above under the default rc: a monospaced font is wider
        mono = RendererSVG.get_text_width_height_descent(renderer, "ability (theta)", prop, False)
        assert mono == charts._SVG_MEASURE(renderer, "ability (theta)", prop, False)


def test_busy_cpus_sees_a_busy_neighbour_and_not_this_process_s_past(monkeypatch):
    """The CPUs busy now, measured while this process sleeps: a process spinning on one CPU
    counts about one (on a machine with a CPU to spare), and work this process did just before
    the measurement counts nothing (the load average still held it for a minute)."""
    import multiprocessing

    from microcred import workers

    with monkeypatch.context() as m:  # no /proc/stat: the load average less this process
        m.setattr(workers, "_cpu_times", lambda: None)
        m.setattr("os.getloadavg", lambda: (2.5, 2.0, 1.0))
        assert workers.busy_cpus() == 1.5
    if workers._cpu_times() is None:
        pytest.skip("no /proc/stat on this platform")
    # Other processes (the suite's other worker) come and go: a try counts only when a whole
    # CPU was free before the neighbour started, and one of a few tries must see it; a
    # busy_cpus that never sees a neighbour fails every try that had room for one.
    seen, tries_with_room = [], 0
    for _ in range(6):
        _spin(0.3)  # this process's own recent work
        quiet = workers.busy_cpus()
        if quiet > (os.cpu_count() or 1) - 1:
            time.sleep(0.5)
            continue
        tries_with_room += 1
        spinner = multiprocessing.get_context("fork").Process(target=_spin, args=(3.0,))
        spinner.start()
        try:
            time.sleep(0.2)
            busy = workers.busy_cpus()
        finally:
            spinner.terminate()
            spinner.join()
        seen.append((round(quiet, 2), round(busy, 2)))
        if busy >= quiet + 0.5:
            return
    if not tries_with_room:
        pytest.skip("no CPU to spare to see a neighbour start in 6 tries")
    pytest.fail(f"a neighbour spinning on a free CPU was not seen: (quiet, busy) {seen}")


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
