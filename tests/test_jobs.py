"""Background jobs on huey (issue 14, "Calibration from delivered data"): starting a calibration
queues a run that a ``microcred worker`` process calibrates; the run records queued, running,
finished or failed with its progress; a retried job for a finished run does nothing; errors are
recorded on the run. A real worker (huey's consumer, in a subprocess) on the SQLite backend and
on the machine's Redis; the rest calls the job function directly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from assessment.config import Settings
from assessment.demo_program import load_demo
from assessment.exams import Exam
from assessment.jobs import build_queue
from assessment.psych import jobs as psych_jobs
from assessment.psych.calibration import check_max_iter
from assessment.psych.jobs import CALIBRATE, calibrate_run
from assessment.psych.runs import (
    CalibrationEstimate,
    CalibrationRefused,
    CalibrationRun,
    approve_run,
    queue_run,
    reject_run,
)
from assessment.users import User
from itembank.models import ItemParameter
from microcred.jobs import JobError, JobQueue, make_huey

ROOT = Path(__file__).resolve().parent.parent
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def demo(db):
    """The demo program with 120 simulated past candidates; the exam and its psychometrician
    (whose password is ``demo.password``)."""
    creds = load_demo(db, history=120)
    db.commit()
    email, password = next((e, p) for role, e, p in creds if role == "psychometrician")
    user = db.scalar(select(User).where(User.email == email))
    user.demo_password = password
    return db.scalar(select(Exam)), user


def _fresh(db, run_id: int) -> CalibrationRun:
    db.commit()  # end the test session's snapshot: the job wrote on its own connection
    db.expire_all()
    return db.get(CalibrationRun, run_id)


def _queued(db, exam, user, *, max_iter: int = 200) -> int:
    db.commit()  # a fresh snapshot: the app may have written since this session last read
    run = queue_run(db, exam, model="2pl", max_iter=check_max_iter(max_iter), run_by_id=user.id)
    db.commit()
    return run.id


def _n_estimates(db, run_id: int) -> int:
    return db.scalar(select(func.count()).select_from(CalibrationEstimate)
                     .where(CalibrationEstimate.run_id == run_id))


# ---------------------------------------------------------------- a real worker


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"the Redis backend needs Redis on 127.0.0.1:6379, which did not answer: {exc}")


@SQLITE_ONLY
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_worker_process_calibrates_a_queued_run(backend, demo, db, database_url, tmp_path):
    if backend == "redis":
        _redis_or_skip()
    exam, user = demo
    instance = tmp_path / "worker-instance"
    settings = Settings(instance_dir=instance, database_url=database_url, secret_key="k",
                        redis_url=REDIS_URL if backend == "redis" else None,
                        jobs_queue=f"test-{uuid.uuid4().hex[:12]}")
    from assessment.database import Database

    database = Database(database_url)
    queue = build_queue(settings, database.session)
    assert queue.backend == backend and CALIBRATE in queue.names
    run_id = _queued(db, exam, user)
    queue.enqueue(CALIBRATE, run_id)
    assert _fresh(db, run_id).job_state == "queued"  # nothing runs it in this process
    if backend == "sqlite":
        assert (instance / "jobs.db").is_file()  # the embedded queue: a file under instance/

    env = {**os.environ, "PYTHONPATH": str(ROOT), "MICROCRED_DATABASE_URL": database_url,
           "MICROCRED_INSTANCE_DIR": str(instance), "MICROCRED_SECRET_KEY": "k",
           "MICROCRED_JOBS_QUEUE": settings.jobs_queue}
    env.pop("MICROCRED_REDIS_URL", None)
    if backend == "redis":
        env["MICROCRED_REDIS_URL"] = REDIS_URL
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "assessment.cli", "worker"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120  # a generous bound for a busy CI machine, not a goal
        while time.monotonic() < deadline and _fresh(db, run_id).job_state in {"queued", "running"}:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGINT)  # huey's graceful stop
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        queue.huey.flush()
        database.dispose()
    output = log.read_text()
    run = _fresh(db, run_id)
    assert run.job_state == "finished", output
    assert f"job worker on the {backend} queue" in output and CALIBRATE in output
    assert run.status == "proposed" and run.error is None
    assert run.started_at is not None and run.finished_at >= run.started_at
    assert run.iterations >= 1 and run.fit_summary["n_persons"] == 120
    assert run.progress["iteration"] == run.iterations and run.progress["max_iter"] == 200
    assert _n_estimates(db, run_id) == run.fit_summary["n_items"] == 31  # the demo's item versions
    assert db.scalar(select(func.count()).select_from(ItemParameter)) == 0  # only proposed


# ---------------------------------------------------------------- the job itself


@SQLITE_ONLY
def test_a_retried_job_for_a_finished_run_does_nothing(demo, db, database):
    exam, user = demo
    run_id = _queued(db, exam, user)
    reported = []
    real = psych_jobs._write_progress
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(psych_jobs, "_write_progress",
                   lambda session, rid, progress: (reported.append(progress), real(session, rid, progress)))
        with database.session() as session:
            assert calibrate_run(session, run_id) == "finished"
    assert reported and reported[0]["iteration"] == 1  # the first EM cycle is reported at once
    first = _fresh(db, run_id)
    estimates = db.scalars(select(CalibrationEstimate.id).where(CalibrationEstimate.run_id == run_id)).all()
    finished_at = first.finished_at

    with database.session() as session:
        assert calibrate_run(session, run_id) == "finished"  # huey retried it, or it was queued twice
    again = _fresh(db, run_id)
    assert again.finished_at == finished_at and again.iterations == first.iterations
    assert db.scalars(select(CalibrationEstimate.id).where(CalibrationEstimate.run_id == run_id)).all() == estimates
    with database.session() as session:
        assert calibrate_run(session, 999_999) == "missing"


@SQLITE_ONLY
def test_a_failed_calibration_is_recorded_on_the_run_and_cannot_be_decided(demo, db, database):
    exam, user = demo
    run_id = _queued(db, exam, user)
    # the data cannot be calibrated any more (e.g. its results were invalidated after queueing)
    from assessment.psych.errors import AnalysisError

    def no_data(*args, **kwargs):
        raise AnalysisError(f"exam {exam.code} has no finalized results yet, so there is nothing to analyse")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(psych_jobs, "calibrate_exam", no_data)
        with database.session() as session:
            assert calibrate_run(session, run_id) == "failed"  # not raised: a retry would fail alike
    run = _fresh(db, run_id)
    assert run.job_state == "failed" and "has no finalized results yet" in run.error
    assert _n_estimates(db, run_id) == 0 and not run.approvable and not run.rejectable
    with pytest.raises(CalibrationRefused, match=f"calibration run {run_id} failed"):
        approve_run(db, run, by=user)
    db.rollback()
    with pytest.raises(CalibrationRefused, match="only a finished run"):
        reject_run(db, _fresh(db, run_id), by=user, reason="no")
    db.rollback()


@SQLITE_ONLY
def test_an_unexpected_error_is_recorded_and_raised_so_huey_retries(demo, db, database):
    exam, user = demo
    run_id = _queued(db, exam, user)

    def database_gone(*args, **kwargs):
        raise ConnectionError("server closed the connection unexpectedly")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(psych_jobs, "calibrate_exam", database_gone)
        with database.session() as session, pytest.raises(ConnectionError):
            calibrate_run(session, run_id)
    run = _fresh(db, run_id)
    assert run.job_state == "failed"
    assert run.error == ("the calibration stopped on an unexpected error (ConnectionError: server "
                         "closed the connection unexpectedly); it will be tried again")
    assert _n_estimates(db, run_id) == 0
    with database.session() as session:  # the retry succeeds and clears the error
        assert calibrate_run(session, run_id) == "finished"
    run = _fresh(db, run_id)
    assert run.job_state == "finished" and run.error is None and _n_estimates(db, run_id) == 31


# ---------------------------------------------------------------- the queue and the pages


def test_the_queue_follows_the_settings(tmp_path):
    sqlite = make_huey(instance_dir=tmp_path / "inst", redis_url=None, name="q1")
    assert type(sqlite).__name__ == "SqliteHuey" and not sqlite.immediate
    assert (tmp_path / "inst" / "jobs.db").is_file()
    redis = make_huey(instance_dir=tmp_path, redis_url="redis://127.0.0.1:1/0", name="q2")
    assert type(redis).__name__ == "RedisHuey" and not redis.immediate
    assert make_huey(instance_dir=tmp_path, redis_url=None, immediate=True).immediate
    # a queue that cannot be reached refuses the job with a message naming the backend
    queue = JobQueue(redis, lambda: None)
    with pytest.raises(JobError, match=r"the job queue \(redis\) could not take job 'psych.calibrate_run'"):
        queue.enqueue(CALIBRATE, 1)
    with pytest.raises(JobError, match="there is no job named 'nope'"):
        queue.enqueue("nope")


def test_a_bad_queue_name_is_refused(monkeypatch, tmp_path):
    from assessment.config import ConfigError

    monkeypatch.setenv("MICROCRED_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("MICROCRED_SECRET_KEY", "k")
    monkeypatch.setenv("MICROCRED_JOBS_QUEUE", "a queue; with spaces")
    with pytest.raises(ConfigError, match="MICROCRED_JOBS_QUEUE must be"):
        Settings.from_env()


@SQLITE_ONLY
def test_the_run_page_shows_progress_until_the_job_finishes(app, client, demo, db, signin, csrf_token):
    exam, user = demo
    signin(client, user, user.demo_password)
    run_id = _queued(db, exam, user, max_iter=50)
    page = client.get(f"/psych/runs/{run_id}").get_data(as_text=True)
    assert '<p id="run-status" role="status" aria-live="polite">Queued: waiting for a job worker' in page
    assert '<progress id="run-progress" max="50" value="0">' in page and "job-progress.js" in page
    assert "Approve run" not in page and "Reject run" not in page
    listed = client.get(f"/psych/exams/{exam.code}/runs").get_data(as_text=True)
    assert "Queued: waiting for a job worker" in listed and "stopped at 0" not in listed
    form = client.get(f"/psych/exams/{exam.code}/calibrate").get_data(as_text=True)
    assert "did not converge, Queued" not in form and "Queued: waiting for a job worker" in form
    assert client.get(f"/psych/runs/{run_id}/progress.json").json == {
        "run": run_id, "state": "queued", "iteration": 0, "max_iter": 50, "loglik": None,
        "change": None, "error": None, "message": "Queued: waiting for a job worker to start it."}
    token = csrf_token(client)
    refused = client.post(f"/psych/runs/{run_id}/approve", data={"csrf_token": token})
    assert refused.status_code == 422
    assert f"calibration run {run_id} is waiting for a worker" in refused.get_data(as_text=True)

    db.commit()
    db.execute(CalibrationRun.__table__.update().where(CalibrationRun.id == run_id).values(
        job_state="running", progress={"iteration": 7, "max_iter": 50, "loglik": -1234.5, "change": 0.01}))
    db.commit()
    running = client.get(f"/psych/runs/{run_id}/progress.json").json
    assert running["state"] == "running" and running["message"] == "Running: EM cycle 7 of at most 50."
    assert '<progress id="run-progress" max="50" value="7">' in client.get(f"/psych/runs/{run_id}").get_data(as_text=True)
    assert client.get("/psych/runs/999999/progress.json").status_code == 404

    # the queue cannot be reached: the run is recorded as failed with the reason, not lost
    with app.app_context():
        app.extensions["microcred.jobs"] = JobQueue(
            make_huey(instance_dir=app.config["MICROCRED"].instance_dir,
                      redis_url="redis://127.0.0.1:1/0", name="unreachable"), lambda: None)
    failed = client.post(f"/psych/exams/{exam.code}/calibrate",
                         data={"model": "2pl", "csrf_token": token}, follow_redirects=True)
    html = failed.get_data(as_text=True)
    assert "This calibration failed" in html and "the job queue (redis) could not take job" in html
    failed_id = int(failed.request.path.rsplit("/", 1)[1])
    assert _fresh(db, failed_id).job_state == "failed" and _n_estimates(db, failed_id) == 0

    del app.extensions["microcred.jobs"]  # back to the tests' immediate queue
    done = client.post(f"/psych/exams/{exam.code}/calibrate",
                       data={"model": "2pl", "csrf_token": token}, follow_redirects=True)
    html = done.get_data(as_text=True)
    assert "is stored as proposed" in html and "Proposed: awaiting approval" in html
    assert "job-progress.js" not in html and 'id="run-status"' not in html


@pytest.mark.browser
@SQLITE_ONLY
def test_the_run_page_follows_the_job_in_the_browser(demo, db, database, live_server, page):
    """The page of a queued run passes axe, announces the job's state in its live region, and
    shows the estimates by itself once a worker has finished the run."""
    from playwright.sync_api import expect

    from tests.test_axe import _audit

    exam, user = demo
    run_id = _queued(db, exam, user)
    base = live_server.url
    page.goto(base + "/signin")
    page.fill("#email", user.email)
    page.fill("#password", user.demo_password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{base}/psych/runs/{run_id}")
    status = page.locator("#run-status")
    expect(status).to_have_text("Queued: waiting for a job worker to start it.")
    expect(page.get_by_label("EM cycles done")).to_be_visible()
    assert _audit(page, "queued run page") == []
    with database.session() as session:  # what the worker does
        assert calibrate_run(session, run_id) == "finished"
    expect(page.get_by_role("button", name=f"Approve run {run_id}")).to_be_visible(timeout=20_000)
    expect(page.locator("#run-status")).to_have_count(0)
    assert _audit(page, "finished run page") == []


@SQLITE_ONLY
def test_the_sweeper_queues_again_a_run_whose_job_was_lost(demo, db):
    import datetime as dt

    from assessment.psych.jobs import requeue_stale_runs

    exam, user = demo
    queued_id = _queued(db, exam, user)
    running_id = _queued(db, exam, user)
    queued_at = _fresh(db, queued_id).created_at
    db.execute(CalibrationRun.__table__.update().where(CalibrationRun.id == running_id).values(
        job_state="running", started_at=queued_at,
        progress={"iteration": 3, "max_iter": 200, "at": (queued_at + dt.timedelta(minutes=25)).isoformat()}))
    db.commit()
    sent = []

    def enqueue(name, *args):
        sent.append((name, *args))

    def sweep(minutes):
        return requeue_stale_runs(db, enqueue, now=queued_at + dt.timedelta(minutes=minutes))

    assert sweep(5) == [] and sent == []  # a worker may simply be busy
    assert sweep(11) == [queued_id] and sent == [(CALIBRATE, queued_id)]
    assert sweep(12) == []  # noted on the run: one copy per wait, not one per sweep
    assert sweep(22) == [queued_id]
    # the running run reported progress at minute 25: lost only 30 minutes after that
    assert sweep(50) == [queued_id] and sweep(56) == [running_id]
    db.execute(CalibrationRun.__table__.update().values(job_state="finished"))
    db.commit()
    assert sweep(500) == []  # finished runs are never queued again


def test_the_sweeper_leader_queues_the_reminder_emails_on_their_schedule(monkeypatch, tmp_path):
    """Reminders (credentials.reminders) are queued by the sweeper's leader: not at all without
    an SMTP server, then once per MICROCRED_REMINDERS_EVERY_SECONDS."""
    import types

    from assessment import cli
    from microcred.environment import reminders_every_seconds

    settings = Settings(instance_dir=tmp_path / "inst", database_url="sqlite://",
                        secret_key="k")
    (tmp_path / "inst").mkdir()
    db = types.SimpleNamespace(session=lambda: None)  # queuing opens no database session
    huey = build_queue(settings, db.session).huey

    def queued() -> list[str]:
        return [task.name for task in huey.pending()]

    monkeypatch.setattr(cli, "_reminders_queued_at", [])
    monkeypatch.delenv("MICROCRED_SMTP_HOST", raising=False)
    cli._queue_reminders(db, settings)
    assert queued() == [] and reminders_every_seconds() is None

    monkeypatch.setenv("MICROCRED_SMTP_HOST", "mail.example.org")
    cli._queue_reminders(db, settings)
    cli._queue_reminders(db, settings)  # within the hour: not again
    assert queued() == ["credentials.reminders"]
    monkeypatch.setattr(cli, "_reminders_queued_at", [cli.time.monotonic() - 3601])
    cli._queue_reminders(db, settings)
    assert queued() == ["credentials.reminders"] * 2

    monkeypatch.setenv("MICROCRED_REMINDERS_EVERY_SECONDS", "0")
    assert reminders_every_seconds() is None
    monkeypatch.setenv("MICROCRED_REMINDERS_EVERY_SECONDS", "hourly")
    with pytest.raises(ValueError, match="MICROCRED_REMINDERS_EVERY_SECONDS must be a whole"):
        reminders_every_seconds()


def test_the_heartbeat_interval_is_configured_with_bounds(monkeypatch):
    from microcred.environment import heartbeat_seconds
    from proctoring.wiring import connection_lost_after_s

    monkeypatch.delenv("MICROCRED_HEARTBEAT_SECONDS", raising=False)
    assert heartbeat_seconds() == 30 and connection_lost_after_s() == 75
    monkeypatch.setenv("MICROCRED_HEARTBEAT_SECONDS", "10")
    assert heartbeat_seconds() == 10 and connection_lost_after_s() == 25
    for bad, message in (("1", "from 2 to 120"), ("600", "from 2 to 120"),
                         ("ten", "whole number")):
        monkeypatch.setenv("MICROCRED_HEARTBEAT_SECONDS", bad)
        with pytest.raises(ValueError, match=message):
            heartbeat_seconds()


def test_a_job_is_queued_once_the_commit_has_given_back_the_write_lock(db, database):
    """``enqueue_after_commit`` queues when the transaction has ended and its connection is back
    in the pool, not in SQLAlchemy's after_commit (before the connection goes back): on SQLite
    the process's write lock is held until then, so the queue's own write, or a job run at once,
    would hold up every other writer. The queue here writes from another thread, as another
    request would meanwhile; it must not wait. A rolled-back transaction queues nothing."""
    import threading

    from assessment.jobs import use_process_queue
    from microcred.jobs import enqueue_after_commit

    waited: list[float | None] = []

    class OtherWriter:
        def enqueue(self, name, *args):
            took: list[float] = []

            def write() -> None:
                t = time.perf_counter()
                with database.session() as s:
                    s.execute(select(func.count()).select_from(User))  # BEGIN IMMEDIATE on SQLite
                    s.commit()
                took.append(time.perf_counter() - t)

            thread = threading.Thread(target=write, daemon=True)
            thread.start()
            thread.join(5)
            waited.append((name, *args, took[0] if took else None))

    use_process_queue(OtherWriter, pin=True)
    with database.session() as s:
        s.execute(select(func.count()).select_from(User))
        enqueue_after_commit(s, "test.rolled_back", 1)
        s.rollback()
        s.execute(select(func.count()).select_from(User))
        enqueue_after_commit(s, "test.job", 2)
        s.commit()
    assert [w[:2] for w in waited] == [("test.job", 2)]
    assert waited[0][2] is not None and waited[0][2] < 2, "the other writer waited for the lock"
