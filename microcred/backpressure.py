"""Backpressure: beyond its capacity a web process answers the runner's API with 503 and
``Retry-After`` at once, instead of queueing requests until every candidate waits seconds.

Each process lets at most ``limit`` API requests (paths under ``/api/``) be in flight at once;
one more is answered straight away, without touching the database, with::

    503 Service Unavailable
    Retry-After: <seconds>
    {"error": "busy", "message": "...", "retry_after": <seconds>}

The runner's save queue keeps the answers on the candidate's device, shows "Saving…" and sends
them again after that many seconds (``static/delivery/runner.js``); a heartbeat or a proctoring
event batch is simply sent again later. Pages (sign-in, start, the runner page) are not limited
here: a person is waiting on them, and the exam-day start spike is absorbed by their own speed.

The limit acts only where a process runs more requests at once than the limit: the request
that finds every slot taken needs a thread of its own to be answered 503. So ``microcred
serve`` runs gunicorn's threaded (gthread) workers with ``threads_for_limit(limit)`` threads
each by default: ``limit`` for the requests let in, ``SPARE_THREADS`` more that answer the
others 503 at once. With gunicorn's sync workers (``--threads 1``), or no more threads than the
limit, the limit is never reached: requests beyond the threads wait in the listen backlog or in
the worker's queue, and their latency grows with the load, without a 503 (``serve`` says so
when it starts). Measured in docs/scale-out.md, "Backpressure under the default serve": 300
candidates saving every 0.05 s on a busy 2-core machine, the former sync default queued every
save request (p99 3.8 s, no 503); the threaded one turned some away with 503 and answered at
p99 2.2 s, twice the requests per second.

What is bounded is the work inside a process (at most ``limit`` requests share its CPU and
the database); gthread still queues the requests beyond its threads, so under a deep
overload a request also waits its turn for a thread, for a spare thread's 503 if not for a
slot (about a millisecond each).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

#: API requests in flight per process (``MICROCRED_MAX_IN_FLIGHT``; 0: no limit). What it
#: bounds is the work queued in a worker: about 90 ms of it at the ~1.6 ms of CPU a runner
#: request costs today (24, the limit until 2026-11-27, was chosen at ~5 ms a request, and
#: turned requests away in the 100-150 ms stalls a node meets under 5,000 candidates:
#: docs/scale-out.md, "5,000 proctored candidates per node")
DEFAULT_LIMIT = 56
#: what a turned-away client is told to wait, in seconds (``MICROCRED_RETRY_AFTER_SECONDS``)
DEFAULT_RETRY_AFTER_S = 2
#: threads per worker beyond the limit (``microcred serve``'s default): they answer the
#: requests that find every slot taken, 503 at once, instead of leaving them queued
SPARE_THREADS = 8


def threads_for_limit(limit: int) -> int:
    """Threads a worker needs for ``limit`` requests in flight to act (0: no limit): the
    limit, and ``SPARE_THREADS`` to turn the next ones away."""
    if limit < 0:
        raise ValueError(f"limit must be 0 (no limit) or more, got {limit}")
    return limit + SPARE_THREADS


class InFlightLimit:
    """WSGI middleware: at most ``limit`` requests under ``prefixes`` in flight in this
    process; one more gets an immediate 503 with ``Retry-After: retry_after_s``."""

    def __init__(self, app: Callable, *, limit: int, retry_after_s: int = DEFAULT_RETRY_AFTER_S,
                 prefixes: tuple[str, ...] = ("/api/",)) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if retry_after_s < 1:
            raise ValueError(f"retry_after_s must be at least 1, got {retry_after_s}")
        self.app, self.limit, self.retry_after_s, self.prefixes = app, limit, retry_after_s, prefixes
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.turned_away = 0
        body = {"error": "busy", "retry_after": retry_after_s,
                "message": f"the server is busy; try again in {retry_after_s} s (nothing was "
                           "stored from this request)"}
        self._busy_body = json.dumps(body).encode()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(self.prefixes):
            return self.app(environ, start_response)
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.turned_away += 1
            start_response("503 Service Unavailable", [
                ("Content-Type", "application/json"), ("Retry-After", str(self.retry_after_s)),
                ("Content-Length", str(len(self._busy_body))), ("Cache-Control", "no-store")])
            return [self._busy_body]
        with self._lock:
            self.in_flight += 1
        try:
            # the slot is given back when the app has made its response: what is left (sending
            # it) waits on the network, not on the CPU or the database
            return self.app(environ, start_response)
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self.in_flight -= 1
        self._slots.release()
