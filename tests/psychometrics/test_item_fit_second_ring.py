"""S-X2, second ring: mirt's cell-by-cell collapsing and its df for Rasch/1PL items.

Published values: mirt's tests (test-01-mirtOne.R, ``itemfit(modm1, c("S_X2", "X2", "Zh"))``,
2PL on LSAT7): S-X2 4.749440, 14.451071, 1.270381, 5.237400, 0.941125 with df 2 for every item
(checked there to +-0.01).
"""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import ItemParameters, calibrate, s_x2
from psychometrics.fit import collapse_cells

MIRT_LSAT7_SX2 = [4.749440, 14.451071, 1.270381, 5.237400, 0.941125]


def test_s_x2_matches_mirt_on_lsat7(lsat7):
    res = s_x2(lsat7, calibrate(lsat7, "2pl", tol=1e-6))
    np.testing.assert_allclose([r.statistic for r in res], MIRT_LSAT7_SX2, atol=0.01)
    assert [r.df for r in res] == [2] * 5
    assert all(r.n_groups == 4 and r.n_cells == 8 for r in res)
    assert res[1].rmsea == pytest.approx(np.sqrt((res[1].statistic - 2) / (2 * 999)))


def test_rasch_df_subtracts_the_shared_parameter(lsat7):
    fit = calibrate(lsat7, "rasch", tol=1e-6)
    mirt_style = s_x2(lsat7, fit)
    plain = s_x2(lsat7, fit, shared_df=False)
    # 4 score groups x 2 categories = 8 cells; minus 4 groups, 1 difficulty and the latent SD
    assert [r.df for r in mirt_style] == [2] * 5
    assert [r.df for r in plain] == [3] * 5
    assert [r.statistic for r in plain] == [r.statistic for r in mirt_style]


def test_polytomous_items_keep_their_score_groups(sim):
    """150 persons on six 5-category items: merging whole score groups used to leave one group
    (no statistic) for some items; collapsing categories within groups keeps them."""
    x, true = sim.polytomous(150, 6, 5, model="gpcm", seed=1)
    res = s_x2(x, ItemParameters("gpcm", true["a"], true["b"]))
    assert all(r.statistic is not None and r.n_groups > 5 and r.df > 5 for r in res)
    assert all(r.p_value > 0.001 for r in res)  # the model is true


def test_collapse_cells_merges_a_sparse_category_within_its_group():
    o = np.array([[5.0, 3, 0], [4, 4, 2], [2, 5, 6], [1, 4, 9]])
    e = np.array([[4.6, 3.1, 0.3], [4.1, 4.2, 1.7], [2.2, 5.1, 5.7], [1.1, 4.0, 8.9]])
    oc, ec = collapse_cells(o, e, 1.0)
    assert ec.shape == (4, 3)
    # row 0: category 2 (E 0.3) folds into category 1; the freed cell is NaN, counts are kept
    np.testing.assert_allclose(ec[0], [4.6, 3.4, np.nan])
    np.testing.assert_allclose(oc[0], [5, 3, 0])
    np.testing.assert_allclose(np.nansum(ec, axis=1), e.sum(axis=1))
    np.testing.assert_allclose(oc.sum(axis=1), o.sum(axis=1))


def test_collapse_cells_merges_impossible_score_groups_and_single_persons():
    o = np.array([[1.0, 0, 0], [0, 0, 0], [3, 4, 1], [2, 6, 3], [0, 2, 5]])
    e = np.array(
        [[0.8, 0.2, np.nan], [0.1, 0.1, 0.1], [3.1, 3.5, 1.4], [2.2, 5.9, 2.9], [np.nan, 2.4, 4.6]]
    )
    oc, ec = collapse_cells(o, e, 1.0)
    # the impossible first and last groups fold into their neighbours; the group then holding
    # a single person folds into the next: two groups remain, no count lost. mirt marks sparse
    # groups before that merge, so the merged first group also has its categories collapsed.
    assert oc.sum() == o.sum()
    np.testing.assert_allclose(oc, [[4, 5, 0], [2, 8, 8]])
    np.testing.assert_allclose(ec, [[4.0, 5.3, np.nan], [2.2, 8.3, 7.5]])
