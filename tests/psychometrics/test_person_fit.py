"""Person fit (lz / Zh, infit, outfit), item infit/outfit and Zh, and Wright map data.

Published values: mirt's tests (test-01-mirtOne.R, ``itemfit(modm1, c("S_X2", "X2", "Zh"))``
on the 2PL of LSAT7 at EAP abilities): item Zh 1.431838, 6.354917, 5.310844, 5.804449,
0.696139, checked there to +-0.01. Item Zh is the person-level lz's terms summed over persons
instead of items, so it checks lz's ingredients (the log-likelihood of the responses, its
expectation and its variance) on published data. The infit/outfit mean squares and their
Wilson-Hilferty standardisation are checked by hand below (Wright & Masters, 1982, ch. 5) and
against Winsteps 3.73 on the Knox Cube Test (Wright & Stone, 1979, p. 31; the Winsteps person
and item tables quoted by the rpf package's ``kct`` data and its test-raschfit.R): six persons'
responses to the 14 non-extreme items, the item measures and the person measures as printed
(two decimals, which limits the agreement to about 0.5 %).
"""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import (
    ItemParameters,
    PersonFitRules,
    calibrate,
    item_infit_outfit,
    person_fit,
    theta_eap,
    wright_map,
)

MIRT_LSAT7_ZH = [1.431838, 6.354917, 5.310844, 5.804449, 0.696139]


@pytest.fixture(scope="module")
def lsat7_2pl(lsat7):
    return calibrate(lsat7, "2pl", tol=1e-6)


def test_item_zh_matches_mirt_on_lsat7(lsat7, lsat7_2pl):
    res = item_infit_outfit(lsat7, lsat7_2pl.params)
    np.testing.assert_allclose([r.zh for r in res], MIRT_LSAT7_ZH, atol=0.01)
    assert all(r.n == 1000 for r in res)


