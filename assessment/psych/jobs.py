"""The workspace's background jobs: a calibration run is calibrated by a job worker, never in
the request that asked for it (:mod:`microcred.jobs`).

Starting a calibration stores a ``queued`` run (:func:`assessment.psych.runs.queue_run`) and
enqueues :func:`calibrate_run` with its id. The job marks the run ``running``, writes the EM
cycle it has reached to the run as it goes (the run page polls it), and stores the estimates
and the fit in one transaction that also marks the run ``finished``: a job that dies half-way
leaves no estimates behind, and a retried job for a finished run does nothing. A calibration
that cannot be done (no counted results, the engine refused the data) marks the run ``failed``
with the reason and is not retried; an unexpected error (the database went away) marks it
failed, says it will be tried again, and raises so huey retries it.

The item-analysis report's PDF is rendered the same way (:func:`render_report_pdf`, see
:mod:`assessment.psych.report_pdfs`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import math
import time
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assessment.exams import Exam
from assessment.psych.calibration import DEFAULT_MAX_ITER, calibrate_exam
from assessment.psych.errors import AnalysisError
from assessment.psych.report import build_report
from assessment.psych.report_output import render_pdf
from assessment.psych.report_pdfs import RENDER_PDF, ReportPdf, report_groups, report_scope
from assessment.psych.runs import ERROR_LENGTH, CalibrationRun, get_run, record_run
from microcred.db import utcnow
from microcred.jobs import job

log = logging.getLogger(__name__)

CALIBRATE = "psych.calibrate_run"
#: At most one progress write per this many seconds (each is a short transaction of its own).
PROGRESS_EVERY_SECONDS = 0.5
#: A run still queued this long after it was queued (or last re-queued), or running with no
#: progress reported for this long, lost its job (a worker killed mid-run, a queue emptied): the
#: sweeper queues it again (:func:`requeue_stale_runs`; the job is idempotent).
REQUEUE_QUEUED_AFTER = dt.timedelta(minutes=10)
REQUEUE_RUNNING_AFTER = dt.timedelta(minutes=30)


@job(CALIBRATE, retries=2, retry_delay=10)
def calibrate_run(session: Session, run_id: int) -> str:
    """Calibrate the queued run ``run_id`` and store its estimates; the run's job state after
    it (``finished``, ``failed``; ``missing`` when there is no such run)."""
    run = get_run(session, run_id)
    if run is None:
        log.warning("calibration job for run %s: there is no such run", run_id)
        return "missing"
    if run.job_state == "finished":  # a retried or duplicated job: the work is done
        session.rollback()
        return "finished"
    exam = session.get(Exam, run.exam_id)
    max_iter = int((run.options or {}).get("max_iter", DEFAULT_MAX_ITER))
    model = run.model
    run.job_state, run.started_at, run.error = "running", utcnow(), None
    run.progress = {"iteration": 0, "max_iter": max_iter}
    session.commit()

    last_write = [0.0]

    def progress(iteration: int, loglik: float, change: float) -> None:
        now = time.monotonic()
        if now - last_write[0] < PROGRESS_EVERY_SECONDS:
            return
        last_write[0] = now
        _write_progress(session, run_id, {
            "iteration": int(iteration), "max_iter": max_iter,
            "loglik": _number(loglik), "change": _number(change), "at": utcnow().isoformat(),
        })

    try:
        result = calibrate_exam(session, exam, model=model, max_iter=max_iter, progress=progress)
    except AnalysisError as exc:
        session.rollback()
        _fail(session, run_id, str(exc))
        return "failed"
    except Exception as exc:
        session.rollback()
        _fail(session, run_id, f"the calibration stopped on an unexpected error "
                               f"({type(exc).__name__}: {exc}); it will be tried again")
        raise

    run = get_run(session, run_id, for_update=True)  # one finisher, even if a job ran twice
    session.refresh(run)
    if run.job_state == "finished":
        session.rollback()
        return "finished"
    record_run(session, result, run_by_id=run.run_by_id, max_iter=max_iter, run=run)
    run.progress = {**(run.progress or {}), "iteration": int(result.fit.iterations),
                    "max_iter": max_iter}
    session.commit()
    return "finished"


def _write_progress(session: Session, run_id: int, progress: dict) -> None:
    session.execute(
        update(CalibrationRun)
        .where(CalibrationRun.id == run_id, CalibrationRun.job_state == "running")
        .values(progress=progress)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _fail(session: Session, run_id: int, message: str) -> None:
    message = message[:ERROR_LENGTH]
    log.warning("calibration run %s failed: %s", run_id, message)
    session.execute(
        update(CalibrationRun)
        .where(CalibrationRun.id == run_id, CalibrationRun.job_state != "finished")
        .values(job_state="failed", error=message, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _number(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def requeue_stale_runs(session: Session, enqueue: Callable[..., object], *,
                       now: dt.datetime | None = None) -> list[int]:
    """Queue again every run whose job seems lost (see ``REQUEUE_*``); the ids queued. Each
    re-queue is noted in the run's progress (``requeued_at``) and committed before the job is
    enqueued, so a sweep every 30 s does not pile up copies; a copy that runs anyway finds the
    run finished and does nothing."""
    now = now or utcnow()
    requeued = []
    stale = session.scalars(
        select(CalibrationRun).where(CalibrationRun.job_state.in_(("queued", "running")))
    ).all()
    for run in stale:
        progress = dict(run.progress or {})
        marks = [_when(progress.get("requeued_at")), _when(progress.get("at")), run.started_at,
                 run.created_at]
        last = max(m for m in marks if m is not None)
        limit = REQUEUE_RUNNING_AFTER if run.job_state == "running" else REQUEUE_QUEUED_AFTER
        if now - last < limit:
            continue
        progress["requeued_at"] = now.isoformat()
        run.progress = progress
        session.commit()
        log.warning("calibration run %s was %s with no sign of its job since %s: queued again",
                    run.id, run.job_state, last.isoformat())
        enqueue(CALIBRATE, run.id)
        requeued.append(run.id)
    session.commit()
    return requeued


def _when(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------- report PDFs


@job(RENDER_PDF, retries=1, retry_delay=30)
def render_report_pdf(session: Session, pdf_id: int) -> str:
    """Render the queued report PDF ``pdf_id`` and store it in its row; the row's state after
    (``finished``, ``failed``; ``missing`` when there is no such row). A finished row is left
    alone (a retried or duplicated job); a report that cannot be made (no results in the
    scope) fails with the reason and is not retried."""
    row = session.get(ReportPdf, pdf_id)
    if row is None:
        log.warning("report PDF job %s: there is no such PDF request", pdf_id)
        return "missing"
    if row.state == "finished":
        session.rollback()
        return "finished"
    row.state, row.started_at, row.error = "running", utcnow(), None
    row.progress = {"stage": "building the report's data"}
    session.commit()
    started = time.monotonic()

    def progress(stage: str, done: int = 0, total: int = 0) -> None:
        _pdf_progress(session, pdf_id, {"stage": stage, "done": done, "total": total,
                                        "at": utcnow().isoformat()})

    try:
        exam = session.get(Exam, row.exam_id)
        scope = report_scope(exam, row.scope)
        report = build_report(session, scope, groups=report_groups(session, scope),
                              with_charts=True, item_charts_later=True)
        session.rollback()  # end the read transaction before the long render
        progress("rendering the PDF")
        pdf = render_pdf(report, progress=lambda done, total: progress(
            "rendering the PDF in parts", done, total))
    except AnalysisError as exc:
        session.rollback()
        _pdf_fail(session, pdf_id, str(exc))
        return "failed"
    except Exception as exc:
        session.rollback()
        _pdf_fail(session, pdf_id, f"rendering stopped on an unexpected error "
                                   f"({type(exc).__name__}: {exc}); it will be tried again")
        raise
    from pypdf import PdfReader

    row = session.scalar(select(ReportPdf).where(ReportPdf.id == pdf_id).with_for_update())
    if row.state == "finished":
        session.rollback()
        return "finished"
    row.pdf = pdf
    row.size = len(pdf)
    row.sha256 = hashlib.sha256(pdf).hexdigest()
    row.n_pages = len(PdfReader(io.BytesIO(pdf)).pages)
    row.data_range = report.data_range[:100]
    row.n_candidates = report.n_candidates
    row.n_items = len(report.items)
    row.render_seconds = time.monotonic() - started
    row.state, row.finished_at, row.error = "finished", utcnow(), None
    row.progress = {"stage": "finished"}
    session.commit()
    return "finished"


def _pdf_progress(session: Session, pdf_id: int, progress: dict) -> None:
    session.execute(
        update(ReportPdf).where(ReportPdf.id == pdf_id, ReportPdf.state == "running")
        .values(progress=progress).execution_options(synchronize_session=False)
    )
    session.commit()


def _pdf_fail(session: Session, pdf_id: int, message: str) -> None:
    log.warning("report PDF %s failed: %s", pdf_id, message)
    session.execute(
        update(ReportPdf).where(ReportPdf.id == pdf_id, ReportPdf.state != "finished")
        .values(state="failed", error=message[:ERROR_LENGTH], finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()


def requeue_stale_pdfs(session: Session, enqueue: Callable[..., object], *,
                       now: dt.datetime | None = None) -> list[int]:
    """Queue again every report PDF whose job seems lost (queued or running with no sign of
    it for ``REQUEUE_*``), as :func:`requeue_stale_runs` does for runs."""
    now = now or utcnow()
    requeued = []
    for row in session.scalars(
        select(ReportPdf).where(ReportPdf.state.in_(("queued", "running")))
    ).all():
        progress = dict(row.progress or {})
        marks = [_when(progress.get("requeued_at")), _when(progress.get("at")), row.started_at,
                 row.requested_at]
        last = max(m for m in marks if m is not None)
        limit = REQUEUE_RUNNING_AFTER if row.state == "running" else REQUEUE_QUEUED_AFTER
        if now - last < limit:
            continue
        progress["requeued_at"] = now.isoformat()
        row.progress = progress
        session.commit()
        enqueue(RENDER_PDF, row.id)
        requeued.append(row.id)
    session.commit()
    return requeued
