"""A two-panelist modified Angoff round in Chromium (issue 14): the facilitator creates the study
and seats two panelists, each signs in in their own browser context and rates every item on
their own screen (with the keyboard: tab to a field, type, Enter), a bad rating is refused with
the item named, the facilitator closes the round and sees the cut, its standard error and the
panel's agreement, and releases the round's results, which the panelist then sees (the panel's
cut and impact, never the other panelist's ratings).

Numbers (by hand): panelist 1 rates .6 .7 .5 .8 .4 (sum 3.0), panelist 2 .8 .9 .7 .6 .5 (sum
3.5): cut 3.25, SD of the panelist cuts sqrt(.125) = .354, SE = .354 / sqrt(2) = .250.
"""
from __future__ import annotations

import re

import pytest

from tests.runner_pages import signin
from tests.sittings import sit

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

RATINGS = ([0.6, 0.7, 0.5, 0.8, 0.4], [0.8, 0.9, 0.7, 0.6, 0.5])


def _context(browser, base: str, email: str):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    signin(page, base, email)
    return context, page, errors


def test_two_panelists_rate_an_angoff_round_and_the_facilitator_sees_the_cut(
        browser, live_server, db, make_user, build_exam):
    from playwright.sync_api import expect

    exam = build_exam(db)  # five items, one point each
    sit(db, exam, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    facilitator = make_user("psychometrician")
    panelists = [make_user("panelist", name=f"Panelist {n}") for n in ("Ada", "Bo")]
    base = live_server.url

    fac_context, fac, fac_errors = _context(browser, base, facilitator.email)
    fac.get_by_role("link", name="Standard setting").click()
    fac.get_by_label("Title").fill("Angoff, main panel")
    fac.get_by_label("Exam and reference form").select_option("T-EXAM|T-EXAM-F1")
    fac.get_by_label("Method").select_option("angoff")
    fac.get_by_role("button", name="Create the study").click()
    expect(fac.get_by_role("heading", level=1)).to_have_text("Angoff, main panel")
    study_url = fac.url
    for p in panelists:
        fac.get_by_label("Seat a panelist (email of their account)").fill(p.email)
        fac.get_by_role("button", name="Seat on the panel").click()
        expect(fac.locator(".flashes")).to_contain_text(f"{p.email}) is on the panel")
    fac.get_by_role("button", name="Open round 1").click()
    expect(fac.locator(".flashes")).to_contain_text("Round 1 is open")

    contexts = []
    for panelist, ratings in zip(panelists, RATINGS):
        context, page, errors = _context(browser, base, panelist.email)
        contexts.append((context, page, errors))
        expect(page).to_have_url(re.compile(r"/psych/panel/$"))  # their home: their panels
        page.get_by_role("link", name="Angoff, main panel").click()
        expect(page.get_by_role("heading", name="Round 1: your judgments")).to_be_visible()
        fields = page.get_by_label(re.compile(r"^Probability for "))
        expect(fields).to_have_count(5)
        if panelist is panelists[0]:  # a probability outside [0, 1] is refused, item named
            fields.nth(0).fill("1.5")
            fields.nth(0).press("Enter")
            expect(page.get_by_role("alert")).to_contain_text("the probability 1.5 is outside [0, 1]")
            expect(page.get_by_label(re.compile(r"^Probability for T-EXAM-A1"))).to_have_attribute(
                "aria-invalid", "true")
        for k, value in enumerate(ratings):  # by keyboard: focus, type
            fields.nth(k).focus()
            page.keyboard.press("Control+A")
            page.keyboard.type(str(value))
        page.keyboard.press("Enter")  # submits the form from the last field
        expect(page.locator(".flashes")).to_contain_text("5 rating(s) changed")
        expect(fields.nth(4)).to_have_value(str(ratings[4]))

    # the facilitator watches progress, closes the round, sees the cut and the agreement
    fac.goto(study_url)
    expect(fac.locator("#panelists")).to_contain_text("5 of 5")
    fac.get_by_role("button", name="Close round 1").click()
    expect(fac.locator(".flashes")).to_contain_text("Round 1 is closed")
    rec = fac.locator("#rec-raw")
    expect(rec).to_contain_text("3.25")
    expect(rec).to_contain_text("SE 0.25")
    row = fac.locator("#rounds tbody tr").first
    expect(row).to_contain_text("0.354")  # SD of the panelist cuts
    expect(fac.locator("#rec-pass")).to_contain_text("50.0%")  # raw 4 or more: 2 of 4
    expect(fac.locator("#panelist-cuts")).to_contain_text("Panelist Ada")
    fac.get_by_role("button", name="Release round 1's results to the panel").click()
    expect(fac.locator(".flashes")).to_contain_text("shown to the panel")

    _, ada, _ = contexts[0]
    ada.reload()
    expect(ada.get_by_role("heading", name="Round 1: the panel's results")).to_be_visible()
    body = ada.locator("main").inner_text()
    assert "3.25" in body and "50.0%" in body
    assert "Panelist Bo" not in body and "0.9" not in body  # nothing of the other panelist's
    for context, _, errors in contexts:
        assert not errors, errors
        context.close()
    assert not fac_errors, fac_errors
    fac_context.close()


def test_every_method_s_pages_pass_axe(browser, live_server, db, make_user, build_exam):
    """The facilitator's page and the panelist's screen of each method (with judgments in
    place, so the charts, booklet, radio groups and classification forms are drawn), and a
    refused rating's error state, run through axe-core (tests/test_axe.py's audit)."""
    from assessment.psych import studies as ss
    from assessment.psych.study_results import reference_scores
    from itembank.parameters import ParameterValues, supersede_parameters
    from tests.test_axe import _audit

    exam = build_exam(db, code="AX", n_per_domain=(3, 2))
    sit(db, exam, [[1] * k + [0] * (5 - k) for k in (1, 2, 2, 3, 3, 3, 4, 4, 5, 5)])
    supersede_parameters(db, [ParameterValues(fi.item_version_id, "2pl", 1.0, b) for fi, b in
                              zip(exam.forms[0].form.items, (-1.0, -0.4, 0.0, 0.5, 1.1))],
                         source="test")
    facilitator, panelist = make_user("psychometrician"), make_user("panelist")
    form = exam.forms[0].form.code
    judged = {"hofstee": {"c_min": 40, "c_max": 80, "f_min": 10, "f_max": 40},
              "beuk": {"cut": 60, "pass_rate": 70}, "bookmark": {"page": 3}}
    urls = []
    for method in ss.METHODS:
        study = ss.create_study(db, exam=exam, title=f"{method} panel", method=method,
                                reference_form_code=form, facilitator=facilitator)
        urls.append(f"/psych/studies/{study.id}")
        if study.method in ss.CLASSIFICATION_METHODS:
            scored = reference_scores(db, study).result_ids
            ss.record_classifications(db, study, [(rid, k % 2) for k, rid in enumerate(scored)],
                                      by=facilitator, source="form")
            ss.invite_panelist(db, study, panelist.email, by=facilitator)  # classifies too
            urls.append(f"/psych/panel/{study.id}")
            continue
        ss.invite_panelist(db, study, panelist.email, by=facilitator)
        ss.open_round(db, study, by=facilitator)
        items = ss.study_items(db, study)
        if method in ss.ITEM_METHODS:
            ss.record_ratings(db, study, panelist, 1, {str(i.version.id): "1" for i in items})
        else:
            ss.record_judgment(db, study, panelist, 1, judged[method], n_pages=len(items))
        ss.close_round(db, study, by=facilitator)
        ss.release_round(db, study, 1, by=facilitator)
        ss.open_round(db, study, by=facilitator)
        urls.append(f"/psych/panel/{study.id}")
        if method == "bookmark":
            urls.append(f"/psych/studies/{study.id}/booklet")
    db.commit()
    problems = []
    base = live_server.url
    for user in (facilitator, panelist):
        context, page, errors = _context(browser, base, user.email)
        for url in urls:
            mine = url.startswith("/psych/panel/") == (user is panelist)
            if not mine:
                continue
            response = page.goto(base + url)
            assert response.status == 200, url
            problems += _audit(page, url)
        if user is panelist:  # the error state of a refused rating
            page.goto(base + "/psych/panel/")
            page.get_by_role("link", name="angoff panel", exact=True).click()
            page.get_by_label(re.compile(r"^Probability for ")).first.fill("7")
            page.get_by_role("button", name=re.compile("Save my round")).click()
            page.get_by_role("alert").wait_for()
            problems += _audit(page, "refused rating")
        assert not errors, errors
        context.close()
    assert not problems, "\n".join(problems)


def test_a_panelist_classifies_candidates_with_the_keyboard(browser, live_server, db, make_user,
                                                            build_exam):
    """Contrasting groups on the panelist's own screen: tab to a candidate's labelled choice,
    arrow keys to choose, Enter on the Save button; the facilitator's page shows the panelist
    as the one who entered them."""
    from playwright.sync_api import expect

    from assessment.psych import studies as ss

    exam = build_exam(db, code="KB", n_per_domain=(3, 2))
    sit(db, exam, [[1] * k + [0] * (5 - k) for k in (1, 2, 4, 5)], who="kb")
    facilitator = make_user("psychometrician")
    panelist = make_user("panelist", name="Panelist Cy")
    study = ss.create_study(db, exam=exam, title="Contrasting groups panel",
                            method="contrasting_groups",
                            reference_form_code=exam.forms[0].form.code, facilitator=facilitator)
    ss.invite_panelist(db, study, panelist.email, by=facilitator)
    db.commit()
    base = live_server.url
    context, page, errors = _context(browser, base, panelist.email)
    page.goto(f"{base}/psych/panel/{study.id}")
    first = page.get_by_label(re.compile(r"^kb0@example.org \(attempt \d+\)$"))
    second = page.get_by_label(re.compile(r"^kb3@example.org \(attempt \d+\)$"))
    first.focus()
    page.keyboard.press("ArrowDown")  # not classified -> 0: Not qualified
    expect(first).to_have_value("0")
    second.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # -> 1: Qualified
    expect(second).to_have_value("1")
    save = page.get_by_role("button", name="Save my classifications")
    save.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".flashes")).to_contain_text("Saved: 2 classification(s) changed.")
    expect(page.get_by_label(re.compile(r"^kb0@example.org"))).to_have_value("0")
    expect(page.get_by_label(re.compile(r"^kb3@example.org"))).to_have_value("1")
    assert not errors, errors
    context.close()
    fac_context, fac, _ = _context(browser, base, facilitator.email)
    fac.goto(f"{base}/psych/studies/{study.id}")
    expect(fac.locator("#candidates")).to_contain_text("Panelist Cy")
    fac_context.close()
