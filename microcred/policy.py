"""An exam's policy: one object whose sections belong to the packages that read them.

``Exam.policy`` is a JSON object such as ``{"retake": {...}, "proctoring": {...}}``. Each
section is owned by one package, which registers a validator for it: the package's
:class:`microcred.packages.Package` names it (``policy={"proctoring": "proctoring.policy:
parse_policy"}``), or code calls :func:`register_policy_section` directly. The validator takes the
section's raw value and returns its typed reading or raises :class:`PolicyError` naming the field.

:func:`check_policy` runs every section's validator and refuses a section nobody owns, so a
malformed or misspelt section is refused when the policy is written (``Exam`` validates every
assignment, on create and update), not when a candidate presses Start.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from microcred.errors import DomainError

Validator = Callable[[Any], Any]


class PolicyError(DomainError, ValueError):
    """An exam's policy is malformed; the message names the section and field."""

    status = 400
    code = "bad_policy"


_sections: dict[str, Validator] = {}
_loaded = False
_loading = threading.RLock()


def register_policy_section(name: str, validator: Validator) -> None:
    """Make ``validator`` the check of ``policy[name]``. A section has one owner: registering a
    different validator under a taken name is a programming error."""
    with _loading:
        owner = _sections.get(name)
        if owner is not None and owner is not validator:
            raise RuntimeError(f"policy section {name!r} is already registered to {owner!r}")
        _sections[name] = validator


def sections() -> dict[str, Validator]:
    """Every registered section's validator, the packages' own loaded once per process."""
    global _loaded
    with _loading:
        if not _loaded:
            from microcred.packages import hook, packages

            for package in packages():
                for name, spec in package.policy.items():
                    register_policy_section(name, hook(spec))
            _loaded = True
        return dict(_sections)


def check_policy(policy: Any) -> None:
    """Refuse ``policy`` unless it is an object whose every section is registered and valid."""
    if policy is None:
        return
    if not isinstance(policy, dict):
        raise PolicyError("an exam's policy must be an object such as "
                          '{"proctoring": {...}, "retake": {...}}')
    known = sections()
    for name, value in policy.items():
        validator = known.get(name)
        if validator is None:
            raise PolicyError(f"exam policy: unknown section {name!r}; the sections are "
                              f"{', '.join(sorted(known))}", field=name)
        try:
            validator(value)
        except PolicyError:
            raise
        except (ValueError, TypeError) as exc:
            # a validator that raised its own error still names the section it came from
            raise PolicyError(f"exam policy: {name}: {exc}", field=name) from exc
