"""DIF, second ring: the Mantel-Haenszel continuity correction, generalised CMH statistics,
polytomous DIF (Mantel, generalised MH, SMD), ordinal logistic DIF, anchors and purification.

Published values:
* Agresti (1996, Table 3.3; Liu, 1992), smoking and lung cancer in eight Chinese cities: SAS
  PROC FREQ CMH 280.1375 without continuity correction (UCLA OARC's textbook examples for
  Agresti, 1996, ch. 3), MH odds ratio 2.1745 with 95 % limits 1.9840-2.3832; statsmodels'
  StratifiedTable documentation gives the same (280.138; 2.174, 1.984-2.383).
* R's ``mantelhaen.test`` documentation example (Agresti, 1990, penicillin and rabbits), with
  the continuity correction: 3.9286, p = 0.04747, common odds ratio 7 with 95 % limits
  1.026713-47.725133 (values quoted in statsmodels' tests against R).
* Agresti (2002, Table 7.8 and Table 7.12, p. 297), job satisfaction by income within gender:
  general association 10.2001 (df 9, p = 0.3345; R's ``mantelhaen.test`` example); with income
  scores 3, 10, 20, 35 and satisfaction scores 1, 3, 4, 5 the correlation statistic 6.1563
  (df 1) and the row mean scores statistic 9.0342 (df 3).
"""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import (
    cochran_mantel_haenszel,
    logistic_dif,
    mantel_haenszel,
    mantel_haenszel_test,
    ordinal_logistic_dif,
    polytomous_dif,
    purify_dif,
    select_anchor,
)

CHINA = [
    (126, 100, 35, 61),
    (908, 688, 497, 807),
    (913, 747, 336, 598),
    (235, 172, 58, 121),
    (402, 308, 121, 215),
    (182, 156, 72, 98),
    (60, 99, 11, 43),
    (104, 89, 21, 36),
]
# R: array(c(0, 0, 6, 5, 3, 0, 3, 6, ...), dim = c(2, 2, 5)), filled column by column
RABBITS = [(0, 6, 0, 5), (3, 3, 0, 6), (6, 0, 2, 4), (5, 1, 6, 0), (2, 0, 5, 0)]
# Agresti (2002) Table 7.8: [gender][income][satisfaction]
SATISFACTION = [
    [[1, 3, 11, 2], [2, 3, 17, 3], [0, 1, 8, 5], [0, 2, 4, 2]],
    [[1, 1, 2, 1], [0, 3, 5, 1], [0, 0, 7, 3], [0, 1, 9, 6]],
]


def _tables(rows):
    return np.array(rows, float).reshape(-1, 2, 2)


def test_mantel_haenszel_without_correction_matches_sas():
    res = mantel_haenszel_test(_tables(CHINA), correction=False)
    assert res.statistic == pytest.approx(280.1375, abs=1e-4)
    assert res.odds_ratio == pytest.approx(2.1745, abs=1e-4)
    assert res.conf_int == pytest.approx((1.9840, 2.3832), abs=1e-4)
    corrected = mantel_haenszel_test(_tables(CHINA))
    # |sum A - sum E(A)| shrinks by 0.5: 280.1375 -> 279.3757
    assert corrected.statistic == pytest.approx(279.3757, abs=1e-4)
    assert corrected.correction and not res.correction


def test_mantel_haenszel_with_correction_matches_r():
    res = mantel_haenszel_test(_tables(RABBITS))
    assert res.statistic == pytest.approx(3.9286, abs=1e-4)
    assert res.p_value == pytest.approx(0.04747, abs=1e-5)
    assert res.odds_ratio == pytest.approx(7.0)
    assert res.conf_int == pytest.approx((1.026713, 47.725133), abs=1e-5)
    assert res.n_strata == 5


