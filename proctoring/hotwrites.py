"""A camera frame and a batch of integrity events in their usual case: looked at before the
write lock, written under it in a few plain statements (a frame's four are one on PostgreSQL:
:func:`_frame_statement_pg`).

On SQLite a node's writers share one lock, and at a few thousand candidates it is what fills
first: what a writer does while holding it is what the node's capacity is. The full paths
(:func:`proctoring.events.record_snapshot`, :func:`proctoring.events.ingest_events`) load the
session row through the ORM under the lock, read what the rules need, and write through the
ORM's unit of work, on the request's own thread (a thread the group commit's leader must
hand the connection to, and wait for). Here the request does all of that reading first, in a
read transaction of its own (:func:`look_at_frame`, :func:`look_at_batch`); what is left for
the lock is a function of a connection and plain values (:class:`FrameWrite`,
:class:`BatchWrite`): on SQLite the group commit's leading thread runs it in the shared
transaction with no hand-over (``microcred.web.write_statements``).

The look decides whether the usual case applies. It does when nothing is to be flagged, no
plugin listens for integrity events, and the session's kept rule state is usable; otherwise
(a flag to raise, a plugin to tell, a state to rebuild, an empty batch: the page's ping) the
full path runs, as before. Under the lock the write's first statement, an UPDATE of the
session row ``RETURNING`` its rule state, checks that what was looked at still holds: the
session still takes frames and events, and its rule state is the one judged (it changes only
when events are judged). If not, or if a retried seq was stored meanwhile (the unique index
refuses the INSERT), nothing is kept and the full path runs, under the lock, from the start.
What the look read without the lock can only have moved one way meanwhile: a newer frame
makes the camera's gap shorter, and a stored flag stays stored; so "nothing to flag" stands.

So the answers are the full path's: the same rows, the same console count, the same acks.
One difference, for a retry of what is stored already: it is answered from the look, with no
write (the full path also noted the page as seen, which the page's heartbeat does anyway).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, bindparam, cast, insert, literal, null, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from microcred.errors import NotFound
from microcred.writer import carries
from proctoring import hook_outbox, hooks
from proctoring.events import (
    ACCEPTING,
    IMAGES,
    SESSIONS,
    SNAPSHOTS,
    EventIn,
    PreparedSnapshot,
    require_accepting,
    running_transitions,
    sort_batch,
    stored_flag_keys,
    stored_or_newest,
    stored_seqs,
)
from proctoring.flags import (
    EventState,
    History,
    missing_snapshot_limit_s,
    running_spans,
    snapshots_missing,
)
from proctoring.images import ImageVault
from proctoring.models import FaceCheck, IntegrityEvent
from proctoring.policy import ProctoringPolicy, parse_policy

_FACE_CHECKS = FaceCheck.__table__
_EVENTS = IntegrityEvent.__table__
_ACCEPTING = sorted(s.value for s in ACCEPTING)
_RULE_TEXT = cast(SESSIONS.c.rule_state, Text).label("rule_text")


@dataclass(frozen=True)
class _Session:
    """The session row's columns the look needs."""

    id: int
    policy: ProctoringPolicy
    rule_state: dict[str, Any] | None
    #: the rule state as stored (its text): what a batch's UPDATE compares before replacing it
    rule_text: str | None


@dataclass(frozen=True)
class _Frame:
    """A frame as the camera rule reads it (``flags.SnapshotLike``)."""

    seq: int
    faces: int | None
    server_at: dt.datetime


@dataclass(frozen=True)
class SignInCheck:
    """A condition the session's row is read under (the fast lane's: the candidate's sign-in
    still stands, ``assessment.delivery.hotlane``), with its parameters: no row, the full
    path's 404 (the fast lane then hands the request to Flask, which says why)."""

    clause: Any
    params: dict[str, Any]


#: statements built once (building one costs about as much as running it)
_BUILT: dict[Any, Any] = {}


