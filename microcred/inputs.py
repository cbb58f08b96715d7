"""Parsing what arrives from outside, at the edge, in one place: ids in URLs, JSON bodies,
timestamps, whole numbers in forms and URLs. Each parser refuses a value it cannot carry all the
way to the database with :class:`InvalidInput` (a 400 naming the field), so no later step (date
arithmetic, an INTEGER column, a recursive walk of a document) meets a value it overflows on.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

from flask import request
from werkzeug.routing import IntegerConverter

from microcred.errors import DomainError, Invalid

#: Primary keys are INTEGER columns: PostgreSQL's is signed 32-bit (SQLite's 64-bit is wider).
MAX_ID = 2**31 - 1
#: Nesting deeper than any document Microcred reads or writes (a credential nests about 6 deep).
MAX_JSON_DEPTH = 32
#: A JSON body larger than any the runner, the console or the verify API sends.
MAX_JSON_BYTES = 1024 * 1024
#: Times outside these years are refused: far enough for any real timestamp, and far enough
#: from datetime's limits (years 1 and 9999) that adding days or changing zone cannot overflow.
EARLIEST_YEAR, LATEST_YEAR = 1900, 9000


class InvalidInput(DomainError):
    """A value from the request that Microcred cannot take; ``field`` names it."""

    status, code = 400, "invalid_input"

    def __init__(self, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message, **({"field": field} if field else {}), **extra)
        self.field = field


class IdConverter(IntegerConverter):
    """The app's ``int`` URL converter: an id above the database's id range is not found (404),
    instead of overflowing the database driver. Negative numbers never match (unsigned)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


# --- JSON -------------------------------------------------------------------------------------

def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, counted without recursion (so a
    body of a million ``[`` costs one linear scan, not a RecursionError)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(data: bytes | str, *, where: str = "the body",
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON text, refusing what is not UTF-8, not JSON, or nested deeper than
    ``max_depth``; the message says what was wrong and where."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{where} is not UTF-8 text", field=where) from None
    if json_depth(data) > max_depth:
        raise InvalidInput(f"{where} nests arrays/objects deeper than {max_depth} levels",
                           field=where, max_depth=max_depth)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column "
                           f"{exc.colno}", field=where, line=exc.lineno,
                           column=exc.colno) from None
    except (ValueError, RecursionError):  # e.g. a number too long to convert
        raise InvalidInput(f"{where} is not valid JSON", field=where) from None


def json_body(*, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The request's JSON body, for every JSON endpoint: 415 if it is not declared JSON, 413 if
    it is larger than ``max_bytes``, 400 if it is not JSON or nests too deep."""
    from microcred.web import ApiError

    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "request_entity_too_large",
                       f"the JSON body is larger than {max_bytes} bytes")
    data = request.get_data(cache=True)
    if len(data) > max_bytes:
        raise ApiError(413, "request_entity_too_large",
                       f"the JSON body is larger than {max_bytes} bytes")
    try:
        return parse_json(data)
    except InvalidInput as exc:
        raise ApiError(400, "malformed_json", exc.message) from None


# --- times ------------------------------------------------------------------------------------

def object_list(payload: Any, key: str, *, most: int) -> list[tuple[str, dict[str, Any]]]:
    """The ``key`` list of a JSON object body (``{"saves": [...]}``), at most ``most`` entries,
    each an object: ``(where, entry)`` pairs, ``where`` naming the entry (``saves[3]``) for the
    caller's messages. Raises :class:`~microcred.errors.Invalid` naming what is wrong."""
    if not isinstance(payload, dict):
        raise Invalid(f"the body must be a JSON object whose '{key}' is a list")
    raw = payload.get(key, [])
    if not isinstance(raw, list):
        raise Invalid(f"'{key}' must be a list", field=key)
    if len(raw) > most:
        raise Invalid(f"at most {most} {key} per request", field=key)
    out = []
    for i, entry in enumerate(raw):
        where = f"{key}[{i}]"
        if not isinstance(entry, dict):
            raise Invalid(f"{where} must be an object", field=where)
        out.append((where, entry))
    return out


def parse_timestamp(value: Any, field: str) -> dt.datetime | None:
    """An ISO 8601 time with a zone, as UTC; None stays None. Refuses other types, naive times
    and years outside EARLIEST_YEAR..LATEST_YEAR (``0001-01-01T00:00:00+14:00`` is before year 1
    in UTC and cannot even be converted)."""
    if value is None:
        return None
    example = "e.g. 2026-01-01T09:00:00Z"
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be an ISO 8601 time with a zone, {example}",
                           field=field)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} is not an ISO 8601 time ({example}): {value[:40]!r}",
                           field=field) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{field} must carry a time zone (e.g. a trailing Z)", field=field)
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise InvalidInput(f"{field} must be between the years {EARLIEST_YEAR} and "
                           f"{LATEST_YEAR}", field=field)
    return parsed.astimezone(dt.UTC)


def add_days(moment: dt.datetime, days: int, field: str) -> dt.datetime:
    """``moment + days``, or InvalidInput naming ``field`` when that leaves datetime's range."""
    try:
        later = moment + dt.timedelta(days=days)
    except OverflowError:
        later = None
    if later is None or not EARLIEST_YEAR <= later.year <= LATEST_YEAR:
        raise InvalidInput(f"{field} of {days} days goes beyond the year {LATEST_YEAR}",
                           field=field)
    return later


# --- numbers and URLs ---------------------------------------------------------------------------

def is_whole(text: str, most: int = 18) -> bool:
    """Whether ``text`` is 1 to ``most`` decimal digits, as ``int()`` takes them: ``isdigit``
    also says yes to "²", which ``int`` refuses, and ``int`` refuses more than 4,300 digits;
    either way a ValueError where a clear error was meant."""
    return 0 < len(text) <= most and text.isdecimal()


def whole_number(raw: Any, field: str, *, low: int, high: int,
                 default: int | None = None) -> int | None:
    """A whole number from a form or query string, ``low..high``; empty gives ``default``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    text = str(raw).strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 20:
        raise InvalidInput(f"{field} must be a whole number from {low} to {high}", field=field)
    number = int(text)
    if not low <= number <= high:
        raise InvalidInput(f"{field} must be a whole number from {low} to {high}", field=field)
    return number


def form_id(field: str) -> int | None:
    """An optional id (e.g. a chosen exam) from the submitted form, within the id range."""
    return whole_number(request.form.get(field), field, low=1, high=MAX_ID)


def http_url(value: str | None, field: str, *, max_length: int = 2000) -> str | None:
    """An absolute http(s) URL with a host, or None for empty: ``javascript:``, ``data:`` and
    relative URLs are refused, because the URL is signed into documents and shown as a link."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters", field=field)
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host \
            or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise InvalidInput(f"{field} must be an http:// or https:// address", field=field)
    return value