def test_dif_api_reproduces_the_sas_value_from_person_level_data():
    """The China tables as 'persons': stratum = matching score, rows = group, cols = outcome."""
    x, group, stratum = [], [], []
    for k, (a, b, c, d) in enumerate(CHINA):
        for g, y, n in ((0, 1, a), (0, 0, b), (1, 1, c), (1, 0, d)):
            x += [y] * n
            group += [g] * n
            stratum += [k] * n
    x = np.array(x, float)[:, None]
    plain = mantel_haenszel(x, np.array(group), matching=np.array(stratum), correction=False)[0]
    assert plain.chi_square == pytest.approx(280.1375, abs=1e-4)
    assert plain.alpha == pytest.approx(2.1745, abs=1e-4)
    corrected = mantel_haenszel(x, np.array(group), matching=np.array(stratum))[0]
    assert corrected.chi_square == pytest.approx(279.3757, abs=1e-4)


def test_generalised_cmh_statistics_match_agresti():
    t = np.array(SATISFACTION, float)
    res = cochran_mantel_haenszel(t)
    assert res.general_association.statistic == pytest.approx(10.2001, abs=1e-4)
    assert res.general_association.df == 9
    assert res.general_association.p_value == pytest.approx(0.3345, abs=1e-4)
    scored = cochran_mantel_haenszel(t, row_scores=[3, 10, 20, 35], col_scores=[1, 3, 4, 5])
    assert scored.correlation.statistic == pytest.approx(6.1563, abs=1e-4)
    assert scored.row_mean_scores.statistic == pytest.approx(9.0342, abs=1e-4)
    assert scored.row_mean_scores.df == 3
    # for 2 x 2 tables all three are the uncorrected MH statistic
    china = cochran_mantel_haenszel(_tables(CHINA))
    for stat in (china.correlation, china.row_mean_scores, china.general_association):
        assert stat.statistic == pytest.approx(280.1375, abs=1e-4)


