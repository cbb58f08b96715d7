"""Badge issuance as a job (docs/jobs.md, "Badge issuance"): a released pass records its badge as
owed (``credential_issuances``, pending) in the release's transaction and queues
``credentials.issue`` when that commits; the job issues once however often it runs (and however
many copies run at once); a failure is recorded with its reason, shown to the admin, and a retry
issues it; the sweeper queues again a badge left pending or failed. Jobs run at once here
(tests/conftest.py); tests/test_cli.py has the badge issued by a real worker process."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from assessment.jobs import use_process_queue
from credentials import issuance, issuers
from credentials.jobs import ISSUE, REQUEUE_AFTER, issue_job, requeue_stale_issuances
from credentials.models import Credential, Issuance
from microcred.jobs import load_jobs

KEY_FAILURE = "the issuer's signing key cannot be read (test)"


def _badged_exam(db, build_exam, cfg, code: str):
    exam = build_exam(db, code=code)
    issuance.create_achievement(db, cfg, code=f"{code}-B", name=f"{code} badge",
                                description="Pass it.", exam_id=exam.id)
    db.commit()
    return exam


def _owed(db, result_id: int) -> Issuance | None:
    db.rollback()  # see what the jobs committed on their own sessions
    return db.scalar(select(Issuance).where(Issuance.result_id == result_id))


def _n_credentials(db, result_id: int) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Credential)
                     .where(Credential.result_id == result_id))


def _run(database, result_id: int) -> str:
    with database.session() as session:
        return issue_job(session, result_id)


@pytest.fixture
def broken_key(monkeypatch):
    """Signing fails as it would with an unreadable key; ``broken_key.undo()`` repairs it."""
    def fail(*args, **kwargs):
        raise issuance.IssuanceError(KEY_FAILURE)

    monkeypatch.setattr(issuers, "private_key", fail)
    return monkeypatch


def test_the_job_issues_once_however_often_it_runs(db, database, make_user, build_exam,
                                                    take_exam, cred_cfg):
    exam = _badged_exam(db, build_exam, cred_cfg, "JOB1")
    result = take_exam(db, make_user("candidate"), exam)
    owed = _owed(db, result.id)
    assert (owed.state, owed.attempts, owed.error) == ("issued", 1, None)
    assert _n_credentials(db, result.id) == 1

    assert _run(database, result.id) == "issued"  # huey retried it, or the sweeper re-queued it
    assert _run(database, result.id) == "issued"
    assert _n_credentials(db, result.id) == 1
    # a copy queued before the first finished finds the credential: issue_for_result's early return
    owed.state = "pending"
    db.commit()
    assert _run(database, result.id) == "issued"
    assert _n_credentials(db, result.id) == 1 and _owed(db, result.id).attempts == 2

    failed = take_exam(db, make_user("candidate"), exam, correct=False)
    assert _owed(db, failed.id) is None  # a fail owes nothing
    assert _run(database, failed.id) == "missing"
    spec = load_jobs()[ISSUE]
    assert (spec.retries, spec.retry_delay, spec.retry_backoff) == (4, 10, 3)  # 10, 30, 90, 270 s


def test_a_release_that_rolls_back_queues_nothing(db, make_user, build_exam, take_exam,
                                                  cred_cfg, monkeypatch):
    exam = _badged_exam(db, build_exam, cred_cfg, "JOB2")
    queued = []

    class Recorder:
        def enqueue(self, name, *args):
            queued.append((name, *args))

    use_process_queue(Recorder, pin=True)
    first, second = make_user("candidate"), make_user("candidate")
    with monkeypatch.context() as mp:
        mp.setattr(db, "commit", db.rollback)  # the release's transaction rolls back
        take_exam(db, first, exam)
    assert queued == []
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Issuance)) == 0
    result = take_exam(db, second, exam)  # and one that commits
    assert queued == [(ISSUE, result.id)]
    assert _owed(db, result.id).state == "pending"


def test_a_failure_is_recorded_and_a_retry_issues(db, database, make_user, build_exam, take_exam,
                                                  cred_cfg, broken_key):
    exam = _badged_exam(db, build_exam, cred_cfg, "JOB3")
    result = take_exam(db, make_user("candidate"), exam)
    assert result.passed  # the release stands: the badge is owed, not lost
    owed = _owed(db, result.id)
    assert (owed.state, owed.attempts) == ("failed", 1)
    assert owed.error == f"IssuanceError: {KEY_FAILURE}"
    assert _n_credentials(db, result.id) == 0
    with pytest.raises(issuance.IssuanceError):  # raised: huey retries it
        _run(database, result.id)
    assert _owed(db, result.id).attempts == 2

    broken_key.undo()  # the key is readable again: huey's next retry issues
    assert _run(database, result.id) == "issued"
    owed = _owed(db, result.id)
    assert (owed.state, owed.error, owed.attempts) == ("issued", None, 3)
    assert _n_credentials(db, result.id) == 1


def test_the_admin_page_shows_a_failed_issuance(app, client, db, make_user, build_exam,
                                               take_exam, cred_cfg, broken_key, signin):
    exam = _badged_exam(db, build_exam, cred_cfg, "JOB4")
    who = make_user("candidate", name="Unlucky Passer")
    result = take_exam(db, who, exam)
    signin(client, make_user("admin"))
    page = client.get("/admin/credentials").get_data(as_text=True)
    row = page[page.index(f'data-issuance="{result.id}"'):]
    row = row[:row.index("</tr>")]
    assert "Unlucky Passer" in row and "failed, will be tried again" in row
    assert KEY_FAILURE.replace("'", "&#39;") in row


def test_the_sweeper_queues_again_a_badge_left_owed(db, database, make_user, build_exam,
                                                     take_exam, cred_cfg, broken_key):
    exam = _badged_exam(db, build_exam, cred_cfg, "JOB5")
    result = take_exam(db, make_user("candidate"), exam)
    queued_at = _owed(db, result.id).queued_at
    queued = []

    def enqueue(name, *args):
        queued.append((name, *args))

    assert requeue_stale_issuances(db, enqueue, now=queued_at + REQUEUE_AFTER / 2) == []
    later = queued_at + REQUEUE_AFTER + dt.timedelta(seconds=1)
    assert requeue_stale_issuances(db, enqueue, now=later) == [result.id]
    assert queued == [(ISSUE, result.id)] and _owed(db, result.id).queued_at == later
    assert requeue_stale_issuances(db, enqueue, now=later) == []  # once per wait
    broken_key.undo()
    assert _run(database, result.id) == "issued"  # the re-queued job
    assert requeue_stale_issuances(db, enqueue, now=later + 2 * REQUEUE_AFTER) == []
    assert len(queued) == 1 and _n_credentials(db, result.id) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_copies_at_once_issue_one_credential(db, database, make_user, build_exam, take_exam,
                                                 cred_cfg, broken_key):
    """The second copy passes the early check before the first commits; the unique constraint
    on (result, achievement) stops its insert, and it finds the first's credential."""
    exam = _badged_exam(db, build_exam, cred_cfg, "JOB6")
    result = take_exam(db, make_user("candidate"), exam)  # owed (the key failed)
    broken_key.undo()
    real_issue = issuance.issue
    raced = []

    def issue_after_the_other_copy(session, *args, **kwargs):
        if not raced:  # the other copy commits its credential between our check and our insert
            raced.append("running")
            raced[0] = _run(database, result.id)
        return real_issue(session, *args, **kwargs)

    broken_key.setattr(issuance, "issue", issue_after_the_other_copy)
    assert _run(database, result.id) == "issued"
    assert raced == ["issued"]
    assert _n_credentials(db, result.id) == 1
    assert _owed(db, result.id).state == "issued"
