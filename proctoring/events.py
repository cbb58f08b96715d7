"""Integrity events and snapshots from the candidate's page, and the flags they raise.

The page numbers everything it sends (``seq``, its own counter, kept in localStorage) and
retries until acknowledged, exactly like answers; ``(session, seq)`` is unique, so a retry is a
``duplicate``, never a second row. Each row gets the server's time of arrival. Events are
accepted while the session runs and, because an offline page sends its queue late, after
submission until the review is decided.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, tuple_, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from microcred.db import utcnow
from microcred.errors import Conflict, Invalid
from microcred.inputs import InvalidInput, object_list, parse_timestamp
from proctoring import face_checks, hook_outbox, hooks
from proctoring.faces import count_frame_faces
from proctoring.flags import (
    EVENT_KINDS,
    MAX_COUNTED_PER_RULE,
    EventState,
    History,
    evaluate,
    missing_snapshot_limit_s,
    points,
    risk_score,
    running_spans,
    snapshot_faces,
    snapshots_missing,
)
from proctoring.images import ImageTooLarge, ImageUnreadable, ImageVault, SealedImage
from proctoring.models import (
    Flag,
    IntegrityEvent,
    ProctorSession,
    Snapshot,
    StoredImage,
    Transition,
    console_counted,
)
from proctoring.policy import ProctoringPolicy
from proctoring.sessions import get_session, info, policy
from proctoring.states import RUNNING, State

MAX_EVENTS_PER_BATCH = 100
MAX_DETAIL_CHARS = 1000
MAX_SEQ = 2**53
ACCEPTING = frozenset({State.IN_PROGRESS, State.PAUSED, State.SUBMITTED, State.IN_REVIEW})
#: the tables a frame's write and the last-seen UPDATE use as plain Core statements (and
#: ``proctoring.hotwrites``)
SESSIONS = ProctorSession.__table__
IMAGES = StoredImage.__table__
SNAPSHOTS = Snapshot.__table__


@dataclass(frozen=True)
class EventIn:
    seq: int
    kind: str
    client_at: dt.datetime | None
    detail: dict[str, Any]


def parse_client_time(value: Any, where: str) -> dt.datetime | None:
    """The page's own clock for an event or snapshot (None if not sent). Refused, naming
    ``where``, if it is not a zoned ISO 8601 time within range; 422 like every other bad field
    of an event."""
    try:
        return parse_timestamp(value, where)
    except InvalidInput as exc:
        raise Invalid(exc.message, field=where) from None


def parse_seq(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SEQ:
        raise Invalid(f"{where} must be a positive integer", field=where)
    return value


def parse_events(payload: Any) -> list[EventIn]:
    """Check a batch ``{"events": [{"seq", "kind", "at", "detail"}]}``; name any bad field."""
    out = []
    for where, e in object_list(payload, "events", most=MAX_EVENTS_PER_BATCH):
        seq = parse_seq(e.get("seq"), f"{where}.seq")
        kind = e.get("kind")
        if kind not in EVENT_KINDS:
            raise Invalid(f"{where}.kind must be one of: {', '.join(sorted(EVENT_KINDS))}",
                          field=f"{where}.kind")
        detail = e.get("detail") or {}
        if not isinstance(detail, dict):
            raise Invalid(f"{where}.detail must be an object", field=f"{where}.detail")
        if len(json.dumps(detail)) > MAX_DETAIL_CHARS:
            raise Invalid(f"{where}.detail is longer than {MAX_DETAIL_CHARS} characters",
                          field=f"{where}.detail")
        out.append(EventIn(seq, kind, parse_client_time(e.get("at"), f"{where}.at"), detail))
    if len({e.seq for e in out}) != len(out):
        raise Invalid("two events in one request share a seq", field="events")
    return out


def require_accepting(state: str) -> None:
    """409 unless a session in ``state`` still takes events and snapshots."""
    if State(state) not in ACCEPTING:
        raise Conflict(f"the session is {state}; it takes no more events", state=state)


def sort_batch(events: list[EventIn], known: set[int], now: dt.datetime,
               ) -> tuple[list[dict[str, Any]], list[hooks.EventInfo]]:
    """A batch's acks, and its events not stored yet (``known``: the seqs stored), stamped
    with the server's time of arrival, in the batch's order."""
    known = set(known)
    acks, stored = [], []
    for e in events:
        if e.seq in known:
            acks.append({"seq": e.seq, "status": "duplicate"})
            continue
        known.add(e.seq)
        stored.append(hooks.EventInfo(e.kind, e.seq, now, e.client_at, dict(e.detail)))
        acks.append({"seq": e.seq, "status": "stored"})
    return acks, stored


def stored_flag_keys(session: Session, session_id: int, specs: list[hooks.FlagSpec],
                     ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The keys of these flags as stored (rule and key cut to their columns), and those of
    them the session has already: one statement, whatever the session's number of flags."""
    wanted = {(spec.rule[:64], spec.key[:64]) for spec in specs}
    have = set(session.execute(select(Flag.rule, Flag.key).where(
        Flag.session_id == session_id, tuple_(Flag.rule, Flag.key).in_(list(wanted)))).all())
    return wanted, have


