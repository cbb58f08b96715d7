"""Proctored sessions: creating them, finding them, and changing their state.

:func:`transition` is the only code that changes ``ProctorSession.state``. It checks the state
machine (:mod:`proctoring.states`), changes the row with a compare-and-set, writes the
:class:`Transition` row and an audit record, and tells the plugins.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from microcred.db import utcnow
from microcred.errors import Conflict, NotFound
from proctoring import audit, hook_outbox, hooks
from proctoring.flags import EventState
from proctoring.models import IdentityCheck, ProctorSession, ReviewDecision, Snapshot, Transition
from proctoring.policy import ProctoringPolicy, parse_policy
from proctoring.states import BEFORE_EXAM, State, TransitionRefused, check_transition, label


class Actor(Protocol):
    """A signed-in user as proctoring sees one (``assessment.users.User`` fits)."""

    id: int
    email: str
    role: str


def info(ps: ProctorSession) -> hooks.SessionInfo:
    return hooks.SessionInfo(
        session_id=ps.id, candidate_id=ps.candidate_id, exam_id=ps.exam_id,
        attempt_id=ps.attempt_id, state=ps.state, policy=dict(ps.policy or {}),
    )


def policy(ps: ProctorSession) -> ProctoringPolicy:
    parsed = parse_policy(ps.policy)
    assert parsed is not None, "a proctored session always has a policy"
    return parsed


def get_session(session: Session, session_id: int, *, lock: bool = False) -> ProctorSession:
    q = select(ProctorSession).where(ProctorSession.id == session_id)
    if lock:  # what is locked is read afresh, not taken from an earlier transaction's copy
        q = q.with_for_update().execution_options(populate_existing=True)
    ps = session.scalar(q)
    if ps is None:
        raise NotFound(f"no proctoring session {session_id}")
    return ps


def session_for_attempt(session: Session, attempt_id: int, *, lock: bool = False) -> ProctorSession | None:
    q = select(ProctorSession).where(ProctorSession.attempt_id == attempt_id)
    if lock:
        q = q.with_for_update()
    return session.scalar(q)


def open_session(session: Session, candidate_id: int, exam_id: int) -> ProctorSession | None:
    """The candidate's session for this exam that has not reached the exam yet, if any."""
    return session.scalar(
        select(ProctorSession)
        .where(
            ProctorSession.candidate_id == candidate_id,
            ProctorSession.exam_id == exam_id,
            ProctorSession.attempt_id.is_(None),
            ProctorSession.state.in_([s.value for s in BEFORE_EXAM]),
        )
        .order_by(ProctorSession.id.desc())
        .limit(1)
    )


def create_session(
    session: Session, *, candidate_id: int, exam_id: int, policy: ProctoringPolicy
) -> ProctorSession:
    """A new session in ``created``; admitted at once when the policy needs no identity check."""
    now = utcnow()
    ps = ProctorSession(candidate_id=candidate_id, exam_id=exam_id, state=State.CREATED.value,
                        policy=policy.as_dict(), created_at=now, state_changed_at=now,
                        rule_state=EventState().as_json())
    session.add(ps)
    session.flush()
    audit.record(session, "session.created", actor=None, subject_type="proctoring_session",
                 subject_id=ps.id, data={"candidate_id": candidate_id, "exam_id": exam_id,
                                         "policy": _audit_safe(policy.as_dict())})
    if not policy.identity:
        transition(session, ps, State.ADMITTED, by=None,
                   reason="the exam's policy requires no identity check")
    return ps


def _audit_safe(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, float) else v) for k, v in d.items()}


def transition(
    session: Session,
    ps: ProctorSession,
    to_state: State | str,
    *,
    by: Actor | None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> ProctorSession:
    """Move ``ps`` to ``to_state``: checked, compare-and-set, recorded, audited, announced.

    Raises :class:`Conflict` when the transition is not allowed from the current state, or when
    another request changed the state first.
    """
    to = State(to_state)
    now = now or utcnow()
    current = ps.state
    try:
        check_transition(current, to)
    except TransitionRefused as exc:
        raise Conflict(str(exc), state=current) from None
    won = session.execute(
        update(ProctorSession)
        .where(ProctorSession.id == ps.id, ProctorSession.state == current)
        .values(state=to.value, state_changed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        session.refresh(ps)
        raise Conflict(f"This session became {label(ps.state)} meanwhile; reload and try again.",
                       state=ps.state)
    ps.state, ps.state_changed_at = to.value, now
    session.add(Transition(session_id=ps.id, from_state=current, to_state=to.value,
                           reason=reason, by_user_id=by.id if by else None, at=now))
    audit.record(session, f"session.{to.value}", actor=by, subject_type="proctoring_session",
                 subject_id=ps.id, data={"from": current, "to": to.value, "reason": reason,
                                         **(data or {})}, at=now)
    session.flush()
    # delivered after the commit (hook_outbox): no outside plugin runs inside this transaction
    hook_outbox.announce(session, "microcred_state_changed", info(ps), from_state=current,
                         to_state=to.value, reason=reason)
    return ps


def transitions(session: Session, ps: ProctorSession) -> list[Transition]:
    return list(session.scalars(
        select(Transition).where(Transition.session_id == ps.id).order_by(Transition.id)
    ))


def attempt_summary(session: Session, attempt_id: int) -> dict[str, Any] | None:
    """What the proctoring record shows about an attempt, as plain data for other packages
    (credentials word a badge's evidence from it); None when the attempt had no proctoring
    session. Only recorded facts, never the policy's intentions:

    - ``identity``: None unless the session was admitted after an identity check; else when
      (``admitted_at``), by whom (``admitted_by_id``, None for an automatic admission) and which
      verifiers passed (``verifiers``, e.g. ``["face_count", "proctor"]``).
    - ``snapshots``: how many camera snapshots were recorded during the exam.
    - ``review``: None, or the latest review decision (``verdict``, ``reviewer_id``, ``at``).
    """
    ps = session_for_attempt(session, attempt_id)
    if ps is None:
        return None
    admitted = session.scalar(
        select(Transition).where(Transition.session_id == ps.id,
                                 Transition.to_state == State.ADMITTED.value)
        .order_by(Transition.id.desc()).limit(1))
    passed = list(session.execute(
        select(IdentityCheck.submission, IdentityCheck.verifier)
        .where(IdentityCheck.session_id == ps.id, IdentityCheck.outcome == "passed")
        .order_by(IdentityCheck.id)).all())
    identity = None
    if admitted is not None and passed:  # admitted with no check passing: no identity check
        # the admitted submission is the one the last passing check belongs to
        identity = {"admitted_at": admitted.at.isoformat(),
                    "admitted_by_id": admitted.by_user_id,
                    "verifiers": list(dict.fromkeys(
                        p.verifier for p in passed if p.submission == passed[-1].submission))}
    review = session.scalar(select(ReviewDecision).where(ReviewDecision.session_id == ps.id)
                            .order_by(ReviewDecision.id.desc()).limit(1))
    return {
        "session_id": ps.id,
        "state": ps.state,
        "identity": identity,
        "snapshots": session.scalar(select(func.count()).select_from(Snapshot)
                                    .where(Snapshot.session_id == ps.id)) or 0,
        "review": None if review is None else {
            "verdict": review.verdict, "reviewer_id": review.reviewer_id,
            "at": review.at.isoformat()},
    }
