"""From an item to a candidate's answer, in Chromium (issue 11): an item author writes the item
in the item editor and submits it; an admin approves it (it is published: operational), writes
a blueprint in the blueprint editor, puts the item on a form in the form builder (watching
coverage), publishes the form, attaches it to a new exam in the exam editor; a candidate sits
the exam and answers the item, and the result counts it."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from assessment.delivery.models import Result
from itembank.models import Item, ItemVersion
from tests.test_item_editor_browser import _signin

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def _signed_in(browser, base: str, email: str):
    """A fresh browser context (its own cookies) and a page in it signed in as ``email``."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    _signin(page, base, email)
    return context, page


def test_author_build_a_form_attach_it_and_answer_it(browser, live_server, db, make_user):
    from playwright.sync_api import expect

    author, admin, candidate = (make_user(r) for r in ("item_author", "admin", "candidate"))
    base = live_server.url

    # the item, in the item editor: drafted and submitted by its author
    context, page = _signed_in(browser, base, author.email)
    page.get_by_role("link", name="Item bank").first.click()
    page.get_by_role("link", name="New item").click()
    page.get_by_label("Item code").fill("E2E-1")
    page.get_by_label("Blueprint domain code").fill("GEO")
    page.get_by_label("Question (stem)").click()
    page.keyboard.type("Which city is the capital of France?")
    page.get_by_label("Option A", exact=True).fill("Lyon")
    page.get_by_label("Option B", exact=True).fill("Paris")
    page.get_by_label("Option C", exact=True).fill("Marseille")
    page.get_by_label("Option B is right").check()
    expect(page.locator("#preview")).to_contain_text("Which city is the capital of France?")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"/bank/items/E2E-1\?version=1$"))
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator(".flashes")).to_contain_text("is now in review")
    context.close()

    # the admin approves (publishes) it, then builds the rest
    context, page = _signed_in(browser, base, admin.email)
    page.goto(base + "/bank/review")
    page.get_by_role("link", name="E2E-1 v1").click()
    page.get_by_role("button", name="Approve (operational)").click()
    expect(page.locator(".flashes")).to_contain_text("is now approved")
    db.rollback()
    version = db.scalar(select(ItemVersion).join(Item).where(Item.code == "E2E-1"))
    assert version.status == "approved"
    db.rollback()

    # the blueprint, in the blueprint editor
    page.get_by_role("link", name="Blueprints").click()
    page.get_by_role("link", name="New blueprint").click()
    page.get_by_label("Code", exact=True).fill("E2E-BP")
    page.get_by_label("Name", exact=True).fill("Geography")
    page.get_by_label("Domain 1 code").fill("GEO")
    page.get_by_label("Domain 1 name").fill("Capitals")
    page.get_by_label("Domain 1 scored items").fill("1")
    page.get_by_role("button", name="Save blueprint").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Blueprint E2E-BP")

    # the form, in the form builder: coverage goes from 0 of 1 to met
    page.get_by_role("link", name="Forms", exact=True).click()
    page.get_by_label("Code").fill("E2E-FORM")
    page.get_by_label("Blueprint").select_option("E2E-BP")
    page.get_by_role("button", name="Build by hand").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Form E2E-FORM")
    expect(page.locator("#coverage")).to_contain_text("0 of 1")
    page.get_by_label("Item version").select_option(str(version.id))
    page.get_by_role("button", name="Add to the form").click()
    expect(page.locator("#coverage")).to_contain_text("Met")
    expect(page.locator("#placed")).to_contain_text("E2E-1 v1")
    page.get_by_role("button", name="Publish the form").click()
    expect(page.get_by_text("Published", exact=True)).to_be_visible()

    # the exam, in the exam editor
    page.get_by_role("link", name="Exams", exact=True).click()
    page.get_by_role("link", name="New exam").click()
    page.get_by_label("Code", exact=True).fill("E2E-EXAM")
    page.get_by_label("Title", exact=True).fill("Capitals of Europe")
    page.get_by_label("Candidate agreement").fill("I will work alone.")
    page.get_by_label("Blueprint", exact=True).select_option("E2E-BP")
    page.get_by_label("E2E-FORM").check()
    page.get_by_label("Time limit (minutes)").fill("10")
    page.get_by_label("Pass mark (percent)").fill("50")
    page.get_by_label("Proctored").uncheck()
    page.get_by_role("button", name="Save exam").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Exam E2E-EXAM")
    context.close()

    # the candidate answers it
    context, page = _signed_in(browser, base, candidate.email)
    page.goto(base + "/exams")
    page.get_by_role("link", name="Capitals of Europe").click()
    page.get_by_label("I have read and accept the candidate agreement.").check()
    page.get_by_role("button", name="Start the exam").click()
    page.wait_for_url(re.compile(r"/attempts/\d+$"))
    expect(page.get_by_text("Which city is the capital of France?")).to_be_visible()
    page.get_by_role("radio", name=re.compile("Paris")).check()
    expect(page.locator("#save-status")).to_have_text("Saved")
    page.get_by_role("button", name="Review answers").click()
    page.get_by_role("button", name="Submit the exam").click()
    page.get_by_role("dialog").get_by_role("button", name="Submit now").click()
    page.wait_for_url(re.compile(r"/attempts/\d+/result$"))
    attempt_id = int(page.url.rsplit("/", 2)[1])
    context.close()
    db.rollback()
    result = db.scalar(select(Result).where(Result.attempt_id == attempt_id))
    assert (result.raw_score, result.max_score, result.passed) == (1.0, 1.0, True)
