"""Where proctoring meets the exam runner: the one module, beside the views, that imports
``assessment``.

- :func:`identity_gate` is a runner *start gate*: a proctored exam starts only once the session
  is admitted; until then the candidate is sent to the identity check.
- :func:`runner_extras` is a runner *state contributor*: the heartbeat carries the session's
  state, its policy for the page (full screen, snapshot interval) and the proctor's messages.
- The receivers of ``attempt_started`` and ``result_finalized`` tie the session to the attempt
  and hold the result for review. They connect when this module is imported
  (``proctoring.web`` and ``proctoring.cli`` import it).
- :class:`DeliveryControl` carries the proctor's pause, resume, extend and terminate to
  delivery's clock.
- :func:`live_sessions` assembles the console's rows in a fixed number of queries.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from assessment.delivery import service as delivery
from assessment.delivery.models import Attempt, ClockEvent, ResponseSave
from assessment.delivery.timing import clock
from assessment.exams import Exam
from assessment.users import User
from microcred import signals
from microcred.db import utcnow
from proctoring import hooks
from proctoring.actions import messages
from proctoring.assignments import exam_ids_for
from proctoring.errors import Conflict
from proctoring.flags import SEVERITY_ORDER
from proctoring.models import Flag, IdentityCheck, ProctorSession, Snapshot
from proctoring.policy import PolicyError, ProctoringPolicy, policy_of_exam
from proctoring.review import on_finalized
from proctoring.sessions import (
    create_session,
    info,
    open_session,
    policy,
    session_for_attempt,
    transition,
)
from proctoring.states import ACTIVE, LABELS, State

#: A page not heard from for this long shows as disconnected on the console.
CONNECTION_LOST_AFTER_S = 30
#: Finished sessions stay on the console this long, so the proctor sees them end.
RECENTLY_ENDED_S = 15 * 60


def exam_policy(exam: Exam) -> ProctoringPolicy | None:
    try:
        return policy_of_exam(exam.policy)
    except PolicyError as exc:
        raise Conflict(f"exam {exam.code} has a malformed proctoring policy: {exc}") from None


# ---------------------------------------------------------------- the start gate


def identity_gate(session: Session, user: User, exam: Exam, *, url_for: Any = None) -> str | None:
    """None when the candidate may start (not proctored, or admitted); else where to go."""
    pol = exam_policy(exam)
    if pol is None:
        return None
    ps = open_session(session, user.id, exam.id)
    if ps is None:
        ps = create_session(session, candidate_id=user.id, exam_id=exam.id, policy=pol)
    if ps.state == State.ADMITTED:
        return None
    if url_for is None:
        from flask import url_for
    return url_for("proctoring.identity_page", session_id=ps.id)


# ---------------------------------------------------------------- signals from delivery


@signals.attempt_started.connect
def _on_attempt_started(sender: Any, *, session: Session, attempt_id: int, candidate_id: int,
                        exam_id: int) -> None:
    exam = session.get(Exam, exam_id)
    pol = exam_policy(exam)
    if pol is None:
        return
    ps = open_session(session, candidate_id, exam_id)
    if ps is None and not pol.identity:
        ps = create_session(session, candidate_id=candidate_id, exam_id=exam_id, policy=pol)
    if ps is None or ps.state != State.ADMITTED:
        raise Conflict("this exam is proctored: the identity check must admit you before it starts",
                       state=ps.state if ps else None)
    ps.attempt_id = attempt_id
    session.flush()
    transition(session, ps, State.IN_PROGRESS, by=None, reason="the attempt started",
               data={"attempt_id": attempt_id})
    hooks.call("microcred_session_started", session=info(ps))


@signals.result_finalized.connect
def _on_result_finalized(sender: Any, *, session: Session, attempt_id: int, result_id: int,
                         reason: str) -> str | None:
    ps = session_for_attempt(session, attempt_id, lock=True)
    if ps is None:
        attempt = session.get(Attempt, attempt_id)
        exam = session.get(Exam, attempt.exam_id) if attempt else None
        if exam is not None and exam_policy(exam) is not None and reason != "terminated":
            return "the exam is proctored but this attempt has no proctoring session"
        return None
    return on_finalized(session, ps, reason=reason)


# ---------------------------------------------------------------- the candidate's runner


def runner_extras(session: Session, attempt: Attempt) -> dict[str, Any]:
    """The heartbeat's ``extras["proctoring"]`` for the runner script."""
    ps = session_for_attempt(session, attempt.id)
    if ps is None:
        return {}
    from flask import url_for

    pol = policy(ps)
    return {"proctoring": {
        "session_id": ps.id,
        "state": ps.state,
        "status": LABELS[State(ps.state)],
        "fullscreen": pol.fullscreen,
        "snapshot_interval_s": pol.snapshot_interval_s,
        "events_url": url_for("proctoring.api_events", session_id=ps.id),
        "snapshots_url": url_for("proctoring.api_snapshots", session_id=ps.id),
        "messages": [{"id": m.id, "text": m.text, "at": m.at.isoformat()}
                     for m in messages(session, ps)],
    }}


