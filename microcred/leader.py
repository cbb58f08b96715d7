"""One leader at a time for work every node may run (the sweeper): a lock the database's own
machinery holds, never a home-made lease.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection kept for
  the leader's turn. The server frees it when that connection ends, so a node killed mid-sweep
  never leaves the lock behind.
- SQLite: an exclusive ``flock`` on a file beside the database file. SQLite is one machine, so a
  lock on that machine covers every process that can open the database; the kernel frees it
  when the process dies.

``try_lead`` never waits: a node that is not the leader skips its turn and tries at the next.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (what ``pg_try_advisory_lock`` takes)."""
    return int.from_bytes(hashlib.sha256(f"microcred:{name}".encode()).digest()[:8], "big",
                          signed=True)


def lock_file(engine: Engine, name: str) -> Path:
    """The SQLite database's lock file for ``name``: beside the database file."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError("a leader lock needs an SQLite database file")
    path = Path(database)
    return path.with_name(f"{path.name}.{name}.lock")


@contextlib.contextmanager
def try_lead(engine: Engine, name: str) -> Iterator[bool]:
    """Yield True while this process holds the leader lock ``name``; False (at once, without
    waiting) when another holds it. The lock is released when the block ends."""
    if engine.dialect.name == "postgresql":
        with _advisory(engine, name) as held:
            yield held
        return
    path = lock_file(engine, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _advisory(engine: Engine, name: str) -> Iterator[bool]:
    key = advisory_key(name)
    conn = engine.connect()
    try:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()  # the lock is the session's, not the transaction's: hold no transaction
        try:
            yield held
        finally:
            if held:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                except Exception:  # noqa: BLE001 - a broken connection: the server freed it
                    conn.invalidate()
    finally:
        conn.close()
