"""Classical item analysis on hand-checkable data (LSAT-6 published values are in test_lsat6)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from psychometrics.ctt import FlagRules, cronbach_alpha, distractor_analysis, item_analysis


def small_matrix():
    # 10 persons x 4 items; item 4 is miskeyed (the able fail it)
    return np.array(
        [
            [1, 1, 1, 0],
            [1, 1, 1, 0],
            [1, 1, 0, 0],
            [1, 1, 1, 0],
            [1, 0, 1, 1],
            [1, 1, 0, 1],
            [0, 1, 0, 1],
            [1, 0, 0, 1],
            [0, 0, 0, 1],
            [0, 0, 0, 1],
        ],
        dtype=float,
    )


def test_alpha_and_feldt_interval_by_hand():
    x = small_matrix()
    k = 4
    total = x.sum(axis=1)
    alpha = k / (k - 1) * (1 - x.var(axis=0, ddof=1).sum() / total.var(ddof=1))
    rel = cronbach_alpha(x, confidence=0.9)
    assert rel.alpha == pytest.approx(alpha)
    f_hi = stats.f.ppf(0.95, 9, 27)
    assert rel.ci_low == pytest.approx(1 - (1 - alpha) * f_hi)
    assert rel.sem == pytest.approx(total.std(ddof=1) * np.sqrt(1 - alpha))


def test_item_statistics_and_flags():
    res = item_analysis(small_matrix(), item_ids=["q1", "q2", "q3", "q4"])
    q1, _, q3, q4 = res.items
    assert q1.p == pytest.approx(0.7)
    x = small_matrix()
    total = x.sum(axis=1)
    assert q1.point_biserial == pytest.approx(np.corrcoef(x[:, 0], total)[0, 1])
    assert q1.corrected_r == pytest.approx(np.corrcoef(x[:, 0], total - x[:, 0])[0, 1])
    p = 0.7
    expected_bis = q1.point_biserial * np.sqrt(p * (1 - p)) / stats.norm.pdf(stats.norm.ppf(p))
    assert q1.biserial == pytest.approx(expected_bis)
    # 27% of 10 -> groups of 2: top two totals (3, 3) and bottom two (1, 1)
    assert q3.upper_lower_d is not None
    assert "negative_discrimination" in q4.flags
    assert "alpha_increases_if_deleted" in q4.flags
    assert "few_responses" in q1.flags  # 10 < 30 responses
    assert res.flagged()["q4"]


def test_flag_thresholds_are_configurable():
    x = small_matrix()
    strict = item_analysis(x, rules=FlagRules(p_min=0.45, min_responses=1))
    assert "too_hard" in strict.items[2].flags  # q3 p = .4
    lenient = item_analysis(x, rules=FlagRules(p_min=0.1, min_responses=1))
    assert "too_hard" not in lenient.items[2].flags
    with pytest.raises(ValueError, match="p_min < p_max"):
        FlagRules(p_min=0.9, p_max=0.5)


def test_distractor_attracting_high_scorers_is_flagged():
    rng = np.random.default_rng(0)
    n = 400
    ability = rng.normal(size=n)
    choices = np.empty((n, 3), dtype=object)
    for j in range(3):
        correct = rng.random(n) < 1 / (1 + np.exp(-1.5 * ability))
        wrong = rng.choice(["B", "C", "D"], n)
        choices[:, j] = np.where(correct, "A", wrong)
    # item 3: option D lures the able (a second defensible answer)
    lure = (ability > 0.8) & (rng.random(n) < 0.7)
    choices[lure, 2] = "D"
    choices[:5, 1] = None  # not presented
    options = distractor_analysis(choices, ["A", "A", "A"])
    d_item3 = next(o for o in options[2] if o.option == "D")
    assert d_item3.flagged and d_item3.point_biserial > 0
    assert d_item3.by_quintile[4] > d_item3.by_quintile[0]
    assert not any(o.flagged for o in options[0])
    key_opt = next(o for o in options[0] if o.is_key)
    assert key_opt.by_quintile[4] > key_opt.by_quintile[0] + 0.2
    assert sum(o.proportion for o in options[1]) == pytest.approx(1.0)
    scores = (choices == "A").astype(float)
    res = item_analysis(scores, choices=choices, key=["A", "A", "A"])
    assert "distractor_attracts_high_scorers" in res.items[2].flags
    doc = res.to_dict()
    assert doc["items"][2]["options"][0]["option"] == "A"


def test_missing_by_design_uses_presented_items_only():
    x = small_matrix()
    x[0, 3] = np.nan
    res = item_analysis(x)
    assert res.items[3].n == 9
    assert res.reliability.n_persons == 9
    disjoint = np.array([[1, np.nan], [np.nan, 0], [0, np.nan]])
    assert cronbach_alpha(disjoint).alpha is None
