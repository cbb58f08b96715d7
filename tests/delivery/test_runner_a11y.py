"""The candidate's runner in Chromium, for issue 9's findings on the candidate's side: a "Select
TWO." item stops at two and says so (22); the paused and time-up overlays are modal, block every
answer, and a refused save is not retried in a loop (26); at 320 px nothing scrolls sideways and
the camera preview covers nothing, the flag marker stands out from an answered button, and focus
lands on the result's heading (28); an extension is announced, a terminated candidate is told why
(21); the submit confirmation counts flagged questions and the identity page shows no empty image
boxes (23). Each is a keyboard walk where a keyboard user met the bug."""
from __future__ import annotations

import io
import re
import time

import pytest

from assessment.delivery import service
from assessment.delivery.models import Attempt
from tests.runner_pages import focused, seconds, signin, start

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


# ---------------------------------------------------------------- helpers


def _latest(db, attempt_id: int):
    db.commit()
    attempt = db.get(Attempt, attempt_id)
    db.refresh(attempt)
    return service.current_saves(db, attempt)


def _tab_stays_in(page, overlay: str, presses: int = 12) -> None:
    """Tab and Shift+Tab never reach anything outside ``overlay`` (the browser's own UI, where
    focus goes when a page has nothing else to offer, shows as <body>)."""
    for key in ["Tab"] * presses + ["Shift+Tab"] * presses:
        page.keyboard.press(key)
        where = page.evaluate(
            "(o) => { const a = document.activeElement;"
            " return !a || a === document.body || !!a.closest(o) ? 'ok' : a.outerHTML.slice(0, 120); }",
            overlay)
        assert where == "ok", f"{key} left the overlay for {where}"


# ---------------------------------------------------------------- 22. "Select TWO."


def test_a_select_two_item_stops_at_two_and_says_so(page, live_server, db, candidate, build_exam,
                                                    refusals):
    from playwright.sync_api import expect

    exam = build_exam(db, code="PICK2", shuffle=False)  # question 4 is B1: select 2 of A-D
    signin(page, live_server.url, candidate.email)
    attempt_id = start(page, live_server.url, exam)
    page.get_by_role("button", name="Question 4, not answered").click()
    group = page.get_by_role("group", name="Answer options for question 4. Select 2.")
    expect(group).to_be_visible()
    status = page.locator("[data-select-status]")
    expect(status).to_have_text("Select 2; you have selected 0.")
    expect(status).to_have_attribute("aria-live", "polite")
    box = {x: page.get_by_role("checkbox", name=f"Option {x} of B1", exact=True) for x in "ABCD"}

    # by keyboard: Space on A, Tab on to C, Space
    page.locator("#question-heading").focus()
    page.keyboard.press("Tab")
    assert focused(page, "#options-list input[value=A]")
    page.keyboard.press("Space")
    expect(status).to_have_text("Select 2; you have selected 1.")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert focused(page, "#options-list input[value=C]")
    page.keyboard.press("Space")
    expect(status).to_have_text(
        "Select 2; you have selected 2. To choose another option, first clear one.")
    for x in "BD":
        expect(box[x]).to_be_disabled()
    # the next Tab skips the disabled D and leaves the options
    page.keyboard.press("Tab")
    assert not focused(page, "#options-list input")
    # a third tick forced past the disabled box changes nothing
    page.evaluate("() => { const d = document.querySelector('#options-list input[value=D]');"
                  " d.disabled = false; d.click(); }")
    expect(box["D"]).not_to_be_checked()
    expect(status).to_contain_text("you have selected 2.")
    expect(page.locator("#save-status")).to_have_text("Saved")
    latest = _latest(db, attempt_id)
    assert [sorted(s.value) for s in latest.values()] == [["A", "C"]]

    # clearing one frees the others again
    box["C"].uncheck()
    expect(status).to_have_text("Select 2; you have selected 1.")
    for x in "BCD":
        expect(box[x]).to_be_enabled()
    assert not refusals, refusals


# ---------------------------------------------------------------- 26. modal overlays


