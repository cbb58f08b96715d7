"""Count the SQL statements a piece of code sends, and the pooled connections it holds at once:
the tools behind the query budgets.

A hot path (the runner's heartbeat and autosave, the proctoring pings and snapshots, the
console poll) has a budget of statements per request; tests pin it with :func:`count_queries`
so a change that adds a query (an N+1 above all) fails where it is made, not in production::

    with count_queries(database.engine, database.write_engine) as queries:
        client.get(url)
    assert len(queries) == 5, queries.report()

Transaction control (``BEGIN``, ``COMMIT``, ``ROLLBACK``, savepoints) is not counted: SQLite's
engine sends its ``BEGIN`` as a statement, PostgreSQL's driver does not, and a budget counts
the work, the same on both databases.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")


class Queries(list[str]):
    """The statements sent, in order (SQL text, parameters left out)."""

    def report(self) -> str:
        """One numbered line per statement, for an assertion's message."""
        return "\n".join(f"{i}. {' '.join(sql.split())[:300]}" for i, sql in enumerate(self, 1))


@contextmanager
def _listening(engines: tuple[Engine, ...], **listeners: Any) -> Iterator[None]:
    """``listeners`` (event name -> function) on each of ``engines`` while the block runs (an
    engine given twice, e.g. PostgreSQL's one engine for reads and writes, is listened to
    once)."""
    unique = list({id(e): e for e in engines}.values())
    for engine in unique:
        for name, fn in listeners.items():
            event.listen(engine, name, fn)
    try:
        yield
    finally:
        for engine in unique:
            for name, fn in listeners.items():
                event.remove(engine, name, fn)


@contextmanager
def count_queries(*engines: Engine) -> Iterator[Queries]:
    """Record every statement sent through ``engines`` while the block runs."""
    queries = Queries()

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if not statement.lstrip().upper().startswith(_TRANSACTION_CONTROL):
            queries.append(statement)

    with _listening(engines, before_cursor_execute=record):
        yield queries


@contextmanager
def count_connections(*engines: Engine) -> Iterator[list[int]]:
    """``[n]``: the most pooled connections of ``engines`` held at the same time while the
    block runs (a request that holds two at once takes the pool's room from another's)."""
    held, most = [0], [0]

    def out(*_args: Any) -> None:
        held[0] += 1
        most[0] = max(most[0], held[0])

    def back(*_args: Any) -> None:
        held[0] -= 1

    with _listening(engines, checkout=out, checkin=back):
        yield most
