"""The schema comes from the Alembic migrations, and matches the SQLAlchemy models exactly.

Each test gets an empty database of each kind: a new SQLite file, and a new PostgreSQL database on
the server of ``MICROCRED_TEST_POSTGRES_URL`` (dropped afterwards; the PostgreSQL half skips, with
the reason in the summary, when the server does not answer)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from assessment.database import Database
from assessment.migrate import alembic_config, pending, upgrade
from assessment.models import load_all


def _forbid_create_all(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the schema must come from migrations, not metadata.create_all")

    # (Table.create stays: Alembic creates its own alembic_version table with it.)
    monkeypatch.setattr(sa.MetaData, "create_all", refuse)


def test_upgrade_gives_exactly_the_models_schema(empty_url: str, monkeypatch):
    metadata = load_all().metadata
    engine = create_engine(empty_url)
    try:
        assert inspect(engine).get_table_names() == []
        assert pending(empty_url) is True
        _forbid_create_all(monkeypatch)
        upgrade(empty_url)
        assert pending(empty_url) is False

        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        assert tables - {"alembic_version"} == set(metadata.tables), (
            f"only in the database: {sorted(tables - set(metadata.tables) - {'alembic_version'})}; "
            f"only in the models: {sorted(set(metadata.tables) - tables)}"
        )
        assert "alembic_version" in tables
        for name, table in metadata.tables.items():
            db_columns = {c["name"]: c for c in inspector.get_columns(name)}
            assert set(db_columns) == {c.name for c in table.columns}, name
            for column in table.columns:
                assert db_columns[column.name]["nullable"] == column.nullable, (name, column.name)
            pk = inspector.get_pk_constraint(name)["constrained_columns"]
            assert set(pk) == {c.name for c in table.primary_key.columns}, name

        # Alembic's own comparison (types, indexes, unique and foreign keys) finds nothing to do
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            heads = set(context.get_current_heads())
        # every branch is at its head (the foundation's head is an ancestor of the domain
        # branches that depend on it, so alembic_version need not list it)
        script = ScriptDirectory.from_config(alembic_config(empty_url))
        assert heads and heads <= set(script.get_heads())
        applied = {rev.revision for rev in script.revision_map._get_ancestor_nodes(
            script.revision_map.get_revisions(tuple(heads)))}
        assert set(script.get_heads()) <= applied
    finally:
        engine.dispose()

    # a second upgrade is a no-op
    upgrade(empty_url)
    assert pending(empty_url) is False


def test_pending_sees_a_branch_that_is_not_applied(empty_url: str):
    """A database at the foundation's head but not at a domain branch's head is pending."""
    cfg = alembic_config(empty_url)
    script = ScriptDirectory.from_config(cfg)
    heads = script.get_heads()
    assert len(heads) >= 2, "expected the foundation and at least one domain branch"
    from alembic import command

    command.upgrade(cfg, "foundation@head")
    assert pending(empty_url) is True
    upgrade(empty_url)
    assert pending(empty_url) is False


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'pragmas.db'}"
    upgrade(url)
    database = Database(url)
    try:
        for engine in (database.engine, database.write_engine):
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        for write in (False, True):
            with database.session(write=write) as session, pytest.raises(IntegrityError):
                session.execute(text(
                    "INSERT INTO accommodations (candidate_id, exam_id, time_multiplier, reason, "
                    "granted_by_id, created_at) VALUES (424242, NULL, 1.5, 'x', 434343, "
                    "'2026-01-01 00:00:00')"))
                session.flush()
    finally:
        database.dispose()


def test_migration_scripts_never_call_create_all():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    sources = [Path(script.dir) / "env.py"]
    sources += [Path(rev.path) for rev in script.walk_revisions()]
    assert len(sources) >= 4
    for path in sources:
        code = path.read_text(encoding="utf-8")
        assert "create_all" not in code, path
        assert ".metadata.create" not in code, path
    root = Path(__file__).resolve().parents[1]
    packages = {Path(rev.path).resolve().relative_to(root).parts[0]
                for rev in script.walk_revisions()}
    assert {"assessment", "itembank", "proctoring", "credentials"} <= packages


def test_itembank_branch_keeps_the_published_state_in_status(empty_url: str):
    """The item bank's branch drops ``is_published`` (issue 10, item 8) with no data lost: a
    version the flag called published is published by its status, and the rows that point at it
    (a form's items) stay; downgrading brings the flag back from the status. The workflow's
    revision (i0002) then calls the published status what it is: approved (operational)."""
    from alembic import command

    cfg = alembic_config(empty_url)
    command.upgrade(cfg, "0001_foundation")
    engine = create_engine(empty_url)
    at = "'2026-01-01 00:00:00'"
    version = ("INSERT INTO item_versions (id, item_id, version, status, item_type, domain_code, "
               "stem, interaction, key, scoring, rationale, meta, max_score, is_published, "
               "published_at, created_at) VALUES ({id}, 1, {id}, '{status}', 'single_choice', "
               "'A', 'Which?', '{{}}', '{{}}', '{{}}', '', '{{}}', 1.0, {flag}, NULL, " + at + ")")
    try:
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO items (id, code, created_at) VALUES (1, 'Q1', {at})"))
            conn.execute(text(version.format(id=1, status="published", flag="true")))
            # written by hand: the flag said published, the status did not
            conn.execute(text(version.format(id=2, status="draft", flag="true")))
            conn.execute(text(version.format(id=3, status="draft", flag="false")))
            conn.execute(text("INSERT INTO blueprints (id, code, name, created_at) "
                              f"VALUES (1, 'BP', 'BP', {at})"))
            conn.execute(text("INSERT INTO forms (id, code, blueprint_id, is_published, "
                              f"published_at, created_at) VALUES (1, 'F', 1, true, {at}, {at})"))
            conn.execute(text("INSERT INTO form_items (id, form_id, position, item_version_id) "
                              "VALUES (1, 1, 0, 1)"))
        upgrade(empty_url)
        assert pending(empty_url) is False
        with engine.connect() as conn:
            assert "is_published" not in {c["name"] for c in inspect(conn).get_columns(
                "item_versions")}
            assert conn.execute(text("SELECT id, status FROM item_versions ORDER BY id")).all() \
                == [(1, "approved"), (2, "approved"), (3, "draft")]
            assert conn.execute(text("SELECT item_version_id FROM form_items")).all() == [(1,)]
        command.downgrade(cfg, "itembank@base")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, is_published FROM item_versions ORDER BY id"))
            assert [(i, bool(flag)) for i, flag in rows] == [(1, True), (2, True), (3, False)]
    finally:
        engine.dispose()



def test_the_demos_unread_policy_key_is_dropped(empty_url: str):
    """Exam policies hold only registered sections (``microcred.policy``): 0004 drops the demo's
    unread ``achievement_code`` so the exam's policy can still be edited, and keeps the rest."""
    from alembic import command

    cfg = alembic_config(empty_url)
    command.upgrade(cfg, "0003_sessions_counters")
    engine = create_engine(empty_url)
    at = "'2026-01-01 00:00:00'"
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO blueprints (id, code, name, created_at) "
                              f"VALUES (1, 'BP', 'BP', {at})"))
            exam = ("INSERT INTO exams (id, code, title, program_name, description, instructions, "
                    "agreement, blueprint_id, time_limit_seconds, pass_percent, shuffle_items, "
                    "shuffle_options, is_open, policy, created_at) VALUES ({id}, 'E{id}', 'E', '', "
                    "'', '[]', '', 1, 600, 60, true, true, true, :policy, " + at + ")")
            demo = {"proctoring": {"identity": "proctor"}, "achievement_code": "CC-101"}
            conn.execute(text(exam.format(id=1)), {"policy": json.dumps(demo)})
            conn.execute(text(exam.format(id=2)), {"policy": json.dumps({"retake": {}})})
        upgrade(empty_url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, policy FROM exams ORDER BY id")).all()
        policies = [json.loads(p) if isinstance(p, str) else p for _, p in rows]
        assert policies == [{"proctoring": {"identity": "proctor"}}, {"retake": {}}]
    finally:
        engine.dispose()
