"""The one clock of Microcred.

Every "now" in the code (deadlines, timestamps, column defaults, the sign-in throttle's windows)
is read through :func:`now`, so a test sets or advances time in one place and no call site can
read the real clock behind its back. :func:`set_source` swaps where the time comes from; the
tests' ``clock`` fixture uses it (see ``tests/conftest.py``).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable


def _system() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_source: Callable[[], dt.datetime] = _system


def now() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return _source()


def timestamp() -> float:
    """The current time in seconds since the epoch (for counters that keep plain numbers)."""
    return now().timestamp()


def set_source(source: Callable[[], dt.datetime] | None) -> None:
    """Read the time from ``source`` from now on; ``None`` goes back to the system clock."""
    global _source
    _source = source or _system


class ManualClock:
    """A clock that stands still until moved: ``set(when)`` or ``advance(seconds)``."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or _system()

    def __call__(self) -> dt.datetime:
        return self._now

    def set(self, when: dt.datetime) -> dt.datetime:
        if when.tzinfo is None:
            raise ValueError("a naive datetime given to the clock; give it a UTC time")
        self._now = when.astimezone(dt.UTC)
        return self._now

    def advance(self, seconds: float) -> dt.datetime:
        self._now += dt.timedelta(seconds=seconds)
        return self._now

    def now(self) -> dt.datetime:
        return self._now
