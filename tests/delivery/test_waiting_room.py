"""The start spike (issue 15, goal 4), on SQLite and PostgreSQL: a start is idempotent (a double
start, or two racing, make one attempt); beyond ``MICROCRED_START_RATE`` a start waits in line,
answered at once with its place and a ``Retry-After``; the line admits in the order candidates
asked, at the rate; and the exam's time starts when the candidate is admitted, not before."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from assessment.delivery import service, waiting_room
from assessment.delivery.models import Attempt, StartTicket


def _attempts(db, exam) -> list[Attempt]:
    db.commit()
    return list(db.scalars(select(Attempt).where(Attempt.exam_id == exam.id)
                           .execution_options(populate_existing=True)))


def _start(client, exam, token):
    return client.post(f"/exams/{exam.code}/start", data={"agree": "yes", "csrf_token": token})


def _poll(client, exam, token):
    return client.post(f"/exams/{exam.code}/start", json={}, headers={"X-CSRFToken": token})


@pytest.fixture
def line_app(settings, db):
    """The app with a waiting room admitting one start per second."""
    from assessment.app import create_app

    application = create_app(dataclasses.replace(settings, start_rate=1.0), TESTING=True,
                             JOBS_IMMEDIATE=True)
    yield application
    application.extensions["microcred.database"].dispose()


# ---------------------------------------------------------------- idempotent starts


def test_a_double_start_makes_one_attempt(client, db, make_user, build_exam, signin, csrf_token):
    exam = build_exam(db, code="TWICE")
    candidate = make_user("candidate")
    signin(client, candidate)
    token = csrf_token(client)
    first, second = _start(client, exam, token), _start(client, exam, token)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert len(_attempts(db, exam)) == 1


def test_a_start_that_loses_the_race_goes_to_the_winners_attempt(
        client, db, make_user, build_exam, signin, csrf_token, monkeypatch):
    """Two starts of one candidate at once: both checked "no attempt in progress" before either
    committed. The database's one-in-progress index refuses the second insert; its request
    answers with the attempt that won."""
    exam = build_exam(db, code="RACE")
    candidate = make_user("candidate")
    signin(client, candidate)
    token = csrf_token(client)
    won = _start(client, exam, token)
    real, blind = service.in_progress_attempt, {"calls": 0}

    def missed_the_winner(session, user, exam_):
        blind["calls"] += 1
        return None if blind["calls"] <= 2 else real(session, user, exam_)

    monkeypatch.setattr(service, "in_progress_attempt", missed_the_winner)
    lost = _start(client, exam, token)
    assert blind["calls"] == 3  # the view's check, start_attempt's, then the recovery's
    assert lost.status_code == 302 and lost.headers["Location"] == won.headers["Location"]
    assert len(_attempts(db, exam)) == 1


def test_the_database_holds_one_attempt_in_progress_per_candidate_and_exam(db, make_user,
                                                                          build_exam):
    exam = build_exam(db, code="ONE")
    candidate = make_user("candidate")
    form_id = exam.forms[0].form_id
    now = dt.datetime.now(dt.UTC)

    def attempt(status: str) -> Attempt:
        return Attempt(candidate_id=candidate.id, exam_id=exam.id, form_id=form_id, seed=1,
                       item_order=[], option_orders={}, started_at=now, status=status,
                       time_limit_seconds=60, agreement_accepted_at=now, deadline_at=now)

    db.add_all([attempt("finalized"), attempt("finalized"), attempt("in_progress")])
    db.commit()  # finished attempts are not limited: retakes
    db.add(attempt("in_progress"))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


# ---------------------------------------------------------------- the line


def test_the_line_admits_in_the_order_asked_at_the_rate(db, make_user, build_exam, clock):
    exam = build_exam(db, code="LINE")
    people = [make_user("candidate") for _ in range(7)]
    t0 = clock.now()

    def ask(n: int):
        out = waiting_room.turn(db, people[n].id, exam.id, rate=2.0, now=clock.now())
        db.commit()
        return out

    # two per second; a second's worth goes at once (slots t0, +0.5, +1.0), then the line
    turns = [ask(n) for n in range(6)]
    assert [t.admitted for t in turns] == [True, True, True, False, False, False]
    assert [t.place for t in turns[3:]] == [1, 2, 3]
    assert [t.retry_after_s for t in turns[3:]] == [2, 2, 3]  # slots +1.5, +2.0, +2.5
    assert [t.admit_at - t0 for t in turns[3:]] == [dt.timedelta(seconds=s)
                                                     for s in (1.5, 2.0, 2.5)]
    # asking again keeps the place: no new slot, no second ticket
    assert ask(5).place == 3 and ask(4).place == 2
    assert db.scalar(select(func.count()).select_from(StartTicket)) == 3

    clock.advance(1.5)
    assert ask(4) == dataclasses.replace(turns[4], place=1, retry_after_s=1)  # 3 went ahead
    admitted = ask(3)
    assert admitted.admitted and admitted.ticket_id is not None
    # not yet started, the admitted ticket keeps its slot whenever its holder comes back
    clock.advance(60)
    assert ask(3).admitted and ask(4).admitted and ask(5).admitted
    waiting_room.started(db, admitted, attempt_id=_an_attempt(db, exam, people[3]))
    db.commit()
    assert db.scalar(select(StartTicket.attempt_id).where(
        StartTicket.id == admitted.ticket_id)) is not None
    # a newcomer after the spike finds the line idle again
    assert ask(6).admitted


def _an_attempt(db, exam, candidate) -> int:
    return service.start_attempt(db, candidate, exam, grace_seconds=2.0).id


def test_no_waiting_room_at_rate_zero(db, make_user, build_exam):
    exam = build_exam(db, code="NOLINE")
    now = dt.datetime.now(dt.UTC)
    assert all(waiting_room.turn(db, make_user("candidate").id, exam.id, rate=0, now=now).admitted
               for _ in range(5))
    assert db.scalar(select(func.count()).select_from(StartTicket)) == 0


# ---------------------------------------------------------------- through the web


def test_a_waiting_candidates_time_starts_when_admitted(line_app, db, make_user, build_exam,
                                                          signin, csrf_token, clock):
    exam = build_exam(db, code="WAIT", minutes=10)
    clients = [line_app.test_client() for _ in range(3)]
    tokens = []
    for c in clients:
        signin(c, make_user("candidate"))
        tokens.append(csrf_token(c))
    t0 = clock.now()
    # one start per second, a second's burst at once: the third waits (its slot: t0 + 2 s)
    assert _start(clients[0], exam, tokens[0]).status_code == 302
    assert _start(clients[1], exam, tokens[1]).status_code == 302
    waiting = _start(clients[2], exam, tokens[2])
    assert waiting.status_code == 202
    assert waiting.headers["Retry-After"] == "2"
    page = waiting.get_data(as_text=True)
    status = re.search(r'<p id="waiting-status"[^>]*>', page).group(0)
    assert 'aria-live="polite"' in status and 'data-place="1"' in status
    assert "You are number 1 in line" in page and "Your exam time has not started" in page
    assert len(_attempts(db, exam)) == 2

    # the waiting page's script asks again (JSON): still waiting, nothing started
    polled = _poll(clients[2], exam, tokens[2])
    assert polled.status_code == 202 and polled.json == {"status": "waiting", "place": 1,
                                                          "retry_after": 2}
    assert len(_attempts(db, exam)) == 2

    clock.advance(30)  # admitted at +2 s, but back only at +30 s: the time starts now
    admitted = _poll(clients[2], exam, tokens[2])
    assert admitted.status_code == 200 and admitted.json["status"] == "admitted"
    attempt_id = int(admitted.json["url"].rsplit("/", 1)[1])
    db.commit()
    attempt = db.get(Attempt, attempt_id)
    assert attempt.started_at == t0 + dt.timedelta(seconds=30)
    assert attempt.deadline_at == attempt.started_at + dt.timedelta(minutes=10)
    ticket = db.scalar(select(StartTicket))
    assert ticket.joined_at == t0 and ticket.attempt_id == attempt_id
    # the runner's clock: the whole ten minutes left
    state = clients[2].get(f"/api/attempts/{attempt_id}/state").json
    assert state["clock"]["remaining_ms"] == 10 * 60 * 1000
    # once started, a start resumes at once, past any line
    again = _start(clients[2], exam, tokens[2])
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/{attempt_id}")


def test_a_poll_without_the_agreement_is_refused_in_json(line_app, db, make_user, build_exam,
                                                          signin, csrf_token):
    exam = build_exam(db, code="NOAGREE")
    c = line_app.test_client()
    signin(c, make_user("candidate"))
    resp = _poll(c, exam, csrf_token(c))
    assert resp.status_code == 422 and resp.json["field"] == "agree", resp.json
    assert _attempts(db, exam) == []