def touch(session: Session, ps: ProctorSession, now: dt.datetime, *,
          console_change: bool = False) -> None:
    """Note that the candidate's page was heard from (the console's connection column).
    ``console_change``: what follows changes the session's console row (a snapshot): its
    change counter moves in this same statement (``models.console_counted``)."""
    values: dict[str, Any] = {"last_seen_at": now}
    if console_change:
        values["console_version"] = SESSIONS.c.console_version + 1
        console_counted(session).add(ps.id)
    # the table's UPDATE, not the ORM's: nothing of the session's objects to synchronise
    session.execute(update(SESSIONS).where(SESSIONS.c.id == ps.id).values(**values))
    # stored already: a plain assignment would mark the row dirty and flush the same UPDATE
    set_committed_value(ps, "last_seen_at", now)


def ingest_events(
    session: Session, ps: ProctorSession, events: list[EventIn], *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Store a batch; returns ``{"acks": [{"seq", "status"}], "flags": [new flag messages]}``.
    An empty batch is a ping: it updates the connection time and checks that the camera has
    not gone silent (a page whose snapshots stopped still pings).

    A batch costs the same statements at the session's 10th event as at its 10,000th: the rules
    step from the state kept on the session row (``flags.EventState``) over what arrived, never
    the history (:func:`judge_events`)."""
    now = now or utcnow()
    require_accepting(ps.state)
    if not events:
        touch(session, ps, now)
        new = record_camera_silence(session, ps, now=now)
        return {"acks": [], "flags": [f.message for f in new], "server_now": now.isoformat()}
    acks, stored = sort_batch(events, stored_seqs(session, ps.id, events), now)
    new = []
    if stored:
        session.execute(insert(IntegrityEvent), [  # one statement for the batch
            {"session_id": ps.id, "seq": e.seq, "kind": e.kind, "client_at": e.client_at,
             "server_at": now, "detail": e.detail} for e in stored])
    ps.last_seen_at = now  # one UPDATE of the row, with the rules' state, at the flush
    if stored:
        new = raise_flags(session, ps, judge_events(session, ps, stored, now), now=now)
        # the providers hear of them after the commit; their flags are stored by that job
        hook_outbox.announce_events(session, info(ps), stored)
    session.flush()
    return {"acks": acks, "flags": [f.message for f in new], "server_now": now.isoformat()}


def stored_seqs(session: Session, session_id: int, events: list[EventIn]) -> set[int]:
    """Which of these events' seqs the session has stored already."""
    return set(session.scalars(select(IntegrityEvent.seq).where(
        IntegrityEvent.session_id == session_id,
        IntegrityEvent.seq.in_([e.seq for e in events]))))


def judge_events(session: Session, ps: ProctorSession, arrived: list[Any],
                 now: dt.datetime) -> list[hooks.FlagSpec]:
    """The event rules' flags for the events that just ``arrived`` (stored already), stepping
    the session's kept state over them and storing the new state (no query). Where there is no
    state yet (a session from before it was kept), or a batch older than what was judged
    arrives late (an offline page's queue), every event is judged again in the page's order
    (plain columns, once) and the state rebuilt."""
    pol = policy(ps)
    state = EventState.from_json(ps.rule_state)
    if state is None or min(e.seq for e in arrived) <= state.seq:
        state = EventState()
        arrived = session.execute(
            select(IntegrityEvent.seq, IntegrityEvent.kind, IntegrityEvent.server_at,
                   IntegrityEvent.client_at).where(IntegrityEvent.session_id == ps.id)).all()
    found = state.advance(pol, arrived, now)
    ps.rule_state = state.as_json()  # flushed with the session's other changes
    return found


@dataclass(frozen=True)
class PreparedSnapshot:
    """A camera frame made ready to store, before any lock is taken: decoded, shrunk,
    re-encoded, encrypted (``images.SealedImage``), and its faces counted, or None: to be
    counted by the face checker (``proctoring.face_checks``) after it is stored."""

    sealed: SealedImage
    faces: int | None


def prepare_snapshot(vault: ImageVault, *, session_id: int, image: bytes,
                     count: bool = True) -> PreparedSnapshot:
    """All the CPU work of a snapshot that is done before storing it, outside any transaction:
    the caller locks the session only to store the result (:func:`record_snapshot`). ``count``
    False leaves the face search (about 9 ms of CPU, the bulk of a snapshot's cost) to the
    face checker. Raises :class:`Invalid` naming the image when it is refused."""
    try:
        sealed = vault.seal(session_id=session_id, kind="snapshot", image=image)
    except ImageTooLarge as exc:
        raise Invalid(f"the snapshot is too large: {exc}", field="image") from None
    except ImageUnreadable as exc:
        raise Invalid(f"the snapshot is not an image: {exc}", field="image") from None
    # counted on the shrunk pixels the JPEG was encoded from: decoding it again cost as much
    return PreparedSnapshot(sealed, count_frame_faces(sealed.pixels).faces if count else None)


def record_snapshot(
    session: Session,
    ps: ProctorSession,
    vault: ImageVault,
    *,
    seq: int,
    image: bytes | PreparedSnapshot,
    client_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> tuple[Snapshot, bool]:
    """Store an encrypted camera frame and the faces found in it. Returns (snapshot, created):
    a retried upload of the same ``seq`` returns the stored one. ``image``: best prepared
    before the session is locked (:func:`prepare_snapshot`); raw bytes are prepared here, faces
    counted. A frame prepared without its count is stored with ``faces`` None and a face check
    owed (``face_checks.queue``), which judges its faces and tells the plugins of it later.

    Judged in constant time: the faces of this frame, the camera's silence since the newest
    frame before it, and the rules due by now (an open full-screen exit), never the history.

    The caller holds the session's lock (on SQLite, the database's one write lock), so the
    rows are written as plain INSERTs, not through the ORM's unit of work: the frame's
    transaction was the longest that a busy node's writers queued behind."""
    now = now or utcnow()
    require_accepting(ps.state)
    touch(session, ps, now, console_change=True)
    # a retried upload of this seq, and the newest frame before it: one statement
    found = stored_or_newest(session, ps.id, seq)
    if any(row.seq == seq for row in found):
        return session.scalar(select(Snapshot).where(Snapshot.session_id == ps.id,
                                                     Snapshot.seq == seq)), False
    before = found[0] if found else None
    prepared = (image if isinstance(image, PreparedSnapshot)
                else prepare_snapshot(vault, session_id=ps.id, image=image))
    image_id = session.execute(
        insert(IMAGES).values(vault.row_values(prepared.sealed, session_id=ps.id, now=now))
    ).inserted_primary_key[0]
    values = {"session_id": ps.id, "seq": seq, "image_id": image_id, "faces": prepared.faces,
              "client_at": client_at, "server_at": now}
    snap = Snapshot(id=session.execute(insert(SNAPSHOTS).values(values)).inserted_primary_key[0],
                    **values)
    make_transient_to_detached(snap)  # the row is written: the session takes it as stored
    session.add(snap)
    pol = policy(ps)
    # a gap within the limit on the clock is within it in exam time too: nothing for the camera
    # rule to judge, and no need to read the session's transitions (empty spans: it says nothing)
    limit = missing_snapshot_limit_s(pol)
    short = before is not None and (now - before.server_at).total_seconds() <= limit
    history = History(events=[], snapshots=[snap], now=now, since=before,
                      running=() if limit <= 0 or short else running_of(session, ps))
    # the gap this frame closed (the one it opens is ~0 s: the pings and the sweeper watch it)
    specs = list(snapshot_faces(pol, history)) + list(snapshots_missing(pol, history))
    state = EventState.from_json(ps.rule_state)
    if state is not None:  # rules due by now (an open full-screen exit)
        specs += state.advance(pol, [], now)
    raise_flags(session, ps, specs, now=now)
    if prepared.faces is None:
        face_checks.queue(session, snap)
    else:
        announce_snapshot(session, ps, snap)
    return snap, True


def _stored_or_newest_statement() -> Any:
    newest = (select(SNAPSHOTS.c.id).where(SNAPSHOTS.c.session_id == bindparam("sid"))
              .order_by(SNAPSHOTS.c.server_at.desc(), SNAPSHOTS.c.seq.desc())
              .limit(1).scalar_subquery())
    return (select(SNAPSHOTS.c.seq, SNAPSHOTS.c.faces, SNAPSHOTS.c.server_at)
            .where(SNAPSHOTS.c.session_id == bindparam("sid"),
                   (SNAPSHOTS.c.seq == bindparam("seq")) | (SNAPSHOTS.c.id == newest)))


#: built once (building it cost about as much as running it)
_STORED_OR_NEWEST = _stored_or_newest_statement()


def stored_or_newest(session: Session, session_id: int, seq: int) -> list[Any]:
    """The session's frame ``seq`` if stored, and its newest frame (by arrival): at most two
    rows (one when they are the same), through the (session, seq) index."""
    return session.execute(_STORED_OR_NEWEST, {"sid": session_id, "seq": seq}).all()


def announce_snapshot(session: Session, ps: ProctorSession, snap: Snapshot) -> None:
    """Tell the plugins of a frame with its faces (``microcred_integrity_event``, kind
    ``snapshot``), after the transaction commits."""
    hook_outbox.announce_events(session, info(ps), [hooks.EventInfo(
        "snapshot", snap.seq, snap.server_at, snap.client_at,
        {"faces": snap.faces, "snapshot_id": snap.id})])


def raise_flags(session: Session, ps: ProctorSession, specs: list[hooks.FlagSpec],
                *, now: dt.datetime | None = None) -> list[Flag]:
    """Store the flags not stored yet and refresh the session's risk score. Reads only the
    stored flags with these rules and keys, and each rule's few highest points: the same
    statements however many flags the session has."""
    now = now or utcnow()
    if not specs:
        return []
    _wanted, have = stored_flag_keys(session, ps.id, specs)
    new = []
    for spec in specs:
        if (spec.rule[:64], spec.key[:64]) in have:
            continue
        have.add((spec.rule[:64], spec.key[:64]))
        flag = _flag(ps.id, spec, now)
        session.add(flag)
        new.append(flag)
    if new:
        session.flush()
        ps.risk_score = risk_of(session, ps.id)
        session.flush()
    return new


def risk_of(session: Session, session_id: int) -> int:
    """The session's risk score (``flags.risk_score``) from each rule's highest points only."""
    rank = func.row_number().over(partition_by=Flag.rule, order_by=Flag.points.desc()) \
        .label("rank")
    top = select(Flag.points, rank).where(Flag.session_id == session_id).subquery()
    return int(session.scalar(select(func.coalesce(func.sum(top.c.points), 0))
                              .where(top.c.rank <= MAX_COUNTED_PER_RULE)) or 0)


def _flag(session_id: int, spec: hooks.FlagSpec, now: dt.datetime) -> Flag:
    return Flag(session_id=session_id, rule=spec.rule[:64], key=spec.key[:64],
                severity=spec.severity, points=points(spec.severity),
                message=spec.message[:2000], source=spec.source[:64], at=now)


def apply_rules(session: Session, ps: ProctorSession, *, now: dt.datetime | None = None,
                extra: list[hooks.FlagSpec] | None = None) -> list[Flag]:
    """Run every rule over the session's whole history (plain columns) and store what is new,
    rebuilding the event rules' kept state. The incremental paths (:func:`ingest_events`,
    :func:`record_snapshot`, :func:`due_rules`) give the same flags; this is for a session
    whose state must be rebuilt, and for checks."""
    now = now or utcnow()
    events = session.execute(
        select(IntegrityEvent.seq, IntegrityEvent.kind, IntegrityEvent.server_at,
               IntegrityEvent.client_at).where(IntegrityEvent.session_id == ps.id)).all()
    snaps = session.execute(select(Snapshot.seq, Snapshot.faces, Snapshot.server_at)
                            .where(Snapshot.session_id == ps.id)).all()
    history = History(events=events, snapshots=snaps, now=now, running=running_of(session, ps))
    state = EventState()
    state.advance(policy(ps), events, now)
    ps.rule_state = state.as_json()
    return raise_flags(session, ps, evaluate(policy(ps), history) + list(extra or []), now=now)


def due_rules(session: Session, ps: ProctorSession, *, now: dt.datetime | None = None) -> list[Flag]:
    """The rules that depend on the time of evaluation, not on anything arriving: a full-screen
    exit not ended, and the camera silent since its newest snapshot (to now, or to the end of
    the exam). What the sweeper runs on running sessions and submission runs once; a few
    statements whatever the session's history (a session with no kept state is judged whole
    once, :func:`apply_rules`)."""
    now = now or utcnow()
    state = EventState.from_json(ps.rule_state)
    if state is None:
        return apply_rules(session, ps, now=now)
    pol = policy(ps)
    specs = state.advance(pol, [], now)
    if pol.snapshot_interval_s:
        last = session.execute(
            select(Snapshot.seq, Snapshot.faces, Snapshot.server_at)
            .where(Snapshot.session_id == ps.id)
            .order_by(Snapshot.server_at.desc(), Snapshot.seq.desc()).limit(1)).first()
        history = History(events=[], snapshots=[], now=now, since=last,
                          running=running_of(session, ps))
        specs += list(snapshots_missing(pol, history))
    return raise_flags(session, ps, specs, now=now)


def record_camera_silence(session: Session, ps: ProctorSession, *,
                          now: dt.datetime | None = None) -> list[Flag]:
    """Flag the camera of one session if it has sent no snapshot for too long (see
    :func:`record_camera_silences`); the caller holds the session row's lock."""
    return record_camera_silences(session, [ps], now=now).get(ps.id, [])


def _silent_cameras(session: Session, policies: dict[int, ProctoringPolicy],
                    now: dt.datetime) -> dict[int, list[hooks.FlagSpec]]:
    """The camera rule (``flags.snapshots_missing``) over these sessions by ``now``, stored
    or not: their newest frames and running spans in two statements, whatever their number."""
    # the newest snapshot of each: the gaps before it were judged as each snapshot arrived
    newest = select(func.max(Snapshot.id)).where(Snapshot.session_id.in_(policies)) \
        .group_by(Snapshot.session_id)
    snaps = {r.session_id: r for r in session.execute(
        select(Snapshot.session_id, Snapshot.seq, Snapshot.faces, Snapshot.server_at)
        .where(Snapshot.id.in_(newest)))}
    transitions: dict[int, list[Any]] = {}
    for r in session.execute(running_transitions(policies)):
        transitions.setdefault(r.session_id, []).append(r)
    out = {}
    for sid, pol in policies.items():
        history = History(events=[], snapshots=[], now=now, since=snaps.get(sid),
                          running=running_spans(transitions.get(sid, [])))
        found = list(snapshots_missing(pol, history))
        if found:
            out[sid] = found
    return out


def lock_sessions(session: Session, ids: list[int]) -> list[ProctorSession]:
    """The sessions, their rows locked (in id order, so two lockers never deadlock)."""
    return list(session.scalars(select(ProctorSession).where(ProctorSession.id.in_(ids))
                                .order_by(ProctorSession.id).with_for_update()))


def record_camera_silences(session: Session, sessions: list[ProctorSession], *,
                           now: dt.datetime | None = None) -> dict[int, list[Flag]]:
    """Flag cameras that have sent no snapshot for too long (``flags.snapshots_missing``), in
    sessions in progress or paused; returns the new flags by session id.

    Cheaper than :func:`apply_rules` (no events read) and a fixed number of queries for any
    number of sessions: it runs on the page's pings, because a closed page sends nothing that
    would run the rules (the sweeper, ``microcred proctoring sweep``, runs them all; the
    console's poll only shows the flag due). The caller holds the rows' locks
    (:func:`lock_sessions`), so two callers store a flag once."""
    now = now or utcnow()
    watch = {}
    for ps in sessions:
        pol = policy(ps)
        if pol.snapshot_interval_s and State(ps.state) in RUNNING:
            watch[ps.id] = (ps, pol)
    if not watch:
        return {}
    specs = _silent_cameras(session, {sid: pol for sid, (_ps, pol) in watch.items()}, now)
    if not specs:
        return {}
    stored: dict[int, list[Any]] = {}
    for r in session.execute(select(Flag.session_id, Flag.rule, Flag.key, Flag.points)
                             .where(Flag.session_id.in_(specs))):
        stored.setdefault(r.session_id, []).append(r)
    out: dict[int, list[Flag]] = {}
    for sid, found in specs.items():
        have = {(f.rule, f.key) for f in stored.get(sid, [])}
        for spec in found:
            if (spec.rule, spec.key) not in have:
                have.add((spec.rule, spec.key))
                out.setdefault(sid, []).append(_flag(sid, spec, now))
    if out:
        session.add_all([f for new in out.values() for f in new])
        for sid, new in out.items():
            watch[sid][0].risk_score = risk_score([*stored.get(sid, []), *new])
        session.flush()  # the flags, and the scores (one executemany UPDATE)
    return out


def running_session_ids(session: Session) -> list[int]:
    """Sessions in progress or paused (what ``microcred proctoring sweep`` looks at)."""
    return list(session.scalars(select(ProctorSession.id).where(
        ProctorSession.state.in_([s.value for s in RUNNING])).order_by(ProctorSession.id)))


#: running sessions read at a time by the sweep's look for due rules
SWEEP_BATCH = 500


def sweep_rules(session: Session, *, read: Session | None = None,
                now: dt.datetime | None = None) -> list[Flag]:
    """Run the rules that depend on time (a camera that stopped sending snapshots, a
    full-screen exit not ended; :func:`due_rules`) over every running session: a closed page
    sends nothing that would run them. Called by ``microcred proctoring sweep`` and by
    ``microcred serve``'s sweeper.

    First a look without locks, in ``read`` (a read-only session: on SQLite it takes no write
    lock) or ``session``, a few statements for :data:`SWEEP_BATCH` sessions at a time
    (:func:`sessions_with_rules_due`); then one short write transaction for each session with a
    flag due and not stored yet, whose rules are judged again under its row lock. A write
    transaction per running session, as it was, took 4.2 s and 5,000 takings of SQLite's write
    lock every 30 s at 5,000 sessions with none due; this look, 0.34 s and none
    (``bench/sweep_ingest.py``)."""
    now = now or utcnow()
    reader = read if read is not None else session
    ids = running_session_ids(reader)
    due: list[int] = []
    for start in range(0, len(ids), SWEEP_BATCH):
        due += sessions_with_rules_due(reader, ids[start:start + SWEEP_BATCH], now=now)
    reader.rollback()
    raised: list[Flag] = []
    for sid in due:
        ps = get_session(session, sid, lock=True)
        if State(ps.state) in RUNNING:
            raised.extend(due_rules(session, ps, now=now))
        session.commit()
    return raised


def sessions_with_rules_due(session: Session, ids: list[int], *,
                            now: dt.datetime | None = None) -> list[int]:
    """Of these sessions, those :func:`due_rules` would raise a flag for now (or that keep no
    rule state, judged whole): read without locks, a fixed number of statements for any number
    of sessions. A filter, never the judge: the sweep judges each of these again under its lock;
    the camera's newest frame is taken by id, which can only make a silence look longer."""
    now = now or utcnow()
    due: list[int] = []
    specs: dict[int, list[hooks.FlagSpec]] = {}
    watch: dict[int, ProctoringPolicy] = {}
    for ps in session.scalars(select(ProctorSession).where(ProctorSession.id.in_(ids))):
        if State(ps.state) not in RUNNING:
            continue
        state = EventState.from_json(ps.rule_state)
        if state is None:
            due.append(ps.id)
            continue
        pol = policy(ps)
        found = list(state.advance(pol, [], now))
        if found:
            specs[ps.id] = found
        if pol.snapshot_interval_s:
            watch[ps.id] = pol
    for sid, found in (_silent_cameras(session, watch, now) if watch else {}).items():
        specs.setdefault(sid, []).extend(found)
    if specs:
        stored = set(session.execute(select(Flag.session_id, Flag.rule, Flag.key)
                                     .where(Flag.session_id.in_(specs))).all())
        due += [sid for sid, found in specs.items()
                if any((sid, spec.rule[:64], spec.key[:64]) not in stored for spec in found)]
    return sorted(due)


def running_of(session: Session, ps: ProctorSession) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """The spans the session spent in progress (``flags.running_spans``)."""
    return running_spans(session.execute(running_transitions([ps.id])).all())


def running_transitions(ids: Any) -> Any:
    """The transitions into and out of ``in_progress`` of these sessions, in order."""
    return (select(Transition.session_id, Transition.to_state, Transition.at)
            .where(Transition.session_id.in_(list(ids)),
                   (Transition.to_state == State.IN_PROGRESS.value)
                   | (Transition.from_state == State.IN_PROGRESS.value))
            .order_by(Transition.id))


def events_of(session: Session, ps: ProctorSession) -> list[IntegrityEvent]:
    return list(session.scalars(select(IntegrityEvent).where(IntegrityEvent.session_id == ps.id)
                                .order_by(IntegrityEvent.seq)))


def snapshots_of(session: Session, ps: ProctorSession) -> list[Snapshot]:
    return list(session.scalars(select(Snapshot).where(Snapshot.session_id == ps.id)
                                .order_by(Snapshot.seq)))


def flags_of(session: Session, ps: ProctorSession) -> list[Flag]:
    return list(session.scalars(select(Flag).where(Flag.session_id == ps.id).order_by(Flag.id)))
