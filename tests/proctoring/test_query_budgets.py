"""Query budgets of the hot paths: the statements one request sends, pinned on both databases.

The runner autosaves and beats every few seconds per candidate, its proctoring script pings and
uploads snapshots, and every proctor's console polls every 3 s over all sessions: these requests
are what a busy exam multiplies. Each budget here is exact, so a change that adds a statement
fails here, in review, and one that removes some lowers the budget with it (edit the number).
The console's budget must not grow with the number of sessions (no N+1).

Counted: every statement the request sends, the sign-in check included; not counted: BEGIN,
COMMIT and the like (see ``microcred.querycount``).
"""
from __future__ import annotations

import pytest
from sqlalchemy import event, select

from microcred.querycount import Queries, count_connections, count_queries

#: statements per request, the same on SQLite and PostgreSQL
BUDGETS = {
    # the hot path (assessment.delivery.hotpath): the sign-in is checked inside these statements
    "autosave": 2,  # UPDATE attempt RETURNING (sign-in, clock, order), INSERT ON CONFLICT
    "autosave_first": 3,  # the first save of an item in this process also reads its shape
    "heartbeat": 1,  # one SELECT: attempt, sign-in, clock, proctoring session, messages or not
    "ping": 5,  # sign-in, session (locked), last seen, the camera rule's snapshots, spans
    # a batch and a frame in their usual case, answered by the fast lane (proctoring.lane,
    # proctoring.hotwrites): read before the write lock, then written under it in plain
    # statements (``*_locked``)
    "event": 4,  # session with the sign-in, seq check; last seen + the rules' state (over
    # the state judged), the insert
    "event_locked": 2,
    "snapshot": 7,  # session with the sign-in, this seq or the newest frame, spans; last
    # seen and the console's count, image, snapshot, the face check owed (faces are counted
    # off the request: face_checks)
    "snapshot_locked": 4,
    "snapshot_next": 6,  # a frame within the camera rule's limit of the one before: no spans
    "console": 15,  # sign-in, the marks, then 13 for any number of sessions (proctoring.wiring)
    # a delta poll (cursor) of a view with nothing changed, or only a 304: the sign-in and the
    # sessions' marks (proctoring.wiring.console_marks), whatever the number of sessions
    "console_unchanged": 2,
}
#: where PostgreSQL sends fewer: a save's UPDATE and INSERT, and a frame's four writes, are one
#: statement each there (data-modifying ``WITH``: ``hotpath._save_statement_pg``,
#: ``hotwrites._frame_statement_pg``); SQLite has no such statement
POSTGRESQL = {"autosave": 1, "autosave_first": 2, "snapshot": 4, "snapshot_locked": 1,
              "snapshot_next": 3}


def _budget(app, name: str) -> int:
    if app.extensions["microcred.database"].write_engine.dialect.name == "postgresql":
        return POSTGRESQL.get(name, BUDGETS[name])
    return BUDGETS[name]


def _counted(app, call) -> tuple[Queries, object]:
    from proctoring import liveness

    database = app.extensions["microcred.database"]
    # an earlier request's last-seen time, written by the liveness thread, is not this one's
    # statement: write it before counting (under load it landed inside the count now and then)
    liveness.flush()
    with count_queries(database.engine, database.write_engine) as queries:
        response = call()
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return queries, response


def _answer(db, version_id: int):
    from itembank.models import ItemVersion

    v = db.get(ItemVersion, version_id)
    return ["A", "C"] if v.item_type == "multiple_response" else "B"


@pytest.fixture
def runner(proctored_runner):
    return proctored_runner


def test_autosave_budget(app, db, runner):
    from assessment.delivery import hotpath

    hotpath._SHAPES.clear()
    item = runner.items[0]
    for seq, budget in ((1, "autosave_first"), (2, "autosave")):
        save = {"saves": [{"seq": seq, "item": item, "value": _answer(db, item)}], "position": 1}
        queries, resp = _counted(app, lambda save=save: runner.client.post(
            f"/api/attempts/{runner.attempt_id}/saves", json=save,
            headers={"X-CSRFToken": runner.token}))
        assert resp.json["acks"] == [{"seq": seq, "status": "saved"}]
        assert len(queries) == _budget(app, budget), queries.report()


