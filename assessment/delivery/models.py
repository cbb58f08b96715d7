"""Attempts and what happens in them.

Saves, clock events, results, item scores and release decisions are append-only: a newer row
supersedes an older one, nothing is edited in place. An attempt's result is its newest
``Result`` row (``reads.current_result``): a rescoring adds one that supersedes the last. The attempt row itself carries the
navigation state (position, highest sequence number), its final status, and the result of its
clock events (deadline, open pause, extensions: ``timing.StoredClock``) so that a heartbeat
or a save needs no clock-event query.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from microcred.db import Base, append_only, utcnow


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_status_candidate", "status", "candidate_id"),
                      Index("ix_attempts_status_deadline", "status", "deadline_at"),
                      # the sweeper finds in-progress attempts that may have run out by this
                      Index("ix_attempts_status_started", "status", "started_at"),
                      # one attempt in progress per candidate and exam: two racing starts (a
                      # double click, two tabs) make one, on PostgreSQL as on SQLite
                      Index("uq_attempts_one_in_progress", "candidate_id", "exam_id",
                            unique=True, sqlite_where=text("status = 'in_progress'"),
                            postgresql_where=text("status = 'in_progress'")))

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"), index=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    #: in_progress -> finalized (see assessment.delivery.service for the transitions)
    status: Mapped[str] = mapped_column(String(20), default="in_progress")
    seed: Mapped[int] = mapped_column(BigInteger)
    #: item version ids in the order this candidate sees them
    item_order: Mapped[list[Any]]
    #: {item_version_id: [option ids in display order]}
    option_orders: Mapped[dict[str, Any]]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    time_limit_seconds: Mapped[int]
    time_multiplier: Mapped[float] = mapped_column(default=1.0)
    agreement_accepted_at: Mapped[dt.datetime]
    position: Mapped[int] = mapped_column(default=0)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the clock as of its last clock event (``timing.StoredClock``), written with every clock
    #: event and at the start, so the hot path reads the clock from this row alone
    deadline_at: Mapped[dt.datetime | None]
    paused_since: Mapped[dt.datetime | None]
    extension_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    finalized_at: Mapped[dt.datetime | None]
    #: submitted | time_expired | terminated
    finalize_reason: Mapped[str | None] = mapped_column(String(20))

    #: newest first: a rescoring adds a result that supersedes the one before
    results: Mapped[list[Result]] = relationship(back_populates="attempt",
                                                 order_by="Result.id.desc()")

    @property
    def result(self) -> Result | None:
        """The attempt's standing result: its newest (None before it is finalized)."""
        return self.results[0] if self.results else None


class ClockEvent(Base):
    """Pauses, resumes and extensions: the deadline is computed from these (timing.clock)."""

    __tablename__ = "attempt_clock_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # pause | resume | extend
    seconds: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str] = mapped_column(String(500), default="")
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ClockEvent)


class ResponseSave(Base):
    """One autosave: the whole state of one item (answer and review flag) at sequence ``seq``.

    The current answer to an item is its save with the highest ``seq``. ``(attempt_id, seq)`` is
    unique, which makes a retried save idempotent.
    """

    __tablename__ = "response_saves"
    __table_args__ = (
        UniqueConstraint("attempt_id", "seq"),
        Index("ix_response_saves_attempt_item", "attempt_id", "item_version_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"))
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[Any | None] = mapped_column(type_=JSON)
    flagged: Mapped[bool] = mapped_column(default=False)
    saved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ResponseSave)


