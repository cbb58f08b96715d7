"""Adopting a theta cut (issue 14, standard setting): the page shows each form's raw cut through
its test characteristic curve, the CSEM at the cut, the pass rate and decision consistency
before anything is adopted; adopting is an append-only record; bad input is refused by name.

Known values: Kolen & Brennan (2014, ch. 6) Forms X and Y (POLYEQUATE): theta 1.102159 is raw
25 on X and true score 26.387408 on Y, so the one theta cut gives raw cuts 25 (X) and 27 (Y).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from sqlalchemy import select

from assessment.psych.cuts import (
    CutAdoption,
    CutRefused,
    adopt,
    current_cut,
    parse_cut,
    propose,
)
from microcred.db import ImmutableRowError
from psychometrics import ItemParameters, carry_cut, lee, livingston_lewis, rudner, subkoviak
from psychometrics.ctt import cronbach_alpha
from tests.cut_exam import (
    KB_FORM_X,
    KB_FORM_Y,
    THETA_25_ON_X,
    build_kb_exam,
    deliver,
    form_of,
    kb_parameters,
    simulate,
)

THETA = f"{THETA_25_ON_X:.6f}"


def _params(rows) -> ItemParameters:
    a, b, c = zip(*kb_parameters(rows))
    return ItemParameters("3pl", a, b, c)


def _post(client, csrf_token, code, **fields):
    return client.post(f"/psych/exams/{code}/cuts",
                       data={"csrf_token": csrf_token(client), **fields})


def test_two_forms_of_different_difficulty_get_different_raw_cuts_for_one_theta_cut(db):
    exam = build_kb_exam(db)
    p = propose(db, exam, parse_cut({"theta": THETA}))
    assert p.problems == []
    by_code = {f.code: f for f in p.fixed}
    x, y = by_code["KB-X"], by_code["KB-Y"]
    assert (x.raw_cut, y.raw_cut) == (25, 27)
    assert x.expected_raw == pytest.approx(25.0, abs=1e-5)
    assert y.expected_raw == pytest.approx(26.387408, abs=5e-6)  # POLYEQUATE
    # the engine's own carry of the same cut agrees to the last digit
    engine = carry_cut(THETA_25_ON_X, {"X": _params(KB_FORM_X), "Y": _params(KB_FORM_Y)},
                       scale=p.cut.scale)
    assert x.csem_theta == engine.form("X").csem_theta
    assert y.scale_at_raw_cut == engine.form("Y").scale_at_raw_cut
    # the raw-to-scale table puts the passing score exactly at the raw cut
    assert x.scale_table[25] >= 350 > x.scale_table[24]
    assert y.scale_table[27] >= 350 > y.scale_table[26]


def test_decision_consistency_on_the_page_matches_the_engine(db, client, make_user, signin):
    exam = build_kb_exam(db)
    people = [make_user("candidate").id for _ in range(2)]
    x_form = form_of(db, exam, "X")
    patterns = simulate(KB_FORM_X, 60, seed=7)
    deliver(db, exam, x_form, [people[k % 2] for k in range(60)], patterns)
    db.commit()
    signin(client, make_user("psychometrician"))
    page = client.get(f"/psych/exams/KB/cuts?theta={THETA}").get_data(as_text=True)
    assert "Raw cut of each fixed form" in page

    params = _params(KB_FORM_X)
    totals = patterns.sum(axis=1).astype(float)
    alpha = cronbach_alpha(patterns.astype(float)).alpha
    expected = {
        "rudner": rudner([THETA_25_ON_X], params=params),
        "lee": lee(params, [25]),
        "livingston_lewis": livingston_lewis(totals, alpha, [25], max_score=36),
        "subkoviak": subkoviak(totals, 36, alpha, 25),
    }
    for method, res in expected.items():
        row = re.search(rf'<tr data-form="KB-X" data-method="{method}">(.*?)</tr>', page, re.DOTALL)
        assert row, method
        cells = re.findall(r'<td class="num">(.*?)</td>', row.group(1))
        shown = [None if "n/a" in c else float(c) for c in cells]
        want = [res.accuracy, res.consistency, res.kappa, res.false_pass, res.false_fail]
        for got, value in zip(shown, want):
            if value is None:
                assert got is None, method
            else:
                assert got == pytest.approx(value, abs=5e-5), method
    # the pass rate on delivered results by the raw cut, and the form's cut line
    rate = float(np.mean(totals >= 25))
    assert f"{100 * rate:.1f}%" in page
    assert "25 of 36" in page and "27 of 36" in page


def test_adoption_is_recorded_and_the_newest_is_current(db, client, make_user, signin,
                                                        csrf_token):
    from assessment.psych.studies import create_study

    exam = build_kb_exam(db)
    psych = make_user("psychometrician")
    study = create_study(db, exam=exam, title="Angoff 2026", method="angoff",
                         reference_form_code="KB-X", facilitator=psych)
    db.commit()
    signin(client, psych)
    fields = {"theta": THETA, "cut_scale": "350", "slope": "50", "lower": "100",
              "upper": "500", "decimals": "0", "scoring": "irt", "rounding": "ceil",
              "study": str(study.id)}
    missing = _post(client, csrf_token, "KB", **{**fields, "study": str(study.id + 99)},
                    reason="r")
    assert missing.status_code == 422
    assert f"there is no standard-setting study {study.id + 99}" in missing.get_data(as_text=True)
    refused = _post(client, csrf_token, "KB", **fields, reason="  ")
    assert refused.status_code == 422 and "say why this cut is adopted" in refused.get_data(
        as_text=True)
    assert db.scalar(select(CutAdoption.id)) is None
    done = _post(client, csrf_token, "KB", **fields, reason="Angoff panel, March 2026")
    assert done.status_code == 303
    db.rollback()
    first = current_cut(db, exam.id)
    assert first.theta_cut == pytest.approx(THETA_25_ON_X, abs=1e-6)
    assert first.by_id == psych.id and first.study_id == study.id and first.scoring == "irt"
    assert first.calibration_run_id is not None
    assert len(first.parameter_ids) == 72
    assert {f["code"]: f["raw_cut"] for f in first.form_cuts} == {"KB-X": 25, "KB-Y": 27}
    assert (first.scale_lower, first.scale_cut, first.scale_upper) == (100, 350, 500)

    second = _post(client, csrf_token, "KB", **{**fields, "theta": "0.5", "study": ""},
                   reason="Policy board lowered the standard")
    assert second.status_code == 303
    db.rollback()
    assert current_cut(db, exam.id).theta_cut == 0.5
    page = client.get("/psych/exams/KB/cuts").get_data(as_text=True)
    assert "Policy board lowered the standard" in page and "Angoff panel, March 2026" in page
    assert page.index("Policy board") < page.index("Angoff panel")  # newest first
    # adoptions are never edited
    row = db.get(CutAdoption, first.id)
    row.theta_cut = 0.0
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()


def test_a_theta_cut_needs_approved_parameters(db, client, make_user, signin, csrf_token):
    exam = build_kb_exam(db, calibrate=False)
    with pytest.raises(CutRefused, match="no approved item parameters"):
        adopt(db, exam, parse_cut({"theta": "1"}), by=make_user("psychometrician"),
              reason="try")
    db.rollback()
    signin(client, make_user("psychometrician"))
    page = client.get("/psych/exams/KB/cuts?theta=1").get_data(as_text=True)
    assert "cannot be adopted yet" in page and "approve a calibration run" in page.lower()
    assert "Adopt this cut</button>" not in page
    resp = _post(client, csrf_token, "KB", theta="1", reason="because")
    assert resp.status_code == 422 and "no approved item parameters" in resp.get_data(
        as_text=True)
    assert db.scalar(select(CutAdoption.id)) is None


def test_a_form_with_uncalibrated_items_refuses_the_cut_by_name(db):
    from itembank.models import ItemParameter

    exam = build_kb_exam(db)
    y = form_of(db, exam, "Y")
    # an item of Y loses its parameters: a 2PL row without b is not usable
    vid = y.items[0].item_version_id
    db.add(ItemParameter(item_version_id=vid, model="grm", a=1.0, b=None, c=0.0,
                         thresholds=[0.0], source="test"))
    db.commit()
    p = propose(db, exam, parse_cut({"theta": THETA}))
    assert any("form KB-Y: 1 of its 36 scored items" in m for m in p.problems)


@pytest.mark.parametrize("fields, field, message", [
    ({"slope": "0"}, "slope", "slope must be positive"),
    ({"slope": "-5"}, "slope", "slope must be positive"),
    ({"lower": "500", "upper": "100"}, "upper", "must be below the highest"),
    ({"cut_scale": "600"}, "cut_scale", "must lie strictly between"),
    ({"cut_scale": "100"}, "cut_scale", "must lie strictly between"),
    ({"decimals": "7"}, "decimals", "decimals must be 0 to 3"),
    ({"decimals": "1.5"}, "decimals", "must be a whole number"),
    ({"theta": "abc"}, "theta", "the theta cut must be a number"),
    ({"theta": "9"}, "theta", "between -4 and 4"),
    ({"theta": "nan"}, "theta", "finite"),
    ({"scoring": "vibes"}, "scoring", "scoring must be one of"),
    ({"rounding": "up"}, "rounding", "rounding must be one of"),
    ({"study": "x1"}, "study", "study must be a study id"),
])
def test_bad_transforms_and_inputs_are_refused_by_name(fields, field, message):
    with pytest.raises(CutRefused, match=message) as caught:
        parse_cut({"theta": "0.5", **fields})
    assert caught.value.field == field


def test_bad_transform_on_the_page_stores_nothing(db, client, make_user, signin, csrf_token):
    build_kb_exam(db)
    signin(client, make_user("psychometrician"))
    resp = _post(client, csrf_token, "KB", theta="0.5", slope="0", reason="r")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "slope must be positive" in body
    assert 'id="cut-slope" name="slope" type="number" step="any" value="0" required ' \
           'aria-invalid="true"' in body
    assert db.scalar(select(CutAdoption.id)) is None


def test_study_link_prefills_the_proposal(db, client, make_user, signin):
    from assessment.psych.studies import create_study

    exam = build_kb_exam(db)
    other = build_kb_exam(db, code="KB2", forms=("X",), calibrate=False)
    psych = make_user("psychometrician")
    study = create_study(db, exam=exam, title="Bookmark 2026", method="angoff",
                         reference_form_code="KB-X", facilitator=psych)
    elsewhere = create_study(db, exam=other, title="Other exam's", method="angoff",
                             reference_form_code="KB2-X", facilitator=psych)
    db.commit()
    signin(client, psych)
    page = client.get(f"/psych/exams/KB/cuts?theta={THETA}&study={study.id}").get_data(
        as_text=True)
    assert f"Prefilled from standard-setting study {study.id}, &ldquo;Bookmark 2026" in page
    assert "it has no recommended cut yet, so the theta cut is as given" in page
    assert f'value="{THETA}"' in page
    assert f'<input type="hidden" name="study" value="{study.id}">' in page
    page = client.get(f"/psych/exams/KB/cuts?theta=1&study={elsewhere.id}").get_data(
        as_text=True)
    assert "This study was set on exam KB2, not this one" in page
    with pytest.raises(CutRefused, match="was set on exam KB2, not KB"):
        adopt(db, exam, parse_cut({"theta": "1", "study": str(elsewhere.id)}), by=psych,
              reason="r")
    db.rollback()
