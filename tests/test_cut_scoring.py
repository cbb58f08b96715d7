"""Delivery scores by the adopted cut (issue 14, results): EAP theta against the theta cut when
the items are calibrated, number-correct against the form's raw cut otherwise; the result
records the rule, the cut, the parameter set and enough to reproduce the decision; a cut
adopted after an attempt finished does not change it.

Known values: Kolen & Brennan (2014, ch. 6) Forms X and Y; theta 1.102159 is raw 25 on X and
true score 26.387408 on Y (POLYEQUATE), so raw cuts 25 (X) and 27 (Y).
"""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from assessment.delivery import service
from assessment.delivery.models import Result
from assessment.psych.cuts import adopt, parse_cut
from itembank.models import ItemParameter
from psychometrics import ItemParameters
from psychometrics.scoring import theta_eap
from tests.cut_exam import KEY, THETA_25_ON_X, WRONG, build_kb_exam

THETA = f"{THETA_25_ON_X:.6f}"


def _only(db, exam, name):
    """Make form ``name`` the exam's only active form (the next start lands on it)."""
    for ef in exam.forms:
        ef.active = ef.form.code.endswith(f"-{name}")
    db.commit()


def _sit(db, make_user, exam, form_name, n_right):
    """A candidate on form ``form_name`` answering its first ``n_right`` items right."""
    _only(db, exam, form_name)
    candidate = make_user("candidate")
    attempt = service.start_attempt(db, candidate, exam, grace_seconds=5)
    saves = [service.SaveRequest(k + 1, vid, KEY if k < n_right else WRONG, False)
             for k, vid in enumerate(attempt.item_order)]
    service.save_responses(db, attempt, saves, grace_seconds=5)
    result = service.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    return attempt, result


def _adopt(db, exam, by, **fields):
    row = adopt(db, exam, parse_cut({"theta": THETA, **fields}), by=by, reason="panel")
    db.commit()
    return row


def _reproduce(db, result) -> float:
    """EAP theta again from what the result recorded: its item scores and parameter rows."""
    rows = {r.id: r for r in db.scalars(select(ItemParameter).where(
        ItemParameter.id.in_(list(result.parameter_ids.values()))))}
    scores = [s for s in result.item_scores if s.scored]
    used = [rows[result.parameter_ids[str(s.item_version_id)]] for s in scores]
    params = ItemParameters("3pl", [r.a for r in used], [r.b for r in used],
                            [r.c for r in used])
    return float(theta_eap(np.array([[s.score for s in scores]]), params).theta[0])


def test_irt_scoring_against_the_theta_cut_records_what_reproduces_it(db, make_user):
    exam = build_kb_exam(db)
    psych = make_user("psychometrician")
    cut = _adopt(db, exam, psych)
    _, on_x = _sit(db, make_user, exam, "X", 30)
    _, on_y = _sit(db, make_user, exam, "Y", 20)
    for result, raw_cut in ((on_x, 25), (on_y, 27)):
        assert result.scoring_rule == "irt"
        assert result.cut_adoption_id == cut.id
        assert result.calibration_run_id == cut.calibration_run_id is not None
        assert result.raw_cut == raw_cut  # the form's own raw cut, for one theta cut
        assert len(result.parameter_ids) == 36
        assert result.theta == pytest.approx(_reproduce(db, result), abs=1e-12)
        assert result.theta_se > 0
        assert result.passed is (result.theta >= THETA_25_ON_X)
        assert result.scale_score == float(cut.transform()(result.theta))
        assert (result.scale_score >= 350) is result.passed
    assert on_x.passed and not on_y.passed
    assert on_x.raw_score == 30 and on_y.raw_score == 20


def test_number_correct_against_each_forms_raw_cut(db, make_user):
    exam = build_kb_exam(db)
    _adopt(db, exam, make_user("psychometrician"), scoring="number_correct")
    outcomes = {}
    for form, n in (("X", 25), ("X", 24), ("Y", 27), ("Y", 26)):
        _, result = _sit(db, make_user, exam, form, n)
        assert result.scoring_rule == "number_correct" and result.theta is None
        outcomes[(form, n)] = (result.raw_cut, result.passed, result.scale_score)
    # the same theta cut: 25 right passes X, 26 right fails the easier Y (it needs 27)
    assert [(k, v[:2]) for k, v in outcomes.items()] == [
        (("X", 25), (25, True)), (("X", 24), (25, False)),
        (("Y", 27), (27, True)), (("Y", 26), (27, False))]
    for raw_cut, passed, scale in outcomes.values():
        assert (scale >= 350) is passed


def test_without_a_cut_the_percent_rule_is_recorded(db, make_user):
    exam = build_kb_exam(db, pass_percent=60)
    _, result = _sit(db, make_user, exam, "X", 22)  # 61.11 %
    assert (result.scoring_rule, result.passed, result.pass_percent) == ("percent", True, 60)
    assert result.cut_adoption_id is None and result.scale_score is None


def test_a_cut_adopted_after_an_attempt_finished_does_not_change_it(db, make_user):
    exam = build_kb_exam(db, pass_percent=60)
    attempt, before = _sit(db, make_user, exam, "X", 22)
    assert before.passed  # 61 % against 60 %
    _adopt(db, exam, make_user("psychometrician"))
    db.expire_all()
    standing = db.scalar(select(Result).where(Result.attempt_id == attempt.id)
                         .order_by(Result.id.desc()))
    assert standing.id == before.id
    assert (standing.scoring_rule, standing.passed, standing.cut_adoption_id) == (
        "percent", True, None)
    # the same answers after the adoption fail the theta cut (22 < 25 on X)
    _, after = _sit(db, make_user, exam, "X", 22)
    assert after.scoring_rule == "irt" and not after.passed


