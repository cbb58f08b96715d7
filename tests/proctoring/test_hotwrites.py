"""A frame and a batch of events in their usual case (``proctoring.hotwrites``): looked at
before the write lock, written under it in plain statements. What the look saw can change
before the write runs (another request of the same page, a proctor's action); each such case
here is made to happen between the two, and the write must then keep nothing, so that the full
path stores the request as it always did. On both databases.

The known answer for the rules is ``flags.evaluate`` over the whole history, as in
``test_ingestion``: the fast path and the full path, mixed at random, must store exactly its
flags and the same kept state."""
from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select, update

from assessment.delivery import service as delivery
from proctoring import events, hotwrites
from proctoring.flags import MISSING_SNAPSHOT_RULE, EventState, History, evaluate
from proctoring.models import (
    FaceCheck,
    Flag,
    IntegrityEvent,
    ProctorSession,
    Snapshot,
    StoredImage,
)
from proctoring.sessions import policy

KINDS = ["window_blur", "window_focus", "tab_hidden", "tab_visible", "right_click", "copy",
         "fullscreen_exit", "fullscreen_enter", "offline", "online", "paste"]


@pytest.fixture
def running(db, proctored):
    from proctoring.wiring import identity_gate

    def make(**pol) -> ProctorSession:
        ns = proctored({"identity": "none", "snapshot_interval_s": 30, **pol})
        identity_gate(db, ns.candidate, ns.exam, url_for=lambda *a, **k: "/identity")
        delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
        db.commit()
        return db.scalar(select(ProctorSession).where(
            ProctorSession.candidate_id == ns.candidate.id))

    return make


def _write(database, work):
    """Run a look's write as ``microcred.web.write_statements`` does on PostgreSQL (and as the
    group commit's savepoint does on SQLite): committed if it answers, else rolled back."""
    with database.write_engine.connect() as conn:
        answer = work(conn)
        if answer is not None:
            conn.commit()
        return answer


def _look_frame(database, ps, vault, jpeg, seq, now):
    prepared = events.prepare_snapshot(vault, session_id=ps.id, image=jpeg, count=False)
    with database.session(write=False) as read:
        return hotwrites.look_at_frame(read, session_id=ps.id, candidate_id=ps.candidate_id,
                                       seq=seq, image=prepared, vault=vault, client_at=None,
                                       now=now)


def _look_batch(database, ps, batch, now):
    with database.session(write=False) as read:
        return hotwrites.look_at_batch(read, session_id=ps.id, candidate_id=ps.candidate_id,
                                       batch=batch, now=now)


def _session_row(db, ps):
    db.rollback()
    return db.execute(select(ProctorSession.last_seen_at, ProctorSession.console_version,
                             ProctorSession.rule_state).where(ProctorSession.id == ps.id)).one()


# ---------------------------------------------------------------- frames


def test_a_frame_is_stored_with_its_console_count_and_its_face_check_owed(
        db, database, running, vault, blank_jpeg):
    ps = running()
    before = _session_row(db, ps)
    now = dt.datetime.now(dt.UTC)
    write = _look_frame(database, ps, vault, blank_jpeg, 1, now)
    assert isinstance(write, hotwrites.FrameWrite)
    assert _write(database, write) == {"seq": 1, "status": "stored", "faces": None}
    after = _session_row(db, ps)
    assert after.console_version == before.console_version + 1
    assert after.last_seen_at == now
    snap = db.scalar(select(Snapshot).where(Snapshot.session_id == ps.id))
    assert (snap.seq, snap.faces, snap.server_at) == (1, None, now)
    # the image is the vault's sealed frame: it opens to a JPEG
    assert vault.open(db.get(StoredImage, snap.image_id)).startswith(b"\xff\xd8")
    assert db.scalar(select(FaceCheck.snapshot_id).where(FaceCheck.session_id == ps.id)) == snap.id
    # a retry of it is answered from the look: nothing written
    again = _look_frame(database, ps, vault, blank_jpeg, 1, now + dt.timedelta(seconds=5))
    assert again == {"seq": 1, "status": "duplicate", "faces": None}


