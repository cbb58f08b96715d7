"""Calibration runs (issue 9, finding 20): a calibration is stored as a run and its estimates become
the current item parameters only when a psychometrician approves it; a run that did not converge
needs an explicit override and a reason; every decision is kept; an earlier run can be approved
again. Real calibrations on the demo's simulated history, on SQLite and PostgreSQL, and the
approval by keyboard in Chromium."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from assessment.demo_program import load_demo
from assessment.exams import Exam
from assessment.psych.runs import CalibrationDecision, CalibrationRun
from assessment.users import User
from itembank.models import ItemParameter
from itembank.parameters import current_parameters
from microcred.db import ImmutableRowError
from tests.test_axe import _audit

PASSWORD = "correct horse battery staple"


@pytest.fixture
def demo(db):
    """The demo program with 200 simulated past candidates on two forms; returns the exam and
    its psychometrician's (email, password)."""
    creds = load_demo(db, history=200)
    db.commit()
    people = {role: (email, password) for role, email, password in creds}
    return db.scalar(select(Exam)), people["psychometrician"]


@pytest.fixture
def psych_client(client, demo, signin, db):
    exam, (email, password) = demo
    user = db.scalar(select(User).where(User.email == email))
    signin(client, user, password)
    return client, exam, user


def _calibrate(client, token, exam, **form) -> tuple[int, str]:
    resp = client.post(f"/psych/exams/{exam.code}/calibrate",
                       data={"model": "2pl", "csrf_token": token, **form})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    run_id = int(re.search(r"/psych/runs/(\d+)$", resp.headers["Location"]).group(1))
    return run_id, client.get(f"/psych/runs/{run_id}").get_data(as_text=True)


def test_classical_statistics_of_a_run_against_hand_computed_values():
    """p and the corrected item-total r per column, NaN meaning not presented. Hand-computed:
    item 0 scores (1,1,0,1) against rest scores (1,0,2,2) give r = -0.75 / sqrt(0.75 * 2.75)
    = -sqrt(3/11); item 2, seen by three persons, (0,1,1) against (2,1,2) gives r = -1/2."""
    import math

    import numpy as np

    from assessment.psych.runs import classical_statistics

    nan = float("nan")
    scores = np.array([[1, 1, 0], [1, 0, nan], [0, 1, 1], [1, 1, 1]], dtype=float)
    p, r = classical_statistics(scores)
    assert p == pytest.approx([0.75, 0.75, 2 / 3])
    assert r[0] == pytest.approx(-math.sqrt(3 / 11)) and r[2] == pytest.approx(-0.5)
    # no variance, one person, nobody: undefined, not zero
    p, r = classical_statistics(np.array([[1, 0, nan], [1, 1, nan]], dtype=float))
    assert p[0] == 1.0 and r[0] is None and p[2] is None and r[2] is None
    p, r = classical_statistics(np.array([[1.0, 0.0]]))
    assert p == [1.0, 0.0] and r == [None, None]


def _current(db, exam) -> dict[int, tuple]:
    """item version id -> (row id, a, b, c, source) of its current parameters."""
    db.commit()  # end the test session's snapshot: the app wrote in its own session
    db.expire_all()
    run_versions = db.scalars(select(func.distinct(ItemParameter.item_version_id))).all()
    return {vid: (p.id, p.a, p.b, p.c, p.source)
            for vid, p in current_parameters(db, run_versions).items()}


def _run(db, run_id) -> CalibrationRun:
    db.commit()
    db.expire_all()
    return db.get(CalibrationRun, run_id)


