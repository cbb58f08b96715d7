"""Delivery services: start, autosave, navigate, submit, finalize, sweep, and the proctor's
clock controls. Plain functions over a SQLAlchemy ``Session``; the views only parse and call.

Transitions of an attempt::

    (none) --start--> in_progress --submit | time ran out | terminate--> finalized

Finalization is a compare-and-set on ``status`` (``UPDATE ... WHERE status = 'in_progress'``),
so two racing submits finalize once on SQLite and on PostgreSQL alike. Saves lock the attempt row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock does the same) so sequence numbers
are checked and written atomically. Nothing is written when any part of a request is invalid.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.attributes import set_committed_value

from assessment.delivery.eligibility import eligibility
from assessment.delivery.models import (
    Attempt,
    ClockEvent,
    ItemScore,
    ResponseSave,
    Result,
    ResultRelease,
)
from assessment.delivery.reads import current_result, result_summary
from assessment.delivery.timing import Clock, clock, stored_clock
from assessment.exams import Exam, ExamForm, loft_target, window_refusal
from assessment.psych.cuts_scoring import judge
from assessment.users import User, time_multiplier_for
from itembank.exposure import record_delivery
from itembank.forms import unscored_versions
from itembank.models import FormItem, ItemVersion
from itembank.rekeys import ScoringView, scoring_views
from itembank.stimuli import shuffle_keeping_sets
from itembank.types import ResponseShapeError, item_type, public_payload
from microcred import signals
from microcred.db import utcnow
from microcred.errors import Conflict, Invalid, NotFound
from microcred.inputs import object_list

log = logging.getLogger(__name__)

MAX_SAVES_PER_REQUEST = 200
MAX_EXTENSION_SECONDS = 4 * 3600


class Finalized(Conflict):
    status, code = 409, "attempt_finalized"


class TimeUp(Conflict):
    status, code = 409, "time_up"


# ---------------------------------------------------------------- loading and the clock


def get_attempt(session: Session, attempt_id: int, *, lock: bool = False) -> Attempt:
    q = select(Attempt).where(Attempt.id == attempt_id)
    if lock:
        q = q.with_for_update()
    attempt = session.scalar(q)
    if attempt is None:
        raise NotFound(f"no attempt {attempt_id}")
    return attempt


def attempt_for_candidate(
    session: Session, attempt_id: int, candidate: User, *, lock: bool = False
) -> Attempt:
    """The attempt if it belongs to ``candidate``; another candidate's attempt is "not found",
    exactly like one that does not exist, so ids cannot be probed."""
    attempt = get_attempt(session, attempt_id, lock=lock) if attempt_id > 0 else None
    if attempt is None or attempt.candidate_id != candidate.id:
        raise NotFound(f"no attempt {attempt_id}")
    return attempt


def clock_events(session: Session, attempt: Attempt) -> list[ClockEvent]:
    return list(
        session.scalars(
            select(ClockEvent).where(ClockEvent.attempt_id == attempt.id).order_by(ClockEvent.id)
        )
    )


def attempt_clock(session: Session, attempt: Attempt, now: dt.datetime | None = None) -> Clock:
    """The attempt's clock from its clock events. (The hot path, ``hotpath``, reads the same
    clock from the row's stored columns, written with every event: ``timing.clock_from_row``.)"""
    return clock(attempt, clock_events(session, attempt), now or utcnow())


# ---------------------------------------------------------------- starting


def in_progress_attempt(session: Session, candidate: User, exam: Exam) -> Attempt | None:
    return session.scalar(
        select(Attempt).where(
            Attempt.candidate_id == candidate.id,
            Attempt.exam_id == exam.id,
            Attempt.status == "in_progress",
        )
    )


def check_may_start(session: Session, candidate: User, exam: Exam,
                    now: dt.datetime | None = None) -> None:
    """Raise :class:`Conflict` saying when the candidate may retake, when the exam's retake
    rules (attempt limit, wait after an attempt that did not pass) refuse a new attempt now."""
    verdict = eligibility(session, candidate.id, exam, now or utcnow())
    if not verdict.may_start:
        raise Conflict(verdict.refusal, retake_from=verdict.retake_from.isoformat()
                       if verdict.retake_from else None)


