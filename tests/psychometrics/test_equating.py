"""Cut scores and equating: true-score and observed-score equating, equipercentile, conversion
tables, against Kolen & Brennan's published examples."""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import (
    ItemParameters,
    PsychometricsError,
    calibrate,
    conversion_table,
    equipercentile,
    observed_score_distribution,
    observed_score_equating,
    raw_for_theta,
    theta_for_raw,
    true_score_equating,
)
from psychometrics.scoring import lord_wingersky

# Kolen & Brennan (2014, Test Equating, Scaling, and Linking, 3rd ed., ch. 6): 3PL parameters
# (a, b, c) of the 36-item Forms X and Y in the D = 1.7 metric, Form X already on Form Y's scale;
# as entered in jMetrik's IrtTrueScoreEquatingTest (meyerjp3/psychometrics).
KB_FORM_X = [
    (0.467344, -2.616539, 0.175056),
    (0.670924, -1.068342, 0.11649),
    (0.386976, -1.339358, 0.208748),
    (1.228024, 0.064115, 0.282599),
    (0.828161, -0.70178, 0.26251),
    (0.496452, -1.511753, 0.203834),
    (0.731571, 0.030429, 0.322391),
    (0.973113, -0.657195, 0.220907),
    (0.641447, -0.479277, 0.159961),
    (0.77974, 0.688159, 0.364807),
    (0.815589, 0.344648, 0.239862),
    (0.563967, -0.444704, 0.123961),
    (1.047915, -0.014127, 0.25347),
    (0.892128, 0.422782, 0.156932),
    (0.908926, 0.62604, 0.298628),
    (0.781655, 0.213016, 0.252099),
    (0.75975, 0.098919, 0.227257),
    (0.822383, -0.274926, 0.053538),
    (0.557961, -0.051057, 0.120098),
    (0.89758, 0.610857, 0.203621),
    (0.295784, 2.173474, 0.148927),
    (0.716916, 0.742542, 0.233231),
    (0.947343, 0.180908, 0.064409),
    (1.239634, 0.700229, 0.24527),
    (0.436801, 1.117559, 0.142681),
    (0.781728, 0.763879, 0.08792),
    (1.599493, 1.149537, 0.199245),
    (1.279241, 1.270811, 0.16422),
    (0.821706, 1.31196, 0.143102),
    (0.596854, 2.130355, 0.08529),
    (1.075705, 1.701967, 0.244298),
    (0.728471, 1.511532, 0.086474),
    (1.197162, 1.325326, 0.078897),
    (0.493857, 3.580113, 0.139884),
    (0.78707, 3.165387, 0.108961),
    (1.104752, 2.034859, 0.10753),
]
KB_FORM_Y = [
    (0.87035, -1.450715, 0.157647),
    (0.462772, -0.406996, 0.109378),
    (0.441595, -1.334933, 0.155883),
    (0.544796, -0.901734, 0.138071),
    (0.619973, -1.486483, 0.211368),
    (0.572995, -1.321004, 0.191298),
    (1.175228, 0.06905, 0.294746),
    (0.445023, 0.232402, 0.272323),
    (0.598719, -0.709831, 0.117663),
    (0.847924, -0.425342, 0.144462),
    (1.031996, -0.818383, 0.093584),
    (0.604125, -0.353942, 0.081759),
    (0.829722, -0.019137, 0.12831),
    (0.725171, -0.315511, 0.085425),
    (0.990164, 0.531956, 0.302443),
    (0.774935, 0.539442, 0.21793),
    (0.59423, 0.898656, 0.229885),
    (0.808079, -0.115649, 0.064791),
    (0.964044, -0.194763, 0.163258),
    (0.783557, 0.350592, 0.129939),
    (0.413973, 2.553812, 0.240967),
    (0.761758, -0.15811, 0.113708),
    (1.195895, 0.505649, 0.239728),
    (1.355437, 0.581109, 0.224322),
    (1.186899, 0.622889, 0.257697),
    (1.029556, 0.38983, 0.185611),
    (1.041731, 0.939158, 0.165121),
    (1.205473, 1.135046, 0.232287),
    (0.96974, 0.697642, 0.107035),
    (0.633562, 1.896027, 0.079396),
    (1.082216, 1.386423, 0.185511),
    (1.019458, 0.91967, 0.102719),
    (1.134661, 1.079013, 0.063009),
    (1.194845, 1.841148, 0.099913),
    (1.196146, 2.029683, 0.083187),
    (0.925521, 2.133706, 0.125873),
]
# Form-Y true-score equivalents of Form-X scores 0..36 and the Form-X thetas of scores 7..35, from
# Kolen's POLYEQUATE program for this example (Kolen & Brennan, 2014, ch. 6), 6 decimals, as
# jMetrik's IrtTrueScoreEquatingTest asserts them.
KB_Y_EQUIVALENTS = [
    0.0, 0.888027, 1.776054, 2.66408, 3.552107, 4.440134, 5.328161, 6.134033, 7.185802,
    8.39496, 9.621725, 10.82559, 12.000215, 13.149525, 14.280262, 15.399495, 16.513518,
    17.627108, 18.742944, 19.861174, 20.979305, 22.09259, 23.194994, 24.280626, 25.345249,
    26.387408, 27.408805, 28.413824, 29.408303, 30.397704, 31.384411, 32.363711, 33.317925,
    34.209551, 34.979905, 35.575623, 36.0,
]
KB_X_THETA = [
    -4.336128, -2.770096, -2.063286, -1.607182, -1.26817, -0.995059, -0.763274, -0.559258,
    -0.37474, -0.204264, -0.044016, 0.108779, 0.256195, 0.399813, 0.540889, 0.680503,
    0.819717, 0.95975, 1.102159, 1.249018, 1.403104, 1.56813, 1.749146, 1.95332, 2.191603,
    2.482434, 2.860365, 3.399176, 4.321431,
]