def test_a_run_that_did_not_converge_changes_nothing_until_approved_with_override(psych_client, csrf_token, db):
    client, exam, me = psych_client
    token = csrf_token(client)

    # a converged run is proposed, then approved: its estimates become current
    good_id, page = _calibrate(client, token, exam)
    assert "is stored as proposed" in page and "Proposed: awaiting approval" in page
    assert _current(db, exam) == {}
    assert client.post(f"/psych/runs/{good_id}/approve", data={"csrf_token": token}).status_code == 303
    good = _run(db, good_id)
    assert good.converged and good.status == "approved"
    after_good = _current(db, exam)
    assert len(after_good) == 31
    estimates = {e.item_version_id: (e.a, e.b) for e in good.estimates}
    assert {vid: (a, b) for vid, (_, a, b, _, _) in after_good.items()} == estimates
    assert all(src.startswith(f"calibration run {good_id};") for *_, src in after_good.values())

    # each estimate keeps the run's classical p and corrected r, and the item page shows them
    # per run with its date (the statistics history the issue asks for)
    first = good.estimates[0]
    assert 0 < first.p < 1 and -1 <= first.corrected_r <= 1
    assert all(e.p is not None for e in good.estimates)
    item_page = client.get(f"/bank/items/{first.item_version.item.code}").get_data(as_text=True)
    assert "Statistics history per calibration" in item_page
    row = re.search(rf'<th scope="row">{good_id}</th>(.*?)</tr>', item_page, re.DOTALL).group(1)
    assert good.created_at.strftime("%Y-%m-%d") in row
    assert f"{first.p:.3f}" in row and f"{first.corrected_r:.3f}" in row

    # a run stopped after 2 EM cycles: stored, proposed, nothing current changes
    bad_id, page = _calibrate(client, token, exam, max_iter="2")
    bad = _run(db, bad_id)
    assert not bad.converged and bad.iterations == 2 and bad.status == "proposed"
    assert "The calibration did not converge" in page
    assert _current(db, exam) == after_good

    # approving it without the override is refused, saying why and what to do
    refused = client.post(f"/psych/runs/{bad_id}/approve", data={"csrf_token": token, "reason": "hurry"})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert f"Not approved: calibration run {bad_id} did not converge (it stopped after 2 EM cycles)" in html
    assert "tick" in html and 'role="alert"' in html
    assert _current(db, exam) == after_good and _run(db, bad_id).status == "proposed"

    # the override without a reason is refused too
    no_reason = client.post(f"/psych/runs/{bad_id}/approve",
                            data={"csrf_token": token, "override_not_converged": "yes", "reason": "  "})
    assert no_reason.status_code == 422
    assert "needs a reason" in no_reason.get_data(as_text=True)
    assert _current(db, exam) == after_good

    # with the override and a reason it is approved, and the decision says who, when and why
    why = "two cycles on purpose: a smoke test of the override"
    ok = client.post(f"/psych/runs/{bad_id}/approve",
                     data={"csrf_token": token, "override_not_converged": "yes", "reason": why})
    assert ok.status_code == 303
    bad, good = _run(db, bad_id), _run(db, good_id)
    assert bad.status == "approved" and bad.approved_with_override
    assert bad.decided_by_id == me.id and bad.decided_at is not None and bad.decision_reason == why
    assert good.status == "superseded"
    decision = db.scalars(select(CalibrationDecision).where(CalibrationDecision.run_id == bad_id)).one()
    assert (decision.decision, decision.by_id, decision.reason, decision.override_not_converged) == (
        "approved", me.id, why, True)
    assert decision.at == bad.decided_at
    after_bad = _current(db, exam)
    assert {vid: (a, b) for vid, (_, a, b, _, _) in after_bad.items()} == {
        e.item_version_id: (e.a, e.b) for e in bad.usable_estimates}
    assert all("NOT converged" in src and "override" in src for *_, src in after_bad.values())
    page = client.get(f"/psych/runs/{bad_id}").get_data(as_text=True)
    assert "override: did not converge" in page and why in page and me.email in page

    # the way back: the earlier converged run is approved again; new rows, old rows untouched
    rows_before = {r.id: (r.item_version_id, r.a, r.b, r.source) for r in db.scalars(select(ItemParameter))}
    again = client.post(f"/psych/runs/{good_id}/approve", data={"csrf_token": token, "reason": "back to run 1"})
    assert again.status_code == 303
    back = _current(db, exam)
    assert {vid: (a, b) for vid, (_, a, b, _, _) in back.items()} == estimates
    assert min(row_id for row_id, *_ in back.values()) > max(rows_before)
    assert {r.id: (r.item_version_id, r.a, r.b, r.source)
            for r in db.scalars(select(ItemParameter)) if r.id in rows_before} == rows_before
    assert _run(db, good_id).status == "approved" and _run(db, bad_id).status == "superseded"
    assert [d.decision for d in _run(db, good_id).decisions] == ["approved", "approved"]

    # the current run cannot be approved twice
    twice = client.post(f"/psych/runs/{good_id}/approve", data={"csrf_token": token})
    assert twice.status_code == 422 and "already approved" in twice.get_data(as_text=True)

    # the run list shows every run with its status and people
    listing = client.get(f"/psych/exams/{exam.code}/runs").get_data(as_text=True)
    assert f'>Run {good_id}</a>' in listing and f'>Run {bad_id}</a>' in listing
    assert "Approved (current)" in listing and "Superseded by a later approval" in listing

    # estimates and decisions are never edited in place
    good = _run(db, good_id)
    good.estimates[0].a = 9.0
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()
    good.decisions[0].reason = "rewritten"
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()