def test_the_paused_overlay_is_modal_and_a_refused_save_is_not_retried_in_a_loop(
        page, live_server, db, candidate, build_exam, refusals):
    from playwright.sync_api import expect

    exam = build_exam(db, code="PAUSE", shuffle=False)
    signin(page, live_server.url, candidate.email)
    attempt_id = start(page, live_server.url, exam)
    saves: list[float] = []
    page.on("request", lambda r: saves.append(time.monotonic()) if r.url.endswith("/saves")
            else None)
    page.get_by_role("radio", name="Option A of A1", exact=True).check()
    expect(page.locator("#save-status")).to_have_text("Saved")

    # the proctor pauses; the candidate, not told yet, changes the answer: the save is refused
    service.pause_attempt(db, service.get_attempt(db, attempt_id), by_user_id=None)
    db.commit()
    page.get_by_role("radio", name="Option B of A1", exact=True).check()
    overlay = page.get_by_role("alertdialog", name="Your exam is paused")
    expect(overlay).to_be_visible()
    assert focused(page, "#paused-heading")
    page.evaluate("""() => { window.statusWrites = 0;
        new MutationObserver(() => { window.statusWrites += 1; }).observe(
          document.getElementById('save-status'), {childList: true, characterData: true, subtree: true}); }""")
    refused_at = len(saves)
    assert refused_at >= 1 and any("/saves" in r and r.startswith("409") for r in refusals), refusals

    # modal: the rest of the page is inert; Tab never leaves the overlay
    for selector in (".runner-body", ".runner-bar", "header"):
        assert page.evaluate("(s) => document.querySelector(s).inert", selector), selector
    _tab_stays_in(page, "#paused-overlay")
    # nothing changes an answer: keys, a click through the overlay, a scripted click
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    page.get_by_role("radio", name="Option C of A1", exact=True).click(force=True, timeout=2000)
    page.evaluate("() => document.querySelector('#options-list input[value=D]').click()")
    expect(page.locator("#options-list input:checked")).to_have_count(1)
    expect(page.locator("#options-list input[value=B]")).to_be_checked()

    # and the refused save waits for the resume instead of hammering the server
    page.wait_for_timeout(3000)
    assert len(saves) == refused_at, f"{len(saves) - refused_at} retries while paused"
    assert page.evaluate("window.statusWrites") <= 1
    expect(page.locator("#save-status")).to_contain_text("Paused")
    assert _latest(db, attempt_id)[_first_item(db, attempt_id)].value == "A"

    # resumed: the overlay goes, focus returns to the question, the kept answer is saved
    service.resume_attempt(db, service.get_attempt(db, attempt_id), by_user_id=None)
    db.commit()
    expect(overlay).to_be_hidden(timeout=8000)
    assert not page.evaluate("document.querySelector('.runner-body').inert")
    assert focused(page, "#question-heading")
    expect(page.locator("#save-status")).to_have_text("Saved")
    assert _latest(db, attempt_id)[_first_item(db, attempt_id)].value == "B"


def _first_item(db, attempt_id: int) -> int:
    db.commit()
    return db.get(Attempt, attempt_id).item_order[0]


def test_the_time_up_overlay_is_modal_and_focus_lands_on_the_result(page, live_server, db,
                                                                    candidate, build_exam, refusals):
    from playwright.sync_api import expect

    exam = build_exam(db, code="TIMEUP", minutes=0.1)
    signin(page, live_server.url, candidate.email)
    attempt_id = start(page, live_server.url, exam)
    expect(page.get_by_role("alertdialog", name="Time is up")).to_be_visible(timeout=10_000)
    assert focused(page, "#timeup-heading")
    assert page.evaluate("document.querySelector('.runner-body').inert")
    _tab_stays_in(page, "#timeup-overlay", presses=4)
    page.wait_for_url(re.compile(rf"/attempts/{attempt_id}/result$"), timeout=15_000)
    expect(page.locator("#result-heading")).to_be_focused()


# ---------------------------------------------------------------- 21. extension, termination


