"""Standard setting: Angoff, Bookmark, Hofstee, Beuk, contrasting groups, borderline methods.

Each method is checked against a worked example whose numbers can be followed by hand; the source
of every number is given next to it.
"""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import (
    ItemParameters,
    PsychometricsError,
    angoff_cut,
    beuk_cut,
    bookmark_cut,
    borderline_group_cut,
    borderline_regression_cut,
    contrasting_groups_cut,
    hofstee_cut,
    intraclass_correlation,
    ordered_item_booklet,
    rp_location,
)

# Shrout & Fleiss (1979, Psychological Bulletin 86, 420-428), Table 2: 6 targets rated by 4
# judges, with the published ICCs in Table 4 (two decimals).
SHROUT_FLEISS = [
    [9, 2, 5, 8],
    [6, 1, 3, 2],
    [8, 4, 6, 8],
    [7, 1, 2, 6],
    [10, 5, 6, 9],
    [6, 2, 4, 7],
]


def test_icc_reproduces_shrout_fleiss_table_4():
    icc = intraclass_correlation(SHROUT_FLEISS)
    got = [icc.icc1, icc.icc2, icc.icc3, icc.icc1k, icc.icc2k, icc.icc3k]
    np.testing.assert_allclose(got, [0.17, 0.29, 0.71, 0.44, 0.62, 0.91], atol=0.005)
    assert icc.to_dict()["n_judges"] == 4


# A hand-worked Angoff table (constructed here, in the layout Cizek & Bunch, 2007, ch. 6, use:
# panelists' probability ratings, item means, panelist sums, panel mean): 5 panelists x 6 items.
ANGOFF_ROUND1 = np.array(
    [
        [0.60, 0.70, 0.50, 0.80, 0.40, 0.90],
        [0.70, 0.60, 0.50, 0.90, 0.30, 0.80],
        [0.50, 0.80, 0.40, 0.70, 0.50, 0.90],
        [0.80, 0.70, 0.60, 0.80, 0.20, 1.00],
        [0.60, 0.60, 0.50, 0.90, 0.40, 0.90],
    ]
)


def test_angoff_cut_is_sum_of_item_means_with_panel_se():
    res = angoff_cut(ANGOFF_ROUND1)
    # panelist sums 3.9, 3.8, 3.8, 4.1, 3.9 (by hand); mean 3.90
    np.testing.assert_allclose(res.rounds[0].panelist_cuts, [3.9, 3.8, 3.8, 4.1, 3.9])
    assert res.cut == pytest.approx(3.90)
    # the same as the sum of the item means .64 + .68 + .50 + .82 + .36 + .90 = 3.90
    assert res.rounds[0].item_means.sum() == pytest.approx(3.90)
    # SD of panelist cuts (n - 1): sqrt(0.06 / 4) = 0.12247; SE = SD / sqrt(5) = 0.05477
    assert res.sd == pytest.approx(np.sqrt(0.06 / 4))
    assert res.se == pytest.approx(np.sqrt(0.06 / 4) / np.sqrt(5))
    assert res.cut_percent == pytest.approx(65.0)
    # items 1 (.6 .7 .5 .8 .6) and 5 (.4 .3 .5 .2 .4) have SD sqrt(.052 / 4) = 0.1140 < 0.15:
    # nothing flagged; a tighter rule flags both
    assert res.rounds[0].flagged_items == []
    assert res.rounds[0].item_sd[4] == pytest.approx(np.sqrt(0.052 / 4))
    flagged = angoff_cut(ANGOFF_ROUND1, flag_sd=0.10).rounds[0].flagged_items
    assert flagged == ["item1", "item5"]
    doc = res.to_dict()
    assert doc["method"] == "angoff" and doc["rounds"][0]["icc"]["n_judges"] == 5


def test_angoff_rounds_report_each_round_and_final_cut():
    round2 = ANGOFF_ROUND1.copy()
    round2[3, 5] = 0.80  # panelist 4 lowers item 6 after discussion and impact data
    res = angoff_cut(np.stack([ANGOFF_ROUND1, round2]), panelist_ids=list("ABCDE"))
    assert [r.round for r in res.rounds] == [1, 2]
    assert res.cut == pytest.approx(3.86)  # panelist sums 3.9 3.8 3.8 3.9 3.9
    assert res.rounds[0].cut == pytest.approx(3.90)
    assert res.rounds[1].sd < res.rounds[0].sd


