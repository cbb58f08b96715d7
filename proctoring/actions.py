"""What a proctor does to a live session: pause, resume, extend time, message, note, terminate.

Actions on the candidate's clock go through an :class:`AttemptControl`, which the wiring layer
(``proctoring.wiring.DeliveryControl``) implements with delivery's own pause/resume/extend/
terminate, so this module needs no import of ``assessment``. Every action is audited; the caller
checks the proctor's assignment first (``proctoring.assignments.require_access``).
"""
from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from microcred.errors import Conflict, Invalid
from proctoring import audit, hook_outbox
from proctoring.models import ProctorMessage, ProctorNote, ProctorSession
from proctoring.sessions import Actor, info, transition
from proctoring.states import ACTIVE, RUNNING, State, can_transition, label

MAX_MESSAGE = 1000
MAX_NOTE = 5000

#: every action a proctor can take on a session
NAMES = ("admit", "reject", "pause", "resume", "extend", "message", "note", "terminate", "review")


def allowed(state: str) -> tuple[str, ...]:
    """The actions a session in ``state`` allows, read from the state machine: the console's
    dialog, the session page's forms and the server's check all ask this one function."""
    s = State(state)
    ok = {
        "admit": can_transition(s, State.ADMITTED),
        "reject": can_transition(s, State.IDENTITY_REJECTED),
        "pause": can_transition(s, State.PAUSED),
        "resume": s in RUNNING and can_transition(s, State.IN_PROGRESS),
        "extend": s in RUNNING,
        "message": s in ACTIVE,
        "note": True,
        "terminate": can_transition(s, State.TERMINATED),
        "review": s == State.IN_REVIEW,
    }
    return tuple(name for name in NAMES if ok[name])


def refusal(action: str, state: str) -> str:
    """Why ``action`` is not possible in ``state``, in the proctor's words."""
    s, said = State(state), label(state)
    already = {("pause", State.PAUSED): "This session is already paused.",
               ("resume", State.IN_PROGRESS): "This session is not paused: the exam is running.",
               ("terminate", State.TERMINATED): "This session is already terminated.",
               ("reject", State.IDENTITY_REJECTED): "This identity is already rejected."}
    if (action, s) in already:
        return already[(action, s)]
    if action == "admit" and s in (State.ADMITTED, *RUNNING):
        return "This candidate is already admitted."
    return {
        "admit": f"There is no identity check to decide: this session is {said}.",
        "reject": f"There is no identity check to decide: this session is {said}.",
        "pause": f"Only a running exam can be paused; this session is {said}.",
        "resume": f"Only a paused exam can be resumed; this session is {said}.",
        "extend": f"Only a running exam can be given more time; this session is {said}.",
        "message": f"The candidate is no longer in the exam: this session is {said}.",
        "terminate": f"This session has ended ({said}); there is nothing to terminate.",
        "review": f"This session is not awaiting review: it is {said}.",
    }.get(action, f"This is not possible now: the session is {said}.")


def check_allowed(action: str, ps: ProctorSession) -> None:
    """Refuse, in words, an action the session's state does not allow."""
    if action not in allowed(ps.state):
        raise Conflict(refusal(action, ps.state), state=ps.state)


class AttemptControl(Protocol):
    """The candidate's clock, as delivery keeps it. ``max_extension_seconds`` is its cap on one
    extension: the clock's owner sets it, the proctor's form only shows it."""

    max_extension_seconds: int

    def pause(self, session: Session, attempt_id: int, *, by_user_id: int, reason: str) -> None: ...
    def resume(self, session: Session, attempt_id: int, *, by_user_id: int, reason: str) -> None: ...
    def extend(self, session: Session, attempt_id: int, *, seconds: int, by_user_id: int,
               reason: str) -> None: ...
    def terminate(self, session: Session, attempt_id: int, *, by_user_id: int, reason: str) -> None: ...


