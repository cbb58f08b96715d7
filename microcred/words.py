"""Words for people: counts with their nouns in the right number, shared by Python and Jinja
(registered as the ``plural`` filter), so no page says "1 sessions"."""
from __future__ import annotations

import datetime as dt


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 session``, ``2 sessions``, ``0 sessions``; ``many`` for irregular nouns."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def moment(at: dt.datetime) -> str:
    """A moment as people read it: ``3 December 2026 14:00 UTC`` (``at`` is naive UTC or aware)."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC)
    return f"{at.day} {at:%B %Y %H:%M} UTC"