def test_a_frame_for_another_candidate_or_a_stopped_session_is_refused_by_the_look(
        db, database, running, vault, blank_jpeg):
    from microcred.errors import Conflict, NotFound

    ps = running()
    prepared = events.prepare_snapshot(vault, session_id=ps.id, image=blank_jpeg, count=False)
    now = dt.datetime.now(dt.UTC)
    with database.session(write=False) as read, pytest.raises(NotFound, match=f"session {ps.id}"):
        hotwrites.look_at_frame(read, session_id=ps.id, candidate_id=ps.candidate_id + 999,
                                seq=1, image=prepared, vault=vault, client_at=None, now=now)
    db.execute(update(ProctorSession).where(ProctorSession.id == ps.id).values(state="terminated"))
    db.commit()
    with database.session(write=False) as read, pytest.raises(Conflict, match="terminated"):
        hotwrites.look_at_frame(read, session_id=ps.id, candidate_id=ps.candidate_id,
                                seq=1, image=prepared, vault=vault, client_at=None, now=now)


def test_a_frame_keeps_nothing_when_the_session_stopped_after_the_look(
        db, database, running, vault, blank_jpeg):
    ps = running()
    before = _session_row(db, ps)
    write = _look_frame(database, ps, vault, blank_jpeg, 1, dt.datetime.now(dt.UTC))
    db.execute(update(ProctorSession).where(ProctorSession.id == ps.id).values(state="terminated"))
    db.commit()
    assert _write(database, write) is None
    after = _session_row(db, ps)
    assert (after.console_version, after.last_seen_at) == (before.console_version,
                                                           before.last_seen_at)
    assert db.scalar(select(Snapshot.id)) is None and db.scalar(select(FaceCheck.snapshot_id)) is None


def test_a_retried_frame_stored_after_the_look_keeps_nothing(db, database, running, vault,
                                                             blank_jpeg):
    """Two uploads of one seq (a retry sent while the first was queued): the second's INSERT
    is refused by the unique index; nothing of it is kept (its image neither), and the full
    path answers it as a duplicate."""
    ps = running()
    now = dt.datetime.now(dt.UTC)
    first = _look_frame(database, ps, vault, blank_jpeg, 1, now)
    second = _look_frame(database, ps, vault, blank_jpeg, 1, now)
    assert _write(database, first)["status"] == "stored"
    db.rollback()
    images = db.scalar(select(Snapshot.image_id))
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):  # write_statements turns it into the full path
        _write(database, second)
    db.rollback()
    assert db.scalars(select(Snapshot.image_id)).all() == [images]
    db.rollback()  # a fresh transaction: another connection has written since
    ps_locked = db.get(ProctorSession, ps.id, with_for_update=True)
    snap, created = events.record_snapshot(db, ps_locked, vault, seq=1, image=blank_jpeg)
    assert (snap.seq, created) == (1, False)


def test_a_frame_after_a_long_silence_goes_to_the_full_path_and_is_flagged(
        db, database, running, vault, blank_jpeg):
    """The camera rule: a frame 5 minutes after the one before (limit 3 x 30 s) closes a gap
    that is flagged; the look leaves it to the full path, which raises the flag."""
    ps = running()
    t0 = dt.datetime.now(dt.UTC)
    assert _write(database, _look_frame(database, ps, vault, blank_jpeg, 1, t0)) is not None
    late = t0 + dt.timedelta(minutes=5)
    assert _look_frame(database, ps, vault, blank_jpeg, 2, late) is None
    db.rollback()  # a fresh transaction: another connection has written since
    ps_locked = db.get(ProctorSession, ps.id, with_for_update=True)
    events.record_snapshot(db, ps_locked, vault, seq=2, image=blank_jpeg, now=late)
    db.commit()
    assert db.scalar(select(Flag.key).where(Flag.session_id == ps.id,
                                            Flag.rule == MISSING_SNAPSHOT_RULE)) == "after-s1"
    # the next frame on time, that flag stored: the usual case again
    assert isinstance(_look_frame(database, ps, vault, blank_jpeg, 3,
                                  late + dt.timedelta(seconds=30)), hotwrites.FrameWrite)


