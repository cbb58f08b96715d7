"""Proctoring outcomes counted for program reports: how many proctored sittings an exam had,
how many were flagged (and how seriously), terminated, cleared or invalidated on review.

A public read for other packages (the workspace's program report): it counts in the database,
one grouped query, and returns plain rows; callers never read proctoring's tables themselves.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from proctoring.models import Flag, ProctorSession


@dataclass(frozen=True)
class ExamOutcomes:
    exam_id: int
    sessions: int
    #: sessions with at least one flag, and with at least one high-severity flag
    flagged: int
    flagged_high: int
    flags: int
    terminated: int
    in_review: int
    cleared: int
    invalidated: int


def outcomes_by_exam(session: Session, *, exam_ids: list[int] | None = None,
                     since: dt.datetime | None = None, until: dt.datetime | None = None,
                     attempt_ids: Select | None = None) -> list[ExamOutcomes]:
    """Counts per exam over the proctored sessions created in ``[since, until)``; with
    ``attempt_ids`` (a query of attempt ids) only the sessions of those attempts (a session
    ended before its attempt started, e.g. at the identity check, then has none and is left
    out)."""
    per_session = (
        select(Flag.session_id, func.count().label("flags"),
               func.sum(case((Flag.severity == "high", 1), else_=0)).label("high"))
        .group_by(Flag.session_id).subquery())
    flags = func.coalesce(per_session.c.flags, 0)
    high = func.coalesce(per_session.c.high, 0)

    def count_state(state: str):
        return func.sum(case((ProctorSession.state == state, 1), else_=0))

    query = (
        select(ProctorSession.exam_id, func.count(),
               func.sum(case((flags > 0, 1), else_=0)), func.sum(case((high > 0, 1), else_=0)),
               func.sum(flags), count_state("terminated"), count_state("in_review"),
               count_state("cleared"), count_state("invalidated"))
        .outerjoin(per_session, per_session.c.session_id == ProctorSession.id)
        .group_by(ProctorSession.exam_id).order_by(ProctorSession.exam_id))
    if exam_ids is not None:
        query = query.where(ProctorSession.exam_id.in_(exam_ids))
    if since is not None:
        query = query.where(ProctorSession.created_at >= since)
    if until is not None:
        query = query.where(ProctorSession.created_at < until)
    if attempt_ids is not None:
        query = query.where(ProctorSession.attempt_id.in_(attempt_ids))
    return [ExamOutcomes(int(r[0]), *(int(v or 0) for v in r[1:])) for r in session.execute(query)]
