"""A camera frame and a batch of integrity events answered in front of Flask, in their usual
case (the fast lane, ``assessment.delivery.hotlane``, which takes these routes from the runner's
wiring: ``microcred.web.LaneRoute``).

A proctored candidate's page sends a frame a minute and an event batch every few minutes, all
exam long: at a few thousand candidates they are most of a node's CPU. Through Flask each paid
for what it does not need (the session and Flask-Login's hooks with the user loaded through
the ORM, the CSRF hook, the view's dispatch, a Response object); here the lane checks what
those would have checked, and the request does exactly what its view does
(:func:`proctoring.candidate.api_snapshots`, :func:`~proctoring.candidate.api_events`): the
same checks of its headers and body, the same look before the write lock and the same plain
statements under it (:mod:`proctoring.hotwrites`).

- The signed session cookie, its sign-in and the CSRF token are the lane's checks (as for the
  runner's saves); whether that sign-in still stands (an active candidate, the same sign-in
  generation) is checked in the look's first statement, with the session row: no row, and
  Flask answers.
- Anything unusual goes to Flask with the request as it came: a body or header the view would
  refuse (it says what was wrong and where), an image that does not decode, a session not the
  candidate's or no longer taking frames and events, a flag to raise, a plugin to tell, the
  page's ping (an empty batch), a write that no longer holds, a database error.

So the lane changes how fast the usual answer comes, never what any answer is
(``tests/proctoring/test_proctoring_lane.py`` sends each request through the lane and through
Flask alone and compares the answers).
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import DBAPIError

from microcred.db import utcnow
from microcred.errors import DomainError
from microcred.inputs import MAX_ID, is_whole
from microcred.web import LaneRoute
from proctoring import events, hotwrites
from proctoring.images import ImageVault

PREFIX = "/api/proctoring/sessions/"
_FRAME = re.compile(r"/api/proctoring/sessions/([1-9][0-9]{0,9})/snapshots")
_EVENTS = re.compile(r"/api/proctoring/sessions/([1-9][0-9]{0,9})/events")
#: what the snapshot view takes (``proctoring.candidate``: the types it accepts, its body limit)
FRAME_TYPES = ("image/jpeg", "image/png", "image/webp")


def routes(vault: ImageVault, frame_max_bytes: int) -> list[LaneRoute]:
    """The two routes, for the runner's wiring."""

    def frame(lane: Any, environ: dict[str, Any], match: re.Match) -> dict[str, Any] | None:
        return _frame(lane, environ, int(match.group(1)), vault, frame_max_bytes)

    return [LaneRoute("POST", PREFIX, _FRAME, frame),
            LaneRoute("POST", PREFIX, _EVENTS,
                      lambda lane, environ, match: _events(lane, environ, int(match.group(1))))]


def _check(lane: Any, who: Any) -> hotwrites.SignInCheck:
    return hotwrites.SignInCheck(lane.sign_in_holds, who.params())


def _frame(lane: Any, environ: dict[str, Any], session_id: int, vault: ImageVault,
           most: int) -> dict[str, Any] | None:
    seq = environ.get("HTTP_X_SNAPSHOT_SEQ", "")
    if session_id > MAX_ID or not is_whole(seq):
        return None
    who = lane.posting(environ)  # before the body is read: a stranger's goes to Flask unread
    image = lane.body(environ, FRAME_TYPES, most) if who is not None else None
    if image is None:
        return None
    try:
        seq_n = events.parse_seq(int(seq), "X-Snapshot-Seq")
        client_at = events.parse_client_time(environ.get("HTTP_X_CLIENT_TIME"), "X-Client-Time")
        # decoded, shrunk and encrypted before the look and the lock, as the view does
        prepared = events.prepare_snapshot(vault, session_id=session_id, image=image,
                                           count=False)
        with lane.look() as read:
            look = hotwrites.look_at_frame(read, session_id=session_id, candidate_id=who.user_id,
                                           seq=seq_n, image=prepared, vault=vault,
                                           client_at=client_at, now=utcnow(),
                                           check=_check(lane, who))
    except (DomainError, DBAPIError):
        return None  # Flask says what was wrong, or runs the full path
    return _answer(lane, look)


def _events(lane: Any, environ: dict[str, Any], session_id: int) -> dict[str, Any] | None:
    if session_id > MAX_ID:
        return None
    who = lane.posting(environ)
    payload = lane.json(environ) if who is not None else None
    if payload is None:
        return None
    try:
        batch = events.parse_events(payload)
        if not batch:
            return None  # the page's ping: the camera rule over the silence so far (Flask)
        with lane.look() as read:
            look = hotwrites.look_at_batch(read, session_id=session_id,
                                           candidate_id=who.user_id, batch=batch, now=utcnow(),
                                           check=_check(lane, who))
    except (DomainError, DBAPIError):
        return None
    return _answer(lane, look)


def _answer(lane: Any, look: dict[str, Any] | hotwrites.FrameWrite | hotwrites.BatchWrite
            | None) -> dict[str, Any] | None:
    """A look's answer (a retry, answered from it), or its write's once committed; None: Flask
    runs the full path (nothing of the write was kept)."""
    if look is None or isinstance(look, dict):
        return look
    return lane.write(look)
