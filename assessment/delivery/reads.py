"""What other packages read of delivery's records, so they never query its tables themselves.

- :func:`current_result_id` / :func:`current_result`: an attempt's standing result. Results
  are append-only and a rescoring adds one that supersedes the last: the newest wins.
- :func:`newest_release_id`: which release decision of a result stands. Release rows are
  append-only and a later decision supersedes the earlier (held, then cleared): the newest row
  wins, and this is the one place that says so.
- :func:`release_status`: that row for one result; :func:`invalidated_result_ids`: results
  whose standing decision invalidates them (they count in no statistics).
- :func:`item_score_rows`: an item version's scored responses in counted results (the item
  bank's classical statistics of an exported item).
- :func:`released_result`: a released result as ``result_released`` carries it (a
  :class:`microcred.records.ReleasedResult`), and :func:`released_passes`: an exam's released
  passes; what credentials read of results (through ``assessment.records``).
- :func:`progress`: for the proctor console, each attempt's answered and total items, position
  and clock, read for many attempts in a fixed number of queries (three, whatever their number).
  "Answered" is the item type's word (:meth:`itembank.types.ItemType.is_answered`), the same
  as on the candidate's result.
- :func:`progress_marks`: what to outer-join to a query that carries attempt ids, and the
  attempt's columns that move whenever its :func:`progress` shows something new (a save, a
  move to another item, a pause, an extension, the end), so the console finds which sessions
  changed without reading their progress.
- :func:`extensions`: the time a proctor added to an attempt, each with the deadline it set
  (for the session's timeline).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, Text, and_, case, cast, func, select
from sqlalchemy.orm import Session, aliased, object_session

from assessment.delivery.models import (
    Attempt,
    ClockEvent,
    ItemScore,
    ResponseSave,
    Result,
    ResultRelease,
)
from assessment.delivery.timing import clock
from assessment.exams import Exam
from assessment.users import User
from itembank.models import ItemVersion
from itembank.types import item_type
from microcred import signals
from microcred.records import (
    ExamDomain,
    ExamInfo,
    Person,
    ReleasedPass,
    ReleasedResult,
    ScoreScale,
)


def current_result_id(attempt_id: ColumnElement[int] | int) -> ScalarSelect[int]:
    """The id of ``attempt_id``'s standing (newest) result (an attempt id, or a column to
    correlate with, e.g. ``Attempt.id`` or ``Result.attempt_id``)."""
    newer = aliased(Result)
    return select(func.max(newer.id)).where(newer.attempt_id == attempt_id).scalar_subquery()


def current_result(session: Session, attempt_id: int) -> Result | None:
    """The attempt's standing result (None: not finalized)."""
    return session.scalar(select(Result).where(Result.attempt_id == attempt_id)
                          .order_by(Result.id.desc()).limit(1))


def is_current_result() -> ColumnElement[bool]:
    """A condition on ``Result``: the row is its attempt's standing result."""
    return Result.id == current_result_id(Result.attempt_id)


def newest_release_id(result_id: ColumnElement[int] | int) -> ScalarSelect[int]:
    """The id of ``result_id``'s newest release row (a result id, or a column to correlate
    with, e.g. ``Result.id`` in a query over results)."""
    newer = aliased(ResultRelease)
    return select(func.max(newer.id)).where(newer.result_id == result_id).scalar_subquery()


def invalidated_result_ids() -> Select:
    """The ids of results whose newest release decision is ``invalidated``."""
    return select(ResultRelease.result_id).where(
        ResultRelease.id == newest_release_id(ResultRelease.result_id),
        ResultRelease.status == "invalidated")


def item_score_rows(session: Session, item_version_id: int) -> list[tuple[float, float, float]]:
    """``(score, max_score, the result's raw score)`` of each response to the item version in a
    result that counts (a finalized attempt's standing result, not invalidated), one query."""
    return [tuple(r) for r in session.execute(
        select(ItemScore.score, ItemScore.max_score, Result.raw_score)
        .join(Result, Result.id == ItemScore.result_id)
        .join(Attempt, Attempt.id == Result.attempt_id)
        .where(ItemScore.item_version_id == item_version_id, Attempt.status == "finalized",
               is_current_result(), Result.id.not_in(invalidated_result_ids()))
        .order_by(ItemScore.id))]


def release_status(session: Session, result_id: int) -> ResultRelease | None:
    """The release decision that stands for ``result_id`` (None: none recorded)."""
    return session.scalar(select(ResultRelease).where(
        ResultRelease.id == newest_release_id(result_id)))


def released_passes(session: Session, exam_id: int) -> list[ReleasedPass]:
    """The released passes of ``exam_id`` by active accounts, oldest first: for issuing what
    passes released earlier have earned (a deactivated account is not issued anything)."""
    rows = session.execute(
        select(Result.id, Attempt.id, User.id, User.display_name, Result.percent,
               Attempt.finalized_at, Result.scale_score)
        .join(Attempt, Attempt.id == Result.attempt_id)
        .join(User, User.id == Attempt.candidate_id)
        .join(ResultRelease, ResultRelease.id == newest_release_id(Result.id))
        .where(Attempt.exam_id == exam_id, Result.passed.is_(True), User.active.is_(True),
               ResultRelease.status == "released", is_current_result())
        .order_by(Attempt.finalized_at, Result.id))
    return [ReleasedPass(*row) for row in rows]