def _built(key: Any, build: Any) -> Any:
    stmt = _BUILT.get(key)
    if stmt is None:
        stmt = _BUILT[key] = build()
    return stmt


def _session_statement(clause: Any) -> Any:
    stmt = (select(SESSIONS.c.candidate_id, SESSIONS.c.state, SESSIONS.c.policy,
                   SESSIONS.c.rule_state, _RULE_TEXT)
            .where(SESSIONS.c.id == bindparam("sid")))
    return stmt if clause is None else stmt.where(clause)


def _session(read: Session, session_id: int, candidate_id: int,
             check: SignInCheck | None = None) -> _Session:
    """The candidate's own session, still taking frames and events; the full path's 404 and
    409 otherwise (the same messages)."""
    clause = check and check.clause
    stmt = _built(("session", id(clause)), lambda: _session_statement(clause))
    row = read.execute(stmt, {"sid": session_id, **(check.params if check else {})}).first()
    if row is None or row.candidate_id != candidate_id:
        raise NotFound(f"no proctoring session {session_id}")
    require_accepting(row.state)
    parsed = parse_policy(row.policy)
    assert parsed is not None, "a proctored session always has a policy"
    return _Session(session_id, parsed, row.rule_state, row.rule_text)


def _all_stored(read: Session, session_id: int, specs: list[hooks.FlagSpec]) -> bool:
    """Whether every one of these flags is stored already (``events.raise_flags``' keys)."""
    wanted, have = stored_flag_keys(read, session_id, specs)
    return wanted <= have




# ---------------------------------------------------------------- a camera frame


def _seen_statement() -> Any:
    return (update(SESSIONS)
            .where(SESSIONS.c.id == bindparam("sid"), SESSIONS.c.state.in_(_ACCEPTING))
            .values(last_seen_at=bindparam("now", type_=SESSIONS.c.last_seen_at.type),
                    console_version=SESSIONS.c.console_version + 1)
            .returning(SESSIONS.c.rule_state))


def _judged_statement() -> Any:
    return (update(SESSIONS)
            .where(SESSIONS.c.id == bindparam("sid"), SESSIONS.c.state.in_(_ACCEPTING),
                   _RULE_TEXT == bindparam("judged", type_=Text()))
            .values(last_seen_at=bindparam("now", type_=SESSIONS.c.last_seen_at.type),
                    rule_state=bindparam("new_state", type_=SESSIONS.c.rule_state.type)))


_INSERT_IMAGE, _INSERT_SNAPSHOT = insert(IMAGES), insert(SNAPSHOTS)
_INSERT_FACE_CHECK, _INSERT_EVENTS = insert(_FACE_CHECKS), insert(_EVENTS)


