"""After the exam: hold the result while the session needs review, and the reviewer's verdict.

On finalization (:func:`on_finalized`, called from delivery's ``result_finalized`` signal) the
session becomes ``submitted``; the rules run one last time (an open full-screen exit counts up
to now), and, once no camera frame awaits its face check (``face_checks``: until then the
result is held and the last check decides, :func:`after_face_checks`), the exam's ``review``
policy decides (:func:`conclude`): ``always`` and ``flagged`` with a risk score
at or above ``review_threshold`` send it to ``in_review`` and hold the result; otherwise it is
``cleared``. A reviewer's verdict (:func:`decide`) is a :class:`ReviewDecision` row, a
transition, and the ``review_decided`` signal, by which delivery releases (cleared) or
invalidates the result. An invalidated result never passes.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from microcred import signals
from microcred.db import utcnow
from microcred.errors import Conflict, Invalid
from proctoring import face_checks, hook_outbox
from proctoring.events import due_rules
from proctoring.models import ProctorSession, ReviewDecision
from proctoring.sessions import Actor, info, policy, transition
from proctoring.states import LABELS, RUNNING, State
from proctoring.verifiers import finding, outcome_words

VERDICTS = ("cleared", "invalidated")
MAX_REASON = 2000


def on_finalized(session: Session, ps: ProctorSession, *, reason: str,
                 now: dt.datetime | None = None) -> str | None:
    """Record the end of the attempt; returns the hold reason when the result awaits review, or
    awaits the face checks of camera frames still owed (``face_checks``: the decision is then
    made by the last of them, :func:`after_face_checks`)."""
    now = now or utcnow()
    if ps.state == State.TERMINATED or State(ps.state) not in RUNNING:
        return None  # terminated by the proctor: delivery invalidates the result itself
    if reason == "terminated":
        transition(session, ps, State.TERMINATED, by=None, reason="the attempt was terminated")
        return None
    transition(session, ps, State.SUBMITTED, by=None,
               reason="time ran out" if reason == "time_expired" else "submitted by the candidate")
    hook_outbox.announce(session, "microcred_session_submitted", info(ps), reason=reason)
    due_rules(session, ps, now=now)  # time-dependent rules, to the end of the exam
    if policy(ps).review == "flagged":
        waiting = face_checks.hurry(session, ps.id)
        if waiting:  # a frame not judged yet may still flag the session
            return (f"awaiting the face check of {waiting} camera "
                    f"snapshot{'s' if waiting != 1 else ''}")
    return conclude(session, ps)


def conclude(session: Session, ps: ProctorSession) -> str | None:
    """The end-of-exam decision for a ``submitted`` session, by the exam's ``review`` policy:
    ``always``, and ``flagged`` with a risk score at or above ``review_threshold``, send it to
    ``in_review`` (returns the hold reason); otherwise it is ``cleared`` (None)."""
    pol = policy(ps)
    needs = pol.review == "always" or (pol.review == "flagged" and ps.risk_score >= pol.review_threshold)
    if not needs:
        transition(session, ps, State.CLEARED, by=None,
                   reason=f"no review needed (review policy {pol.review!r}, risk {ps.risk_score})")
        return None
    why = ("the exam's policy reviews every session" if pol.review == "always"
           else f"risk score {ps.risk_score} reached the review threshold {pol.review_threshold}")
    transition(session, ps, State.IN_REVIEW, by=None, reason=why)
    return f"awaiting proctoring review ({why})"


def after_face_checks(session: Session, ps: ProctorSession) -> None:
    """Called under the session's row lock when one of its face checks ended: a session held
    ``submitted`` for its checks (:func:`on_finalized`) is decided once none is owed. Cleared,
    its held result is released (``review_decided``, by no reviewer); sent to review, it stays
    held for the reviewer."""
    if ps.state != State.SUBMITTED or face_checks.owed(session, ps.id):
        return
    if conclude(session, ps) is None:
        signals.review_decided.send(
            "proctoring", session=session, attempt_id=ps.attempt_id, verdict="cleared",
            reason="every camera snapshot checked; no review needed "
                   f"(risk {ps.risk_score})", decided_by_id=None)


def decide(session: Session, ps: ProctorSession, *, verdict: object, reason: object,
           by: Actor) -> ReviewDecision:
    """Clear or invalidate a session in review, with a reason."""
    if verdict not in VERDICTS:
        raise Invalid("verdict must be 'cleared' or 'invalidated'", field="verdict")
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("a review decision needs a reason", field="reason")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise Invalid(f"the reason is longer than {MAX_REASON} characters", field="reason")
    if ps.state != State.IN_REVIEW:
        raise Conflict(f"the session is {ps.state}, not in review", state=ps.state)
    row = ReviewDecision(session_id=ps.id, verdict=str(verdict), reason=reason, reviewer_id=by.id)
    session.add(row)
    session.flush()
    transition(session, ps, State(verdict), by=by, reason=reason,
               data={"review_decision_id": row.id})
    signals.review_decided.send("proctoring", session=session, attempt_id=ps.attempt_id,
                                verdict=verdict, reason=reason, decided_by_id=by.id)
    hook_outbox.announce(session, "microcred_review_decided", info(ps), verdict=str(verdict),
                         reason=reason, reviewer_id=by.id)
    return row


def queue(session: Session, exam_ids: set[int] | None) -> list[ProctorSession]:
    """Sessions awaiting review, riskiest first, then oldest first. ``exam_ids`` None: all."""
    q = select(ProctorSession).where(ProctorSession.state == State.IN_REVIEW.value)
    if exam_ids is not None:
        if not exam_ids:
            return []
        q = q.where(ProctorSession.exam_id.in_(exam_ids))
    return list(session.scalars(q.order_by(ProctorSession.risk_score.desc(),
                                           ProctorSession.state_changed_at, ProctorSession.id)))


def decisions(session: Session, ps: ProctorSession) -> list[ReviewDecision]:
    return list(session.scalars(select(ReviewDecision).where(ReviewDecision.session_id == ps.id)
                                .order_by(ReviewDecision.id)))


def timeline(session: Session, ps: ProctorSession, extra: Iterable[dict] = ()) -> list[dict]:
    """Everything that happened in the session, oldest first, for the reviewer. ``extra``: items
    kept outside proctoring (the wiring passes the attempt's time extensions)."""
    from proctoring.events import events_of, flags_of, snapshots_of
    from proctoring.models import IdentityCheck, ProctorMessage, ProctorNote, Transition

    items: list[dict] = list(extra)

    def add(at: dt.datetime, kind: str, text: str, by: int | None = None, **extra: object) -> None:
        items.append({"at": at, "kind": kind, "text": text, "by": by, **extra})

    for t in session.scalars(select(Transition).where(Transition.session_id == ps.id)):
        add(t.at, "state", f"{_label(t.from_state)} → {_label(t.to_state)}"
            + (f": {t.reason}" if t.reason else ""), t.by_user_id)
    for c in session.scalars(select(IdentityCheck).where(IdentityCheck.session_id == ps.id)):
        add(c.at, "identity", f"{finding(c.verifier, c.reason)} ({outcome_words(c.outcome)})",
            c.by_user_id)
    for e in events_of(session, ps):
        client = f" (page clock {e.client_at.isoformat(timespec='seconds')})" if e.client_at else ""
        add(e.server_at, "event", e.kind.replace("_", " ") + client)
    pending = face_checks.counting(session, ps.id)
    for s in snapshots_of(session, ps):
        add(s.server_at, "snapshot",
            f"snapshot {s.seq}: {face_checks.faces_label(s.faces, s.id in pending)}",
            image_id=s.image_id)
    for f in flags_of(session, ps):
        add(f.at, "flag", f"[{f.severity}] {f.message}" + (f" ({f.source})" if f.source != "microcred" else ""),
            severity=f.severity)
    for n in session.scalars(select(ProctorNote).where(ProctorNote.session_id == ps.id)):
        add(n.at, "note", n.text, n.author_id)
    for m in session.scalars(select(ProctorMessage).where(ProctorMessage.session_id == ps.id)):
        add(m.at, "message", m.text, m.author_id)
    for d in decisions(session, ps):
        add(d.at, "review", f"{d.verdict}: {d.reason}", d.reviewer_id)
    order = {"state": 0, "identity": 1, "time": 2, "event": 3, "snapshot": 4, "flag": 5}
    return sorted(items, key=lambda i: (i["at"], order.get(i["kind"], 6)))


def _label(state: str) -> str:
    try:
        return LABELS[State(state)]
    except ValueError:
        return state