def test_rejecting_a_run_keeps_the_parameters_and_it_can_still_be_approved(psych_client, csrf_token, db,
                                                                           make_user, signin):
    client, exam, _ = psych_client
    token = csrf_token(client)
    run_id, page = _calibrate(client, token, exam)
    assert 'for="reject-reason"' in page and 'for="approve-reason"' in page
    no_reason = client.post(f"/psych/runs/{run_id}/reject", data={"csrf_token": token, "reason": ""})
    assert no_reason.status_code == 422 and "say why the run is rejected" in no_reason.get_data(as_text=True)
    too_long = client.post(f"/psych/runs/{run_id}/reject", data={"csrf_token": token, "reason": "x" * 501})
    assert too_long.status_code == 422 and "keep it to 500" in too_long.get_data(as_text=True)
    assert client.post(f"/psych/runs/{run_id}/reject",
                       data={"csrf_token": token, "reason": "wrong data window"}).status_code == 303
    assert _run(db, run_id).status == "rejected" and _current(db, exam) == {}
    assert "Rejected" in client.get(f"/psych/runs/{run_id}").get_data(as_text=True)
    again = client.post(f"/psych/runs/{run_id}/reject", data={"csrf_token": token, "reason": "twice"})
    assert again.status_code == 422 and "only a proposed run can be rejected" in again.get_data(as_text=True)
    assert client.post(f"/psych/runs/{run_id}/approve",
                       data={"csrf_token": token, "reason": "reconsidered"}).status_code == 303
    assert _run(db, run_id).status == "approved" and len(_current(db, exam)) == 31
    assert [d.decision for d in _run(db, run_id).decisions] == ["rejected", "approved"]

    # no CSRF token, unknown or absurd run ids, other roles
    assert client.post(f"/psych/runs/{run_id}/reject", data={"reason": "x"}).status_code == 400
    for url in ("/psych/runs/999999", f"/psych/runs/{2**63}", "/psych/exams/NOPE/runs"):
        assert client.get(url).status_code == 404, url
    assert client.post("/psych/runs/999999/approve", data={"csrf_token": token}).status_code == 404
    db.commit()  # end the test session's read snapshot before it writes a user
    with client.application.test_client() as other:
        signin(other, make_user("candidate"))
        assert other.get(f"/psych/runs/{run_id}").status_code == 403
        assert other.get(f"/psych/exams/{exam.code}/runs").status_code == 403
        assert other.post(f"/psych/runs/{run_id}/approve", data={"csrf_token": csrf_token(other)}).status_code == 403


@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_approving_with_the_override_by_keyboard(demo, db, live_server, page):
    from playwright.sync_api import expect

    from assessment.psych.calibration import calibrate_exam
    from assessment.psych.runs import record_run

    exam, (email, password) = demo
    run = record_run(db, calibrate_exam(db, exam, max_iter=2), run_by_id=None, max_iter=2)
    db.commit()
    base = live_server.url
    page.goto(base + "/signin")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{base}/psych/runs/{run.id}")
    assert _audit(page, "run page") == []
    override = page.get_by_label("Approve although it did not converge")
    reason = page.get_by_label("Reason (required with the override)")
    expect(override).to_be_visible()
    # submit without ticking: refused, the message is announced and the page stays usable
    reason.focus()
    page.keyboard.type("keyboard check")
    page.keyboard.press("Tab")  # the scale's radio group is one tab stop, on its checked radio
    expect(page.get_by_label("Write them as estimated", exact=False)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name=f"Approve run {run.id}")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("did not converge")
    assert _audit(page, "refused approval") == []
    # now tick the box with the keyboard, keep the reason, approve
    page.get_by_label("Approve although it did not converge").focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("Approve although it did not converge")).to_be_checked()
    expect(page.get_by_label("Reason (required with the override)")).to_have_value("keyboard check")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name=f"Approve run {run.id}")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"Calibration run {run.id} is approved")
    assert _run(db, run.id).status == "approved"
    page.goto(f"{base}/psych/exams/{exam.code}/runs")
    assert _audit(page, "run list") == []
