"""Exams: what a candidate can sit, on which forms, for how long, against which pass mark."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, validates

from itembank.models import Blueprint, Form
from microcred.db import Base, utcnow
from microcred.errors import DomainError
from microcred.policy import check_policy


class Exam(Base):
    __tablename__ = "exams"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    program_name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    instructions: Mapped[list[Any]] = mapped_column(default=list)
    agreement: Mapped[str] = mapped_column(Text, default="")
    blueprint_id: Mapped[int] = mapped_column(ForeignKey("blueprints.id"))
    time_limit_seconds: Mapped[int]
    pass_percent: Mapped[float]
    shuffle_items: Mapped[bool] = mapped_column(default=True)
    shuffle_options: Mapped[bool] = mapped_column(default=True)
    is_open: Mapped[bool] = mapped_column(default=True)
    #: ``forms``: each candidate sits one of the exam's forms; ``loft``: each gets a form of
    #: their own, assembled to the blueprint and ``assembly`` (taken from the pool when one waits)
    delivery_mode: Mapped[str] = mapped_column(String(10), default="forms")
    #: the information target of automated assembly: ``{"cut_theta": 0.0, "exposure_ceiling":
    #: 200}`` or ``{"target": {"thetas": [...], "information": [...], "tolerance": 0.5}}``
    assembly: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: the availability window: candidates may start only between these (None: no bound)
    opens_at: Mapped[dt.datetime | None]
    closes_at: Mapped[dt.datetime | None]
    #: Sections owned by the packages that read them (``retake``: delivery's retake rules,
    #: ``proctoring``: proctoring's policy), each checked by its owner's validator on every write
    #: (``microcred.policy``).
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    blueprint: Mapped[Blueprint] = relationship()
    forms: Mapped[list[ExamForm]] = relationship(back_populates="exam", order_by="ExamForm.id")

    @validates("policy")
    def _check_policy(self, _key: str, value: dict[str, Any]) -> dict[str, Any]:
        # every write of the policy, from any caller, on create or update, meets the same checks
        check_policy(value)
        return value


class ExamForm(Base):
    __tablename__ = "exam_forms"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"), index=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    active: Mapped[bool] = mapped_column(default=True)

    exam: Mapped[Exam] = relationship(back_populates="forms")
    form: Mapped[Form] = relationship()


class ExamError(DomainError):
    """An exam could not be created or changed; the message says why."""

    status, code = 422, "invalid_exam"


def create_exam(
    session: Session,
    *,
    code: str,
    title: str,
    blueprint: Blueprint,
    forms: list[Form],
    time_limit_seconds: int,
    pass_percent: float,
    **fields: Any,
) -> Exam:
    if time_limit_seconds <= 0:
        raise ExamError(f"exam {code}: the time limit must be positive")
    if not 0 < pass_percent <= 100:
        raise ExamError(f"exam {code}: pass percent must be in (0, 100], got {pass_percent}")
    if not forms:
        raise ExamError(f"exam {code}: needs at least one form")
    exam = Exam(
        code=code,
        title=title,
        blueprint_id=blueprint.id,
        time_limit_seconds=time_limit_seconds,
        pass_percent=pass_percent,
        **fields,
    )
    session.add(exam)
    session.flush()
    for form in forms:
        session.add(ExamForm(exam_id=exam.id, form_id=form.id))
    session.flush()
    return exam


def open_exams(session: Session) -> list[Exam]:
    return list(session.scalars(select(Exam).where(Exam.is_open.is_(True)).order_by(Exam.title)))


def exam_by_code(session: Session, code: str) -> Exam | None:
    return session.scalar(select(Exam).where(Exam.code == code))