def test_angoff_rounds_carry_impact_data():
    # round cuts 3.90 and 3.86 both need a raw score of 4: impact = share of scores >= 4
    scores = [1, 2, 3, 4, 4, 5, 6, 3, 2, 6]
    res = angoff_cut(ANGOFF_ROUND1, scores=scores)
    assert res.rounds[0].pass_rate == pytest.approx(0.5)
    assert res.to_dict()["rounds"][0]["pass_rate"] == pytest.approx(0.5)
    assert angoff_cut(ANGOFF_ROUND1).rounds[0].pass_rate is None


def test_yes_no_angoff_and_polytomous_item_max():
    yn = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]])
    res = angoff_cut(yn, yes_no=True)
    assert res.method == "yes_no_angoff"
    assert res.cut == pytest.approx((3 + 2 + 4) / 3)
    with pytest.raises(PsychometricsError, match="0 or 1"):
        angoff_cut([[1, 0.5]], yes_no=True)
    poly = angoff_cut([[0.5, 2.5], [0.7, 3.0]], item_max=[1, 4])
    assert poly.cut == pytest.approx(3.35) and poly.max_score == 5


@pytest.mark.parametrize(
    "bad, kwargs, match",
    [
        ([[0.5, 1.2]], {}, "round 1, panelist panelist1, item item2 is 1.2"),
        ([[0.5, np.nan]], {}, "ratings must be finite"),
        ([0.5, 0.6], {}, "ratings must have 2 or 3"),
        ([[0.5, 0.6]], {"item_max": [1]}, "item_max must have one value per item"),
        ([[0.5, 0.6]], {"panelist_ids": ["a", "b"]}, "panelist_ids has 2 entries"),
    ],
)
def test_angoff_rejects_bad_ratings(bad, kwargs, match):
    with pytest.raises(PsychometricsError, match=match):
        angoff_cut(bad, **kwargs)


def test_rp67_location_rasch_and_3pl():
    # RP67 lies ln(.67/.33) = 0.708 logits above a Rasch item's difficulty (Huynh, 2006; the
    # "0.71 logits" of Mitzel et al., 2001, Bookmark with the Rasch model).
    p = ItemParameters("2pl", a=[1.0, 2.0], b=[0.0, -1.0])
    loc = rp_location(p)[:, 0]
    assert loc[0] == pytest.approx(np.log(0.67 / 0.33)) and loc[0] == pytest.approx(0.708, abs=5e-4)
    assert loc[1] == pytest.approx(-1.0 + 0.708 / 2, abs=5e-4)
    # 3PL: b + ln((RP - c) / (1 - RP)) / a; with c = .2, a = 1: ln(.47 / .33) = 0.3536
    p3 = ItemParameters("3pl", a=[1.0], b=[0.0], c=[0.2])
    assert rp_location(p3)[0, 0] == pytest.approx(np.log(0.47 / 0.33))
    # the probability at the location is RP
    assert p3.prob(rp_location(p3)[0])[0, 1, 0] == pytest.approx(0.67)
    with pytest.raises(PsychometricsError, match="lower asymptote"):
        rp_location(ItemParameters("3pl", a=[1.0], b=[0.0], c=[0.7]))
    with pytest.raises(PsychometricsError, match="rp must lie"):
        rp_location(p, rp=1.0)


def test_rp_location_polytomous_score_points():
    # GRM: P(X >= k) is the boundary curve, so the RP location is b_k + ln(RP/(1-RP)) / a
    grm = ItemParameters("grm", a=[1.5], b=[[-1.0, 0.5]])
    loc = rp_location(grm)[0]
    np.testing.assert_allclose(
        loc, [-1.0 + np.log(0.67 / 0.33) / 1.5, 0.5 + np.log(0.67 / 0.33) / 1.5], atol=1e-9
    )
    gpcm = ItemParameters("gpcm", a=[1.0], b=[[0.0, 1.0]])
    loc = rp_location(gpcm)[0]
    p = gpcm.prob(loc)[0]  # (K, 2)
    np.testing.assert_allclose([p[1:, 0].sum(), p[2:, 1].sum()], [0.67, 0.67], atol=1e-9)


