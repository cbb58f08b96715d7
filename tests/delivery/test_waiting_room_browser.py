"""The waiting room's page in Chromium: a candidate put in line is told their place through a
status line screen readers announce, can check it by keyboard, and the page goes on to the exam
by itself once the line admits them, with the exam's time starting then."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest

from assessment.delivery.models import Attempt
from tests.runner_pages import signin

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


@pytest.fixture
def app(settings, db):
    """The app (and so the live server) with a waiting room admitting one start per second."""
    from assessment.app import create_app

    application = create_app(dataclasses.replace(settings, start_rate=1.0), TESTING=True,
                             JOBS_IMMEDIATE=True)
    yield application
    application.extensions["microcred.database"].dispose()


def test_the_waiting_page_announces_the_place_and_goes_on_by_itself(
        page, live_server, app, db, make_user, build_exam, clock, watch, csrf_token):
    from playwright.sync_api import expect

    from tests.conftest import signin as signin_client

    exam = build_exam(db, code="QUEUE", minutes=10)
    t0 = clock.now()
    for _ in range(2):  # a second's worth of starts goes at once: these two fill it
        client = app.test_client()
        signin_client(client, make_user("candidate"))
        started = client.post(f"/exams/{exam.code}/start",
                              data={"agree": "yes", "csrf_token": csrf_token(client)})
        assert started.status_code == 302

    candidate = make_user("candidate")
    signin(page, live_server.url, candidate.email)
    page.goto(f"{live_server.url}/exams/{exam.code}")
    page.get_by_label("I have read and accept the candidate agreement.").check()
    page.get_by_role("button", name="Start the exam").click()

    expect(page.get_by_role("heading", name="You are in line to start")).to_be_visible()
    status = page.get_by_role("status").filter(has_text="in line")
    expect(status).to_have_text(re.compile(r"You are number 1 in line\."))
    assert status.get_attribute("aria-live") == "polite"
    # by keyboard: the button asks at once (the form: the same place, the page again)
    button = page.get_by_role("button", name="Check my place now")
    for _ in range(40):
        page.keyboard.press("Tab")
        if button.evaluate("b => b === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="in line")).to_have_text(
        re.compile(r"You are number 1 in line\."))
    db.commit()
    assert db.query(Attempt).filter_by(candidate_id=candidate.id).count() == 0

    clock.advance(5)  # the line's slot (t0 + 2 s) has passed: the script's next ask is let in
    page.wait_for_url(re.compile(r"/attempts/\d+$"), timeout=8000)
    expect(page.locator("#timer")).to_have_text(re.compile(r"^10:00$|^9:5\d$"))
    db.commit()
    attempt = db.query(Attempt).filter_by(candidate_id=candidate.id).one()
    assert attempt.started_at == t0 + dt.timedelta(seconds=5)
