"""Whether a candidate may start an attempt at an exam now: the exam's prerequisites (the
credentials and trainings its pathway rule asks for, evaluated by
:func:`credentials.pathways.eligible_for_exam`, the one evaluator), then its retake rules
(:mod:`assessment.retakes`): the attempt limit, and the wait after an attempt that did not pass.

The same answer is enforced when an attempt starts (``service.start_attempt``), checked before
the candidate is sent through any start gate (the identity check), and shown on the exam page.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from assessment.delivery.models import Attempt
from assessment.delivery.reads import current_result, release_status
from assessment.exams import Exam
from assessment.retakes import RetakePolicy, retake_policy_of, wait_refusal
from credentials.pathways import ExamGate, eligible_for_exam
from microcred.words import plural

#: how a finalized attempt ended when it did not pass: the wait applies after each of these
NOT_PASSED = ("failed", "terminated", "invalidated")


@dataclass(frozen=True)
class Eligibility:
    rules: RetakePolicy
    attempts_used: int
    #: when the candidate may retake, while a wait after an attempt that did not pass runs
    retake_from: dt.datetime | None
    #: why the candidate may not start now, in their words; None: they may
    refusal: str | None
    #: the exam's prerequisites for the candidate (``next_steps`` link what to do)
    prerequisites: ExamGate | None = None

    @property
    def may_start(self) -> bool:
        return self.refusal is None

    @property
    def attempts_left(self) -> int | None:
        if self.rules.max_attempts is None:
            return None
        return max(0, self.rules.max_attempts - self.attempts_used)


def outcome(session: Session, attempt_id: int, finalize_reason: str | None) -> str:
    """How a finalized attempt ended: passed, failed, terminated, invalidated or held."""
    if finalize_reason == "terminated":
        return "terminated"
    result = current_result(session, attempt_id)
    if result is None:
        return "failed"
    standing = release_status(session, result.id)
    release = standing.status if standing else None
    if release == "invalidated":
        return "invalidated"
    if not result.passed:
        return "failed"
    return "held" if release == "held" else "passed"


def eligibility(session: Session, candidate_id: int, exam: Exam, now: dt.datetime) -> Eligibility:
    """May ``candidate_id`` start a new attempt at ``exam`` at ``now``?"""
    rules = retake_policy_of(exam.policy)
    gate = eligible_for_exam(session, candidate_id, exam.id, now=now)
    if not gate.open:
        return Eligibility(rules, 0, None, gate.refusal, gate)
    attempts = list(session.execute(
        select(Attempt.id, Attempt.status, Attempt.finalized_at, Attempt.finalize_reason)
        .where(Attempt.candidate_id == candidate_id, Attempt.exam_id == exam.id)
        .order_by(Attempt.id)))
    used = len(attempts)
    if rules.max_attempts is not None and used >= rules.max_attempts:
        return Eligibility(rules, used, None,
                           f"You have used all {plural(rules.max_attempts, 'attempt')} "
                           "at this exam.", gate)
    last = next((a for a in reversed(attempts) if a.status == "finalized"), None)
    if rules.wait_hours and last is not None and last.finalized_at is not None \
            and outcome(session, last.id, last.finalize_reason) in NOT_PASSED:
        retake_from = rules.retake_from(last.finalized_at)
        if now < retake_from:
            return Eligibility(rules, used, retake_from, wait_refusal(retake_from), gate)
    return Eligibility(rules, used, None, None, gate)
