"""An exam's retake rules: ``exam.policy["retake"]``, read and checked in one place.

Example::

    {"max_attempts": 3, "wait_hours": 72}

``max_attempts`` bounds the attempts a candidate may start (absent: no limit). ``wait_hours`` is
how long a candidate waits after an attempt that did not pass (failed, terminated by a proctor,
or invalidated in review) before starting another. The rules are checked when the policy is set
(:class:`assessment.exams.Exam` validates its ``policy``; this module's
:func:`parse_retake_policy` is the ``retake`` section's validator in ``microcred.policy``) and enforced by delivery when an
attempt starts (:mod:`assessment.delivery.eligibility`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from microcred.policy import PolicyError
from microcred.words import moment, plural

#: upper bounds that keep every date computed from the rules representable
MAX_ATTEMPTS_LIMIT = 1000
MAX_WAIT_HOURS = 24 * 366
KEYS = ("max_attempts", "wait_hours")


class RetakePolicyError(PolicyError):
    """The exam's retake rules are malformed; the message names the field."""


@dataclass(frozen=True)
class RetakePolicy:
    #: attempts a candidate may start; None: no limit
    max_attempts: int | None = None
    #: hours to wait after an attempt that did not pass before the next may start
    wait_hours: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"wait_hours": self.wait_hours}
        if self.max_attempts is not None:
            out["max_attempts"] = self.max_attempts
        return out

    def retake_from(self, ended_at: dt.datetime) -> dt.datetime:
        """When a candidate whose attempt did not pass, ended at ``ended_at``, may start again:
        rounded up to the minute, the precision they are told."""
        at = ended_at + dt.timedelta(hours=self.wait_hours)
        floor = at.replace(second=0, microsecond=0)
        return floor if floor == at else floor + dt.timedelta(minutes=1)

    def describe(self) -> list[str]:
        """The rules in the candidate's words, one sentence each (empty: no rules)."""
        said = []
        if self.max_attempts is not None:
            said.append(f"You may take this exam at most {plural(self.max_attempts, 'time')}.")
        if self.wait_hours:
            said.append("After an attempt that does not pass, you wait "
                        f"{duration(self.wait_hours)} before you may retake it.")
        return said


def duration(hours: int) -> str:
    if hours % 24 == 0:
        return plural(hours // 24, "day")
    return plural(hours, "hour")


def _whole(raw: dict[str, Any], name: str, low: int, high: int) -> int:
    value = raw[name]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RetakePolicyError(
            f"retake policy: {name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def parse_retake_policy(raw: Any) -> RetakePolicy:
    """The rules from ``exam.policy["retake"]`` (absent or None: no limits)."""
    if raw is None:
        return RetakePolicy()
    if not isinstance(raw, dict):
        raise RetakePolicyError("retake policy must be an object such as "
                                '{"max_attempts": 3, "wait_hours": 72}')
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise RetakePolicyError(f"retake policy: unknown field {unknown[0]!r}; "
                                f"the fields are {', '.join(KEYS)}")
    max_attempts = (_whole(raw, "max_attempts", 1, MAX_ATTEMPTS_LIMIT)
                    if raw.get("max_attempts") is not None else None)
    wait = _whole(raw, "wait_hours", 0, MAX_WAIT_HOURS) if "wait_hours" in raw else 0
    return RetakePolicy(max_attempts=max_attempts, wait_hours=wait)


def retake_policy_of(exam_policy: dict[str, Any] | None) -> RetakePolicy:
    return parse_retake_policy((exam_policy or {}).get("retake"))


def set_retake_policy(exam: Any, raw: Any) -> RetakePolicy:
    """Check ``raw`` and make it ``exam``'s retake rules (a new policy object, so the change is
    seen and validated by the model and written by the ORM)."""
    rules = parse_retake_policy(raw)
    exam.policy = {**(exam.policy or {}), "retake": rules.as_dict()}
    return rules


def wait_refusal(retake_from: dt.datetime) -> str:
    """What a candidate who must wait is told."""
    return f"You may retake this exam from {moment(retake_from)}."