class Result(Base):
    """An attempt's score. The first is written when the attempt is finalized; a rescoring
    (after a re-key) writes a new one that ``supersedes`` it. The newest stands."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), index=True)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("results.id"))
    #: the re-key whose rescoring wrote this result (None: scored at finalization)
    rekey_id: Mapped[int | None] = mapped_column(ForeignKey("item_rekeys.id"))
    raw_score: Mapped[float]
    max_score: Mapped[float]
    percent: Mapped[float]
    pass_percent: Mapped[float]
    passed: Mapped[bool]
    answered: Mapped[int]
    n_items: Mapped[int]
    domain_scores: Mapped[list[Any]]
    theta: Mapped[float | None]
    theta_se: Mapped[float | None]
    #: how the pass/fail decision was made (``assessment.psych.cuts_scoring``): ``percent``
    #: (the exam's pass percent: no cut adopted), ``irt`` (EAP ``theta`` against the adopted
    #: theta cut) or ``number_correct`` (``raw_score`` against the form's ``raw_cut``)
    scoring_rule: Mapped[str] = mapped_column(String(20), default="percent",
                                              server_default="percent")
    #: the adopted cut applied (None: the percent rule)
    cut_adoption_id: Mapped[int | None] = mapped_column(ForeignKey("cut_adoptions.id"))
    #: the approved calibration run and the parameter rows scored with
    #: (``{item_version_id: ItemParameter id}``), so the decision can be reproduced
    calibration_run_id: Mapped[int | None] = mapped_column(ForeignKey("calibration_runs.id"))
    parameter_ids: Mapped[dict[str, Any] | None] = mapped_column(type_=JSON)
    #: the form's raw cut under the adopted cut (None: the percent rule)
    raw_cut: Mapped[float | None]
    #: the reported scale score (None: the percent rule, which has no scale)
    scale_score: Mapped[float | None]
    #: the cut rescoring that wrote this result (None: finalization or a re-key)
    cut_rescoring_id: Mapped[int | None] = mapped_column(ForeignKey("cut_rescorings.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    attempt: Mapped[Attempt] = relationship(back_populates="results")
    item_scores: Mapped[list[ItemScore]] = relationship(order_by="ItemScore.position")


append_only(Result)


class CutRescoring(Base):
    """A recorded rescoring of an exam's standing results under its current cut (who, when,
    why, how many results were superseded and which decisions flipped): released results
    change only through one of these (``assessment.delivery.rescore``)."""

    __tablename__ = "cut_rescorings"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"), index=True)
    cut_adoption_id: Mapped[int] = mapped_column(ForeignKey("cut_adoptions.id"))
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(1000))
    rescored: Mapped[int]
    #: ``[{"attempt_id", "old_result_id", "new_result_id", "passed", "release",
    #: "badges": "issued" | "revoked: [ids]" | ...}]``
    flips: Mapped[list[Any]]


append_only(CutRescoring)


class ItemScore(Base):
    """The final response to one item and its score: the data psychometrics calibrates on."""

    __tablename__ = "item_scores"
    __table_args__ = (UniqueConstraint("result_id", "item_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"), index=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    position: Mapped[int]
    domain_code: Mapped[str] = mapped_column(String(40))
    response: Mapped[Any | None] = mapped_column(type_=JSON)
    score: Mapped[float]
    max_score: Mapped[float]
    #: False: a pretest item, recorded for calibration but not counted in the result
    scored: Mapped[bool] = mapped_column(default=True)


append_only(ItemScore)


class ResultRelease(Base):
    """Whether a result may be shown as final and credentialed: released, held or invalidated.

    The newest row wins. Proctoring holds a result for review and clears or invalidates it.
    """

    __tablename__ = "result_releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ResultRelease)


class SweepFailure(Base):
    """An attempt the sweeper could not finalize: how often it failed, why last, and when the
    sweeper may try it again (backing off, so a broken attempt is neither retried every sweep
    nor forgotten). Bookkeeping, not evidence: updated in place, deleted once it finalizes."""

    __tablename__ = "attempt_sweep_failures"

    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    failed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    retry_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StartLine(Base):
    """The waiting room's clock (``assessment.delivery.waiting_room``): the moment, in seconds
    since the epoch, from which the next start may be admitted. One row per deployment, moved on
    by ``1 / MICROCRED_START_RATE`` with every admission in one ``UPDATE``, so every node and
    worker hands out the same sequence of admission times. Bookkeeping: updated in place."""

    __tablename__ = "start_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    next_slot: Mapped[float] = mapped_column(Float)


class StartTicket(Base):
    """A candidate's place in the waiting room for an exam: when they joined, when they are
    admitted (``admit_at``, handed out in the order they joined), and the attempt their start
    made once admitted (None while waiting). At most one open ticket per candidate and exam."""

    __tablename__ = "start_tickets"
    __table_args__ = (
        Index("uq_start_tickets_open", "candidate_id", "exam_id", unique=True,
              sqlite_where=text("attempt_id IS NULL"), postgresql_where=text("attempt_id IS NULL")),
        Index("ix_start_tickets_admit_at", "admit_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"))
    joined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    admit_at: Mapped[dt.datetime]
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id"))
