"""Run comparison (issue 14, "Calibration from delivered data"): the drift table and the linking
constants through anchor items, approval that records the constants and may place the run's
estimates on the bank's scale.

The known answer: parameters on the bank's scale are moved to a "new" scale with chosen
constants (theta_base = A theta_new + B, so a_new = A a_base and b_new = (b_base - B) / A;
Kolen & Brennan, 2014, eq. 6.14-6.16); linking the new parameters back must recover A and B,
exactly for noise-free parameters and by every method, and approving with the link must write
the bank's own values back.
"""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from assessment.psych.calibration import exam_item_versions
from assessment.psych.runs import (
    CalibrationEstimate,
    CalibrationLinking,
    CalibrationRefused,
    CalibrationRun,
    approve_run,
    run_with_details,
)
from assessment.psych.runs_compare import MIN_ANCHORS, ComparisonError, compare_run
from assessment.users import User
from itembank.models import ItemParameter
from itembank.parameters import ParameterValues, current_parameters, supersede_parameters

A_TRUE, B_TRUE = 1.25, -0.4
N_ITEMS = 12


def _truth(n: int = N_ITEMS, seed: int = 14):
    rng = np.random.default_rng(seed)
    return rng.lognormal(0.0, 0.25, n), rng.normal(0.0, 1.0, n)


def _setup(db, build_exam, *, n_bank: int = N_ITEMS, drift: dict[int, float] | None = None,
           se: float = 0.05):
    """An exam of 12 items; the first ``n_bank`` have approved (bank) parameters; a finished
    proposed run holds every item's parameters on the new scale (plus ``drift`` in b, on the
    bank's scale, for the items named)."""
    exam = build_exam(db, n_per_domain=(8, 4))
    versions = exam_item_versions(db, exam)
    assert len(versions) == N_ITEMS
    a, b = _truth()
    supersede_parameters(db, [
        ParameterValues(item_version_id=v.id, model="2pl", a=float(a[j]), b=float(b[j]),
                        standard_errors={"a": se, "b": se})
        for j, v in enumerate(versions[:n_bank])
    ], source="test bank")
    run = CalibrationRun(exam_id=exam.id, model="2pl", converged=True, iterations=30,
                         status="proposed", job_state="finished", fit_summary=_summary(exam))
    db.add(run)
    db.flush()
    for j, v in enumerate(versions):
        b_base = b[j] + (drift or {}).get(j, 0.0)
        db.add(CalibrationEstimate(
            run_id=run.id, item_version_id=v.id, position=j, n_responses=500,
            a=float(a[j] * A_TRUE), b=float((b_base - B_TRUE) / A_TRUE), c=0.0,
            standard_errors={"a": se * A_TRUE, "b": se / A_TRUE}, status="ok"))
    db.commit()
    return exam, versions, run.id


def _summary(exam) -> dict:
    return {"exam": exam.code, "engine": "test", "n_persons": 500, "n_items": N_ITEMS,
            "forms": [], "max_change": 1e-5, "aic": 1.0, "bic": 1.0, "n_params": 2 * N_ITEMS,
            "latent_mean": 0.0, "latent_sd": 1.0, "seconds": 0.1, "recovery": [],
            "fit_forms": [], "fit_notes": []}


def test_linking_recovers_known_constants(db, build_exam):
    _exam, _versions, run_id = _setup(db, build_exam)
    for method in ("stocking-lord", "haebara", "mean-sigma", "mean-mean"):
        _check_recovered(compare_run(db, run_with_details(db, run_id), method=method))


def _check_recovered(c) -> None:
    k = c.constants
    assert k["A"] == pytest.approx(A_TRUE, abs=1e-6) and k["B"] == pytest.approx(B_TRUE, abs=1e-6)
    assert k["n_anchors"] == N_ITEMS and k["base"] == "bank"
    assert k["se_A"] == pytest.approx(0.0, abs=1e-5)  # no noise: every jackknife link is exact
    # on the bank's scale the run's estimates equal the bank's: no difference, no drift
    for row in c.rows:
        assert row.anchor and not row.flagged
        assert row.diff[0] == pytest.approx(0.0, abs=1e-5) and row.diff[1] == pytest.approx(0.0, abs=1e-5)
        # the SE of the transformed estimate is the bank's (se / A * A): d/SE = d / (se sqrt 2)
        assert row.se_scaled[1] == pytest.approx(0.0, abs=1e-3)


def test_a_drifting_anchor_is_flagged_and_can_be_excluded(db, build_exam):
    _exam, versions, run_id = _setup(db, build_exam, drift={3: 1.0})
    run = run_with_details(db, run_id)
    with_it = compare_run(db, run)
    flagged = [r.item_version_id for r in with_it.flagged]
    assert flagged == [versions[3].id]
    assert abs(with_it.constants["B"] - B_TRUE) > 0.01  # the drift pulls the link
    assert any("drift" in w for w in with_it.warnings)
    without = compare_run(db, run, exclude=[versions[3].id])
    assert without.constants["A"] == pytest.approx(A_TRUE, abs=1e-5)
    assert without.constants["B"] == pytest.approx(B_TRUE, abs=1e-5)
    row = next(r for r in without.rows if r.item_version_id == versions[3].id)
    assert row.excluded and row.flagged
    # the run put the drifting item 1 higher on the bank's scale: d_b = new - old = +1, and
    # d/SE = 1 / sqrt(0.05^2 + 0.05^2) (the run's SE of b, 0.05 / A, is 0.05 again on the bank's scale)
    assert row.diff[1] == pytest.approx(1.0, abs=1e-5)
    assert row.se_scaled[1] == pytest.approx(1.0 / (0.05 * np.sqrt(2)), rel=1e-4)
    csv_text = without.to_csv()
    assert csv_text.splitlines()[0].startswith("item_version_id,item,anchor,excluded,a_old")
    assert len(csv_text.splitlines()) == N_ITEMS + 1
    data = without.to_dict()
    assert data["linking"]["excluded"] == [versions[3].id] and len(data["items"]) == N_ITEMS
    with pytest.raises(ComparisonError, match="only anchor items can be excluded"):
        compare_run(db, run, exclude=[999999])