def start_attempt(
    session: Session,
    candidate: User,
    exam: Exam,
    *,
    grace_seconds: float,
    seed: int | None = None,
    now: dt.datetime | None = None,
    may_start_checked: bool = False,
) -> Attempt:
    """Start an attempt, or return the one already in progress (a double click starts one).
    One whose time ran out is finalized first (``grace_seconds``: the settings' save grace).
    The candidate's acceptance of the agreement is the start view's to take, before any start
    gate; the attempt records when it started as when the agreement was accepted.
    ``may_start_checked``: the caller ran :func:`check_may_start` in this transaction."""
    now = now or utcnow()
    if not candidate.has_role("candidate"):
        raise Invalid("only candidates sit exams")
    existing = in_progress_attempt(session, candidate, exam)
    if existing is not None and finalize_if_expired(session, existing, now,
                                                    grace_seconds=grace_seconds) is None:
        return existing
    if not exam.is_open:
        raise Conflict(f"exam {exam.code} is not open")
    closed = window_refusal(exam, now)
    if closed:
        raise Conflict(closed)
    if not may_start_checked:
        check_may_start(session, candidate, exam, now)
    seed = seed if seed is not None else secrets.randbits(48)
    rng = random.Random(seed)
    form_id = _choose_form(session, exam, rng, seed)
    record_delivery(session, form_id)
    versions = list(
        session.scalars(
            select(ItemVersion)
            .join(FormItem, FormItem.item_version_id == ItemVersion.id)
            .where(FormItem.form_id == form_id)
            .order_by(FormItem.position)
        )
    )
    order = [v.id for v in versions]
    if exam.shuffle_items:  # an item set's members move as one block, in their form order
        order = shuffle_keeping_sets(order, {v.id: v.stimulus_id for v in versions}, rng)
    option_orders: dict[str, list[str]] = {}
    for v in versions:
        targets = item_type(v.item_type).shuffle_targets(v)
        if targets and exam.shuffle_options:
            rng.shuffle(targets)
        if targets:
            option_orders[str(v.id)] = targets
    multiplier = time_multiplier_for(session, candidate.id, exam.id)
    attempt = Attempt(
        candidate_id=candidate.id,
        exam_id=exam.id,
        form_id=form_id,
        seed=seed,
        item_order=order,
        option_orders=option_orders,
        started_at=now,
        time_limit_seconds=exam.time_limit_seconds,
        time_multiplier=multiplier,
        agreement_accepted_at=now,
        deadline_at=now + dt.timedelta(seconds=exam.time_limit_seconds * multiplier),
        extension_seconds=0,
    )
    session.add(attempt)
    session.flush()
    signals.attempt_started.send(
        "delivery",
        session=session,
        attempt_id=attempt.id,
        candidate_id=candidate.id,
        exam_id=exam.id,
    )
    return attempt


def _choose_form(session: Session, exam: Exam, rng: random.Random, seed: int) -> int:
    """One of the exam's active forms, or for a linear-on-the-fly exam a form of the
    candidate's own: taken from the exam's pool, or assembled now when the pool is empty."""
    if exam.delivery_mode == "loft":
        from itembank.assembly import InfeasibleAssembly, assemble_loft_form
        from itembank.pool import claim_form

        form_id = claim_form(session, exam.code)
        if form_id is not None:
            return form_id
        try:
            return assemble_loft_form(session, loft_key=exam.code, blueprint=exam.blueprint,
                                      target=loft_target(exam), seed=seed).id
        except InfeasibleAssembly as exc:
            log.error("exam %s: no form could be assembled: %s", exam.code, exc)
            raise Conflict(f"exam {exam.code} has no form ready; try again later") from exc
    forms = [ef for ef in exam.forms if ef.active]
    if not forms:
        raise Conflict(f"exam {exam.code} has no active form")
    exam_form: ExamForm = rng.choice(forms)
    return exam_form.form_id


