"""The one place that computes an attempt's deadline.

    deadline = started_at + time_limit x accommodation multiplier + extensions + time paused

and the one rule for "time ran out": :meth:`Clock.time_up`, the deadline plus the save grace
(``MICROCRED_SAVE_GRACE_SECONDS``, which every caller passes from the settings) has passed and
the clock is not paused. Saves, submits, the sweeper and the runner's GETs all ask it.

A pause still open counts up to ``now``, so while an attempt is paused its remaining time stands
still. The server's clock is the only clock; the browser is told ``server_now`` so it can
correct for its own offset.

The attempt row keeps the result of the formula (:class:`StoredClock`), written whenever a
clock event is: the hot path (heartbeat, save) computes the clock from the row alone with
:func:`clock_from_row`, which gives what :func:`clock` gives over the events.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from assessment.delivery.models import Attempt, ClockEvent


@dataclass(frozen=True)
class Clock:
    deadline: dt.datetime
    remaining_seconds: float
    paused: bool
    extension_seconds: int
    paused_seconds: float
    #: seconds past the deadline (negative while time remains)
    late_seconds: float

    def time_up(self, grace_seconds: float) -> bool:
        """Time ran out: more than ``grace_seconds`` past the deadline, and not paused (a paused
        attempt never runs out). The grace lets a save sent just before the deadline land."""
        return not self.paused and self.late_seconds > grace_seconds


def _fold(events: Iterable[ClockEvent]) -> tuple[int, float, dt.datetime | None]:
    """(extension seconds, seconds of the pauses that ended, start of the pause still open)."""
    extension = 0
    paused_total = 0.0
    pause_started: dt.datetime | None = None
    for ev in sorted(events, key=lambda e: (e.at, e.id or 0)):
        if ev.kind == "extend":
            extension += ev.seconds
        elif ev.kind == "pause" and pause_started is None:
            pause_started = ev.at
        elif ev.kind == "resume" and pause_started is not None:
            paused_total += (ev.at - pause_started).total_seconds()
            pause_started = None
    return extension, paused_total, pause_started


def _allowed(attempt: Any) -> float:
    return attempt.time_limit_seconds * attempt.time_multiplier


def clock(attempt: Attempt, events: Iterable[ClockEvent], now: dt.datetime) -> Clock:
    extension, paused_total, pause_started = _fold(events)
    end = attempt.finalized_at if attempt.finalized_at is not None else now
    if pause_started is not None:
        paused_total += max(0.0, (end - pause_started).total_seconds())
    allowed = _allowed(attempt) + extension + paused_total
    deadline = attempt.started_at + dt.timedelta(seconds=allowed)
    remaining = (deadline - end).total_seconds()
    return Clock(
        deadline=deadline,
        remaining_seconds=max(0.0, remaining),
        paused=pause_started is not None,
        extension_seconds=extension,
        paused_seconds=paused_total,
        late_seconds=-remaining,
    )


@dataclass(frozen=True)
class StoredClock:
    """What the attempt row keeps of its clock events, written with every clock event (and at
    the start), so a heartbeat or a save reads the clock from the row alone:

    - ``deadline_at``: the deadline above, counting the pauses that ended but not one still
      open (an open pause moves the deadline on as long as it lasts);
    - ``paused_since``: when the open pause began, or None;
    - ``extension_seconds``: the extensions, added up.
    """

    deadline_at: dt.datetime
    paused_since: dt.datetime | None
    extension_seconds: int


def stored_clock(attempt: Attempt, events: Iterable[ClockEvent]) -> StoredClock:
    """The attempt row's clock columns for these clock events (the same formula)."""
    extension, paused_total, pause_started = _fold(events)
    deadline = attempt.started_at + dt.timedelta(
        seconds=_allowed(attempt) + extension + paused_total)
    return StoredClock(deadline, pause_started, extension)


def clock_from_row(attempt: Any, now: dt.datetime) -> Clock:
    """:func:`clock` from the attempt row's stored columns (``deadline_at``, ``paused_since``,
    ``extension_seconds``, with ``started_at``, ``time_limit_seconds``, ``time_multiplier``
    and ``finalized_at``), no clock event read: equal to :func:`clock` over the events the
    columns were written from."""
    end = attempt.finalized_at if attempt.finalized_at is not None else now
    open_pause = 0.0
    if attempt.paused_since is not None:
        open_pause = max(0.0, (end - attempt.paused_since).total_seconds())
    deadline = attempt.deadline_at + dt.timedelta(seconds=open_pause)
    remaining = (deadline - end).total_seconds()
    allowed = _allowed(attempt) + attempt.extension_seconds
    return Clock(
        deadline=deadline,
        remaining_seconds=max(0.0, remaining),
        paused=attempt.paused_since is not None,
        extension_seconds=attempt.extension_seconds,
        paused_seconds=(deadline - attempt.started_at).total_seconds() - allowed,
        late_seconds=-remaining,
    )
