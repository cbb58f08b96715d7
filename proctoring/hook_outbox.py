"""Outside plugins hear of a change after it commits, never inside its transaction (issue 15,
goal 9).

The notification hooks (:data:`NOTIFICATIONS`: a session started, paused, resumed, submitted,
reviewed, any state change) were called inside the transaction that made the change: at a start,
under the start's locks (on SQLite, the database's write lock), so a slow remote plugin held up
every other write of the deployment, and anything a plugin did to the transaction went with the
change. Now the code that makes the change calls :func:`announce`, which writes a
:class:`~proctoring.models.HookCall` row in that same transaction (a change that rolls back
announces nothing) and asks for the job :data:`HOOK_JOB` to be queued when it commits
(``microcred.jobs.enqueue_after_commit``, as badge issuance does). The job
(:func:`deliver`) claims the row in one short transaction, calls the plugins with no transaction
open, and marks it done in another. The row is the outbox; the queue only the wake-up: a job lost
before it ran (a crash between the commit and the enqueue, a queue that was down) is queued again
by the sweeper (:func:`requeue_stale`).

Delivery is once per row: a job that runs twice, or two copies at once, find the row claimed or
done and call nothing (the claim is a compare-and-set on ``state``). A worker killed while the
plugins run leaves the row ``running``; the sweeper queues it again after
:data:`RUNNING_LOST_AFTER`, so a plugin may then hear that change twice (at least once, never
lost). A plugin that raises is logged and skipped as before (``hooks._isolated``) and named in
the row's ``error``; it is not called again, because calling again would repeat the call to
every plugin that succeeded.

Calls of one proctoring session are delivered in the order they were announced: a job first
delivers the session's earlier calls still owed.

Integrity events go the same way (:func:`announce_events`, one row per stored batch or
snapshot): the job calls ``microcred_integrity_event`` for each event with no transaction open,
then stores the flags the plugins returned in one short transaction of its own, under the
session's row lock, as the events' request would have (``events.raise_flags``: once per rule
and key, so a job that runs again raises nothing twice), and marks the row done in that same
transaction. A provider's flag is therefore stored a moment after its event, not with it: it is
not in the events request's answer, and one that lands after the session was finalized is kept
for the reviewer but did not weigh in the decision to hold the result.

The identity verifiers (``microcred_verify_identity``), whose answers decide admission, are
called before any lock instead (``identity.prepare``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from microcred.db import utcnow
from microcred.jobs import enqueue_after_commit, job
from proctoring import hooks
from proctoring.models import HookCall

log = logging.getLogger(__name__)

HOOK_JOB = "proctoring.hook"
#: The hooks that only tell (their answers are not read): announced, delivered after commit.
NOTIFICATIONS = frozenset({
    "microcred_session_started", "microcred_session_paused", "microcred_session_resumed",
    "microcred_session_submitted", "microcred_review_decided", "microcred_state_changed",
})
#: The hook whose answers (flags) the job stores (:func:`announce_events`).
INTEGRITY_EVENT = "microcred_integrity_event"
#: A call still pending this long after its job was queued is queued again by the sweeper (the
#: job was lost with a worker or a Redis, or could not be queued).
REQUEUE_AFTER = dt.timedelta(minutes=10)
#: A call claimed this long ago and not done: its worker died while the plugins ran (no plugin
#: call takes this long: huey's worker would be stuck), so it is owed again.
RUNNING_LOST_AFTER = dt.timedelta(minutes=30)
#: At most this many calls queued again per sweep (a sweep stays short after a long outage).
REQUEUE_BATCH = 500
ERROR_LENGTH = 2000


def announce(db: Session, hook: str, session: hooks.SessionInfo, **arguments: Any) -> HookCall | None:
    """Owe the plugins the notification ``hook`` (``session`` and ``arguments``: its keyword
    arguments, JSON values), delivered after ``db``'s transaction commits. None when no plugin
    implements ``hook`` (nothing is written: every process builds the same plugin manager from
    what is installed, so the worker would call nobody)."""
    if hook not in NOTIFICATIONS:
        raise ValueError(f"{hook} is not a notification hook (known: {', '.join(sorted(NOTIFICATIONS))})")
    if not getattr(hooks.plugin_manager().hook, hook).get_hookimpls():
        return None
    row = HookCall(session_id=session.session_id, hook=hook,
                   arguments={"session": dataclasses.asdict(session), **arguments})
    db.add(row)
    db.flush()
    enqueue_after_commit(db, HOOK_JOB, row.id)
    return row


def listening_for_events() -> bool:
    """Whether a plugin implements ``microcred_integrity_event`` (else nothing is owed)."""
    return bool(getattr(hooks.plugin_manager().hook, INTEGRITY_EVENT).get_hookimpls())


def announce_events(db: Session, session: hooks.SessionInfo,
                    events: list[hooks.EventInfo]) -> HookCall | None:
    """Owe the plugins ``microcred_integrity_event`` for each of ``events`` (stored in ``db``'s
    transaction), in their order; the flags they return are stored by the job. None when no
    plugin implements the hook, or there are no events."""
    if not events or not listening_for_events():
        return None
    row = HookCall(session_id=session.session_id, hook=INTEGRITY_EVENT,
                   arguments={"session": dataclasses.asdict(session),
                              "events": [_event_json(e) for e in events]})
    db.add(row)
    db.flush()
    enqueue_after_commit(db, HOOK_JOB, row.id)
    return row


def _event_json(event: hooks.EventInfo) -> dict[str, Any]:
    return {"kind": event.kind, "seq": event.seq, "server_at": event.server_at.isoformat(),
            "client_at": event.client_at.isoformat() if event.client_at else None,
            "detail": dict(event.detail)}


def _event(data: dict[str, Any]) -> hooks.EventInfo:
    def when(text: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(text) if text else None

    return hooks.EventInfo(data["kind"], data["seq"], when(data["server_at"]),
                           when(data["client_at"]), dict(data.get("detail") or {}))


@job(HOOK_JOB, retries=3, retry_delay=10, retry_backoff=3)  # 10 s, 30 s, 90 s
def hook_job(db: Session, call_id: int) -> str:
    return deliver(db, call_id)


def deliver(db: Session, call_id: int) -> str:
    """Call the plugins for the call ``call_id``, after the earlier calls of its proctoring
    session still owed; its state afterwards (``done``; ``missing`` when there is no such row;
    ``running`` or ``pending`` when another job holds it or it must be retried)."""
    target = db.get(HookCall, call_id)
    if target is None:
        db.rollback()
        log.warning("hook call %s: no such row", call_id)
        return "missing"
    owed = list(db.scalars(select(HookCall.id).where(
        HookCall.session_id == target.session_id, HookCall.id <= call_id,
        HookCall.state == "pending").order_by(HookCall.id)))
    db.rollback()  # no transaction stays open while the plugins run
    for owed_id in owed:
        _deliver_one(db, owed_id)
    state = db.scalar(select(HookCall.state).where(HookCall.id == call_id))
    db.rollback()
    return state


def _deliver_one(db: Session, call_id: int) -> None:
    claimed = db.execute(
        update(HookCall).where(HookCall.id == call_id, HookCall.state == "pending")
        .values(state="running", attempts=HookCall.attempts + 1, queued_at=utcnow())
        .returning(HookCall.hook, HookCall.arguments)
        .execution_options(synchronize_session=False)).first()
    db.commit()
    if claimed is None:  # another copy of the job has it, or it is done
        return
    hook, arguments = claimed
    session = hooks.SessionInfo(**arguments["session"])
    flags: list[tuple[hooks.EventInfo, hooks.FlagSpec]] = []
    failed: list[str] = []
    try:
        if hook == INTEGRITY_EVENT:
            for event in map(_event, arguments["events"]):
                answers = hooks.call(hook, session=session, event=event)
                failed += [plugin for plugin, value in answers if hooks.failed(value)]
                flags += [(event, spec) for spec in _flags_of(answers)]
        else:
            answers = hooks.call(hook, **{**arguments, "session": session})
            failed += [plugin for plugin, value in answers if hooks.failed(value)]
        error = f"plugins that raised: {', '.join(dict.fromkeys(failed))}" if failed else None
        if flags:
            _store_flags(db, session.session_id, flags)
        _finish(db, call_id, "done", error)
    except Exception as exc:  # pluggy itself (not one plugin) or the flags' transaction failed
        db.rollback()
        _finish(db, call_id, "pending", f"{type(exc).__name__}: {exc}")
        raise  # huey retries; the sweeper queues it again after that


def _flags_of(answers: list[hooks.Answer]) -> list[hooks.FlagSpec]:
    """The flags the plugins returned, each with its plugin as the source."""
    out = []
    for plugin, result in answers:
        if hooks.failed(result):
            continue
        for spec in result or []:
            if isinstance(spec, hooks.FlagSpec):
                out.append(hooks.FlagSpec(spec.rule, spec.key, spec.severity, spec.message,
                                          source=plugin))
    return out


def _store_flags(db: Session, session_id: int,
                 flags: list[tuple[hooks.EventInfo, hooks.FlagSpec]]) -> None:
    """The providers' flags, under the session's row lock as the events' own request stores
    its flags (one transaction, committed with the row's ``done`` by :func:`_finish`); each
    dated when its event arrived, so the reviewer's timeline reads as before."""
    from proctoring.events import raise_flags
    from proctoring.sessions import get_session

    ps = get_session(db, session_id, lock=True)
    for event, spec in flags:
        raise_flags(db, ps, [spec], now=event.server_at)


def _finish(db: Session, call_id: int, state: str, error: str | None) -> None:
    db.execute(update(HookCall).where(HookCall.id == call_id, HookCall.state == "running")
               .values(state=state, error=error[:ERROR_LENGTH] if error else None,
                       done_at=utcnow() if state == "done" else None)
               .execution_options(synchronize_session=False))
    db.commit()


def requeue_stale(db: Session, enqueue: Callable[..., object], *,
                  now: dt.datetime | None = None) -> list[int]:
    """Queue again the calls whose job was lost: pending :data:`REQUEUE_AFTER` after their job
    was queued, or claimed :data:`RUNNING_LOST_AFTER` ago and not done. Each is marked (pending,
    ``queued_at`` now) and committed before it is queued, so a sweep every 30 s queues it once
    per wait. The ids queued."""
    now = now or utcnow()
    stale = ((HookCall.state == "pending") & (HookCall.queued_at <= now - REQUEUE_AFTER)
             | (HookCall.state == "running") & (HookCall.queued_at <= now - RUNNING_LOST_AFTER))
    ids = list(db.scalars(select(HookCall.id).where(stale).order_by(HookCall.id)
                          .limit(REQUEUE_BATCH)))
    if not ids:
        db.rollback()
        return []
    db.execute(update(HookCall).where(HookCall.id.in_(ids), stale)
               .values(state="pending", queued_at=now)
               .execution_options(synchronize_session=False))
    db.commit()
    log.warning("plugin notifications %s owed with no job since their last queueing: queued "
                "again", ids)
    for call_id in ids:
        enqueue(HOOK_JOB, call_id)
    return ids
