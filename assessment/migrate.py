"""Alembic, driven from Python: ``microcred init`` upgrades every branch to its head.

The foundation's revisions live in ``assessment/migrations/versions``. Each domain package keeps
its own branch in ``<package>/migrations`` (a ``branch_labels`` base that ``depends_on`` the
foundation), so packages add tables without editing each other's migrations.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool

from assessment.database import make_engine

ROOT = Path(__file__).resolve().parent.parent
PACKAGES_WITH_MIGRATIONS = ("itembank", "proctoring", "credentials")


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "assessment" / "migrations"))
    locations = [str(ROOT / "assessment" / "migrations" / "versions")]
    for pkg in PACKAGES_WITH_MIGRATIONS:
        path = ROOT / pkg / "migrations"
        if path.is_dir():
            locations.append(str(path))
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
    revision_map = script.revision_map
    applied = {
        rev.revision
        for rev in revision_map._get_ancestor_nodes(revision_map.get_revisions(current))
    }
    return bool(set(script.get_heads()) - applied)