KCT_ITEM_MEASURES = [
    -4.4,
    -3.83,
    -3.38,
    -3.83,
    -2.35,
    -3.38,
    -1.57,
    0.79,
    2.24,
    1.95,
    3.37,
    4.8,
    4.8,
    4.8,
]
# person: measure, responses to items 4-17, Winsteps IN.MSQ, IN.ZSTD, OUT.MSQ, OUT.ZSTD
KCT_PERSONS = {
    "Richard": (
        -2.94,
        [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        (0.6093, -1.1894, 0.2926, -0.2397),
    ),
    "Tracie": (
        -0.26,
        [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        (0.1798, -1.3298, 0.0814, -0.7299),
    ),
    "Walter": (-0.26, [1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0], (1.9396, 1.1819, 1.1879, 0.6012)),
    "Mike": (-0.26, [1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], (4.122, 2.4941, 5.2793, 2.0453)),
    "Rod": (-1.37, [1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], (1.163, 0.4512, 0.9659, 0.451)),
    "Anne": (-0.26, [1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0], (4.0796, 2.4741, 6.066, 2.2261)),
}


def test_person_infit_outfit_match_winsteps_on_the_knox_cube_test():
    params = ItemParameters("rasch", np.ones(14), KCT_ITEM_MEASURES)
    theta = [v[0] for v in KCT_PERSONS.values()]
    x = np.array([v[1] for v in KCT_PERSONS.values()], float)
    res = person_fit(x, params, theta=theta)
    published = np.array([v[2] for v in KCT_PERSONS.values()])
    np.testing.assert_allclose(res.infit, published[:, 0], rtol=0.01)
    np.testing.assert_allclose(res.z_infit, published[:, 1], atol=0.03)
    np.testing.assert_allclose(res.outfit, published[:, 2], rtol=0.005)
    np.testing.assert_allclose(res.z_outfit, published[:, 3], atol=0.03)


def test_person_statistics_by_hand():
    params = ItemParameters("2pl", [1.0, 1.5, 0.8], [-1.0, 0.0, 1.0])
    x = np.array([[0.0, 1.0, 1.0]])
    theta = 0.3
    p = 1 / (1 + np.exp(-params.a * (theta - params.b)))
    w = p * (1 - p)
    r2 = (x[0] - p) ** 2
    c = p * (1 - p) * ((1 - p) ** 3 + p**3)  # fourth central moment of a Bernoulli
    logp = np.log(np.where(x[0] == 1, p, 1 - p))
    mu = p * np.log(p) + (1 - p) * np.log(1 - p)
    var = p * (1 - p) * np.log(p / (1 - p)) ** 2
    outfit = np.mean(r2 / w)
    infit = r2.sum() / w.sum()
    q_out = np.sqrt(np.sum(c / w**2) / 9 - 1 / 3)
    q_in = np.sqrt(np.sum(c - w**2)) / w.sum()
    res = person_fit(x, params, theta=[theta])
    assert res.lz[0] == pytest.approx((logp.sum() - mu.sum()) / np.sqrt(var.sum()))
    assert res.outfit[0] == pytest.approx(outfit)
    assert res.infit[0] == pytest.approx(infit)
    assert res.z_outfit[0] == pytest.approx((outfit ** (1 / 3) - 1) * 3 / q_out + q_out / 3)
    assert res.z_infit[0] == pytest.approx((infit ** (1 / 3) - 1) * 3 / q_in + q_in / 3)


def test_aberrant_patterns_are_flagged(sim):
    x, true = sim.dichotomous(2000, 30, seed=21)
    params = ItemParameters("2pl", true["a"], true["b"])
    order = np.argsort(params.b)
    x[0] = 0.0
    x[0, order[-10:]] = 1.0  # right on the ten hardest, wrong on everything else
    x[1] = np.nan  # answered nothing
    res = person_fit(x, params)
    assert "lz" in res.flags[0] and "outfit" in res.flags[0]
    assert res.lz[0] < -4
    assert np.isnan(res.lz[1]) and res.flags[1] == [] and res.n_items[1] == 0
    ok = np.isfinite(res.lz[2:])
    # under the model lz is roughly standard normal (at estimated abilities its mean drifts
    # above 0 and its variance shrinks: Snijders, 2001) and few persons are flagged
    assert abs(np.mean(res.lz[2:][ok])) < 0.4
    assert len(res.flagged) < 0.1 * x.shape[0]
    listing = res.flag_list()
    assert listing[0]["person"] == 0 and listing[0]["flags"][0] == "lz"
    assert res.to_dict()["persons"][1]["lz"] is None


def test_zh_for_polytomous_items(sim):
    x, true = sim.polytomous(1500, 10, 4, model="gpcm", seed=5)
    params = ItemParameters("gpcm", true["a"], true["b"])
    x[0] = np.where(np.arange(10) % 2 == 0, 0, 3)  # extremes alternating
    res = person_fit(x, params)
    assert res.lz[0] < -2.5 and "lz" in res.flags[0]
    assert abs(np.nanmean(res.lz[1:])) < 0.3


def test_item_infit_outfit_near_one_under_the_model(sim):
    x, true = sim.dichotomous(3000, 15, model="rasch", seed=9)
    params = ItemParameters("rasch", np.ones(15), true["b"])
    res = item_infit_outfit(x, params, theta=true["theta"])
    assert all(0.9 < r.infit < 1.1 and 0.85 < r.outfit < 1.15 for r in res)
    assert np.mean([abs(r.z_infit) < 2.5 for r in res]) >= 0.85
    # an item answered at random misfits
    rng = np.random.default_rng(0)
    x[:, 0] = rng.random(3000) < 0.5
    res = item_infit_outfit(x, params, theta=true["theta"])
    assert res[0].infit > 1.2 and res[0].z_infit > 5


def test_wright_map_bins_persons_and_items(lsat7, lsat7_2pl):
    theta = theta_eap(lsat7, lsat7_2pl.params).theta
    wm = wright_map(theta, lsat7_2pl.params, item_ids=list("ABCDE"), bins=10)
    assert wm.person_counts.sum() == 1000 and len(wm.bin_edges) == 11
    locs = [i.location for i in wm.items]
    assert locs == sorted(locs)
    for item in wm.items:
        assert wm.bin_edges[item.bin] <= item.location <= wm.bin_edges[item.bin + 1]
    np.testing.assert_allclose(sorted(locs), np.sort(lsat7_2pl.params.b))
    assert wm.to_dict()["items"][0]["item"] in "ABCDE"
    poly = ItemParameters("gpcm", [1.0, 1.0], [[-1.0, 0.0, 1.0], [0.5, 1.5, np.nan]])
    wm = wright_map([0.0, 1.0, np.nan], poly, limits=(-3, 3), bins=6)
    assert wm.n_persons == 2
    assert [i.location for i in wm.items] == [0.0, 1.0]
    assert wm.items[1].thresholds == [0.5, 1.5]
    with pytest.raises(ValueError, match="limits must satisfy"):
        wright_map([0.0], poly, limits=(1, 0))


def test_bad_inputs_are_refused(lsat7, lsat7_2pl):
    with pytest.raises(ValueError, match="one value per person"):
        person_fit(lsat7, lsat7_2pl.params, theta=[0.0, 1.0])
    with pytest.raises(ValueError, match="mnsq_above"):
        PersonFitRules(mnsq_above=0.9)
    with pytest.raises(ValueError, match="item_ids must name"):
        item_infit_outfit(lsat7, lsat7_2pl.params, item_ids=["a"])


def test_person_fit_command(tmp_path, sim):
    import json

    from click.testing import CliRunner

    from psychometrics.cli import main
    from tests.psychometrics.test_data_and_cli import calibrate_to_file

    x, _ = sim.dichotomous(400, 12, seed=44)
    x[0] = (np.arange(12) % 2).astype(float)  # a Guttman-breaking pattern
    path = tmp_path / "r.csv"
    lines = ["person_id," + ",".join(f"q{j}" for j in range(12))]
    lines += [f"p{i}," + ",".join(str(int(v)) for v in row) for i, row in enumerate(x)]
    path.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    fit_path = calibrate_to_file(runner, path)
    result = runner.invoke(main, ["person-fit", str(path), "--params", str(fit_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["n_persons"] == 400 and len(doc["items"]) == 12
    assert doc["items"][0]["item"] == "q0"
    assert all(p["flags"] for p in doc["persons"])
    assert set(doc["flagged"]) == {p["person"] for p in doc["persons"]}
    result = runner.invoke(
        main, ["person-fit", str(path), "--params", str(fit_path), "--all-persons"]
    )
    assert len(json.loads(result.stdout)["persons"]) == 400
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,0\n")
    result = runner.invoke(main, ["person-fit", str(other), "--params", str(fit_path)])
    assert result.exit_code != 0 and "are not those of" in result.output
