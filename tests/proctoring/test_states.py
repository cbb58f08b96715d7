"""The state machine: every allowed transition is allowed, every other one refused, in the pure
table and through the database's compare-and-set."""
from __future__ import annotations

import itertools

import pytest

from proctoring.states import (
    FINAL,
    TRANSITIONS,
    State,
    TransitionRefused,
    can_transition,
    check_transition,
    label,
)

ALLOWED = {
    ("created", "identity_pending"), ("created", "admitted"), ("created", "terminated"),
    ("identity_pending", "admitted"), ("identity_pending", "identity_rejected"),
    ("identity_pending", "terminated"),
    ("identity_rejected", "identity_pending"), ("identity_rejected", "terminated"),
    ("admitted", "in_progress"), ("admitted", "terminated"),
    ("in_progress", "paused"), ("in_progress", "submitted"), ("in_progress", "terminated"),
    ("paused", "in_progress"), ("paused", "submitted"), ("paused", "terminated"),
    ("submitted", "in_review"), ("submitted", "cleared"),
    ("in_review", "cleared"), ("in_review", "invalidated"),
}
PAIRS = list(itertools.product([s.value for s in State], repeat=2))


def test_the_table_is_exactly_the_documented_machine():
    table = {(a.value, b.value) for a, nxt in TRANSITIONS.items() for b in nxt}
    assert table == ALLOWED
    assert FINAL == {State.CLEARED, State.INVALIDATED, State.TERMINATED}


@pytest.mark.parametrize("pair", sorted(ALLOWED), ids="->".join)
def test_allowed(pair):
    assert can_transition(*pair)
    check_transition(*pair)


@pytest.mark.parametrize("pair", sorted(set(PAIRS) - ALLOWED), ids="->".join)
def test_refused(pair):
    assert not can_transition(*pair)
    with pytest.raises(TransitionRefused) as err:
        check_transition(*pair)
    said = str(err.value)  # in words (issue 9, 27): no enum reprs, no quoted identifiers
    assert "State." not in said and "'" not in said and "_" not in said
    assert label(pair[0]) in said
    if State(pair[0]) not in FINAL:
        assert label(pair[1]) in said


def test_unknown_states_are_refused():
    assert not can_transition("created", "teleported")
    assert not can_transition("limbo", "created")
