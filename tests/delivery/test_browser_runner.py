"""The candidate's exam runner in Chromium, on SQLite and PostgreSQL: keyboard answers, a reload
mid-exam, working offline, time running out, review and submit, no key before finalization,
accessible names, keyboard-only use and 200% zoom."""
from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import select

from assessment.delivery import service
from assessment.delivery.models import Attempt, ResponseSave, Result
from tests.runner_pages import TIMER, focused, seconds, signin, start, until

RATIONALE = "Because the key says so."
pytestmark = pytest.mark.browser


# ---------------------------------------------------------------- helpers


def _timer(page) -> int:
    return seconds(page.locator("#timer").inner_text())


def _saved(page, timeout: float = 10_000) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#save-status")).to_have_text("Saved", timeout=timeout)


def _attempt(db, attempt_id: int) -> Attempt:
    """The attempt as the app last committed it."""
    db.commit()
    attempt = db.get(Attempt, attempt_id)
    db.refresh(attempt)
    return attempt


def _latest(db, attempt_id: int) -> dict[int, ResponseSave]:
    """The server's newest save per item, read after the app's commits."""
    return service.current_saves(db, _attempt(db, attempt_id))


def _codes(db, attempt) -> dict[str, int]:
    """Item code (A1, B2, ...) -> item version id in this attempt."""
    from itembank.models import Item, ItemVersion

    rows = db.execute(
        select(Item.code, ItemVersion.id).join(ItemVersion, ItemVersion.item_id == Item.id)
        .where(ItemVersion.id.in_(attempt.item_order))
    ).all()
    return {code.rsplit("-", 1)[1]: vid for code, vid in rows}


def _shown_item(page) -> tuple[str, str]:
    """(item code, input type) of the question on screen, read from its option texts."""
    label = page.locator("#options-list label").first.inner_text()
    code = re.search(r"of (\w+)$", label.strip()).group(1)
    kind = page.locator("#options-list input").first.get_attribute("type")
    return code, kind


def _option(page, letter: str, code: str):
    """The radio or checkbox of option ``letter`` of item ``code`` (by its accessible name)."""
    name = f"Option {letter} of {code}"
    return page.get_by_role("radio", name=name, exact=True).or_(
        page.get_by_role("checkbox", name=name, exact=True))


def _answer_correctly(page) -> str:
    """Answer the question on screen with its key (single choice B, multiple response A+C)."""
    code, kind = _shown_item(page)
    for letter in (["A", "C"] if kind == "checkbox" else ["B"]):
        _option(page, letter, code).check()
    return code


def _sorted(value):
    return sorted(value) if isinstance(value, list) else value