def kb_form(rows) -> ItemParameters:
    p = np.array(rows)
    return ItemParameters("3pl", 1.7 * p[:, 0], p[:, 1], p[:, 2])


@pytest.fixture(scope="module")
def kb_forms():
    return kb_form(KB_FORM_X), kb_form(KB_FORM_Y)


def test_true_score_equating_reproduces_kolen_brennan_example(kb_forms):
    form_x, form_y = kb_forms
    table = true_score_equating(form_x, form_y)
    np.testing.assert_allclose(table.equivalents, KB_Y_EQUIVALENTS, atol=5e-6)
    np.testing.assert_allclose(table.theta[7:36], KB_X_THETA, atol=5e-6)
    # scores 0..6 lie at or below sum c_X = 6.53...: no theta, linear ad hoc rule (Kolen, 1981)
    assert np.isnan(table.theta[:7]).all() and np.isnan(table.theta[36])
    assert table.lookup([0, 36]).tolist() == [0.0, 36.0]
    doc = table.to_dict()
    assert doc["rows"][0]["theta"] is None and doc["rows"][10]["theta"] == pytest.approx(-1.607182)


def test_equipercentile_reproduces_kolen_brennan_table_2_2():
    # Kolen & Brennan (2014, sec. 2.5.3, Table 2.2): cumulative proportions of X .2 .5 .7 .9 1 and
    # of Y .1 .3 .5 .8 1; the equipercentile equivalents are .5, 1.75, 2.8333, 3.5, 4.25
    fx = np.diff([0, 0.2, 0.5, 0.7, 0.9, 1.0])
    fy = np.diff([0, 0.1, 0.3, 0.5, 0.8, 1.0])
    np.testing.assert_allclose(equipercentile(fx, fy), [0.5, 1.75, 2.833333, 3.5, 4.25], atol=1e-6)
    # counts work as well as proportions
    np.testing.assert_allclose(equipercentile(fx * 50, fy * 10), equipercentile(fx, fy))


def test_theta_for_raw_and_raw_for_theta_are_inverse(kb_forms):
    form_x, _ = kb_forms
    raw = np.array([6.6, 10.0, 18.5, 30.25, 35.9])
    theta = theta_for_raw(form_x, raw)
    np.testing.assert_allclose(raw_for_theta(form_x, theta), raw, atol=1e-9)
    assert np.all(np.diff(theta) > 0)
    # a polytomous form: the TCC of a GRM set inverts as well
    grm = ItemParameters("grm", [1.2, 0.8, 1.5], [[-1.0, 0.5, np.nan], [0.0, np.nan, np.nan],
                                                   [-0.5, 0.2, 1.1]])
    t = theta_for_raw(grm, [0.5, 3.0, 5.5])
    np.testing.assert_allclose(raw_for_theta(grm, t), [0.5, 3.0, 5.5], atol=1e-9)


def test_theta_for_raw_refuses_scores_without_a_theta(kb_forms):
    form_x, _ = kb_forms
    with pytest.raises(PsychometricsError, match="raw = 6 has no theta.*6.527"):
        theta_for_raw(form_x, 6)
    with pytest.raises(PsychometricsError, match="raw = 36 has no theta"):
        theta_for_raw(form_x, [20, 36])
    with pytest.raises(PsychometricsError, match="outside bounds"):
        theta_for_raw(form_x, 35.99, bounds=(-4, 4))
    with pytest.raises(PsychometricsError, match="raw must be a finite"):
        theta_for_raw(form_x, np.nan)
    negative = ItemParameters("2pl", [1.0, -0.5], [0.0, 0.0])
    with pytest.raises(PsychometricsError, match="params: item 1 has slope"):
        theta_for_raw(negative, 1.0)
    with pytest.raises(TypeError, match="params must be ItemParameters"):
        theta_for_raw({"a": 1}, 1.0)


