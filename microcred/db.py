"""The one SQLAlchemy declarative base, shared column types and the immutability guard.

Every package's models derive from :class:`Base`, so one ``MetaData`` describes the whole schema
and Alembic sees all of it. Packages never reach into each other's tables; they refer to another
package's rows by foreign key only.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import DateTime, MetaData, String, event, inspect
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import JSON, TypeDecorator

from microcred import clock
from microcred.errors import DomainError

NAMING = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    SQLite keeps no zone, so values are stored naive in UTC and given their zone back on load;
    PostgreSQL stores ``timestamptz``. Naive datetimes are refused: a naive time is a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use microcred.db.utcnow()")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict] = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


def utcnow() -> dt.datetime:
    """The server's clock. Every deadline and timestamp in Microcred comes from here; it reads
    the one clock, :mod:`microcred.clock`, so tests move time for every call site at once."""
    return clock.now()


class UnstorableText(DomainError):
    """A text value no backend may store as given (``field`` names ``table.column``)."""

    status, code = 422, "unstorable_text"


class ValueTooLong(UnstorableText):
    """Longer than its ``String(length)`` column allows."""

    code = "too_long"


@event.listens_for(Session, "before_flush")
def _check_text(session: Session, flush_context: Any, instances: Any) -> None:
    """Refuse, before any SQL, text that a column cannot hold on every backend: longer than its
    ``String(length)``, or containing a NUL character (in any text column).

    PostgreSQL refuses both (a 500 from the driver) and SQLite stores both: checked here, the
    same input gives the same clear 422 on both, and nothing of the flush is written.
    """
    for obj in (*session.new, *session.dirty):
        for attr in inspect(obj).mapper.column_attrs:
            column = attr.columns[0]
            if not isinstance(column.type, String):
                continue
            value = getattr(obj, attr.key, None)
            if not isinstance(value, str):
                continue
            field = f"{column.table.name}.{column.name}"
            limit = getattr(column.type, "length", None)
            if limit is not None and len(value) > limit:
                raise ValueTooLong(
                    f"{attr.key} ({field}) must be at most {limit} characters; "
                    f"{len(value)} were given", field=field, limit=limit)
            if "\x00" in value:
                raise UnstorableText(f"{attr.key} ({field}) must not contain a NUL character",
                                     field=field)


class ImmutableRowError(RuntimeError):
    """Raised when code tries to change or delete a row that is never edited in place."""


def append_only(cls: type, *, frozen_when: str | None = None,
                frozen_if: Callable[[Any], bool] = bool, still_changes: tuple[str, ...] = (),
                ) -> type:
    """Refuse UPDATE and DELETE of a model's rows through the ORM.

    ``frozen_when`` names an attribute (e.g. ``is_published``): the row is editable until its
    stored value satisfies ``frozen_if`` (default: is true), and frozen after (e.g. an item
    version's ``status`` once it is no longer a draft). Without it, the row is frozen as soon as
    it is inserted.
    ``still_changes`` names the attributes a frozen row may still change (an item version's
    ``status`` moves on after its content is frozen); an update that changes anything else is
    refused. New rows supersede old ones instead.
    """

    def _frozen(target: Any) -> bool:
        if frozen_when is None:
            return True
        from sqlalchemy import inspect

        hist = inspect(target).attrs[frozen_when].history
        was = hist.deleted[0] if hist.deleted else getattr(target, frozen_when)
        return frozen_if(was)

    def _changes_only_what_may_change(target: Any) -> bool:
        if not still_changes:
            return False
        from sqlalchemy import inspect

        state = inspect(target)
        changed = {a.key for a in state.attrs if a.history.has_changes()}
        return changed <= set(still_changes)

    @event.listens_for(cls, "before_update")
    def _no_update(mapper: Any, connection: Any, target: Any) -> None:
        if _frozen(target) and not _changes_only_what_may_change(target):
            raise ImmutableRowError(
                f"{cls.__name__} {getattr(target, 'id', '?')} is immutable: "
                "write a new row that supersedes it instead of editing it"
            )

    @event.listens_for(cls, "before_delete")
    def _no_delete(mapper: Any, connection: Any, target: Any) -> None:
        if _frozen(target):
            raise ImmutableRowError(f"{cls.__name__} {getattr(target, 'id', '?')} cannot be deleted")

    return cls


__all__ = ["Base", "ImmutableRowError", "Session", "UTCDateTime", "UnstorableText", "ValueTooLong",
           "append_only", "utcnow"]
