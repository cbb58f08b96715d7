"""Alembic, driven from Python: ``microcred init`` upgrades every branch to its head.

The foundation's revisions live in ``assessment/migrations/versions``. Each domain package keeps
its own branch in the folder its ``Package.migrations`` names (``microcred.packages``; a
``branch_labels`` base that ``depends_on`` the foundation), so packages add tables without
editing each other's migrations.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool

from assessment.database import make_engine
from microcred.packages import packages

#: Where Alembic's ``env.py`` lives (the environment all branches share).
ENVIRONMENT = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ENVIRONMENT))
    locations = [str(p.folder() / p.migrations) for p in packages() if p.migrations]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "heads")


def pending(database_url: str) -> bool:
    """True when some migration the code knows has not been applied to the database.

    Comparing heads alone is wrong here: a domain branch that depends on a foundation revision
    makes that revision an ancestor, not a head, so the applied set is the current heads plus
    everything they descend from (their ``down_revision`` and ``depends_on`` ancestors)."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    engine = make_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    # ScriptDirectory.iterate_revisions walks down from the current heads through both
    # down_revision and depends_on: alembic's public API, not its revision map's internals.
    applied = ({rev.revision for rev in script.iterate_revisions(current, "base")}
               if current else set())
    return bool(set(script.get_heads()) - applied)
