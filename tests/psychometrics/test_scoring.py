"""Ability scoring, summed-score tables, information: properties (hypothesis) and exact checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psychometrics import ItemParameters
from psychometrics.irt.information import (
    conditional_sem,
    item_information,
    test_characteristic_curve,
    test_information,
)
from psychometrics.scoring import (
    lord_wingersky,
    score,
    summed_score_table,
    theta_eap,
    theta_mle,
    theta_wle,
)

difficulties = st.lists(st.floats(-2.5, 2.5, allow_nan=False), min_size=3, max_size=12)


@settings(max_examples=40, deadline=None)
@given(b=difficulties, data=st.data())
def test_rasch_scores_are_monotone_in_number_correct(b, data):
    params = ItemParameters("rasch", np.ones(len(b)), b)
    j = len(b)
    rows = data.draw(
        st.lists(st.lists(st.integers(0, 1), min_size=j, max_size=j), min_size=2, max_size=8)
    )
    x = np.array(rows, dtype=float)
    n_right = x.sum(axis=1)
    order = np.argsort(n_right, kind="stable")
    for method in ("eap", "map", "wle", "mle"):
        theta = score(x, params, method).theta[order]
        sums = n_right[order]
        diffs = np.diff(theta)
        higher = np.diff(sums) > 0
        same = np.diff(sums) == 0
        assert np.all(diffs[same] == pytest.approx(0, abs=1e-6)), method  # sufficiency
        if method == "mle":  # bounded: zero and perfect scores share the bounds
            assert np.all(diffs[higher] >= -1e-9), method
        else:
            assert np.all(diffs[higher] > 1e-6), method


@settings(max_examples=40, deadline=None)
@given(
    b=difficulties, extra=st.floats(-2.5, 2.5), a_extra=st.floats(0.3, 2.5), theta=st.floats(-3, 3)
)
def test_standard_error_shrinks_as_items_are_added(b, extra, a_extra, theta):
    short = ItemParameters("2pl", np.ones(len(b)), b)
    longer = ItemParameters("2pl", np.r_[np.ones(len(b)), a_extra], np.r_[b, extra])
    assert conditional_sem(longer, theta)[0] < conditional_sem(short, theta)[0]
    # Bayesian counterpart for the Rasch model, where the summed score is sufficient: the
    # expected posterior variance over the score distribution falls (law of total variance)
    rasch_long = ItemParameters("rasch", np.ones(len(b) + 1), np.r_[b, extra])
    ts, tl = summed_score_table(short), summed_score_table(rasch_long)
    assert (tl.probability @ tl.se**2) < (ts.probability @ ts.se**2)


def test_lord_wingersky_matches_enumeration():
    params = ItemParameters(
        "grm", [1.2, 0.8, 1.5], [[-1.0, 0.5, np.nan], [0.0, np.nan, np.nan], [-0.5, 0.2, 1.1]]
    )
    theta = np.array([-1.0, 0.3, 2.0])
    p = params.prob(theta)
    brute = np.zeros((1 + 2 + 1 + 3, theta.size))
    for pattern in itertools.product(range(3), range(2), range(4)):
        brute[sum(pattern)] += p[0, pattern[0]] * p[1, pattern[1]] * p[2, pattern[2]]
    np.testing.assert_allclose(lord_wingersky(params, theta), brute, atol=1e-12)
    np.testing.assert_allclose(brute.sum(axis=0), 1.0)


def test_summed_score_table_equals_pattern_eap_for_rasch():
    params = ItemParameters("rasch", np.ones(4), [-1.0, -0.2, 0.4, 1.3])
    table = summed_score_table(params)
    patterns = np.array(list(itertools.product((0, 1), repeat=4)), dtype=float)
    eap = theta_eap(patterns, params)
    idx = patterns.sum(axis=1).astype(int)
    np.testing.assert_allclose(eap.theta, table.theta[idx], atol=1e-10)
    np.testing.assert_allclose(eap.se, table.se[idx], atol=1e-10)
    assert table.probability.sum() == pytest.approx(1.0)
    theta, _ = table.lookup([0, 4])
    assert theta[0] < 0 < theta[1]


def test_3pl_information_matches_closed_form():
    a, b, c = np.array([1.3, 0.7]), np.array([0.2, -1.0]), np.array([0.2, 0.1])
    params = ItemParameters("3pl", a, b, c)
    theta = np.linspace(-3, 3, 13)
    p = c[:, None] + (1 - c[:, None]) / (1 + np.exp(-a[:, None] * (theta - b[:, None])))
    closed = a[:, None] ** 2 * (p - c[:, None]) ** 2 * (1 - p) / ((1 - c[:, None]) ** 2 * p)
    np.testing.assert_allclose(item_information(params, theta), closed, rtol=1e-6)
    np.testing.assert_allclose(test_information(params, theta), closed.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(test_characteristic_curve(params, theta), p.sum(axis=0))


def test_perfect_patterns_mle_bounded_wle_finite():
    params = ItemParameters("2pl", [1.0, 1.2, 0.8, 1.5], [-1, 0, 0.5, 1])
    x = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, np.nan]])
    mle = theta_mle(x, params, bounds=(-4, 4))
    assert mle.theta[0] == 4 and mle.theta[1] == -4
    wle = theta_wle(x, params)
    assert -6 < wle.theta[1] < wle.theta[2] < wle.theta[0] < 6
    assert np.all(np.isfinite(wle.se))


def test_mle_solves_the_likelihood_equation():
    params = ItemParameters("2pl", [1.0, 1.2, 0.8, 1.5], [-1, 0, 0.5, 1])
    x = np.array([[1, 0, 1, 0]], dtype=float)
    est = theta_mle(x, params)
    grid = np.linspace(-4, 4, 80001)
    p = params.prob(grid)[:, 1, :]
    loglik = (x.T * np.log(p) + (1 - x.T) * np.log(1 - p)).sum(axis=0)
    assert est.theta[0] == pytest.approx(grid[loglik.argmax()], abs=2e-4)
    info = test_information(params, est.theta)
    assert est.se[0] == pytest.approx(1 / np.sqrt(info[0]))


def test_scoring_validates_its_arguments():
    params = ItemParameters("2pl", [1.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="method must be one of"):
        score([[1, 0]], params, "ml")
    with pytest.raises(ValueError, match="responses has 3 items but params describes 2"):
        theta_eap([[1, 0, 1]], params)
    with pytest.raises(ValueError, match="not 0 or 1"):
        theta_eap([[2, 0]], params)
    with pytest.raises(ValueError, match="prior_sd must be positive"):
        theta_eap([[1, 0]], params, prior_sd=0)
    single = theta_eap([1, 0], params)
    assert single.theta.shape == (1,)
