"""The item-analysis report's PDF as a background job (issue 14: "Long runs (calibration,
reports) go to a background job so the page never blocks, with progress shown"): "Generate
PDF" stores a request and queues the job, the job renders and stores the PDF in the database
with who asked, when and the data range, the page follows it and links the download, and asking
again while one is queued or running reuses it. The job runs in-process (huey's immediate mode
in the app; the job function directly otherwise), as in tests/test_jobs.py."""
from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from assessment.demo_program import load_demo
from assessment.exams import Exam
from assessment.psych import report as report_module
from assessment.psych.jobs import render_report_pdf, requeue_stale_pdfs
from assessment.psych.report_pdfs import RENDER_PDF, ReportPdf, request_pdf
from assessment.users import User

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def demo(db, monkeypatch):
    creds = load_demo(db, history=30)
    db.commit()
    # charts are checked by tests/test_psych_report.py; without them the job takes a second
    real = report_module.report_from_matrix
    monkeypatch.setattr(report_module, "report_from_matrix",
                        lambda *a, **kw: real(*a, **{**kw, "with_charts": False}))
    email = next(e for role, e, _ in creds if role == "psychometrician")
    password = next(p for role, _, p in creds if role == "psychometrician")
    return db.scalar(select(Exam)), db.scalar(select(User).where(User.email == email)), password


def _n_pdfs(db) -> int:
    db.commit()
    return db.scalar(select(func.count()).select_from(ReportPdf))


def test_generate_pdf_queues_a_job_that_stores_the_pdf_and_the_page_links_it(
        client, demo, db, signin, csrf_token):
    exam, user, password = demo
    signin(client, user, password)
    form = exam.forms[0].form.code
    page = client.get(f"/psych/exams/{exam.code}/report?form={form}").get_data(as_text=True)
    assert "Generate PDF" in page
    resp = client.post(f"/psych/exams/{exam.code}/report/pdfs",
                       data={"csrf_token": csrf_token(client), "form": form})
    assert resp.status_code == 303
    pdf_id = int(re.search(r"/report-pdfs/(\d+)$", resp.headers["Location"]).group(1))
    db.commit()
    row = db.get(ReportPdf, pdf_id)
    assert row.state == "finished", row.error
    assert row.requested_by_id == user.id and row.shown_scope == {"form": form}
    assert row.n_candidates > 0 and row.data_range and row.n_pages >= 3 + row.n_items
    status = client.get(f"/psych/report-pdfs/{pdf_id}").get_data(as_text=True)
    assert "Download the PDF" in status and row.data_range in status
    assert client.get(f"/psych/report-pdfs/{pdf_id}/progress.json").json["state"] == "finished"
    download = client.get(f"/psych/report-pdfs/{pdf_id}/download")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(download.data))
    assert len(reader.pages) == row.n_pages
    assert f"form {form}" in reader.pages[0].extract_text()
    # the report page lists it
    listed = client.get(f"/psych/exams/{exam.code}/report").get_data(as_text=True)
    assert f"Download PDF {pdf_id}" in listed
    # a finished PDF is a snapshot: asking again renders a new one
    again = client.post(f"/psych/exams/{exam.code}/report/pdfs",
                        data={"csrf_token": csrf_token(client), "form": form})
    assert again.headers["Location"] != resp.headers["Location"]


def test_asking_again_while_queued_reuses_the_job(client, demo, db, signin, csrf_token,
                                                 monkeypatch):
    exam, user, password = demo
    # no worker has picked the job up yet: the queued jobs are only noted
    from assessment.psych import report_pdfs

    queued = []
    monkeypatch.setattr(report_pdfs, "enqueue_after_commit", lambda s, *args: queued.append(args))
    row, reused = request_pdf(db, exam, {"since": "2020-01-01"}, by_id=user.id)
    db.commit()
    assert not reused and row.state == "queued"
    same, reused = request_pdf(db, exam, {"since": "2020-01-01"}, by_id=user.id)
    db.commit()
    assert reused and same.id == row.id
    other, reused = request_pdf(db, exam, {"since": "2020-01-02"}, by_id=user.id)
    db.commit()
    assert not reused and other.id != row.id
    assert queued == [(RENDER_PDF, row.id), (RENDER_PDF, other.id)]
    signin(client, user, password)
    n = _n_pdfs(db)
    resp = client.post(f"/psych/exams/{exam.code}/report/pdfs",
                       data={"csrf_token": csrf_token(client), "since": "2020-01-01"})
    assert resp.headers["Location"].endswith(f"/report-pdfs/{row.id}") and _n_pdfs(db) == n
    page = client.get(f"/psych/report-pdfs/{row.id}").get_data(as_text=True)
    assert "Queued: waiting for a job worker" in page and "job-progress.js" in page
    assert client.get(f"/psych/report-pdfs/{row.id}/download").status_code == 409
    # the worker runs it; a duplicated job then does nothing
    assert render_report_pdf(db, row.id) == "finished"
    db.commit()
    first = db.get(ReportPdf, row.id).sha256
    assert render_report_pdf(db, row.id) == "finished"
    db.commit()
    assert db.get(ReportPdf, row.id).sha256 == first
    assert render_report_pdf(db, 999999) == "missing"


def test_a_report_without_data_fails_with_the_reason_and_bad_scopes_are_refused(
        client, demo, db, signin, csrf_token):
    exam, user, password = demo
    row, _ = request_pdf(db, exam, {"since": "2100-01-01"}, by_id=user.id)
    db.commit()  # the tests' process queue runs the job now
    db.expire_all()
    assert db.get(ReportPdf, row.id).state == "failed"
    assert render_report_pdf(db, row.id) == "failed"  # run again: fails again, the same way
    db.commit()
    db.expire_all()
    failed = db.get(ReportPdf, row.id)
    assert failed.state == "failed" and failed.error and failed.pdf is None
    signin(client, user, password)
    n = _n_pdfs(db)
    token = csrf_token(client)
    bad = client.post(f"/psych/exams/{exam.code}/report/pdfs",
                      data={"csrf_token": token, "since": "2026-02-01", "until": "2026-01-01"})
    assert bad.status_code == 422
    nope = client.post(f"/psych/exams/{exam.code}/report/pdfs",
                       data={"csrf_token": token, "form": "NO-SUCH-FORM"})
    assert nope.status_code == 422 and _n_pdfs(db) == n
    assert client.get("/psych/report-pdfs/999999").status_code == 404


def test_the_sweeper_queues_again_a_pdf_whose_job_was_lost(demo, db, monkeypatch):
    import datetime as dt

    from assessment.psych import report_pdfs
    from microcred.db import utcnow

    exam, user, _ = demo
    monkeypatch.setattr(report_pdfs, "enqueue_after_commit", lambda *args: None)  # a lost job
    row, _ = request_pdf(db, exam, {}, by_id=user.id)
    db.commit()
    queued = []
    assert requeue_stale_pdfs(db, lambda *args: queued.append(args)) == []
    later = utcnow() + dt.timedelta(minutes=11)
    assert requeue_stale_pdfs(db, lambda *args: queued.append(args), now=later) == [row.id]
    assert queued == [(RENDER_PDF, row.id)]
    assert requeue_stale_pdfs(db, lambda *args: queued.append(args), now=later) == []
