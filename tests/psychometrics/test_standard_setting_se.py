"""Standard errors of the Hofstee, Beuk, contrasting-groups and borderline-regression cuts
(psychometrics.standard_setting), against answers known in advance:

- the bootstrap SE of a mean equals the plug-in ``sqrt((n - 1) / n) SD / sqrt(n)`` (Efron &
  Tibshirani, 1993, ch. 5-6), so the bootstrap machinery is checked on a case with a formula;
- for the panel methods (Hofstee, Beuk) the bootstrap over panelists of one panel is compared with
  the true sampling SD of the cut, found by drawing many panels from the same population of
  judgments (a Monte Carlo truth no formula gives);
- the borderline-regression SE is the OLS SE of the fitted value (Draper & Smith, 1998, s. 1.4),
  worked by hand on six candidates, and on a large simulation agrees with the bootstrap over
  candidates and with the Monte Carlo truth;
- the logistic contrasting-groups cut's delta-method SE agrees with the bootstrap and the truth on
  a large simulation; the misclassification cut's bootstrap SE is near its truth.
"""
from __future__ import annotations

import numpy as np
import pytest

from psychometrics import (
    PsychometricsError,
    beuk_cut,
    beuk_cut_se,
    bootstrap_se,
    borderline_regression_cut,
    borderline_regression_cut_se,
    contrasting_groups_cut,
    contrasting_groups_cut_se,
    hofstee_cut,
    hofstee_cut_se,
)

SCORES = np.random.default_rng(1).binomial(100, np.random.default_rng(2).beta(6, 4, 1000))


def test_bootstrap_se_of_a_mean_is_the_plug_in_formula():
    x = np.array([3.1, 4.6, 1.5, 2.6, 4.0, 5.2, 3.3, 2.2, 4.4, 3.9])
    expected = np.sqrt((x.size - 1) / x.size) * x.std(ddof=1) / np.sqrt(x.size)  # 0.3452
    se, failed = bootstrap_se(lambda idx: x[idx].mean(), x.size, n_boot=20000, seed=3)
    assert failed == 0
    assert se == pytest.approx(expected, rel=0.02)
    # fixed seed: the same data give the same SE, so a page shows the same number twice
    assert bootstrap_se(lambda idx: x[idx].mean(), x.size, n_boot=200, seed=3) == \
        bootstrap_se(lambda idx: x[idx].mean(), x.size, n_boot=200, seed=3)


def _hofstee_panel(rng, n=20):
    return {"c_min": rng.normal(45, 5, n), "c_max": rng.normal(70, 5, n),
                "f_min": np.clip(rng.normal(0.10, 0.04, n), 0, 0.3),
                "f_max": np.clip(rng.normal(0.45, 0.08, n), 0.31, 1)}


def test_hofstee_bootstrap_over_panelists_matches_the_sampling_sd_of_the_cut():
    rng = np.random.default_rng(10)
    truth = np.std([hofstee_cut(SCORES, **_hofstee_panel(rng)).cut for _ in range(800)], ddof=1)
    boot = [hofstee_cut_se(SCORES, **_hofstee_panel(np.random.default_rng(100 + i)),
                           n_boot=400) for i in range(6)]
    assert all(b.method == "bootstrap_panelists" and b.n == 20 and b.n_failed == 0 for b in boot)
    assert np.mean([b.se for b in boot]) == pytest.approx(truth, rel=0.2)  # about 0.48


def test_a_unanimous_panel_has_no_standard_error():
    same = {"c_min": [40] * 5, "c_max": [70] * 5, "f_min": [0.1] * 5, "f_max": [0.5] * 5}
    assert hofstee_cut_se(SCORES, **same).se == pytest.approx(0.0, abs=1e-9)


def _beuk_panel(rng, n=20):
    k = rng.normal(60, 6, n)
    return k, np.clip(0.6 - 0.01 * (k - 60) + rng.normal(0, 0.08, n), 0, 1)


def test_beuk_bootstrap_over_panelists_matches_the_sampling_sd_of_the_cut():
    rng = np.random.default_rng(11)
    truth = np.std([beuk_cut(SCORES, *_beuk_panel(rng)).cut for _ in range(800)], ddof=1)
    boot = [beuk_cut_se(SCORES, *_beuk_panel(np.random.default_rng(200 + i)), n_boot=400).se
            for i in range(6)]
    assert np.mean(boot) == pytest.approx(truth, rel=0.2)  # about 1.0


def test_beuk_replicates_without_a_slope_are_left_out_and_counted():
    # a replicate drawing only the two panelists with cut 55 (or only the third) has SD(cut) = 0
    # and no slope: (2/3)^3 + (1/3)^3 = 1/3 of the replicates
    res = beuk_cut_se(SCORES, [55, 55, 65], [0.7, 0.6, 0.5], n_boot=600)
    assert 160 < res.n_failed < 240
    assert res.se > 0
    # with two panelists half the replicates fail: too few are left for an SE
    two = beuk_cut_se(SCORES, [55, 65], [0.7, 0.5], n_boot=600)
    assert two.n_failed > 250 and (np.isnan(two.se) or two.n_failed < 300)


