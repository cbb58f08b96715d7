"""The item editor in Chromium (issue 11): an item author writes a draft with the keyboard,
watches the live preview follow, saves and submits it; a psychometrician signs off the review
stage and approves it. On SQLite (the flow is the same on PostgreSQL; the services' tests run
on both)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from itembank import workflow
from itembank.models import APPROVED, Item, ItemVersion

PASSWORD = "correct horse battery staple"
pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def _signin(page, base: str, email: str) -> None:
    page.goto(base + "/signin")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/signin" not in page.url


def test_author_drafts_previews_submits_and_a_psychometrician_approves(page, live_server,
                                                                       make_user, db):
    from playwright.sync_api import expect

    author, psych, admin = (make_user(r) for r in ("item_author", "psychometrician", "admin"))
    workflow.set_review_stages(db, admin, [("content", "Content review")])
    db.commit()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.set_default_timeout(10_000)
    base = live_server.url

    _signin(page, base, author.email)
    page.get_by_role("link", name="Item bank").first.click()
    page.get_by_role("link", name="New item").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New item")
    page.get_by_label("Item code").fill("BR-1")
    page.get_by_label("Blueprint domain code").fill("D1")
    stem = page.get_by_label("Question (stem)")
    stem.click()
    page.keyboard.type("Which code is right for unspecified asthma?")
    page.get_by_label("Option A", exact=True).fill("J45.909")
    page.get_by_label("Option B", exact=True).fill("J45.901")
    page.get_by_label("Option C", exact=True).fill("J44.9")
    # the right option, with the keyboard
    page.get_by_label("Option A is right").focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("Option A is right")).to_be_checked()
    # the preview follows the form: stem and options as candidates see them, no key
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Which code is right for unspecified asthma?")
    expect(preview).to_contain_text("J44.9")
    expect(preview.locator("input:checked")).to_have_count(0)
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"/bank/items/BR-1\?version=1$"))
    expect(page.locator(".flashes")).to_contain_text("Draft BR-1 saved.")
    expect(page.locator("#preview")).to_contain_text("J45.909")
    page.get_by_label("Note to the reviewers (optional)").fill("First draft.")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator(".flashes")).to_contain_text("is now in review")
    # an author sees no approve button
    expect(page.get_by_role("button", name="Approve (operational)")).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()

    _signin(page, base, psych.email)
    page.goto(base + "/bank/review")
    page.get_by_role("link", name="BR-1 v1").click()
    page.get_by_label("Stage", exact=True).select_option("content")
    page.get_by_role("button", name="Record sign-off").click()
    expect(page.locator(".flashes")).to_contain_text("Sign-off recorded.")
    page.get_by_role("button", name="Approve (operational)").click()
    expect(page.locator(".flashes")).to_contain_text("is now approved")
    history = page.get_by_role("table").filter(has_text="Submitted")
    expect(history).to_contain_text("Approved: in review -> approved")
    assert errors == []

    db.rollback()
    db.expire_all()
    version = db.scalar(select(ItemVersion).join(Item).where(Item.code == "BR-1"))
    assert (version.status, version.key, version.author_id) == (
        APPROVED, {"correct": ["A"]}, author.id)