def test_observed_score_equating_of_a_form_with_itself_is_the_identity(kb_forms):
    form_x, form_y = kb_forms
    same = observed_score_equating(form_x, form_x)
    np.testing.assert_allclose(same.equivalents, np.arange(37), atol=1e-9)
    table = observed_score_equating(form_x, form_y)
    assert np.all(np.diff(table.equivalents) > 0)
    np.testing.assert_allclose(table.prob_x.sum(), 1.0)
    # the equated scores carry X's distribution onto Y's: their mean matches Y's model mean
    mean_y = np.arange(37) @ table.prob_y
    assert table.equivalents @ table.prob_x == pytest.approx(mean_y, abs=0.02)
    # true-score and observed-score equating agree closely in the middle of the scale
    tse = true_score_equating(form_x, form_y).equivalents
    assert np.max(np.abs(table.equivalents[10:30] - tse[10:30])) < 0.3


def test_observed_score_distribution_over_given_nodes(kb_forms):
    form_x, _ = kb_forms
    nodes = np.array([-1.0, 0.0, 1.5])
    weights = np.array([1.0, 2.0, 1.0])
    f = observed_score_distribution(form_x, theta=nodes, weights=weights)
    np.testing.assert_allclose(f, lord_wingersky(form_x, nodes) @ (weights / 4))
    with pytest.raises(PsychometricsError, match="weights must be given with theta"):
        observed_score_distribution(form_x, theta=nodes)
    with pytest.raises(PsychometricsError, match="weights must be non-negative"):
        observed_score_distribution(form_x, theta=nodes, weights=[1, -1, 1])
    with pytest.raises(PsychometricsError, match="prob_y must hold non-negative"):
        equipercentile([0.5, 0.5], [0.5, -0.5])


def test_conversion_table_with_conditional_sems(kb_forms):
    form_x, _ = kb_forms
    eap = conversion_table(form_x, scale=(10, 100), decimals=0, scale_limits=(70, 130))
    assert eap.scores.tolist() == list(range(37))
    assert np.all(np.diff(eap.theta) > 0) and np.all(np.diff(eap.scale) >= 0)
    assert eap.scale.min() >= 70 and eap.scale.max() <= 130
    assert eap.scale == pytest.approx(np.clip(np.floor(10 * eap.theta + 100.5), 70, 130))
    half = conversion_table(form_x, scale=lambda t: np.full_like(t, 102.5), decimals=0)
    assert np.all(half.scale == 103)  # halves round up, not to even
    # the scale CSEM of an unrounded linear conversion of a 0/1 test at theta is the SD of
    # slope * theta_EAP(s) over P(s | theta): check one row against the definition
    lin = conversion_table(form_x, scale=(10, 100))
    p_s = lord_wingersky(form_x, lin.theta[20:21])[:, 0]
    sd = np.sqrt(p_s @ lin.scale**2 - (p_s @ lin.scale) ** 2)
    assert lin.csem_scale[20] == pytest.approx(sd)
    # raw CSEM at theta: sqrt(sum P (1 - P)) (Lord, 1980)
    p = form_x.prob(lin.theta[20:21])[:, 1, 0]
    assert lin.csem_raw[20] == pytest.approx(np.sqrt(np.sum(p * (1 - p))))
    tcc = conversion_table(form_x, theta_from="tcc", theta_limits=(-4, 4))
    # scores 0..7 have no theta inside [-4, 4] (7 maps to -4.34), nor 35 (4.32) and 36
    assert tcc.clipped[:8].all() and tcc.clipped[35:].all() and not tcc.clipped[8:35].any()
    np.testing.assert_allclose(tcc.theta[8:35], KB_X_THETA[1:-1], atol=5e-6)
    assert tcc.theta[35] == 4.0
    doc = tcc.to_dict()
    assert doc["theta_from"] == "tcc" and doc["rows"][0]["theta_clipped"] is True
    with pytest.raises(PsychometricsError, match="theta_from must be"):
        conversion_table(form_x, theta_from="mle")
    with pytest.raises(PsychometricsError, match="scale must be a callable"):
        conversion_table(form_x, scale="T-score")
    with pytest.raises(PsychometricsError, match="scale_limits must satisfy"):
        conversion_table(form_x, scale=(10, 100), scale_limits=(5, 1))


def test_conversion_table_of_a_calibration_uses_its_latent_scale(lsat6):
    fit = calibrate(lsat6, "rasch", standard_errors=False)
    table = conversion_table(fit)
    direct = conversion_table(fit.params, latent_sd=fit.latent_sd)
    np.testing.assert_allclose(table.theta, direct.theta)
    assert fit.latent_sd != pytest.approx(1.0, abs=0.1)
    assert not np.allclose(table.theta, conversion_table(fit.params).theta)
