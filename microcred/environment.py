"""The settings every package reads from the environment, in any process: where the instance
folder is and the public address Microcred is reached at. ``assessment.config.Settings`` (the
app's full configuration) reads these two here, so a package that needs only them (credentials,
outside a request) reads the same values without importing the app."""
from __future__ import annotations

import os
from pathlib import Path

#: The address of ``microcred serve``'s default bind, when ``MICROCRED_PUBLIC_URL`` is unset.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"


def instance_dir() -> Path:
    """``MICROCRED_INSTANCE_DIR`` (default: ``./instance``), created when missing."""
    path = Path(os.environ.get("MICROCRED_INSTANCE_DIR", Path.cwd() / "instance")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def public_url() -> str:
    """``MICROCRED_PUBLIC_URL``: the base of badge pages, status lists and credential ids."""
    return os.environ.get("MICROCRED_PUBLIC_URL", DEFAULT_PUBLIC_URL)


def lms_api_token() -> str | None:
    """``MICROCRED_LMS_API_TOKEN``: a bearer token an LMS may post training completions with
    (``/api/training-completions``), besides the tokens an admin issues; unset: none. Shorter
    than 32 characters is ignored (too easy to guess)."""
    token = os.environ.get("MICROCRED_LMS_API_TOKEN", "").strip()
    return token if len(token) >= 32 else None


def heartbeat_seconds() -> int:
    """``MICROCRED_HEARTBEAT_SECONDS``: how often the exam runner beats (default 30, from 2 to
    120). Each beat carries the proctor's pause, extension and messages and is the candidate's
    sign of life on the console, so a shorter beat shows them sooner at the cost of more
    requests per candidate (5,000 candidates at 30 s: about 170 requests/s)."""
    raw = os.environ.get("MICROCRED_HEARTBEAT_SECONDS", "30").strip() or "30"
    try:
        seconds = int(raw)
    except ValueError:
        raise ValueError(f"MICROCRED_HEARTBEAT_SECONDS must be a whole number of seconds, got "
                         f"{raw!r}") from None
    if not 2 <= seconds <= 120:
        raise ValueError(f"MICROCRED_HEARTBEAT_SECONDS must be from 2 to 120, got {seconds}")
    return seconds


def reminders_every_seconds() -> int | None:
    """How often the sweeper's leader queues the reminder emails: ``MICROCRED_REMINDERS_EVERY_
    SECONDS`` (default 3600; 0 turns it off). None, and nothing is scheduled, while no SMTP
    server is configured (``MICROCRED_SMTP_HOST`` unset): a fresh install has none to send to."""
    if not os.environ.get("MICROCRED_SMTP_HOST", "").strip():
        return None
    raw = os.environ.get("MICROCRED_REMINDERS_EVERY_SECONDS", "3600").strip() or "3600"
    try:
        every = int(raw)
    except ValueError:
        raise ValueError("MICROCRED_REMINDERS_EVERY_SECONDS must be a whole number of seconds, "
                         f"got {raw!r}") from None
    if every < 0:
        raise ValueError(f"MICROCRED_REMINDERS_EVERY_SECONDS must be 0 or more, got {every}")
    return every or None


def sqlite_synchronous() -> str:
    """``MICROCRED_SQLITE_SYNCHRONOUS``: ``FULL`` (default) or ``NORMAL``. FULL makes every
    commit durable before a save is acknowledged; NORMAL (WAL) is faster but can lose the last
    acknowledged saves on power loss (not on a crash). See docs/scale-out.md for the cost."""
    value = os.environ.get("MICROCRED_SQLITE_SYNCHRONOUS", "FULL").strip().upper() or "FULL"
    if value not in ("FULL", "NORMAL"):
        raise ValueError(f"MICROCRED_SQLITE_SYNCHRONOUS must be FULL or NORMAL, got {value!r}")
    return value


#: the database connections each process keeps open (``MICROCRED_DB_POOL_SIZE``)
DEFAULT_DB_POOL_SIZE = 30
MAX_DB_POOL_SIZE = 1000


def db_pool_size() -> int:
    """``MICROCRED_DB_POOL_SIZE``: the connections each process's engine keeps open (default
    30, from 1 to 1,000), and never more: a request beyond them waits for one to come back.
    SQLAlchemy's overflow connections, opened past the pool and closed again on their return,
    made a busy node open some 26 new PostgreSQL connections a second (a backend forked and
    signed in each time) and are not used. On PostgreSQL, every process of every node keeps up
    to this many: its ``max_connections`` must cover them all (docs/scale-out.md)."""
    raw = os.environ.get("MICROCRED_DB_POOL_SIZE", str(DEFAULT_DB_POOL_SIZE)).strip()
    try:
        size = int(raw or DEFAULT_DB_POOL_SIZE)
    except ValueError:
        raise ValueError(f"MICROCRED_DB_POOL_SIZE must be a whole number, got {raw!r}") from None
    if not 1 <= size <= MAX_DB_POOL_SIZE:
        raise ValueError(f"MICROCRED_DB_POOL_SIZE must be from 1 to {MAX_DB_POOL_SIZE}, got {size}")
    return size
