"""The fast lane (``assessment.delivery.hotlane``) answers the heartbeat and the autosave in
front of Flask: every request here goes once through the whole app (lane first) and once
through Flask alone, and the two answers must be the same (status, headers, JSON; the clock's
``server_now`` and ``remaining_ms`` move between the two). The lane must answer the usual case
itself, and leave everything unusual (another's attempt, no CSRF token, a tampered or foreign
cookie, a revoked sign-in, a bad body) to Flask."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import update
from werkzeug.test import EnvironBuilder

from assessment.delivery.hotlane import flask_login_identifier
from assessment.users import User
from tests.lane_calls import call, lane_and_flask, refused_alike


@pytest.fixture
def started_at_item(client, started):
    """The delivery fixture's started attempt and the first item shown: (id, token, item)."""
    attempt_id, token = started
    state = client.get(f"/api/attempts/{attempt_id}/state").json
    return attempt_id, token, state["items"][0]


def _cookie(client) -> str:
    return client.get_cookie("session").value


def _environ(client, path, *, method="GET", body=None, token=None, cookie=None, headers=None,
             content_type="application/json"):
    h = {"Cookie": f"session={cookie if cookie is not None else _cookie(client)}"}
    if token:
        h["X-CSRFToken"] = token
    h.update(headers or {})
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
    return EnvironBuilder(path=path, method=method, data=data, headers=h,
                          content_type=content_type if data is not None else None,
                          environ_base=client.environ_base).get_environ()


def _clock(data):
    if isinstance(data.get("clock"), dict):
        for moving in ("server_now", "remaining_ms"):
            data["clock"].pop(moving)


def _call(wsgi, environ):
    return call(wsgi, environ, _clock)


def _lane_and_flask(app, make_environ):
    return lane_and_flask(app, make_environ, _clock)


def _save_body(item, seq, value=None, **extra):
    default = "B" if item["type"] == "single_choice" else ["A", "C"]
    return {"saves": [{"seq": seq, "item": item["id"], "value": value or default,
                       "flagged": False}], **extra}


def test_the_lane_answers_heartbeats_and_saves_as_flask_does(app, client, started_at_item):
    attempt_id, token, item = started_at_item
    hb = f"/api/attempts/{attempt_id}/heartbeat"
    lane_answer, flask_answer, answered = _lane_and_flask(app, lambda: _environ(client, hb))
    assert answered
    assert lane_answer == flask_answer
    assert lane_answer[0] == "200 OK" and lane_answer[2]["status"] == "in_progress"
    assert ("Vary", "Cookie") in lane_answer[1] and ("Cache-Control", "no-store") in lane_answer[1]

    saves = f"/api/attempts/{attempt_id}/saves"
    seqs = iter(range(1, 100))

    def save():
        return _environ(client, saves, method="POST", token=token,
                        body=_save_body(item, next(seqs), position=1))

    lane_answer, flask_answer, answered = _lane_and_flask(app, save)
    assert answered
    # each stored its own seq; apart from the seq the answers are the same
    assert lane_answer[2]["acks"] == [{"seq": 1, "status": "saved"}]
    assert flask_answer[2]["acks"] == [{"seq": 2, "status": "saved"}]
    lane_answer[2]["acks"], flask_answer[2]["acks"] = [], []
    lane_answer[2]["last_seq"], flask_answer[2]["last_seq"] = 0, 0
    assert lane_answer == flask_answer

    # a retry of a stored seq is a duplicate; other content under it a conflict, both ways
    for value, status in (("B" if item["type"] == "single_choice" else ["A", "C"], "duplicate"),
                          ("D" if item["type"] == "single_choice" else ["B", "D"], "conflict")):
        lane_answer, flask_answer, answered = _lane_and_flask(app, lambda v=value: _environ(
            client, saves, method="POST", token=token, body=_save_body(item, 1, v)))
        assert answered and lane_answer == flask_answer
        assert lane_answer[2]["acks"] == [{"seq": 1, "status": status}]
    # what the lane stored is what the state reads back
    state = client.get(f"/api/attempts/{attempt_id}/state").json
    assert state["last_seq"] == 2 and state["position"] == 1


def _refused_alike(app, make_environ, status):
    return refused_alike(app, make_environ, status, _clock)


def test_another_candidates_attempt_is_left_to_flask_and_refused(app, started_at_item, make_user,
                                                                  signin, csrf_token):
    attempt_id, _, item = started_at_item
    other = app.test_client()
    signin(other, make_user("candidate"))
    token = csrf_token(other)
    _refused_alike(app, lambda: _environ(other, f"/api/attempts/{attempt_id}/heartbeat"), 404)
    _refused_alike(app, lambda: _environ(other, f"/api/attempts/{attempt_id}/saves",
                                         method="POST", token=token,
                                         body=_save_body(item, 1)), 404)


