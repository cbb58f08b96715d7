"""The runner's hot path: the heartbeat and the autosave, which every candidate sends all exam
long, in as few statements as the work needs and with no ORM object loaded.

- The sign-in is read from the signed session cookie (the user id and the generation of the
  sign-in it was issued under); the statement that reads or writes the attempt checks, in the
  same round trip, that the user still is that active candidate with that generation (what
  ``assessment.users.load_signed_in_user`` checks), and that the attempt is theirs.
- The clock comes from the attempt row (``timing.clock_from_row``): no clock-event query.
- A heartbeat is one SELECT (the attempt, the user, and what other packages add to the
  heartbeat through ``RunnerWiring.heartbeat_parts``, joined in).
- A save is an ``UPDATE attempts ... RETURNING`` (the row lock on PostgreSQL, the clock, the
  item order, the new ``last_seq``) and an ``INSERT ... ON CONFLICT DO NOTHING RETURNING``
  (a retried seq is not inserted twice); only when a seq was stored before, one SELECT tells
  a retry (``duplicate``) from a ``conflict``. On PostgreSQL the two are one statement
  (a data-modifying ``WITH``): the saves' checks against the attempt then run after the
  INSERT, and a save they refuse is rolled back whole. Item shapes (published item versions
  are immutable) are cached per process.

The view runs these functions on the request's ORM session; the fast lane
(:mod:`assessment.delivery.hotlane`, a WSGI middleware in front of Flask) runs the same ones on
a Core connection, with the sign-in it verified from the cookie, so most heartbeats and saves
never enter Flask.

Anything out of the ordinary (no session cookie, a remember cookie, another's attempt, a
finalized attempt, time run out, a pause, an invalid save) rolls back and returns None: the
view then runs the full path, which answers exactly as it always has. So the hot path changes
how fast the usual answer comes, never what any answer is.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from flask import current_app
from flask import session as browser_session
from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    bindparam,
    case,
    exists,
    func,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from assessment.delivery.models import Attempt, ResponseSave
from assessment.delivery.service import SaveRequest, clock_payload
from assessment.delivery.timing import clock_from_row
from assessment.users import User
from itembank.models import DRAFT, ItemVersion
from itembank.types import ResponseShapeError, item_type
from microcred.db import utcnow
from microcred.inputs import is_whole
from microcred.web import runner_wiring
from microcred.writer import carries

_ATTEMPTS = Attempt.__table__
_SAVES = ResponseSave.__table__
_CLOCK = (_ATTEMPTS.c.started_at, _ATTEMPTS.c.time_limit_seconds, _ATTEMPTS.c.time_multiplier,
          _ATTEMPTS.c.deadline_at, _ATTEMPTS.c.paused_since, _ATTEMPTS.c.extension_seconds,
          _ATTEMPTS.c.finalized_at)


@dataclass(frozen=True)
class SignedIn:
    user_id: int
    epoch: int

    def params(self) -> dict[str, int]:
        """The parameters of :data:`SIGN_IN_HOLDS`."""
        return {"uid": self.user_id, "epoch": self.epoch}


def signed_in() -> SignedIn | None:
    """The user and sign-in generation the signed session cookie names, when the session passes
    Flask-Login's session protection as it stands (else None: the full sign-in check runs)."""
    manager = current_app.login_manager
    if browser_session.get("_id") != manager._session_identifier_generator():
        return None  # Flask-Login decides (strong protection ends such a session)
    return signed_in_as(browser_session.get("_user_id"))


def signed_in_as(value: Any) -> SignedIn | None:
    """The user and generation of a session's ``_user_id`` (``"<id>:<epoch>"``, what
    ``assessment.users.load_signed_in_user`` parses), else None."""
    if not isinstance(value, str):
        return None
    user_id, sep, epoch = value.partition(":")
    if not (sep and is_whole(user_id) and is_whole(epoch)) or len(value) > 40:
        return None
    return SignedIn(int(user_id), int(epoch))


