"""The fast lane answers the runner's camera frames and event batches in front of Flask
(``proctoring.lane``): each request here goes once through the whole app (lane first) and once
through Flask alone, and the two answers must be the same (status, headers, JSON; the seqs sent
differ and ``server_now`` moves). The lane must answer the usual case itself and store what
Flask would, and leave everything unusual to Flask with the request as it came: a bad header,
body or image, another's session, a stopped one, a revoked sign-in, a proctor's cookie, no
CSRF token, a flag to raise, the page's ping."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, update
from werkzeug.test import EnvironBuilder

from assessment.users import User
from tests.lane_calls import call, lane_and_flask, refused_alike


@pytest.fixture
def runner(proctored_runner):
    return proctored_runner


def _environ(client, path, *, body, content_type, token=None, headers=None, cookie=None):
    h = {"Cookie": f"session={cookie or client.get_cookie('session').value}"}
    if token:
        h["X-CSRFToken"] = token
    h.update(headers or {})
    data = body if isinstance(body, bytes) else json.dumps(body)
    return EnvironBuilder(path=path, method="POST", data=data, headers=h,
                          content_type=content_type,
                          environ_base=client.environ_base).get_environ()


def _server_now(data):
    data.pop("server_now", None)


def _call(wsgi, environ):
    return call(wsgi, environ, _server_now)


def _lane_and_flask(app, make_environ):
    return lane_and_flask(app, make_environ, _server_now)


def _refused_alike(app, make_environ, status):
    return refused_alike(app, make_environ, status, _server_now)


def _frame(runner, image, seq, *, token=True, content_type="image/jpeg", headers=None,
           client=None, path=None):
    return lambda: _environ(client or runner.client, path or runner.frames, body=image,
                            content_type=content_type,
                            token=runner.token if token is True else token,
                            headers={"X-Snapshot-Seq": str(seq), **(headers or {})})


def _batch(runner, events, *, token=True, client=None, path=None):
    return lambda: _environ(client or runner.client, path or runner.events,
                            body={"events": events}, content_type="application/json",
                            token=runner.token if token is True else token)


def _rows(db, model, session_id):
    db.rollback()  # a fresh look at what the requests committed
    return db.scalar(select(func.count()).select_from(model)
                     .where(model.session_id == session_id))


def test_the_lane_stores_frames_and_batches_as_flask_does(app, db, runner, face_jpeg):
    from proctoring.models import FaceCheck, IntegrityEvent, Snapshot

    seqs = iter(range(1, 100))
    through_app, flask_alone, answered = _lane_and_flask(
        app, lambda: _frame(runner, face_jpeg, next(seqs))())
    assert answered
    assert through_app[2] == {"seq": 1, "status": "stored", "faces": None}
    assert flask_alone[2] == {"seq": 2, "status": "stored", "faces": None}
    assert through_app[:2] == flask_alone[:2] and through_app[0] == "200 OK"
    assert ("Cache-Control", "no-store") in through_app[1]
    # two frames stored, each with its encrypted image and a face check owed
    assert _rows(db, Snapshot, runner.session_id) == 2
    assert _rows(db, FaceCheck, runner.session_id) == 2
    stored = db.scalars(select(Snapshot).where(Snapshot.session_id == runner.session_id)
                        .order_by(Snapshot.seq)).all()
    vault = app.extensions["microcred.proctoring"].vault
    from proctoring.images import StoredImage

    images = [vault.open(db.get(StoredImage, s.image_id)) for s in stored]
    assert images[0][:2] == b"\xff\xd8" and images[0] == images[1]  # the same JPEG, sealed

    # a retried frame: answered from the look, both ways, nothing stored again
    through_app, flask_alone, answered = _lane_and_flask(app, _frame(runner, face_jpeg, 1))
    assert answered and through_app == flask_alone
    assert through_app[2] == {"seq": 1, "status": "duplicate", "faces": None}
    assert _rows(db, Snapshot, runner.session_id) == 2

    # a batch of events, then its retry
    seqs = iter(range(1, 100))
    through_app, flask_alone, answered = _lane_and_flask(app, lambda: _batch(runner, [
        {"seq": next(seqs), "kind": "right_click", "at": "2026-01-01T09:00:00Z"}])())
    assert answered
    assert through_app[2] == {"acks": [{"seq": 1, "status": "stored"}], "flags": []}
    assert flask_alone[2] == {"acks": [{"seq": 2, "status": "stored"}], "flags": []}
    assert through_app[:2] == flask_alone[:2]
    through_app, flask_alone, answered = _lane_and_flask(app, _batch(runner, [
        {"seq": 1, "kind": "right_click"}, {"seq": 2, "kind": "right_click"}]))
    assert answered and through_app == flask_alone
    assert [a["status"] for a in through_app[2]["acks"]] == ["duplicate", "duplicate"]
    assert _rows(db, IntegrityEvent, runner.session_id) == 2


def test_a_batch_that_raises_a_flag_and_the_ping_are_left_to_flask(app, db, runner):
    from proctoring.models import Flag

    lane = app.extensions["microcred.hotlane"]
    before = lane.handled
    status, _headers, data = _call(app.wsgi_app, _batch(runner, [
        {"seq": 1, "kind": "paste"}])())
    assert lane.handled == before and status == "200 OK"
    assert data["acks"] == [{"seq": 1, "status": "stored"}] and len(data["flags"]) == 1
    assert _rows(db, Flag, runner.session_id) == 1
    status, _headers, data = _call(app.wsgi_app, _batch(runner, [])())
    assert lane.handled == before and status == "200 OK" and data["acks"] == []


def test_bad_frames_reach_flask_whole(app, runner, face_jpeg):
    cases = [
        (_frame(runner, b"not an image at all", 1), 422, "image"),
        (_frame(runner, face_jpeg[: len(face_jpeg) // 3], 1), 422, "image"),
        (_frame(runner, face_jpeg, 1, content_type="image/gif"), 415, None),
        (_frame(runner, face_jpeg, "abc"), 422, "X-Snapshot-Seq"),
        (_frame(runner, face_jpeg, "\xb2"), 422, "X-Snapshot-Seq"),  # a digit to isdigit only
        (_frame(runner, face_jpeg, 0), 422, "X-Snapshot-Seq"),
        (_frame(runner, face_jpeg, 2**53 + 1), 422, "X-Snapshot-Seq"),
        (_frame(runner, face_jpeg, 1, headers={"X-Client-Time": "yesterday"}), 422,
         "X-Client-Time"),
        (_frame(runner, face_jpeg, 1, token=None), 400, None),
        (_frame(runner, face_jpeg, 1, token=runner.token[:-2] + "xx"), 400, None),
    ]
    for make, status, field in cases:
        answer = _refused_alike(app, make, status)
        if field:
            assert answer[2].get("field") == field or field in answer[2]["message"], answer


def test_bad_batches_reach_flask_whole(app, runner):
    cases = [
        (_batch(runner, [{"seq": 1, "kind": "sneeze"}]), 422),
        (_batch(runner, [{"seq": -1, "kind": "paste"}]), 422),
        (_batch(runner, [{"seq": 1, "kind": "copy", "detail": "x"}]), 422),
        (_batch(runner, [{"seq": 1, "kind": "copy"}], token=None), 400),
        (lambda: _environ(runner.client, runner.events, body=b'{"events": [',
                          content_type="application/json", token=runner.token), 400),
        (lambda: _environ(runner.client, runner.events, body={"events": []},
                          content_type="text/plain", token=runner.token), 415),
    ]
    for make, status in cases:
        _refused_alike(app, make, status)


def test_another_candidates_or_a_proctors_cookie_is_left_to_flask(app, runner, face_jpeg,
                                                                  make_user, signin, csrf_token):
    other = app.test_client()
    signin(other, make_user("candidate"))
    token = csrf_token(other)
    _refused_alike(app, _frame(runner, face_jpeg, 1, client=other, token=token), 404)
    _refused_alike(app, _batch(runner, [{"seq": 1, "kind": "copy"}], client=other, token=token),
                   404)
    proctor = app.test_client()
    signin(proctor, runner.ns.proctor)
    token = csrf_token(proctor)
    _refused_alike(app, _frame(runner, face_jpeg, 1, client=proctor, token=token), 403)
    _refused_alike(app, _batch(runner, [{"seq": 1, "kind": "right_click"}], client=proctor,
                               token=token), 403)


def test_a_revoked_or_deactivated_sign_in_is_left_to_flask(app, db, runner, face_jpeg):
    from proctoring.models import Snapshot

    db.execute(update(User).where(User.id == runner.ns.candidate.id)
               .values(session_epoch=User.session_epoch + 1))
    db.commit()
    _refused_alike(app, _frame(runner, face_jpeg, 1), 401)
    _refused_alike(app, _batch(runner, [{"seq": 1, "kind": "right_click"}]), 401)
    assert _rows(db, Snapshot, runner.session_id) == 0


def test_a_stopped_session_is_left_to_flask(app, db, runner, face_jpeg):
    from proctoring import actions
    from proctoring.sessions import get_session
    from proctoring.wiring import DeliveryControl

    actions.terminate(db, get_session(db, runner.session_id), DeliveryControl(),
                      by=runner.ns.proctor, reason="a second screen")
    db.commit()
    _refused_alike(app, _frame(runner, face_jpeg, 1), 409)
    _refused_alike(app, _batch(runner, [{"seq": 1, "kind": "right_click"}]), 409)


def test_a_tampered_cookie_or_another_browser_is_left_to_flask(app, runner, face_jpeg):
    cookie = runner.client.get_cookie("session").value
    tampered = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
    make = _frame(runner, face_jpeg, 1)
    _refused_alike(app, lambda: _environ(runner.client, runner.frames, body=face_jpeg,
                                         content_type="image/jpeg", token=runner.token,
                                         cookie=tampered,
                                         headers={"X-Snapshot-Seq": "1"}), 400)  # CSRF first
    _refused_alike(app, lambda: {**make(), "HTTP_USER_AGENT": "another/1.0"}, 401)
