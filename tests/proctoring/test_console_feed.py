"""The console's delta feed (``proctoring.console_feed``, ``GET /api/proctoring/console?cursor=``):
a full snapshot first, then only what changed since the cursor, each change once; a finished
session moves to the finished list, then leaves the view (``removed``); nothing changed is an
empty delta or a 304; a bad cursor is a 400 naming what is wrong; another proctor's sessions
never show, whatever cursor is sent."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from proctoring import console_feed
from tests.proctoring.test_query_budgets import _running_sessions

# ---------------------------------------------------------------- pure parts


def _row(**kw):
    row = {"id": 7, "state": "in_progress", "paused": False, "remaining_s": 600, "ends_at_s": 1000,
           "last_seen_s": 3, "last_seen_at_s": 400, "connection": "online", "risk": 0,
           "flags": {"count": 0}, "snapshot": {"id": 1, "age_s": 5},
           "camera": {"silent_s": 5, "silent_from_s": 395, "interval_s": 30, "limit_s": 90,
                      "flagged": False}}
    row.update(kw)
    return row


def test_due_is_the_next_instant_the_clock_alone_changes_the_row():
    now = 400.0
    # running: the time runs out at 1000, the camera (silent since 395, interval 30, limit 90)
    # becomes overdue at 455 and is past its limit, flagged, at 486
    assert console_feed.due_s(_row(), now) == 455
    assert console_feed.due_s(_row(camera={"silent_s": 65, "silent_from_s": 335, "interval_s": 30,
                                           "limit_s": 90, "flagged": False}), now) == 426
    assert console_feed.due_s(_row(camera=None), now) == 1000
    # nothing left to happen by the clock: flagged already, paused (silence and time stand
    # still), finished
    assert console_feed.due_s(_row(ends_at_s=None, camera={
        "silent_s": 95, "silent_from_s": 305, "interval_s": 30, "limit_s": 90,
        "flagged": True}), now) is None
    assert console_feed.due_s(_row(paused=True, ends_at_s=None, camera={
        "silent_s": 5, "silent_from_s": None, "interval_s": 30, "limit_s": 90,
        "flagged": False}), now) is None
    assert console_feed.due_s({"id": 7, "finished": True, "camera": None}, now) is None
    # an instant a rounding put in the past is looked at again at the next second, not lost
    assert console_feed.due_s(_row(camera={"silent_s": 59, "silent_from_s": 340, "interval_s": 30,
                                           "limit_s": 90, "flagged": False}), now) == 401


def test_cursor_round_trip_and_refusals():
    held = {3: console_feed.Held(b"abcd", None), 4: console_feed.Held(b"efgh", 1_000),
            900_000: console_feed.Held(b"ijkl", 5_000)}
    cur = console_feed.encode(1_000, held)
    assert console_feed.decode(cur, 1_000) == (1_000, held)
    two_hundred = {i: console_feed.Held(b"abcd", 1_100) for i in range(1, 201)}
    assert len(console_feed.encode(1_000, two_hundred)) < 2_200
    for bad, said in [("xyz", "must start with"), ("c2.@@@@", "not base64url"),
                      ("c2.AA", "too short"), (cur[:-3], "truncated|malformed"),
                      (console_feed.encode(5_000, {}), "future")]:
        with pytest.raises(console_feed.BadCursor, match=said):
            console_feed.decode(bad, 1_000)


def test_only_what_moved_or_fell_due_is_built():
    built: list[list[int] | None] = []

    def build(ids):
        built.append(ids)
        return [{"id": i, "ends_at_s": 2_000 if i == 3 else None, "camera": None}
                for i in (ids if ids is not None else [1, 2, 3])]

    marks = {1: b"aaaa", 2: b"bbbb", 3: b"cccc"}
    first = console_feed.feed(marks, build, None, 1_000.0)
    assert first["full"] and built == [None]
    same = console_feed.feed(marks, build, first["cursor"], 1_010.0)
    assert (same["changed"], same["removed"], same["etag"]) == ([], [], first["etag"])
    assert built == [None]  # nothing built at all
    moved = console_feed.feed({1: b"aaaa", 2: b"BBBB", 4: b"dddd"}, build, same["cursor"], 1_020.0)
    assert built[-1] == [2, 4] and [r["id"] for r in moved["changed"]] == [2, 4]
    assert moved["removed"] == [3]
    # past its due instant a row is built again with nothing written
    due = console_feed.feed(marks, build, first["cursor"], 2_000.0)
    assert built[-1] == [3] and [r["id"] for r in due["changed"]] == [3]


# ---------------------------------------------------------------- through the API


@pytest.fixture
def watched(app, db, proctored, make_user, signin, vault, face_jpeg):
    from types import SimpleNamespace

    from proctoring.models import ProctorSession

    ns = proctored({"identity": "none", "snapshot_interval_s": 30})
    _running_sessions(db, ns, make_user, vault, face_jpeg, 3)
    ids = list(db.scalars(select(ProctorSession.id).order_by(ProctorSession.id)))
    db.commit()
    proctor = app.test_client()
    signin(proctor, ns.proctor)
    other = app.test_client()
    signin(other, ns.other_proctor)
    return SimpleNamespace(ns=ns, ids=ids, proctor=proctor, other=other)


def _poll(client, cursor, etag=None):
    headers = {"If-None-Match": etag} if etag else {}
    return client.get("/api/proctoring/console", query_string={"cursor": cursor}, headers=headers)


def test_each_change_once_and_finished_sessions_leave(watched, db):
    from proctoring import actions, events, hooks
    from proctoring.models import ProctorSession
    from proctoring.sessions import get_session
    from proctoring.wiring import RECENTLY_ENDED_S, DeliveryControl

    w = watched
    full = w.proctor.get("/api/proctoring/console").json
    assert full["full"] is True and sorted(r["id"] for r in full["sessions"]) == w.ids
    cursor, etag = full["cursor"], full["etag"]

    same = _poll(w.proctor, cursor)
    assert same.status_code == 200
    assert (same.json["full"], same.json["changed"], same.json["removed"]) == (False, [], [])
    assert same.json["etag"] == etag
    assert _poll(w.proctor, cursor, etag).status_code == 304  # the page's view still stands

    a, b, c = w.ids
    db.rollback()  # no read snapshot of the test's own held across the requests (SQLite)
    ps = get_session(db, a, lock=True)
    actions.pause(db, ps, DeliveryControl(), by=w.ns.proctor, reason="noise")
    events.raise_flags(db, get_session(db, b), [hooks.FlagSpec("paste", "2", "medium", "pasted again")])
    db.commit()
    delta = _poll(w.proctor, cursor, etag)
    assert delta.status_code == 200 and delta.json["removed"] == []
    changed = {r["id"]: r for r in delta.json["changed"]}
    assert sorted(changed) == [a, b]
    assert changed[a]["state"] == "paused" and changed[b]["flags"]["count"] == 2
    cursor, etag = delta.json["cursor"], delta.json["etag"]
    again = _poll(w.proctor, cursor)  # the change shows once
    assert (again.json["changed"], again.json["removed"]) == ([], [])

    db.rollback()
    actions.terminate(db, get_session(db, c, lock=True), DeliveryControl(), by=w.ns.proctor,
                      reason="a second screen")
    db.commit()
    ended = _poll(w.proctor, cursor).json
    assert [(r["id"], r["finished"]) for r in ended["changed"]] == [(c, True)]
    cursor = ended["cursor"]
    # past the recent minutes the finished session leaves the view
    db.rollback()
    long_ago = db.get(ProctorSession, c).state_changed_at - dt.timedelta(seconds=RECENTLY_ENDED_S + 60)
    db.execute(update(ProctorSession).where(ProctorSession.id == c).values(state_changed_at=long_ago))
    db.commit()
    gone = _poll(w.proctor, cursor).json
    assert (gone["changed"], gone["removed"]) == ([], [c])
    assert (_poll(w.proctor, gone["cursor"]).json["removed"]) == []


def test_bad_cursors_are_400_and_old_ones_get_everything(watched):
    w = watched
    now = int(w.proctor.get("/api/proctoring/console").json["server_now_s"])
    for bad, said in [("garbage", "must start with"), ("", "empty"), ("c2.%%%", "base64url"),
                      (console_feed.encode(now + 3600, {}), "future")]:
        resp = _poll(w.proctor, bad)
        assert resp.status_code == 400, bad
        assert resp.json["error"] == "bad_cursor" and said in resp.json["message"], resp.json
        assert "cursor" in resp.json["message"]
    old = _poll(w.proctor, console_feed.encode(now - console_feed.MAX_AGE_S - 10, {})).json
    assert old["full"] is True and len(old["sessions"]) == 3 and "older" in old["reason"]


def test_another_proctors_sessions_never_show(watched):
    w = watched
    mine = w.proctor.get("/api/proctoring/console").json
    theirs = w.other.get("/api/proctoring/console").json
    assert theirs["sessions"] == []
    # the first proctor's cursor sent by the other: only removals of the ids it named
    borrowed = _poll(w.other, mine["cursor"]).json
    assert borrowed["changed"] == [] and borrowed["removed"] == w.ids
    # a cursor claiming unknown digests for those ids: still nothing of theirs
    forged = console_feed.encode(int(mine["server_now_s"]),
                                 {i: console_feed.Held(b"\0\0\0\0", None) for i in w.ids})
    assert _poll(w.other, forged).json["changed"] == []
