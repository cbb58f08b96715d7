"""Multiple-group calibration and IRT likelihood-ratio DIF.

Published anchor: with every item invariant and every group held at N(0, 1) the multiple-group
likelihood is the single-group one, so LSAT7 split into any two groups must give mirt's 2PL
log-likelihood -2658.805 (mirt ``read.mirt`` reference page; ``tests/testthat/test-01-mirtOne.R``
for the estimates, and an earlier version of that test for the standard errors of a:
0.177, 0.169, 0.320, 0.134, 0.151). The estimation of the focal mean and SD and the DIF test are checked by
simulation with a known group difference and one planted DIF item (mirt's own
``multipleGroup``/``DIF`` tests simulate with R's generator, which cannot be replayed here).
"""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import calibrate, calibrate_groups, irt_lr_dif
from psychometrics.data import collapse_patterns
from psychometrics.errors import PsychometricsError

LSAT7_FREQUENCIES = [12, 19, 1, 7, 3, 19, 3, 17, 10, 5, 3, 7, 7, 23, 8, 28,
                     7, 39, 11, 34, 14, 51, 15, 90, 6, 25, 7, 35, 18, 136, 32, 308]  # fmt: skip


@pytest.fixture(scope="module")
def lsat7() -> np.ndarray:
    patterns = np.array([[int(c) for c in format(i, "05b")] for i in range(32)], dtype=float)
    return np.repeat(patterns, LSAT7_FREQUENCIES, axis=0)