def _text(value: object, name: str, limit: int, *, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text", field=name)
    value = value.strip()
    if required and not value:
        raise Invalid(f"{name} must not be empty", field=name)
    if len(value) > limit:
        raise Invalid(f"{name} is longer than {limit} characters", field=name)
    return value


def pause(session: Session, ps: ProctorSession, control: AttemptControl, *, by: Actor,
          reason: str = "") -> ProctorSession:
    """Stop the candidate's clock; the runner shows its pause screen at the next heartbeat."""
    reason = _text(reason, "reason", MAX_MESSAGE, required=False)
    check_allowed("pause", ps)
    transition(session, ps, State.PAUSED, by=by, reason=reason or "paused by the proctor")
    control.pause(session, ps.attempt_id, by_user_id=by.id, reason=reason)
    hook_outbox.announce(session, "microcred_session_paused", info(ps), by_user_id=by.id,
                         reason=reason)
    return ps


def resume(session: Session, ps: ProctorSession, control: AttemptControl, *, by: Actor,
           reason: str = "") -> ProctorSession:
    reason = _text(reason, "reason", MAX_MESSAGE, required=False)
    check_allowed("resume", ps)
    transition(session, ps, State.IN_PROGRESS, by=by, reason=reason or "resumed by the proctor")
    control.resume(session, ps.attempt_id, by_user_id=by.id, reason=reason)
    hook_outbox.announce(session, "microcred_session_resumed", info(ps), by_user_id=by.id,
                         reason=reason)
    return ps


def extend(session: Session, ps: ProctorSession, control: AttemptControl, *, by: Actor,
           minutes: object, reason: str) -> ProctorSession:
    """Give the candidate more time (whole minutes, with a reason)."""
    most = control.max_extension_seconds // 60
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= most:
        raise Invalid(f"minutes must be a whole number from 1 to {most}", field="minutes")
    reason = _text(reason, "reason", MAX_MESSAGE)
    check_allowed("extend", ps)
    control.extend(session, ps.attempt_id, seconds=minutes * 60, by_user_id=by.id, reason=reason)
    audit.record(session, "session.extended", actor=by, subject_type="proctoring_session",
                 subject_id=ps.id, data={"minutes": minutes, "reason": reason,
                                         "attempt_id": ps.attempt_id})
    return ps


def message(session: Session, ps: ProctorSession, *, by: Actor, text: object) -> ProctorMessage:
    """A message the candidate sees in the runner (announced politely to screen readers)."""
    body = _text(text, "text", MAX_MESSAGE)
    check_allowed("message", ps)
    row = ProctorMessage(session_id=ps.id, author_id=by.id, text=body)
    session.add(row)
    session.flush()
    audit.record(session, "session.message_sent", actor=by, subject_type="proctoring_session",
                 subject_id=ps.id, data={"message_id": row.id, "text": body})
    return row


def note(session: Session, ps: ProctorSession, *, by: Actor, text: object) -> ProctorNote:
    """A note for the record (proctors and reviewers see it; the candidate does not)."""
    body = _text(text, "text", MAX_NOTE)
    row = ProctorNote(session_id=ps.id, author_id=by.id, text=body)
    session.add(row)
    session.flush()
    audit.record(session, "session.note_added", actor=by, subject_type="proctoring_session",
                 subject_id=ps.id, data={"note_id": row.id, "text": body})
    return row


def terminate(session: Session, ps: ProctorSession, control: AttemptControl, *, by: Actor,
              reason: object) -> ProctorSession:
    """End the session for good; a started attempt is finalized and its result invalidated."""
    why = _text(reason, "reason", MAX_MESSAGE)
    check_allowed("terminate", ps)
    had_attempt = ps.attempt_id is not None and State(ps.state) in RUNNING
    transition(session, ps, State.TERMINATED, by=by, reason=why)
    if had_attempt:
        control.terminate(session, ps.attempt_id, by_user_id=by.id, reason=why)
    return ps


def messages(session: Session, ps: ProctorSession, *, limit: int = 20) -> list[ProctorMessage]:
    rows = session.scalars(select(ProctorMessage).where(ProctorMessage.session_id == ps.id)
                           .order_by(ProctorMessage.id.desc()).limit(limit))
    return list(reversed(list(rows)))


def notes(session: Session, ps: ProctorSession) -> list[ProctorNote]:
    return list(session.scalars(select(ProctorNote).where(ProctorNote.session_id == ps.id)
                                .order_by(ProctorNote.id)))