def _typed(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


def _from_select(table: Any, given: dict[str, Any], source: Any = None) -> Any:
    """``INSERT INTO table ... SELECT``: the columns ``given`` (name -> expression), and every
    other column's scalar default as a literal (an INSERT of values gets them as parameters
    SQLAlchemy fills in, which it does not do inside a ``WITH``); ``source``: the SELECT's
    FROM, when no given expression names it."""
    values = dict(given)
    for column in table.c:
        default = column.default
        if column.name not in values and default is not None and default.is_scalar:
            values[column.name] = literal(default.arg, type_=column.type)
    rows = select(*values.values())
    return insert(table).from_select(list(values), rows if source is None else
                                     rows.select_from(source))


def _frame_statement_pg(columns: tuple[str, ...]) -> Any:
    """A frame's write on PostgreSQL in one statement: the session row seen (and locked), and
    only if it takes frames, the image, the snapshot and its face check inserted; it returns
    the session's rule state, or no row (nothing inserted). Data-modifying ``WITH`` clauses
    are PostgreSQL's (SQLite has none: there the four run one by one). ``columns``: the image
    row's (``ImageVault.row_values``), each a parameter ``img_<column>``."""
    seen = _seen_statement().cte("seen")
    # FROM seen: a session that takes no frames inserts nothing
    image = (_from_select(IMAGES, {c: _typed(f"img_{c}", IMAGES.c[c]) for c in columns}, seen)
             .returning(IMAGES.c.id).cte("image"))
    snap = (_from_select(SNAPSHOTS, {
        "session_id": _typed("sid", SNAPSHOTS.c.session_id), "seq": _typed("seq", SNAPSHOTS.c.seq),
        "image_id": image.c.id, "faces": null().cast(SNAPSHOTS.c.faces.type),
        "client_at": _typed("client_at", SNAPSHOTS.c.client_at),
        "server_at": _typed("now", SNAPSHOTS.c.server_at)})
            .returning(SNAPSHOTS.c.id).cte("snap"))
    face_check = _from_select(_FACE_CHECKS, {
        "snapshot_id": snap.c.id, "session_id": _typed("sid", _FACE_CHECKS.c.session_id),
        "server_at": _typed("now", _FACE_CHECKS.c.server_at)}).cte("face_check")
    return select(seen.c.rule_state).add_cte(face_check)


@dataclass(frozen=True)
class FrameWrite:
    """A frame's rows, to write under the lock (call it with the connection): its answer, or
    None when what was looked at no longer holds (nothing kept: the full path runs)."""

    session: _Session
    seq: int
    image_row: dict[str, Any]
    client_at: dt.datetime | None
    now: dt.datetime

    def __call__(self, conn: Connection) -> dict[str, Any] | None:
        sid, now = self.session.id, self.now
        if conn.dialect.name == "postgresql":
            # the four statements below as one: one round trip instead of four (the node's
            # writer runs its group's statements one after another, each a round trip)
            columns = tuple(self.image_row)
            params = {f"img_{k}": v for k, v in self.image_row.items()}
            got = conn.execute(_built(("frame_pg", columns),
                                      lambda: _frame_statement_pg(columns)), {
                **params, "sid": sid, "now": now, "seq": self.seq,
                "client_at": self.client_at}).first()
            if got is None:
                return None  # the session takes no frames: nothing was inserted
            return self._answer(got.rule_state)
        # the page is seen, and the frame moves the console's row (its newest frame), if the
        # session still takes frames
        got = conn.execute(_built("seen", _seen_statement), {"sid": sid, "now": now}).first()
        answer = None if got is None else self._answer(got.rule_state)
        if answer is None:
            return None
        image_id = conn.execute(_INSERT_IMAGE, self.image_row).inserted_primary_key[0]
        snap_id = conn.execute(_INSERT_SNAPSHOT, {
            "session_id": sid, "seq": self.seq, "image_id": image_id, "faces": None,
            "client_at": self.client_at, "server_at": now}).inserted_primary_key[0]
        # its faces are counted by the face checker, off the request (face_checks.queue)
        conn.execute(_INSERT_FACE_CHECK, {"snapshot_id": snap_id, "session_id": sid,
                                          "server_at": now})
        return answer

    def _answer(self, rule_state: Any) -> dict[str, Any] | None:
        """The frame's answer given the session's rule state as it stands under the lock; None
        when a batch judged meanwhile makes a rule due now (its caller keeps nothing: the full
        path raises the flag)."""
        if rule_state != self.session.rule_state:
            # a batch was judged meanwhile: the rules due by now, from its state (no query)
            state = EventState.from_json(rule_state)
            if state is not None and state.advance(self.session.policy, [], self.now):
                return None
        return {"seq": self.seq, "status": "stored", "faces": None}


def look_at_frame(read: Session, *, session_id: int, candidate_id: int, seq: int,
                  image: PreparedSnapshot, vault: ImageVault, client_at: dt.datetime | None,
                  now: dt.datetime, check: SignInCheck | None = None,
                  ) -> dict[str, Any] | FrameWrite | None:
    """A frame, looked at before the lock (``read``: a read-only session): the answer to a
    retried seq already stored; the write for the usual case; or None: the full path
    (``events.record_snapshot``), when the frame raises a flag or its faces are counted
    already. Raises the full path's 404 and 409."""
    ps = _session(read, session_id, candidate_id, check)
    found = stored_or_newest(read, session_id, seq)
    for row in found:
        if row.seq == seq:
            return {"seq": seq, "status": "duplicate", "faces": row.faces}
    if image.faces is not None:  # counted on the request: the full path judges them
        return None
    pol, before = ps.policy, (found[0] if found else None)
    specs: list[hooks.FlagSpec] = []
    limit = missing_snapshot_limit_s(pol)
    if limit > 0 and (before is None or (now - before.server_at).total_seconds() > limit):
        # the camera's gap this frame closes may be too long in exam time: judge it
        running = running_spans(read.execute(running_transitions([session_id])).all())
        specs += snapshots_missing(pol, History(events=[], snapshots=[_Frame(seq, None, now)],
                                                now=now, since=before, running=running))
    state = EventState.from_json(ps.rule_state)
    if state is not None:  # rules due by now (an open full-screen exit)
        specs += state.advance(pol, [], now)
    if specs and not _all_stored(read, session_id, specs):
        return None
    return FrameWrite(ps, seq, vault.row_values(image.sealed, session_id=session_id, now=now),
                      client_at, now)


# ---------------------------------------------------------------- a batch of events


@dataclass(frozen=True)
class BatchWrite:
    """A batch's new events and the rule state after them, to write under the lock: its
    answer, or None when what was looked at no longer holds (the full path runs)."""

    session: _Session
    rows: list[dict[str, Any]]
    rule_state: dict[str, Any]
    answer: dict[str, Any]
    now: dt.datetime

    def __call__(self, conn: Connection) -> dict[str, Any] | None:
        # the new rule state replaces the one judged, or nothing happens (another batch was
        # judged meanwhile, or the session stopped): the full path judges this one again
        # (compared as stored, text: a state written in another form only costs that path);
        # on PostgreSQL this locks the row
        moved = conn.execute(_built("judged", _judged_statement), {
            "sid": self.session.id, "judged": self.session.rule_text, "now": self.now,
            "new_state": self.rule_state}).rowcount
        if moved != 1:
            return None
        conn.execute(_INSERT_EVENTS, self.rows)  # one statement for the batch
        return self.answer


def look_at_batch(read: Session, *, session_id: int, candidate_id: int,
                  batch: list[EventIn], now: dt.datetime, check: SignInCheck | None = None,
                  ) -> dict[str, Any] | BatchWrite | None:
    """A batch of events, looked at before the lock: the answer when every event of it is
    stored already (a retry); the write for the usual case; or None: the full path
    (``events.ingest_events``) for a ping (an empty batch), a batch that raises a flag, one a
    plugin must hear of, or one older than what was judged. Raises the full path's 404 and
    409."""
    if not batch:
        return None  # the page's ping: the camera rule over the silence so far
    ps = _session(read, session_id, candidate_id, check)
    acks, new = sort_batch(batch, stored_seqs(read, session_id, batch), now)
    answer = {"acks": acks, "flags": [], "server_now": now.isoformat()}
    if not new:
        return answer
    state = EventState.from_json(ps.rule_state)
    if (state is None or ps.rule_text is None or min(e.seq for e in new) <= state.seq
            or hook_outbox.listening_for_events()):
        return None
    specs = state.advance(ps.policy, new, now)
    if specs and not _all_stored(read, session_id, specs):
        return None  # a flag: the full path raises it
    rows = [{"session_id": session_id, "seq": e.seq, "kind": e.kind, "client_at": e.client_at,
             "server_at": now, "detail": e.detail} for e in new]
    return BatchWrite(ps, rows, state.as_json(), answer, now)


# a frame's and a batch's writes may be written by the node's writer (``microcred.writer``)
carries(FrameWrite, BatchWrite, _Session, ProctoringPolicy)
