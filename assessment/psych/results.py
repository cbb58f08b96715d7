"""Which results the workspace counts, and the exam overview built on them.

Counted: the standing result (the newest, after any rescoring) of finalized attempts, minus results whose newest release decision is
``invalidated`` (a terminated attempt or a review that found misconduct is not a measurement).
Held results are counted: they are scored responses awaiting a proctoring verdict.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from assessment.delivery.models import Attempt, Result
from assessment.delivery.reads import invalidated_result_ids, is_current_result
from assessment.exams import Exam


def counted_results(exam_id: int | None = None) -> Select:
    """The results that count (see the module docstring): ``result_id``, ``exam_id``,
    ``form_id``, ``percent``, ``passed``."""
    query = (
        select(
            Result.id.label("result_id"),
            Attempt.exam_id,
            Attempt.form_id,
            Result.percent,
            Result.passed,
        )
        .join(Attempt, Attempt.id == Result.attempt_id)
        .where(Attempt.status == "finalized", is_current_result(),
               Result.id.not_in(invalidated_result_ids()))
    )
    return query if exam_id is None else query.where(Attempt.exam_id == exam_id)


@dataclass
class ExamSummary:
    exam: Exam
    n_results: int
    mean_percent: float | None
    pass_rate: float | None
    n_invalidated: int


def exam_summaries(session: Session) -> list[ExamSummary]:
    """Every exam with the number of counted results, their mean percent and pass rate."""
    counted = counted_results().subquery()
    stats = {
        row.exam_id: row
        for row in session.execute(
            select(
                counted.c.exam_id,
                func.count().label("n"),
                func.avg(counted.c.percent).label("mean_percent"),
                func.sum(case((counted.c.passed.is_(True), 1), else_=0)).label("passed"),
            ).group_by(counted.c.exam_id)
        )
    }
    invalidated = dict(
        session.execute(
            select(Attempt.exam_id, func.count())
            .join(Result, Result.attempt_id == Attempt.id)
            .where(is_current_result(), Result.id.in_(invalidated_result_ids()))
            .group_by(Attempt.exam_id)
        ).all()
    )
    out = []
    for exam in session.scalars(select(Exam).order_by(Exam.title)):
        row = stats.get(exam.id)
        n = int(row.n) if row else 0
        out.append(
            ExamSummary(
                exam=exam,
                n_results=n,
                mean_percent=float(row.mean_percent) if n else None,
                pass_rate=float(row.passed) / n if n else None,
                n_invalidated=int(invalidated.get(exam.id, 0)),
            )
        )
    return out