def test_too_few_anchors_is_a_clear_error(db, build_exam, make_user):
    _exam, _versions, run_id = _setup(db, build_exam, n_bank=MIN_ANCHORS - 1)
    run = run_with_details(db, run_id)
    with pytest.raises(ComparisonError, match=rf"needs at least {MIN_ANCHORS} anchor items .*share only {MIN_ANCHORS - 1}"):
        compare_run(db, run)
    # approving with a link that cannot be made is refused, and nothing is written
    user = make_user("psychometrician")
    before = db.scalar(select(ItemParameter.id).order_by(ItemParameter.id.desc()).limit(1))
    with pytest.raises(CalibrationRefused, match="needs linking constants"):
        approve_run(db, db.get(CalibrationRun, run_id), by=user, apply_linking=True)
    db.rollback()
    assert db.scalar(select(ItemParameter.id).order_by(ItemParameter.id.desc()).limit(1)) == before


def test_approval_with_linking_records_constants_and_writes_transformed_parameters(
        db, build_exam, make_user, client, signin, csrf_token):
    _exam, versions, run_id = _setup(db, build_exam, drift={3: 1.0})
    user = make_user("psychometrician")
    signin(client, user)
    page = client.get(f"/psych/runs/{run_id}?exclude={versions[3].id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Comparison with the bank" in html
    assert 'id="linking-A">1.2500' in html and "<strong>drifts</strong>" in html
    assert client.get(f"/psych/runs/{run_id}/compare.csv").status_code == 200
    assert client.get(f"/psych/runs/{run_id}/compare.json").json["n_anchors"] == N_ITEMS
    assert client.get(f"/psych/runs/{run_id}/compare?base=nope").status_code == 422
    resp = client.post(f"/psych/runs/{run_id}/approve", data={
        "csrf_token": csrf_token(client), "scale": "link", "method": "stocking-lord",
        "exclude": str(versions[3].id), "reason": "linked to the bank"})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    db.expire_all()
    linking = db.scalar(select(CalibrationLinking).where(CalibrationLinking.run_id == run_id))
    assert linking.applied and linking.method == "stocking-lord" and linking.base == "bank"
    assert linking.A == pytest.approx(A_TRUE, abs=1e-5) and linking.B == pytest.approx(B_TRUE, abs=1e-5)
    assert linking.excluded == [versions[3].id] and len(linking.anchors) == N_ITEMS - 1
    a, b = _truth()
    current = current_parameters(db, [v.id for v in versions])
    for j, v in enumerate(versions):
        p = current[v.id]
        assert "linked to bank scale" in p.source
        assert p.a == pytest.approx(a[j], abs=1e-5)  # back on the bank's scale
        assert p.b == pytest.approx(b[j] + (1.0 if j == 3 else 0.0), abs=1e-5)
        assert p.standard_errors["b"] == pytest.approx(0.05, abs=1e-6)
    page = client.get(f"/psych/runs/{run_id}").get_data(as_text=True)
    assert "estimates placed on the bank&#39;s scale" in page or "estimates placed on the bank's scale" in page


def test_approval_as_estimated_records_constants_but_writes_the_estimates(db, build_exam, make_user):
    _exam, versions, run_id = _setup(db, build_exam)
    user = make_user("psychometrician")
    run = run_with_details(db, run_id)
    comparison = compare_run(db, run, method="haebara")
    approve_run(db, run, by=user, linking=comparison, apply_linking=False)
    db.commit()
    linking = db.scalar(select(CalibrationLinking).where(CalibrationLinking.run_id == run_id))
    assert not linking.applied and linking.method == "haebara"
    a, _b = _truth()
    current = current_parameters(db, [versions[0].id])
    assert current[versions[0].id].a == pytest.approx(a[0] * A_TRUE)


def test_compare_two_runs(db, build_exam, client, make_user, signin):
    exam, versions, run_id = _setup(db, build_exam)
    other = CalibrationRun(exam_id=exam.id, model="2pl", converged=True, iterations=9,
                           status="proposed", job_state="finished", fit_summary=_summary(exam))
    db.add(other)
    db.flush()
    a, b = _truth()
    for j, v in enumerate(versions):
        db.add(CalibrationEstimate(run_id=other.id, item_version_id=v.id, position=j,
                                   n_responses=500, a=float(a[j]), b=float(b[j]), c=0.0,
                                   standard_errors={"a": 0.05, "b": 0.05}, status="ok"))
    db.commit()
    c = compare_run(db, run_with_details(db, run_id), base=str(other.id), method="mean-sigma")
    assert c.constants["A"] == pytest.approx(A_TRUE) and c.constants["base"] == str(other.id)
    signin(client, make_user("psychometrician"))
    page = client.get(f"/psych/runs/{run_id}/compare?base={other.id}&method=haebara")
    assert page.status_code == 200 and f"Run {other.id}" in page.get_data(as_text=True)
    assert db.scalar(select(User).limit(1)) is not None
