"""Carrying a cut through the test characteristic curve, and decision accuracy/consistency.

The carried cut is checked on Kolen & Brennan's (2014, ch. 6) 36-item 3PL forms against
POLYEQUATE's published thetas and true-score equivalents; the decision indices against normal
and binomial tables worked by hand, and against each other where theory says they must agree.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from psychometrics import (
    ItemParameters,
    PsychometricsError,
    ScaleTransform,
    angoff_cut,
    carry_cut,
    conversion_table,
    cut_report,
    lee,
    livingston_lewis,
    raw_for_theta,
    round_raw_cut,
    rudner,
    subkoviak,
    theta_cut_from_raw,
)
from psychometrics.cli import main
from psychometrics.decision_consistency import beta4_from_moments, true_score_moments
from tests.psychometrics.test_equating import (
    KB_FORM_X,
    KB_FORM_Y,
    KB_X_THETA,
    KB_Y_EQUIVALENTS,
    kb_form,
)


@pytest.fixture(scope="module")
def kb():
    return kb_form(KB_FORM_X), kb_form(KB_FORM_Y)


def test_raw_cut_carried_to_other_form_matches_polyequate(kb):
    form_x, form_y = kb
    # a raw cut of 25 on Form X: theta 1.102159 and Form-Y true score 26.387408 (Kolen &
    # Brennan, 2014, ch. 6; POLYEQUATE)
    theta_c = theta_cut_from_raw(form_x, 25)
    assert theta_c == pytest.approx(KB_X_THETA[25 - 7], abs=5e-6)
    carried = carry_cut(theta_c, {"X": form_x, "Y": form_y})
    x, y = carried.form("X"), carried.form("Y")
    assert x.expected_raw == pytest.approx(25.0) and x.raw_cut == 25  # no 26 from float fuzz
    assert y.expected_raw == pytest.approx(KB_Y_EQUIVALENTS[25], abs=5e-6)
    assert y.raw_cut == 27  # ceil(26.387)
    assert carry_cut(theta_c, {"Y": form_y}, rounding="round").forms[0].raw_cut == 26
    assert carry_cut(theta_c, {"Y": form_y}, rounding="floor").forms[0].raw_cut == 26
    assert y.theta_at_raw_cut > theta_c  # the whole cut demands a little more than the theta cut
    assert y.max_score == 36 and y.percent == pytest.approx(75.0)
    with pytest.raises(PsychometricsError, match="rounding must be one of"):
        carry_cut(theta_c, form_y, rounding="up")


def test_angoff_cut_becomes_theta_cut_and_raw_cuts(kb):
    form_x, form_y = kb
    ratings = np.full((4, 36), 0.6)
    ratings[:, :10] = 0.8
    res = angoff_cut(ratings)  # 10 * .8 + 26 * .6 = 23.6
    assert res.cut == pytest.approx(23.6)
    theta_c = theta_cut_from_raw(form_x, res.cut)
    assert raw_for_theta(form_x, theta_c)[0] == pytest.approx(23.6)
    carried = carry_cut(theta_c, {"X": form_x, "Y": form_y})
    assert carried.form("X").raw_cut == 24
    # Form Y is easier at this theta (its equivalents exceed X's): its raw cut is higher
    assert carried.form("Y").raw_cut >= carried.form("X").raw_cut


def test_raw_theta_raw_round_trip_property(kb):
    form_x, _ = kb
    rng = np.random.default_rng(7)
    for raw in rng.uniform(7.0, 35.5, 25):
        t = theta_cut_from_raw(form_x, raw)
        assert raw_for_theta(form_x, t)[0] == pytest.approx(raw, abs=1e-8)
        # whole raw cuts: theta -> ceil(T) -> theta' >= theta, and back to the same whole cut
        whole = int(round_raw_cut(raw))
        assert whole == int(np.ceil(raw))
    # monotone: higher theta cut, never a lower raw cut
    cuts = [carry_cut(t, form_x).forms[0].raw_cut for t in np.linspace(-2, 3, 30)]
    assert all(b >= a for a, b in itertools.pairwise(cuts))


def test_scale_transform_100_500_cut_350():
    s = ScaleTransform(theta_cut=0.4, cut_scale=350, slope=50, limits=(100, 500))
    assert s(0.4) == 350
    assert s([0.4 + 1.0, 0.4 - 2.0]).tolist() == [400.0, 250.0]
    assert s([10.0, -10.0]).tolist() == [500.0, 100.0]  # clipped
    fine = ScaleTransform(theta_cut=0.0, cut_scale=350, slope=2, limits=(100, 500))
    # 350.5 rounds half up to 351; 349.5 would round to 350, but it is below the cut: 349
    assert fine([0.25, -0.25]).tolist() == [351.0, 349.0]
    assert s.inverse(400) == pytest.approx(1.4)
    two = ScaleTransform.through(
        0.4, cut_scale=350, theta_anchor=-1.6, scale_anchor=250, limits=(100, 500)
    )
    assert two.slope == pytest.approx(50.0)
    with pytest.raises(PsychometricsError, match="outside limits"):
        ScaleTransform(0.0, cut_scale=600)
    with pytest.raises(PsychometricsError, match="slope must be positive"):
        ScaleTransform(0.0, slope=-1)


def test_scale_conversion_table_never_shows_the_cut_to_a_failing_score(kb):
    form_x, _ = kb
    theta_c = theta_cut_from_raw(form_x, 24.6)
    scale = ScaleTransform(theta_c, cut_scale=350, slope=50, limits=(100, 500))
    # 349.6 would round to 350; below the cut it reports 349
    assert scale(theta_c - 0.4 / 50) == 349.0 and scale(theta_c) == 350.0
    table = conversion_table(form_x, scale=scale, theta_from="tcc")
    raw_cut = carry_cut(theta_c, form_x).forms[0].raw_cut
    assert raw_cut == 25
    assert table.scale[raw_cut] >= 350 and table.scale[raw_cut - 1] < 350
    assert table.scale.min() >= 100 and table.scale.max() <= 500


def test_rudner_single_examinee_normal_table():
    # theta 1.0 with SE 0.5 against a cut at 0: z = 2, Phi(2) = .97725 (normal table)
    res = rudner(0.0, theta=[1.0], se=[0.5])
    assert res.accuracy == pytest.approx(0.97725, abs=5e-6)
    assert res.consistency == pytest.approx(0.97725**2 + 0.02275**2, abs=5e-5)
    # two examinees symmetric about the cut: accuracy .97725 each; expected proportions 1/2 each
    two = rudner(0.0, theta=[1.0, -1.0], se=[0.5, 0.5])
    assert two.accuracy == pytest.approx(0.97725, abs=5e-6)
    np.testing.assert_allclose(two.expected_proportions, [0.5, 0.5])
    assert two.chance == pytest.approx(0.5)
    assert two.kappa == pytest.approx((two.consistency - 0.5) / 0.5)
    assert two.false_pass == pytest.approx(0.5 * 0.02275, abs=5e-6)
    doc = two.to_dict()
    assert doc["method"] == "rudner_P" and len(doc["confusion"]) == 2


def test_rudner_multiple_cuts_and_errors():
    res = rudner([-1.0, 1.0], theta=[0.0], se=[1.0])
    # middle category: Phi(1) - Phi(-1) = .68269
    assert res.accuracy == pytest.approx(0.682689, abs=1e-6)
    with pytest.raises(PsychometricsError, match="strictly increasing"):
        rudner([1.0, 0.0], theta=[0.0], se=[1.0])
    with pytest.raises(PsychometricsError, match="se must be positive"):
        rudner(0.0, theta=[0.0], se=[0.0])
    with pytest.raises(PsychometricsError, match="give theta and se"):
        rudner(0.0)


def test_lee_two_rasch_items_by_hand():
    # two Rasch items b = 0 at theta 0: P(x = 0, 1, 2) = .25, .5, .25; T(0) = 1 < cut 2, so the
    # true status is fail; accuracy = P(x < 2) = .75; consistency .75^2 + .25^2 = .625
    p = ItemParameters("2pl", a=[1.0, 1.0], b=[0.0, 0.0])
    res = lee(p, 2, theta=[0.0])
    assert res.accuracy == pytest.approx(0.75)
    assert res.consistency == pytest.approx(0.625)
    # a fractional cut 1.5: observed pass needs x >= 2 (ceil), true status T = 1 < 1.5 still fail
    assert lee(p, 1.5, theta=[0.0]).accuracy == pytest.approx(0.75)
    with pytest.raises(PsychometricsError, match="raw_cuts must lie"):
        lee(p, 3, theta=[0.0])


def test_lee_and_rudner_agree_on_long_test_and_stay_in_range(kb):
    form_x, _ = kb
    theta_c = theta_cut_from_raw(form_x, 25)
    r = rudner(theta_c, params=form_x)
    le = lee(form_x, raw_for_theta(form_x, theta_c))
    for res in (r, le):
        assert 0 < res.accuracy < 1 and 0 < res.consistency < 1 and -1 <= res.kappa <= 1
        assert res.confusion.sum() == pytest.approx(1.0)
        assert res.accuracy == pytest.approx(np.trace(res.confusion))
    # both model the same test: accuracies within a couple of points (Lathrop & Cheng, 2013)
    assert abs(r.accuracy - le.accuracy) < 0.03
    # accuracy rises as the cut moves away from the bulk of the population (monotone in |cut|)
    accs = [rudner(c, params=form_x).accuracy for c in (0.0, 1.0, 2.0, 3.0)]
    assert all(b > a for a, b in itertools.pairwise(accs))


def test_livingston_lewis_effective_length_and_limits():
    rng = np.random.default_rng(3)
    scores = np.clip(np.round(rng.normal(30, 8, 2000)), 0, 50)
    mu, var = scores.mean(), scores.var(ddof=1)
    res = livingston_lewis(scores, 0.9, 32, max_score=50)
    # Livingston & Lewis (1995, eq. 3): n = ((mu - min)(max - mu) - r s^2) / (s^2 (1 - r))
    n_eff = (mu * (50 - mu) - 0.9 * var) / (var * 0.1)
    assert res.details["effective_test_length"] == pytest.approx(n_eff)
    assert res.details["n"] == round(n_eff)
    assert 0.5 < res.consistency < res.accuracy < 1
    assert res.confusion.sum() == pytest.approx(1.0)
    # more reliable scores classify more accurately
    hi = livingston_lewis(scores, 0.97, 32, max_score=50)
    assert hi.accuracy > res.accuracy and hi.consistency > res.consistency
    with pytest.raises(PsychometricsError, match="reliability must lie"):
        livingston_lewis(scores, 1.0, 32, max_score=50)
    with pytest.raises(PsychometricsError, match="scores must lie"):
        livingston_lewis(scores, 0.9, 32, max_score=40)
    with pytest.raises(PsychometricsError, match="true_model must be"):
        livingston_lewis(scores, 0.9, 32, max_score=50, true_model="3p")


def test_four_parameter_beta_recovers_generating_distribution():
    # Lord's (1965) true-score moments of binomial counts, then Hanson's (1991) moment fit:
    # with tau ~ Beta(5, 3) on [.25, .75] (the example of betafunctions' Beta.tp.fit) and
    # 40 000 examinees the fit lands near the generating values
    rng = np.random.default_rng(5)
    tau = 0.25 + 0.5 * rng.beta(5, 3, 40_000)
    x = rng.binomial(40, tau)
    a, b, lo, hi = beta4_from_moments(true_score_moments(x, 40))
    assert lo == pytest.approx(0.25, abs=0.04) and hi == pytest.approx(0.75, abs=0.04)
    assert a / (a + b) == pytest.approx(5 / 8, abs=0.05)


def test_livingston_lewis_matches_simulated_parallel_forms():
    # Livingston & Lewis (1995) report their estimates within 1 percentage point of the actual
    # values; here the truth is simulated: true proportions from a four-parameter beta, two
    # independent binomial forms of 40 items, reliability their correlation.
    rng = np.random.default_rng(5)
    tau = 0.25 + 0.5 * rng.beta(5, 3, 40_000)
    x1, x2 = rng.binomial(40, tau), rng.binomial(40, tau)
    r = np.corrcoef(x1, x2)[0, 1]
    res = livingston_lewis(x1, r, 26, max_score=40)
    assert res.details["true_model"] == "4p"
    assert res.accuracy == pytest.approx(np.mean((x1 >= 26) == (tau >= 26 / 40)), abs=0.01)
    assert res.consistency == pytest.approx(np.mean((x1 >= 26) == (x2 >= 26)), abs=0.01)
    two = livingston_lewis(x1, r, 26, max_score=40, true_model="2p")
    assert two.details["true_model"] == "2p" and two.details["lower"] == 0.0


def test_lee_matches_simulated_parallel_forms(kb):
    # Lee's (2010) indices are exact under the model: simulate theta ~ N(0, 1) and two
    # independent administrations of Kolen & Brennan's Form X, classify at raw cut 25
    form_x, _ = kb
    rng = np.random.default_rng(11)
    theta = rng.normal(size=20_000)
    p = form_x.prob(theta)[:, 1, :].T  # (persons, items)
    x1 = (rng.random(p.shape) < p).sum(axis=1)
    x2 = (rng.random(p.shape) < p).sum(axis=1)
    true_pass = raw_for_theta(form_x, theta) >= 25
    res = lee(form_x, 25)
    assert res.accuracy == pytest.approx(np.mean((x1 >= 25) == true_pass), abs=0.01)
    assert res.consistency == pytest.approx(np.mean((x1 >= 25) == (x2 >= 25)), abs=0.01)
    assert res.expected_proportions[1] == pytest.approx(np.mean(x1 >= 25), abs=0.01)
    # the P method over the simulated thetas agrees with the D method
    assert lee(form_x, 25, theta=theta[:2000]).accuracy == pytest.approx(res.accuracy, abs=0.02)


def test_subkoviak_by_hand():
    scores = [0, 1, 2, 1]
    # r = 1: p_i = x_i / 2 -> P(pass at 2) = 0, .25, 1, .25; p0 = mean(1, .625, 1, .625) = .8125
    # Pbar = .375, chance .375^2 + .625^2 = .53125, kappa = (.8125 - .53125) / .46875 = .6
    res = subkoviak(scores, 2, 1.0, 2)
    assert res.consistency == pytest.approx(0.8125)
    assert res.chance == pytest.approx(0.53125)
    assert res.kappa == pytest.approx(0.6)
    assert res.accuracy is None
    # r = 0: every p_i is the mean proportion .5: no consistency beyond chance
    assert subkoviak(scores, 2, 0.0, 2).kappa == pytest.approx(0.0)
    with pytest.raises(PsychometricsError, match="number-correct scores in 0..2"):
        subkoviak([0, 3], 2, 0.8, 2)


def test_subkoviak_matches_simulated_parallel_forms():
    # Subkoviak's (1976) estimate against the observed agreement of two simulated parallel
    # forms (equally difficult items, his model's assumption), reliability their correlation
    rng = np.random.default_rng(5)
    tau = 0.25 + 0.5 * rng.beta(5, 3, 20_000)
    x1, x2 = rng.binomial(30, tau), rng.binomial(30, tau)
    r = np.corrcoef(x1, x2)[0, 1]
    res = subkoviak(x1, 30, r, 20)
    assert res.consistency == pytest.approx(np.mean((x1 >= 20) == (x2 >= 20)), abs=0.015)


def test_cut_report_sem_and_pass_rates(kb):
    form_x, _ = kb
    theta_c = theta_cut_from_raw(form_x, 25)
    rep = cut_report(form_x, theta_c, theta=np.array([0.0, 1.5, 2.0, -1.0]))
    assert rep.expected_raw == pytest.approx(25.0)
    assert rep.pass_rate_sample == 0.5
    assert 0 < rep.pass_rate_population < 0.5  # theta_c = 1.10 is above the N(0, 1) mean
    # the model-implied pass rate is close to P(theta >= theta_c) on a test this long
    assert rep.pass_rate_population == pytest.approx(1 - stats.norm.cdf(theta_c), abs=0.05)
    assert rep.csem_theta > 0 and rep.csem_raw > 0
    scores = cut_report(form_x, theta_c, scores=[20, 25, 26, 30])
    assert scores.pass_rate_sample == 0.75


def _fit_json(path, rows, prefix="i"):
    doc = {
        "model": "3pl",
        "latent": {"mean": 0.0, "sd": 1.0},
        "items": [
            {"id": f"{prefix}{j + 1}", "a": 1.7 * a, "b": b, "c": c}
            for j, (a, b, c) in enumerate(rows)
        ],
    }
    path.write_text(json.dumps(doc))
    return path


def test_cut_score_command_carries_angoff_cut_to_forms(tmp_path):
    fit_x = _fit_json(tmp_path / "x.json", KB_FORM_X)
    fit_y = _fit_json(tmp_path / "y.json", KB_FORM_Y, prefix="y")
    items = [f"i{j + 1}" for j in range(36)]
    lines = ["panelist,round," + ",".join(reversed(items))]  # any column order
    for rnd in (1, 2):
        for who, base in (("ann", 0.70), ("bob", 0.68 if rnd == 2 else 0.60)):
            lines.append(f"{who},{rnd}," + ",".join([f"{base:.2f}"] * 36))
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(
        main, ["cut-score", str(ratings), "--params", str(fit_x), "--form", f"Y={fit_y}"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["angoff"]["cut"] == pytest.approx(36 * 0.69)  # round 2: (25.2 + 24.48) / 2
    assert len(doc["angoff"]["rounds"]) == 2
    theta_c = doc["carried"]["theta_cut"]
    assert theta_c == pytest.approx(theta_cut_from_raw(kb_form(KB_FORM_X), 36 * 0.69))
    names = [f["form"] for f in doc["carried"]["forms"]]
    assert names == ["reference", "Y"]
    assert doc["carried"]["forms"][0]["raw_cut"] == 25  # ceil(24.84)
    assert doc["carried"]["scale"]["cut_scale"] == 350.0
    for name in names:
        dec = doc["decisions"][name]
        assert 0.5 < dec["rudner"]["accuracy"] < 1 and 0.5 < dec["lee"]["accuracy"] < 1
        assert dec["at_cut"]["csem_theta"] > 0


def test_cut_score_command_reports_bad_ratings(tmp_path):
    fit_x = _fit_json(tmp_path / "x.json", KB_FORM_X[:3])
    bad = tmp_path / "bad.csv"
    bad.write_text("panelist,i1,i2,i3\nann,0.5,x,0.7\n")
    result = CliRunner().invoke(main, ["cut-score", str(bad), "--params", str(fit_x)])
    assert result.exit_code != 0 and "row 2, column i2" in result.output
    bad.write_text("panelist,i1,i2\nann,0.5,0.6\n")
    result = CliRunner().invoke(main, ["cut-score", str(bad), "--params", str(fit_x)])
    assert result.exit_code != 0 and "missing i3" in result.output
    bad.write_text("panelist,i1,i2,i3\nann,0.5,0.6,1.5\n")
    result = CliRunner().invoke(main, ["cut-score", str(bad), "--params", str(fit_x)])
    assert result.exit_code != 0 and "panelist ann, item i3 is 1.5" in result.output