#: the attempt is the signed-in candidate's, and their sign-in still stands (what
#: ``load_signed_in_user`` checks), with the user and generation as parameters
_MINE = and_(_ATTEMPTS.c.candidate_id == bindparam("uid"), exists(select(User.id).where(
    User.id == bindparam("uid"), User.session_epoch == bindparam("epoch"),
    User.active == true(), User.role == "candidate")))
#: the same sign-in check for another package's statement in the fast lane (parameters
#: ``uid`` and ``epoch``: :meth:`SignedIn.params`)
SIGN_IN_HOLDS = _MINE.clauses[1]


#: statements are built once (building one costs more than running it): the heartbeat's per
#: set of heartbeat parts, the save's per dialect
_BUILT: dict[Any, Any] = {}


def _grace() -> float:
    return current_app.config["MICROCRED"].save_grace_seconds


#: what the hot path runs its statements on: the request's ORM session (the view), or a Core
#: connection of the app's engine (the fast lane, ``assessment.delivery.hotlane``: no ORM
#: session to set up and tear down per request); both commit and roll back alike
Database = Session | Connection


def _dialect(db: Database) -> str:
    return (db.dialect if isinstance(db, Connection) else db.get_bind().dialect).name


def _orm(db: Database) -> Session:
    """An ORM session for what other packages' heartbeat parts read (rarely: messages)."""
    return Session(bind=db) if isinstance(db, Connection) else db


# ---------------------------------------------------------------- heartbeat


def heartbeat(session: Database, attempt_id: int, who: SignedIn | None = None,
              grace: float | None = None) -> dict[str, Any] | None:
    """The heartbeat's body for an attempt in progress, in one SELECT; None: use the full path.
    ``who`` (else the request's signed session) and ``grace`` (else the app's) are given by
    a caller that has them already (the fast lane)."""
    who = who or signed_in()
    grace = _grace() if grace is None else grace
    if who is None:
        return None
    parts = runner_wiring().heartbeat_parts
    key = ("heartbeat", *map(id, parts))
    q = _BUILT.get(key)
    if q is None:
        q = select(_ATTEMPTS.c.status, _ATTEMPTS.c.last_seq, *_CLOCK).where(
            _ATTEMPTS.c.id == bindparam("aid"), _MINE)
        for part in parts:
            q = q.outerjoin(*part.join(_ATTEMPTS.c.id)).add_columns(*part.columns())
        _BUILT[key] = q
    row = session.execute(q, {"aid": attempt_id, "uid": who.user_id,
                              "epoch": who.epoch}).first()
    if row is None or row.status != "in_progress" or row.deadline_at is None:
        return None
    now = utcnow()
    c = clock_from_row(row, now)
    extras: dict[str, Any] = {}
    orm = _orm(session) if parts else None
    for part in parts:
        extras.update(part.extras(orm, row, now) or {})
    return {"status": "in_progress", "expired": c.time_up(grace),
            "clock": clock_payload(c, now, grace_seconds=grace),
            "last_seq": row.last_seq, "extras": extras}


# ---------------------------------------------------------------- autosave

#: item version id -> what checking a save needs (id, item type, interaction); published item
#: versions are never edited in place, so a process may keep them
_SHAPES: dict[int, Any] = {}
_SHAPES_LOCK = threading.Lock()


def forget_shapes() -> None:
    """Empty the cache: for a database whose ids start again (the tests empty every table
    between tests; a production database never reuses an item version's id)."""
    with _SHAPES_LOCK:
        _SHAPES.clear()


def _shapes(session: Database, ids: set[int]) -> dict[int, Any]:
    missing = ids - _SHAPES.keys()
    if missing:
        rows = session.execute(select(ItemVersion.id, ItemVersion.item_type,
                                      ItemVersion.interaction, ItemVersion.status)
                               .where(ItemVersion.id.in_(missing))).all()
        with _SHAPES_LOCK:
            for r in rows:
                shape = SimpleNamespace(id=r.id, item_type=r.item_type, interaction=r.interaction)
                if r.status != DRAFT:  # a draft may still change: never kept
                    _SHAPES[r.id] = shape
                else:
                    return {}
    return {i: _SHAPES[i] for i in ids if i in _SHAPES}


