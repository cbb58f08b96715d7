"""Event ingestion in constant time (issue 15, goal 11): a batch of integrity events, or a
snapshot, sends the same statements at the start of a long exam as after hundreds of events and
dozens of snapshots, and the rules judged incrementally raise exactly what the whole history
judged at once raises (``flags.evaluate``), out-of-order batches included, on both databases."""
from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select

from assessment.delivery import service as delivery
from microcred.querycount import count_queries
from proctoring import events
from proctoring.flags import EventState, History, evaluate
from proctoring.models import Flag, IntegrityEvent, ProctorSession
from proctoring.sessions import open_session, policy

KINDS = ["window_blur", "window_focus", "tab_hidden", "tab_visible", "right_click", "copy",
         "fullscreen_exit", "fullscreen_enter", "offline", "online", "paste"]


def _running(db, proctored, **policy):
    from proctoring.wiring import identity_gate

    ns = proctored({"identity": "none", "snapshot_interval_s": 30, **policy})
    identity_gate(db, ns.candidate, ns.exam, url_for=lambda *a, **k: "/identity")
    delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    return db.scalar(select(ProctorSession).where(ProctorSession.candidate_id == ns.candidate.id))


def _batch(seq: int, *kinds: str, at: dt.datetime) -> list[events.EventIn]:
    return [events.EventIn(seq + i, kind, at + dt.timedelta(seconds=seq + i), {})
            for i, kind in enumerate(kinds)]


def _statements(database, call) -> int:
    with count_queries(database.engine, database.write_engine) as sent:
        call()
    return len(sent)


def test_a_batch_costs_the_same_early_and_after_600_events(db, database, proctored):
    ps = _running(db, proctored, max_focus_losses=1000)
    t0 = dt.datetime.now(dt.UTC)

    def ingest(seq, *kinds):
        ps_locked = db.get(ProctorSession, ps.id, with_for_update=True)
        now = t0 + dt.timedelta(seconds=seq)
        events.ingest_events(db, ps_locked, _batch(seq, *kinds, at=t0), now=now)
        db.commit()

    quiet = ("window_blur", "window_focus", "tab_hidden")
    flagging = ("paste", "tab_visible", "copy")  # each paste and copy raises a flag
    for seq in (1, 4, 7):  # the risk score counts 3 flags per rule: from here it stays put
        ingest(seq, *flagging)
    early_quiet = _statements(database, lambda: ingest(10, *quiet))
    early_flag = _statements(database, lambda: ingest(13, *flagging))
    for seq in range(16, 616, 3):  # 200 batches of history, with flags every other batch
        ingest(seq, *(flagging if seq % 2 else quiet))
    assert db.scalar(select(IntegrityEvent.seq).order_by(IntegrityEvent.seq.desc()).limit(1)) == 615
    late_quiet = _statements(database, lambda: ingest(700, *quiet))
    late_flag = _statements(database, lambda: ingest(703, *flagging))
    assert (late_quiet, late_flag) == (early_quiet, early_flag), (early_quiet, late_quiet,
                                                                 early_flag, late_flag)
    # session (locked), seq check, the events' insert, one UPDATE of the session row
    assert early_quiet <= 5, early_quiet


def test_a_snapshot_costs_the_same_at_frame_4_and_frame_40(db, database, proctored, vault,
                                                         blank_jpeg):
    ps = _running(db, proctored)

    def snap(seq):
        prepared = events.prepare_snapshot(vault, session_id=ps.id, image=blank_jpeg)
        ps_locked = db.get(ProctorSession, ps.id, with_for_update=True)
        # the CPU work is done: what is counted is only what runs under the lock
        sent = _statements(database, lambda: events.record_snapshot(
            db, ps_locked, vault, seq=seq, image=prepared))
        db.commit()
        return sent

    for seq in (1, 2, 3):  # each has no face: the risk counts 3 such flags, then stays put
        snap(seq)
    early = snap(4)
    for seq in range(5, 40):
        snap(seq)
    assert snap(40) == early, early


def test_incremental_judging_raises_what_the_whole_history_raises(db, proctored):
    """Random batches, some sent late (an offline page's queue arrives after newer events):
    the flags stored equal those of ``evaluate`` over the whole history."""
    ps = _running(db, proctored, max_focus_losses=3, fullscreen_grace_s=5, offline_grace_s=10)
    rng = random.Random(15)
    t0 = dt.datetime.now(dt.UTC)
    seqs = list(range(1, 301))
    batches = [seqs[i:i + rng.randint(1, 6)] for i in range(0, 300, 6)]
    late = batches[10:20]  # late arrivals in the middle of the exam
    rng.shuffle(late)
    batches[10:20] = late
    kinds = {s: rng.choice(KINDS) for s in seqs}
    sent: set[int] = set()
    for batch in batches:
        sent.update(batch)
        # the server's clock keeps pace with the page's (3 s per event), as on a live exam
        now = t0 + dt.timedelta(seconds=max(sent) * 3 + 1)
        got = [events.EventIn(s, kinds[s], t0 + dt.timedelta(seconds=s * 3), {}) for s in batch]
        ps_locked = db.get(ProctorSession, ps.id, with_for_update=True)
        events.ingest_events(db, ps_locked, got, now=now)
        db.commit()
    rows = db.execute(select(IntegrityEvent.seq, IntegrityEvent.kind, IntegrityEvent.server_at,
                             IntegrityEvent.client_at)
                      .where(IntegrityEvent.session_id == ps.id)).all()
    assert len(rows) == len(sent)
    db.refresh(ps)
    whole = evaluate(policy(ps), History(events=rows, snapshots=[], now=now))
    stored = set(db.execute(select(Flag.rule, Flag.key).where(Flag.session_id == ps.id)).all())
    assert stored == {(f.rule, f.key) for f in whole}
    assert stored  # the random history did raise flags
    # and the kept state is the whole history's
    state = EventState()
    state.advance(policy(ps), rows, now)
    assert ps.rule_state == state.as_json()


def test_a_session_without_kept_state_is_judged_whole_once(db, database, proctored):
    """Sessions created before the state was kept (NULL) are rebuilt from their events on the
    next batch, then judged incrementally."""
    ps = _running(db, proctored, max_focus_losses=1)
    t0 = dt.datetime.now(dt.UTC)
    events.ingest_events(db, ps, _batch(1, "window_blur", "window_focus", at=t0), now=t0)
    ps.rule_state = None
    db.commit()
    out = events.ingest_events(db, ps, _batch(3, "tab_hidden", at=t0), now=t0)
    db.commit()
    assert any("left the exam window 2 times" in m for m in out["flags"])
    assert EventState.from_json(ps.rule_state).seq == 3
    assert open_session(db, ps.candidate_id, ps.exam_id) is None  # it is running, not open