def test_an_extension_is_announced_and_a_termination_says_why(page, live_server, db, candidate,
                                                              make_user, build_exam, refusals):
    from playwright.sync_api import expect

    proctor = make_user("proctor")
    exam = build_exam(db, code="EXTEND", minutes=10)
    signin(page, live_server.url, candidate.email)
    attempt_id = start(page, live_server.url, exam)
    before = seconds(page.locator("#timer").inner_text())
    service.extend_attempt(db, service.get_attempt(db, attempt_id), seconds=600,
                           by_user_id=proctor.id, reason="camera trouble")
    db.commit()
    announcer = page.locator("#announcer")
    expect(announcer).to_contain_text("The proctor has given you 10 minutes more.",
                                      timeout=8000)
    expect(announcer).to_contain_text(re.compile(r"Time left: (19|20):\d\d\."))
    assert seconds(page.locator("#timer").inner_text()) >= before + 590

    reason = "Your phone was in view of the camera."
    service.terminate_attempt(db, service.get_attempt(db, attempt_id), by_user_id=proctor.id,
                              reason=reason)
    db.commit()
    page.wait_for_url(re.compile(rf"/attempts/{attempt_id}/result$"), timeout=8000)
    expect(page.get_by_role("heading", name="Your exam was ended by the proctor")).to_be_visible()
    expect(page.locator("#termination-reason")).to_have_text(reason)
    expect(page.locator("#result-heading")).to_be_focused()


# ---------------------------------------------------------------- 23 and 28. submitting


def test_the_confirmation_counts_flagged_questions_and_focus_lands_on_the_result(
        page, live_server, db, candidate, build_exam, refusals):
    from playwright.sync_api import expect

    exam = build_exam(db, code="FLAGS", shuffle=False)
    signin(page, live_server.url, candidate.email)
    attempt_id = start(page, live_server.url, exam)
    page.get_by_role("radio", name="Option B of A1", exact=True).check()
    page.get_by_role("button", name="Flag for review").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Flag for review").click()
    page.get_by_role("button", name="Review answers").click()
    page.get_by_role("button", name="Submit the exam").click()
    expect(page.locator("#confirm-text")).to_have_text(
        "You have 4 unanswered questions. 2 questions are flagged for review. "
        "Once you submit, you cannot change your answers.")
    page.keyboard.press("Tab")
    assert focused(page, "#confirm-yes")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/attempts/{attempt_id}/result$"))
    expect(page.locator("#result-heading")).to_be_focused()
    expect(page.locator("#result-heading")).to_have_text("Your result: Exam FLAGS")


# ---------------------------------------------------------------- 28. 320 px, the flag marker


def _covered(page, selector: str) -> str | None:
    """Scroll ``selector`` into view; what covers its centre, if anything but itself."""
    page.locator(selector).first.scroll_into_view_if_needed()
    return page.evaluate("""(s) => {
        const el = document.querySelector(s);
        const r = el.getBoundingClientRect();
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return top && (el === top || el.contains(top)) ? null : (top ? top.outerHTML.slice(0, 80) : 'nothing');
    }""", selector)


