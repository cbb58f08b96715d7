"""Configuration from the environment, with safe defaults that need no set-up.

Every setting is read from a ``MICROCRED_*`` variable. The defaults give an embedded SQLite
database and a secret key generated once into ``instance/`` (never into the repository).
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from microcred.backpressure import DEFAULT_LIMIT
from microcred.environment import DEFAULT_PUBLIC_URL, instance_dir, public_url
from microcred.keyfile import read_or_create
from microcred.writer import SOCKET_ENV


def _secret_key(instance: Path) -> str:
    """The key that signs sessions: from the environment, else a random one kept in instance/."""
    env = os.environ.get("MICROCRED_SECRET_KEY")
    if env:
        return env
    return read_or_create(instance / "secret_key", lambda: secrets.token_urlsafe(48))


def served_at(host: str, port: int) -> str:
    """The base URL a server bound to ``host:port`` answers on, for when
    ``MICROCRED_PUBLIC_URL`` is not set (a wildcard address is reached through the loopback)."""
    if host in {"", "0.0.0.0", "::"}:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ConfigError(ValueError):
    """A ``MICROCRED_*`` variable holds a value Microcred cannot use; the message names it."""


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def _number(name: str, default: float, kind: type = int, minimum: float = 0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return kind(default)
    try:
        value = kind(raw.strip())
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name} must be {noun}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _queue_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigError(f"MICROCRED_JOBS_QUEUE must be 1-64 letters, digits, '-', '_' or '.', "
                          f"got {raw!r}")
    return name


#: starts per second one 2-core node admits (MICROCRED_START_RATE; measured, see Settings)
DEFAULT_START_RATE = 20.0


@dataclass
class Settings:
    """Everything Microcred reads from its environment."""

    instance_dir: Path
    database_url: str
    secret_key: str
    cookie_secure: bool = True
    save_grace_seconds: float = 5.0
    max_body_bytes: int = 64 * 1024
    signin_max_failures_per_account: int = 5
    signin_max_failures_per_address: int = 30
    signin_window_seconds: int = 900
    #: After the free tries, each sign-in try waits twice as long as the last, from the base
    #: up to the cap (assessment/signin_throttle.py).
    signin_backoff_base_seconds: float = 2.0
    signin_backoff_cap_seconds: float = 300.0
    redis_url: str | None = None
    #: The job queue's name (huey's): installs sharing one Redis each need their own.
    jobs_queue: str = "microcred"
    public_base_url: str = DEFAULT_PUBLIC_URL
    #: Scored responses a pretest item needs before it is flagged ready for calibration and
    #: review (the item bank's list and review queue).
    pretest_min_responses: int = 200
    #: Backpressure (microcred/backpressure.py): API requests in flight per web process before
    #: one more is answered 503 at once (0: no limit), and the Retry-After it carries.
    max_in_flight: int = DEFAULT_LIMIT
    retry_after_seconds: int = 2
    #: SQLite: the fast lane's saves that arrive together in a threaded web process commit in
    #: one transaction (one fsync), each acknowledged after that commit
    #: (assessment/delivery/groupcommit.py). Off: every save commits on its own.
    group_commit: bool = True
    #: The node's writer process (microcred/writer.py), whose Unix socket ``microcred serve``
    #: sets in ``MICROCRED_WRITER_SOCKET`` for its web workers: the runner's frequent plain
    #: writes go to it. None: the web processes write them themselves.
    writer_socket: str | None = None
    #: The waiting room (assessment/delivery/waiting_room.py): attempts the deployment starts per
    #: second at most; beyond it a start waits in line, answered at once with its place (0: no
    #: waiting room). The default is derived, not yet confirmed on a quiet machine: a start with
    #: its runner page measured ~33 ms of server CPU (bench/exam_day.py --spike, loaded), so 20
    #: a second take two thirds of a core of a 2-core node, leaving the rest to the line's own
    #: answers (~6 ms each) and the exams running. Set nodes x what one node sustains.
    start_rate: float = DEFAULT_START_RATE
    #: Reports suppress a cell (a group, a month, a form) with fewer candidates than this, and
    #: DIF leaves out a form where either group is smaller.
    report_min_group: int = 5

    @classmethod
    def from_env(cls) -> Settings:
        instance = instance_dir()
        return cls(
            instance_dir=instance,
            database_url=os.environ.get(
                "MICROCRED_DATABASE_URL", f"sqlite:///{instance / 'microcred.db'}"
            ),
            secret_key=_secret_key(instance),
            cookie_secure=_flag("MICROCRED_COOKIE_SECURE", True),
            save_grace_seconds=_number("MICROCRED_SAVE_GRACE_SECONDS", 5.0, float),
            max_body_bytes=_number("MICROCRED_MAX_BODY_BYTES", 64 * 1024, minimum=1024),
            signin_max_failures_per_account=_number("MICROCRED_SIGNIN_MAX_FAILURES", 5, minimum=1),
            signin_max_failures_per_address=_number(
                "MICROCRED_SIGNIN_MAX_FAILURES_PER_ADDRESS", 30, minimum=1
            ),
            signin_window_seconds=_number("MICROCRED_SIGNIN_WINDOW_SECONDS", 900, minimum=1),
            signin_backoff_base_seconds=_number(
                "MICROCRED_SIGNIN_BACKOFF_BASE_SECONDS", 2.0, float, minimum=0.1),
            signin_backoff_cap_seconds=_number(
                "MICROCRED_SIGNIN_BACKOFF_CAP_SECONDS", 300.0, float, minimum=1),
            redis_url=os.environ.get("MICROCRED_REDIS_URL") or None,
            jobs_queue=_queue_name(os.environ.get("MICROCRED_JOBS_QUEUE") or "microcred"),
            public_base_url=public_url(),
            pretest_min_responses=_number("MICROCRED_PRETEST_MIN_RESPONSES", 200, minimum=1),
            max_in_flight=_number("MICROCRED_MAX_IN_FLIGHT", DEFAULT_LIMIT, minimum=0),
            retry_after_seconds=_number("MICROCRED_RETRY_AFTER_SECONDS", 2, minimum=1),
            group_commit=_flag("MICROCRED_GROUP_COMMIT", True),
            writer_socket=os.environ.get(SOCKET_ENV) or None,
            start_rate=_number("MICROCRED_START_RATE", DEFAULT_START_RATE, float),
            report_min_group=_number("MICROCRED_REPORT_MIN_GROUP", 5, minimum=1),
        )
