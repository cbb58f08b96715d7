"""The console's delta feed: what a proctor's page already shows, as a cursor, and what changed.

A poll without a cursor gets every row (a full snapshot) and a cursor; a poll with that cursor
gets only the rows that changed since (``changed``) and the ids that left the view
(``removed``: a finished session after its recent-minutes, or one no longer assigned), plus a
new cursor. Nothing changed: an empty delta, or ``304 Not Modified`` when the page sends the
last ``ETag`` as ``If-None-Match``.

An unchanged view is found without building it. Each session has a *mark*, a 32-bit digest of
the few columns that move whenever something the console shows of it is written
(:func:`proctoring.wiring.console_marks`, one statement for all the viewer's sessions): its
state, risk score and change counter (``console_version``, moved in the writer's transaction
by every flag, snapshot, identity check and transition), its connection (online, or since when
it is lost), and its attempt's save sequence, position and stored clock. The cursor carries,
per session on the page, the mark it was built at and the next instant at which its row
changes with the clock alone (*due*: the time running out, the camera becoming overdue, then
past its limit and flagged). A poll reads the marks and rebuilds only the rows whose mark moved
or whose due instant passed, plus the sessions new to the view; everything else is carried
over from the cursor. So the writers that are many (saves, heartbeats) write nothing for the
console, and no row is shared between candidates (no hot counter): the marks are columns of
each candidate's own rows. What moves with the clock alone (``remaining_s``, ``last_seen_s``,
the camera's ``silent_s``, the snapshot's age) the page counts on from the row's instants
(``ends_at_s``, ``last_seen_at_s``, ``silent_from_s``); what that clock turns into a different
row is a due instant.

Marks are compared for equality, never ordered, so no commit-order gap can skip a change: the
marks are read before the rows are built, so a write between the two shows in the rows now and
in a moved mark at the next poll (the row is then sent again, unchanged). The server keeps
nothing per page (any node answers any poll). The cursor is not a credential: it only says what
the page holds; the rows are always the viewer's own, so a forged cursor can only cost its
sender rows, never show another proctor's sessions.

Format: ``c2.`` + base64url of: issued-at (4 bytes, epoch seconds), then per session in id
order, the id's gap from the previous id (unsigned LEB128), the mark (4 bytes) and the due
instant as seconds after issued-at plus one (unsigned LEB128; 0: none): about 7-8 bytes a
session (200 sessions: about 2 KB of query string). A ``c1.`` cursor (before marks) gets a
full snapshot.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from microcred.errors import DomainError

#: a cursor older than this gets a full snapshot (the page may have slept)
MAX_AGE_S = 30 * 60
#: a cursor issued later than now plus this is refused (clock skew between nodes tolerated)
FUTURE_SKEW_S = 60
#: the longest cursor accepted (about 10,000 sessions)
MAX_CURSOR_CHARS = 110_000
PREFIX = "c2."
#: cursors of an earlier format: answered with a full snapshot, not refused
OLD_PREFIXES = ("c1.",)
#: the mark of a row built without one (it appeared between the marks and the rows): rebuilt
#: at the next poll
NO_MARK = b"\0\0\0\0"


class BadCursor(DomainError):
    """The cursor is not one this server issued, or was issued in the future."""

    status, code = 400, "bad_cursor"


class Held(NamedTuple):
    """What the page holds of one session: the mark its row was built at, and the instant
    (epoch s) its row changes with the clock alone (None: not by the clock)."""

    mark: bytes
    due_s: int | None


def due_s(row: dict[str, Any], now_s: float) -> int | None:
    """The next instant (epoch s, after ``now_s``) at which ``row`` would be built differently
    with nothing written: the time running out (``ends_at_s``: time left becomes none), the
    camera's silence reaching two intervals (overdue) and then passing its limit (flagged).
    Never earlier than the next second, so an instant a rounding put a moment early is
    looked at again rather than lost."""
    due: list[int] = []
    if row.get("ends_at_s"):
        due.append(row["ends_at_s"])
    cam = row.get("camera")
    if cam and cam.get("silent_from_s") is not None:  # running: the silence grows
        start = cam["silent_from_s"]
        if cam["silent_s"] < 2 * cam["interval_s"]:
            due.append(start + 2 * cam["interval_s"])
        if cam["silent_s"] <= cam["limit_s"]:
            due.append(start + cam["limit_s"] + 1)
    if not due:
        return None
    return max(min(due), int(now_s) + 1)


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_leb128(raw: bytes, i: int) -> tuple[int, int]:
    n, shift = 0, 0
    while True:
        if i >= len(raw) or shift > 35:
            raise BadCursor(f"cursor: malformed at byte {i}")
        b = raw[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def encode(issued_s: int, held: dict[int, Held]) -> str:
    buf = bytearray(struct.pack(">I", issued_s))
    prev = 0
    for sid in sorted(held):
        mark, due = held[sid]
        buf += _leb128(sid - prev) + mark
        buf += _leb128(0 if due is None else max(due - issued_s, 0) + 1)
        prev = sid
    return PREFIX + base64.urlsafe_b64encode(bytes(buf)).decode().rstrip("=")


def decode(cursor: str, now_s: int) -> tuple[int, dict[int, Held]]:
    """``(issued_s, {session id: Held})``; :class:`BadCursor` naming what is wrong."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise BadCursor(f"cursor: longer than {MAX_CURSOR_CHARS} characters")
    if not cursor.startswith(PREFIX):
        raise BadCursor(f"cursor: must start with {PREFIX!r} (one this server issued)")
    body = cursor[len(PREFIX):]
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise BadCursor("cursor: not base64url") from None
    if len(raw) < 4:
        raise BadCursor("cursor: too short")
    (issued,) = struct.unpack(">I", raw[:4])
    if issued > now_s + FUTURE_SKEW_S:
        raise BadCursor(f"cursor: issued in the future ({issued - now_s} s ahead of the server)")
    out: dict[int, Held] = {}
    i, sid = 4, 0
    while i < len(raw):
        gap, i = _read_leb128(raw, i)
        if gap == 0 and out:
            raise BadCursor(f"cursor: session ids out of order at byte {i}")
        if i + 4 > len(raw):
            raise BadCursor(f"cursor: truncated at byte {i}")
        sid += gap
        mark = raw[i:i + 4]
        due, i = _read_leb128(raw, i + 4)
        out[sid] = Held(mark, None if due == 0 else issued + due - 1)
    return issued, out


