"""Integration: a camera that stops sending snapshots is flagged once, by whichever comes first:
the page's pings, ``microcred proctoring sweep`` (the sweeper) or the submission, and the
console's poll shows it as soon as it is due without writing; a camera that keeps sending is
never flagged. On SQLite and PostgreSQL, with time moved forward
(``now=`` for the services, the modules' clock patched for the views and the command)."""
from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from assessment.delivery import service as delivery
from proctoring import events
from proctoring.flags import MISSING_SNAPSHOT_RULE
from proctoring.models import Flag
from proctoring.sessions import get_session, session_for_attempt

# the proctored fixture's policy: a snapshot every 30 s; flagged after 3 intervals (90 s)
LIMIT_S = 90


def _started(db, proctored, code="P-CAM"):
    ns = proctored({"identity": "none", "fullscreen": False}, code=code)
    ps, attempt = _start(db, ns.candidate, ns.exam)
    return ns, ps, attempt, ps.state_changed_at


def _start(db, candidate, exam):
    attempt = delivery.start_attempt(db, candidate, exam, grace_seconds=5)
    db.commit()
    ps = session_for_attempt(db, attempt.id)
    assert ps.state == "in_progress"
    return ps, attempt


def _silence_flags(db, ps) -> list[Flag]:
    db.commit()  # end the read transaction: see what the app or the command wrote since
    return list(db.scalars(select(Flag).where(Flag.session_id == ps.id,
                                              Flag.rule == MISSING_SNAPSHOT_RULE)))


def _ping(db, ps, when: dt.datetime) -> list[str]:
    locked = get_session(db, ps.id, lock=True)
    out = events.ingest_events(db, locked, [], now=when)
    db.commit()
    return out["flags"]


def _snapshot(db, ps, vault, jpeg, seq: int, when: dt.datetime) -> None:
    locked = get_session(db, ps.id, lock=True)
    events.record_snapshot(db, locked, vault, seq=seq, image=jpeg, now=when)
    db.commit()


def _page_that_works(db, ps, vault, jpeg, t0: dt.datetime, until_s: int) -> None:
    """A page pinging every 15 s and sending a snapshot every 30 s (2 s after the start)."""
    seq = 0
    for s in range(0, until_s, 15):
        if s % 30 == 0:
            seq += 1
            _snapshot(db, ps, vault, jpeg, seq, t0 + dt.timedelta(seconds=s + 2))
        _ping(db, ps, t0 + dt.timedelta(seconds=s + 5))


def test_pings_flag_a_silent_camera_exactly_once(db, proctored, vault, face_jpeg):
    _ns, ps, _attempt, t0 = _started(db, proctored)
    assert _ping(db, ps, t0 + dt.timedelta(seconds=LIMIT_S - 5)) == []
    said = _ping(db, ps, t0 + dt.timedelta(seconds=LIMIT_S + 5))
    assert said == [("no camera snapshot received for 95 s since the exam started, and still "
                     "none (one expected every 30 s)")]
    for later in (120, 300, 900):
        assert _ping(db, ps, t0 + dt.timedelta(seconds=later)) == []
    (flag,) = _silence_flags(db, ps)
    assert (flag.key, flag.severity) == ("start", "medium")
    db.refresh(ps)
    assert ps.risk_score == 3


def test_a_camera_that_keeps_sending_is_not_flagged(db, proctored, vault, face_jpeg):
    _ns, ps, _attempt, t0 = _started(db, proctored)
    _page_that_works(db, ps, vault, face_jpeg, t0, 180)
    assert _silence_flags(db, ps) == []
    # it stops: 90 s of exam time after the last snapshot (at 152 s) the next ping flags it
    assert _ping(db, ps, t0 + dt.timedelta(seconds=152 + LIMIT_S - 1)) == []
    assert _ping(db, ps, t0 + dt.timedelta(seconds=152 + LIMIT_S + 3))
    assert [f.key for f in _silence_flags(db, ps)] == ["after-s6"]


