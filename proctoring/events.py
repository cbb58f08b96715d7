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

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from microcred.db import utcnow
from microcred.errors import Conflict, Invalid
from microcred.inputs import InvalidInput, object_list, parse_timestamp
from proctoring import hooks
from proctoring.faces import count_faces
from proctoring.flags import (
    EVENT_KINDS,
    History,
    evaluate,
    points,
    risk_score,
    running_spans,
    snapshots_missing,
)
from proctoring.images import ImageTooLarge, ImageUnreadable, ImageVault
from proctoring.models import Flag, IntegrityEvent, ProctorSession, Snapshot, Transition
from proctoring.sessions import get_session, info, policy
from proctoring.states import RUNNING, State

MAX_EVENTS_PER_BATCH = 100
MAX_DETAIL_CHARS = 1000
MAX_SEQ = 2**53
ACCEPTING = frozenset({State.IN_PROGRESS, State.PAUSED, State.SUBMITTED, State.IN_REVIEW})


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


def _require_accepting(ps: ProctorSession) -> None:
    if State(ps.state) not in ACCEPTING:
        raise Conflict(f"the session is {ps.state}; it takes no more events", state=ps.state)


def touch(session: Session, ps: ProctorSession, now: dt.datetime) -> None:
    """Note that the candidate's page was heard from (the console's connection column)."""
    session.execute(update(ProctorSession).where(ProctorSession.id == ps.id)
                    .values(last_seen_at=now).execution_options(synchronize_session=False))
    # stored already: a plain assignment would mark the row dirty and flush the same UPDATE
    set_committed_value(ps, "last_seen_at", now)