def test_borderline_regression_se_by_hand():
    # six candidates' global ratings and scores; the OLS fit and the SE of its fitted value at
    # the borderline rating 1 worked step by step (b1 = 27.5 / 5.5 = 5, b0 = 71/6 - 7.5 = 4.3333,
    # s = sqrt(4/3 / 4) = 0.57735, SE = s sqrt(1/6 + 0.25 / 5.5) = 0.26591)
    r = np.array([0, 1, 1, 2, 2, 3], dtype=float)
    x = np.array([4, 9, 10, 14, 15, 19], dtype=float)
    b1 = ((r - r.mean()) * (x - x.mean())).sum() / ((r - r.mean()) ** 2).sum()
    b0 = x.mean() - b1 * r.mean()
    s = np.sqrt(((x - b0 - b1 * r) ** 2).sum() / 4)
    by_hand = s * np.sqrt(1 / 6 + (1 - r.mean()) ** 2 / ((r - r.mean()) ** 2).sum())
    res = borderline_regression_cut_se(x, r, borderline=1)
    assert res.method == "regression" and res.n == 6
    assert res.se == pytest.approx(by_hand, rel=1e-12) == pytest.approx(0.26591, abs=1e-5)
    assert borderline_regression_cut(x, r, borderline=1).cut == pytest.approx(b0 + b1)


def _borderline_sample(rng, n=2000):
    r = rng.integers(0, 4, n).astype(float)
    return 30 + 12 * r + rng.normal(0, 8, n), r


def test_borderline_regression_se_agrees_with_bootstrap_and_truth_on_a_large_sample():
    rng = np.random.default_rng(12)
    truth = np.std([borderline_regression_cut(*_borderline_sample(rng)).cut
                    for _ in range(400)], ddof=1)
    x, r = _borderline_sample(np.random.default_rng(5))
    analytic = borderline_regression_cut_se(x, r).se
    boot = borderline_regression_cut_se(x, r, se_method="bootstrap", n_boot=400).se
    assert analytic == pytest.approx(truth, rel=0.12)  # about 0.20
    assert boot == pytest.approx(analytic, rel=0.12)


def _contrasting_sample(rng, n=2000):
    theta = rng.normal(0, 1, n)
    qualified = (theta + rng.normal(0, 0.6, n) > 0).astype(float)
    return np.round(50 + 10 * theta + rng.normal(0, 4, n)), qualified


def test_logistic_contrasting_groups_delta_se_agrees_with_bootstrap_and_truth():
    rng = np.random.default_rng(13)
    truth = np.std([contrasting_groups_cut(*_contrasting_sample(rng), method="logistic").cut
                    for _ in range(300)], ddof=1)
    x, g = _contrasting_sample(np.random.default_rng(6))
    delta = contrasting_groups_cut_se(x, g, method="logistic")
    assert delta.method == "delta"
    boot = contrasting_groups_cut_se(x, g, method="logistic", se_method="bootstrap", n_boot=300)
    assert delta.se == pytest.approx(truth, rel=0.15)  # about 0.28
    assert boot.se == pytest.approx(delta.se, rel=0.15)


def test_misclassification_cut_bootstrap_over_candidates_is_near_its_truth():
    # The cut is an argmin over score points: its bootstrap SE is itself noisy from sample to
    # sample (the bootstrap of such estimators is rough; Abrevaya & Huang, 2005), so the check is
    # on the mean over six samples of 600 candidates (ratio 1.03 in exploration, 0.87 at n=150).
    rng = np.random.default_rng(14)
    truth = np.std([contrasting_groups_cut(*_contrasting_sample(rng, 600)).cut
                    for _ in range(300)], ddof=1)
    boot = [contrasting_groups_cut_se(*_contrasting_sample(np.random.default_rng(50 + i), 600),
                                      n_boot=200) for i in range(6)]
    assert all(b.method == "bootstrap_candidates" and b.n == 600 for b in boot)
    assert np.mean([b.se for b in boot]) == pytest.approx(truth, rel=0.3)  # about 1.3


def test_bad_input_names_the_argument():
    with pytest.raises(PsychometricsError, match="panel_pass_rates"):
        beuk_cut_se(SCORES, [50, 60, 70], [0.5, 0.6])
    with pytest.raises(PsychometricsError, match="at least 2 panelists"):
        hofstee_cut_se(SCORES, [40], [70], [0.1], [0.5])
    with pytest.raises(PsychometricsError, match="c_max has 2 judgments"):
        hofstee_cut_se(SCORES, [40, 42, 41], [70, 71], [0.1, 0.1, 0.1], [0.5, 0.5, 0.5])
    with pytest.raises(PsychometricsError, match="se_method"):
        borderline_regression_cut_se([1, 2, 3, 4], [0, 1, 2, 3], se_method="jackknife")
    with pytest.raises(PsychometricsError, match="needs method='logistic'"):
        contrasting_groups_cut_se([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1], se_method="delta")
    with pytest.raises(PsychometricsError, match="n_boot"):
        bootstrap_se(np.mean, 5, n_boot=1)