def _scrolls_sideways(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth")


def test_at_320px_nothing_scrolls_sideways_and_the_camera_covers_nothing(browser, live_server,
                                                                         db, candidate,
                                                                         build_exam):
    from playwright.sync_api import expect

    exam = build_exam(db, code="NARROW", policy={"proctoring": {
        "identity": "none", "review": "never", "fullscreen": False, "snapshot_interval_s": 5}})
    context = browser.new_context(viewport={"width": 320, "height": 568},
                                  permissions=["camera"])
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        signin(page, live_server.url, candidate.email)
        start(page, live_server.url, exam)
        expect(page.locator(".proctor-camera video")).to_be_visible()
        expect(page.locator(".proctor-camera figcaption")).to_have_text("Camera on")
        assert not _scrolls_sideways(page)
        for selector in ("#question-heading", "#next", "#flag", "#to-review", "#timer"):
            assert _covered(page, selector) is None, (selector, _covered(page, selector))
        page.get_by_role("button", name="Review answers").click()
        expect(page.locator("#review-heading")).to_be_focused()
        assert not _scrolls_sideways(page), "the review screen scrolls sideways at 320 px"
        for selector in ("#review-heading", "#review-rows button", "#back-to-question",
                         "#submit-open"):
            assert _covered(page, selector) is None, (selector, _covered(page, selector))
    finally:
        context.close()


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    def lum(rgb):
        def channel(c):
            c /= 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        r, g, bl = (channel(c) for c in rgb[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_flag_marker_stands_out_on_answered_and_unanswered_buttons(page, live_server, db,
                                                                       candidate, build_exam,
                                                                       refusals):
    """WCAG 1.4.11: the marker that says "flagged" needs 3:1 against the button around it,
    measured on the pixels Chromium draws."""
    from PIL import Image
    from playwright.sync_api import expect

    exam = build_exam(db, code="MARK", shuffle=False)
    signin(page, live_server.url, candidate.email)
    start(page, live_server.url, exam)
    page.get_by_role("radio", name="Option B of A1", exact=True).check()
    page.get_by_role("button", name="Flag for review").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Flag for review").click()
    for name in ("Question 1, answered, flagged for review",
                 "Question 2, not answered, flagged for review"):
        button = page.get_by_role("button", name=name)
        expect(button).to_be_visible()
        page.mouse.move(0, 0)
        shot = Image.open(io.BytesIO(button.screenshot())).convert("RGB")
        w, h = shot.size
        marker = shot.getpixel((w // 4, h - 3))        # inside the bottom band
        face = shot.getpixel((w // 4, h // 4))         # the button's face, away from the digit
        assert _contrast(marker, face) >= 3, (name, marker, face, _contrast(marker, face))


# ---------------------------------------------------------------- 23. the identity page


def test_the_identity_page_shows_no_empty_image_boxes(browser, live_server, db, candidate,
                                                      build_exam):
    from playwright.sync_api import expect

    exam = build_exam(db, code="IDPAGE", policy={"proctoring": {
        "identity": "proctor", "review": "never", "fullscreen": False, "snapshot_interval_s": 0}})
    context = browser.new_context(permissions=["camera"])
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        signin(page, live_server.url, candidate.email)
        page.goto(f"{live_server.url}/exams/{exam.code}")
        page.get_by_label("I have read and accept the candidate agreement.").check()
        page.get_by_role("button", name="Start the exam").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Identity check")
        expect(page.locator("#take-selfie")).to_be_visible()  # the camera is on
        images = page.locator("#identity img")
        expect(images).to_have_count(2)
        for i in range(2):
            expect(images.nth(i)).to_be_hidden()
        page.locator("#take-selfie").click()
        expect(page.locator("#selfie-preview")).to_be_visible()
        expect(page.locator("#id_document-preview")).to_be_hidden()
    finally:
        context.close()



def test_at_320px_no_candidate_page_scrolls_sideways(browser, live_server, db, candidate,
                                                     build_exam):
    """WCAG 1.4.10 (reflow) on every page of the candidate's way through an exam."""
    from playwright.sync_api import expect

    exam = build_exam(db, code="REFLOW-320")
    context = browser.new_context(viewport={"width": 320, "height": 568})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        base = live_server.url
        signin(page, base, candidate.email)
        wide = []
        for path in ("/exams", f"/exams/{exam.code}", "/wallet", "/verify"):
            page.goto(base + path)
            if _scrolls_sideways(page):
                wide.append(path)
        attempt_id = start(page, base, exam)
        if _scrolls_sideways(page):
            wide.append("runner: question")
        page.get_by_role("button", name="Review answers").click()
        if _scrolls_sideways(page):
            wide.append("runner: review")
        page.get_by_role("button", name="Submit the exam").click()
        page.get_by_role("dialog").get_by_role("button", name="Submit now").click()
        page.wait_for_url(re.compile(rf"/attempts/{attempt_id}/result$"))
        expect(page.locator("#result-heading")).to_be_focused()
        if _scrolls_sideways(page):
            wide.append("result")
        page.goto(base + "/exams")
        if _scrolls_sideways(page):
            wide.append("/exams with an attempt")
        assert not wide, f"these scroll sideways at 320 px: {wide}"
    finally:
        context.close()