def _tab_until(page, selector: str, limit: int = 40) -> None:
    """Press Tab until the focused element matches ``selector``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page, selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


# ---------------------------------------------------------------- 1. answers survive a reload


def test_keyboard_answers_flag_and_reload_keep_everything(page, live_server, db, candidate,
                                                          build_exam, watch):
    from playwright.sync_api import expect

    exam = build_exam(db, code="RELOAD", minutes=10, shuffle=False)  # A1, A2, A3, B1, B2; A..D
    base = live_server.url
    signin(page, base, candidate.email)
    attempt_id = start(page, base, exam, from_list=True)
    heading = page.locator("#question-heading")
    expect(heading).to_have_text("Question 1 of 5")
    assert page.locator("#prev").is_disabled()

    # question 1 by keyboard: Tab into the radio group, Space picks A, ArrowDown moves to B
    _tab_until(page, "#options-list input")
    assert page.evaluate("document.activeElement.value") == "A"
    page.keyboard.press("Space")
    expect(_option(page, "A", "A1")).to_be_checked()
    page.keyboard.press("ArrowDown")
    expect(_option(page, "B", "A1")).to_be_checked()
    expect(_option(page, "A", "A1")).not_to_be_checked()
    expect(page.get_by_role("button", name="Question 1, answered")).to_be_visible()
    _saved(page)

    # Tab on to Next (Previous is disabled, Flag comes first) and press Enter
    _tab_until(page, "#next", limit=5)
    page.keyboard.press("Enter")
    expect(heading).to_have_text("Question 2 of 5")
    assert focused(page, "#question-heading"), "focus should move to the new question"

    # question 2: answer C, flag it for review
    _option(page, "C", "A2").check()
    page.get_by_role("button", name="Flag for review").click()
    flag = page.locator("#flag")
    expect(flag).to_have_attribute("aria-pressed", "true")
    expect(flag).to_have_text("Flagged for review")
    expect(page.locator("#announcer")).to_have_text("Question 2 flagged for review.")
    nav2 = page.get_by_role("button", name="Question 2, answered, flagged for review")
    expect(nav2).to_have_class(re.compile(r"\banswered\b.*\bflagged\b"))
    _saved(page)

    # once a few seconds have gone by (so a clock restarted at the full limit would show),
    # change the answer to D, go on to question 3 and reload at once: neither the new answer
    # nor the new position has reached the server yet, only this browser's storage
    until(lambda: _timer(page) <= 597, "the clock to run for a few seconds")
    _option(page, "D", "A2").check()
    _tab_until(page, "#next", limit=5)
    page.keyboard.press("Enter")
    expect(heading).to_have_text("Question 3 of 5")
    before = _timer(page)
    page.reload()
    expect(page.locator("#timer")).to_have_text(TIMER)
    after = _timer(page)
    assert after <= before and before - after <= 3, (before, after)

    expect(heading).to_have_text("Question 3 of 5")
    expect(page.get_by_role("button", name="Question 1, answered")).to_have_class(
        re.compile(r"\banswered\b"))
    expect(nav2).to_have_class(re.compile(r"\banswered\b.*\bflagged\b"))
    expect(page.get_by_role("button", name="Question 3, not answered")).to_have_attribute(
        "aria-current", "step")
    for n in (4, 5):
        expect(page.get_by_role("button", name=f"Question {n}, not answered")).to_be_visible()
    page.get_by_role("button", name="Previous").click()
    expect(heading).to_have_text("Question 2 of 5")
    expect(_option(page, "D", "A2")).to_be_checked()
    expect(_option(page, "C", "A2")).not_to_be_checked()
    expect(flag).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Previous").click()
    expect(heading).to_have_text("Question 1 of 5")
    expect(_option(page, "B", "A1")).to_be_checked()

    # the server has both answers, the flag, and where the candidate is
    _saved(page)
    until(lambda: _attempt(db, attempt_id).position == 0, "the position to reach the server")
    attempt = _attempt(db, attempt_id)
    by_code = _codes(db, attempt)
    latest = _latest(db, attempt_id)
    assert latest[by_code["A1"]].value == "B" and latest[by_code["A1"]].flagged is False
    assert latest[by_code["A2"]].value == "D" and latest[by_code["A2"]].flagged is True
    assert set(latest) == {by_code["A1"], by_code["A2"]}
    assert attempt.position == 0
    assert attempt.status == "in_progress"


# ---------------------------------------------------------------- 2. offline, then back online


def test_offline_answers_wait_on_the_device_and_reach_the_server(page, live_server, db, candidate,
                                                                 demo_exam, watch):
    from playwright.sync_api import expect

    base = live_server.url
    signin(page, base, candidate.email)
    attempt_id = start(page, base, demo_exam, from_list=True)
    status = page.locator("#save-status")
    expect(status).to_have_text("Saved")

    page.context.set_offline(True)
    expect(status).to_contain_text("Offline")
    code = _answer_correctly(page)
    expect(status).to_have_text("Offline: your answers are kept on this device")
    expect(status).to_have_attribute("data-state", "offline")
    expect(page.get_by_role("button", name="Question 1, answered")).to_be_visible()
    page.wait_for_timeout(1500)  # the debounced save has been tried (and failed) by now
    expect(status).to_contain_text("Offline")
    queue = json.loads(page.evaluate(f"localStorage.getItem('microcred:attempt:{attempt_id}:queue')"))
    item_id = _codes(db, _attempt(db, attempt_id))[code]
    expected = ["A", "C"] if code.startswith("B1") else "B"
    assert [(s["item"], _sorted(s["value"])) for s in queue] == [(item_id, expected)], queue
    assert _latest(db, attempt_id) == {}, "nothing can have reached the server while offline"

    page.context.set_offline(False)
    _saved(page)
    expect(status).to_have_attribute("data-state", "saved")
    latest = _latest(db, attempt_id)
    assert set(latest) == {item_id}
    assert _sorted(latest[item_id].value) == expected
    assert json.loads(page.evaluate(
        f"localStorage.getItem('microcred:attempt:{attempt_id}:queue')")) == []


def test_a_busy_server_503_is_retried_and_the_answer_kept(page, app, live_server, db, candidate,
                                                          demo_exam, refusals):
    """The server is full (microcred/backpressure.py): the save gets 503 with Retry-After at
    once; the runner says "Saving…" (not offline, not frozen), keeps the answer on the device,
    sends it again after the wait, and the answer reaches the server."""
    from playwright.sync_api import expect

    from microcred.backpressure import InFlightLimit

    limiter = InFlightLimit(app.wsgi_app, limit=1, retry_after_s=1)
    app.wsgi_app = limiter
    base = live_server.url
    signin(page, base, candidate.email)
    attempt_id = start(page, base, demo_exam, from_list=True)
    status = page.locator("#save-status")
    expect(status).to_have_text("Saved")
    assert limiter._slots.acquire(timeout=5)  # the one slot is taken: the server is full
    try:
        code = _answer_correctly(page)
        until(lambda: limiter.turned_away >= 1, "a save turned away with 503")
        expect(status).to_have_text("Saving…")
        expect(status).to_have_attribute("data-state", "saving")
        page.wait_for_timeout(1500)  # past one Retry-After: tried again, turned away again
        expect(status).to_have_text("Saving…")
        assert limiter.turned_away >= 2, "the runner sends the save again after Retry-After"
        assert _latest(db, attempt_id) == {}
    finally:
        limiter._slots.release()  # room again
    _saved(page)
    item_id = _codes(db, _attempt(db, attempt_id))[code]
    latest = _latest(db, attempt_id)
    expected = ["A", "C"] if code.startswith("B1") else "B"
    assert set(latest) == {item_id} and _sorted(latest[item_id].value) == expected
    assert refusals and all(r.startswith("503 ") for r in refusals), refusals


# ---------------------------------------------------------------- 3. time runs out


def test_time_running_out_submits_the_saved_answers(page, live_server, db, candidate, build_exam,
                                                    watch):
    from playwright.sync_api import expect

    exam = build_exam(db, code="SHORT", minutes=0.1)  # six seconds; the test app's grace is 2 s
    base = live_server.url
    signin(page, base, candidate.email)
    attempt_id = start(page, base, exam, from_list=True)
    assert _timer(page) <= 6
    code = _answer_correctly(page)
    _saved(page)

    # no submit: the clock runs out, the page says so, and the server finalizes after its grace
    expect(page.get_by_role("alertdialog", name="Time is up")).to_be_visible(timeout=10_000)
    expect(page.locator("#timer")).to_have_text("00:00")
    expect(page.locator("#announcer")).to_have_text(
        "Time is up. Your saved answers are being submitted.")
    page.wait_for_url(re.compile(rf"/attempts/{attempt_id}/result$"), timeout=15_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your result: Exam SHORT")
    expect(page.locator("main")).to_contain_text("submitted automatically when time ran out")
    expect(page.get_by_role("heading", name="Not passed")).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Score1 of 5")
    expect(facts).to_contain_text("Percent20.0%")
    expect(facts).to_contain_text("Answered1 of 5 questions")

    attempt = _attempt(db, attempt_id)
    assert attempt.status == "finalized"
    assert attempt.finalize_reason == "time_expired"
    result = db.scalar(select(Result).where(Result.attempt_id == attempt_id))
    assert (result.raw_score, result.max_score, result.answered) == (1, 5, 1)
    by_domain = {d["code"]: d["score"] for d in result.domain_scores}
    assert by_domain[code[0]] == 1 and sum(by_domain.values()) == 1
    # the runner left nothing behind on the device
    assert page.evaluate(
        f"Object.keys(localStorage).filter((k) => k.startsWith('microcred:attempt:{attempt_id}:'))"
    ) == []


# ---------------------------------------------------------------- 4. review, confirm, result


FORBIDDEN_KEYS = {"key", "correct", "rationale", "scoring", "max_score", "domain_code"}


def _json_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _json_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _json_keys(v)}
    return set()


def test_review_confirm_submit_and_result_without_any_key_before(page, live_server, db, candidate,
                                                                demo_exam, watch):
    from playwright.sync_api import expect

    base = live_server.url
    seen: list[tuple[str, str, str]] = []  # (url, content type, body) of every answer

    def keep(response) -> None:
        if response.url.startswith(base) and response.status < 300:
            try:
                body = response.text()
            except Exception:  # noqa: BLE001 - a page navigated away from before its body was read
                body = ""
            seen.append((response.url, response.headers.get("content-type", ""), body))

    page.on("response", keep)
    page.add_init_script("""
        for (const name of ["microcred:attempt", "microcred:finalized"]) {
          document.addEventListener(name, (e) => {
            const log = JSON.parse(sessionStorage.getItem("events") || "[]");
            log.push([name, e.detail]);
            sessionStorage.setItem("events", JSON.stringify(log));
          });
        }
    """)
    signin(page, base, candidate.email)
    attempt_id = start(page, base, demo_exam, from_list=True)
    heading = page.locator("#question-heading")

    # every question but the multiple-response one (B1) is answered with its key; B1 is flagged
    skipped = None
    for n in range(1, 6):
        expect(heading).to_have_text(f"Question {n} of 5")
        code, _kind = _shown_item(page)
        if code == "B1":
            skipped = n
            page.locator("#flag").click()
            expect(page.locator("#flag")).to_have_attribute("aria-pressed", "true")
        else:
            _answer_correctly(page)
        if n < 5:
            page.get_by_role("button", name="Next").click()
    assert skipped is not None
    expect(page.get_by_role("button", name="Next")).to_be_disabled()
    _saved(page)

    # the review screen
    page.get_by_role("button", name="Review answers").click()
    review = page.get_by_role("region", name="Review your answers")
    expect(review).to_be_visible()
    expect(page.locator("#question-view")).to_be_hidden()
    assert focused(page, "#review-heading")
    expect(page.locator("#review-summary")).to_have_text(
        "4 of 5 answered; 1 not answered; 1 flagged for review.")
    rows = review.locator("tbody tr")
    expect(rows).to_have_count(5)
    for n in range(1, 6):
        expect(rows.nth(n - 1)).to_have_text(
            f"Question {n}Not answeredFlagged" if n == skipped else f"Question {n}Answered")
    # a row leads back to its question, and back again to the review
    review.get_by_role("button", name=f"Question {skipped}", exact=True).click()
    expect(heading).to_have_text(f"Question {skipped} of 5")
    expect(page.locator("#flag")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Review answers").click()

    # submitting asks first; "Keep working" changes nothing
    page.get_by_role("button", name="Submit the exam").click()
    dialog = page.get_by_role("dialog", name="Submit your exam?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(
        "You have 1 unanswered question. 1 question is flagged for review. "
        "Once you submit, you cannot change your answers.")
    assert focused(page, "#confirm-cancel"), "the safe choice should have the focus"
    dialog.get_by_role("button", name="Keep working").click()
    expect(dialog).to_be_hidden()
    assert _attempt(db, attempt_id).status == "in_progress"

    # nothing the browser received so far holds a key, a rationale or a scoring rule
    page_source = [body for url, _t, body in seen if re.search(r"/attempts/\d+$", url)]
    assert page_source, "the runner's HTML was not captured"
    api = [(url, body) for url, ctype, body in seen if "json" in ctype]
    assert any("/heartbeat" in url for url, _b in api) or any("/saves" in url for url, _b in api)
    for url, _ctype, body in seen:
        assert RATIONALE not in body, url
    for url, body in api:
        assert not _json_keys(json.loads(body)) & FORBIDDEN_KEYS, (url, body)
    state = json.loads(page.locator("#attempt-state").text_content())
    assert not _json_keys(state) & FORBIDDEN_KEYS
    assert RATIONALE not in page.content()
    assert page.evaluate("typeof window.microcredRunner.attemptId") == "number"

    # submit for real
    page.get_by_role("button", name="Submit the exam").click()
    dialog.get_by_role("button", name="Submit now").click()
    page.wait_for_url(re.compile(rf"/attempts/{attempt_id}/result$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Your result: {demo_exam.title}")
    expect(page.get_by_role("heading", name="Passed", exact=True)).to_be_visible()
    facts = page.locator("dl.facts")
    for text in ("Score4 of 5", "Percent80.0%", "Pass mark60%", "Answered4 of 5 questions"):
        expect(facts).to_contain_text(text)
    domains = page.get_by_role("table", name="Your score in each domain of the exam blueprint")
    expect(domains.locator("tbody tr")).to_have_text(
        ["Domain A33 of 3100.0%", "Domain B21 of 250.0%"])
    expect(page.locator("main")).not_to_contain_text("automatically")

    events = json.loads(page.evaluate("sessionStorage.getItem('events')"))
    assert ["microcred:attempt", {"attempt_id": attempt_id, "csrf_token": events[0][1]["csrf_token"]}] \
        in events
    assert ["microcred:finalized", {"result_url": f"/attempts/{attempt_id}/result"}] in events
    attempt = _attempt(db, attempt_id)
    assert (attempt.status, attempt.finalize_reason) == ("finalized", "submitted")
    result = db.scalar(select(Result).where(Result.attempt_id == attempt_id))
    assert (result.raw_score, result.percent, result.passed) == (4, 80.0, True)


def test_submit_waits_for_a_save_still_on_its_way(page, app, live_server, db, candidate, demo_exam,
                                                  watch):
    """"Submit now" while the last answer is still travelling: the runner waits for it, then
    submits, and the answer counts."""
    from playwright.sync_api import expect

    slow = _slow_saves(app, seconds=1.5)
    base = live_server.url
    signin(page, base, candidate.email)
    attempt_id = start(page, base, demo_exam, from_list=True)
    _answer_correctly(page)
    slow.on = True
    page.wait_for_timeout(500)  # past the debounce: the save is on its way, and slow
    page.get_by_role("button", name="Review answers").click()
    page.get_by_role("button", name="Submit the exam").click()
    page.get_by_role("dialog").get_by_role("button", name="Submit now").click()
    expect(page.locator("#confirm-text")).not_to_contain_text("not saved yet", timeout=1000)
    page.wait_for_url(re.compile(rf"/attempts/{attempt_id}/result$"))
    expect(page.locator("dl.facts")).to_contain_text("Score1 of 5")
    assert slow.hits >= 1
    result = db.scalar(select(Result).where(Result.attempt_id == attempt_id))
    assert (result.raw_score, result.answered) == (1, 1)


def _slow_saves(app, seconds: float):
    """Make the server take ``seconds`` over every save while ``.on`` is true."""
    from types import SimpleNamespace

    knob = SimpleNamespace(on=False, hits=0)
    inner = app.wsgi_app

    def wsgi(environ, start_response):
        if knob.on and environ["PATH_INFO"].endswith("/saves"):
            knob.hits += 1
            time.sleep(seconds)
        return inner(environ, start_response)

    app.wsgi_app = wsgi
    return knob


# ---------------------------------------------------------------- 5. accessibility basics


INTERACTIVE_ROLES = {"button", "link", "radio", "checkbox", "textbox", "combobox", "listbox",
                     "option", "menuitem", "tab", "switch", "slider", "spinbutton", "searchbox"}


def _nameless_controls(page) -> list[str]:
    """Interactive nodes of the accessibility tree (as Chromium computes it) without a name."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    controls = [n for n in nodes if not n.get("ignored")
                and n.get("role", {}).get("value") in INTERACTIVE_ROLES]
    assert controls, "no controls found in the accessibility tree"
    return [f"{n['role']['value']} (backend node {n.get('backendDOMNodeId')})" for n in controls
            if not str(n.get("name", {}).get("value", "")).strip()]


