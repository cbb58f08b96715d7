"""PostgreSQL checkouts ping the connection first (a dead one is replaced before use), except
in ``unpinged()``, which the fast lane uses: there a dead connection fails the statement (the
lane then hands the request to Flask) and the pool replaces its connections."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from assessment.database import make_engine, unpinged


@pytest.fixture
def pg_engine(database):
    if database.is_sqlite:
        pytest.skip("SQLite has no server connection to lose")
    engine = make_engine(database.url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _kill_backend(url: str, pid: int) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_checkouts_ping_unless_unpinged(pg_engine, monkeypatch):
    pings = []
    real = pg_engine.dialect.do_ping
    monkeypatch.setattr(pg_engine.dialect, "do_ping", lambda c: pings.append(1) or real(c))
    with pg_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(pings) == 1
    with unpinged(), pg_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(pings) == 1, "an unpinged checkout pinged"
    with pg_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(pings) == 2, "the ping did not come back after unpinged()"


def test_a_dead_connection_is_replaced_by_the_ping_and_fails_an_unpinged_statement(pg_engine):
    url = pg_engine.url.render_as_string(hide_password=False)
    with pg_engine.connect() as conn:
        first = conn.scalar(text("SELECT pg_backend_pid()"))
    _kill_backend(url, first)
    with pg_engine.connect() as conn:  # the ping finds it dead: a new connection, no error
        second = conn.scalar(text("SELECT pg_backend_pid()"))
    assert second != first
    _kill_backend(url, second)
    with pytest.raises(DBAPIError) as failed, unpinged(), pg_engine.connect() as conn:
        conn.scalar(text("SELECT pg_backend_pid()"))
    assert failed.value.connection_invalidated
    with pg_engine.connect() as conn:  # and the pool goes on with a new one
        assert conn.scalar(text("SELECT pg_backend_pid()")) not in (first, second)