def test_the_result_page_shows_the_scale_score_not_the_rule(db, make_user, client, signin):
    exam = build_kb_exam(db)
    _adopt(db, exam, make_user("psychometrician"))
    attempt, result = _sit(db, make_user, exam, "X", 30)
    candidate = db.get(type(make_user("candidate")), attempt.candidate_id)
    signin(client, candidate)
    page = client.get(f"/attempts/{attempt.id}/result").get_data(as_text=True)
    assert f"{result.scale_score:g}" in page and "100\u2013500" in page
    assert "theta" not in page.lower()


def test_the_badge_states_the_scale_score_and_its_scale(db, make_user):
    from credentials.config import current
    from credentials.issuance import create_achievement
    from credentials.models import Credential

    exam = build_kb_exam(db)
    create_achievement(db, current(), code="KB-B", name="KB badge", description="Passed.",
                       exam_id=exam.id)
    db.commit()
    _, percent_pass = _sit(db, make_user, exam, "X", 30)  # before any cut: 83.33 %
    _adopt(db, exam, make_user("psychometrician"))
    _, scale_pass = _sit(db, make_user, exam, "X", 30)
    docs = {r.id: db.scalar(select(Credential).where(Credential.result_id == r.id)).json
            for r in (percent_pass, scale_pass)}
    scaled = docs[scale_pass.id]["credentialSubject"]
    [description] = scaled["achievement"]["resultDescription"]
    assert (description["resultType"], description["valueMin"], description["valueMax"],
            description["requiredValue"]) == ("ScaledScore", "100", "500", "350")
    assert scaled["result"][0]["value"] == f"{scale_pass.scale_score:g}"
    narrative = docs[scale_pass.id]["evidence"][0]["narrative"]
    assert (f"with a scale score of {scale_pass.scale_score:g} on a scale of 100 to 500 "
            "(passing score 350)") in narrative
    # a result judged by the pass percent says so, and is not called a scaled score
    plain = docs[percent_pass.id]
    [description] = plain["credentialSubject"]["achievement"]["resultDescription"]
    assert (description["resultType"], description["requiredValue"]) == ("Percent", "60")
    assert "with 83.33% of the items right (pass mark 60%)" in plain["evidence"][0]["narrative"]
    assert "scaled score" not in str(plain).lower()


def test_the_item_analysis_report_uses_the_adopted_cut(db, make_user):
    from assessment.psych.report import ReportScope, build_report
    from tests.cut_exam import KB_FORM_X, KB_FORM_Y, deliver, form_of, simulate

    exam = build_kb_exam(db)
    people = [make_user("candidate").id for _ in range(2)]
    for name, rows, seed in (("X", KB_FORM_X, 1), ("Y", KB_FORM_Y, 2)):
        deliver(db, exam, form_of(db, exam, name), people * 10, simulate(rows, 20, seed))
    db.commit()
    before = build_report(db, ReportScope(exam=exam), with_charts=False)
    assert {f.code: f.raw_cut for f in before.forms} == {"KB-X": 22, "KB-Y": 22}  # 60 %
    cut = _adopt(db, exam, make_user("psychometrician"))
    after = build_report(db, ReportScope(exam=exam), with_charts=False)
    assert {f.code: f.raw_cut for f in after.forms} == {"KB-X": 25, "KB-Y": 27}
    assert {f.theta_cut for f in after.forms} == {cut.theta_cut}
    assert after.cut_id == cut.id


def test_a_linear_on_the_fly_form_is_carried_when_its_attempt_is_scored(db, make_user, client,
                                                                         signin):
    from assessment.exams import create_exam
    from psychometrics import carry_cut

    kb = build_kb_exam(db)  # its 72 calibrated items are the LOFT exam's pool
    loft = create_exam(db, code="KB-LOFT", title="KB on the fly", blueprint=kb.blueprint,
                       forms=[], time_limit_seconds=3600, pass_percent=60,
                       delivery_mode="loft", assembly={"cut_theta": 1.0},
                       instructions=["Answer."], agreement="Alone.", shuffle_items=False,
                       shuffle_options=False)
    db.commit()
    psych = make_user("psychometrician")
    # no form delivered yet: adoptable, since every form is assembled from calibrated items
    cut = adopt(db, loft, parse_cut({"theta": THETA}), by=psych, reason="carried from KB")
    db.commit()
    assert cut.form_cuts == []
    candidate = make_user("candidate")
    attempt = service.start_attempt(db, candidate, loft, grace_seconds=5)
    service.save_responses(db, attempt, [service.SaveRequest(k + 1, vid, KEY, False)
                                         for k, vid in enumerate(attempt.item_order[:24])],
                           grace_seconds=5)
    result = service.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    rows = {r.item_version_id: r for r in db.scalars(select(ItemParameter).where(
        ItemParameter.id.in_(list(result.parameter_ids.values()))))}
    used = [rows[v] for v in attempt.item_order]
    params = ItemParameters("3pl", [r.a for r in used], [r.b for r in used], [r.c for r in used])
    assert result.scoring_rule == "irt" and result.cut_adoption_id == cut.id
    assert result.raw_cut == carry_cut(THETA_25_ON_X, params).forms[0].raw_cut
    assert result.passed is (result.theta >= THETA_25_ON_X)
    signin(client, psych)
    page = client.get(f"/psych/exams/KB-LOFT/cuts?theta={THETA}").get_data(as_text=True)
    assert "Linear-on-the-fly forms" in page
    assert f"{int(result.raw_cut)} of 36" in page