def released_result(session: Session, result_id: int) -> ReleasedResult | None:
    """The result as ``result_released`` carries it, when its standing decision releases it
    (None: no such result, or held or invalidated)."""
    release = release_status(session, result_id)
    result = session.get(Result, result_id)
    if result is None or release is None or release.status != "released":
        return None
    standing = current_result(session, result.attempt_id)
    if standing is not None and standing.id != result.id and not standing.passed:
        return None  # rescored into a fail since (a badge job still queued owes nothing)
    return result_summary(session, result, released_at=release.at)


def result_summary(session: Session, result: Result, *, released_at: dt.datetime) -> ReleasedResult:
    """Everything a receiver of ``result_released`` needs, as plain data. Whether the attempt
    was proctored is proctoring's answer (``signals.attempt_proctoring``), never a reading of
    the exam's policy here."""
    attempt = session.get(Attempt, result.attempt_id)
    user = session.get(User, attempt.candidate_id)
    return ReleasedResult(
        result_id=result.id, attempt_id=attempt.id, candidate=person_of(user),
        exam=exam_info(session.get(Exam, attempt.exam_id)), percent=result.percent,
        pass_percent=result.pass_percent, passed=result.passed, scored_at=result.created_at,
        released_at=released_at, proctoring=_proctoring_record(session, attempt.id),
        scale_score=result.scale_score, scale=_cut_scale(session, result.cut_adoption_id),
        scoring_rule=result.scoring_rule or "percent")


def _cut_scale(session: Session, cut_adoption_id: int | None) -> ScoreScale | None:
    """The reported scale of an adopted cut (None: no cut)."""
    if cut_adoption_id is None:
        return None
    from assessment.psych.cuts import CutAdoption  # (psych reads delivery: imported late)

    cut = session.get(CutAdoption, cut_adoption_id)
    return ScoreScale(cut.scale_lower, cut.scale_upper, cut.scale_cut) if cut else None


def _proctoring_record(session: Session, attempt_id: int) -> dict[str, Any] | None:
    for _receiver, answer in signals.attempt_proctoring.send(
            "delivery", session=session, attempt_id=attempt_id):
        if answer is not None:
            return answer
    return None


def person_of(user: User) -> Person:
    return Person(id=user.id, display_name=user.display_name, email=user.email)


def exam_info(exam: Exam) -> ExamInfo:
    """The exam as other packages read it, with the scale of its current cut (if any)."""
    from assessment.psych.cuts import current_cut  # (psych reads delivery: imported late)

    session = object_session(exam)
    cut = current_cut(session, exam.id) if session is not None else None
    return ExamInfo(
        id=exam.id, code=exam.code, title=exam.title, program_name=exam.program_name or "",
        pass_percent=exam.pass_percent,
        domains=tuple(ExamDomain(d.code, d.name, d.description or "")
                      for d in exam.blueprint.domains),
        scale=ScoreScale(cut.scale_lower, cut.scale_upper, cut.scale_cut) if cut else None)


@dataclass(frozen=True)
class Extension:
    at: dt.datetime
    seconds: int
    by_user_id: int | None
    reason: str
    #: the deadline once this extension was given
    deadline: dt.datetime


def extensions(session: Session, attempt_id: int) -> list[Extension]:
    """The attempt's time extensions, read from its clock events (the record the deadline is
    computed from), in order (two queries)."""
    attempt = session.execute(select(*_CLOCK_COLS).where(Attempt.id == attempt_id)).first()
    if attempt is None:
        return []
    events = list(session.execute(
        select(ClockEvent.id, ClockEvent.kind, ClockEvent.seconds, ClockEvent.at,
               ClockEvent.by_user_id, ClockEvent.reason)
        .where(ClockEvent.attempt_id == attempt_id).order_by(ClockEvent.id)))
    return [Extension(at=ev.at, seconds=ev.seconds, by_user_id=ev.by_user_id,
                      reason=ev.reason or "", deadline=clock(attempt, events[: i + 1], ev.at).deadline)
            for i, ev in enumerate(events) if ev.kind == "extend"]


#: what :func:`timing.clock` reads of an attempt
_CLOCK_COLS = (Attempt.id, Attempt.started_at, Attempt.time_limit_seconds,
               Attempt.time_multiplier, Attempt.finalized_at)


@dataclass(frozen=True)
class Progress:
    answered: int
    items: int
    #: the item the candidate is on, from 0
    position: int
    remaining_s: float
    paused: bool


