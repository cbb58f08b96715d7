"""Parameter recovery on simulated data with known parameters; RMSE bounds are asserted.

Observed with these seeds (61 quadrature points): 2PL a .069 / b .063 (N=4000, J=20);
3PL with 30% missing a .079 / b .136 / c .045 (N=8000, J=25); Rasch b .067; GRM a .084 / b .054;
GPCM a .043 / b .062 (N=3000, J=10, 4 categories). The bounds leave headroom for BLAS rounding
but sit well below what a wrong estimator (a 1.7-metric mix-up, a sign error, missing cells
treated as wrong) gives.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from psychometrics import calibrate


def test_2pl_recovery(sim):
    x, true = sim.dichotomous(4000, 20, model="2pl", seed=1)
    fit = calibrate(x, "2pl")
    assert fit.converged
    assert sim.rmse(fit.a, true["a"]) < 0.10
    assert sim.rmse(fit.b, true["b"]) < 0.10
    # standard errors are honest: the errors are about the size of the reported SEs
    z = (fit.b - true["b"]) / fit.se_b
    assert 0.5 < np.sqrt(np.mean(z**2)) < 1.6


def test_2pl_recovery_with_items_missing_by_design(sim):
    """Two forms sharing 10 anchor items plus a 40% random pretest pattern: no imputation."""
    x, true = sim.dichotomous(6000, 30, model="2pl", seed=2)
    x[:3000, 20:25] = np.nan  # form A does not show items 21-25
    x[3000:, 25:30] = np.nan  # form B does not show items 26-30
    rng = np.random.default_rng(3)
    x[:, 10:20][rng.random((6000, 10)) < 0.4] = np.nan
    fit = calibrate(x, "2pl")
    assert fit.converged
    assert sim.rmse(fit.a, true["a"]) < 0.10
    assert sim.rmse(fit.b, true["b"]) < 0.10
    assert np.all(np.isfinite(fit.se_b))


def test_3pl_recovery_with_missing(sim):
    x, true = sim.dichotomous(8000, 25, model="3pl", missing=0.3, seed=4)
    fit = calibrate(x, "3pl")
    assert fit.converged
    assert sim.rmse(fit.a, true["a"]) < 0.20
    assert sim.rmse(fit.b, true["b"]) < 0.20
    assert sim.rmse(fit.c, true["c"]) < 0.06
    assert np.all(np.isfinite(fit.se_c)) and np.all(fit.se_c > 0)


def test_rasch_recovery(sim):
    x, true = sim.dichotomous(3000, 15, model="rasch", seed=5)
    fit = calibrate(x, "rasch")
    assert sim.rmse(fit.b, true["b"]) < 0.10
    assert fit.latent_sd == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize("model", ["grm", "gpcm"])
def test_polytomous_recovery(sim, model):
    x, true = sim.polytomous(3000, 10, 4, model=model, seed=6)
    fit = calibrate(x, model)
    assert fit.converged
    assert sim.rmse(fit.a, true["a"]) < 0.10
    assert sim.rmse(fit.b, true["b"]) < 0.15
    assert np.all(np.isfinite(fit.se_b))
    item = fit.to_dict()["items"][0]
    assert isinstance(item["b"], list) and len(item["b"]) == 3


def test_fixed_parameter_calibration_puts_pretest_items_on_the_operational_scale(sim):
    """Operational items held at their true values; the pretest group is abler (mean 0.5,
    SD 1.2), which a calibration with theta ~ N(0, 1) would absorb into the pretest items."""
    rng = np.random.default_rng(7)
    n, j = 5000, 25
    a = rng.lognormal(0, 0.3, j)
    b = rng.normal(0, 1, j)
    theta = rng.normal(0.5, 1.2, n)
    x = (rng.random((n, j)) < 1 / (1 + np.exp(-a * (theta[:, None] - b)))).astype(float)
    operational = range(20)
    fixed = {k: {"a": a[k], "b": b[k]} for k in operational}
    fit = calibrate(x, "2pl", fixed=fixed)
    assert fit.latent_mean == pytest.approx(0.5, abs=0.08)
    assert fit.latent_sd == pytest.approx(1.2, abs=0.08)
    assert sim.rmse(fit.b[20:], b[20:]) < 0.12
    assert sim.rmse(fit.a[20:], a[20:]) < 0.15
    np.testing.assert_allclose(fit.b[:20], b[:20])
    assert fit.status[:20] == ["fixed"] * 20 and fit.status[20] == "estimated"
    naive = calibrate(x, "2pl")
    assert sim.rmse(naive.b[20:], b[20:]) > 2 * sim.rmse(fit.b[20:], b[20:])


def test_constant_items_warn_and_stay_finite(sim):
    x, _ = sim.dichotomous(500, 8, seed=8)
    x[:, 0] = 1.0  # everyone right
    x[:, 1] = 0.0  # everyone wrong
    x[:, 2] = np.nan
    x[0, 2] = 1.0  # a single response
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = calibrate(x, "2pl")
    assert any("every presented response is the same" in str(w.message) for w in caught)
    assert fit.status[:3] == ["constant"] * 3
    assert np.all(np.isfinite(fit.a)) and np.all(np.isfinite(fit.b))
    assert fit.b[0] < -3 and fit.b[1] > 3
    doc = fit.to_dict()
    assert doc["items"][0]["se_b"] is None and doc["items"][3]["se_b"] is not None


def test_non_convergence_is_reported(sim):
    from psychometrics.errors import ConvergenceWarning

    x, _ = sim.dichotomous(500, 8, seed=9)
    with pytest.warns(ConvergenceWarning, match="EM stopped after 2 iterations"):
        fit = calibrate(x, "2pl", max_iter=2)
    assert not fit.converged and fit.iterations == 2
    assert np.all(np.isfinite(fit.a))


def test_guttman_item_stays_finite(sim):
    x, true = sim.dichotomous(1000, 6, seed=10)
    x[:, 0] = (true["theta"] > 0).astype(float)  # a perfectly discriminating item
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = calibrate(x, "2pl")
    assert np.all(np.isfinite(fit.a)) and np.all(np.isfinite(fit.b))
    assert fit.a[0] > 3
