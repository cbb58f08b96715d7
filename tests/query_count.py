"""Counting the SQL statements a piece of code sends, for query-budget tests."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def count_statements(*engines: Engine) -> Iterator[list[str]]:
    """Collect every statement sent through ``engines`` (each counted once) while the block runs.

    Listens to ``before_cursor_execute``, so it sees what reaches the database: lazy loads,
    eager loads and ``BEGIN`` alike. Yields the list of statements, filled as they are sent."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(statement)

    unique = list(dict.fromkeys(engines))
    for engine in unique:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        for engine in unique:
            event.remove(engine, "before_cursor_execute", record)
