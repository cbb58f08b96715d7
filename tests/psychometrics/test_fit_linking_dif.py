"""S-X2 item fit, linking through common items, and DIF."""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import ItemParameters, calibrate
from psychometrics.dif import ets_class, logistic_dif, mantel_haenszel
from psychometrics.fit import s_x2
from psychometrics.linking import link


def test_s_x2_holds_its_level_and_catches_a_misfitting_item(sim):
    x, true = sim.dichotomous(3000, 20, seed=41)
    fit = calibrate(x, "2pl")
    res = s_x2(x, fit)
    p = np.array([r.p_value for r in res])
    assert (p < 0.01).sum() <= 1  # 20 well-fitting items
    assert all(r.df == r.n_groups - 2 for r in res)
    rng = np.random.default_rng(0)
    # item 1 really follows a steep 3PL with a high asymptote; a 2PL cannot fit it
    x[:, 0] = rng.random(3000) < 0.35 + 0.65 / (1 + np.exp(-2.5 * (true["theta"] - 1)))
    res = s_x2(x, calibrate(x, "2pl"))
    assert res[0].p_value < 0.001


def test_s_x2_for_graded_items(sim):
    x, _ = sim.polytomous(2000, 8, 4, model="grm", seed=3)
    res = s_x2(x, calibrate(x, "grm"))
    assert all(r.statistic is not None and r.p_value > 0.01 for r in res)


@pytest.mark.parametrize("method", ["mean-sigma", "mean-mean", "haebara", "stocking-lord"])
def test_linking_recovers_an_exact_transformation(method):
    rng = np.random.default_rng(0)
    base = ItemParameters(
        "3pl", rng.lognormal(0, 0.3, 10), rng.normal(0, 1, 10), rng.uniform(0.1, 0.2, 10)
    )
    new = ItemParameters("3pl", base.a * 1.3, (base.b + 0.4) / 1.3, base.c)
    k = link(new, base, method)
    assert k.A == pytest.approx(1.3, abs=1e-5) and k.B == pytest.approx(-0.4, abs=1e-5)
    np.testing.assert_allclose(k.transform(new).b, base.b, atol=1e-5)


@pytest.mark.slow
def test_linking_two_calibrations_of_different_groups(sim):
    """Base group N(0,1), new group N(0.5, 1.3^2): each calibration sets its own group to
    N(0,1), so theta_base = 1.3 theta_new + 0.5 is the true link."""
    rng = np.random.default_rng(5)
    j = 20
    a, b = rng.lognormal(0, 0.3, j), rng.normal(0, 1, j)

    def draw(mean, sd, n):
        th = rng.normal(mean, sd, n)
        return (rng.random((n, j)) < 1 / (1 + np.exp(-a * (th[:, None] - b)))).astype(float)

    base = calibrate(draw(0, 1, 5000), "2pl").params
    new = calibrate(draw(0.5, 1.3, 5000), "2pl").params
    for method in ("stocking-lord", "haebara", "mean-sigma"):
        k = link(new, base, method)
        assert k.A == pytest.approx(1.3, abs=0.08), method
        assert k.B == pytest.approx(0.5, abs=0.08), method


def test_linking_validates_inputs():
    p = ItemParameters("2pl", [1, 1], [0, 1])
    with pytest.raises(ValueError, match="method must be one of"):
        link(p, p, "median")
    with pytest.raises(ValueError, match="same common items"):
        link(p, ItemParameters("2pl", [1, 1, 1], [0, 1, 2]))


def test_mantel_haenszel_by_hand_on_two_strata():
    # stratum 1 (score 1): ref 3 right 2 wrong, focal 1 right 4 wrong
    # stratum 2 (score 2): ref 4 right 1 wrong, focal 2 right 3 wrong
    rows, group = [], []
    for score, (a, b, c, d) in ((1, (3, 2, 1, 4)), (2, (4, 1, 2, 3))):
        other = [1, 0] if score == 1 else [1, 1]
        for right, n, g in ((1, a, 0), (0, b, 0), (1, c, 1), (0, d, 1)):
            for _ in range(n):
                rows.append(
                    [right] + (other if right == 0 else [o if score == 2 else 0 for o in other])
                )
                group.append(g)
    x = np.array(rows, float)
    total = x.sum(axis=1)
    res = mantel_haenszel(x, np.array(group), matching=total)[0]
    # recompute from the tables actually formed by total score
    num = den = 0.0
    for s in np.unique(total):
        sel = total == s
        g = np.array(group)
        a = ((x[:, 0] == 1) & (g == 0) & sel).sum()
        b = ((x[:, 0] == 0) & (g == 0) & sel).sum()
        c = ((x[:, 0] == 1) & (g == 1) & sel).sum()
        d = ((x[:, 0] == 0) & (g == 1) & sel).sum()
        n = a + b + c + d
        if (a + b) and (c + d):
            num += a * d / n
            den += b * c / n
    assert res.alpha == pytest.approx(num / den)
    assert res.d_dif == pytest.approx(-2.35 * np.log(num / den))


def test_ets_classes():
    assert ets_class(-0.5, 0.2, 0.001) == "A"
    assert ets_class(-1.2, 0.2, 0.001) == "B"
    assert ets_class(-1.8, 0.2, 0.001) == "C"
    assert ets_class(-1.8, 0.6, 0.001) == "B"  # not significantly beyond 1
    assert ets_class(-1.8, 0.2, 0.2) == "A"


def test_dif_detects_uniform_and_nonuniform_dif():
    rng = np.random.default_rng(0)
    n, j = 4000, 20
    theta = rng.normal(size=n)
    g = (rng.random(n) < 0.5).astype(int)
    a, b = rng.lognormal(0, 0.3, j), rng.normal(0, 1, j)
    bb = np.tile(b, (n, 1))
    bb[g == 1, 0] += 1.0  # uniform DIF against the focal group
    aa = np.tile(a, (n, 1))
    aa[g == 1, 1] *= 0.3  # non-uniform DIF
    x = (rng.random((n, j)) < 1 / (1 + np.exp(-aa * (theta[:, None] - bb)))).astype(float)
    mh = mantel_haenszel(x, g, focal=1)
    assert mh[0].ets_class == "C" and mh[0].d_dif < -1.5
    assert sum(r.ets_class == "A" for r in mh[2:]) >= 16
    lr = logistic_dif(x, g, focal=1)
    assert lr[0].uniform_p < 1e-10 and lr[0].nonuniform_p > 0.01
    assert lr[1].nonuniform_p < 1e-6
    assert np.mean([r.total_p < 0.01 for r in lr[2:]]) <= 0.15
    with pytest.raises(ValueError, match="focal group"):
        mantel_haenszel(x, g, focal=7)
