"""Local dependence: Chen & Thissen's LD X2 against mirt on LSAT7, Yen's Q3 by definition."""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import (
    PsychometricsError,
    calibrate,
    ld_chi2,
    local_dependence,
    theta_eap,
    yen_q3,
)

# mirt tests/testthat/test-01-mirtOne.R: residuals(mirt(expand.table(LSAT7), 1)) (type "LD"):
# LD X2 in the lower triangle, signed Cramer's V in the upper, here per pair (i, j)
MIRT_LD_X2 = {
    (0, 1): 0.451213, (0, 2): 0.8562096, (0, 3): 2.577395, (0, 4): 2.392183,
    (1, 2): 1.053826, (1, 3): 0.2662122, (1, 4): 1.383089,
    (2, 3): 0.1542321, (2, 4): 0.002940504, (3, 4): 9.962506e-06,
}  # fmt: skip
MIRT_CRAMERS_V = {
    (0, 1): -0.02124177, (0, 2): -0.02926106, (0, 3): 0.05076805, (0, 4): 0.04890994,
    (1, 2): 0.03246269, (1, 3): -0.01631601, (1, 4): -0.0371899,
    (2, 3): -0.01241902, (2, 4): -0.00171479, (3, 4): 9.981236e-05,
}  # fmt: skip


@pytest.fixture(scope="module")
def lsat7_fit(lsat7):
    return calibrate(lsat7, "2pl", standard_errors=False)


def test_ld_x2_reproduces_mirt_residuals_on_lsat7(lsat7, lsat7_fit):
    ld = ld_chi2(lsat7, lsat7_fit)
    for (i, j), value in MIRT_LD_X2.items():
        assert ld.statistic[i, j] == pytest.approx(value, abs=3e-3), (i, j)
        assert ld.statistic[j, i] == ld.statistic[i, j]
        assert ld.df[i, j] == 1
    for (i, j), value in MIRT_CRAMERS_V.items():
        assert ld.cramers_v[i, j] == pytest.approx(value, abs=2e-4), (i, j)
    assert np.isnan(ld.statistic[2, 2])
    np.testing.assert_allclose(ld.z[0, 3], np.sqrt(2 * ld.statistic[0, 3]) - 1)


def test_q3_is_the_correlation_of_residuals_at_eap(lsat7, lsat7_fit):
    q3 = yen_q3(lsat7, lsat7_fit)
    theta = theta_eap(lsat7, lsat7_fit.params).theta
    resid = lsat7 - lsat7_fit.params.expected_score(theta).T
    np.testing.assert_allclose(q3, np.corrcoef(resid.T), atol=1e-12)
    # a given theta is used as is
    np.testing.assert_allclose(yen_q3(lsat7, lsat7_fit, theta=theta), q3)
    # with missing responses each pair uses the persons who answered both
    x = lsat7.copy()
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.2] = np.nan
    q3m = yen_q3(x, lsat7_fit, theta=theta)
    resid = x - lsat7_fit.params.expected_score(theta).T
    both = ~np.isnan(resid[:, 1]) & ~np.isnan(resid[:, 3])
    assert q3m[1, 3] == pytest.approx(np.corrcoef(resid[both, 1], resid[both, 3])[0, 1])


def test_planted_dependence_is_flagged_by_both_statistics(sim):
    x, _ = sim.dichotomous(3000, 12, model="2pl", seed=11)
    rng = np.random.default_rng(5)
    copy = rng.random(3000) < 0.3  # item 12 copies item 1 for 30 % of the persons
    x[copy, 11] = x[copy, 0]
    fit = calibrate(x, "2pl", standard_errors=False)
    result = local_dependence(x, fit)
    flagged = {(tuple(f["items"]), f["statistic"]) for f in result.flags}
    assert (("item1", "item12"), "q3") in flagged
    assert (("item1", "item12"), "ld_x2") in flagged
    others = {items for items, _ in flagged if items != ("item1", "item12")}
    assert not others, others
    # locally independent items: Q3 averages near -1/(J - 1) (Yen, 1993)
    clean, _ = sim.dichotomous(3000, 12, model="2pl", seed=12)
    ok = local_dependence(clean, calibrate(clean, "2pl", standard_errors=False))
    assert ok.flags == []
    assert ok.q3_mean == pytest.approx(-1 / 11, abs=0.03)
    doc = result.to_dict()
    assert len(doc["pairs"]) == 66 and doc["flags"] and doc["q3_cut"] == 0.2


def test_local_dependence_of_polytomous_items(sim):
    y, _ = sim.polytomous(1500, 5, 4, model="gpcm", seed=2)
    fit = calibrate(y, "gpcm", standard_errors=False)
    ld = ld_chi2(y, fit)
    assert ld.df[0, 1] == 9 and np.all(np.isfinite(ld.statistic[np.triu_indices(5, 1)]))
    result = local_dependence(y, fit)
    assert result.ld.statistic[0, 1] == ld.statistic[0, 1]


def test_local_dependence_input_errors(lsat7, lsat7_fit):
    with pytest.raises(PsychometricsError, match="alpha must lie in"):
        local_dependence(lsat7, lsat7_fit, alpha=0)
    with pytest.raises(PsychometricsError, match="theta must hold one finite estimate per person"):
        yen_q3(lsat7, lsat7_fit, theta=[0.0, 1.0])
    with pytest.raises(PsychometricsError, match="item_ids has 2 names for 5 items"):
        local_dependence(lsat7, lsat7_fit.params, item_ids=["a", "b"])
    bad = lsat7.copy()
    bad[0, 0] = 2
    with pytest.raises(PsychometricsError, match=r"responses\[0, 0\] = 2 is outside item 0"):
        ld_chi2(bad, lsat7_fit)