def etag(held: dict[int, Held]) -> str:
    """Names the view the page holds: the same marks and due instants, the same rows."""
    h = hashlib.blake2b(digest_size=12)
    for sid in sorted(held):
        mark, due = held[sid]
        h.update(struct.pack(">Qq", sid, -1 if due is None else due) + mark)
    return f'W/"{h.hexdigest()}"'


def feed(marks: dict[int, bytes], build: Callable[[list[int] | None], list[dict[str, Any]]],
         cursor: str | None, now_s: float) -> dict[str, Any]:
    """The payload for a poll: a full snapshot (no cursor, or one too old) or the delta since
    ``cursor``. ``marks``: each session in the viewer's view and its mark, read *before* any
    row is built; ``build(ids)``: the rows of those sessions (``None``: all). Raises
    :class:`BadCursor`. ``etag`` names the view the page holds after it; ``rebuilt`` says how
    many rows were built (for the benches)."""
    now_i = int(now_s)
    held: dict[int, Held] | None = None
    reason = None
    if cursor and cursor.startswith(OLD_PREFIXES):
        reason = "cursor of an earlier format"
    elif cursor:
        issued, held = decode(cursor, now_i)
        if now_i - issued > MAX_AGE_S:
            held, reason = None, f"cursor older than {MAX_AGE_S // 60} minutes"
    out: dict[str, Any] = {"server_now_s": now_s}
    if reason:
        out["reason"] = reason
    if held is None:
        rows = build(None)
        now_held = {r["id"]: Held(marks.get(r["id"], NO_MARK), due_s(r, now_s)) for r in rows}
        out.update(cursor=encode(now_i, now_held), etag=etag(now_held), full=True,
                   sessions=rows, rebuilt=len(rows))
        return out
    stale = [sid for sid, mark in marks.items()
             if (h := held.get(sid)) is None or h.mark != mark
             or (h.due_s is not None and h.due_s <= now_s)]
    rows = build(stale) if stale else []
    built = {r["id"] for r in rows}
    now_held = {sid: h for sid, h in held.items() if sid in marks and sid not in stale}
    for r in rows:
        now_held[r["id"]] = Held(marks.get(r["id"], NO_MARK), due_s(r, now_s))
    out.update(cursor=encode(now_i, now_held), etag=etag(now_held), full=False, changed=rows,
               removed=sorted(set(held) - set(now_held)), rebuilt=len(built))
    return out
