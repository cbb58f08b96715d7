"""What the browser tests of the candidate's runner share (tests/delivery, tests/proctoring):
signing in, starting an exam, reading the timer, and watching a page for script errors and
refused requests."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator

PASSWORD = "correct horse battery staple"  # tests/conftest.py's make_user password
TIMER = re.compile(r"^\d+:\d\d$")


def watched(page, *, refusals_fail: bool) -> Iterator[list[str]]:
    """For a ``watch`` fixture: fail the test on any script error; the server's 4xx/5xx
    answers (a missing favicon aside) fail it too (``refusals_fail``), or are yielded for the
    test to judge."""
    errors: list[str] = []
    refused: list[str] = errors if refusals_fail else []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("response", lambda r: refused.append(f"{r.status} {r.url}")
            if r.status >= 400 and "favicon" not in r.url else None)
    page.set_default_timeout(10_000)
    yield refused
    assert not errors, errors


def signin(page, base: str, email: str) -> None:
    page.goto(base + "/signin")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/signin" not in url)


def start(page, base: str, exam, *, from_list: bool = False) -> int:
    """Open the exam (from "My exams" with ``from_list``), accept the agreement, start; the
    attempt's id once the timer runs."""
    from playwright.sync_api import expect

    if from_list:
        page.goto(base + "/exams")
        page.get_by_role("link", name=exam.title).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(exam.title)
    else:
        page.goto(f"{base}/exams/{exam.code}")
    page.get_by_label("I have read and accept the candidate agreement.").check()
    page.get_by_role("button", name="Start the exam").click()
    page.wait_for_url(re.compile(r"/attempts/\d+$"))
    expect(page.locator("#timer")).to_have_text(TIMER)
    return int(page.url.rsplit("/", 1)[1])


def seconds(text: str) -> int:
    """``"1:02:03"`` / ``"02:03"`` -> seconds."""
    return sum(int(v) * 60 ** i for i, v in enumerate(reversed(text.strip().split(":"))))


def until(condition, what: str, timeout: float = 10.0) -> None:
    """Wait (polling every 0.1 s) until ``condition()``; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def focused(page, selector: str) -> bool:
    """Whether the element with keyboard focus matches ``selector``."""
    return page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)",
                         selector)
