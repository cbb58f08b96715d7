"""The waiting room: the exam-day start spike admitted at the rate the deployment can start
attempts (``MICROCRED_START_RATE`` starts per second; 0: no waiting room), in the order the
candidates asked, every one answered at once.

A start asks the line for an admission time: one ``UPDATE start_lines ... RETURNING`` moves the
line's clock on by ``1 / rate`` and hands out the slot it passed (on PostgreSQL the row lock,
on SQLite the write lock, serialises it: every node and worker hands out one sequence). A slot
within :data:`BURST_S` of now starts at once. A later one becomes the candidate's
:class:`~assessment.delivery.models.StartTicket`: the start is answered straight away with
the candidate's place and a ``Retry-After``, and the waiting page asks again then. Once its
``admit_at`` has passed the ticket admits; the start that follows makes the attempt, so the
exam's time starts then, never while the candidate waits (the server owns time).

Nothing is lost: a ticket keeps its slot until its attempt starts, however late its holder
comes back. A candidate who never comes back only leaves a slot unused.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from assessment.delivery.models import StartLine, StartTicket

#: a slot this close to now starts at once: the line admits up to a second's starts in a burst
BURST_S = 1.0
#: the waiting page asks again at least this often, so the place it shows stays current
MAX_RETRY_AFTER_S = 10
#: the one line of a deployment (``start_lines``)
LINE_ID = 1


@dataclass(frozen=True)
class Turn:
    """The line's answer to a start: ``admitted``; else the candidate's ``place`` (1: next)
    and when to ask again (``retry_after_s``). ``ticket_id``: the ticket that admitted."""

    admitted: bool
    place: int = 0
    retry_after_s: int = 0
    admit_at: dt.datetime | None = None
    ticket_id: int | None = None


ADMITTED = Turn(admitted=True)


def turn(session: Session, candidate_id: int, exam_id: int, *, rate: float,
         now: dt.datetime) -> Turn:
    """May the candidate's start go ahead now? Joins the line on the first ask (writes a
    ticket when the slot is not due yet); later asks read the ticket. The caller commits."""
    if rate <= 0:
        return ADMITTED
    ticket = session.execute(
        select(StartTicket.id, StartTicket.admit_at).where(
            StartTicket.candidate_id == candidate_id, StartTicket.exam_id == exam_id,
            StartTicket.attempt_id.is_(None))).first()
    if ticket is not None:
        if ticket.admit_at <= now:
            return Turn(admitted=True, ticket_id=ticket.id)
        return _waiting(session, ticket.admit_at, now)
    slot = take_slot(session, rate=rate, now=now)
    if slot <= now + dt.timedelta(seconds=BURST_S):
        return ADMITTED
    session.execute(insert(StartTicket).values(candidate_id=candidate_id, exam_id=exam_id,
                                               joined_at=now, admit_at=slot))
    return _waiting(session, slot, now)


def take_slot(session: Session, *, rate: float, now: dt.datetime) -> dt.datetime:
    """The next admission time: now when the line is idle, else ``1 / rate`` after the last."""
    t, step = now.timestamp(), 1.0 / rate
    moved = session.execute(
        update(StartLine).where(StartLine.id == LINE_ID)
        .values(next_slot=case((StartLine.next_slot > t, StartLine.next_slot), else_=t) + step)
        .returning(StartLine.next_slot)).scalar()
    if moved is None:  # the first start ever (or since the table was emptied)
        _create_line(session, t + step)
        return now
    return dt.datetime.fromtimestamp(moved - step, dt.UTC)


def _create_line(session: Session, next_slot: float) -> None:
    """The line's row, once: two first starts racing on PostgreSQL both go on (the loser's
    ``ON CONFLICT DO NOTHING``: it takes the slot now, one extra admission once)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    session.execute(dialect_insert(StartLine).values(id=LINE_ID, next_slot=next_slot)
                    .on_conflict_do_nothing(index_elements=[StartLine.id]))


def _waiting(session: Session, admit_at: dt.datetime, now: dt.datetime) -> Turn:
    ahead = session.scalar(
        select(func.count()).select_from(StartTicket).where(
            StartTicket.attempt_id.is_(None), StartTicket.admit_at > now,
            StartTicket.admit_at < admit_at)) or 0
    wait = (admit_at - now).total_seconds()
    return Turn(admitted=False, place=ahead + 1, admit_at=admit_at,
                retry_after_s=max(1, min(MAX_RETRY_AFTER_S, math.ceil(wait))))


def started(session: Session, admission: Turn, attempt_id: int) -> None:
    """The admitted ticket's attempt has started: the ticket is closed (kept, with when its
    holder joined and was admitted)."""
    if admission.ticket_id is not None:
        session.execute(update(StartTicket).where(StartTicket.id == admission.ticket_id)
                        .values(attempt_id=attempt_id))
