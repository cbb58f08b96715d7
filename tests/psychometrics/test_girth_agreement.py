"""Cross-check our estimates against girth 0.8 where girth works on numpy 2, and check the
documented fallback where it does not (threepl_mml)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from psychometrics import calibrate
from psychometrics.backends.girth_backend import girth_estimates

girth = pytest.importorskip("girth")


@pytest.mark.parametrize("model", ["1pl", "2pl"])
def test_dichotomous_estimates_agree_with_girth(sim, model):
    x, _ = sim.dichotomous(2000, 12, seed=21)
    ours = calibrate(x, model, tol=1e-6)
    theirs = girth_estimates(x, model)
    np.testing.assert_allclose(ours.a, np.broadcast_to(theirs["Discrimination"], (12,)), atol=0.01)
    np.testing.assert_allclose(ours.b, theirs["Difficulty"], atol=0.01)


def test_2pl_with_missing_agrees_with_girth(sim):
    x, _ = sim.dichotomous(3000, 10, missing=0.25, seed=22)
    ours = calibrate(x, "2pl", tol=1e-6)
    theirs = girth_estimates(x, "2pl")
    np.testing.assert_allclose(ours.a, theirs["Discrimination"], atol=0.02)
    np.testing.assert_allclose(ours.b, theirs["Difficulty"], atol=0.02)


def test_grm_agrees_with_girth(sim):
    x, _ = sim.polytomous(2000, 6, 4, model="grm", seed=23)
    ours = calibrate(x, "grm", tol=1e-6)
    theirs = girth_estimates(x, "grm")
    np.testing.assert_allclose(ours.a, theirs["Discrimination"], atol=0.02)
    np.testing.assert_allclose(ours.b, np.asarray(theirs["Difficulty"])[:, :3], atol=0.02)


def test_girth_backend_reports_comparable_fit(lsat6):
    ours = calibrate(lsat6, "2pl", tol=1e-6)
    via_girth = calibrate(lsat6, "2pl", backend="girth")
    assert via_girth.engine == "girth"
    assert via_girth.loglik == pytest.approx(ours.loglik, abs=1e-3)
    np.testing.assert_allclose(via_girth.se_b, ours.se_b, rtol=0.02)


def test_girth_3pl_fails_under_numpy2_and_falls_back(sim):
    x, _ = sim.dichotomous(500, 5, model="3pl", seed=24)
    with (
        pytest.raises(ValueError, match="setting an array element with a sequence"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        girth.threepl_mml(x.astype(int).T)
    with pytest.warns(UserWarning, match="girth.threepl_mml failed"):
        fit = calibrate(x, "3pl", backend="girth")
    assert fit.engine == "microcred"
    assert any("girth.threepl_mml failed" in m for m in fit.to_dict()["warnings"])
