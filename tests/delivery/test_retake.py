"""Retake rules per exam (issue 9, finding 21): typed policy data checked when set, enforced
on the server when an attempt starts with a message saying when the candidate may retake, and
shown on the exam page. On SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from assessment.delivery import service
from assessment.delivery.eligibility import eligibility
from assessment.delivery.models import Attempt
from assessment.exams import Exam
from assessment.retakes import RetakePolicyError, parse_retake_policy, set_retake_policy
from microcred.db import utcnow
from microcred.policy import PolicyError


def _submit_unanswered(db, candidate, exam, at):
    """A failing attempt (nothing answered), started and submitted at ``at``."""
    attempt = service.start_attempt(db, candidate, exam, now=at, grace_seconds=5)
    service.submit_attempt(db, attempt, now=at + dt.timedelta(minutes=5), grace_seconds=5)
    db.commit()
    return attempt


@pytest.mark.parametrize("raw, field", [
    ({"max_attempts": 0}, "max_attempts"),
    ({"max_attempts": "3"}, "max_attempts"),
    ({"max_attempts": True}, "max_attempts"),
    ({"wait_hours": -1}, "wait_hours"),
    ({"wait_hours": 10**9}, "wait_hours"),
    ({"wait_hours": 1.5}, "wait_hours"),
    ({"wait_days": 3}, "wait_days"),
    ([3], "object"),
])
def test_malformed_rules_are_refused_when_set_and_nothing_is_stored(db, build_exam, raw, field):
    exam = build_exam(db, code="R-BAD")
    with pytest.raises(RetakePolicyError, match=field):
        set_retake_policy(exam, raw)
    # also when the whole policy is assigned (the model validates every write)
    with pytest.raises(RetakePolicyError, match=field):
        exam.policy = {"retake": raw}
    db.rollback()
    assert db.get(Exam, exam.id).policy == {}
    # the old untyped key is no section of the policy (microcred.policy)
    with pytest.raises(PolicyError, match="unknown section 'max_attempts'"):
        build_exam(db, code="R-OLD", policy={"max_attempts": 2})


def test_rules_are_typed_and_described_in_words():
    rules = parse_retake_policy({"max_attempts": 1, "wait_hours": 48})
    assert (rules.max_attempts, rules.wait_hours) == (1, 48)
    assert rules.describe() == [
        "You may take this exam at most 1 time.",
        "After an attempt that does not pass, you wait 2 days before you may retake it."]
    assert parse_retake_policy(None).describe() == []
    assert parse_retake_policy({"wait_hours": 5}).describe()[0].endswith("wait 5 hours before "
                                                                           "you may retake it.")


def test_wait_after_a_failed_attempt_is_enforced_with_the_date(db, build_exam, make_user):
    exam = build_exam(db, code="R-WAIT", policy={"retake": {"wait_hours": 72}})
    candidate = make_user("candidate")
    at = dt.datetime(2026, 11, 30, 13, 59, 30, tzinfo=dt.UTC)
    _submit_unanswered(db, candidate, exam, at)  # finalized 14:04:30
    too_soon = at + dt.timedelta(hours=24)
    with pytest.raises(service.Conflict) as refused:
        service.start_attempt(db, candidate, exam, now=too_soon, grace_seconds=5)
    # 72 h after 14:04:30, rounded up to the minute the candidate is told
    assert refused.value.message == "You may retake this exam from 3 December 2026 14:05 UTC."
    assert refused.value.extra["retake_from"] == "2026-12-03T14:05:00+00:00"
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Attempt)) == 1
    just_before = dt.datetime(2026, 12, 3, 14, 4, 59, tzinfo=dt.UTC)
    assert not eligibility(db, candidate.id, exam, just_before).may_start
    again = service.start_attempt(db, candidate, exam,
                                  now=dt.datetime(2026, 12, 3, 14, 5, tzinfo=dt.UTC), grace_seconds=5)
    assert again.status == "in_progress"


def _pass(db, candidate, exam, now):
    """An attempt with every item answered by its key (build_exam's keys: B; A and C)."""
    attempt = service.start_attempt(db, candidate, exam, now=now, grace_seconds=5)
    saves = [service.SaveRequest(i + 1, item["id"],
                                 "B" if item["type"] == "single_choice" else ["A", "C"], False)
             for i, item in enumerate(service.runner_state(db, attempt, now, grace_seconds=5)["items"])]
    service.save_responses(db, attempt, saves, now=now, grace_seconds=5)
    result = service.submit_attempt(db, attempt, now=now, grace_seconds=5)
    db.commit()
    assert result.passed
    return attempt


def test_no_wait_after_a_pass_but_the_limit_counts_every_attempt(db, build_exam, make_user):
    exam = build_exam(db, code="R-LIM", policy={"retake": {"max_attempts": 2, "wait_hours": 240}})
    candidate = make_user("candidate")
    now = utcnow()
    _pass(db, candidate, exam, now)
    assert eligibility(db, candidate.id, exam, now).may_start  # no wait after a pass
    _submit_unanswered(db, candidate, exam, now)
    verdict = eligibility(db, candidate.id, exam, now + dt.timedelta(days=365))
    assert verdict.refusal == "You have used all 2 attempts at this exam."
    assert verdict.attempts_left == 0
    with pytest.raises(service.Conflict, match="used all 2 attempts"):
        service.start_attempt(db, candidate, exam, now=now + dt.timedelta(days=365), grace_seconds=5)


def test_exam_page_shows_the_rules_and_start_refuses_before_any_gate(
        client, db, build_exam, make_user, signin, csrf_token):
    exam = build_exam(db, code="R-PAGE", policy={"retake": {"max_attempts": 3, "wait_hours": 24}})
    candidate = make_user("candidate")
    signin(client, candidate)
    token = csrf_token(client)
    page = client.get(f"/exams/{exam.code}").get_data(as_text=True)
    assert "at most 3 times" in page and "wait 1 day" in page
    assert "You have 3 attempts left." in page
    started = client.post(f"/exams/{exam.code}/start", data={"agree": "yes", "csrf_token": token})
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[1])
    sub = client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True},
                      headers={"X-CSRFToken": token})
    assert sub.status_code == 200
    page = client.get(f"/exams/{exam.code}").get_data(as_text=True)
    assert "You have 2 attempts left." in page
    assert "You may retake this exam from " in page and "Start the exam" not in page
    again = client.post(f"/exams/{exam.code}/start", data={"agree": "yes", "csrf_token": token})
    assert again.status_code == 409
    assert "You may retake this exam from " in again.get_data(as_text=True)
    db.commit()
    assert db.scalar(select(func.count()).select_from(Attempt)) == 1


