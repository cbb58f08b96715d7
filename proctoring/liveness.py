"""When each candidate's page was last heard from (the console's connection column), noted by
every heartbeat without a write in the heartbeat.

The runner's heartbeat is a read (one SELECT); writing ``last_seen_at`` in it would make every
heartbeat a write transaction (on SQLite, the database's one write lock, for thousands of
candidates every 30 s). Instead each web process keeps the newest time per session in memory
and a thread of that process writes them all every :data:`FLUSH_EVERY_S` seconds in one
executemany UPDATE, which only ever moves a session's time forward, so several processes and
nodes can write in any order. What a killed process had not written yet is a few seconds of
"last seen", a hint for the proctor, never anything the candidate sent.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from typing import Any

from sqlalchemy import bindparam, or_, select, update

from microcred.db import UTCDateTime
from proctoring.models import ProctorSession

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 5.0

#: database -> {session id: newest time heard from}
_pending: dict[Any, dict[int, dt.datetime]] = {}
_lock = threading.Lock()
#: held while a batch is written, so :func:`forget` can wait for a write under way
_writing = threading.Lock()
_flusher: tuple[int, threading.Thread] | None = None

_TABLE = ProctorSession.__table__
_UPDATE = (update(_TABLE)
           .where(_TABLE.c.id == bindparam("sid"),
                  or_(_TABLE.c.last_seen_at.is_(None),
                      _TABLE.c.last_seen_at < bindparam("seen", type_=UTCDateTime())))
           .values(last_seen_at=bindparam("seen", type_=UTCDateTime())))


def seen(database: Any, session_id: int, at: dt.datetime) -> None:
    """Note that the page of ``session_id`` (in ``database``) was heard from at ``at``; written
    within :data:`FLUSH_EVERY_S` seconds by this process's flusher."""
    with _lock:
        times = _pending.setdefault(database, {})
        before = times.get(session_id)
        if before is None or at > before:
            times[session_id] = at
    _ensure_flusher()


def flush(database: Any | None = None) -> int:
    """Write the times noted so far (for ``database``, else for every database); returns how
    many sessions were written."""
    with _writing:
        return _flush(database)


def _flush(database: Any | None) -> int:
    with _lock:
        targets = [database] if database is not None else list(_pending)
        batches = {db: _pending.pop(db, {}) for db in targets}
    written = 0
    for db, batch in batches.items():
        if not batch:
            continue
        try:
            later = _write(db, batch)
        except Exception:
            _keep(db, batch)
            raise
        _keep(db, later)
        written += len(batch) - len(later)
    return written


def _keep(db: Any, batch: dict[int, dt.datetime]) -> None:
    """Keep ``batch`` for the next flush; a newer time noted meanwhile wins."""
    with _lock:
        times = _pending.setdefault(db, {})
        for sid, at in batch.items():
            if sid not in times or times[sid] < at:
                times[sid] = at


def _write(db: Any, batch: dict[int, dt.datetime]) -> dict[int, dt.datetime]:
    """Write ``batch`` in one transaction; returns what is left for the next flush.

    On PostgreSQL the rows are locked first with ``SKIP LOCKED``, in id order: a row another
    transaction holds (a frame's or a batch's write, the node's writer's group) is left for
    the next flush instead of waited for. A flush that waited while holding the rows it had
    updated so far could close a cycle with a transaction holding one of those and waiting for
    another of its rows: PostgreSQL then aborts one of the two after a second (a deadlock seen
    at 5,000 candidates with the node's writer)."""
    with db.session() as session:
        rows, later = batch, {}
        if session.get_bind().dialect.name == "postgresql":
            ids = sorted(batch)
            locked = set(session.scalars(select(_TABLE.c.id).where(_TABLE.c.id.in_(ids))
                                         .order_by(_TABLE.c.id).with_for_update(skip_locked=True)))
            if len(locked) < len(batch):
                rows = {sid: at for sid, at in batch.items() if sid in locked}
                # held by another transaction now (a session no longer there is dropped)
                there = set(session.scalars(select(_TABLE.c.id).where(
                    _TABLE.c.id.in_([sid for sid in ids if sid not in locked]))))
                later = {sid: batch[sid] for sid in there}
        if rows:
            session.execute(_UPDATE, [{"sid": sid, "seen": at} for sid, at in rows.items()])
        session.commit()
    return later


def forget() -> None:
    """Drop every time noted and not yet written, after any write under way has ended (the tests
    empty the tables between tests: a time noted in one must not land on a row of the next)."""
    with _writing, _lock:
        _pending.clear()


def _ensure_flusher() -> None:
    global _flusher
    pid = os.getpid()
    if _flusher is not None and _flusher[0] == pid and _flusher[1].is_alive():
        return
    with _lock:
        if _flusher is not None and _flusher[0] == pid and _flusher[1].is_alive():
            return
        if _flusher is not None and _flusher[0] != pid:
            _pending.clear()  # a forked child: the parent writes what it noted
        thread = threading.Thread(target=_run, daemon=True, name="microcred-liveness")
        thread.start()
        _flusher = (pid, thread)


def _run() -> None:
    while True:
        time.sleep(FLUSH_EVERY_S)
        try:
            flush()
        except Exception:  # the database is away: tried again at the next round
            log.exception("liveness: could not write the pages' last-seen times")