# ---------------------------------------------------------------- the runner's state


def _versions(session: Session, attempt: Attempt) -> dict[int, ItemVersion]:
    rows = session.scalars(select(ItemVersion).where(ItemVersion.id.in_(attempt.item_order)))
    return {v.id: v for v in rows}


def _versions_for_saves(
    session: Session, attempt: Attempt, saves: list[SaveRequest]
) -> dict[int, ItemVersion]:
    """Only what checking a save's shape needs, for only the items saved: autosave is the hot
    path, and the full versions (stems, keys, rationales) of every item cost most of its time."""
    wanted = {s.item_id for s in saves} & set(attempt.item_order)
    if not wanted:
        return {}
    rows = session.scalars(
        select(ItemVersion)
        .options(load_only(ItemVersion.id, ItemVersion.item_type, ItemVersion.interaction))
        .where(ItemVersion.id.in_(wanted))
    )
    return {v.id: v for v in rows}


def current_saves(
    session: Session, attempt: Attempt, *, until: dt.datetime | None = None
) -> dict[int, ResponseSave]:
    """The newest save per item (highest ``seq``), optionally only those saved by ``until``."""
    q = select(ResponseSave).where(ResponseSave.attempt_id == attempt.id)
    if until is not None:
        q = q.where(ResponseSave.saved_at <= until)
    latest: dict[int, ResponseSave] = {}
    for s in session.scalars(q.order_by(ResponseSave.seq)):
        latest[s.item_version_id] = s
    return latest


def clock_payload(c: Clock, now: dt.datetime, *, grace_seconds: float) -> dict[str, Any]:
    return {
        "server_now": now.isoformat(),
        # time ran out (the one rule, grace included): a GET reports it and writes nothing; the
        # runner then posts, and the POST (or the sweeper) finalizes
        "expired": c.time_up(grace_seconds),
        "deadline": c.deadline.isoformat(),
        "remaining_ms": int(c.remaining_seconds * 1000),
        "paused": c.paused,
        # the runner tells the candidate when this grows (the proctor gave more time)
        "extension_seconds": c.extension_seconds,
    }


def runner_state(session: Session, attempt: Attempt, now: dt.datetime | None = None, *,
                 grace_seconds: float) -> dict:
    """Everything the runner page needs, and nothing it must not see (no keys, no rules).
    A read: an attempt whose time ran out is reported (``clock.expired``), not finalized."""
    now = now or utcnow()
    versions = _versions(session, attempt)
    saves = current_saves(session, attempt)
    items = []
    set_numbers: dict[int, list[int]] = {}  # stimulus -> the numbers of its questions
    for pos, vid in enumerate(attempt.item_order):
        if versions[vid].stimulus_id is not None:
            set_numbers.setdefault(versions[vid].stimulus_id, []).append(pos + 1)
    for pos, vid in enumerate(attempt.item_order):
        v = versions[vid]
        public = public_payload(v, attempt.option_orders.get(str(vid)))
        if "stimulus" in public:
            public["stimulus"]["shared_by"] = set_numbers[v.stimulus_id]
        save = saves.get(vid)
        items.append(
            {
                "id": vid,
                "number": pos + 1,
                **public,
                "answer": save.value if save else None,
                "flagged": bool(save.flagged) if save else False,
            }
        )
    exam = session.get(Exam, attempt.exam_id)
    return {
        "attempt_id": attempt.id,
        "status": attempt.status,
        "exam": {"code": exam.code, "title": exam.title},
        "position": attempt.position,
        "last_seq": attempt.last_seq,
        "items": items,
        "clock": clock_payload(attempt_clock(session, attempt, now), now,
                               grace_seconds=grace_seconds),
    }


# ---------------------------------------------------------------- autosave


@dataclass(frozen=True)
class SaveRequest:
    seq: int
    item_id: int
    value: Any
    flagged: bool


