"""The console's change marks (``proctoring.wiring.console_marks``): each kind of write that
changes what the console shows of a session moves that session's mark, and only its; what
moves with the clock alone (a heartbeat on a page already online, time passing) does not, or
shows through the cursor's due instant: a camera that falls silent past its limit is flagged
in a delta poll with nothing written. On SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from assessment.delivery import service as delivery
from microcred.querycount import count_queries
from proctoring import actions, events, hooks, identity, liveness
from proctoring.assignments import assign
from proctoring.models import ProctorSession
from proctoring.sessions import get_session, open_session, session_for_attempt
from proctoring.wiring import DeliveryControl, console_marks, identity_gate
from tests.proctoring.test_query_budgets import _answer


def _start(db, candidate, exam):
    attempt = delivery.start_attempt(db, candidate, exam, grace_seconds=5)
    db.commit()
    return session_for_attempt(db, attempt.id), attempt


def _version(db, sid: int) -> int:
    db.commit()
    return db.scalar(select(ProctorSession.console_version).where(ProctorSession.id == sid))


def test_each_kind_of_change_moves_its_sessions_mark_and_no_other(
        db, proctored, make_user, vault, face_jpeg, blank_jpeg, clock):
    ns = proctored({"identity": "none", "snapshot_interval_s": 30})
    checked = proctored({"identity": "automated+proctor"}, code="P-ID")
    assign(db, ns.proctor, checked.exam, ns.admin)
    a, attempt_a = _start(db, ns.candidate, ns.exam)
    b, _attempt_b = _start(db, make_user("candidate"), ns.exam)
    waiting = make_user("candidate")
    identity_gate(db, waiting, checked.exam, url_for=lambda *x, **k: "/identity")
    c = open_session(db, waiting.id, checked.exam.id)
    db.commit()
    t0 = a.state_changed_at
    clock.set(t0 + dt.timedelta(seconds=1))

    def marks():
        db.commit()  # a new read transaction: see what was just committed
        return console_marks(db, ns.proctor, clock.now())

    def moved(change) -> set[int]:
        before = marks()
        change()
        db.commit()
        after = marks()
        assert set(after) == set(before)
        return {sid for sid in after if after[sid] != before[sid]}

    assert set(marks()) == {a.id, b.id, c.id}
    va = _version(db, a.id)
    # a flag (risk moves too, but a flag the risk does not count still moves the counter)
    assert moved(lambda: events.raise_flags(db, get_session(db, a.id), [
        hooks.FlagSpec("paste", "1", "low", "pasted text")])) == {a.id}
    assert _version(db, a.id) == va + 1
    for n in (2, 3, 4):  # the fourth paste adds no risk (three counted per rule)
        events.raise_flags(db, get_session(db, a.id), [hooks.FlagSpec("paste", str(n), "low", "p")])
        db.commit()
    risk = get_session(db, a.id).risk_score
    assert moved(lambda: events.raise_flags(db, get_session(db, a.id), [
        hooks.FlagSpec("paste", "5", "low", "pasted again")])) == {a.id}
    assert get_session(db, a.id).risk_score == risk
    # a snapshot: one count, folded into the statement that notes the page was heard from
    v = _version(db, b.id)
    assert moved(lambda: events.record_snapshot(db, get_session(db, b.id, lock=True), vault,
                                                seq=1, image=face_jpeg)) == {b.id}
    assert _version(db, b.id) == v + 1
    # an identity submission (its checks and the transition to identity_pending)
    assert moved(lambda: identity.submit(db, get_session(db, c.id, lock=True), vault,
                                         selfie=blank_jpeg, id_document=blank_jpeg,
                                         by=waiting)) == {c.id}
    # a proctor's pause and resume (transitions; the stored clock too)
    assert moved(lambda: actions.pause(db, get_session(db, b.id, lock=True), DeliveryControl(),
                                       by=ns.proctor, reason="noise")) == {b.id}
    assert moved(lambda: actions.resume(db, get_session(db, b.id, lock=True), DeliveryControl(),
                                        by=ns.proctor, reason="quiet")) == {b.id}
    # the candidate's saves and moves (the attempt's save sequence and position), an extension
    item = attempt_a.item_order[0]
    assert moved(lambda: delivery.save_responses(
        db, delivery.get_attempt(db, attempt_a.id, lock=True),
        [delivery.SaveRequest(1, item, _answer(db, item), False)], grace_seconds=5)) == {a.id}
    assert moved(lambda: delivery.save_responses(
        db, delivery.get_attempt(db, attempt_a.id, lock=True), [], position=1,
        grace_seconds=5)) == {a.id}
    assert moved(lambda: delivery.extend_attempt(
        db, delivery.get_attempt(db, attempt_a.id, lock=True), seconds=60,
        by_user_id=ns.proctor.id, reason="late start")) == {a.id}
    # the connection: first heard from (the heartbeats' flusher writes last_seen_at) moves it;
    # more heartbeats while online move nothing (the page counts "last seen" on itself)
    def heard(at):
        # a heartbeat as the liveness flusher writes it (its own statement, run here rather
        # than by its background thread, which would write on into the next test)
        def write():
            db.execute(liveness._UPDATE, [{"sid": a.id, "seen": at}])
        return write

    now = clock.now()
    assert moved(heard(now)) == {a.id}
    clock.advance(20)
    assert moved(heard(clock.now())) == set()
    assert moved(heard(clock.now() + dt.timedelta(seconds=5))) == set()
    # online turning to lost is the clock's alone: the mark read at a later poll shows it (a
    # and b were heard from, by the heartbeats and by b's snapshot; c never was)
    before = marks()
    clock.advance(10 * 60)
    after = marks()
    assert {sid for sid in after if after[sid] != before[sid]} == {a.id, b.id}
    # a message or a note changes nothing the console shows
    assert moved(lambda: actions.message(db, get_session(db, a.id), by=ns.proctor,
                                         text="Please face the camera.")) == set()
    assert moved(lambda: actions.note(db, get_session(db, a.id), by=ns.proctor,
                                      text="looked away twice")) == set()
    # the end: a terminated session's mark moves, and it stays on the console as finished
    assert moved(lambda: actions.terminate(db, get_session(db, a.id, lock=True),
                                           DeliveryControl(), by=ns.proctor,
                                           reason="a second screen")) == {a.id}


def test_a_camera_falling_silent_is_flagged_in_a_delta_poll_with_nothing_written(
        app, db, proctored, signin, vault, face_jpeg, clock):
    """Nothing but the page's heartbeats is written after the first poll: the cursor's due
    instants alone bring the row back, once when the camera is overdue and once when it is
    past its limit and flagged; in between, a poll is the sign-in and the marks."""
    ns = proctored({"identity": "none", "snapshot_interval_s": 30})
    ps, _attempt = _start(db, ns.candidate, ns.exam)
    t0 = ps.state_changed_at
    clock.set(t0 + dt.timedelta(seconds=2))
    events.record_snapshot(db, get_session(db, ps.id, lock=True), vault, seq=1, image=face_jpeg)
    db.commit()
    proctor = app.test_client()
    signin(proctor, ns.proctor)
    database = app.extensions["microcred.database"]

    def poll(cursor, etag=None):
        db.rollback()
        events.touch(db, get_session(db, ps.id), clock.now())  # the heartbeat's last-seen
        db.commit()
        headers = {"If-None-Match": etag} if etag else {}
        return proctor.get("/api/proctoring/console", query_string={"cursor": cursor},
                           headers=headers)

    clock.set(t0 + dt.timedelta(seconds=10))
    full = proctor.get("/api/proctoring/console").json
    (row,) = full["sessions"]
    assert row["camera"]["flagged"] is False and row["flags"]["count"] == 0
    cursor, etag = full["cursor"], full["etag"]
    # 30 s on: silent for 38 s, not yet two intervals: nothing to send, nothing built
    clock.set(t0 + dt.timedelta(seconds=40))
    with count_queries(database.engine, database.write_engine) as sent:
        same = poll(cursor, etag)
    assert same.status_code == 304 and len(sent) == 2, sent.report()
    # two intervals (60 s) silent: overdue, the row comes back though nothing was written
    clock.set(t0 + dt.timedelta(seconds=63))
    overdue = poll(cursor, etag).json
    (row,) = overdue["changed"]
    assert row["camera"]["silent_s"] >= 60 and row["camera"]["flagged"] is False
    cursor, etag = overdue["cursor"], overdue["etag"]
    assert poll(cursor, etag).status_code == 304
    # past the limit (90 s): flagged, the flag due shown in the row's flags and risk
    clock.set(t0 + dt.timedelta(seconds=95))
    late = poll(cursor, etag).json
    (row,) = late["changed"]
    assert row["camera"]["flagged"] is True and row["camera"]["silent_s"] > 90
    assert row["flags"]["count"] == 1 and row["risk"] == 3
    assert "no camera snapshot received" in row["flags"]["latest"]
    # nothing more is due from the clock: later polls are empty until something is written
    clock.set(t0 + dt.timedelta(seconds=400))
    assert poll(late["cursor"], late["etag"]).status_code == 304
