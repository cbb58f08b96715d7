"""The product's SQLite default is synchronous=FULL: a save is acknowledged only once it is on
disk (docs/scale-out.md gives the choice and its cost). The suite itself runs NORMAL
(tests/conftest.py), so this pins the default apart."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from assessment.database import make_engine


@pytest.mark.parametrize("setting, expected", [(None, 2), ("FULL", 2), ("NORMAL", 1)])
def test_sqlite_commits_are_durable_by_default(monkeypatch, tmp_path, setting, expected):
    if setting is None:
        monkeypatch.delenv("MICROCRED_SQLITE_SYNCHRONOUS", raising=False)
    else:
        monkeypatch.setenv("MICROCRED_SQLITE_SYNCHRONOUS", setting)
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == expected  # 2 = FULL
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        engine.dispose()


def test_a_bad_setting_is_refused_at_start(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROCRED_SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(ValueError, match="MICROCRED_SQLITE_SYNCHRONOUS must be FULL or NORMAL"):
        make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