def test_table_inputs_are_validated():
    with pytest.raises(ValueError, match="shape"):
        mantel_haenszel_test(np.ones((3, 2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        mantel_haenszel_test([[[1, -1], [2, 2]]])
    with pytest.raises(ValueError, match="row_scores"):
        cochran_mantel_haenszel(np.ones((2, 3, 3)), row_scores=[1, 2])


def _polytomous_data(n=3000, j=8, n_cat=4, shift=0.8, seed=0):
    """GPCM-like items; item 0 is harder for the focal group by ``shift`` on every step."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    g = (rng.random(n) < 0.5).astype(int)
    steps = np.sort(rng.normal(0, 1, (j, n_cat - 1)), axis=1)
    x = np.zeros((n, j))
    for k in range(j):
        b = steps[k][None, :] + (shift * g[:, None] if k == 0 else 0.0)
        num = np.concatenate([np.zeros((n, 1)), np.cumsum(theta[:, None] - b, axis=1)], axis=1)
        p = np.exp(num - num.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        x[:, k] = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    return x, g


def test_polytomous_dif_finds_the_shifted_item():
    x, g = _polytomous_data()
    res = polytomous_dif(x, g, focal=1)
    assert res[0].ets_class == "CC" and res[0].smd < 0 and res[0].mantel_p < 1e-10
    assert res[0].gmh_df == 3 and res[0].gmh_p < 1e-10
    assert sum(r.ets_class == "AA" for r in res[1:]) >= 6
    assert res[0].to_dict()["ets_class"] == "CC"


def test_polytomous_dif_on_binary_items_is_the_uncorrected_mh_test():
    rng = np.random.default_rng(2)
    x = (rng.random((600, 6)) < 0.6).astype(float)
    g = rng.integers(0, 2, 600)
    poly = polytomous_dif(x, g)
    mh = mantel_haenszel(x, g, correction=False)
    for p, m in zip(poly, mh):
        assert p.mantel_chi2 == pytest.approx(m.chi_square, rel=1e-9)
        assert p.gmh_chi2 == pytest.approx(m.chi_square, rel=1e-9)


def test_ordinal_logistic_dif_equals_binary_logistic_dif_on_01_items():
    rng = np.random.default_rng(4)
    n = 1500
    theta = rng.normal(size=n)
    g = rng.integers(0, 2, n)
    b = rng.normal(0, 1, 5)
    x = (
        rng.random((n, 5))
        < 1 / (1 + np.exp(-(theta[:, None] - b - 0.8 * g[:, None] * (np.arange(5) == 0))))
    ).astype(float)
    ordinal = ordinal_logistic_dif(x, g)
    binary = logistic_dif(x, g)
    for o, b_ in zip(ordinal, binary):
        assert o.uniform_chi2 == pytest.approx(b_.uniform_chi2, abs=1e-5)
        assert o.nonuniform_chi2 == pytest.approx(b_.nonuniform_chi2, abs=1e-5)
        assert o.delta_r2_total == pytest.approx(b_.delta_r2_total, abs=1e-7)
    assert ordinal[0].uniform_p < 1e-6


def test_ordinal_logistic_dif_on_polytomous_items():
    x, g = _polytomous_data(n=2000, seed=5)
    res = ordinal_logistic_dif(x, g)
    assert res[0].uniform_p < 1e-10 and res[0].nonuniform_p > 0.001
    assert np.mean([r.total_p < 0.01 for r in res[1:]]) <= 0.3


def test_anchor_restricts_the_matching_score():
    x, g = _polytomous_data(n=1500, seed=7)
    anchored = polytomous_dif(x, g, anchor=[1, 2, 3, 4, 5, 6, 7])
    by_name = polytomous_dif(x, g, item_ids=list("abcdefgh"), anchor=list("bcdefgh"))
    assert anchored[0].mantel_chi2 == pytest.approx(by_name[0].mantel_chi2)
    with pytest.raises(ValueError, match="either matching or anchor"):
        polytomous_dif(x, g, anchor=[1], matching=x.sum(axis=1))
    with pytest.raises(ValueError, match="outside"):
        polytomous_dif(x, g, anchor=[99])
    with pytest.raises(ValueError, match="no item named"):
        polytomous_dif(x, g, item_ids=list("abcdefgh"), anchor=["z"])


def _rasch_dif_data(j: int, n_dif: int, shift: float, seed: int, n: int = 3000):
    """Rasch responses of ``n`` persons in two halves (``g`` 0/1) to ``j`` items; the first
    ``n_dif`` items are ``shift`` logits harder for the focal group (g == 1)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    g = (rng.random(n) < 0.5).astype(int)
    b = np.tile(rng.normal(0, 1, j), (n, 1))
    b[g == 1, :n_dif] += shift
    x = (rng.random((n, j)) < 1 / (1 + np.exp(-(theta[:, None] - b)))).astype(float)
    return x, g


def test_purification_drops_dif_items_from_the_anchor():
    j = 20
    # four items against the focal group contaminate the total score
    x, g = _rasch_dif_data(j, n_dif=4, shift=1.2, seed=8)
    res = purify_dif(x, g, method="mantel-haenszel")
    assert set(res.flagged) >= {"item1", "item2", "item3", "item4"}
    assert not set(res.anchor) & {"item1", "item2", "item3", "item4"}
    assert res.converged and res.iterations >= 2
    unpurified = mantel_haenszel(x, g)
    clean = [k for k in range(4, j)]
    # contamination pushes the clean items' D-DIF positive; purification removes most of it
    before = np.mean([unpurified[k].d_dif for k in clean])
    after = np.mean([res.results[k].d_dif for k in clean])
    assert abs(after) < abs(before)
    assert res.to_dict()["method"] == "mantel-haenszel"
    lr = purify_dif(x, g, method="logistic")
    assert set(lr.flagged) >= {"item1", "item2", "item3", "item4"}
    with pytest.raises(ValueError, match="method must be one of"):
        purify_dif(x, g, method="sibtest")
    with pytest.raises(ValueError, match="chooses the anchor"):
        purify_dif(x, g, anchor=[1])


def test_select_anchor_picks_items_without_dif():
    x, g = _rasch_dif_data(15, n_dif=3, shift=1.0, seed=12)
    anchor = select_anchor(x, g)
    assert len(anchor) == 3 and not set(anchor) & {"item1", "item2", "item3"}
    assert len(select_anchor(x, g, method="logistic", n_anchor=5)) == 5
    res = mantel_haenszel(x, g, anchor=anchor)
    assert all(r.d_dif < -1.5 for r in res[:3])  # about -2.35 x 1.0 logit
    with pytest.raises(ValueError, match="n_anchor must be"):
        select_anchor(x, g, n_anchor=15)