def test_terminated_candidate_waits_and_is_not_sent_to_a_new_identity_check(
        app, client, db, build_exam, signin, csrf_token, make_user):
    """The finding's case: a proctor terminates, the candidate tries again at once."""
    from types import SimpleNamespace

    from proctoring import actions, identity
    from proctoring.assignments import assign
    from proctoring.console import CONTROL
    from proctoring.models import ProctorSession

    ns = SimpleNamespace(candidate=make_user("candidate"), proctor=make_user("proctor"),
                         exam=build_exam(db, code="R-TERM", policy={
                             "proctoring": {"identity": "proctor", "snapshot_interval_s": 0},
                             "retake": {"wait_hours": 168}}))
    assign(db, ns.proctor, ns.exam, make_user("admin"))
    db.commit()
    signin(client, ns.candidate)
    token = csrf_token(client)
    gate = client.post(f"/exams/{ns.exam.code}/start", data={"agree": "yes", "csrf_token": token})
    assert "/proctoring/identity/" in gate.headers["Location"]
    ps = db.scalar(select(ProctorSession))
    identity.decide(db, ps, admit=True, reason="checked in person", by=ns.proctor)
    db.commit()
    started = client.post(f"/exams/{ns.exam.code}/start", data={"agree": "yes", "csrf_token": token})
    assert "/attempts/" in started.headers["Location"]
    db.refresh(ps)
    actions.terminate(db, ps, CONTROL, by=ns.proctor, reason="a second person in the room")
    db.commit()
    again = client.post(f"/exams/{ns.exam.code}/start", data={"agree": "yes", "csrf_token": token})
    assert again.status_code == 409
    assert "You may retake this exam from " in again.get_data(as_text=True)
    db.commit()
    assert db.scalar(select(func.count()).select_from(ProctorSession)) == 1  # no new session


def test_cli_sets_and_checks_the_rules(db, build_exam, settings, monkeypatch):
    from assessment.cli import main

    exam = build_exam(db, code="R-CLI")
    monkeypatch.setenv("MICROCRED_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MICROCRED_INSTANCE_DIR", str(settings.instance_dir))
    ok = CliRunner().invoke(main, ["exam", "retakes", "R-CLI", "--max-attempts", "2",
                                   "--wait-hours", "48"])
    assert ok.exit_code == 0, ok.output
    assert "at most 2 times" in ok.output
    bad = CliRunner().invoke(main, ["exam", "retakes", "R-CLI", "--max-attempts", "0"])
    assert bad.exit_code != 0 and "max_attempts must be a whole number from 1" in bad.output
    db.expire_all()
    assert db.get(Exam, exam.id).policy["retake"] == {"max_attempts": 2, "wait_hours": 48}


def test_terminated_at_the_identity_check_waits_too(
        app, client, db, build_exam, signin, csrf_token, make_user):
    """Terminated before the attempt started: the gate refuses a fresh session until the wait
    ends, with the same words."""
    from proctoring import actions
    from proctoring.assignments import assign
    from proctoring.console import CONTROL
    from proctoring.models import ProctorSession

    candidate, proctor = make_user("candidate"), make_user("proctor")
    exam = build_exam(db, code="R-GATE", policy={
        "proctoring": {"identity": "proctor", "snapshot_interval_s": 0},
        "retake": {"wait_hours": 24}})
    assign(db, proctor, exam, make_user("admin"))
    db.commit()
    signin(client, candidate)
    token = csrf_token(client)
    client.post(f"/exams/{exam.code}/start", data={"agree": "yes", "csrf_token": token})
    ps = db.scalar(select(ProctorSession))
    actions.terminate(db, ps, CONTROL, by=proctor, reason="someone else sat down")
    db.commit()
    again = client.post(f"/exams/{exam.code}/start", data={"agree": "yes", "csrf_token": token})
    assert again.status_code == 409
    assert "You may retake this exam from " in again.get_data(as_text=True)
    db.commit()
    assert db.scalar(select(func.count()).select_from(ProctorSession)) == 1