def two_groups(n=1500, n_items=10, *, mean=0.5, sd=1.3, dif_item=3, shift=0.8, poly=(), seed=3):
    """2PL items (GPCM with 3 categories for the columns in ``poly``); the focal group's theta
    ~ N(mean, sd^2) and item ``dif_item`` is ``shift`` harder for it."""
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0, 0.25, n_items)
    b = rng.normal(0, 1, n_items)
    theta = np.r_[rng.normal(0, 1, n), rng.normal(mean, sd, n)]
    group = np.array(["ref"] * n + ["focal"] * n)
    loc = np.tile(b, (2 * n, 1))
    if dif_item is not None:
        loc[n:, dif_item] += shift
    z = a * (theta[:, None] - loc)
    x = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(float)
    for j in poly:  # GPCM thresholds loc -/+ 0.6
        steps = a[j] * (theta[:, None] - (loc[:, j : j + 1] + np.array([-0.6, 0.6])))
        num = np.concatenate([np.zeros((2 * n, 1)), np.cumsum(steps, axis=1)], axis=1)
        p = np.exp(num - num.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        x[:, j] = (rng.random((2 * n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    return x, group, a, b


def test_invariant_groups_at_the_reference_distribution_reproduce_mirt_2pl(lsat7):
    group = np.arange(lsat7.shape[0]) % 2
    fit = calibrate_groups(lsat7, group, "2pl", estimate_latent=False, tol=1e-6)
    assert fit.loglik == pytest.approx(-2658.805, abs=2e-3)
    np.testing.assert_allclose(fit.params[0].a, [0.988, 1.081, 1.706, 0.765, 0.736], atol=2e-3)
    np.testing.assert_allclose(fit.params[1].b, fit.params[0].b)
    assert fit.n_params == 10 and fit.reference == 0
    np.testing.assert_allclose(fit.se_a[1], [0.177, 0.169, 0.320, 0.134, 0.151], atol=1.5e-3)
    single = calibrate(lsat7, "2pl", tol=1e-6)  # Louis (1982) SEs of the one-group calibration
    np.testing.assert_allclose(fit.se_a[0], single.se_a, rtol=1e-4)
    np.testing.assert_allclose(fit.se_b[0], single.se_b, rtol=1e-4)
    assert fit.se_latent_mean == {0: pytest.approx(np.nan, nan_ok=True), 1: pytest.approx(np.nan, nan_ok=True)}


def test_latent_score_is_the_gradient_of_the_marginal_log_likelihood():
    """The analytic d logL / d(mu, sigma) behind the SEs against differences of logL."""
    from psychometrics.irt.estimation import build_parameter_map, e_step
    from psychometrics.irt.models import log_prob
    from psychometrics.irt.priors import ItemPriors
    from psychometrics.irt.quadrature import normal_quadrature
    from psychometrics.multigroup import _gradient

    x, group, a, b = two_groups(n=300, n_items=6, dif_item=None, seed=8)
    gi = (group == "focal").astype(int)
    pats = [collapse_patterns(x[gi == g], np.full(6, 2)) for g in (0, 1)]
    xi = np.column_stack([a, -a * b])
    n_cat = np.full(6, 2)
    pmap = build_parameter_map("2pl", n_cat, 2, np.ones(6, dtype=bool))
    points = normal_quadrature(41, 6.0).points

    def loglik(mu, sd):
        logp = log_prob("2pl", xi, n_cat, points)
        return sum(
            e_step(p, logp, normal_quadrature(41, 6.0, m, s).weights).loglik
            for p, m, s in zip(pats, (0.0, mu), (1.0, sd))
        )

    means, sds = np.array([0.0, 0.3]), np.array([1.0, 1.2])
    grad = _gradient("2pl", xi, n_cat, points, pats, means, sds, pmap, ItemPriors(), [1], 41, 6.0)
    h = 1e-5
    assert grad[-2] == pytest.approx((loglik(0.3 + h, 1.2) - loglik(0.3 - h, 1.2)) / (2 * h), rel=1e-5)
    assert grad[-1] == pytest.approx((loglik(0.3, 1.2 + h) - loglik(0.3, 1.2 - h)) / (2 * h), rel=1e-5)


def test_focal_mean_and_sd_are_recovered_with_anchors():
    x, group, a, b = two_groups(n=3000, mean=-0.4, sd=0.8, dif_item=None, seed=1)
    fit = calibrate_groups(x, group, "2pl", reference="ref")
    assert fit.converged
    assert fit.latent_mean == pytest.approx({"ref": 0.0, "focal": -0.4}, abs=0.06)
    assert fit.latent_sd == pytest.approx({"ref": 1.0, "focal": 0.8}, abs=0.05)
    np.testing.assert_allclose(fit.params["ref"].a, a, atol=0.12)
    np.testing.assert_allclose(fit.params["ref"].b, b, atol=0.12)
    assert fit.n_params == 2 * 10 + 2
    # the SE of the focal mean: about sd / sqrt(n) inflated by measurement error
    assert 0.8 / np.sqrt(3000) < fit.se_latent_mean["focal"] < 0.05
    assert 0 < fit.se_latent_sd["focal"] < 0.05
    assert np.isfinite(fit.se_a["focal"]).all() and np.isnan(fit.se_latent_mean["ref"])
    doc = fit.to_dict()
    assert [g["group"] for g in doc["groups"]] == ["ref", "focal"]
    assert doc["groups"][0]["reference"] and doc["groups"][1]["latent_sd"] == fit.latent_sd["focal"]


def test_likelihood_ratio_dif_flags_the_planted_item_only():
    x, group, *_ = two_groups()
    res = irt_lr_dif(x, group, "2pl", reference="ref", alpha=0.01)
    assert res.flagged == ["item4"]
    row = res.items[3]
    assert row.df == 2 and row.statistic > 30
    assert row.b["focal"] - row.b["ref"] == pytest.approx(0.8, abs=0.2)
    # G^2 is twice the log-likelihood gain of freeing the item
    freed = calibrate_groups(x, group, "2pl", reference="ref", anchors=[j for j in range(10) if j != 3])
    assert row.statistic == pytest.approx(2 * (freed.loglik - res.baseline.loglik), rel=1e-3)
    # the anchored baseline underestimates the focal mean the DIF item pulls down
    assert freed.latent_mean["focal"] > res.baseline.latent_mean["focal"]
    assert res.to_dict()["flagged"] == ["item4"]


def test_mixed_format_groups_count_the_studied_items_parameters():
    models = ["2pl"] * 5 + ["gpcm"]
    x, group, *_ = two_groups(n=800, n_items=6, dif_item=5, shift=1.0, poly=[5], seed=4)
    res = irt_lr_dif(x, group, models, items=["item1", "item6"], reference="ref")
    assert [r.item for r in res.items] == ["item1", "item6"]
    assert [r.df for r in res.items] == [2, 3]  # a, d  /  a, d1, d2
    assert res.items[1].p_value < 1e-4
    assert np.asarray(res.items[1].b["ref"]).size == 2


def test_bad_groups_and_anchors_are_refused(lsat7):
    g = np.arange(lsat7.shape[0]) % 2
    with pytest.raises(PsychometricsError, match="one entry per person"):
        calibrate_groups(lsat7, g[:10])
    with pytest.raises(PsychometricsError, match="at least two groups"):
        calibrate_groups(lsat7, np.zeros(lsat7.shape[0]))
    labels = np.where(g == 0, "a", None)
    with pytest.raises(PsychometricsError, match="person 1 has no group"):
        calibrate_groups(lsat7, labels)
    with pytest.raises(PsychometricsError, match="at least one anchor"):
        calibrate_groups(lsat7, g, anchors=[])
    with pytest.raises(PsychometricsError, match="unknown item id 'q1'"):
        calibrate_groups(lsat7, g, anchors=["q1"])
    with pytest.raises(PsychometricsError, match="reference: no person"):
        calibrate_groups(lsat7, g, reference="z")
    x = lsat7.copy()
    x[g == 1, 0] = 1.0
    with pytest.raises(PsychometricsError, match="'item1' in group 1: every response"):
        calibrate_groups(x, g, anchors=[1, 2, 3, 4])