def _save_statements(dialect: str) -> tuple[Any, Any]:
    """The save's UPDATE ... RETURNING (``last_seq`` only ever grows; ``position`` when sent)
    and its INSERT ... ON CONFLICT DO NOTHING RETURNING seq, for ``dialect``."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    top = bindparam("top", type_=BigInteger())
    update_stmt = (update(_ATTEMPTS)
                   .where(_ATTEMPTS.c.id == bindparam("aid"),
                          _ATTEMPTS.c.status == "in_progress", _MINE)
                   .values(last_seq=case((_ATTEMPTS.c.last_seq < top, top),
                                         else_=_ATTEMPTS.c.last_seq),
                           position=func.coalesce(bindparam("pos", type_=Integer()),
                                                  _ATTEMPTS.c.position))
                   .returning(_ATTEMPTS.c.item_order, _ATTEMPTS.c.last_seq, *_CLOCK))
    insert_stmt = (insert(_SAVES).on_conflict_do_nothing(index_elements=["attempt_id", "seq"])
                   .returning(_SAVES.c.seq))
    _BUILT["save", dialect] = (update_stmt, insert_stmt)
    return update_stmt, insert_stmt


#: the most saves of one request written in a single statement on PostgreSQL (the runner sends
#: one at a time unless its queue holds more; a longer request takes the two statements)
ONE_STATEMENT_SAVES = 4

_SAVE_COLUMNS = ("item_version_id", "seq", "value", "flagged")


def _save_statement_pg(n: int) -> Any:
    """On PostgreSQL, the save's UPDATE and INSERT of ``n`` rows as one statement: one round
    trip instead of two (the node's writer runs its group's statements one after another).
    The rows are inserted only when the UPDATE found the attempt (the candidate's, in
    progress); it returns the UPDATE's row with ``stored``, the seqs inserted (a seq stored
    before is not), or no row. Parameters ``<column><i>`` for row ``i``; the saves' checks
    against the attempt (its items, its clock) come after, and the caller rolls back a save
    that fails them."""
    from sqlalchemy import union_all
    from sqlalchemy.dialects.postgresql import array_agg, insert

    update_stmt, _ = _BUILT.get(("save", "postgresql")) or _save_statements("postgresql")
    found = update_stmt.cte("found")
    rows = [select(bindparam("aid", type_=_SAVES.c.attempt_id.type),
                   *[bindparam(f"{c}{i}", type_=_SAVES.c[c].type) for c in _SAVE_COLUMNS],
                   bindparam("now", type_=_SAVES.c.saved_at.type)).select_from(found)
            for i in range(n)]
    inserted = (insert(_SAVES)
                .from_select(["attempt_id", *_SAVE_COLUMNS, "saved_at"],
                             rows[0] if n == 1 else union_all(*rows))
                .on_conflict_do_nothing(index_elements=["attempt_id", "seq"])
                .returning(_SAVES.c.seq).cte("inserted"))
    stored = select(array_agg(inserted.c.seq)).scalar_subquery().label("stored")
    return select(*found.c, stored)


def _declined(session: Database, own_transaction: bool) -> None:
    if own_transaction:
        session.rollback()


def save(session: Database, attempt_id: int, saves: list[SaveRequest],
         position: int | None, who: SignedIn | None = None,
         grace: float | None = None, *, own_transaction: bool = True) -> dict[str, Any] | None:
    """Store a batch of saves of an attempt in progress; the same acks as
    ``service.save_responses``. None (nothing written): use the full path. ``who`` and
    ``grace`` as for :func:`heartbeat`. With ``own_transaction=False`` it neither commits nor
    rolls back: the caller does, for what was written (the lane's group commit runs each save
    in a savepoint of a shared transaction, and rolls the savepoint back on None)."""
    who = who or signed_in()
    grace = _grace() if grace is None else grace
    if who is None:
        return None
    now = utcnow()
    # each value in its item's shape, before any statement (published items' shapes are
    # kept by the process); whether the item is the attempt's is checked on its row below
    shapes = _shapes(session, {s.item_id for s in saves})
    rows = []
    for s in saves:
        shape = shapes.get(s.item_id)
        if shape is None:
            return _declined(session, own_transaction)
        try:
            value = item_type(shape.item_type).normalize(shape, s.value)
        except ResponseShapeError:
            return _declined(session, own_transaction)
        rows.append({"attempt_id": attempt_id, "item_version_id": s.item_id, "seq": s.seq,
                     "value": value, "flagged": s.flagged, "saved_at": now})
    dialect = _dialect(session)
    update_stmt, insert_stmt = _BUILT.get(("save", dialect)) or _save_statements(dialect)
    params = {"aid": attempt_id, "uid": who.user_id, "epoch": who.epoch,
              "top": max((s.seq for s in saves), default=0), "pos": position}
    together = dialect == "postgresql" and 0 < len(rows) <= ONE_STATEMENT_SAVES
    if together:  # the rows are inserted with the UPDATE, and undone below if they fail
        key = ("save_pg", len(rows))
        stmt = _BUILT.get(key)
        if stmt is None:
            stmt = _BUILT[key] = _save_statement_pg(len(rows))
        for i, r in enumerate(rows):
            params.update({f"{c}{i}": r[c] for c in _SAVE_COLUMNS})
        row = session.execute(stmt, {**params, "now": now}).first()
    else:
        row = session.execute(update_stmt, params).first()
    if row is None or row.deadline_at is None:
        return _declined(session, own_transaction)
    c = clock_from_row(row, now)
    order = row.item_order
    if (c.time_up(grace) or (c.paused and saves)
            or (position is not None and not 0 <= position < len(order))
            or not shapes.keys() <= set(order)):
        return _declined(session, own_transaction)
    stored: set[int] = set()
    if together:
        stored = set(row.stored or ())
    elif rows:
        stored = set(session.scalars(insert_stmt, rows))
    acks = []
    if len(stored) < len(rows):
        before = {r.seq: r for r in session.execute(
            select(_SAVES.c.seq, _SAVES.c.item_version_id, _SAVES.c.value, _SAVES.c.flagged)
            .where(_SAVES.c.attempt_id == attempt_id,
                   _SAVES.c.seq.in_([r["seq"] for r in rows if r["seq"] not in stored])))}
    for r in rows:
        if r["seq"] in stored:
            acks.append({"seq": r["seq"], "status": "saved"})
            continue
        prior = before.get(r["seq"])
        same = prior is not None and (prior.item_version_id, prior.value, prior.flagged) == (
            r["item_version_id"], r["value"], r["flagged"])
        acks.append({"seq": r["seq"], "status": "duplicate" if same else "conflict"})
    if own_transaction:
        session.commit()
    return {"acks": acks, "last_seq": row.last_seq,
            "clock": clock_payload(c, now, grace_seconds=grace)}


@dataclass(frozen=True)
class SaveWrite:
    """A save for the group commit or the node's writer (:mod:`microcred.writer`): plain
    values, called with a connection inside a transaction its caller commits; :func:`save`'s
    answer, or None (nothing of it may be kept: the full path answers)."""

    attempt_id: int
    saves: list[SaveRequest]
    position: int | None
    who: SignedIn
    grace: float

    def __call__(self, conn: Connection) -> dict[str, Any] | None:
        return save(conn, self.attempt_id, self.saves, self.position, self.who, self.grace,
                    own_transaction=False)


carries(SaveWrite, SignedIn, SaveRequest)  # it may be written by the node's writer
