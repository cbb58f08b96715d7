"""Reproduce published calibrations of the LSAT-6 data (Bock & Lieberman, 1970).

Published values:
* 2PL: ltm 1.2 ``summary(ltm(LSAT ~ z1))`` (Rizopoulos, 2006, J. Stat. Software 17(5)): estimates,
  standard errors (numerical Hessian), log-likelihood -2466.653, AIC 4953.307, BIC 5002.384;
  posterior-mode ("Empirical Bayes") scores of the response patterns.
* 1PL (common slope, theta ~ N(0, 1)): ltm ``rasch(LSAT)``: b = -3.615, -1.322, -0.318, -1.730,
  -2.780, a = 0.755, log-likelihood -2466.938. Bock & Aitkin (1981, Psychometrika 46, 443-459) MML
  item locations centred to sum zero: -1.255, 0.475, 1.234, 0.168, -0.622, scale 0.755.
* Classical: ltm ``descript(LSAT)``: Cronbach's alpha 0.2950, alpha excluding each item
  0.2754, 0.2376, 0.2168, 0.2459, 0.2663; point-biserials 0.3620, 0.5668, 0.6184, 0.5344, 0.4354.

ltm integrates with 21 Gauss-Hermite points, we use 61 rectangular points on [-6, 6]; tolerances
allow for that difference (about 1e-3 on estimates, 1e-3 on log-likelihoods).
"""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import calibrate, likelihood_ratio_test
from psychometrics.ctt import item_analysis
from psychometrics.scoring import theta_map

LTM_2PL_B = [-3.3597, -1.3696, -0.2799, -1.8659, -3.1236]
LTM_2PL_A = [0.8254, 0.7229, 0.8905, 0.6886, 0.6575]
LTM_2PL_SE_B = [0.8669, 0.3073, 0.0997, 0.4341, 0.8700]
LTM_2PL_SE_A = [0.2581, 0.1867, 0.2326, 0.1852, 0.2100]


@pytest.fixture(scope="module")
def fit2pl(lsat6):
    return calibrate(lsat6, "2pl", tol=1e-6)


def test_2pl_estimates_match_ltm(fit2pl):
    assert fit2pl.converged
    np.testing.assert_allclose(fit2pl.a, LTM_2PL_A, atol=2e-3)
    np.testing.assert_allclose(fit2pl.b, LTM_2PL_B, atol=5e-3)


def test_2pl_standard_errors_match_ltm(fit2pl):
    np.testing.assert_allclose(fit2pl.se_a, LTM_2PL_SE_A, rtol=0.01)
    np.testing.assert_allclose(fit2pl.se_b, LTM_2PL_SE_B, rtol=0.01)


def test_2pl_fit_statistics_match_ltm(fit2pl):
    assert fit2pl.loglik == pytest.approx(-2466.653, abs=2e-3)
    assert fit2pl.aic == pytest.approx(4953.307, abs=5e-3)
    assert fit2pl.bic == pytest.approx(5002.384, abs=5e-3)
    assert fit2pl.n_params == 10


def test_1pl_matches_ltm_and_bock_aitkin(lsat6):
    fit = calibrate(lsat6, "1pl", tol=1e-6)
    np.testing.assert_allclose(fit.b, [-3.615, -1.322, -0.318, -1.730, -2.780], atol=3e-3)
    np.testing.assert_allclose(fit.a, 0.755, atol=1e-3)
    assert fit.loglik == pytest.approx(-2466.938, abs=2e-3)
    loc = fit.a * fit.b
    np.testing.assert_allclose(loc - loc.mean(), [-1.255, 0.475, 1.234, 0.168, -0.622], atol=3e-3)


def test_rasch_is_the_1pl_on_the_theta_times_a_scale(lsat6):
    one = calibrate(lsat6, "1pl", tol=1e-6)
    rasch = calibrate(lsat6, "rasch", tol=1e-6)
    np.testing.assert_allclose(rasch.a, 1.0)
    assert rasch.latent_sd == pytest.approx(0.755, abs=1e-3)
    np.testing.assert_allclose(rasch.b, one.a * one.b, atol=1e-6)
    assert rasch.loglik == pytest.approx(one.loglik, abs=1e-6)
    assert rasch.to_dict()["items"][0]["se_a"] is None


def test_lrt_1pl_against_2pl(lsat6, fit2pl):
    one = calibrate(lsat6, "1pl", tol=1e-6)
    lrt = likelihood_ratio_test(one, fit2pl)
    assert lrt.df == 4
    assert lrt.statistic == pytest.approx(2 * (2466.938 - 2466.653), abs=5e-3)
    assert 0.9 < lrt.p_value < 0.99  # the 2PL does not improve on the 1PL for these data
    with pytest.raises(ValueError, match="more parameters"):
        likelihood_ratio_test(fit2pl, one)


def test_map_scores_match_ltm_empirical_bayes(fit2pl, sim):
    patterns = sim.lsat6_patterns()[[0, 1, 2, 3, 31]]
    est = theta_map(patterns, fit2pl.params)
    np.testing.assert_allclose(est.theta, [-1.895, -1.479, -1.460, -1.041, 0.606], atol=3e-3)
    np.testing.assert_allclose(est.se, [0.795, 0.796, 0.796, 0.800, 0.855], atol=3e-3)


def test_classical_statistics_match_ltm_descript(lsat6):
    res = item_analysis(lsat6)
    assert res.reliability.alpha == pytest.approx(0.2950, abs=1e-4)
    assert res.reliability.kr20
    np.testing.assert_allclose(
        [i.alpha_if_deleted for i in res.items],
        [0.2754, 0.2376, 0.2168, 0.2459, 0.2663],
        atol=1e-4,
    )
    np.testing.assert_allclose(
        [i.point_biserial for i in res.items],
        [0.3620, 0.5668, 0.6184, 0.5344, 0.4354],
        atol=1e-4,
    )
    np.testing.assert_allclose([i.p for i in res.items], [0.924, 0.709, 0.553, 0.763, 0.870])