# ---------------------------------------------------------------- the proctor's clock controls


class DeliveryControl:
    """:class:`proctoring.actions.AttemptControl` over delivery's services."""

    def _attempt(self, session: Session, attempt_id: int | None) -> Attempt:
        if attempt_id is None:
            raise Conflict("the candidate has not started the exam yet")
        return delivery.get_attempt(session, attempt_id, lock=True)

    def pause(self, session: Session, attempt_id: int | None, *, by_user_id: int, reason: str) -> None:
        delivery.pause_attempt(session, self._attempt(session, attempt_id), by_user_id=by_user_id,
                               reason=reason)

    def resume(self, session: Session, attempt_id: int | None, *, by_user_id: int, reason: str) -> None:
        delivery.resume_attempt(session, self._attempt(session, attempt_id), by_user_id=by_user_id,
                                reason=reason)

    def extend(self, session: Session, attempt_id: int | None, *, seconds: int, by_user_id: int,
               reason: str) -> None:
        delivery.extend_attempt(session, self._attempt(session, attempt_id), seconds=seconds,
                                by_user_id=by_user_id, reason=reason)

    def terminate(self, session: Session, attempt_id: int | None, *, by_user_id: int, reason: str) -> None:
        delivery.terminate_attempt(session, self._attempt(session, attempt_id),
                                   by_user_id=by_user_id, reason=reason)


# ---------------------------------------------------------------- the console's rows


def _visible_sessions(session: Session, viewer: User, now: dt.datetime) -> list[ProctorSession]:
    exam_ids = exam_ids_for(session, viewer)
    if exam_ids is not None and not exam_ids:
        return []
    recent = now - dt.timedelta(seconds=RECENTLY_ENDED_S)
    q = select(ProctorSession).where(
        (ProctorSession.state.in_([s.value for s in ACTIVE]))
        | (ProctorSession.state_changed_at >= recent))
    if exam_ids is not None:
        q = q.where(ProctorSession.exam_id.in_(exam_ids))
    return list(session.scalars(q.order_by(ProctorSession.id)))


def _answered(session: Session, attempt_ids: list[int]) -> dict[int, int]:
    """Items whose newest save holds an answer, per attempt: one query for all."""
    if not attempt_ids:
        return {}
    newest = (select(ResponseSave.attempt_id, ResponseSave.item_version_id,
                     func.max(ResponseSave.seq).label("seq"))
              .where(ResponseSave.attempt_id.in_(attempt_ids))
              .group_by(ResponseSave.attempt_id, ResponseSave.item_version_id).subquery())
    rows = session.execute(
        select(ResponseSave.attempt_id, ResponseSave.value)
        .join(newest, and_(ResponseSave.attempt_id == newest.c.attempt_id,
                           ResponseSave.seq == newest.c.seq)))
    out: dict[int, int] = {}
    for attempt_id, value in rows:
        if value not in (None, [], ""):
            out[attempt_id] = out.get(attempt_id, 0) + 1
    return out


