"""IRT reliability against mirt's published values (LSAT7 and de Ayala's data, 2PL)."""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import (
    ItemParameters,
    PsychometricsError,
    calibrate,
    conditional_sem_curve,
    empirical_reliability,
    marginal_reliability,
    summed_score_reliability,
    summed_score_table,
    test_information,
    theta_eap,
)

# de Ayala (2009, The Theory and Practice of Item Response Theory): 19,601 persons,
# 5 items, the `deAyala` data of mirt (data/deAyala.RData read with the `rdata` package):
# pattern (items 1-5) and frequency
DE_AYALA = [
    (0, 0, 0, 0, 0, 691), (1, 0, 0, 0, 0, 2280), (0, 1, 0, 0, 0, 242), (0, 0, 1, 0, 0, 235),
    (0, 0, 0, 1, 0, 158), (0, 0, 0, 0, 1, 184), (1, 1, 0, 0, 0, 1685), (1, 0, 1, 0, 0, 1053),
    (0, 1, 1, 0, 0, 134), (1, 0, 0, 1, 0, 462), (0, 1, 0, 1, 0, 92), (0, 0, 1, 1, 0, 65),
    (1, 0, 0, 0, 1, 571), (0, 1, 0, 0, 1, 79), (0, 0, 1, 0, 1, 87), (0, 0, 0, 1, 1, 41),
    (1, 1, 1, 0, 0, 1682), (1, 1, 0, 1, 0, 702), (1, 0, 1, 1, 0, 370), (0, 1, 1, 1, 0, 63),
    (1, 1, 0, 0, 1, 626), (1, 0, 1, 0, 1, 412), (1, 0, 0, 1, 1, 166), (0, 1, 1, 0, 1, 52),
    (0, 1, 0, 1, 1, 28), (0, 0, 1, 1, 1, 15), (1, 1, 1, 1, 0, 2095), (1, 1, 1, 0, 1, 1219),
    (1, 1, 0, 1, 1, 500), (1, 0, 1, 1, 1, 187), (0, 1, 1, 1, 1, 40), (1, 1, 1, 1, 1, 3385),
]  # fmt: skip


@pytest.fixture(scope="module")
def lsat7_fit(lsat7):
    return calibrate(lsat7, "2pl", standard_errors=False)


@pytest.fixture(scope="module")
def de_ayala():
    rows = np.array(DE_AYALA, dtype=float)
    x = np.repeat(rows[:, :5], rows[:, 5].astype(int), axis=0)
    return x, calibrate(x, "2pl", standard_errors=False)


def test_summed_score_reliability_matches_mirt_eapsum_on_lsat7(lsat7, lsat7_fit):
    # mirt tests/testthat/test-01-mirtOne.R: fscores(mod, method = "EAPsum", full.scores = FALSE)
    # on expand.table(LSAT7), 2PL: attr(, "fit")["rxx_F1"] = 0.4319948, and the table's
    # EAP -1.86979 .. 0.7271877, SE 0.6927032 .. 0.8009335, expected 10.08994 .. 308.5536
    rel = summed_score_reliability(lsat7, lsat7_fit)
    assert rel.rxx == pytest.approx(0.4319948, abs=1e-5)
    table = summed_score_table(lsat7_fit.params)
    np.testing.assert_allclose(
        table.theta, [-1.86979, -1.431861, -0.9488463, -0.4131963, 0.1517289, 0.7271877], atol=1e-4
    )
    np.testing.assert_allclose(
        table.se, [0.6927032, 0.6838697, 0.6942298, 0.7210951, 0.758772, 0.8009335], atol=1e-4
    )
    np.testing.assert_allclose(
        table.probability * 1000,
        [10.08994, 44.65882, 109.773, 207.7391, 319.1854, 308.5536],
        rtol=2e-4,
    )
    # model-implied alpha: J/(J-1) (1 - sum var(x_j) / var(X)) from the same model margins
    assert 0 < rel.alpha < 1 and rel.sem_alpha == pytest.approx(
        np.sqrt(rel.score_variance * (1 - rel.alpha))
    )
    assert rel.to_dict()["n_persons"] == 1000


def test_marginal_and_empirical_reliability_match_mirt_on_de_ayala(de_ayala):
    # mirt reference page for marginal_rxx (philchalmers.github.io/mirt/reference/marginal_rxx):
    # mod <- mirt(expand.table(deAyala)); marginal_rxx(mod) = 0.6092894;
    # fscores(mod, returnER = TRUE) = empirical_rxx(fscores(mod, full.scores.SE = TRUE)) = 0.6200703
    x, fit = de_ayala
    assert marginal_reliability(fit) == pytest.approx(0.6092894, abs=5e-5)
    eap = theta_eap(x, fit.params)
    assert empirical_reliability(eap.theta, eap.se) == pytest.approx(0.6200703, abs=5e-5)


def test_marginal_reliability_is_the_average_conditional_reliability(lsat7_fit):
    from scipy import integrate, stats

    params = lsat7_fit.params
    for sd in (1.0, 1.7):
        def conditional(t, sd=sd):
            info = test_information(params, t)[0]
            return sd**2 * info / (sd**2 * info + 1) * stats.norm.pdf(t, 0.3, sd)

        exact, _ = integrate.quad(conditional, -np.inf, np.inf)
        got = marginal_reliability(params, latent_mean=0.3, latent_sd=sd)
        assert got == pytest.approx(exact, abs=1e-6)


def test_conditional_sem_curve_arrays(lsat7_fit):
    curve = conditional_sem_curve(lsat7_fit)
    assert curve.theta.shape == (81,) and curve.theta[0] == -4 and curve.theta[-1] == 4
    np.testing.assert_allclose(curve.sem, 1 / np.sqrt(curve.information))
    p = lsat7_fit.params.prob(curve.theta)[:, 1, :]
    np.testing.assert_allclose(curve.raw_sem, np.sqrt((p * (1 - p)).sum(axis=0)))
    np.testing.assert_allclose(curve.expected_score, p.sum(axis=0))
    assert np.all((curve.reliability > 0) & (curve.reliability < 1))
    doc = conditional_sem_curve(lsat7_fit.params, [-1.0, 0.0, 1.0]).to_dict()
    assert set(doc) == {"theta", "information", "sem", "raw_sem", "expected_score", "reliability"}
    assert len(doc["sem"]) == 3


def test_reliability_inputs_are_validated(lsat7, lsat7_fit):
    x = lsat7.copy()
    x[3, 2] = np.nan
    with pytest.raises(PsychometricsError, match="responses row 3 has a missing response"):
        summed_score_reliability(x, lsat7_fit)
    with pytest.raises(PsychometricsError, match="responses has 4 items but params describes 5"):
        summed_score_reliability(lsat7[:, :4], lsat7_fit)
    with pytest.raises(PsychometricsError, match="theta and se must have one value per person"):
        empirical_reliability([0.1, 0.2, 0.3], [0.5, 0.5])
    with pytest.raises(PsychometricsError, match="at least 2 finite"):
        empirical_reliability([0.1, np.nan], [0.5, 0.5])
    with pytest.raises(PsychometricsError, match="latent_sd must be positive"):
        marginal_reliability(lsat7_fit.params, latent_sd=0)
    with pytest.raises(TypeError, match="params must be ItemParameters or a Calibration"):
        marginal_reliability("2pl")
    with pytest.raises(PsychometricsError, match="theta must be a non-empty finite"):
        conditional_sem_curve(ItemParameters("2pl", [1.0], [0.0]), [np.inf])
