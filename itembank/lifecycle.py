"""An item version's life: the one place that says which moves of ``ItemVersion.status`` exist.

::

    draft ──submit──▶ in_review ──approve──▶ approved ──retire──▶ retired
      ▲                 │   │                   ▲
      └─changes asked───┘   └──pretest──▶ pretest ──retire──▶ retired
                                           │
                                           └──approve (after calibration)──▶ approved

A version arriving already reviewed elsewhere (the demo's content, an import, a fixture) may go
from ``draft`` straight to ``approved`` or ``pretest`` (``without_review``; the history says
so). ``retired`` is final. Approving or pretesting from ``in_review`` also needs every active
review stage signed off (``itembank.workflow``); that needs the database, this table does not.
"""
from __future__ import annotations

from itembank.models import APPROVED, DELIVERABLE, DRAFT, IN_REVIEW, PRETEST, RETIRED, STATUSES
from microcred.errors import DomainError

#: from-status -> the statuses a person may move it to. Anything not listed is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({IN_REVIEW}),
    IN_REVIEW: frozenset({DRAFT, APPROVED, PRETEST}),
    PRETEST: frozenset({APPROVED, RETIRED}),
    APPROVED: frozenset({RETIRED}),
    RETIRED: frozenset(),
}
#: Moves a program may make without review: content reviewed before it reached the bank.
WITHOUT_REVIEW: dict[str, frozenset[str]] = {DRAFT: frozenset({APPROVED, PRETEST})}

LABELS = {
    DRAFT: "Draft",
    IN_REVIEW: "In review",
    APPROVED: "Approved",
    PRETEST: "Pretest",
    RETIRED: "Retired",
}

#: What each move is called in the history and on the buttons.
ACTIONS = {
    (DRAFT, IN_REVIEW): "submitted",
    (IN_REVIEW, DRAFT): "changes_requested",
    (IN_REVIEW, APPROVED): "approved",
    (IN_REVIEW, PRETEST): "pretest",
    (PRETEST, APPROVED): "approved",
    (PRETEST, RETIRED): "retired",
    (APPROVED, RETIRED): "retired",
    (DRAFT, APPROVED): "published",
    (DRAFT, PRETEST): "published_pretest",
}

assert set(TRANSITIONS) == set(STATUSES) == set(LABELS)
assert DELIVERABLE <= set(STATUSES)


class TransitionRefused(DomainError):
    """A move of an item version's status that the lifecycle does not allow."""

    status, code = 409, "item_transition_refused"

    def __init__(self, from_status: str, to_status: str) -> None:
        self.from_status, self.to_status = from_status, to_status
        super().__init__(refusal(from_status, to_status), from_status=from_status,
                         to_status=to_status)


def label(status: str) -> str:
    return LABELS.get(status, status)


def refusal(from_status: str, to_status: str) -> str:
    """Why a version in ``from_status`` cannot become ``to_status``, for people."""
    if to_status not in STATUSES:
        return f"{to_status!r} is not an item status; the statuses are {', '.join(STATUSES)}"
    if from_status == to_status:
        return f"This version is already {label(to_status).lower()}."
    if from_status == RETIRED:
        return "This version is retired: it cannot change any more."
    allowed = sorted(TRANSITIONS.get(from_status, ()))
    then = ", ".join(label(s).lower() for s in allowed) or "nothing"
    return (f"This version is {label(from_status).lower()}, so it cannot become "
            f"{label(to_status).lower()} (it can become: {then}).")


def can_transition(from_status: str, to_status: str, *, without_review: bool = False) -> bool:
    if to_status in TRANSITIONS.get(from_status, ()):
        return True
    return without_review and to_status in WITHOUT_REVIEW.get(from_status, ())


def check_transition(from_status: str, to_status: str, *, without_review: bool = False) -> None:
    """Raise :class:`TransitionRefused` unless ``from_status -> to_status`` is allowed."""
    if not can_transition(from_status, to_status, without_review=without_review):
        raise TransitionRefused(from_status, to_status)


def next_statuses(from_status: str) -> list[str]:
    """The statuses a person may move a version in ``from_status`` to, in lifecycle order."""
    return [s for s in STATUSES if s in TRANSITIONS.get(from_status, ())]