def test_a_frame_after_a_batch_judged_since_its_look(db, database, running, vault, blank_jpeg):
    """A batch judged between a frame's look and its write changes the kept rule state: the
    frame is still stored when nothing is due by the new state, and left to the full path when
    something is (a full-screen exit open past its grace)."""
    ps = running(fullscreen=True, fullscreen_grace_s=5)
    t0 = dt.datetime.now(dt.UTC)
    write = _look_frame(database, ps, vault, blank_jpeg, 1, t0)
    batch = _look_batch(database, ps, [events.EventIn(1, "window_blur", None, {})], t0)
    assert _write(database, batch)["acks"] == [{"seq": 1, "status": "stored"}]
    assert _write(database, write)["status"] == "stored"  # nothing due: stored
    later = t0 + dt.timedelta(seconds=2)
    write = _look_frame(database, ps, vault, blank_jpeg, 2, later + dt.timedelta(seconds=30))
    db.rollback()  # a fresh transaction: another connection has written since
    ps_locked = db.get(ProctorSession, ps.id, with_for_update=True)
    events.ingest_events(db, ps_locked, [events.EventIn(2, "fullscreen_exit", None, {})],
                         now=later)
    db.commit()
    # the exit is open 30 s by the frame's time, past its 5 s grace: the full path flags it
    assert _write(database, write) is None
    assert db.scalar(select(Snapshot.id).where(Snapshot.seq == 2)) is None
    # nor its image or face check (on PostgreSQL they went in with the session's UPDATE, in
    # one statement, and were rolled back with it)
    assert db.scalars(select(StoredImage.id)).all() == [db.scalar(select(Snapshot.image_id))]
    assert len(db.scalars(select(FaceCheck.snapshot_id)).all()) == 1


# ---------------------------------------------------------------- batches


def test_a_batch_judged_between_a_look_and_its_write_is_judged_again(db, database, running):
    """Two batches of the same page looked at together: the second's write finds the rule
    state moved and keeps nothing; the full path then judges it over the first's state, so the
    focus losses are counted across both (the third loss is flagged)."""
    ps = running(max_focus_losses=2)
    t0 = dt.datetime.now(dt.UTC)
    e = events.EventIn
    first = _look_batch(database, ps, [e(1, "window_blur", None, {}),
                                       e(2, "window_focus", None, {})], t0)
    second = _look_batch(database, ps, [e(3, "window_blur", None, {}),
                                        e(4, "window_focus", None, {})], t0)
    assert isinstance(first, hotwrites.BatchWrite) and isinstance(second, hotwrites.BatchWrite)
    before = _session_row(db, ps)
    assert _write(database, first) is not None
    assert _write(database, second) is None
    db.rollback()
    assert db.scalars(select(IntegrityEvent.seq).order_by(IntegrityEvent.seq)).all() == [1, 2]
    db.rollback()  # a fresh transaction: another connection has written since
    ps_locked = db.get(ProctorSession, ps.id, with_for_update=True)
    out = events.ingest_events(db, ps_locked, [e(3, "window_blur", None, {}),
                                               e(4, "window_focus", None, {})], now=t0)
    db.commit()
    assert EventState.from_json(_session_row(db, ps).rule_state).focus_episodes == 2
    third = _look_batch(database, ps, [e(5, "tab_hidden", None, {})], t0)
    assert third is None  # the third loss raises a flag: the full path's
    assert out["flags"] == [] and before.rule_state != _session_row(db, ps).rule_state


def test_a_batch_of_stored_events_is_answered_from_the_look(db, database, running):
    ps = running()
    t0 = dt.datetime.now(dt.UTC)
    batch = [events.EventIn(1, "copy", None, {}), events.EventIn(2, "window_blur", None, {})]
    db.rollback()  # a fresh transaction: another connection has written since
    ps_locked = db.get(ProctorSession, ps.id, with_for_update=True)
    events.ingest_events(db, ps_locked, batch[:1], now=t0)
    db.commit()
    look = _look_batch(database, ps, batch[:1], t0)
    assert look == {"acks": [{"seq": 1, "status": "duplicate"}], "flags": [],
                    "server_now": t0.isoformat()}
    write = _look_batch(database, ps, batch, t0)
    assert write.answer["acks"] == [{"seq": 1, "status": "duplicate"},
                                    {"seq": 2, "status": "stored"}]
    assert [r["seq"] for r in write.rows] == [2]


