"""The one place that computes an attempt's deadline.

    deadline = started_at + time_limit x accommodation multiplier + extensions + time paused

and the one rule for "time ran out": :meth:`Clock.time_up`, the deadline plus the save grace
(``MICROCRED_SAVE_GRACE_SECONDS``, which every caller passes from the settings) has passed and
the clock is not paused. Saves, submits, the sweeper and the runner's GETs all ask it.

A pause still open counts up to ``now``, so while an attempt is paused its remaining time stands
still. The server's clock is the only clock; the browser is told ``server_now`` so it can
correct for its own offset.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

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


def clock(attempt: Attempt, events: Iterable[ClockEvent], now: dt.datetime) -> Clock:
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
    end = attempt.finalized_at if attempt.finalized_at is not None else now
    if pause_started is not None:
        paused_total += max(0.0, (end - pause_started).total_seconds())
    allowed = attempt.time_limit_seconds * attempt.time_multiplier + extension + paused_total
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
