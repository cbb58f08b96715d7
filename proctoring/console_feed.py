"""The console's delta feed: what a proctor's page already shows, as a cursor, and what changed.

A poll without a cursor gets every row (a full snapshot) and a cursor; a poll with that cursor
gets only the rows whose content changed since (``changed``) and the ids that left the view
(``removed``: a finished session after its recent-minutes, or one no longer assigned), plus a
new cursor. Nothing changed: an empty delta, or ``304 Not Modified`` when the page sends the
last ``ETag`` as ``If-None-Match``.

Changes are found by content, not by time: the cursor carries, per session on the page, a
32-bit digest of the row's steady content (the fields that move with the clock alone,
``remaining_s``, ``last_seen_s``, the camera's ``silent_s``, the snapshot's age, are left out:
the page counts them on from the row's instants ``ends_at_s``, ``last_seen_at_s`` and
``silent_from_s``). So there is no clock tie, no commit-order gap between two writers and no
change sequence to keep on the hot paths (saves, heartbeats, events): whatever the write, the
row it changes differs from the page's copy. The server keeps nothing per page (any node
answers any poll). The cursor is not a credential: it only says what the page holds; the rows
are always the viewer's own (``live_sessions``), so a forged cursor can only cost its sender
rows, never show another proctor's sessions.

Format: ``c1.`` + base64url of: issued-at (4 bytes, epoch seconds), then per session in id
order, the id's gap from the previous id (unsigned LEB128) and the digest (4 bytes): about
5-6 bytes a session (200 sessions: about 1.5 KB of query string).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from typing import Any

from microcred.errors import DomainError

#: a cursor older than this gets a full snapshot (the page may have slept)
MAX_AGE_S = 30 * 60
#: a cursor issued later than now plus this is refused (clock skew between nodes tolerated)
FUTURE_SKEW_S = 60
#: the longest cursor accepted (about 10,000 sessions)
MAX_CURSOR_CHARS = 80_000
PREFIX = "c1."

#: fields that move with the clock alone; the page computes them from the row's instants
_VOLATILE = ("remaining_s", "last_seen_s", "last_seen_at_s")


class BadCursor(DomainError):
    """The cursor is not one this server issued, or was issued in the future."""

    status, code = 400, "bad_cursor"


def steady(row: dict[str, Any]) -> dict[str, Any]:
    """The row without what changes with the clock alone (what the digest covers)."""
    out = {k: v for k, v in row.items() if k not in _VOLATILE}
    if row.get("snapshot"):
        out["snapshot"] = {k: v for k, v in row["snapshot"].items() if k != "age_s"}
    cam = row.get("camera")
    if cam:
        # the silence's length is the page's to count; whether it is overdue or past the
        # limit is a change of what the page shows, so those are in
        out["camera"] = {k: v for k, v in cam.items() if k not in ("silent_s", "silent_from_s")}
        out["camera"]["overdue"] = cam["silent_s"] >= 2 * cam["interval_s"]
        out["camera"]["late"] = cam["silent_s"] > cam["limit_s"]
        if cam.get("silent_from_s") is None:  # paused: the silence stands still, show it
            out["camera"]["silent_s"] = cam["silent_s"]
    if row.get("paused"):  # paused: the time left stands still
        out["remaining_s"] = row.get("remaining_s")
    if row.get("connection") == "lost":  # the page shows "lost (N s ago)" from this instant
        out["last_seen_at_s"] = row.get("last_seen_at_s")
    return out


def digest(row: dict[str, Any]) -> bytes:
    text = json.dumps(steady(row), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=4).digest()


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


def encode(issued_s: int, digests: dict[int, bytes]) -> str:
    buf = bytearray(struct.pack(">I", issued_s))
    prev = 0
    for sid in sorted(digests):
        buf += _leb128(sid - prev) + digests[sid]
        prev = sid
    return PREFIX + base64.urlsafe_b64encode(bytes(buf)).decode().rstrip("=")


def decode(cursor: str, now_s: int) -> tuple[int, dict[int, bytes]]:
    """``(issued_s, {session id: digest})``; :class:`BadCursor` naming what is wrong."""
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
    out: dict[int, bytes] = {}
    i, sid = 4, 0
    while i < len(raw):
        gap, shift = 0, 0
        while True:
            if i >= len(raw) or shift > 35:
                raise BadCursor(f"cursor: malformed at byte {i}")
            b = raw[i]
            i += 1
            gap |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if gap == 0 and out:
            raise BadCursor(f"cursor: session ids out of order at byte {i}")
        if i + 4 > len(raw):
            raise BadCursor(f"cursor: truncated at byte {i}")
        sid += gap
        out[sid] = raw[i:i + 4]
        i += 4
    return issued, out


def etag(digests: dict[int, bytes]) -> str:
    h = hashlib.blake2b(digest_size=12)
    for sid in sorted(digests):
        h.update(struct.pack(">Q", sid) + digests[sid])
    return f'W/"{h.hexdigest()}"'


def feed(rows: list[dict[str, Any]], cursor: str | None, now_s: float) -> dict[str, Any]:
    """The payload for a poll: a full snapshot (no cursor, or one too old) or the delta since
    ``cursor``. Raises :class:`BadCursor`. ``etag`` names the view the page holds after it."""
    now_i = int(now_s)
    digests = {r["id"]: digest(r) for r in rows}
    out: dict[str, Any] = {"server_now_s": now_s, "cursor": encode(now_i, digests),
                           "etag": etag(digests)}
    held: dict[int, bytes] | None = None
    if cursor:
        issued, held = decode(cursor, now_i)
        if now_i - issued > MAX_AGE_S:
            held, out["reason"] = None, f"cursor older than {MAX_AGE_S // 60} minutes"
    if held is None:
        out.update(full=True, sessions=rows)
        return out
    out.update(full=False, changed=[r for r in rows if held.get(r["id"]) != digests[r["id"]]],
               removed=sorted(set(held) - set(digests)))
    return out
