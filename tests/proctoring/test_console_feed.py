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


def test_digest_ignores_what_the_clock_alone_moves():
    a = console_feed.digest(_row())
    later = _row(remaining_s=590, last_seen_s=13, snapshot={"id": 1, "age_s": 15},
                 camera={"silent_s": 15, "silent_from_s": 395, "interval_s": 30, "limit_s": 90,
                         "flagged": False})
    assert console_feed.digest(later) == a
    # what the page shows differently is a change: an extension moves ends_at_s, a new
    # snapshot, the camera overdue (2 intervals), a lost connection, a pause
    assert console_feed.digest(_row(ends_at_s=1300)) != a
    assert console_feed.digest(_row(snapshot={"id": 2, "age_s": 0})) != a
    assert console_feed.digest(_row(camera={"silent_s": 61, "silent_from_s": 395, "interval_s": 30,
                                            "limit_s": 90, "flagged": False})) != a
    assert console_feed.digest(_row(connection="lost")) != a
    assert console_feed.digest(_row(paused=True, ends_at_s=None)) != a


def test_cursor_round_trip_and_refusals():
    digests = {3: b"abcd", 4: b"efgh", 900_000: b"ijkl"}
    cur = console_feed.encode(1_000, digests)
    assert console_feed.decode(cur, 1_000) == (1_000, digests)
    assert len(console_feed.encode(1_000, {i: b"abcd" for i in range(1, 201)})) < 1_500
    for bad, said in [("xyz", "must start with"), ("c1.@@@@", "not base64url"),
                      ("c1.AA", "too short"), (cur[:-2], "truncated"),
                      (console_feed.encode(5_000, {}), "future")]:
        with pytest.raises(console_feed.BadCursor, match=said):
            console_feed.decode(bad, 1_000)


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
    for bad, said in [("garbage", "must start with"), ("", "empty"), ("c1.%%%", "base64url"),
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
    forged = console_feed.encode(int(mine["server_now_s"]), {i: b"\0\0\0\0" for i in w.ids})
    assert _poll(w.other, forged).json["changed"] == []
