"""Issue 9, findings 21, 23 and 27 on the proctor's side: finished sessions leave the live console,
the timeline shows time extensions, no stale "proctor: pending", retake data for the runner,
actions offered and refused from the state machine in words, counts and verifier results in
people's words, and the actions dialog driven by keyboard in Chromium."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from assessment.delivery import reads as delivery_reads
from assessment.delivery import service as delivery
from proctoring import actions, identity, wiring
from proctoring.models import ProctorSession
from proctoring.states import State

CONTROL = wiring.DeliveryControl()


def _admitted_and_started(db, ns):
    """A session admitted by the proctor (checked in person) and its running attempt."""
    wiring.identity_gate(db, ns.candidate, ns.exam, url_for=lambda *a, **k: "/identity")
    db.commit()
    ps = db.scalar(select(ProctorSession).where(ProctorSession.candidate_id == ns.candidate.id))
    identity.decide(db, ps, admit=True, reason="checked in person", by=ns.proctor)
    db.commit()
    attempt = delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    db.refresh(ps)
    return ps, attempt


@pytest.fixture
def web(app, client, db, proctored, signin, csrf_token):
    from types import SimpleNamespace

    ns = proctored({"identity": "proctor", "fullscreen": False, "snapshot_interval_s": 0})
    signin(client, ns.candidate)
    proctor = app.test_client()
    signin(proctor, ns.proctor)
    return SimpleNamespace(ns=ns, cand=client, proctor=proctor, ctoken=csrf_token(client),
                           ptoken=csrf_token(proctor))


def _act(w, sid, action, body=None):
    return w.proctor.post(f"/api/proctoring/sessions/{sid}/actions/{action}", json=body or {},
                          headers={"X-CSRFToken": w.ptoken})


# ---------------------------------------------------------------- 27: allowed actions, refusals


EXPECTED = {
    "created": {"admit", "message", "note", "terminate"},
    "identity_pending": {"admit", "reject", "message", "note", "terminate"},
    "identity_rejected": {"message", "note", "terminate"},
    "admitted": {"message", "note", "terminate"},
    "in_progress": {"pause", "extend", "message", "note", "terminate"},
    "paused": {"resume", "extend", "message", "note", "terminate"},
    "submitted": {"note"},
    "in_review": {"note", "review"},
    "cleared": {"note"},
    "invalidated": {"note"},
    "terminated": {"note"},
}


def test_allowed_actions_follow_the_state_machine():
    assert {s.value for s in State} == set(EXPECTED)
    for state, expected in EXPECTED.items():
        assert set(actions.allowed(state)) == expected, state
    # never both pause and resume
    assert not any({"pause", "resume"} <= set(actions.allowed(s)) for s in EXPECTED)


def test_refusals_are_worded_for_people(web, db):
    ps, _attempt = _admitted_and_started(db, web.ns)
    assert _act(web, ps.id, "pause").json["state"] == "paused"
    again = _act(web, ps.id, "pause")
    assert again.status_code == 409 and again.json["message"] == "This session is already paused."
    assert _act(web, ps.id, "resume").status_code == 200
    wrong = _act(web, ps.id, "resume")
    assert wrong.status_code == 409
    assert wrong.json["message"] == "This session is not paused: the exam is running."
    admit = _act(web, ps.id, "admit")
    assert admit.json["message"] == "This candidate is already admitted."
    review = _act(web, ps.id, "review", {"verdict": "cleared", "reason": "x"})
    assert review.json["message"] == "This session is not awaiting review: it is in progress."
    for refused in (again, wrong, admit, review):
        assert "State." not in refused.json["message"] and "'" not in refused.json["message"]


def test_session_page_offers_only_allowed_actions(web, db):
    ps, _attempt = _admitted_and_started(db, web.ns)
    page = web.proctor.get(f"/proctor/sessions/{ps.id}").get_data(as_text=True)
    assert "/actions/pause" in page and "/actions/resume" not in page
    _act(web, ps.id, "pause")
    page = web.proctor.get(f"/proctor/sessions/{ps.id}").get_data(as_text=True)
    assert "/actions/resume" in page and "/actions/pause" not in page
    _act(web, ps.id, "terminate", {"reason": "a second person in the room"})
    page = web.proctor.get(f"/proctor/sessions/{ps.id}").get_data(as_text=True)
    for gone in ("pause", "resume", "extend", "message", "terminate", "admit"):
        assert f"/actions/{gone}" not in page
    assert "/actions/note" in page


def test_hidden_always_wins_in_the_stylesheet(app):
    css = app.test_client().get("/static/app.css").get_data(as_text=True)
    assert re.search(r"\[hidden\]\s*\{\s*display:\s*none\s*!important", css)


# ---------------------------------------------------------------- 21: finished sessions, timeline


def test_finished_session_leaves_the_live_rows(web, db):
    ps, _attempt = _admitted_and_started(db, web.ns)
    live = web.proctor.get("/api/proctoring/console").json["sessions"][0]
    assert live["finished"] is False and "remaining_s" in live and live["connection"] == "not yet"
    assert live["actions"] == ["pause", "extend", "message", "note", "terminate"]
    _act(web, ps.id, "terminate", {"reason": "a second person in the room"})
    row = web.proctor.get("/api/proctoring/console").json["sessions"][0]
    assert row["finished"] is True and row["state_label"] == "Terminated"
    assert row["outcome"] == "a second person in the room" and row["ended_at"]
    assert row["connection"] is None and row["last_seen_s"] is None
    assert "remaining_s" not in row and row["camera"] is None
    assert row["actions"] == ["note"]
    page = web.proctor.get("/proctor").get_data(as_text=True)
    assert "0 live sessions" in page and 'id="finished-rows"' in page


def test_timeline_shows_extensions_from_the_clock_record(web, db):
    ps, attempt = _admitted_and_started(db, web.ns)
    before = delivery.attempt_clock(db, attempt).deadline
    assert _act(web, ps.id, "extend", {"minutes": 10, "reason": "camera outage"}).status_code == 200
    assert _act(web, ps.id, "extend", {"minutes": 1, "reason": "slow page"}).status_code == 200
    db.commit()  # end the test session's snapshot: read what the app wrote
    db.refresh(attempt)  # the row keeps its clock (timing.StoredClock)
    after = delivery.attempt_clock(db, attempt).deadline
    page = web.proctor.get(f"/proctor/sessions/{ps.id}").get_data(as_text=True)
    assert (f"time extended by 10 minutes, new deadline "
            f"{(before + (after - before) * 10 / 11).strftime('%H:%M:%S')} UTC: camera outage") in page
    assert (f"time extended by 1 minute, new deadline {after.strftime('%H:%M:%S')} UTC: "
            "slow page") in page
    assert "in_progress →" not in page and "Admitted → In progress" in page


def test_heartbeat_carries_extensions_and_the_termination_reason(web, db):
    ps, attempt = _admitted_and_started(db, web.ns)
    beat = web.cand.get(f"/api/attempts/{attempt.id}/heartbeat").json
    assert beat["clock"]["extension_seconds"] == 0
    assert beat["extras"]["proctoring"]["termination_reason"] is None
    deadline = beat["clock"]["deadline"]
    _act(web, ps.id, "extend", {"minutes": 5, "reason": "outage"})
    beat = web.cand.get(f"/api/attempts/{attempt.id}/heartbeat").json
    assert beat["clock"]["extension_seconds"] == 300 and beat["clock"]["deadline"] != deadline
    _act(web, ps.id, "terminate", {"reason": "a phone on the desk"})
    beat = web.cand.get(f"/api/attempts/{attempt.id}/heartbeat").json
    assert beat["status"] == "finalized" and beat["finalize_reason"] == "terminated"
    assert beat["extras"]["proctoring"]["termination_reason"] == "a phone on the desk"
    db.commit()
    result = db.scalar(select(delivery.Result).where(delivery.Result.attempt_id == attempt.id))
    release = delivery_reads.release_status(db, result.id)
    assert release.reason == "a phone on the desk"  # the result page shows it


def test_no_stale_pending_line_after_admission(web, db, face_jpeg):
    resp = web.cand.post(f"/exams/{web.ns.exam.code}/start",
                         data={"agree": "yes", "csrf_token": web.ctoken})
    sid = int(re.search(r"/identity/(\d+)", resp.headers["Location"]).group(1))
    web.cand.post(f"/proctoring/identity/{sid}", data={
        "csrf_token": web.ctoken, "selfie": (io.BytesIO(face_jpeg), "me.jpg"),
        "id_document": (io.BytesIO(face_jpeg), "id.jpg")}, content_type="multipart/form-data")
    page = web.proctor.get(f"/proctor/sessions/{sid}").get_data(as_text=True)
    checks = re.search(r'<ul id="identity-checks">(.*?)</ul>', page, re.DOTALL).group(1)
    assert "Proctor: waiting for a proctor" in checks and "waiting" in checks
    _act(web, sid, "admit", {"reason": "matches the passport"})
    page = web.proctor.get(f"/proctor/sessions/{sid}").get_data(as_text=True)
    checks = re.search(r'<ul id="identity-checks">(.*?)</ul>', page, re.DOTALL).group(1)
    assert checks.count("Proctor:") == 1
    assert "Proctor: matches the passport — <strong>passed</strong>" in checks
    assert "waiting" not in checks and "pending" not in checks


# ---------------------------------------------------------------- 23: words and counts


def test_verifier_results_and_counts_in_peoples_words(app, client, db, proctored, signin,
                                                      csrf_token, blank_jpeg):
    ns = proctored({"identity": "automated+proctor", "snapshot_interval_s": 0})
    signin(client, ns.candidate)
    token = csrf_token(client)
    resp = client.post(f"/exams/{ns.exam.code}/start", data={"agree": "yes", "csrf_token": token})
    sid = int(re.search(r"/identity/(\d+)", resp.headers["Location"]).group(1))
    client.post(f"/proctoring/identity/{sid}", data={
        "csrf_token": token, "selfie": (io.BytesIO(blank_jpeg), "me.jpg"),
        "id_document": (io.BytesIO(blank_jpeg), "id.jpg")}, content_type="multipart/form-data")
    proctor = app.test_client()
    signin(proctor, ns.proctor)
    row = proctor.get("/api/proctoring/console").json["sessions"][0]
    said = "Automatic check: no face found in the selfie; no face found in the photo ID"
    assert row["identity"] == f"to check ({said})"
    assert row["flags"]["latest"] == said
    console = proctor.get("/proctor").get_data(as_text=True)
    assert "1 live session<" in console and "1 live sessions" not in console
    page = proctor.get(f"/proctor/sessions/{sid}").get_data(as_text=True)
    assert said in page
    assert "face_count" not in page and "selfie:" not in page


def test_counts_in_flag_messages_and_snapshots_are_singular_when_one():
    from proctoring.flags import _times

    assert _times(1) == "once" and _times(3) == "3 times"
    from microcred.words import plural

    assert plural(1, "live session") == "1 live session"
    assert plural(0, "live session") == "0 live sessions"
    assert plural(2, "face") == "2 faces"


# ---------------------------------------------------------------- 27: the dialog, by keyboard


def _console(ctx, base: str, proctor, errors: list[str]):
    """A page of ``ctx`` signed in as ``proctor`` on the console; script errors to ``errors``."""
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/signin")
    page.fill("#email", proctor.email)
    page.fill("#password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(base + "/proctor")
    return page


@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_actions_dialog_by_keyboard(browser, live_server, db, proctored):
    from playwright.sync_api import expect

    ns = proctored({"identity": "proctor", "fullscreen": False, "snapshot_interval_s": 0})
    _admitted_and_started(db, ns)
    ctx = browser.new_context()
    try:
        errors: list[str] = []
        page = _console(ctx, live_server.url, ns.proctor, errors)
        expect(page.locator("#console-count")).to_have_text("1 live session")
        opener = page.get_by_role("button", name=f"Actions for {ns.candidate.display_name}")
        opener.focus()
        page.keyboard.press("Enter")
        dialog = page.locator("#action-dialog")
        expect(dialog).to_be_visible()
        # running: Pause is offered, Resume is not (hidden really hides)
        expect(page.locator("#action-pause")).to_be_visible()
        expect(page.locator("#action-resume")).to_be_hidden()
        expect(dialog.locator("form[data-action=admit]")).to_be_hidden()
        page.locator("#action-pause").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#action-result")).to_have_text(
            "Exam paused: the candidate's clock is stopped.")
        # the pressed button is gone; focus stays on the result, inside the dialog
        expect(page.locator("#action-pause")).to_be_hidden()
        expect(page.locator("#action-resume")).to_be_visible()
        expect(page.locator("#action-result")).to_be_focused()
        # Tab goes on inside the dialog, and reaches Resume
        for _ in range(15):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "action-resume":
                break
            assert page.evaluate("document.getElementById('action-dialog')"
                                 ".contains(document.activeElement)")
        assert page.evaluate("document.activeElement.id") == "action-resume"
        page.keyboard.press("Enter")
        expect(page.locator("#action-result")).to_have_text("Exam resumed.")
        expect(page.locator("#action-result")).to_be_focused()
        # terminate by keyboard: the session moves to the finished table, without a clock
        page.locator("#terminate-reason").focus()
        page.keyboard.type("a second person in the room")
        page.keyboard.press("Enter")
        expect(page.locator("#action-result")).to_have_text("Session terminated.")
        expect(page.locator("#action-result")).to_be_focused()
        expect(page.locator("#action-none")).to_be_visible()
        for hidden in ("pause", "resume", "extend", "message", "terminate"):
            expect(dialog.locator(f"form[data-action={hidden}]")).to_be_hidden()
        expect(dialog.locator("form[data-action=note]")).to_be_visible()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        finished = page.locator("#finished-rows tr", has_text=ns.candidate.display_name)
        expect(finished).to_contain_text("Terminated: a second person in the room")
        expect(finished).not_to_contain_text("lost")
        expect(page.locator("#console-rows tr")).to_have_count(0)
        expect(page.locator("#console-count")).to_have_text("0 live sessions")
        assert not errors, errors
    finally:
        ctx.close()


@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_snapshots_label_follows_its_faces_once_counted(browser, app, db, proctored,
                                                          face_jpeg):
    """A frame's faces are counted off the request, after the console has shown it: its
    thumbnail's label (what a screen reader says of it) must then say the count, not "faces
    being counted" until the next frame (the row was redrawn, the image kept with its old
    label)."""
    from playwright.sync_api import expect

    from proctoring import events, face_checks
    from tests.conftest import LiveServer

    ns = proctored({"identity": "proctor", "fullscreen": False, "snapshot_interval_s": 0})
    ps, _ = _admitted_and_started(db, ns)
    vault = app.extensions["microcred.proctoring"].vault
    prepared = events.prepare_snapshot(vault, session_id=ps.id, image=face_jpeg, count=False)
    events.record_snapshot(db, db.get(ProctorSession, ps.id), vault, seq=1, image=prepared)
    db.commit()
    server = LiveServer(app).start()  # no face checker beside it: this test counts, when told
    ctx = browser.new_context()
    try:
        errors: list[str] = []
        page = _console(ctx, server.url, ns.proctor, errors)
        thumbnail = page.locator("#console-rows tr", has_text=ns.candidate.display_name
                                 ).locator("img")
        expect(thumbnail).to_have_attribute("alt", "Snapshot: faces being counted")
        assert face_checks.run_pending(db, vault) == 1
        db.commit()
        expect(thumbnail).to_have_attribute("alt", "Snapshot: 1 face")  # the next poll
        assert not errors, errors
    finally:
        ctx.close()
        server.stop()


def test_minutes_that_are_digits_only_to_isdigit_are_a_clear_4xx(web, db):
    """A form's minutes of "²" (a digit to ``str.isdigit``, not to ``int``) or of 5,000 digits
    (past ``int``'s limit) was a ValueError: a 500 on the proctor's extend."""
    ps, _attempt = _admitted_and_started(db, web.ns)
    for minutes in ("²", "9" * 5000):
        resp = web.proctor.post(f"/api/proctoring/sessions/{ps.id}/actions/extend",
                                data={"minutes": minutes, "reason": "outage"},
                                headers={"X-CSRFToken": web.ptoken})
        assert 400 <= resp.status_code < 500, (minutes[:5], resp.status_code)