def parse_saves(payload: Any) -> tuple[list[SaveRequest], int | None]:
    """Check the shape of a save request body; raise :class:`Invalid` naming the bad field."""
    saves = []
    for where, s in object_list(payload, "saves", most=MAX_SAVES_PER_REQUEST):
        seq, item = s.get("seq"), s.get("item")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or seq > 2**53:
            raise Invalid(f"{where}.seq must be a positive integer", field=f"{where}.seq")
        if not isinstance(item, int) or isinstance(item, bool):
            raise Invalid(f"{where}.item must be an item id (integer)", field=f"{where}.item")
        flagged = s.get("flagged", False)
        if not isinstance(flagged, bool):
            raise Invalid(f"{where}.flagged must be true or false", field=f"{where}.flagged")
        saves.append(SaveRequest(seq, item, s.get("value"), flagged))
    if len({s.seq for s in saves}) != len(saves):
        raise Invalid("two saves in one request share a seq", field="saves")
    position = payload.get("position")
    if position is not None and (not isinstance(position, int) or isinstance(position, bool)):
        raise Invalid("'position' must be an integer", field="position")
    return saves, position


def save_responses(
    session: Session,
    attempt: Attempt,
    saves: list[SaveRequest],
    *,
    position: int | None = None,
    grace_seconds: float,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Store a batch of saves. Returns per-save acks: ``saved``, ``duplicate`` (this seq is
    already stored with the same content: a retry), or ``conflict`` (this seq was used for other
    content, e.g. by another browser; resend with a seq above ``last_seq``)."""
    now = now or utcnow()
    if attempt.status != "in_progress":
        raise Finalized("this attempt has been submitted; no more answers are accepted")
    c = refuse_if_time_up(session, attempt, now, grace_seconds=grace_seconds, what="save")
    if c.paused and saves:
        raise Conflict("the exam is paused by the proctor; answers are not accepted until resumed")
    if position is not None and not 0 <= position < len(attempt.item_order):
        raise Invalid(f"position must be between 0 and {len(attempt.item_order) - 1}")
    versions = _versions_for_saves(session, attempt, saves)
    normalized: list[tuple[SaveRequest, Any]] = []
    for i, s in enumerate(saves):
        version = versions.get(s.item_id)
        if version is None:
            raise Invalid(f"saves[{i}]: item {s.item_id} is not in this attempt", field="item")
        try:
            value = item_type(version.item_type).normalize(version, s.value)
        except ResponseShapeError as exc:
            # which save, and why in the candidate's words, so the runner can show it in place
            raise Invalid(f"saves[{i}] (item {s.item_id}): {exc}", field="value",
                          item=s.item_id, seq=s.seq, reason=exc.message) from None
        normalized.append((s, value))
    existing = {}
    if saves:
        existing = {
            r.seq: r
            for r in session.scalars(
                select(ResponseSave).where(
                    ResponseSave.attempt_id == attempt.id,
                    ResponseSave.seq.in_([s.seq for s in saves]),
                )
            )
        }
    acks = []
    top = attempt.last_seq
    for s, value in normalized:
        prior = existing.get(s.seq)
        if prior is not None:
            same = (prior.item_version_id, prior.value, prior.flagged) == (s.item_id, value, s.flagged)
            acks.append({"seq": s.seq, "status": "duplicate" if same else "conflict"})
            continue
        session.add(
            ResponseSave(
                attempt_id=attempt.id,
                item_version_id=s.item_id,
                seq=s.seq,
                value=value,
                flagged=s.flagged,
                saved_at=now,
            )
        )
        top = max(top, s.seq)
        acks.append({"seq": s.seq, "status": "saved"})
    changes: dict[str, Any] = {}
    if top != attempt.last_seq:
        changes["last_seq"] = top
    if position is not None and position != attempt.position:
        changes["position"] = position
    if changes:
        session.execute(update(Attempt).where(Attempt.id == attempt.id).values(**changes))
        for k, v in changes.items():
            setattr(attempt, k, v)
    session.flush()
    return {"acks": acks, "last_seq": top,
            "clock": clock_payload(c, now, grace_seconds=grace_seconds)}


# ---------------------------------------------------------------- finalizing


def submit_attempt(session: Session, attempt: Attempt, *, grace_seconds: float,
                   now: dt.datetime | None = None) -> Result:
    """The candidate's submit. Once time ran out, the attempt is finalized as timed out and
    :class:`TimeUp` raised, exactly as for a late save (the caller commits, then answers)."""
    now = now or utcnow()
    if attempt.status != "in_progress":
        raise Finalized("this attempt has already been submitted")
    refuse_if_time_up(session, attempt, now, grace_seconds=grace_seconds, what="submit")
    return finalize_attempt(session, attempt, reason="submitted", now=now)


def finalize_if_expired(
    session: Session, attempt: Attempt, now: dt.datetime | None = None, *, grace_seconds: float
) -> Result | None:
    """Finalize an attempt whose time ran out (:meth:`Clock.time_up`); else None. For writes
    only (a POST, the sweeper): a GET reports ``expired`` instead."""
    now = now or utcnow()
    if attempt.status != "in_progress":
        return None
    if not attempt_clock(session, attempt, now).time_up(grace_seconds):
        return None
    return finalize_attempt(session, attempt, reason="time_expired", now=now)


def refuse_if_time_up(session: Session, attempt: Attempt, now: dt.datetime, *,
                      grace_seconds: float, what: str) -> Clock:
    """The attempt's clock, if time has not run out. Else finalize it as timed out and raise
    :class:`TimeUp` (the one answer to "too late", for a save and a submit alike): the caller
    commits the finalization before answering."""
    c = attempt_clock(session, attempt, now)
    if c.time_up(grace_seconds):
        finalize_attempt(session, attempt, reason="time_expired", now=now)
        raise TimeUp(
            f"time ran out at {c.deadline.isoformat()}; this {what} arrived "
            f"{c.late_seconds:.1f} s later and was not accepted. Answers saved before then "
            "have been submitted."
        )
    return c


def finalize_attempt(
    session: Session, attempt: Attempt, *, reason: str, now: dt.datetime | None = None,
    by_user_id: int | None = None, note: str = "",
) -> Result:
    """Score the attempt from its newest saves and write its Result, exactly once. ``note`` is
    the proctor's reason for a termination: the candidate's result page shows it."""
    now = now or utcnow()
    c = attempt_clock(session, attempt, now)
    finalized_at = min(now, c.deadline) if reason == "time_expired" else now
    won = session.execute(
        update(Attempt)
        .where(Attempt.id == attempt.id, Attempt.status == "in_progress")
        .values(status="finalized", finalized_at=finalized_at, finalize_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise Finalized("this attempt has already been submitted")
    attempt.status, attempt.finalized_at, attempt.finalize_reason = "finalized", finalized_at, reason
    result = _score(session, attempt)
    holds = [
        str(ret)
        for _, ret in signals.result_finalized.send(
            "delivery", session=session, attempt_id=attempt.id, exam_id=attempt.exam_id,
            result_id=result.id, reason=reason
        )
        if ret
    ]
    if reason == "terminated":
        _release(session, result, "invalidated",
                 note.strip() or "the proctor terminated the attempt", by_user_id)
    elif holds:
        _release(session, result, "held", "; ".join(holds), None)
    else:
        _release(session, result, "released", "", None)
    session.flush()
    return result


def _score(session: Session, attempt: Attempt) -> Result:
    saves = current_saves(session, attempt)
    exam = session.get(Exam, attempt.exam_id)
    result, scores = score_responses(session, exam, attempt.item_order,
                                     {vid: save.value for vid, save in saves.items()},
                                     unscored=unscored_versions(session, attempt.form_id))
    # the decision under the exam's cut standing now (a cut adopted later changes it only
    # through a recorded cut rescoring: assessment.delivery.rescore)
    judge(session, exam, attempt.form_id, scored_items(scores)).apply_to(result)
    result.attempt_id = attempt.id
    session.add(result)
    session.flush()
    for s in scores:
        s.result_id = result.id
        session.add(s)
    return result


def score_responses(session: Session, exam: Exam, item_order: list[int],
                    responses: dict[int, Any], *, unscored: set[int] = frozenset(),
                    views: dict[int, ScoringView] | None = None,
                    ) -> tuple[Result, list[ItemScore]]:
    """Score ``responses`` (item version id -> final response) to the items of ``item_order``
    under each item's standing key (its newest re-key, ``itembank.rekeys``): an unsaved
    Result (no attempt yet) and its ItemScores. Finalization and rescoring both score here
    (``views``: the items' scoring views, when the caller has them already). The versions in
    ``unscored`` (the form's pretest items) ride along: their responses are kept, scored, for
    calibration (``ItemScore.scored`` False), and left out of the result."""
    if views is None:
        views = scoring_views(session, session.scalars(
            select(ItemVersion).where(ItemVersion.id.in_(item_order))))
    domain_names = {d.code: d.name for d in exam.blueprint.domains}
    domains: dict[str, dict[str, Any]] = {
        code: {"code": code, "name": name, "score": 0.0, "max": 0.0, "items": 0}
        for code, name in domain_names.items()
    }
    raw = maximum = 0.0
    answered = 0
    scores = []
    for pos, vid in enumerate(item_order):
        v = views[vid]
        value = responses.get(vid)
        points = v.score(value)
        if vid in unscored:
            scores.append(ItemScore(item_version_id=vid, position=pos, domain_code=v.domain_code,
                                    response=value, score=points, max_score=v.max_score,
                                    scored=False))
            continue
        answered += item_type(v.item_type).is_answered(value)
        raw += points
        maximum += v.max_score
        d = domains.setdefault(
            v.domain_code, {"code": v.domain_code, "name": v.domain_code, "score": 0.0, "max": 0.0, "items": 0}
        )
        d["score"] += points
        d["max"] += v.max_score
        d["items"] += 1
        scores.append(
            ItemScore(
                item_version_id=vid,
                position=pos,
                domain_code=v.domain_code,
                response=value,
                score=points,
                max_score=v.max_score,
            )
        )
    percent = round(100.0 * raw / maximum, 2) if maximum else 0.0
    for d in domains.values():
        d["percent"] = round(100.0 * d["score"] / d["max"], 1) if d["max"] else None
    result = Result(
        raw_score=raw,
        max_score=maximum,
        percent=percent,
        pass_percent=exam.pass_percent,
        passed=percent >= exam.pass_percent,
        answered=answered,
        n_items=len(item_order) - len(set(unscored) & set(item_order)),
        domain_scores=[d for d in domains.values() if d["items"]],
        theta=None,
        theta_se=None,
        scoring_rule="percent",
    )
    return result, scores


def scored_items(scores: list[ItemScore]) -> list[tuple[int, float, float]]:
    """``(item_version_id, score, max_score)`` of the items that count (not pretest), in
    form order: what :func:`assessment.psych.cuts_scoring.judge` decides on."""
    return [(s.item_version_id, float(s.score), float(s.max_score)) for s in scores
            if s.scored is not False]


def _release(
    session: Session, result: Result, status: str, reason: str, by_user_id: int | None
) -> ResultRelease:
    row = ResultRelease(result_id=result.id, status=status, reason=reason, by_user_id=by_user_id)
    session.add(row)
    session.flush()
    if status == "released":
        # isolated: a receiver's failure (a badge that cannot be issued) must not undo the
        # finalization and release the candidate was just told about
        signals.send_isolated(signals.result_released, "delivery", session=session,
                              released=result_summary(session, result, released_at=row.at))
    return row


def connect_receivers() -> None:
    """Delivery's receivers (called by ``microcred.packages.connect_receivers``)."""
    from assessment import jobs  # noqa: F401 - gives microcred.jobs this process's queue
    from assessment.delivery import rescore

    signals.review_decided.connect(_on_review_decided, weak=False)
    signals.item_rekeyed.connect(rescore.on_item_rekeyed, weak=False)


def _on_review_decided(sender: Any, *, session: Session, attempt_id: int, verdict: str,
                       reason: str, decided_by_id: int | None) -> None:
    result = current_result(session, attempt_id)
    if result is None:
        raise NotFound(f"attempt {attempt_id} has no result to review")
    if verdict not in ("cleared", "invalidated"):
        raise Invalid(f"unknown review verdict {verdict!r}")
    _release(session, result, "released" if verdict == "cleared" else "invalidated", reason,
             decided_by_id)


def sweep(session: Session, *, grace_seconds: float, now: dt.datetime | None = None) -> list[int]:
    """Finalize every in-progress attempt whose time has run out; returns their ids. Each in a
    transaction of its own; one that fails is logged, recorded and retried after a backoff
    (``assessment.delivery.sweeper``, which says how it scales)."""
    from assessment.delivery.sweeper import sweep as sweep_attempts

    return sweep_attempts(session, grace_seconds=grace_seconds, now=now).finalized


# ---------------------------------------------------------------- proctor's clock controls


def pause_attempt(session: Session, attempt: Attempt, *, by_user_id: int | None, reason: str = "") -> ClockEvent:
    _require_running(attempt)
    if attempt_clock(session, attempt).paused:
        raise Conflict("the attempt is already paused")
    return _clock_event(session, attempt, "pause", 0, reason, by_user_id)


def resume_attempt(session: Session, attempt: Attempt, *, by_user_id: int | None, reason: str = "") -> ClockEvent:
    _require_running(attempt)
    if not attempt_clock(session, attempt).paused:
        raise Conflict("the attempt is not paused")
    return _clock_event(session, attempt, "resume", 0, reason, by_user_id)


def extend_attempt(
    session: Session, attempt: Attempt, *, seconds: int, by_user_id: int | None, reason: str
) -> ClockEvent:
    _require_running(attempt)
    if not isinstance(seconds, int) or not 0 < seconds <= MAX_EXTENSION_SECONDS:
        raise Invalid(f"an extension must be between 1 and {MAX_EXTENSION_SECONDS} seconds")
    if not reason.strip():
        raise Invalid("an extension needs a reason")
    return _clock_event(session, attempt, "extend", seconds, reason, by_user_id)


def terminate_attempt(session: Session, attempt: Attempt, *, by_user_id: int | None, reason: str) -> Result:
    _require_running(attempt)
    if not reason.strip():
        raise Invalid("terminating an attempt needs a reason")
    return finalize_attempt(session, attempt, reason="terminated", by_user_id=by_user_id,
                            note=reason)


def _require_running(attempt: Attempt) -> None:
    if attempt.status != "in_progress":
        raise Finalized("this attempt has been submitted")


def _clock_event(session: Session, attempt: Attempt, kind: str, seconds: int, reason: str,
                 by_user_id: int | None) -> ClockEvent:
    """Write a clock event and, with it, the attempt row's stored clock (the caller holds the
    attempt's row lock, ``DeliveryControl``), recomputed from all its events by the formula."""
    ev = ClockEvent(attempt_id=attempt.id, kind=kind, seconds=seconds, reason=reason,
                    by_user_id=by_user_id, at=utcnow())
    session.add(ev)
    session.flush()
    stored = stored_clock(attempt, clock_events(session, attempt))
    session.execute(update(Attempt).where(Attempt.id == attempt.id).values(
        deadline_at=stored.deadline_at, paused_since=stored.paused_since,
        extension_seconds=stored.extension_seconds).execution_options(synchronize_session=False))
    for name in ("deadline_at", "paused_since", "extension_seconds"):
        set_committed_value(attempt, name, getattr(stored, name))
    return ev