def test_a_closed_page_is_flagged_at_submission(db, proctored, make_user, vault, face_jpeg,
                                                clock):
    """Nothing arrives at all (no ping, no snapshot); the rules' last run at submission counts
    the silence up to the submission."""

    ns, ps, attempt, t0 = _started(db, proctored)
    ps2, attempt2 = _start(db, make_user("candidate"), ns.exam)
    _page_that_works(db, ps2, vault, face_jpeg, ps2.state_changed_at, 120)
    end = ps2.state_changed_at + dt.timedelta(seconds=130)
    clock.set(end)
    for a in (attempt, attempt2):
        delivery.submit_attempt(db, delivery.get_attempt(db, a.id, lock=True), now=end, grace_seconds=5)
        db.commit()
    (flag,) = _silence_flags(db, ps)
    assert flag.key == "start" and "still none" not in flag.message
    assert f"for {round((end - t0).total_seconds())} s since the exam started" in flag.message
    db.refresh(ps)
    db.refresh(ps2)
    assert (ps.state, ps2.state) == ("in_review", "cleared")
    assert _silence_flags(db, ps2) == []
    # events arriving after submission (an offline queue) run the rules again: still one flag
    late = get_session(db, ps.id, lock=True)
    events.ingest_events(db, late, [events.EventIn(1, "online", None, {})],
                         now=end + dt.timedelta(hours=1))
    db.commit()
    assert len(_silence_flags(db, ps)) == 1


@pytest.fixture
def proctor_client(app, signin):
    def make(user):
        client = app.test_client()
        signin(client, user)
        return client

    return make


def test_the_console_poll_shows_a_silent_camera_flag_and_writes_nothing(
        db, proctored, make_user, vault, face_jpeg, proctor_client, clock):
    """The poll (a GET) shows the flag a silent camera is due at once, in the row's flags and
    risk, and stores nothing; the sweep stores it once, and the poll then shows the stored
    flag the same way."""
    ns, silent, _a, t0 = _started(db, proctored)
    silent2, _a2 = _start(db, make_user("candidate"), ns.exam)
    silent3, _a4 = _start(db, make_user("candidate"), ns.exam)
    working, _a3 = _start(db, make_user("candidate"), ns.exam)
    _page_that_works(db, working, vault, face_jpeg, t0, 130)
    now = t0 + dt.timedelta(seconds=130)
    clock.set(now)
    db.commit()
    before = db.scalar(select(func.count()).select_from(Flag))

    def poll(client) -> dict:
        return {r["id"]: r for r in client.get("/api/proctoring/console").json["sessions"]}

    proctor = proctor_client(ns.proctor)
    for rows in (poll(proctor), poll(proctor_client(ns.admin))):
        for ps in (silent, silent2, silent3):
            silent_s = (now - ps.state_changed_at).total_seconds()
            assert rows[ps.id]["camera"] == {
                "silent_s": int(silent_s), "interval_s": 30, "limit_s": LIMIT_S,
                "flagged": True,
                # where the silence began (epoch s), so a page shown only deltas counts on
                "silent_from_s": round(now.timestamp() - int(silent_s))}
            assert rows[ps.id]["flags"]["count"] == 1 and rows[ps.id]["risk"] == 3
            assert rows[ps.id]["flags"]["worst"] == "medium"
            assert (f"no camera snapshot received for {silent_s:.0f} s"
                    in rows[ps.id]["flags"]["latest"])
        assert rows[working.id]["camera"]["silent_s"] < 30
        assert rows[working.id]["camera"]["flagged"] is False
        assert rows[working.id]["flags"]["count"] == 0
    db.commit()
    assert db.scalar(select(func.count()).select_from(Flag)) == before  # the GETs wrote nothing
    for ps in (silent, silent2, silent3):
        db.refresh(ps)
        assert ps.risk_score == 0

    assert len(events.sweep_rules(db)) == 3  # the sweeper (or the pings) store them, once
    shown = poll(proctor)
    for ps in (silent, silent2, silent3):
        assert len(_silence_flags(db, ps)) == 1
        db.refresh(ps)
        assert ps.risk_score == 3
        assert shown[ps.id]["flags"]["count"] == 1 and shown[ps.id]["risk"] == 3
        assert shown[ps.id]["camera"]["flagged"] is True
    assert _silence_flags(db, working) == []
    assert db.scalar(select(func.count()).select_from(Flag)) == before + 3


