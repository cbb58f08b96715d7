"""The web layer: the identity gate and page, the runner API, the console API, actions with
assignment checks, images, review and assignments pages, with 4xx JSON errors naming fields."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from proctoring.models import ProctorSession


@pytest.fixture
def web(app, client, db, proctored, signin, csrf_token, face_jpeg):
    """A candidate signed in on ``client`` and a proctor on a second client."""
    from types import SimpleNamespace

    ns = proctored({"identity": "proctor", "fullscreen": True})
    signin(client, ns.candidate)
    proctor = app.test_client()
    signin(proctor, ns.proctor)
    return SimpleNamespace(ns=ns, cand=client, proctor=proctor, app=app, signin=signin,
                           csrf_token=csrf_token,
                           ctoken=csrf_token(client), ptoken=csrf_token(proctor))


def _start(w):
    return w.cand.post(f"/exams/{w.ns.exam.code}/start", data={"agree": "yes", "csrf_token": w.ctoken})


def _post_json(client, url, token, body):
    return client.post(url, json=body, headers={"X-CSRFToken": token})


def _identity(w, face_jpeg, db):
    resp = _start(w)
    assert resp.status_code == 302 and "/proctoring/identity/" in resp.headers["Location"]
    sid = int(re.search(r"/identity/(\d+)", resp.headers["Location"]).group(1))
    page = w.cand.get(f"/proctoring/identity/{sid}")
    assert page.status_code == 200 and b'name="selfie"' in page.data
    missing = w.cand.post(f"/proctoring/identity/{sid}", data={"csrf_token": w.ctoken},
                          headers={"Accept": "application/json"})
    assert missing.status_code == 422
    sent = w.cand.post(f"/proctoring/identity/{sid}", data={
        "csrf_token": w.ctoken, "selfie": (io.BytesIO(face_jpeg), "me.jpg"),
        "id_document": (io.BytesIO(face_jpeg), "id.jpg")}, content_type="multipart/form-data")
    assert sent.status_code == 303
    assert w.cand.get(f"/api/proctoring/identity/{sid}").json["state"] == "identity_pending"
    return sid


def test_identity_gate_console_and_actions(web, db, face_jpeg, check_faces):
    w = web
    sid = _identity(w, face_jpeg, db)
    rows = w.proctor.get("/api/proctoring/console").json["sessions"]
    assert [(r["id"], r["state"]) for r in rows] == [(sid, "identity_pending")]
    page = w.proctor.get(f"/proctor/sessions/{sid}").get_data(as_text=True)
    img = int(re.search(r"/proctor/images/(\d+)", page).group(1))
    served = w.proctor.get(f"/proctor/images/{img}")
    assert served.status_code == 200 and served.data[:3] == b"\xff\xd8\xff"
    assert served.headers["Cache-Control"] == "private, no-store"

    # another proctor (not assigned) sees nothing and can do nothing
    other = w.app.test_client()
    w.signin(other, w.ns.other_proctor)
    otoken = w.csrf_token(other)
    assert other.get("/api/proctoring/console").json["sessions"] == []
    assert other.get(f"/proctor/sessions/{sid}").status_code == 404
    assert other.get(f"/proctor/images/{img}").status_code == 404
    denied = _post_json(other, f"/api/proctoring/sessions/{sid}/actions/admit", otoken, {})
    assert denied.status_code == 404 and denied.json["error"] == "not_found"
    # a candidate may not use the console
    assert w.cand.get("/api/proctoring/console").status_code == 403

    ok = _post_json(w.proctor, f"/api/proctoring/sessions/{sid}/actions/admit", w.ptoken, {})
    assert ok.status_code == 200 and ok.json["state"] == "admitted"
    assert w.cand.get(f"/api/proctoring/identity/{sid}").json["continue_url"] == f"/exams/{w.ns.exam.code}"
    started = _start(w)
    assert started.status_code == 302 and "/attempts/" in started.headers["Location"]
    attempt_id = int(re.search(r"/attempts/(\d+)", started.headers["Location"]).group(1))

    beat = w.cand.get(f"/api/attempts/{attempt_id}/heartbeat").json
    extras = beat["extras"]["proctoring"]
    assert extras["session_id"] == sid and extras["fullscreen"] is True
    runner = w.cand.get(f"/attempts/{attempt_id}").get_data(as_text=True)
    assert "/static/proctor/runner.js" in runner

    ev_url = extras["events_url"]
    bad = _post_json(w.cand, ev_url, w.ctoken, {"events": [{"seq": 1, "kind": "teleport"}]})
    assert bad.status_code == 422 and bad.json["field"] == "events[0].kind"
    assert w.cand.post(ev_url, data="x", headers={"X-CSRFToken": w.ctoken}).status_code == 415
    got = _post_json(w.cand, ev_url, w.ctoken, {"events": [
        {"seq": 1, "kind": "paste", "at": "2026-01-01T09:00:00Z"}]})
    assert got.status_code == 200 and got.json["acks"] == [{"seq": 1, "status": "stored"}]
    snap = w.cand.post(extras["snapshots_url"], data=face_jpeg, content_type="image/jpeg",
                       headers={"X-CSRFToken": w.ctoken, "X-Snapshot-Seq": "1"})
    # stored at once; its faces are counted by the face checker, off the request
    assert snap.status_code == 200 and snap.json == {"seq": 1, "status": "stored", "faces": None}
    waiting = w.proctor.get("/api/proctoring/console").json["sessions"][0]["snapshot"]
    assert waiting["faces"] is None and waiting["counting"] is True  # not "not analysed"
    page = w.proctor.get(f"/proctor/sessions/{sid}").get_data(as_text=True)
    assert "snapshot 1: faces being counted" in page and "not analysed" not in page
    assert re.search(r'alt="Snapshot 1 at [0-9:]+: faces being counted"', page)
    assert check_faces(w.app) == 1
    page = w.proctor.get(f"/proctor/sessions/{sid}").get_data(as_text=True)
    assert "snapshot 1: 1 face<" in page and "faces being counted" not in page
    assert re.search(r'alt="Snapshot 1 at [0-9:]+: 1 face"', page)
    no_seq = w.cand.post(extras["snapshots_url"], data=face_jpeg, content_type="image/jpeg",
                         headers={"X-CSRFToken": w.ctoken})
    assert no_seq.status_code == 422 and no_seq.json["field"] == "X-Snapshot-Seq"

    act = f"/api/proctoring/sessions/{sid}/actions/"
    assert _post_json(w.proctor, act + "pause", w.ptoken, {}).json["state"] == "paused"
    assert w.cand.get(f"/api/attempts/{attempt_id}/heartbeat").json["clock"]["paused"] is True
    again = _post_json(w.proctor, act + "pause", w.ptoken, {})
    assert again.status_code == 409
    assert _post_json(w.proctor, act + "resume", w.ptoken, {}).json["state"] == "in_progress"
    bad_ext = _post_json(w.proctor, act + "extend", w.ptoken, {"minutes": "lots", "reason": "x"})
    assert bad_ext.status_code == 422 and bad_ext.json["field"] == "minutes"
    assert _post_json(w.proctor, act + "extend", w.ptoken, {"minutes": 5, "reason": "outage"}).status_code == 200
    assert _post_json(w.proctor, act + "message", w.ptoken, {"text": "Eyes on the screen"}).status_code == 200
    assert _post_json(w.proctor, act + "teleport", w.ptoken, {}).status_code == 404
    beat = w.cand.get(f"/api/attempts/{attempt_id}/heartbeat").json
    assert beat["extras"]["proctoring"]["messages"][-1]["text"] == "Eyes on the screen"
    row = w.proctor.get("/api/proctoring/console").json["sessions"][0]
    assert row["state"] == "in_progress" and row["flags"]["count"] == 1 and row["snapshot"]["faces"] == 1
    assert row["snapshot"]["counting"] is False
    assert row["items"] == 5 and row["connection"] == "online" and row["remaining_s"] > 600

    # submit: the paste flag sends the session to review and holds the result
    sub = _post_json(w.cand, f"/api/attempts/{attempt_id}/submit", w.ctoken, {"confirm": True})
    assert sub.status_code == 200
    queue = w.proctor.get("/proctor/review").get_data(as_text=True)
    assert f"/proctor/sessions/{sid}" in queue
    form = w.proctor.post(f"/proctor/sessions/{sid}/actions/review",
                          data={"csrf_token": w.ptoken, "verdict": "cleared", "reason": "pasted own notes app? no: a URL"})
    assert form.status_code == 303
    ps = db.scalar(select(ProctorSession).where(ProctorSession.id == sid))
    db.refresh(ps)
    assert ps.state == "cleared"
    page = w.proctor.get(f"/proctor/sessions/{sid}").get_data(as_text=True)
    assert "cleared" in page and "paste" in page


def test_admin_assigns_a_proctor(app, client, db, proctored, signin, csrf_token):
    ns = proctored()
    signin(client, ns.admin)
    token = csrf_token(client)
    page = client.get("/proctor/assignments")
    assert page.status_code == 200 and ns.proctor.email.encode() in page.data
    resp = client.post("/proctor/assignments", data={"csrf_token": token,
                                                     "proctor": ns.other_proctor.email,
                                                     "exam": ns.exam.code})
    assert resp.status_code == 303
    from proctoring.assignments import may_proctor

    assert may_proctor(db, ns.other_proctor, ns.exam.id)
