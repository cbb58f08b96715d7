"""Fixtures of the delivery tests: a candidate, a started attempt, and the runner in Chromium
(test_browser_runner, test_runner_a11y)."""
from __future__ import annotations

import pytest

from tests.runner_pages import watched


@pytest.fixture
def candidate(make_user):
    return make_user("candidate")


@pytest.fixture
def started(client, candidate, signin, csrf_token, demo_exam):
    """A signed-in candidate with a started attempt: (attempt_id, csrf token)."""
    signin(client, candidate)
    token = csrf_token(client)
    resp = client.post(f"/exams/{demo_exam.code}/start", data={"agree": "yes", "csrf_token": token})
    assert resp.status_code == 302
    return int(resp.headers["Location"].rsplit("/", 1)[1]), token


@pytest.fixture
def watch(page):
    """Fail on any script error or 4xx/5xx answer of the server (a missing favicon aside)."""
    yield from watched(page, refusals_fail=True)


@pytest.fixture
def refusals(page):
    """Fail on any script error; collect the server's 4xx/5xx answers for the test to judge."""
    yield from watched(page, refusals_fail=False)