def test_sweep_command_flags_silent_cameras(db, proctored, settings, monkeypatch, clock):
    from assessment.cli import main

    _ns, ps, _attempt, t0 = _started(db, proctored)
    monkeypatch.setenv("MICROCRED_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MICROCRED_INSTANCE_DIR", str(settings.instance_dir))
    early = CliRunner().invoke(main, ["proctoring", "sweep"])
    assert early.exit_code == 0, early.output
    assert early.output.endswith("0 new flag(s)\n")
    clock.set(t0 + dt.timedelta(seconds=150))
    swept = CliRunner().invoke(main, ["proctoring", "sweep"])
    assert swept.exit_code == 0, swept.output
    assert "no camera snapshot received for 150 s" in swept.output
    assert swept.output.endswith("1 new flag(s)\n")
    again = CliRunner().invoke(main, ["proctoring", "sweep"])
    assert again.output.endswith("0 new flag(s)\n")
    assert len(_silence_flags(db, ps)) == 1


def test_the_delivery_sweep_runs_the_camera_rule_too(db, proctored, settings, monkeypatch,
                                                     clock):
    """`microcred sweep` (and the sweeper of `microcred serve`, which calls the same functions)
    flags a camera gone silent on a page that sends nothing any more."""
    from assessment.cli import main

    _ns, ps, _attempt, t0 = _started(db, proctored)
    monkeypatch.setenv("MICROCRED_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MICROCRED_INSTANCE_DIR", str(settings.instance_dir))
    clock.set(t0 + dt.timedelta(seconds=150))
    swept = CliRunner().invoke(main, ["sweep"])
    assert swept.exit_code == 0, swept.output
    assert "1 new proctoring flag(s)" in swept.output
    assert len(_silence_flags(db, ps)) == 1


def test_the_sweep_looks_without_locks_and_writes_only_where_a_flag_is_due(db, proctored,
                                                                            make_user, vault,
                                                                            face_jpeg):
    """The sweeper reads every running session's state in a few statements and opens a write
    transaction only for a session with a flag due and not stored yet: at 5,000 candidates a
    write transaction per session every 30 s kept the web's saves waiting on the write lock."""
    from sqlalchemy import event

    ns, first, _attempt, started = _started(db, proctored, code="P-SWEEP")
    sessions = [first] + [_start(db, make_user("candidate"), ns.exam)[0] for _ in range(3)]
    later = started + dt.timedelta(minutes=10)
    for ps in sessions[:3]:  # three cameras sent a frame 10 s ago; the fourth never did
        prepared = events.prepare_snapshot(vault, session_id=ps.id, image=face_jpeg, count=False)
        events.record_snapshot(db, get_session(db, ps.id, lock=True), vault, seq=1,
                               image=prepared, now=later - dt.timedelta(seconds=10))
        db.commit()
    commits = []

    def count(session):
        commits.append(1)

    event.listen(db, "after_commit", count)
    try:
        raised = events.sweep_rules(db, now=later)
        assert [(f.session_id, f.rule) for f in raised] == [(sessions[3].id, MISSING_SNAPSHOT_RULE)]
        assert len(commits) == 1  # the one session with a flag due
        commits.clear()
        assert events.sweep_rules(db, now=later) == [] and commits == []  # stored: none due
        # the look alone, over the four: only the silent one, until its flag is stored
        assert events.sessions_with_rules_due(db, [ps.id for ps in sessions], now=later) == []
    finally:
        event.remove(db, "after_commit", count)
    db.rollback()
    assert events.sessions_with_rules_due(
        db, [ps.id for ps in sessions], now=later + dt.timedelta(minutes=10)) == sorted(
        ps.id for ps in sessions[:3])  # their cameras silent since, the fourth flagged already