def test_bookmark_cut_median_and_placements():
    # five Rasch items b = -2..2: RP67 pages at b + 0.708
    p = ItemParameters("2pl", a=np.ones(5), b=[1.0, -2.0, 0.0, 2.0, -1.0])
    book = ordered_item_booklet(p)
    np.testing.assert_allclose(book.location, np.array([-2, -1, 0, 1, 2]) + np.log(0.67 / 0.33))
    assert book.item.tolist() == [1, 4, 2, 0, 3]
    res = bookmark_cut(p, [3, 4, 4])
    assert res.cut == pytest.approx(1 + np.log(0.67 / 0.33))  # median page 4
    assert res.panelist_cuts.tolist() == pytest.approx([0.708, 1.708, 1.708], abs=5e-4)
    sd = np.std([0, 1, 1], ddof=1)
    assert res.se == pytest.approx(np.sqrt(np.pi / 2) * sd / np.sqrt(3))
    mean = bookmark_cut(book, [3, 4, 4], aggregate="mean")
    assert mean.cut == pytest.approx(np.log(0.67 / 0.33) + 2 / 3)
    before = bookmark_cut(book, [3, 6], placement="before", aggregate="mean")
    assert before.panelist_cuts.tolist() == pytest.approx([-1 + 0.708, 2 + 0.708], abs=5e-4)
    mid = bookmark_cut(book, [3], placement="midpoint")
    assert mid.cut == pytest.approx(-0.5 + np.log(0.67 / 0.33))
    assert res.to_dict()["booklet"]["pages"][0]["item"] == "item2"
    with pytest.raises(PsychometricsError, match="panelist 1 placed page 6"):
        bookmark_cut(book, [3, 6])
    with pytest.raises(PsychometricsError, match="placement must be"):
        bookmark_cut(book, [3], placement="after")


def test_bookmark_rp50_is_difficulty():
    p = ItemParameters("2pl", a=[0.8, 1.7], b=[0.3, -0.4])
    np.testing.assert_allclose(ordered_item_booklet(p, rp=0.5).location, [-0.4, 0.3])


# Hofstee example: 20 candidates' scores on a 10-point test.
SCORES = np.array([2, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 10])


def test_hofstee_intersection_by_hand():
    # Fail rates P(X < c): c=5 -> 4/20 = .20, c=6 -> 7/20 = .35, c=7 -> 11/20 = .55
    # Panel: c_min 5, c_max 8, f_min .10, f_max .40: line f(c) = .40 - .10 (c - 5)
    # f(5) = .40 > .20; f(6) = .30 < .35: the crossing is between 5 and 6 on the linear curve
    # .20 + .15 (c - 5) = .40 - .10 (c - 5) -> c = 5 + .20 / .25 = 5.8
    res = hofstee_cut(SCORES, c_min=[4, 6], c_max=[8, 8], f_min=[0.1, 0.1], f_max=[0.3, 0.5])
    assert res.line == {"c_min": 5.0, "c_max": 8.0, "f_min": 0.1, "f_max": 0.4}
    assert res.cut == pytest.approx(5.8)
    assert res.raw_cut == 6 and res.fail_rate == pytest.approx(0.35) and res.intersects
    # a curve that lies above the whole line: the cut stops at c_min
    low = hofstee_cut(SCORES, c_min=7, c_max=9, f_min=0.0, f_max=0.2)
    assert low.cut == 7 and not low.intersects
    with pytest.raises(PsychometricsError, match="c_min .* must be below c_max"):
        hofstee_cut(SCORES, 8, 5, 0.1, 0.4)
    with pytest.raises(PsychometricsError, match="proportions"):
        hofstee_cut(SCORES, 5, 8, 10, 40)


