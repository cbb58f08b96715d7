"""The registry of Microcred's packages, and the one function that wires their receivers.

Each package declares what it brings to every Microcred process in a :class:`Package` (in its
``package.py``), listed under the entry-point group ``microcred.packages`` in
``pyproject.toml``: a plug-in package joins by adding one entry point, and no other list of
packages exists. From the registry:

- ``assessment.models.load_all`` imports every package's models (one metadata for Alembic),
- ``assessment.migrate`` finds every package's migration folder,
- ``assessment.app.create_app`` calls each package's ``init_app(app)``,
- ``assessment.cli`` adds each package's commands,
- :func:`connect_receivers` connects each package's signal receivers,
- ``microcred.policy`` checks each package's sections of an exam's policy,
- ``microcred.jobs.load_jobs`` imports each package's job modules (web and worker alike),
- ``microcred writer`` imports each package's writes (``microcred.writer``),
- ``microcred.records`` finds the read interface other packages read people, exams and
  results through.

Receivers never connect as a side effect of importing a module: a process that forgot to import
the right module once finalized results without issuing their badges. Every process that can
finalize or release a result (the app factory, the ``microcred`` command group and so its
sweeper, job workers) calls :func:`connect_receivers` first.
"""
from __future__ import annotations

import importlib
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

GROUP = "microcred.packages"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


class RegistryError(RuntimeError):
    """The registry cannot be read; the message says what to do."""


@dataclass(frozen=True)
class Package:
    """What one package brings to every process. Hooks are ``"module:function"`` strings,
    imported only when a process uses them."""

    #: The import name of the package.
    name: str
    #: Foundation first (0), then the layers built on it: the order views, navigation links
    #: and commands are registered in.
    order: int
    #: Modules whose import defines the package's tables.
    models: tuple[str, ...] = ()
    #: The folder of the package's Alembic revisions, relative to the package.
    migrations: str | None = None
    #: ``"module:function"``: connects the package's signal receivers; must be idempotent.
    receivers: str | None = None
    #: ``"module:function"``: ``init_app(app)`` plugs the package's views into the Flask app.
    web: str | None = None
    #: ``"module:function"``: ``register(group)`` adds the package's commands to ``microcred``.
    cli: str | None = None
    #: ``"module:object"``: the :class:`microcred.records.Records` other packages read people,
    #: exams and results through (one package provides it: ``assessment``).
    records: str | None = None
    #: The sections of ``Exam.policy`` the package owns: section name -> ``"module:function"``
    #: validator of that section (``microcred.policy``).
    policy: dict[str, str] = field(default_factory=dict)
    #: Modules whose import registers the package's background jobs (``microcred.jobs.job``):
    #: the web that enqueues them and the worker that runs them know the same tasks.
    jobs: tuple[str, ...] = ()
    #: Modules whose import registers the writes the node's writer process may run for the
    #: package's views (``microcred.writer.carries``): the writer imports them to know them.
    writes: tuple[str, ...] = ()

    def folder(self) -> Path:
        module = importlib.import_module(self.name)
        return Path(next(iter(module.__path__)))


def hook(spec: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` string names."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


@cache
def packages() -> tuple[Package, ...]:
    """Every registered package, foundation first."""
    found = []
    for name, value in _declared():
        package = hook(value)
        if not isinstance(package, Package):
            raise RegistryError(f"entry point {name} = {value!r} of group {GROUP} is not a Package")
        found.append(package)
    return tuple(sorted(found, key=lambda p: (p.order, p.name)))


def _declared() -> list[tuple[str, str]]:
    """The group's entries from the installed metadata. An editable install made before the
    group existed has none: then the same table is read from the source tree's
    ``pyproject.toml``, so the entry points stay the one list (reinstall to drop the detour)."""
    installed = [(ep.name, ep.value) for ep in entry_points(group=GROUP)]
    if installed:
        return installed
    if PYPROJECT.is_file():
        project = tomllib.loads(PYPROJECT.read_text()).get("project", {})
        table = project.get("entry-points", {}).get(GROUP, {})
        if table:
            return list(table.items())
    raise RegistryError(f"no Microcred package is registered under the entry-point group "
                        f"{GROUP!r}: reinstall Microcred (pip install -e .)")


_connected = False
_connecting = threading.Lock()


def connect_receivers() -> None:
    """Connect every package's signal receivers, once per process (later calls do nothing)."""
    global _connected
    with _connecting:
        if _connected:
            return
        for package in packages():
            if package.receivers:
                hook(package.receivers)()
        _connected = True