def progress(session: Session, attempt_ids: list[int], now: dt.datetime) -> dict[int, Progress]:
    """Per attempt: how far the candidate got and the clock at ``now`` (three queries)."""
    if not attempt_ids:
        return {}
    attempts = list(session.execute(
        select(Attempt.id, Attempt.item_order, Attempt.position, Attempt.started_at,
               Attempt.time_limit_seconds, Attempt.time_multiplier, Attempt.finalized_at)
        .where(Attempt.id.in_(attempt_ids))))
    events: dict[int, list[Any]] = {}
    for ev in session.execute(select(ClockEvent.attempt_id, ClockEvent.id, ClockEvent.kind,
                                     ClockEvent.seconds, ClockEvent.at)
                              .where(ClockEvent.attempt_id.in_(attempt_ids))):
        events.setdefault(ev.attempt_id, []).append(ev)
    answered = _answered(session, attempt_ids)
    out = {}
    for a in attempts:
        c = clock(a, events.get(a.id, []), now)
        out[a.id] = Progress(answered=answered.get(a.id, 0), items=len(a.item_order),
                             position=a.position, remaining_s=c.remaining_seconds,
                             paused=c.paused)
    return out


def progress_marks(attempt_id: Any) -> tuple[Any, Any, list[Any]]:
    """``(table, onclause, columns)`` to outer-join to a query whose rows carry ``attempt_id``:
    the attempt's columns that change whenever :func:`progress` of it shows something new.
    ``last_seq`` grows with every save (the hot path writes it anyway), ``position`` with a
    move, the stored clock (``deadline_at``, ``paused_since``, ``extension_seconds``) with
    every clock event, ``status`` at the end; what moves with the clock alone (time left) is
    not among them."""
    return (Attempt, Attempt.id == attempt_id,
            [Attempt.last_seq.label("a_last_seq"), Attempt.position.label("a_position"),
             Attempt.deadline_at.label("a_deadline_at"),
             Attempt.paused_since.label("a_paused_since"),
             Attempt.extension_seconds.label("a_extension_seconds"),
             Attempt.status.label("a_status")])


def _answered(session: Session, attempt_ids: list[int]) -> dict[int, int]:
    """Items whose newest save answers them, per attempt, in one query. The database groups
    the newest saves by attempt, item type and response, so a poll reads a few rows per
    attempt (one per distinct response), not one per item; the item type judges each."""
    newest = (select(ResponseSave.attempt_id, ResponseSave.item_version_id,
                     func.max(ResponseSave.seq).label("seq"))
              .where(ResponseSave.attempt_id.in_(attempt_ids))
              .group_by(ResponseSave.attempt_id, ResponseSave.item_version_id).subquery())
    response = cast(ResponseSave.value, Text)
    rows = session.execute(
        select(ResponseSave.attempt_id, ItemVersion.item_type, response, func.count())
        .join(newest, and_(ResponseSave.attempt_id == newest.c.attempt_id,
                           ResponseSave.seq == newest.c.seq))
        .join(ItemVersion, ItemVersion.id == ResponseSave.item_version_id)
        .group_by(ResponseSave.attempt_id, ItemVersion.item_type, response))
    counts: dict[int, int] = {}
    for attempt_id, type_name, text, n in rows:
        value = None if text is None else json.loads(text)
        if item_type(type_name).is_answered(value):
            counts[attempt_id] = counts.get(attempt_id, 0) + n
    return counts


def response_stats(version_ids: Sequence[int] | None = None) -> Select:
    """Per item version, over standing results that count (not invalidated):
    ``item_version_id``, ``n`` (scored responses) and ``p`` (mean proportion of the maximum earned; None for an item dropped from
    scoring). For the item bank's list, its statistics flags and pretest readiness."""
    proportion = case((ItemScore.max_score > 0, ItemScore.score / ItemScore.max_score), else_=None)
    query = (select(ItemScore.item_version_id, func.count().label("n"),
                    func.avg(proportion).label("p"))
             .join(Result, Result.id == ItemScore.result_id)
             .where(is_current_result(), Result.id.not_in(invalidated_result_ids()))
             .group_by(ItemScore.item_version_id))
    if version_ids is not None:
        query = query.where(ItemScore.item_version_id.in_(list(version_ids)))
    return query


def media_on_own_attempts(session: Session, candidate_id: int, sha256: str) -> bool:
    """Whether the stored media ``sha256`` is used by an item the candidate was given on one of
    their own attempts (its stem, interaction or item set's stimulus names ``/media/<sha256>``):
    a candidate sees the images and audio of their own questions, not the bank's."""
    from itembank.models import Stimulus

    needle = f"/media/{sha256}"
    ids: set[int] = set()
    for order in session.scalars(select(Attempt.item_order)
                                 .where(Attempt.candidate_id == candidate_id)):
        ids.update(int(v) for v in order or [])
    if not ids:
        return False
    stimuli: set[int] = set()
    for stem, interaction, stimulus_id in session.execute(
            select(ItemVersion.stem, ItemVersion.interaction, ItemVersion.stimulus_id)
            .where(ItemVersion.id.in_(ids))):
        if needle in (stem or "") or needle in json.dumps(interaction or {}):
            return True
        if stimulus_id is not None:
            stimuli.add(stimulus_id)
    return bool(stimuli) and any(needle in (content or "") for content in session.scalars(
        select(Stimulus.content).where(Stimulus.id.in_(stimuli))))
