"""Each process keeps a fixed pool of database connections (``MICROCRED_DB_POOL_SIZE``), with
no overflow: under load the pool stops opening and closing connections.

SQLAlchemy's default overflow connections are opened past the pool for one checkout and closed
on their return. A node under load on PostgreSQL opened some 26 new connections a second that
way (``bench/save_saturation.py``: a backend forked and signed in each time)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, text

from assessment.database import make_engine
from microcred.environment import DEFAULT_DB_POOL_SIZE, db_pool_size


def test_the_pool_size_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("MICROCRED_DB_POOL_SIZE", raising=False)
    assert db_pool_size() == DEFAULT_DB_POOL_SIZE == 30
    monkeypatch.setenv("MICROCRED_DB_POOL_SIZE", " 12 ")
    assert db_pool_size() == 12


@pytest.mark.parametrize("raw, says", [
    ("many", "must be a whole number, got 'many'"),
    ("0", "must be from 1 to 1000, got 0"),
    ("1001", "must be from 1 to 1000, got 1001"),
    ("-3", "must be from 1 to 1000, got -3"),
])
def test_a_bad_pool_size_is_refused_by_name(monkeypatch, raw, says):
    monkeypatch.setenv("MICROCRED_DB_POOL_SIZE", raw)
    with pytest.raises(ValueError, match="MICROCRED_DB_POOL_SIZE " + says):
        db_pool_size()


def test_engines_keep_a_fixed_pool(database, monkeypatch, tmp_path):
    monkeypatch.setenv("MICROCRED_DB_POOL_SIZE", "7")
    for url in (database.url, f"sqlite:///{tmp_path / 'file.db'}"):
        engine = make_engine(url)
        try:
            assert (engine.pool.size(), engine.pool._max_overflow) == (7, 0), url
        finally:
            engine.dispose()
    memory = make_engine("sqlite://")  # one connection per thread: no size to give
    assert type(memory.pool).__name__ == "SingletonThreadPool"
    memory.dispose()


def test_busy_threads_reuse_the_pools_connections(database, monkeypatch):
    """Twelve threads take a connection each, all at once, twenty times over: more at once than
    the old default pool of 10 kept. The connections are opened once and reused; with the
    overflow of before, the two past the tenth were closed on their return and opened again
    every time."""
    monkeypatch.setenv("MICROCRED_DB_POOL_SIZE", "12")
    engine = make_engine(database.url)
    opened = []
    event.listen(engine, "connect", lambda *a: opened.append(1))
    together = threading.Barrier(12, timeout=30)
    errors = []

    def work() -> None:
        try:
            for _ in range(20):
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                    together.wait()  # all twelve hold theirs at this moment
                together.wait()  # and all have given them back
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(12)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        engine.dispose()
    assert not errors, errors
    assert len(opened) == 12, f"{len(opened)} connections opened for 240 checkouts by 12 threads"
