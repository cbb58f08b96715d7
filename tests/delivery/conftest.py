"""Fixtures of the candidate's runner in Chromium (test_browser_runner, test_runner_a11y)."""
from __future__ import annotations

import pytest

from tests.runner_pages import watched


@pytest.fixture
def candidate(make_user):
    return make_user("candidate")


@pytest.fixture
def watch(page):
    """Fail on any script error or 4xx/5xx answer of the server (a missing favicon aside)."""
    yield from watched(page, refusals_fail=True)


@pytest.fixture
def refusals(page):
    """Fail on any script error; collect the server's 4xx/5xx answers for the test to judge."""
    yield from watched(page, refusals_fail=False)
