"""The holder's pathway page in a real browser (Debian's chromium through Playwright): what the
holder holds, what each stack still needs, what expires when, and the next step linked to the
exam to take, reached and followed with the keyboard alone; axe-core finds nothing serious."""
from __future__ import annotations

import datetime as dt

import pytest

from credentials import issuance, pathway_rules, pathways
from microcred.db import utcnow
from microcred.records import records
from tests.runner_pages import signin

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


@pytest.fixture
def holder(app, db, make_user, build_exam):
    """Ada holds A (valid 365 days) and B, so the stack S1 = "A and B" was issued; the cluster
    CL = "S1 plus 1 of C, D" still needs C or D; C is earned by passing the exam PW-C."""
    from credentials.config import current

    exam_c = build_exam(db, code="PW-C")
    with app.app_context():
        cfg = current()
        a = issuance.create_achievement(db, cfg, code="A", name="Safe lifting",
                                        description="a", validity_days=365)
        b = issuance.create_achievement(db, cfg, code="B", name="Site induction",
                                        description="b")
        issuance.create_achievement(db, cfg, code="C", name="Crane signals", description="c",
                                    exam_id=exam_c.id)
        issuance.create_achievement(db, cfg, code="D", name="Rigging", description="d")
        s1 = issuance.create_achievement(db, cfg, code="S1", name="Ground crew",
                                         description="s1")
        cl = issuance.create_achievement(db, cfg, code="CL", name="Lifting operations",
                                         description="cluster")
        pathway_rules.save(db, pathway_rules.parse("A, B", ""), achievement=s1)
        pathway_rules.save(db, pathway_rules.parse("S1", "1 of C, D"), achievement=cl)
        db.commit()
        ada = make_user("candidate", email="ada@example.org", name="Ada Lovelace")
        person = records().person(db, ada.id)
        for achievement in (a, b):
            issuance.issue(db, cfg, achievement=achievement, holder=person, kind="exam",
                           evidence=[])
        assert [c.achievement.code for c in pathways.award_completed(db, cfg, person)] == ["S1"]
        db.commit()
    return ada


def test_holder_pathway_page_by_keyboard(holder, live_server, page):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect

    base = live_server.url
    signin(page, base, holder.email)
    # the header's link reaches the page
    page.get_by_role("link", name="My pathways").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/pathways")
    expect(page.get_by_role("heading", level=1)).to_have_text("My pathways")

    held = page.get_by_role("table", name="What you hold")
    expect(held.get_by_role("row")).to_have_count(4)  # header, A, B, S1
    expect(held.get_by_role("row", name="Safe lifting")).to_contain_text("valid")

    cluster = page.get_by_role("region", name="Lifting operations")
    expect(cluster.locator(".pathway-status")).to_have_text("1 of 2 done: 1 more needed.")
    expect(cluster.get_by_role("progressbar")).to_have_attribute("value", "1")
    expect(cluster.get_by_role("list", name="Choose 1 of 2 (0 of 1 done)")).to_contain_text(
        "Crane signals")
    # what expires when: Safe lifting a year from issue; the stack credential has no expiry
    year = (utcnow() + dt.timedelta(days=365)).date().isoformat()
    expect(held.get_by_role("row", name="Safe lifting")).to_contain_text(year)
    ground = page.get_by_role("region", name="Ground crew")
    expect(ground).to_contain_text("Earned")
    expect(ground.get_by_role("list", name="Required: all 2 (2 of 2 done)")).to_contain_text(
        f"Safe lifting — held, valid until {year}")
    expect(cluster.get_by_role("list", name="Required: all 1 (1 of 1 done)")).to_contain_text(
        "Ground crew — held, no expiry")

    # keyboard only: Tab to the next step's link and follow it with Enter
    next_link = cluster.locator(".next-step a")
    expect(next_link).to_have_text("Take the exam Exam PW-C")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('.next-step') !== null"):
            break
    else:
        pytest.fail("Tab never reached the next step's link")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none" or \
        page.evaluate("getComputedStyle(document.activeElement).boxShadow") != "none"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/exams/PW-C")

    page.goto(f"{base}/pathways")
    results = Axe().run(page).response
    serious = [(v["id"], v["help"]) for v in results["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == []
