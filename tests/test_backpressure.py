"""Backpressure (microcred/backpressure.py): beyond its limit a process answers the runner's
API with 503 and Retry-After at once, lets pages through, and frees its slots whatever the
request's end (a response read to its end, closed early, or an exception)."""
from __future__ import annotations

import json
import threading

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from microcred.backpressure import DEFAULT_LIMIT, SPARE_THREADS, InFlightLimit, threads_for_limit


def _get(app, path):
    """A request as a server makes it: the response read to its end and closed."""
    return Client(app).get(path, buffered=True)


def _blocking_app():
    """A WSGI app whose requests wait for ``release`` (so they stay in flight)."""
    release = threading.Event()
    entered = threading.Semaphore(0)

    def app(environ, start_response):
        if environ["PATH_INFO"].endswith("/boom"):
            raise RuntimeError("boom")
        entered.release()
        release.wait(10)
        return Response("ok")(environ, start_response)

    return app, release, entered


def test_beyond_the_limit_api_requests_get_503_with_retry_after_at_once():
    app, release, entered = _blocking_app()
    limited = InFlightLimit(app, limit=2, retry_after_s=3)
    held = [threading.Thread(target=_get, args=(limited, "/api/x")) for _ in range(2)]
    for t in held:
        t.start()
    for _ in held:
        assert entered.acquire(timeout=5)
    assert limited.in_flight == 2
    busy = _get(limited, "/api/attempts/1/saves")
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "3"
    assert json.loads(busy.data) == {**json.loads(busy.data), "error": "busy", "retry_after": 3}
    assert limited.turned_away == 1
    release.set()
    for t in held:
        t.join(5)
    assert limited.in_flight == 0
    assert _get(limited, "/api/x").status_code == 200


def test_pages_are_not_limited():
    app, release, entered = _blocking_app()
    limited = InFlightLimit(app, limit=1)
    t = threading.Thread(target=_get, args=(limited, "/api/x"))
    t.start()
    assert entered.acquire(timeout=5)
    release.set()  # the page request below runs through at once
    assert _get(limited, "/exams").status_code == 200
    t.join(5)


def test_slots_are_freed_after_an_exception_and_an_unread_response():
    """Given back as soon as the app has made its response, read or not."""
    app, release, _ = _blocking_app()
    release.set()
    limited = InFlightLimit(app, limit=1)
    with pytest.raises(RuntimeError):
        _get(limited, "/api/boom")
    assert limited.in_flight == 0
    response = Client(limited).get("/api/x", buffered=False)
    response.close()
    assert limited.in_flight == 0
    assert _get(limited, "/api/x").status_code == 200


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="limit"):
        InFlightLimit(lambda e, s: [], limit=0)
    with pytest.raises(ValueError, match="retry_after_s"):
        InFlightLimit(lambda e, s: [], limit=1, retry_after_s=0)


def test_the_app_is_limited_by_its_settings(app):
    limiter = app.extensions["microcred.backpressure"]
    # 56 by default: ~90 ms of queued work at ~1.6 ms a request (microcred.backpressure)
    assert isinstance(limiter, InFlightLimit) and limiter.limit == DEFAULT_LIMIT == 56


def test_serve_runs_more_threads_than_the_limit_by_default():
    """A request beyond the limit needs a thread of its own to be turned away: each worker of
    either server gets the limit's threads and spare ones; what the operator sets is kept."""
    import os

    from assessment.cli import serve_shape

    threaded_workers = max(2, os.cpu_count() or 1)
    for kind in ("granian", "gunicorn"):
        assert serve_shape(kind, None, None, 24) == (threaded_workers, 24 + SPARE_THREADS)
        assert serve_shape(kind, None, None, 0) == (threaded_workers, SPARE_THREADS)
        assert serve_shape(kind, 3, 4, 24) == (3, 4)
        assert serve_shape(kind, None, 1, 24) == (2 * (os.cpu_count() or 1) + 1, 1)
    with pytest.raises(ValueError, match="limit"):
        threads_for_limit(-1)
