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
from sqlalchemy import create_engine

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
    """True when the database is behind the code's migration heads."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    return current != set(script.get_heads())