def test_heartbeat_budget(app, runner):
    queries, resp = _counted(app, lambda: runner.client.get(
        f"/api/attempts/{runner.attempt_id}/heartbeat"))
    assert resp.json["status"] == "in_progress"
    assert len(queries) == _budget(app, "heartbeat"), queries.report()


def test_ping_and_event_budgets(app, runner):
    url = runner.extras["events_url"]
    queries, resp = _counted(app, lambda: runner.client.post(
        url, json={"events": []}, headers={"X-CSRFToken": runner.token}))
    assert len(queries) == _budget(app, "ping"), queries.report()
    queries, resp = _counted(app, lambda: runner.client.post(url, json={"events": [
        {"seq": 1, "kind": "window_blur", "at": "2026-01-01T09:00:00Z"}]},
        headers={"X-CSRFToken": runner.token}))
    assert resp.json["acks"] == [{"seq": 1, "status": "stored"}]
    assert len(queries) == _budget(app, "event"), queries.report()


def test_snapshot_budget(app, runner, face_jpeg):
    queries, resp = _counted(app, lambda: runner.client.post(
        runner.extras["snapshots_url"], data=face_jpeg, content_type="image/jpeg",
        headers={"X-CSRFToken": runner.token, "X-Snapshot-Seq": "1"}))
    assert resp.json["status"] == "stored"
    assert len(queries) == _budget(app, "snapshot"), queries.report()
    queries, resp = _counted(app, lambda: runner.client.post(
        runner.extras["snapshots_url"], data=face_jpeg, content_type="image/jpeg",
        headers={"X-CSRFToken": runner.token, "X-Snapshot-Seq": "2"}))
    assert resp.json["status"] == "stored"
    assert len(queries) == _budget(app, "snapshot_next"), queries.report()
    assert not any("proctoring_transitions" in q for q in queries), queries.report()


def _connections_held(app):
    database = app.extensions["microcred.database"]
    return count_connections(database.engine, database.write_engine)


def test_a_frame_and_a_batch_hold_one_pooled_connection_at_a_time(app, runner, face_jpeg):
    """The runner's frame and event batch read the user, look, and write, each in a short
    transaction of its own: never two of the process's pooled connections at once (on
    PostgreSQL the request's session held one idle in a transaction beside the look's and the
    write's, and at a few thousand candidates the other requests waited for the pool)."""
    for seq in (1, 2):
        with _connections_held(app) as most:
            resp = runner.client.post(
                runner.extras["snapshots_url"], data=face_jpeg, content_type="image/jpeg",
                headers={"X-CSRFToken": runner.token, "X-Snapshot-Seq": str(seq)})
        assert resp.json["status"] == "stored"
        assert most == [1]
    with _connections_held(app) as most:
        resp = runner.client.post(runner.extras["events_url"], json={"events": [
            {"seq": 1, "kind": "window_blur", "at": "2026-01-01T09:00:00Z"}]},
            headers={"X-CSRFToken": runner.token})
    assert resp.json["acks"] == [{"seq": 1, "status": "stored"}]
    assert most == [1]


