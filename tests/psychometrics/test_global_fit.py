"""M2 limited-information fit against mirt's published values (LSAT7 2PL, LSAT6 Rasch)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from psychometrics import ItemParameters, PsychometricsError, calibrate, m2


@pytest.fixture(scope="module")
def lsat7_fit(lsat7):
    return calibrate(lsat7, "2pl", standard_errors=False)


def test_m2_reproduces_mirt_on_lsat7_2pl(lsat7, lsat7_fit):
    # mirt tests/testthat/test-01-mirtOne.R: M2(mirt(expand.table(LSAT7), 1)) gives
    # M2 = 11.93841 on df.M2 = 5
    fit = m2(lsat7, lsat7_fit)
    assert fit.statistic == pytest.approx(11.93841, abs=2e-3)
    assert fit.df == 5
    assert fit.p_value == pytest.approx(stats.chi2.sf(fit.statistic, 5))
    # mirt's definitions (R/M2.R, R/utils.R): RMSEA = sqrt((M2/df - 1) / (N - 1)); the 90 %
    # interval from the non-central chi-square with N; TLI and CFI against the null model
    assert fit.rmsea == pytest.approx(np.sqrt((fit.statistic / 5 - 1) / 999))
    lo, hi = fit.rmsea_ci
    assert stats.ncx2.cdf(fit.statistic, 5, lo**2 * 1000 * 5) == pytest.approx(0.95, abs=1e-6)
    assert stats.ncx2.cdf(fit.statistic, 5, hi**2 * 1000 * 5) == pytest.approx(0.05, abs=1e-6)
    assert fit.null_df == 10
    n0 = fit.null_statistic / 10
    assert fit.tli == pytest.approx((n0 - fit.statistic / 5) / (n0 - 1))
    assert fit.cfi == pytest.approx(1 - (fit.statistic - 5) / (fit.null_statistic - 10))
    # the values mirt prints for this model with these definitions
    assert fit.rmsea == pytest.approx(0.0373, abs=2e-4)
    assert fit.srmsr == pytest.approx(0.0320, abs=2e-4)
    assert 0.93 < fit.tli < 0.94 and 0.96 < fit.cfi < 0.97
    doc = fit.to_dict()
    assert doc["df"] == 5 and doc["n_persons"] == 1000 and doc["ci_level"] == 0.9


def test_srmsr_is_the_rms_of_observed_minus_model_correlations(lsat7, lsat7_fit):
    params = lsat7_fit.params
    nodes = np.linspace(-6, 6, 61)
    w = stats.norm.pdf(nodes)
    w /= w.sum()
    p = params.prob(nodes)[:, 1, :]
    e1 = p @ w
    joint = (p * w) @ p.T
    np.fill_diagonal(joint, e1)
    model = joint - np.outer(e1, e1)
    model_r = model / np.sqrt(np.outer(np.diag(model), np.diag(model)))
    obs_r = np.corrcoef(lsat7.T)
    iu = np.triu_indices(5, 1)
    expected = np.sqrt(np.mean((obs_r[iu] - model_r[iu]) ** 2))
    assert m2(lsat7, lsat7_fit, null_model=False).srmsr == pytest.approx(expected, rel=1e-9)


def test_m2_with_a_missing_response_matches_mirt(lsat7):
    # mirt test-01-mirtOne.R: data[1, 1] <- NA; M2(mirt(data, 1))$M2 = 11.95335
    x = lsat7.copy()
    x[0, 0] = np.nan
    fit = m2(x, calibrate(x, "2pl", standard_errors=False), null_model=False)
    assert fit.statistic == pytest.approx(11.95335, abs=2e-3)
    assert fit.df == 5 and fit.cfi is None


def test_m2_for_the_rasch_model_matches_mirt_on_lsat6(lsat6):
    # mirt test-01-mirtOne.R: M2(mirt(expand.table(LSAT6), 1, itemtype = "Rasch"))
    # M2 = 5.291576 on df 9 (the shared slope / latent SD counts once)
    fit = m2(lsat6, calibrate(lsat6, "rasch", standard_errors=False))
    assert fit.statistic == pytest.approx(5.291576, abs=2e-3)
    assert fit.df == 9
    one_pl = m2(lsat6, calibrate(lsat6, "1pl", standard_errors=False))
    assert one_pl.df == 9 and one_pl.statistic == pytest.approx(5.292566, abs=3e-3)


def test_m2_is_small_for_data_the_model_generated(sim):
    x, truth = sim.dichotomous(3000, 10, model="2pl", seed=3)
    params = ItemParameters("2pl", truth["a"], truth["b"])
    fit = m2(x, calibrate(x, "2pl", standard_errors=False))
    assert fit.df == 55 - 20
    assert fit.p_value > 0.001 and fit.rmsea < 0.02
    # a 1PL on 2PL data with spread slopes fits worse than the 2PL
    worse = m2(x, calibrate(x, "1pl", standard_errors=False))
    assert worse.statistic > fit.statistic
    # polytomous: M2* of a GRM on its own data
    y, _ = sim.polytomous(2000, 6, 3, model="grm", seed=4)
    grm = m2(y, calibrate(y, "grm", standard_errors=False))
    assert grm.df == 6 + 15 - 18 and grm.p_value > 0.001
    assert params.n_items == 10


def test_m2_input_errors(lsat7, lsat7_fit):
    with pytest.raises(PsychometricsError, match="responses has 4 items but params describes 5"):
        m2(lsat7[:, :4], lsat7_fit)
    with pytest.raises(PsychometricsError, match="ci_level must lie in"):
        m2(lsat7, lsat7_fit, ci_level=1.5)
    with pytest.raises(PsychometricsError, match="no degrees of freedom"):
        m2(lsat7[:, :3], calibrate(lsat7[:, :3], "2pl", standard_errors=False))
    with pytest.raises(PsychometricsError, match="free must hold one flag per item"):
        m2(lsat7, lsat7_fit.params, free=[True, False])
    with pytest.raises(TypeError, match="params must be ItemParameters or a Calibration"):
        m2(lsat7, None)


def test_m2_of_a_mixed_format_calibration(sim):
    # 8 2PL items and 4 three-category GRM items driven by one theta: M2* moments 12 + 66,
    # estimated parameters 8 * 2 + 4 * 3
    x, truth = sim.dichotomous(2000, 8, model="2pl", seed=5)
    rng = np.random.default_rng(6)
    a = rng.lognormal(0.0, 0.25, 4)
    b = np.sort(rng.normal(0.0, 1.0, (4, 2)), axis=1)
    z = a[None, :, None] * (truth["theta"][:, None, None] - b[None, :, :])
    y = (rng.random((2000, 4, 1)) < 1 / (1 + np.exp(-z))).sum(axis=2).astype(float)
    responses = np.c_[x, y]
    fit = m2(responses, calibrate(responses, ["2pl"] * 8 + ["grm"] * 4, standard_errors=False))
    assert fit.df == 78 - 28
    assert fit.p_value > 0.001 and fit.rmsea < 0.03