def test_every_control_has_a_name_and_the_runner_works_by_keyboard_alone(page, live_server, db,
                                                                         candidate, build_exam,
                                                                         watch):
    from playwright.sync_api import expect

    exam = build_exam(db, code="KEYS", shuffle=False)  # A1, A2, A3 single choice; B1 multiple
    base = live_server.url
    signin(page, base, candidate.email)
    attempt_id = start(page, base, exam, from_list=True)
    heading = page.locator("#question-heading")

    # names: the question view, with radios and (question 4) checkboxes
    assert _nameless_controls(page) == []
    expect(page.get_by_role("group", name="Answer options for question 1. Select one.")) \
        .to_be_visible()
    for letter in "ABCD":
        expect(page.get_by_role("radio", name=f"Option {letter} of A1", exact=True)).to_be_visible()
    for name in ("Previous", "Flag for review", "Next", "Review answers"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("navigation", name="Questions")).to_be_visible()
    expect(page.get_by_role("timer")).to_have_text(TIMER)
    expect(page.get_by_role("status")).to_have_text("Saved")
    page.get_by_role("button", name="Question 4, not answered").click()
    expect(page.get_by_role(
        "group", name="Answer options for question 4. Select 2.")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Option C of B1", exact=True)).to_be_visible()
    assert _nameless_controls(page) == []
    page.get_by_role("button", name="Question 1, not answered").click()

    # keyboard alone from here on: answer 1 (Space on the first radio, ArrowDown to B)
    page.locator("body").focus()
    _tab_until(page, "#options-list input")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="Option B of A1", exact=True)).to_be_checked()
    _tab_until(page, "#next", limit=5)
    page.keyboard.press("Enter")
    expect(heading).to_have_text("Question 2 of 5")
    assert focused(page, "#question-heading")
    # question 2: flag it with the keyboard
    _tab_until(page, "#flag", limit=5)
    page.keyboard.press("Enter")
    expect(page.locator("#flag")).to_have_attribute("aria-pressed", "true")
    # the navigator's buttons work with Enter too
    _tab_until(page, "#navigator-list button[aria-label^='Question 5,']")
    page.keyboard.press("Enter")
    expect(heading).to_have_text("Question 5 of 5")
    _tab_until(page, "#options-list input")
    page.keyboard.press("Space")
    expect(page.get_by_role("radio", name="Option A of B2", exact=True)).to_be_checked()
    # review, open the confirmation, Escape closes it, then submit
    _tab_until(page, "#to-review", limit=6)
    page.keyboard.press("Enter")
    assert focused(page, "#review-heading")
    expect(page.locator("#review-summary")).to_have_text(
        "2 of 5 answered; 3 not answered; 1 flagged for review.")
    assert _nameless_controls(page) == []
    _tab_until(page, "#submit-open")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Submit your exam?")
    expect(dialog).to_be_visible()
    assert focused(page, "#confirm-cancel")
    assert _nameless_controls(page) == []
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert focused(page, "#submit-open"), "focus should return to the button that opened it"
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Tab")
    assert focused(page, "#confirm-yes")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/attempts/{attempt_id}/result$"))
    expect(page.locator("dl.facts")).to_contain_text("Score1 of 5")  # B on A1; A on B2 is wrong
    assert _nameless_controls(page) == []