def test_short_reads_open_no_transaction_on_postgresql_and_writes_do(app, runner, face_jpeg):
    """On PostgreSQL the heartbeat, a write request's user and a frame's or batch's look run
    each statement on its own (``Database.glance``: no BEGIN and ROLLBACK round trips, no
    transaction open between them); what writes runs inside a transaction all the same."""
    database = app.extensions["microcred.database"]
    if database.is_sqlite:
        pytest.skip("SQLite's read transactions cost no round trip: the plain read engine")
    seen: list[tuple[str, bool]] = []

    def note(conn, _cursor, statement, *_args):
        seen.append((statement.split(None, 1)[0].upper(),
                     conn.connection.dbapi_connection.autocommit))

    event.listen(database.engine, "before_cursor_execute", note)
    try:
        beat = runner.client.get(f"/api/attempts/{runner.attempt_id}/heartbeat")
        assert beat.status_code == 200 and app.extensions["microcred.hotlane"].handled
        assert seen == [("SELECT", True)]
        seen.clear()
        resp = runner.client.post(
            runner.extras["snapshots_url"], data=face_jpeg, content_type="image/jpeg",
            headers={"X-CSRFToken": runner.token, "X-Snapshot-Seq": "1"})
        assert resp.json["status"] == "stored"
        reads = [autocommit for verb, autocommit in seen if verb == "SELECT"]
        writes = [autocommit for verb, autocommit in seen if verb == "WITH"]
        # the session with the sign-in, the newest frame, spans (the fast lane: no user load);
        # the frame's writes, one statement on PostgreSQL, in a transaction
        assert len(reads) == 3 and all(reads), seen
        assert len(writes) == 1 and not any(writes) and len(seen) == 4, seen
    finally:
        event.remove(database.engine, "before_cursor_execute", note)
    # and the pool's connections go back as they came: a write after them is transactional
    with database.engine.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit is False


# ---------------------------------------------------------------- the console poll


def _running_sessions(db, ns, make_user, vault, face_jpeg, n: int) -> None:
    """``n`` running sessions, each with what the console reads: answers, an extension, a flag,
    a snapshot, a transition."""
    from assessment.delivery import service
    from proctoring import events, hooks
    from proctoring.sessions import session_for_attempt

    for _ in range(n):
        cand = make_user("candidate")
        attempt = service.start_attempt(db, cand, ns.exam, grace_seconds=5)
        item = attempt.item_order[0]
        service.save_responses(db, attempt, [service.SaveRequest(1, item, _answer(db, item), False)], grace_seconds=5)
        service.extend_attempt(db, attempt, seconds=60, by_user_id=ns.proctor.id, reason="late start")
        ps = session_for_attempt(db, attempt.id)
        events.raise_flags(db, ps, [hooks.FlagSpec("paste", "1", "low", "pasted text")])
        events.record_snapshot(db, ps, vault, seq=1, image=face_jpeg)
        events.touch(db, ps, ps.state_changed_at)
        db.commit()


def _console_queries(app, proctor_client) -> tuple[Queries, list[dict]]:
    queries, resp = _counted(app, lambda: proctor_client.get("/api/proctoring/console"))
    return queries, resp.json["sessions"]


