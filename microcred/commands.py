"""What the ``microcred`` command gives the commands every package adds to it.

The group (``assessment.cli.main``) puts a :class:`CommandContext` in click's context object, so a
package's command opens a session on the configured database without importing the app's
configuration, database or migrations."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import click
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class CommandContext:
    #: a write session on the configured database, its models loaded
    open_session: Callable[[], Session]
    #: True when the database exists and every migration the code knows is applied
    migrated: Callable[[], bool]


def command_context() -> CommandContext:
    """The running ``microcred`` command's context (a click error outside one)."""
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(CommandContext) if ctx is not None else None
    if found is None:
        raise click.ClickException("run this command as part of the `microcred` command")
    return found


def migrated_session() -> Session | None:
    """A write session when the database is migrated, else None (missing or behind)."""
    context = command_context()
    return context.open_session() if context.migrated() else None


def stop_with_parent(stop: Callable[[], None], *, every_s: float = 2.0,
                     parent: int | None = None) -> None:
    """Call ``stop`` once the process that started this one has ended (its parent changes): a
    process ``microcred serve`` started beside the web (the job worker, the face checker, the
    node's writer) and left behind by a server killed with -9 stops by itself. Watches from a
    daemon thread. ``parent``: the process expected to be the parent, when known (a parent
    that died before this was called has been replaced already: ``stop`` is then called at
    once, where watching the new parent would wait forever)."""
    import os
    import threading
    import time

    parent = parent or os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        stop()

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
