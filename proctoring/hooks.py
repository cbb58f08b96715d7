"""The hook specification outside proctoring services implement (pluggy, like pytest plugins).

A provider is a Python package that declares an entry point in the group
``microcred.proctoring``::

    [project.entry-points."microcred.proctoring"]
    acme = "acme_proctoring.plugin"      # a module or an object with @hookimpl functions

Microcred's own two identity verifiers are plugins of this same specification (see
``proctoring.verifiers``), registered through the same entry points.

Hooks receive plain frozen dataclasses (:class:`SessionInfo`, :class:`IdentityRequest`,
:class:`EventInfo`), never database rows, so a provider depends on this module only. A provider that
raises is logged and skipped, and the others still run: an outside service must never break a
candidate's exam. No hook runs inside a write transaction: the notifications (a session started,
paused, resumed, submitted, reviewed, any state change) are written to an outbox in the change's
transaction and delivered by a job after it commits (``proctoring.hook_outbox``); the hooks
whose answers count (identity verifiers, integrity events) are called before any lock.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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


class Answer(NamedTuple):
    """One plugin's answer to a hook: what :func:`call` returns, and what a hookwrapper sees."""

    plugin: str
    value: Any


def _isolated(function: Callable[..., Any], hook: str, plugin: str,
              firstresult: bool) -> Callable[..., Any]:
    """``function`` that answers with its plugin's name and never raises: a failure is logged
    and answered as :func:`failed` (skipped, for a ``firstresult`` hook, so the next answers)."""

    @functools.wraps(function)
    def isolated(*args: Any, **kwargs: Any) -> Answer | None:
        try:
            value = function(*args, **kwargs)
        except Exception:  # a provider's failure must not break the exam
            log.exception("proctoring plugin %s failed in %s", plugin, hook)
            return None if firstresult else Answer(plugin, _Failure(hook))
        return None if value is None else Answer(plugin, value)

    return isolated


class _PluginManager(pluggy.PluginManager):
    """Pluggy's manager, each plugin's implementations isolated as it is registered; calls go
    through pluggy's own calling, so hookwrappers, ``tryfirst`` and ``firstresult`` work."""

    def register(self, plugin: object, name: str | None = None) -> str | None:
        plugin_name = super().register(plugin, name)
        for caller in self.get_hookcallers(plugin) or []:
            firstresult = bool(caller.spec and caller.spec.opts.get("firstresult"))
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                    impl.function = _isolated(impl.function, caller.name, impl.plugin_name,
                                              firstresult)
        return plugin_name


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the specification and every installed plugin."""
    pm = _PluginManager(PROJECT)
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


def call(hook_name: str, **kwargs: Any) -> list[Answer]:
    """Call ``hook_name`` through pluggy (``pm.hook.<name>(...)``); a plugin that raises is
    logged and skipped (see :class:`_PluginManager`).

    Returns the non-None answers with the plugin names: ``[(name, result), ...]`` (at most one
    for a ``firstresult`` hook).
    """
    caller = getattr(plugin_manager().hook, hook_name)
    out = caller(**kwargs)
    if caller.spec is not None and caller.spec.opts.get("firstresult"):
        return [] if out is None else [out]
    return list(out)


@dataclass(frozen=True)
class _Failure:
    hook: str


def failed(result: Any) -> bool:
    """True when :func:`call` reports that the plugin raised."""
    return isinstance(result, _Failure)
