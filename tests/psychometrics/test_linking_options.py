"""Linking options: the criterion grid and weights, symmetric criteria, the D = 1.7 metric,
jackknife standard errors and the anchor drift screen.

Published values: STUIRT (Kim & Kolen, 2004), example 1, on the 12 common items of Kolen &
Brennan (2004, Table 6.5; plink's ``KB04``), 3PL in the D = 1.7 metric, with STUIRT's
10-point grid and the two groups' densities, symmetric criteria ("SY BI BI") standardised by
the weights: mean/sigma A = 1.168891, B = -0.515543; mean/mean A = 1.217266, B = -0.557156;
Haebara A = 1.067800, B = -0.471281, criterion 0.001506; Stocking-Lord A = 1.083417,
B = -0.487619, criterion 0.009666 (the STUIRT output is quoted in the tests of jMetrik's
psychometrics library, IrtScaleLinkingTest.linkingTest3PL).
"""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import ItemParameters, anchor_drift, link

# Form X (new) and Form Y (base) common items: a, b, c
FORM_X = [
    (0.4551, -0.7101, 0.2087),
    (0.5839, -0.8567, 0.2038),
    (0.7544, 0.0212, 0.1600),
    (0.6633, 0.0506, 0.1240),
    (1.0690, 0.9610, 0.2986),
    (0.9672, 0.1950, 0.0535),
    (0.3479, 2.2768, 0.1489),
    (1.4579, 1.0241, 0.2453),
    (1.8811, 1.4062, 0.1992),
    (0.7020, 2.2401, 0.0853),
    (1.4080, 1.5556, 0.0789),
    (1.2993, 2.1589, 0.1075),
]
FORM_Y = [
    (0.4416, -1.3349, 0.1559),
    (0.5730, -1.3210, 0.1913),
    (0.5987, -0.7098, 0.1177),
    (0.6041, -0.3539, 0.0818),
    (0.9902, 0.5320, 0.3024),
    (0.8081, -0.1156, 0.0648),
    (0.4140, 2.5538, 0.2410),
    (1.3554, 0.5811, 0.2243),
    (1.0417, 0.9392, 0.1651),
    (0.6336, 1.8960, 0.0794),
    (1.1347, 1.0790, 0.0630),
    (0.9255, 2.1337, 0.1259),
]
STUIRT_THETA = [-4.0, -3.111, -2.222, -1.333, -0.4444, 0.4444, 1.333, 2.222, 3.111, 4.0]
DENSITY_X = [
    0.0001008,
    0.002760,
    0.03021,
    0.1420,
    0.3149,
    0.3158,
    0.1542,
    0.03596,
    0.003925,
    0.0001862,
]
DENSITY_Y = [
    0.0001173,
    0.003242,
    0.03449,
    0.1471,
    0.3148,
    0.3110,
    0.1526,
    0.03406,
    0.002510,
    0.0001116,
]


def _params(rows):
    a, b, c = np.array(rows).T
    return ItemParameters("3pl", a, b, c)


NEW, BASE = _params(FORM_X), _params(FORM_Y)
STUIRT = {
    "theta": STUIRT_THETA,
    "weights": DENSITY_Y,
    "new_theta": STUIRT_THETA,
    "new_weights": DENSITY_X,
}


def test_moment_methods_match_stuirt():
    ms = link(NEW, BASE, "mean-sigma")
    assert (ms.A, ms.B) == pytest.approx((1.168891, -0.515543), abs=1e-6)
    mm = link(NEW, BASE, "mean-mean")
    assert (mm.A, mm.B) == pytest.approx((1.217266, -0.557156), abs=1e-6)


@pytest.mark.parametrize(
    "method, A, B, criterion",
    [("haebara", 1.067800, -0.471281, 0.001506), ("stocking-lord", 1.083417, -0.487619, 0.009666)],
)
def test_symmetric_characteristic_curve_methods_match_stuirt(method, A, B, criterion):
    k = link(NEW, BASE, method, symmetric=True, D=1.7, **STUIRT)
    assert k.symmetric
    assert k.A == pytest.approx(A, abs=2e-6)
    assert k.B == pytest.approx(B, abs=2e-6)
    assert k.criterion == pytest.approx(criterion, abs=1e-6)


