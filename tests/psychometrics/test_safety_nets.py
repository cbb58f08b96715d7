"""Safety nets (issue 13): each triggered by the data that showed the silent failure.

Every net is a warning in ``Calibration.messages`` (``to_dict()["warnings"]``), raised as a
CalibrationWarning and printed by the CLI; none changes a usable result silently.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from psychometrics import calibrate
from psychometrics.cli import main
from psychometrics.dif import logistic_dif, mantel_haenszel
from psychometrics.errors import PsychometricsError
from psychometrics.irt import estimation
from psychometrics.scoring import theta_eap, theta_map, theta_mle, theta_wle
from tests.psychometrics.test_data_and_cli import calibrate_to_file

# the 6-person CSV of the audit: item q4 orders these persons perfectly
SIX_PERSONS = "person_id,q1,q2,q3,q4\np1,1,1,0,1\np2,1,0,0,0\np3,0,0,1,0\np4,1,1,1,1\np5,0,1,0,0\np6,1,1,1,0\n"


def quiet_calibrate(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)  # numpy must not leak out of the fit
        return calibrate(*args, **kwargs)


def guttman(n_per_score=20, n_items=5):
    """Perfectly separated data: a person with score s answers exactly the s easiest items."""
    rows = [[1] * k + [0] * (n_items - k) for k in range(n_items + 1)]
    return np.array(rows * n_per_score, dtype=float)


def test_six_person_csv_slope_at_bound_is_flagged_on_the_cli(tmp_path):
    path = tmp_path / "six.csv"
    path.write_text(SIX_PERSONS)
    result = CliRunner().invoke(main, ["calibrate", str(path), "--model", "2pl"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    q4 = doc["items"][3]
    assert abs(q4["a"]) == pytest.approx(20.0) and q4["status"] == "at_bound"
    assert q4["se_a"] is None
    assert any("q4" in w and "slope stopped at its bound" in w for w in doc["warnings"])
    assert "warning: item 'q4': slope stopped at its bound" in result.stderr
    assert "small sample for the 2pl" in result.stderr  # 6 persons, the rule of thumb is 500


def test_rasch_latent_sd_at_bound_on_separated_data():
    fit = quiet_calibrate(guttman(), "rasch")
    assert fit.latent_sd == pytest.approx(20.0)
    assert any("latent SD stopped at its bound 20" in w for w in fit.to_dict()["warnings"])


def test_3pl_on_separated_data_leaks_no_runtime_warning_and_says_what_happened():
    fit = quiet_calibrate(guttman(), "3pl")
    assert np.all(np.isfinite(fit.a)) and np.isfinite(fit.loglik)
    assert fit.status.count("at_bound") >= 4
    assert any("slope stopped at its bound" in w for w in fit.messages)


def test_nan_inside_the_em_loop_is_detected_and_reported(monkeypatch, sim):
    x, _ = sim.dichotomous(600, 6, seed=3)
    real = estimation.e_step
    calls = {"n": 0}

    def flaky(patterns, logp, weights, **options):
        calls["n"] += 1
        if calls["n"] in (4, 5):  # two in a row: one may be a rejected SQUAREM trial point
            logp = logp.copy()
            logp[0, 1, :] = np.nan  # what an overflow in a runaway item does
        return real(patterns, logp, weights, **options)

    monkeypatch.setattr(estimation, "e_step", flaky)
    with pytest.warns(UserWarning) as caught:
        fit = calibrate(x, "2pl")
    assert not fit.converged
    assert any("numerical trouble" in str(w.message) for w in caught)
    assert any("numerical trouble" in w for w in fit.to_dict()["warnings"])
    assert np.all(np.isfinite(fit.a))


@pytest.mark.parametrize("n_items", [1, 2])
def test_one_or_two_item_2pl_is_under_identified(sim, n_items):
    x, _ = sim.dichotomous(600, n_items, seed=4)
    fit = quiet_calibrate(x, "2pl")
    assert any("under-identified" in w for w in fit.messages)
    assert np.isnan(fit.se_a).all() and np.isnan(fit.se_b).all()  # no SE of 7-132 any more


def test_three_item_2pl_passes_the_counting_rule_but_three_item_3pl_does_not(sim):
    x, _ = sim.dichotomous(1000, 3, seed=5)
    assert not any("under-identified" in w for w in quiet_calibrate(x, "2pl").messages)
    assert any("under-identified" in w for w in quiet_calibrate(x, "3pl").messages)


def test_persons_with_no_response_leave_n_and_bic(sim):
    x, _ = sim.dichotomous(600, 6, seed=6)
    padded = np.vstack([x, np.full((40, 6), np.nan)])
    fit = quiet_calibrate(padded, "2pl")
    base = quiet_calibrate(x, "2pl")
    assert fit.n_persons == 600 and fit.n_excluded == 40
    assert fit.to_dict()["n_persons_excluded"] == 40
    assert fit.bic == pytest.approx(base.bic) and fit.loglik == pytest.approx(base.loglik)
    assert any("40 person(s) with no response" in w for w in fit.messages)


def test_scoring_a_person_with_no_response(sim):
    x, _ = sim.dichotomous(800, 6, seed=7)
    params = quiet_calibrate(x, "2pl").params
    rows = np.vstack([x[:2], np.full((1, 6), np.nan)])
    for fn in (theta_mle, theta_wle):  # were -4 and -6, silently
        est = fn(rows, params)
        assert np.isnan(est.theta[2]) and np.isnan(est.se[2])
        assert est.no_response.tolist() == [False, False, True]
        assert est.to_dict()["theta"][2] is None and np.isfinite(est.theta[:2]).all()
    for fn in (theta_eap, theta_map):  # the posterior of an empty record is the prior
        est = fn(rows, params, prior_mean=0.5, prior_sd=0.8)
        assert est.theta[2] == pytest.approx(0.5) and est.se[2] == pytest.approx(0.8)
        assert est.no_response[2]


def test_score_command_writes_null_for_a_person_with_no_response(tmp_path, sim):
    x, _ = sim.dichotomous(600, 5, seed=8)
    x[3] = np.nan
    lines = ["q1,q2,q3,q4,q5"] + [",".join("" if np.isnan(v) else str(int(v)) for v in r) for r in x]
    path = tmp_path / "r.csv"
    path.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    fit_path = calibrate_to_file(runner, path)
    result = runner.invoke(main, ["score", str(path), "--params", str(fit_path), "--method", "mle"])
    assert result.exit_code == 0, result.output
    person = json.loads(result.stdout)["persons"][3]
    assert person["theta"] is None and person["no_response"] is True
    assert "1 person(s) answered no item" in result.stderr


@pytest.mark.parametrize(
    "model, n, basis",
    [("2pl", 300, "Hulin, Lissak & Drasgow"), ("3pl", 600, "1,000 persons"),
     ("rasch", 60, "Linacre (1994")],
)
def test_minimum_sample_warning_names_its_basis(sim, model, n, basis):
    x, _ = sim.dichotomous(n, 6, model="2pl" if model == "rasch" else model, seed=9)
    fit = quiet_calibrate(x, model)
    notes = [w for w in fit.messages if w.startswith(f"small sample for the {model}")]
    assert notes and basis in notes[0]


def test_no_sample_warning_at_the_rule_of_thumb(lsat7):
    assert not any("small sample" in w for w in quiet_calibrate(lsat7, "2pl").messages)


@pytest.mark.parametrize("dif", [mantel_haenszel, logistic_dif])
def test_dif_refuses_missing_or_third_group_labels(sim, dif):
    x, _ = sim.dichotomous(300, 5, seed=10)
    group = np.r_[np.zeros(150), np.ones(150)]
    with_nan = group.copy()
    with_nan[7] = np.nan
    with pytest.raises(PsychometricsError, match="no group label .*row 7"):
        dif(x, with_nan, focal=1)
    third = group.copy()
    third[:20] = 2
    with pytest.raises(PsychometricsError, match="group has 3 levels"):
        dif(x, third, focal=1)
    labels = np.array(["ref"] * 150 + ["foc"] * 149 + [None], dtype=object)
    with pytest.raises(PsychometricsError, match="no group label"):
        dif(x, labels, focal="foc")
    assert len(dif(x, group, focal=1)) == 5


@pytest.mark.parametrize("spec", [{"a": "steep", "b": 0.0}, {"b": None}, {"a": 1.0, "b": [0.1, 0.2]}])
def test_fixed_parameters_that_are_not_numbers_are_refused_by_name(lsat7, spec):
    with pytest.raises(PsychometricsError, match=r"fixed\['item2'\]: 'a', 'b' and 'c' must be numbers"):
        calibrate(lsat7, "2pl", item_ids=[f"item{j}" for j in range(1, 6)], fixed={"item2": spec})