def test_a_save_without_a_valid_csrf_token_is_left_to_flask(app, client, started_at_item):
    attempt_id, token, item = started_at_item
    path = f"/api/attempts/{attempt_id}/saves"
    for bad in (None, token[:-2] + "xx", "x" * len(token)):
        answer = _refused_alike(app, lambda b=bad: _environ(
            client, path, method="POST", token=b, body=_save_body(item, 1)), 400)
        assert answer[2]["error"] == "csrf"


def test_a_tampered_foreign_or_revoked_sign_in_is_left_to_flask(app, client, started_at_item, db):
    attempt_id, token, item = started_at_item
    hb = f"/api/attempts/{attempt_id}/heartbeat"
    cookie = _cookie(client)
    tampered = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
    _refused_alike(app, lambda: _environ(client, hb, cookie=tampered), 401)
    # the same cookie from another browser: Flask-Login's strong protection ends it
    _refused_alike(app, lambda: _environ(client, hb, headers={"User-Agent": "another/1.0"}), 401)
    _refused_alike(app, lambda: _environ(client, hb, headers={"X-Forwarded-For": "10.9.8.7"}), 401)
    # signed out everywhere (the sign-in generation raised): the cookie no longer counts
    db.execute(update(User).values(session_epoch=User.session_epoch + 1))
    db.commit()
    _refused_alike(app, lambda: _environ(client, hb), 401)
    _refused_alike(app, lambda: _environ(client, f"/api/attempts/{attempt_id}/saves",
                                         method="POST", token=token,
                                         body=_save_body(item, 1)), 401)


def test_a_bad_save_body_reaches_flask_whole(app, client, started_at_item):
    attempt_id, token, item = started_at_item
    path = f"/api/attempts/{attempt_id}/saves"
    cases = [
        (b'{"saves": [', "application/json", 400, "malformed_json"),
        (b"[" * 40 + b"]" * 40, "application/json", 400, "malformed_json"),
        (json.dumps({"saves": [{"seq": 1, "item": "x"}]}).encode(), "application/json", 422,
         "invalid"),
        (json.dumps(_save_body(item, 1)).encode(), "text/plain", 415, "unsupported_media_type"),
        (json.dumps(_save_body(item, 1, value="nope")).encode(), "application/json", 422, None),
    ]
    for body, content_type, status, error in cases:
        answer = _refused_alike(app, lambda b=body, c=content_type: _environ(
            client, path, method="POST", token=token, body=b, content_type=c), status)
        if error:
            assert answer[2]["error"] == error


def test_a_finalized_attempt_is_left_to_flask(app, client, started_at_item):
    attempt_id, token, item = started_at_item
    resp = client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True},
                       headers={"X-CSRFToken": token})
    assert resp.status_code == 200
    lane_answer, flask_answer, answered = _lane_and_flask(
        app, lambda: _environ(client, f"/api/attempts/{attempt_id}/heartbeat"))
    assert not answered and lane_answer == flask_answer
    assert lane_answer[2]["status"] == "finalized"
    _refused_alike(app, lambda: _environ(client, f"/api/attempts/{attempt_id}/saves",
                                         method="POST", token=token,
                                         body=_save_body(item, 5)), 409)


@pytest.mark.parametrize("headers", [
    {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "Mozilla/5.0 (X11) Chrome/120"},
    {"REMOTE_ADDR": "10.0.0.1"},
    {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": " 203.0.113.9 , 10.0.0.1",
     "HTTP_USER_AGENT": "curl/8"},
    {"HTTP_USER_AGENT": "caf\xc3\xa9"},
])
def test_the_identifier_is_flask_logins(app, headers):
    from flask_login.utils import _create_identifier

    with app.test_request_context("/", environ_base=headers) as ctx:
        if "REMOTE_ADDR" not in headers:
            ctx.request.environ.pop("REMOTE_ADDR", None)
        assert flask_login_identifier(ctx.request.environ) == _create_identifier()


def test_a_permanent_session_is_left_to_flask(app, client, started_at_item):
    """Flask sends a permanent session's cookie again with every answer: the lane cannot."""
    attempt_id, _, _ = started_at_item
    serializer = app.session_interface.get_signing_serializer(app)
    data = serializer.loads(_cookie(client))
    permanent = serializer.dumps({**data, "_permanent": True})
    lane = app.extensions["microcred.hotlane"]
    before = lane.handled
    status, headers, _ = _call(app.wsgi_app, _environ(
        client, f"/api/attempts/{attempt_id}/heartbeat", cookie=permanent))
    assert lane.handled == before and status == "200 OK"
    assert any(k == "Set-Cookie" and v.startswith("session=") for k, v in headers)