def test_d_scales_the_slopes_only():
    scaled_new = ItemParameters("3pl", NEW.a * 1.7, NEW.b, NEW.c)
    scaled_base = ItemParameters("3pl", BASE.a * 1.7, BASE.b, BASE.c)
    one = link(scaled_new, scaled_base, "haebara", theta=STUIRT_THETA, weights=DENSITY_Y)
    d17 = link(NEW, BASE, "haebara", theta=STUIRT_THETA, weights=DENSITY_Y, D=1.7)
    assert (one.A, one.B) == pytest.approx((d17.A, d17.B), abs=1e-8)
    # the grid matters: a uniform grid gives a different (and valid) solution
    flat = link(NEW, BASE, "haebara", theta=np.linspace(-4, 4, 10), D=1.7)
    assert abs(flat.A - d17.A) > 1e-3


def test_symmetric_criterion_recovers_an_exact_transformation_from_both_sides():
    rng = np.random.default_rng(3)
    base = ItemParameters("2pl", rng.lognormal(0, 0.3, 8), rng.normal(0, 1, 8))
    new = ItemParameters("2pl", base.a * 0.8, (base.b - 0.3) / 0.8)
    for method in ("haebara", "stocking-lord"):
        k = link(new, base, method, symmetric=True)
        assert (k.A, k.B) == pytest.approx((0.8, 0.3), abs=1e-5)
        assert k.criterion == pytest.approx(0.0, abs=1e-10)


def test_jackknife_standard_errors():
    exact = ItemParameters("3pl", BASE.a * 1.2, (BASE.b + 0.5) / 1.2, BASE.c)
    k = link(exact, BASE, "stocking-lord", se="jackknife")
    assert k.se_A == pytest.approx(0, abs=1e-4) and k.se_B == pytest.approx(0, abs=1e-4)
    k = link(NEW, BASE, "mean-sigma", se="jackknife")
    # the real forms disagree item by item, so the link depends on which items are common
    assert 0.02 < k.se_A < 0.3 and 0.02 < k.se_B < 0.3
    assert k.to_dict()["se_A"] == k.se_A
    with pytest.raises(ValueError, match="se must be"):
        link(NEW, BASE, se="bootstrap")


def test_grid_arguments_are_validated():
    with pytest.raises(ValueError, match="weights must have one value"):
        link(NEW, BASE, "haebara", theta=[0, 1, 2], weights=[1, 1])
    with pytest.raises(ValueError, match="not all zero"):
        link(NEW, BASE, "haebara", theta=[0, 1], weights=[0, 0])
    with pytest.raises(ValueError, match="weights given without"):
        link(NEW, BASE, "haebara", weights=[1, 1])
    with pytest.raises(ValueError, match="D must be"):
        link(NEW, BASE, D=0)


def test_anchor_drift_flags_the_item_that_moved():
    rng = np.random.default_rng(11)
    base = ItemParameters("2pl", rng.lognormal(0, 0.3, 12), rng.normal(0, 1, 12))
    b_new = (base.b + 0.4) / 1.1 + rng.normal(0, 0.03, 12)
    b_new[4] += 0.9  # item 5 became harder on the new form
    new = ItemParameters("2pl", base.a * 1.1, b_new)
    res = anchor_drift(new, base, item_ids=[f"q{i}" for i in range(12)])
    flagged = [r.item for r in res if r.flagged]
    assert "q4" in flagged and len(flagged) <= 2  # 1.645 flags ~10 % of undrifted items by chance
    assert res[4].z_b < -10 and max(abs(r.z_b) for r in res if r.item != "q4") < 2.5
    assert res[4].to_dict()["flagged"] is True
    with pytest.raises(ValueError, match="at least 4"):
        anchor_drift(new.subset([0, 1, 2]), base.subset([0, 1, 2]))
