"""The proctored session's state machine: the one place that says which transitions exist.

::

    created ──submit identity──▶ identity_pending ──admit──▶ admitted ──attempt starts──▶ in_progress
       │                           │        ▲                                               │  ▲
       │ (policy: no identity)     │ reject │ resubmit                               pause  │  │ resume
       └────────────▶ admitted     ▼        │                                               ▼  │
                              identity_rejected                                          paused
                                                                                              │
    in_progress | paused ──finalized (submit or time)──▶ submitted ──needs review──▶ in_review
                                                            │                           │
                                                            └──no review──▶ cleared ◀───┤
                                                                                        └──▶ invalidated

    terminated: from created, identity_pending, identity_rejected, admitted, in_progress, paused.

``cleared``, ``invalidated`` and ``terminated`` are final. Every change is a compare-and-set on
the session row (``UPDATE ... WHERE state = <from>``, see :func:`proctoring.sessions.transition`),
so two proctors acting at once change a state once; the loser gets a conflict.
"""
from __future__ import annotations

from enum import StrEnum

from microcred.errors import DomainError


class State(StrEnum):
    CREATED = "created"
    IDENTITY_PENDING = "identity_pending"
    IDENTITY_REJECTED = "identity_rejected"
    ADMITTED = "admitted"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    CLEARED = "cleared"
    INVALIDATED = "invalidated"
    TERMINATED = "terminated"


S = State

#: from-state -> the states it may move to. Anything not listed is refused.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.CREATED: frozenset({S.IDENTITY_PENDING, S.ADMITTED, S.TERMINATED}),
    S.IDENTITY_PENDING: frozenset({S.ADMITTED, S.IDENTITY_REJECTED, S.TERMINATED}),
    S.IDENTITY_REJECTED: frozenset({S.IDENTITY_PENDING, S.TERMINATED}),
    S.ADMITTED: frozenset({S.IN_PROGRESS, S.TERMINATED}),
    S.IN_PROGRESS: frozenset({S.PAUSED, S.SUBMITTED, S.TERMINATED}),
    S.PAUSED: frozenset({S.IN_PROGRESS, S.SUBMITTED, S.TERMINATED}),
    S.SUBMITTED: frozenset({S.IN_REVIEW, S.CLEARED}),
    S.IN_REVIEW: frozenset({S.CLEARED, S.INVALIDATED}),
    S.CLEARED: frozenset(),
    S.INVALIDATED: frozenset(),
    S.TERMINATED: frozenset(),
}

FINAL: frozenset[State] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
#: Sessions a proctor watches live on the console.
ACTIVE: frozenset[State] = frozenset(
    {S.CREATED, S.IDENTITY_PENDING, S.IDENTITY_REJECTED, S.ADMITTED, S.IN_PROGRESS, S.PAUSED}
)
#: Sessions whose candidate is (or may be) working in the exam runner.
RUNNING: frozenset[State] = frozenset({S.IN_PROGRESS, S.PAUSED})
#: Sessions not yet tied to an attempt: the identity gate is still open.
BEFORE_EXAM: frozenset[State] = frozenset(
    {S.CREATED, S.IDENTITY_PENDING, S.IDENTITY_REJECTED, S.ADMITTED}
)

LABELS: dict[State, str] = {
    S.CREATED: "Created",
    S.IDENTITY_PENDING: "Identity pending",
    S.IDENTITY_REJECTED: "Identity rejected",
    S.ADMITTED: "Admitted",
    S.IN_PROGRESS: "In progress",
    S.PAUSED: "Paused",
    S.SUBMITTED: "Submitted",
    S.IN_REVIEW: "In review",
    S.CLEARED: "Cleared",
    S.INVALIDATED: "Invalidated",
    S.TERMINATED: "Terminated",
}


class TransitionRefused(DomainError):
    """A transition the state machine does not allow; the message says so in words."""

    status, code = 409, "conflict"

    def __init__(self, from_state: str, to_state: str) -> None:
        self.from_state, self.to_state = str(from_state), str(to_state)
        super().__init__(refusal(self.from_state, self.to_state))


def label(state: str) -> str:
    """A state in words (``in progress``), for sentences."""
    try:
        return LABELS[State(state)].lower()
    except ValueError:
        return str(state)


def refusal(from_state: str, to_state: str) -> str:
    """Why a session in ``from_state`` cannot move to ``to_state``, for people."""
    if from_state == to_state:
        return f"This session is already {label(to_state)}."
    if from_state in State._value2member_map_ and State(from_state) in FINAL:
        return f"This session is {label(from_state)}: it has ended and cannot change any more."
    return f"This session is {label(from_state)}, so it cannot become {label(to_state)}."


def can_transition(from_state: str, to_state: str) -> bool:
    try:
        return State(to_state) in TRANSITIONS[State(from_state)]
    except ValueError:
        return False


def check_transition(from_state: str, to_state: str) -> None:
    """Raise :class:`TransitionRefused` unless ``from_state -> to_state`` is allowed."""
    if not can_transition(from_state, to_state):
        raise TransitionRefused(from_state, to_state)