def test_beuk_intersection_by_hand():
    # Panel cuts 5, 6, 7 (mean 6, SD 1); pass rates .70, .60, .80 (mean .70, SD .10): slope .10
    # Pass rate P(X >= c): c=6 -> 13/20 = .65, c=7 -> 9/20 = .45. Line at 6: .70 > .65, so the
    # crossing is below 6: c=5 -> 16/20 = .80, line .60. Between 5 and 6 the pass curve is
    # .80 - .15 (c - 5) and the line .60 + .10 (c - 5): c = 5 + .20 / .25 = 5.8
    res = beuk_cut(SCORES, [5, 6, 7], [0.7, 0.6, 0.8])
    assert res.line["slope"] == pytest.approx(0.1)
    assert res.cut == pytest.approx(5.8) and res.raw_cut == 6 and res.intersects
    with pytest.raises(PsychometricsError, match="one value per panelist"):
        beuk_cut(SCORES, [5, 6], [0.7])
    with pytest.raises(PsychometricsError, match="no spread"):
        beuk_cut(SCORES, [6, 6], [0.7, 0.6])


def test_contrasting_groups_misclassification_and_smoothed():
    unq = np.array([3, 4, 4, 5, 5, 6, 6, 7])
    qua = unq + 2.5
    scores = np.concatenate([unq, qua])
    groups = np.concatenate([np.zeros(8), np.ones(8)])
    # misclassified at cut c = #unqualified >= c + #qualified < c:
    # c=5: 5 + 0; c=6: 3 + 1 = 4; c=7: 1 + 3 = 4; c=8: 0 + 5. The minimum 4 runs over 6..7:
    # the midpoint 6.5
    res = contrasting_groups_cut(scores, groups)
    assert res.cut == 6.5 and res.details["misclassified"] == 4
    # normal densities of equal n and SD cross midway between the means 5.0 and 7.5 -> 6.25
    inter = contrasting_groups_cut(scores, groups, method="intersection")
    assert inter.cut == pytest.approx(6.25, abs=1e-6)
    logit = contrasting_groups_cut(scores, groups, method="logistic")
    assert 5.5 < logit.cut < 7.0
    kde = contrasting_groups_cut(scores, groups, method="misclassification", smoothing="kde")
    assert 5.5 < kde.cut < 7.5
    with pytest.raises(PsychometricsError, match="qualified must be 0"):
        contrasting_groups_cut(scores, groups * 2)
    with pytest.raises(PsychometricsError, match="method must be"):
        contrasting_groups_cut(scores, groups, method="median")


def test_borderline_group_and_regression():
    # global ratings 0 fail, 1 borderline, 2 pass, 3 good; checklist scores
    ratings = np.array([0, 0, 1, 1, 1, 2, 2, 2, 3, 3])
    scores = np.array([10, 12, 14, 15, 17, 18, 20, 21, 24, 25])
    bg = borderline_group_cut(scores, ratings, borderline=1)
    assert bg.cut == 15
    br = borderline_regression_cut(scores, ratings, borderline=1)
    # least squares by hand: mean rating 1.5, mean score 17.6; Sxy = 47.0, Sxx = 10.5
    slope = 47.0 / 10.5
    assert br.details["slope"] == pytest.approx(slope)
    assert br.cut == pytest.approx(17.6 + slope * (1 - 1.5))
    with pytest.raises(PsychometricsError, match="no candidate has the borderline rating"):
        borderline_group_cut(scores, ratings, borderline=9)
    with pytest.raises(PsychometricsError, match="no spread"):
        borderline_regression_cut(scores, np.ones(10))


def test_mixed_format_booklet_has_a_page_per_score_point():
    # a 3PL item, a 2PL item and a three-category GPCM item: 1 + 1 + 2 pages
    mixed = ItemParameters(
        "mixed",
        a=[1.2, 0.8, 1.0],
        b=[[0.0, np.nan], [-1.0, np.nan], [-0.5, 0.7]],
        c=[0.2, 0.0, 0.0],
        item_models=("3pl", "2pl", "gpcm"),
    )
    book = ordered_item_booklet(mixed, item_ids=["mc", "tf", "essay"])
    assert book.n_pages == 4
    assert sorted(zip(book.item.tolist(), book.score_point.tolist(), strict=True)) == [
        (0, 1),
        (1, 1),
        (2, 1),
        (2, 2),
    ]
    assert np.all(np.diff(book.location) >= 0)
    # the 3PL page: b + ln((.67 - .2) / .33) / a
    page = int(np.flatnonzero(book.item == 0)[0])
    assert book.location[page] == pytest.approx(np.log(0.47 / 0.33) / 1.2)
    res = bookmark_cut(book, [2, 3, 4])
    assert res.cut == pytest.approx(book.location[2])
