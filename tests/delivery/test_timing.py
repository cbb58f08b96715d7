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


def test_the_stored_clock_gives_what_the_events_give():
    """The attempt row's stored clock (written with every clock event) read back with
    ``clock_from_row`` equals the formula over the events, at any moment: random sequences of
    pauses, resumes and extensions, an open pause or not, finalized or not."""
    import random

    from assessment.delivery.timing import clock_from_row, stored_clock

    rng = random.Random(15)
    for case in range(300):
        events, minute = [], 0.0
        for i in range(rng.randint(0, 8)):
            minute += rng.uniform(0, 20)
            kind = rng.choice(["pause", "resume", "extend"])
            events.append(_ev(kind, minute, rng.randint(1, 900) if kind == "extend" else 0, i + 1))
        finalized = T0 + dt.timedelta(minutes=minute + rng.uniform(0, 30)) if case % 3 == 0 else None
        attempt = _attempt(limit=rng.choice([600, 1800, 3600]), mult=rng.choice([1.0, 1.25, 1.5]),
                           finalized_at=finalized)
        stored = stored_clock(attempt, events)
        attempt.deadline_at, attempt.paused_since = stored.deadline_at, stored.paused_since
        attempt.extension_seconds = stored.extension_seconds
        for later in (0, 1, 45, 200):
            now = T0 + dt.timedelta(minutes=minute + later)
            want, got = clock(attempt, events, now), clock_from_row(attempt, now)
            assert got.deadline == want.deadline and got.paused == want.paused, (case, events)
            assert abs(got.remaining_seconds - want.remaining_seconds) < 1e-6
            assert abs(got.late_seconds - want.late_seconds) < 1e-6
            assert abs(got.paused_seconds - want.paused_seconds) < 1e-6
            assert got.extension_seconds == want.extension_seconds
