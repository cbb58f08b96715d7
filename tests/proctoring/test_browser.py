"""Two Chromium contexts: a candidate passes the identity check with the fake camera (playing a
1280x720 photo-like video, so the photos weigh what a real webcam's do) and sits the exam; a proctor watches the session appear on the console, admits, pauses (the candidate's
timer stops), sends a message, resumes and extends time."""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from proctoring.models import StoredImage
from tests.runner_pages import seconds, signin

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_candidate_and_proctor(browser, live_server, db, proctored):
    from playwright.sync_api import expect

    ns = proctored({"identity": "proctor", "review": "flagged", "fullscreen": False,
                    "snapshot_interval_s": 5})
    base = live_server.url
    cand_ctx = browser.new_context(permissions=["camera"])
    proc_ctx = browser.new_context()
    try:
        cand, proc = cand_ctx.new_page(), proc_ctx.new_page()
        errors: list[str] = []
        for pg in (cand, proc):
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            pg.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            pg.set_default_timeout(15_000)

        # the candidate starts and is sent to the identity check; photos from the fake camera
        signin(cand, base, ns.candidate.email)
        cand.goto(f"{base}/exams/{ns.exam.code}")
        cand.check("#agree")
        cand.click("text=Start the exam")
        expect(cand.locator("h1")).to_contain_text("Identity check")
        cand.click("#take-selfie")
        cand.click("#take-id")
        expect(cand.locator("#id_document-preview")).to_be_visible()
        with cand.expect_request(lambda r: r.method == "POST" and "/proctoring/identity/" in r.url
                                 ) as sent:
            cand.click("#identity-submit")
        expect(cand.locator("#identity-status")).to_contain_text("A proctor is checking")
        # two camera photos of hundreds of KB each went through the CSRF check and were kept
        body = int(sent.value.all_headers()["content-length"])
        assert body > 400_000, body
        db.commit()
        stored = db.execute(select(StoredImage.width, StoredImage.size)).all()
        assert [w for w, _ in stored] == [1280, 1280] and min(s for _, s in stored) > 100_000, stored

        # the proctor sees the session appear and admits the candidate
        signin(proc, base, ns.proctor.email)
        proc.goto(f"{base}/proctor")
        row = proc.locator("#console-rows tr", has_text=ns.candidate.display_name)
        expect(row).to_contain_text("Identity pending")
        row.get_by_role("button", name=re.compile("Actions for")).click()
        proc.locator("#action-dialog form[data-action=admit] button").click()
        expect(proc.locator("#action-result")).to_contain_text("Candidate admitted")
        proc.click("#action-close")

        # the candidate's page notices within a few seconds and goes on to the exam
        cand.locator("#continue-link").click(timeout=15_000)
        expect(cand.locator("#agreement-accepted")).to_be_visible()  # accepted once, before
        cand.click("text=Start the exam")
        expect(cand.locator("#timer")).to_have_text(re.compile(r"\d+:\d\d"))
        expect(row).to_contain_text("In progress", timeout=10_000)
        expect(row).to_contain_text("answered")

        # pause: the candidate's pause screen shows and the timer stands still
        row.get_by_role("button", name=re.compile("Actions for")).click()
        proc.locator("#action-pause").click()
        expect(proc.locator("#action-result")).to_contain_text("paused")
        expect(cand.locator("#paused-overlay")).to_be_visible(timeout=12_000)
        time.sleep(0.6)  # let the runner's 250 ms tick draw the frozen time
        frozen = cand.locator("#timer").inner_text()
        time.sleep(2.2)
        assert cand.locator("#timer").inner_text() == frozen
        expect(row).to_contain_text("Paused")

        # a message the candidate sees
        proc.fill("#message-text", "Please keep your face in view of the camera.")
        proc.locator("#action-dialog form[data-action=message] button").click()
        expect(proc.locator("#action-result")).to_contain_text("Message sent")
        expect(cand.locator("#proctor-messages")).to_contain_text(
            "Please keep your face in view of the camera.", timeout=12_000)

        # resume: the clock runs again; then ten more minutes
        proc.locator("#action-resume").click()
        expect(proc.locator("#action-result")).to_contain_text("resumed")
        expect(cand.locator("#paused-overlay")).to_be_hidden(timeout=12_000)
        before = seconds(cand.locator("#timer").inner_text())
        proc.fill("#extend-minutes", "10")
        proc.fill("#extend-reason", "the candidate lost time to a camera problem")
        proc.locator("#action-dialog form[data-action=extend] button").click()
        expect(proc.locator("#action-result")).to_contain_text("Added 10 minutes")
        deadline = time.time() + 12
        while time.time() < deadline and seconds(cand.locator("#timer").inner_text()) < before + 500:
            time.sleep(0.5)
        assert seconds(cand.locator("#timer").inner_text()) >= before + 500
        proc.click("#action-close")

        # the fake camera's frames have no face: snapshots arrive and are flagged
        expect(row.locator("img")).to_be_visible(timeout=15_000)
        expect(row).to_contain_text("no face", timeout=10_000)
        assert not [e for e in errors if "favicon" not in e], errors
    finally:
        cand_ctx.close()
        proc_ctx.close()
