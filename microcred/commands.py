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
