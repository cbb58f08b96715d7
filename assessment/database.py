"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with foreign keys on. A request that writes opens its transaction with
``BEGIN IMMEDIATE`` so that two writers queue on the lock (busy timeout) instead of one failing
with "database is locked" when it upgrades a read snapshot to a write. Within a process, writers
queue on a lock of the process first (:func:`_serialise_writers`).
"""
from __future__ import annotations

import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker

from microcred.environment import db_pool_size, sqlite_synchronous

SQLITE_BUSY_TIMEOUT_MS = 10_000
#: The database holds password hashes and candidates' answers: owner-only, like the key files.
SQLITE_FILE_MODE = 0o600
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def private_sqlite_file(url: str) -> Path | None:
    """Create the SQLite file of ``url`` with mode 0600 before SQLite does (it would use the
    umask, usually 0644), and take group and other access away from an existing database
    and its -wal/-shm files (SQLite creates those with the database file's mode)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SQLITE_FILE_MODE))
    except FileExistsError:
        pass
    for suffix in _SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        try:
            mode = stat.S_IMODE(companion.stat().st_mode)
            if mode & 0o077:
                companion.chmod(mode & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError:
            pass  # not ours to change (another user's database); SQLite reports real problems
    return path


def make_engine(url: str, *, immediate: bool = False, **kwargs: Any) -> Engine:
    """Create an engine for ``url``; on SQLite set the pragmas and the transaction mode."""
    if "poolclass" not in kwargs and _pooled(url):
        # a fixed pool, no overflow: an overflow connection is opened for one checkout and
        # closed on its return, and under load that was a new connection every few requests
        kwargs.setdefault("pool_size", db_pool_size())
        kwargs.setdefault("max_overflow", 0)
    if url.startswith("sqlite"):
        path = private_sqlite_file(url)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )
        _configure_sqlite(engine, immediate=immediate, path=path)
        return engine
    ping = kwargs.pop("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if ping:
        _ping_on_checkout(engine)
    return engine


def _pooled(url: str) -> bool:
    """Whether SQLAlchemy gives ``url`` a queue pool (sized by :func:`db_pool_size`): every
    server database, and SQLite in a file (in memory it keeps one connection per thread)."""
    if not url.startswith("sqlite"):
        return True
    database = make_url(url).database
    return bool(database) and database != ":memory:" and "mode=memory" not in url


#: per thread: whether its checkouts skip the ping (:func:`unpinged`)
_no_ping = threading.local()


@contextmanager
def unpinged() -> Iterator[None]:
    """Connections this thread checks out within the block skip the ping before use (a
    ``SELECT 1`` round trip per checkout on PostgreSQL). Only for a caller with another way
    when a statement fails on a dead connection: the fast lane, whose requests then go to
    Flask, whose checkouts ping (the failed statement has the pool replace its connections,
    as a failed ping would)."""
    before = getattr(_no_ping, "on", False)
    _no_ping.on = True
    try:
        yield
    finally:
        _no_ping.on = before


def _ping_on_checkout(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping`` as a checkout listener, which :func:`unpinged` can skip:
    a connection that fails its ping makes the pool drop every connection it holds (the
    server restarted, so the others are dead too) and check out a new one."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if getattr(_no_ping, "on", False):
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            if not dialect.is_disconnect(exc, dbapi_conn, None):
                raise
            raise InvalidatePoolError(f"the connection failed its ping: {exc}") from exc


def _configure_sqlite(engine: Engine, *, immediate: bool, path: Path | None) -> None:
    synchronous = sqlite_synchronous()  # checked once, here: a bad value fails at start-up

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # The driver must not open transactions by itself; we emit BEGIN below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit is on disk (the WAL fsynced) before the save is acknowledged. NORMAL
        # can lose the last commits on power loss: acknowledged answers. Its cost, measured by
        # bench/sqlite_durability.py, is in docs/scale-out.md.
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "checkin")
    def _end_open_transaction(dbapi_conn: Any, record: Any) -> None:
        # A COMMIT that fails (a deferred constraint, a full disk, an I/O error) leaves SQLite
        # inside the transaction while SQLAlchemy counts it as ended and skips the pool's
        # rollback: the next checkout would fail on BEGIN ("cannot start a transaction within
        # a transaction") and hold the write lock meanwhile. Roll it back here, before the
        # process's writer lock (below) is given back.
        if dbapi_conn is not None and dbapi_conn.in_transaction:
            dbapi_conn.rollback()

    if immediate:
        _serialise_writers(engine, None if path is None else path.with_name(path.name + WRITERS_LOCK))

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


#: beside the database file: the file whose lock the writers of every process take in turn
WRITERS_LOCK = ".writers"


def _serialise_writers(engine: Engine, lock_file: Path | None) -> None:
    """Writers take SQLite's write lock in turn through locks that wake the next waiter at once,
    instead of through SQLite's busy handler, which sleeps (1, 2, 5, 10 ... 100 ms) and retries:
    under load those sleeps, not the work, made the latency (a save's p99 of 300 ms with the
    server a fifth busy, over 300 ms being the handler's first twelve sleeps added up).

    The threads of one process queue on a lock of the process; the process that holds it takes
    an exclusive ``flock`` of ``lock_file`` (beside the database), on which the other processes
    (web workers, the sweeper, the job worker) queue in the kernel. A connection takes both
    when it begins a write transaction and gives them back when it returns to the pool (after
    its commit or rollback). The kernel drops a dead process's ``flock``. Anything that writes
    without them (the sqlite3 shell) still meets SQLite's own lock and busy handler."""
    lock = threading.RLock()
    held = {"depth": 0}
    opened: dict[int, int] = {}  # pid -> descriptor: a forked child opens its own (a flock
    # belongs to the open file, which a child would otherwise share with its parent)

    def _descriptor() -> int:
        pid = os.getpid()
        if pid not in opened:
            opened.clear()
            opened[pid] = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, SQLITE_FILE_MODE)
        return opened[pid]

    @event.listens_for(engine, "begin")
    def _take(conn: Any) -> None:
        info = conn.connection.info  # the pooled connection's own dict
        # past the busy timeout it goes on without: SQLite's own lock still decides
        if lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            if held["depth"] == 0 and lock_file is not None:
                fcntl.flock(_descriptor(), fcntl.LOCK_EX)
            held["depth"] += 1
            info["write_lock"] = info.get("write_lock", 0) + 1

    @event.listens_for(engine, "checkin")
    def _give_back(dbapi_conn: Any, record: Any) -> None:
        for _ in range(record.info.pop("write_lock", 0)):
            if not lock._is_owned():  # returned by another thread (garbage collection): theirs
                break
            held["depth"] -= 1
            if held["depth"] == 0 and lock_file is not None:
                fcntl.flock(_descriptor(), fcntl.LOCK_UN)
            lock.release()


class Database:
    """The pair of engines (read, write) and their session factories for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = make_engine(url)
        # On PostgreSQL one engine serves both; row locks do the queueing.
        self.write_engine = make_engine(url, immediate=True) if self.is_sqlite else self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        # Short reads (the heartbeat, a request's user, a frame's or a batch's look): on
        # PostgreSQL each statement runs on its own (the driver's autocommit, set and reset on
        # the pooled connection without a round trip): no BEGIN and no ROLLBACK sent, and no
        # transaction left open while the request's thread does something else or waits for
        # Python's lock. Under READ COMMITTED, PostgreSQL's default and Microcred's, each
        # statement of a transaction sees its own snapshot anyway, so the reads see the same.
        # On SQLite a read transaction costs no round trip: the plain read engine.
        self.glance_engine = (self.engine if self.is_sqlite
                              else self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        self._glance = sessionmaker(self.glance_engine, expire_on_commit=False)

    def session(self, *, write: bool = True) -> Session:
        return (self._write if write else self._read)()

    def glance(self) -> Session:
        """A session for a short read that writes nothing (see ``glance_engine``)."""
        return self._glance()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
