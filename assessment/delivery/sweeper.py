"""The sweeper: finalizes the attempts whose time ran out while nobody was there to submit them
(a closed browser, a lost connection), however many candidates are sitting.

How it stays cheap at thousands of attempts in progress:

- Candidates are found by an index (``ix_attempts_status_started``): an attempt cannot run out
  before ``started_at + time_limit x multiplier`` (extensions and pauses only push the deadline
  later), so only attempts started at least the shortest allowed time ago are read, and of
  those, plain columns in batches of :data:`BATCH` (keyset on ``id``), never ORM objects.
- The exact clock (``timing.clock``: extensions, pauses) is computed from one query of clock
  events per batch; only attempts whose time is really up are touched.
- Each of those is finalized in a short transaction of its own (with its receivers: a pass
  still gets its badge job). A failure is rolled back, logged with the attempt's id and
  recorded (:class:`~assessment.delivery.models.SweepFailure`); the sweep goes on, and that
  attempt is tried again after a backoff that doubles with each failure (:func:`backoff`), so
  a broken attempt neither blocks the others nor costs a transaction on every sweep.

One leader sweeps at a time (``microcred.leader.try_lead``); the others skip their turn.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from assessment.delivery.models import Attempt, ClockEvent, SweepFailure
from assessment.delivery.timing import clock
from microcred.db import utcnow

log = logging.getLogger(__name__)

BATCH = 500
#: the wait before trying a failed attempt again: BACKOFF_FIRST_S, doubling, at most BACKOFF_MAX_S
BACKOFF_FIRST_S = 60
BACKOFF_MAX_S = 3600
ERROR_CHARS = 2000
#: the leader lock's name (``microcred.leader``)
LEADER = "sweeper"


@dataclass
class SweepReport:
    """What one sweep did: the attempts it finalized, those that failed (recorded, retried after
    their backoff), how many failed ones it left for later, and how many it looked at."""

    finalized: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    backing_off: int = 0
    examined: int = 0


def backoff(failures: int) -> dt.timedelta:
    """How long to leave an attempt alone after its ``failures``-th failure in a row."""
    return dt.timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, failures - 1)))


_COLUMNS = (Attempt.id, Attempt.started_at, Attempt.time_limit_seconds, Attempt.time_multiplier,
            Attempt.finalized_at)


def _batches(session: Session, now: dt.datetime, grace_seconds: float, batch: int):
    """In-progress attempts that may have run out, as rows of plain columns, a batch at a time.
    Commits after each read: the sweep holds no transaction (on SQLite, no write lock) between
    its steps."""
    shortest = session.scalar(select(func.min(Attempt.time_limit_seconds * Attempt.time_multiplier))
                              .where(Attempt.status == "in_progress"))
    session.commit()
    if shortest is None:
        return
    started_by = now - dt.timedelta(seconds=float(shortest) + grace_seconds)
    # The stored deadline (kept with every clock event, ``timing.stored_clock``) leaves out an
    # open pause, so ``deadline_at`` past the grace is a superset of the attempts whose time is
    # up; the index on (status, deadline_at) finds them without reading the ones still running.
    # A row without a stored deadline (written before it existed) falls back to its start.
    passed = now - dt.timedelta(seconds=grace_seconds)
    maybe_up = or_(Attempt.deadline_at <= passed,
                   and_(Attempt.deadline_at.is_(None), Attempt.started_at <= started_by))
    last_id = 0
    while True:
        rows = session.execute(
            select(*_COLUMNS).where(Attempt.status == "in_progress", maybe_up,
                                    Attempt.id > last_id)
            .order_by(Attempt.id).limit(batch)).all()
        session.commit()
        if not rows:
            return
        yield rows
        last_id = rows[-1].id
        if len(rows) < batch:
            return


def _due(session: Session, rows: list[Any], now: dt.datetime, grace_seconds: float,
         report: SweepReport) -> list[int]:
    """Of ``rows``, the attempts whose time is up by the one rule (``Clock.time_up``) and that are
    not backing off after a failure: two queries for the whole batch."""
    limit = dt.timedelta(seconds=grace_seconds)
    maybe = [r for r in rows
             if r.started_at + dt.timedelta(seconds=r.time_limit_seconds * r.time_multiplier)
             + limit < now]
    if not maybe:
        return []
    ids = [r.id for r in maybe]
    events: dict[int, list[Any]] = {}
    for ev in session.execute(select(ClockEvent.attempt_id, ClockEvent.id, ClockEvent.kind,
                                     ClockEvent.seconds, ClockEvent.at)
                              .where(ClockEvent.attempt_id.in_(ids))):
        events.setdefault(ev.attempt_id, []).append(ev)
    waiting = set(session.scalars(select(SweepFailure.attempt_id).where(
        SweepFailure.attempt_id.in_(ids), SweepFailure.retry_at > now)))
    session.commit()
    report.backing_off += len(waiting)
    return [r.id for r in maybe
            if r.id not in waiting and clock(r, events.get(r.id, []), now).time_up(grace_seconds)]


def sweep(session: Session, *, grace_seconds: float, now: dt.datetime | None = None,
          batch: int = BATCH) -> SweepReport:
    """Finalize every in-progress attempt whose time has run out; see the module's docstring."""
    from assessment.delivery.service import Finalized, finalize_if_expired

    now = now or utcnow()
    report = SweepReport()
    session.commit()  # start from no transaction: each step below is its own
    for rows in _batches(session, now, grace_seconds, batch):
        report.examined += len(rows)
        for attempt_id in _due(session, rows, now, grace_seconds, report):
            try:
                attempt = session.get(Attempt, attempt_id)
                if attempt is not None and finalize_if_expired(session, attempt, now,
                                                               grace_seconds=grace_seconds):
                    _forget_failure(session, attempt_id)
                    session.commit()
                    report.finalized.append(attempt_id)
                else:
                    session.rollback()
            except Finalized:  # the candidate's own request finalized it meanwhile
                session.rollback()
            except Exception as exc:  # logged and recorded; the other attempts must still finalize
                session.rollback()
                failures = _record_failure(session, attempt_id, exc, now)
                log.exception("sweep: attempt %s could not be finalized (failure %s); it stays "
                              "in progress and the sweeper tries again after %s", attempt_id,
                              failures, backoff(failures))
                report.failed.append(attempt_id)
            finally:
                session.expunge_all()  # nothing of one attempt is carried to the next
    return report


def _forget_failure(session: Session, attempt_id: int) -> None:
    row = session.get(SweepFailure, attempt_id)
    if row is not None:
        session.delete(row)


def _record_failure(session: Session, attempt_id: int, exc: Exception, now: dt.datetime) -> int:
    """Count one more failure of the attempt and set when it may be tried again (its own short
    transaction; a failure to record is logged, the sweep goes on)."""
    try:
        row = session.get(SweepFailure, attempt_id)
        if row is None:
            row = SweepFailure(attempt_id=attempt_id, failures=0)
            session.add(row)
        row.failures += 1
        row.last_error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        row.failed_at = now
        row.retry_at = now + backoff(row.failures)
        failures = row.failures
        session.commit()
        return failures
    except Exception:  # the database may be what failed
        session.rollback()
        log.exception("sweep: could not record the failure of attempt %s", attempt_id)
        return 0


def failures(session: Session) -> list[SweepFailure]:
    """The attempts the sweeper could not finalize, oldest failure first (for operators)."""
    return list(session.scalars(select(SweepFailure).order_by(SweepFailure.failed_at)))