def live_sessions(session: Session, viewer: User, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One row per session the viewer may watch, for the console (a fixed number of queries,
    whatever the number of sessions)."""
    now = now or utcnow()
    sessions = _visible_sessions(session, viewer, now)
    if not sessions:
        return []
    ids = [ps.id for ps in sessions]
    attempt_ids = [ps.attempt_id for ps in sessions if ps.attempt_id]
    users = {u.id: u for u in session.scalars(select(User).where(
        User.id.in_({ps.candidate_id for ps in sessions})))}
    exams = {e.id: e for e in session.scalars(select(Exam).where(
        Exam.id.in_({ps.exam_id for ps in sessions})))}
    attempts = {a.id: a for a in session.scalars(select(Attempt).where(Attempt.id.in_(attempt_ids)))} \
        if attempt_ids else {}
    events: dict[int, list[ClockEvent]] = {}
    if attempt_ids:
        for ev in session.scalars(select(ClockEvent).where(ClockEvent.attempt_id.in_(attempt_ids))):
            events.setdefault(ev.attempt_id, []).append(ev)
    answered = _answered(session, attempt_ids)
    flags: dict[int, list[Flag]] = {}
    for f in session.scalars(select(Flag).where(Flag.session_id.in_(ids)).order_by(Flag.id)):
        flags.setdefault(f.session_id, []).append(f)
    last_snap_ids = select(func.max(Snapshot.id)).where(Snapshot.session_id.in_(ids)) \
        .group_by(Snapshot.session_id)
    snaps = {s.session_id: s for s in session.scalars(select(Snapshot).where(
        Snapshot.id.in_(last_snap_ids)))}
    failing = {}
    for c in session.scalars(select(IdentityCheck).where(
            IdentityCheck.session_id.in_(ids), IdentityCheck.outcome.in_(["failed", "error"]),
            IdentityCheck.by_user_id.is_(None)).order_by(IdentityCheck.id)):
        failing[c.session_id] = c
    rows = []
    for ps in sessions:
        cand, exam = users.get(ps.candidate_id), exams.get(ps.exam_id)
        attempt = attempts.get(ps.attempt_id) if ps.attempt_id else None
        row: dict[str, Any] = {
            "id": ps.id,
            "candidate": cand.display_name if cand else f"#{ps.candidate_id}",
            "candidate_email": cand.email if cand else "",
            "exam": exam.code if exam else f"#{ps.exam_id}",
            "state": ps.state,
            "state_label": LABELS[State(ps.state)],
            "identity": _identity_label(ps, failing.get(ps.id)),
            "risk": ps.risk_score,
            "attempt_id": ps.attempt_id,
        }
        if attempt is not None:
            c = clock(attempt, events.get(attempt.id, []), now)
            row.update(answered=answered.get(attempt.id, 0), items=len(attempt.item_order),
                       position=attempt.position + 1, remaining_s=int(c.remaining_seconds),
                       paused=c.paused)
        seen = ps.last_seen_at
        row["last_seen_s"] = int((now - seen).total_seconds()) if seen else None
        row["connection"] = ("not yet" if seen is None else
                             "online" if (now - seen).total_seconds() <= CONNECTION_LOST_AFTER_S
                             else "lost")
        fl = flags.get(ps.id, [])
        levels = [SEVERITY_ORDER.index(f.severity) for f in fl if f.severity in SEVERITY_ORDER]
        row["flags"] = {"count": len(fl), "worst": SEVERITY_ORDER[max(levels)] if levels else None,
                        "latest": fl[-1].message if fl else None,
                        "latest_id": fl[-1].id if fl else None}
        snap = snaps.get(ps.id)
        row["snapshot"] = ({"id": snap.id, "image_id": snap.image_id, "faces": snap.faces,
                            "age_s": int((now - snap.server_at).total_seconds())} if snap else None)
        rows.append(row)
    return rows


def _identity_label(ps: ProctorSession, failing: IdentityCheck | None) -> str:
    state = State(ps.state)
    if state == State.CREATED:
        return "not submitted"
    if state == State.IDENTITY_PENDING:
        return f"to check ({failing.verifier}: {failing.reason})" if failing else "to check"
    if state == State.IDENTITY_REJECTED:
        return "rejected"
    if state == State.TERMINATED and ps.attempt_id is None:
        return "not admitted"
    return "admitted"
