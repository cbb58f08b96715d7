"""Exams: what a candidate can sit, on which forms, for how long, against which pass mark."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
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
    """An exam could not be created or changed; the message says why, ``field`` names what."""

    status, code = 422, "invalid_exam"

    def __init__(self, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message, **({"field": field} if field else {}), **extra)
        self.field = field


#: how candidates get their items: one of the exam's forms, or a form of their own (LOFT)
DELIVERY_MODES = ("forms", "loft")
CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_TIME_LIMIT_SECONDS = 24 * 3600


def _check_fields(code: str, title: str, time_limit_seconds: Any, pass_percent: Any,
                  delivery_mode: str, opens_at: dt.datetime | None,
                  closes_at: dt.datetime | None) -> None:
    if not CODE_PATTERN.fullmatch(code or ""):
        raise ExamError("the exam code must be 1 to 64 letters, digits, dots, dashes or "
                        "underscores, starting with a letter or digit", field="code")
    if not (title or "").strip():
        raise ExamError(f"exam {code}: the title is required", field="title")
    if isinstance(time_limit_seconds, bool) or not isinstance(time_limit_seconds, int) \
            or not 0 < time_limit_seconds <= MAX_TIME_LIMIT_SECONDS:
        raise ExamError(f"exam {code}: the time limit must be positive, at most "
                        f"{MAX_TIME_LIMIT_SECONDS // 3600} hours", field="time_limit")
    try:
        percent = float(pass_percent)
    except (TypeError, ValueError):
        percent = float("nan")
    if not 0 < percent <= 100:
        raise ExamError(f"exam {code}: pass percent must be in (0, 100], got {pass_percent}",
                        field="pass_percent")
    if delivery_mode not in DELIVERY_MODES:
        raise ExamError(f"exam {code}: delivery must be one of {', '.join(DELIVERY_MODES)}",
                        field="delivery_mode")
    for name, value in (("opens_at", opens_at), ("closes_at", closes_at)):
        if value is not None and value.tzinfo is None:
            raise ExamError(f"exam {code}: {name} must carry a time zone", field=name)
    if opens_at is not None and closes_at is not None and closes_at <= opens_at:
        raise ExamError(f"exam {code}: the window closes before it opens", field="closes_at")


def _check_forms(code: str, blueprint: Blueprint, forms: list[Form], delivery_mode: str,
                 assembly: dict[str, Any]) -> None:
    from itembank.assembly import AssemblyError, AssemblyTarget
    from itembank.models import FIXED

    if delivery_mode == "forms":
        if not forms:
            raise ExamError(f"exam {code}: needs at least one form", field="forms")
        for form in forms:
            if not form.is_published or form.kind != FIXED:
                raise ExamError(f"exam {code}: form {form.code} is not a published fixed form",
                                field="forms")
            if form.blueprint_id != blueprint.id:
                raise ExamError(f"exam {code}: form {form.code} was built to another blueprint "
                                f"than {blueprint.code}", field="forms")
    try:
        AssemblyTarget.from_dict(assembly)
    except AssemblyError as exc:
        raise ExamError(f"exam {code}: {exc.message}",
                        field=exc.extra.get("field", "assembly")) from None


def save_exam(
    session: Session,
    *,
    code: str,
    title: str,
    blueprint: Blueprint,
    forms: list[Form],
    time_limit_seconds: int,
    pass_percent: float,
    exam: Exam | None = None,
    delivery_mode: str = "forms",
    assembly: dict[str, Any] | None = None,
    opens_at: dt.datetime | None = None,
    closes_at: dt.datetime | None = None,
    policy: dict[str, Any] | None = None,
    **fields: Any,
) -> Exam:
    """Create an exam, or (``exam`` given) change it: every field is checked before anything
    is written, and a refusal names the field (:class:`ExamError`, or the policy section's
    ``PolicyError``). The forms no longer listed are retired from the exam (not deleted:
    attempts keep pointing at them)."""
    code = (code or "").strip()
    _check_fields(code, title, time_limit_seconds, pass_percent, delivery_mode, opens_at,
                  closes_at)
    assembly = dict(assembly or {})
    _check_forms(code, blueprint, forms, delivery_mode, assembly)
    check_policy(policy or {})
    clash = session.scalar(select(Exam.id).where(Exam.code == code))
    if clash is not None and (exam is None or clash != exam.id):
        raise ExamError(f"an exam with code {code} already exists", field="code")
    values = dict(code=code, title=title.strip(), blueprint_id=blueprint.id,
                  time_limit_seconds=time_limit_seconds, pass_percent=float(pass_percent),
                  delivery_mode=delivery_mode, assembly=assembly, opens_at=opens_at,
                  closes_at=closes_at, policy=policy or {}, **fields)
    if exam is None:
        exam = Exam(**values)
        session.add(exam)
        session.flush()
    else:
        for name, value in values.items():
            setattr(exam, name, value)
        session.flush()
    wanted = {f.id for f in forms} if delivery_mode == "forms" else set()
    listed = {ef.form_id: ef for ef in session.scalars(
        select(ExamForm).where(ExamForm.exam_id == exam.id))}
    for form_id, ef in listed.items():
        ef.active = form_id in wanted
    for form_id in wanted - set(listed):
        session.add(ExamForm(exam_id=exam.id, form_id=form_id))
    session.flush()
    session.expire(exam, ["forms"])
    return exam


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
    """A new exam (see :func:`save_exam`)."""
    return save_exam(session, code=code, title=title, blueprint=blueprint, forms=forms,
                     time_limit_seconds=time_limit_seconds, pass_percent=pass_percent,
                     **fields)


def window_refusal(exam: Exam, now: dt.datetime) -> str | None:
    """Why ``exam`` may not be started at ``now`` because of its availability window."""
    if exam.opens_at is not None and now < exam.opens_at:
        return f"exam {exam.code} opens at {exam.opens_at.isoformat(timespec='minutes')}"
    if exam.closes_at is not None and now >= exam.closes_at:
        return f"exam {exam.code} closed at {exam.closes_at.isoformat(timespec='minutes')}"
    return None


def loft_target(exam: Exam) -> Any:
    """The exam's assembly target (``itembank.assembly.AssemblyTarget``); a linear-on-the-fly
    form differs from candidate to candidate by at least the default randomness."""
    from itembank.assembly import AssemblyTarget

    target = AssemblyTarget.from_dict(exam.assembly or {})
    if not target.randomness:
        target = dataclasses.replace(target, randomness=LOFT_RANDOMNESS)
    return target


#: the item-weight randomness of linear-on-the-fly forms when the exam sets none
LOFT_RANDOMNESS = 0.2


def fill_exam_pool(session: Session, exam: Exam, size: int, *, seed: int | None = None
                   ) -> list[int]:
    """Pre-assemble ``size`` forms of a linear-on-the-fly exam into its pool (flushed, not
    committed); candidates starting later take them and cost no solver time."""
    from itembank.pool import fill_pool

    if exam.delivery_mode != "loft":
        raise ExamError(f"exam {exam.code} delivers fixed forms; only a linear-on-the-fly exam "
                        "has a pool", field="delivery_mode")
    return fill_pool(session, pool=exam.code, blueprint=exam.blueprint,
                     target=loft_target(exam), size=size, seed=seed)


def open_exams(session: Session) -> list[Exam]:
    return list(session.scalars(select(Exam).where(Exam.is_open.is_(True)).order_by(Exam.title)))


def exam_by_code(session: Session, code: str) -> Exam | None:
    return session.scalar(select(Exam).where(Exam.code == code))