def test_console_poll_budget_does_not_grow_with_sessions(app, db, proctored, make_user, signin,
                                                         vault, face_jpeg, blank_jpeg):
    """N and 2N running sessions (plus, each time, one session waiting for an identity decision
    with a failed automated check, and one the proctor terminated): the same statements."""
    from proctoring import actions, identity
    from proctoring.assignments import assign
    from proctoring.models import ProctorSession
    from proctoring.sessions import open_session
    from proctoring.wiring import DeliveryControl, identity_gate

    ns = proctored({"identity": "none", "snapshot_interval_s": 30})
    checked = proctored({"identity": "automated+proctor"}, code="P-ID")
    assign(db, ns.proctor, checked.exam, ns.admin)
    waiting = make_user("candidate")
    identity_gate(db, waiting, checked.exam, url_for=lambda *a, **k: "/identity")
    identity.submit(db, open_session(db, waiting.id, checked.exam.id), vault,
                    selfie=blank_jpeg, id_document=blank_jpeg, by=waiting)
    _running_sessions(db, ns, make_user, vault, face_jpeg, 3)
    ended = db.scalar(select(ProctorSession).where(ProctorSession.attempt_id.is_not(None))
                      .order_by(ProctorSession.id).limit(1))
    actions.terminate(db, ended, DeliveryControl(), by=ns.proctor, reason="a second screen")
    db.commit()
    proctor = app.test_client()
    signin(proctor, ns.proctor)

    small, rows = _console_queries(app, proctor)
    states = sorted(r["state"] for r in rows)
    assert states == ["identity_pending", "in_progress", "in_progress", "terminated"], states
    running = [r for r in rows if r["state"] == "in_progress"]
    assert all(r["answered"] == 1 and r["snapshot"] and r["flags"]["count"] for r in running)

    _running_sessions(db, ns, make_user, vault, face_jpeg, 3)
    large, rows = _console_queries(app, proctor)
    assert len(rows) == 7
    assert len(large) == len(small), f"{len(small)} then {len(large)}:\n{large.report()}"
    assert len(large) == _budget(app, "console"), large.report()

    # a delta poll (cursor) with nothing changed, and a 304 (If-None-Match): the sign-in and
    # one read of the marks, no row built (proctoring.console_feed)
    full = proctor.get("/api/proctoring/console").json
    delta, resp = _counted(app, lambda: proctor.get(
        "/api/proctoring/console", query_string={"cursor": full["cursor"]}))
    assert resp.json["changed"] == []
    assert len(delta) == _budget(app, "console_unchanged"), delta.report()
    database = app.extensions["microcred.database"]
    with count_queries(database.engine, database.write_engine) as same:
        resp = proctor.get("/api/proctoring/console", query_string={"cursor": full["cursor"]},
                           headers={"If-None-Match": full["etag"]})
    assert resp.status_code == 304 and resp.data == b""
    assert len(same) == _budget(app, "console_unchanged"), same.report()
    # one session changed: its row alone is built (the full poll's statements, over one id)
    from proctoring import events, hooks
    from proctoring.sessions import get_session

    db.rollback()
    one = rows[-1]["id"]
    events.raise_flags(db, get_session(db, one), [hooks.FlagSpec("paste", "budget", "low", "p")])
    db.commit()
    changed, resp = _counted(app, lambda: proctor.get(
        "/api/proctoring/console", query_string={"cursor": full["cursor"]}))
    assert [r["id"] for r in resp.json["changed"]] == [one] and resp.json["rebuilt"] == 1
    assert len(changed) <= _budget(app, "console"), changed.report()


def test_a_write_requests_sign_in_is_read_outside_the_write_lock(app, runner, face_jpeg):
    """On SQLite a request that writes opens its transaction with BEGIN IMMEDIATE, the
    database's one write lock, at its first statement. The signed-in user is read through the
    read engine instead, so the lock is taken where the view first touches the database: after
    the snapshot is decoded, shrunk and encrypted. Read under the lock, the user kept every other
    writer waiting through that work."""
    from microcred.querycount import count_queries
    from proctoring import liveness

    database = app.extensions["microcred.database"]
    if not database.is_sqlite:
        pytest.skip("PostgreSQL locks rows, not the database: one engine reads and writes")
    liveness.flush()  # the fixture's heartbeat's last-seen time is no statement of these
    with count_queries(database.engine) as read, count_queries(database.write_engine) as written:
        resp = runner.client.post(
            runner.extras["snapshots_url"], data=face_jpeg, content_type="image/jpeg",
            headers={"X-CSRFToken": runner.token, "X-Snapshot-Seq": "7"})
    assert resp.status_code == 200 and resp.json["status"] == "stored"
    assert any("FROM users" in q for q in read), read.report()
    assert not any("FROM users" in q for q in written), written.report()
    # the frame's look reads without the lock too; under it, only its plain writes
    assert any("FROM proctoring_snapshots" in q for q in read), read.report()
    assert len(written) == _budget(app, "snapshot_locked"), written.report()
    assert all(q.startswith(("UPDATE", "INSERT")) for q in written), written.report()
    # a batch of events: the same
    liveness.flush()
    with count_queries(database.engine) as read, count_queries(database.write_engine) as written:
        resp = runner.client.post(runner.extras["events_url"], json={"events": [
            {"seq": 1, "kind": "window_blur"}]}, headers={"X-CSRFToken": runner.token})
    assert resp.status_code == 200 and resp.json["acks"] == [{"seq": 1, "status": "stored"}]
    assert any("FROM proctoring_events" in q for q in read), read.report()
    assert len(written) == _budget(app, "event_locked"), written.report()
    assert all(q.startswith(("UPDATE", "INSERT")) for q in written), written.report()
