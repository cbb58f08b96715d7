"""The hook specification outside proctoring services implement (pluggy, like pytest plugins).

A provider is a Python package that declares an entry point in the group
``microcred.proctoring``::

    [project.entry-points."microcred.proctoring"]
    acme = "acme_proctoring.plugin"      # a module or an object with @hookimpl functions

Microcred's own two identity verifiers are plugins of this same specification (see
``proctoring.verifiers``), registered through the same entry points.

Hooks receive plain frozen dataclasses (:class:`SessionInfo`, :class:`IdentityRequest`,
:class:`EventInfo`), never database rows, so a provider depends on this module only. Hook calls
happen inside the request's transaction; a provider that raises is logged and skipped, and the
others still run: an outside service must never break a candidate's exam.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import pluggy

PROJECT = "microcred.proctoring"
ENTRY_POINT_GROUP = "microcred.proctoring"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionInfo:
    session_id: int
    candidate_id: int
    exam_id: int
    attempt_id: int | None
    state: str
    policy: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IdentityRequest:
    """A candidate's submitted identity images (decrypted bytes, JPEG)."""

    session: SessionInfo
    submission: int
    selfie: bytes
    id_document: bytes
    required: tuple[str, ...]


@dataclass(frozen=True)
class IdentityOutcome:
    """A verifier's finding: ``outcome`` passed | failed | pending (a human decides)."""

    verifier: str
    outcome: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventInfo:
    kind: str
    seq: int
    server_at: dt.datetime
    client_at: dt.datetime | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlagSpec:
    """A flag a rule (or a provider) raises: once per ``(rule, key)`` in a session."""

    rule: str
    key: str
    severity: str  # info | low | medium | high
    message: str
    source: str = "microcred"


class ProctoringSpec:
    """The hooks. Every argument is keyword-only in pluggy's sense: implement any subset."""

    @hookspec
    def microcred_verify_identity(self, request: IdentityRequest) -> IdentityOutcome | None:
        """Check a candidate's selfie and photo ID. Return None when this verifier does not
        apply. Outcomes are recorded; the exam policy's ``identity`` names the verifiers whose
        ``passed`` is required for admission."""

    @hookspec
    def microcred_session_started(self, session: SessionInfo) -> None:
        """The candidate's attempt started (the session is now ``in_progress``)."""

    @hookspec
    def microcred_integrity_event(self, session: SessionInfo, event: EventInfo) -> list[FlagSpec] | None:
        """An integrity event arrived (snapshots arrive as kind ``snapshot`` with ``faces`` in
        the detail). Return flags to raise, or None."""

    @hookspec
    def microcred_session_paused(self, session: SessionInfo, by_user_id: int | None, reason: str) -> None:
        """A proctor paused the candidate's clock."""

    @hookspec
    def microcred_session_resumed(self, session: SessionInfo, by_user_id: int | None, reason: str) -> None:
        """A proctor resumed the candidate's clock."""

    @hookspec
    def microcred_session_submitted(self, session: SessionInfo, reason: str) -> None:
        """The attempt was finalized (``reason``: submitted | time_expired)."""

    @hookspec
    def microcred_review_decided(self, session: SessionInfo, verdict: str, reason: str,
                                 reviewer_id: int) -> None:
        """A reviewer cleared or invalidated the session's result."""

    @hookspec
    def microcred_state_changed(self, session: SessionInfo, from_state: str, to_state: str,
                                reason: str) -> None:
        """Any state change (see proctoring.states), after the specific hook if there is one."""


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the specification and every installed plugin."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ProctoringSpec)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    if pm.get_plugin("proctor") is None or pm.get_plugin("face_count") is None:
        # Running from a source tree whose entry points are not installed: the built-ins still
        # count. An installed distribution registers them through its entry points above.
        from proctoring import verifiers

        for name, plugin in (("proctor", verifiers.proctor_verifier),
                             ("face_count", verifiers.face_count_verifier)):
            if pm.get_plugin(name) is None and not pm.is_registered(plugin):
                pm.register(plugin, name=name)
    return pm


_pm: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager. Built once from what is installed; every worker builds the
    same one, so it holds no state the workers could disagree on."""
    global _pm
    if _pm is None:
        _pm = make_plugin_manager()
    return _pm


def set_plugin_manager(pm: pluggy.PluginManager | None) -> None:
    """Replace the process's plugin manager (tests); None rebuilds it on next use."""
    global _pm
    _pm = pm


def call(hook_name: str, **kwargs: Any) -> list[Any]:
    """Call every implementation of ``hook_name``; a plugin that raises is logged and skipped.

    Returns the non-None results with the plugin names: ``[(name, result), ...]``.
    """
    pm = plugin_manager()
    caller = getattr(pm.hook, hook_name)
    results = []
    for impl in reversed(caller.get_hookimpls()):
        args = {name: kwargs[name] for name in impl.argnames}
        try:
            out = impl.function(**args)
        except Exception:  # a provider's failure must not break the exam
            log.exception("proctoring plugin %s failed in %s", impl.plugin_name, hook_name)
            results.append((impl.plugin_name, _Failure(hook_name)))
            continue
        if out is not None:
            results.append((impl.plugin_name, out))
    return results


@dataclass(frozen=True)
class _Failure:
    hook: str


def failed(result: Any) -> bool:
    """True when :func:`call` reports that the plugin raised."""
    return isinstance(result, _Failure)
