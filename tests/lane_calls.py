"""What the fast lane's tests share (tests/delivery/test_hotlane.py,
tests/proctoring/test_proctoring_lane.py): a request sent once through the whole app (the lane
first) and once through Flask alone, each answer as (status, headers, JSON) to compare."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def call(wsgi: Callable, environ: dict, scrub: Callable[[Any], None] = lambda data: None):
    """(status, headers without Content-Length, the body as JSON where it is) of one WSGI call;
    ``scrub`` takes out of the JSON what moves between two calls (the clock)."""
    got = {}

    def start_response(status, headers, exc_info=None):
        got["status"], got["headers"] = status, headers

    body = b"".join(wsgi(environ, start_response))
    try:
        data = json.loads(body)
    except ValueError:
        data = body
    if isinstance(data, dict):
        scrub(data)
    return got["status"], [(k, v) for k, v in got["headers"] if k != "Content-Length"], data


def lane_and_flask(app, make_environ: Callable[[], dict],
                   scrub: Callable[[Any], None] = lambda data: None):
    """(answer through the app, answer through Flask alone, whether the lane answered)."""
    lane = app.extensions["microcred.hotlane"]
    before = lane.handled
    through_app = call(app.wsgi_app, make_environ(), scrub)
    answered = lane.handled > before
    return through_app, call(lane.wsgi_app, make_environ(), scrub), answered


def refused_alike(app, make_environ: Callable[[], dict], status: int,
                  scrub: Callable[[Any], None] = lambda data: None):
    """The lane leaves the request to Flask, which answers ``status`` the same both ways."""
    through_app, flask_alone, answered = lane_and_flask(app, make_environ, scrub)
    assert not answered, "the lane must leave this to Flask"
    assert through_app == flask_alone
    assert through_app[0].startswith(str(status)), through_app
    return through_app
