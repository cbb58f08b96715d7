"""A stand-in for an outside proctoring service: a plugin of ``microcred.proctoring`` that is
found only through its entry point. It records every call and raises a flag of its own."""
from __future__ import annotations

from proctoring.hooks import FlagSpec, IdentityOutcome, hookimpl

CALLS: list[tuple[str, dict]] = []


@hookimpl
def microcred_verify_identity(request):
    CALLS.append(("verify_identity", {"session_id": request.session.session_id,
                                      "required": request.required}))
    return IdentityOutcome("acme_live", "passed", "the live agent recognised the candidate")


@hookimpl
def microcred_session_started(session):
    CALLS.append(("session_started", {"session_id": session.session_id,
                                      "attempt_id": session.attempt_id}))


@hookimpl
def microcred_integrity_event(session, event):
    CALLS.append(("integrity_event", {"kind": event.kind, "seq": event.seq}))
    if event.kind == "right_click":
        return [FlagSpec("acme_context_menu", f"e{event.seq}", "low", "context menu (acme)")]
    return None


@hookimpl
def microcred_session_paused(session, by_user_id, reason):
    CALLS.append(("paused", {"by": by_user_id, "reason": reason}))


@hookimpl
def microcred_session_resumed(session, by_user_id):
    CALLS.append(("resumed", {"by": by_user_id}))


@hookimpl
def microcred_session_submitted(session, reason):
    CALLS.append(("submitted", {"reason": reason}))


@hookimpl
def microcred_review_decided(session, verdict, reason, reviewer_id):
    CALLS.append(("review_decided", {"verdict": verdict}))


@hookimpl
def microcred_state_changed(session, from_state, to_state):
    CALLS.append(("state_changed", {"from": from_state, "to": to_state}))
