"""An exam's proctoring policy: ``exam.policy["proctoring"]``, read and checked in one place.

Example::

    {"identity": "automated+proctor", "review": "flagged", "fullscreen": true,
     "snapshot_interval_s": 60, "max_focus_losses": 3, "fullscreen_grace_s": 10}

``identity`` names the verifiers that must pass: ``"none"``, ``"proctor"``, ``"automated"``
(the face-count verifier alone), ``"automated+proctor"`` (both), or a list of verifier plugin
names (e.g. ``["face_count", "acme_live"]``). An exam without the key is not proctored.
:func:`parse_policy` is the ``proctoring`` section's validator (``microcred.policy``): a malformed
policy is refused when the exam's policy is written.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from microcred.policy import PolicyError as ExamPolicyError

IDENTITY_ALIASES: dict[str, tuple[str, ...]] = {
    "none": (),
    "proctor": ("proctor",),
    "automated": ("face_count",),
    "automated+proctor": ("face_count", "proctor"),
}
REVIEW_MODES = ("always", "flagged", "never")
#: every field a proctoring policy may hold: a misspelt one would silently take its default
FIELDS = ("enabled", "identity", "review", "fullscreen", "snapshot_interval_s", "max_focus_losses",
          "fullscreen_grace_s", "offline_grace_s", "review_threshold",
          "missing_snapshot_intervals")


class PolicyError(ExamPolicyError):
    """The exam's proctoring policy is malformed; the message names the field."""


@dataclass(frozen=True)
class ProctoringPolicy:
    identity: tuple[str, ...] = ("proctor",)
    review: str = "flagged"
    fullscreen: bool = False
    snapshot_interval_s: int = 60
    max_focus_losses: int = 3
    fullscreen_grace_s: int = 10
    offline_grace_s: int = 30
    #: risk score at or above which ``review: flagged`` sends a session to review
    review_threshold: int = 1
    #: snapshot intervals of exam time without a snapshot after which the session is flagged
    missing_snapshot_intervals: int = 3

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["identity"] = list(self.identity)
        return d


def _int(raw: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = raw.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise PolicyError(f"proctoring policy: {name} must be an integer from {low} to {high}")
    return value


def parse_policy(raw: Any) -> ProctoringPolicy | None:
    """The policy from ``exam.policy["proctoring"]`` (or a stored dict); None: not proctored."""
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError("proctoring policy must be an object")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise PolicyError(f"proctoring policy: unknown field {unknown[0]!r}; "
                          f"the fields are {', '.join(FIELDS)}", field=unknown[0])
    if raw.get("enabled", True) is False:
        return None
    ident = raw.get("identity", "proctor")
    if isinstance(ident, str):
        if ident not in IDENTITY_ALIASES:
            raise PolicyError(
                f"proctoring policy: identity must be one of {', '.join(IDENTITY_ALIASES)} "
                f"or a list of verifier names, got {ident!r}"
            )
        identity = IDENTITY_ALIASES[ident]
    elif isinstance(ident, list) and all(isinstance(x, str) and x for x in ident):
        identity = tuple(dict.fromkeys(ident))
    else:
        raise PolicyError("proctoring policy: identity must be a string or a list of names")
    review = raw.get("review", "flagged")
    if review not in REVIEW_MODES:
        raise PolicyError(f"proctoring policy: review must be one of {', '.join(REVIEW_MODES)}")
    fullscreen = raw.get("fullscreen", False)
    if not isinstance(fullscreen, bool):
        raise PolicyError("proctoring policy: fullscreen must be true or false")
    interval = _int(raw, "snapshot_interval_s", 60, 0, 3600)
    if 0 < interval < 5:
        raise PolicyError("proctoring policy: snapshot_interval_s must be 0 (off) or at least 5")
    return ProctoringPolicy(
        identity=identity,
        review=review,
        fullscreen=fullscreen,
        snapshot_interval_s=interval,
        max_focus_losses=_int(raw, "max_focus_losses", 3, 0, 1000),
        fullscreen_grace_s=_int(raw, "fullscreen_grace_s", 10, 0, 3600),
        offline_grace_s=_int(raw, "offline_grace_s", 30, 0, 3600),
        review_threshold=_int(raw, "review_threshold", 1, 1, 10_000),
        missing_snapshot_intervals=_int(raw, "missing_snapshot_intervals", 3, 1, 100),
    )


def policy_of_exam(exam_policy: dict[str, Any] | None) -> ProctoringPolicy | None:
    return parse_policy((exam_policy or {}).get("proctoring"))