def test_the_fast_and_full_paths_mixed_raise_what_the_whole_history_raises(db, database,
                                                                             running):
    """Random batches, some arriving late, each through the look and its write when it takes
    them, else the full path: the flags stored and the kept state are those of the whole
    history judged at once (``flags.evaluate``)."""
    ps = running(max_focus_losses=3, fullscreen_grace_s=5, offline_grace_s=10)
    rng = random.Random(2026)
    t0 = dt.datetime.now(dt.UTC)
    seqs = list(range(1, 241))
    batches = [seqs[i:i + rng.randint(1, 5)] for i in range(0, 240, 5)]
    late = batches[8:16]
    rng.shuffle(late)
    batches[8:16] = late
    kinds = {s: rng.choice(KINDS) for s in seqs}
    sent: set[int] = set()
    fast = 0
    for batch in batches:
        sent.update(batch)
        now = t0 + dt.timedelta(seconds=max(sent) * 3 + 1)
        got = [events.EventIn(s, kinds[s], t0 + dt.timedelta(seconds=s * 3), {}) for s in batch]
        look = _look_batch(database, ps, got, now)
        if look is not None and _write(database, look) is not None:
            fast += 1
            continue
        db.rollback()
        ps_locked = db.get(ProctorSession, ps.id, with_for_update=True,
                           populate_existing=True)
        events.ingest_events(db, ps_locked, got, now=now)
        db.commit()
    assert 0 < fast < len(batches)  # both paths were taken
    rows = db.execute(select(IntegrityEvent.seq, IntegrityEvent.kind, IntegrityEvent.server_at,
                             IntegrityEvent.client_at)
                      .where(IntegrityEvent.session_id == ps.id)).all()
    assert len(rows) == len(sent)
    db.expire_all()
    ps = db.get(ProctorSession, ps.id)
    whole = evaluate(policy(ps), History(events=rows, snapshots=[], now=now))
    stored = set(db.execute(select(Flag.rule, Flag.key).where(Flag.session_id == ps.id)).all())
    assert stored == {(f.rule, f.key) for f in whole} and stored
    state = EventState()
    state.advance(policy(ps), rows, now)
    assert ps.rule_state == state.as_json()


# ---------------------------------------------------------------- through the node's writer


def test_frames_and_batches_are_written_by_the_node_writer(db, database, running, vault,
                                                           blank_jpeg, node_writer):
    """What ``microcred serve``'s web workers send its writer (``microcred.writer``): the same
    writes, run in its own process, the same rows; a write whose look no longer holds keeps
    nothing there either."""
    to_writer = node_writer.client()
    ps = running()
    before = _session_row(db, ps)
    now = dt.datetime.now(dt.UTC)
    frame = _look_frame(database, ps, vault, blank_jpeg, 1, now)
    assert to_writer.run(frame) == {"seq": 1, "status": "stored", "faces": None}
    after = _session_row(db, ps)
    assert (after.console_version, after.last_seen_at) == (before.console_version + 1, now)
    snap = db.scalar(select(Snapshot).where(Snapshot.session_id == ps.id))
    assert vault.open(db.get(StoredImage, snap.image_id)).startswith(b"\xff\xd8")
    assert db.scalar(select(FaceCheck.snapshot_id).where(FaceCheck.session_id == ps.id)) == snap.id

    later = now + dt.timedelta(seconds=4)
    batch = _look_batch(database, ps, [events.EventIn(1, "window_blur", None, {"n": 1}),
                                       events.EventIn(2, "window_focus", None, {})], later)
    assert isinstance(batch, hotwrites.BatchWrite)
    answer = to_writer.run(batch)
    assert [a["status"] for a in answer["acks"]] == ["stored", "stored"]
    db.rollback()
    stored = db.execute(select(IntegrityEvent.seq, IntegrityEvent.kind, IntegrityEvent.detail)
                        .where(IntegrityEvent.session_id == ps.id)
                        .order_by(IntegrityEvent.seq)).all()
    assert [tuple(r) for r in stored] == [(1, "window_blur", {"n": 1}), (2, "window_focus", {})]
    assert _session_row(db, ps).rule_state == batch.rule_state

    # the session stops between a frame's look and its write: the writer keeps nothing
    frame = _look_frame(database, ps, vault, blank_jpeg, 2, later)
    db.execute(update(ProctorSession).where(ProctorSession.id == ps.id).values(state="terminated"))
    db.commit()
    assert to_writer.run(frame) is None
    db.rollback()
    assert db.scalar(select(Snapshot.seq).where(Snapshot.session_id == ps.id,
                                                Snapshot.seq == 2)) is None
    assert to_writer.failed == 0 and to_writer.sent == 3
