"""The deadline arithmetic: limit x multiplier + extensions + paused time."""
import datetime as dt

from assessment.delivery.models import Attempt, ClockEvent
from assessment.delivery.timing import clock

T0 = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)


def _attempt(limit=1800, mult=1.0, finalized_at=None):
    return Attempt(started_at=T0, time_limit_seconds=limit, time_multiplier=mult, finalized_at=finalized_at)


def _ev(kind, minutes, seconds=0, i=0):
    return ClockEvent(id=i, kind=kind, seconds=seconds, at=T0 + dt.timedelta(minutes=minutes))


def test_plain_limit():
    c = clock(_attempt(), [], T0 + dt.timedelta(minutes=10))
    assert c.deadline == T0 + dt.timedelta(minutes=30)
    assert c.remaining_seconds == 20 * 60
    assert not c.paused and not c.time_up(0)


def test_accommodation_multiplier():
    c = clock(_attempt(mult=1.5), [], T0)
    assert c.deadline == T0 + dt.timedelta(minutes=45)


def test_extension_and_closed_pause_move_the_deadline():
    events = [_ev("extend", 5, seconds=300, i=1), _ev("pause", 10, i=2), _ev("resume", 14, i=3)]
    c = clock(_attempt(), events, T0 + dt.timedelta(minutes=20))
    assert c.deadline == T0 + dt.timedelta(minutes=30 + 5 + 4)
    assert c.extension_seconds == 300 and c.paused_seconds == 240


def test_open_pause_freezes_remaining_time():
    events = [_ev("pause", 10, i=1)]
    at_12 = clock(_attempt(), events, T0 + dt.timedelta(minutes=12))
    at_50 = clock(_attempt(), events, T0 + dt.timedelta(minutes=50))
    assert at_12.paused and at_50.paused
    assert at_12.remaining_seconds == at_50.remaining_seconds == 20 * 60
    assert not at_50.time_up(0)  # a paused attempt never runs out


def test_expired_after_deadline():
    c = clock(_attempt(limit=60), [], T0 + dt.timedelta(minutes=2))
    assert c.remaining_seconds == 0 and c.time_up(0)


def test_time_is_up_only_once_the_grace_has_passed():
    """The one rule: past the deadline by more than the grace, and not paused."""
    c = clock(_attempt(limit=60), [], T0 + dt.timedelta(seconds=63))
    assert c.remaining_seconds == 0 and c.late_seconds == 3
    assert not c.time_up(5) and c.time_up(2)


def test_finalized_attempt_clock_stops_at_finalization():
    fin = T0 + dt.timedelta(minutes=10)
    c = clock(_attempt(finalized_at=fin), [], T0 + dt.timedelta(hours=5))
    assert c.remaining_seconds == 20 * 60