def test_at_200_percent_zoom_the_question_fits_without_horizontal_scrolling(browser, live_server,
                                                                            db, candidate,
                                                                            demo_exam):
    """A 1280 x 800 window at 200% zoom lays out like a 640 x 400 CSS-pixel viewport."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 640, "height": 400}, device_scale_factor=2)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        base = live_server.url
        signin(page, base, candidate.email)
        start(page, base, demo_exam, from_list=True)

        def fits(*locators) -> None:
            width = page.evaluate("document.documentElement.clientWidth")
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"the page scrolls sideways: {scroll} > {width}"
            for loc in locators:
                for i in range(loc.count()):
                    one = loc.nth(i)
                    expect(one).to_be_visible()
                    box = one.bounding_box()
                    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (one, box)

        fits(page.locator("#question-heading"), page.locator("#question-stem p"),
             page.locator("#options-list .option"), page.locator("#options-list input"),
             page.get_by_role("button", name="Next"), page.locator("#timer"),
             page.locator("#save-status"))
        # the next question, the navigator, the review table and the confirmation fit as well
        page.get_by_role("button", name="Next").click()
        fits(page.locator("#question-heading"), page.locator("#options-list .option"),
             page.get_by_role("button", name="Next"), page.get_by_role("button", name="Previous"),
             page.locator("#navigator-list button"))
        page.get_by_role("button", name="Review answers").click()
        fits(page.locator("#review-heading"), page.locator("#review-rows tr"),
             page.get_by_role("button", name="Submit the exam"))
        page.get_by_role("button", name="Submit the exam").click()
        fits(page.get_by_role("dialog"), page.get_by_role("button", name="Submit now"))
    finally:
        context.close()