def ingest_events(
    session: Session, ps: ProctorSession, events: list[EventIn], *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Store a batch; returns ``{"acks": [{"seq", "status"}], "flags": [new flag messages]}``.
    An empty batch is a ping: it updates the connection time and checks that the camera has
    not gone silent (a page whose snapshots stopped still pings)."""
    now = now or utcnow()
    _require_accepting(ps)
    touch(session, ps, now)
    known = set()
    if events:
        known = set(session.scalars(select(IntegrityEvent.seq).where(
            IntegrityEvent.session_id == ps.id,
            IntegrityEvent.seq.in_([e.seq for e in events]))))
    acks, stored = [], []
    for e in events:
        if e.seq in known:
            acks.append({"seq": e.seq, "status": "duplicate"})
            continue
        row = IntegrityEvent(session_id=ps.id, seq=e.seq, kind=e.kind, client_at=e.client_at,
                             server_at=now, detail=e.detail)
        session.add(row)
        stored.append(row)
        acks.append({"seq": e.seq, "status": "stored"})
    session.flush()
    extra: list[hooks.FlagSpec] = []
    for row in stored:
        extra += _provider_flags(ps, hooks.EventInfo(row.kind, row.seq, row.server_at,
                                                     row.client_at, dict(row.detail)))
    if stored:
        new = apply_rules(session, ps, now=now, extra=extra)
    else:
        new = record_camera_silence(session, ps, now=now)
    return {"acks": acks, "flags": [f.message for f in new], "server_now": now.isoformat()}


def _provider_flags(ps: ProctorSession, event: hooks.EventInfo) -> list[hooks.FlagSpec]:
    out = []
    for plugin, result in hooks.call("microcred_integrity_event", session=info(ps), event=event):
        if hooks.failed(result):
            continue
        for spec in result or []:
            if isinstance(spec, hooks.FlagSpec):
                out.append(hooks.FlagSpec(spec.rule, spec.key, spec.severity, spec.message,
                                          source=plugin))
    return out


def record_snapshot(
    session: Session,
    ps: ProctorSession,
    vault: ImageVault,
    *,
    seq: int,
    image: bytes,
    client_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> tuple[Snapshot, bool]:
    """Store an encrypted camera frame and the faces found in it. Returns (snapshot, created):
    a retried upload of the same ``seq`` returns the stored one."""
    now = now or utcnow()
    _require_accepting(ps)
    touch(session, ps, now)
    existing = session.scalar(select(Snapshot).where(Snapshot.session_id == ps.id,
                                                     Snapshot.seq == seq))
    if existing is not None:
        return existing, False
    try:
        stored = vault.store(session, session_id=ps.id, kind="snapshot", image=image)
    except ImageTooLarge as exc:
        raise Invalid(f"the snapshot is too large: {exc}", field="image") from None
    except ImageUnreadable as exc:
        raise Invalid(f"the snapshot is not an image: {exc}", field="image") from None
    faces = count_faces(vault.open(stored)).faces
    snap = Snapshot(session_id=ps.id, seq=seq, image_id=stored.id, faces=faces,
                    client_at=client_at, server_at=now)
    session.add(snap)
    session.flush()
    extra = _provider_flags(ps, hooks.EventInfo("snapshot", seq, now, client_at,
                                                {"faces": faces, "snapshot_id": snap.id}))
    apply_rules(session, ps, now=now, extra=extra)
    return snap, True


def raise_flags(session: Session, ps: ProctorSession, specs: list[hooks.FlagSpec],
                *, now: dt.datetime | None = None) -> list[Flag]:
    """Store the flags not stored yet and refresh the session's risk score."""
    now = now or utcnow()
    have = {(f.rule, f.key) for f in session.scalars(select(Flag).where(Flag.session_id == ps.id))}
    new = []
    for spec in specs:
        if (spec.rule, spec.key) in have:
            continue
        have.add((spec.rule, spec.key))
        flag = _flag(ps.id, spec, now)
        session.add(flag)
        new.append(flag)
    if new:
        session.flush()
        score = risk_score(flags_of(session, ps))
        session.execute(update(ProctorSession).where(ProctorSession.id == ps.id)
                        .values(risk_score=score).execution_options(synchronize_session=False))
        ps.risk_score = score
    return new


def _flag(session_id: int, spec: hooks.FlagSpec, now: dt.datetime) -> Flag:
    return Flag(session_id=session_id, rule=spec.rule[:64], key=spec.key[:64],
                severity=spec.severity, points=points(spec.severity),
                message=spec.message[:2000], source=spec.source[:64], at=now)


def apply_rules(session: Session, ps: ProctorSession, *, now: dt.datetime | None = None,
                extra: list[hooks.FlagSpec] | None = None) -> list[Flag]:
    """Run every rule over the session's whole history and store what is new."""
    now = now or utcnow()
    history = History(events=events_of(session, ps), snapshots=snapshots_of(session, ps), now=now,
                      running=running_of(session, ps))
    return raise_flags(session, ps, evaluate(policy(ps), history) + list(extra or []), now=now)


def record_camera_silence(session: Session, ps: ProctorSession, *,
                          now: dt.datetime | None = None) -> list[Flag]:
    """Flag the camera of one session if it has sent no snapshot for too long (see
    :func:`record_camera_silences`); the caller holds the session row's lock."""
    return record_camera_silences(session, [ps], now=now).get(ps.id, [])


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
    snaps: dict[int, list[Any]] = {}
    for r in session.execute(select(Snapshot.session_id, Snapshot.seq, Snapshot.faces,
                                    Snapshot.server_at).where(Snapshot.session_id.in_(watch))):
        snaps.setdefault(r.session_id, []).append(r)
    transitions: dict[int, list[Any]] = {}
    for r in session.execute(_running_transitions(watch)):
        transitions.setdefault(r.session_id, []).append(r)
    specs = {}
    for sid, (_ps, pol) in watch.items():
        history = History(events=[], snapshots=snaps.get(sid, []), now=now,
                          running=running_spans(transitions.get(sid, [])))
        found = list(snapshots_missing(pol, history))
        if found:
            specs[sid] = found
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


def sweep_rules(session: Session) -> list[Flag]:
    """Run the flag rules over every running session, for the rules that depend on time (a
    camera that stopped sending snapshots, a full-screen exit not ended): a closed page sends
    nothing that would run them. One short write transaction per session; commits as it goes.
    Called by ``microcred proctoring sweep`` and by ``microcred serve``'s sweeper."""
    raised: list[Flag] = []
    for sid in running_session_ids(session):
        ps = get_session(session, sid, lock=True)
        if State(ps.state) in RUNNING:
            raised.extend(apply_rules(session, ps))
        session.commit()
    return raised


def running_of(session: Session, ps: ProctorSession) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """The spans the session spent in progress (``flags.running_spans``)."""
    return running_spans(session.execute(_running_transitions([ps.id])).all())


def _running_transitions(ids: Any) -> Any:
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
