"""Mixed-format calibration (one model per item), the partial credit and rating scale models.

Published values (R mirt, ``tests/testthat/test-01-mirtOne.R`` and the ``read.mirt`` reference
page, LSAT7 = ``expand.table(LSAT7)``, 1000 persons, 5 items):

* 2PL: a = 0.988, 1.081, 1.706, 0.765, 0.736; d = 1.856, 0.808, 1.804, 0.486, 1.855;
  log-likelihood -2658.805.
* ``itemtype = 'Rasch'`` (mirt's Rasch is Masters' partial credit model for any number of
  categories, so on 0/1 items it is the PCM and the RSM alike): d = 1.8680155, 0.7908857,
  1.4607798, 0.5214175, 1.9927099 and SE(d_1) = 0.100416 (``tests/testthat/test-15-IRTpars.R``),
  latent variance 1.023, df 25 (31 cells - 6 parameters) (``test-01-mirtOne.R``).

Science (Karlheinz & Melich, 1992; mirt's ``Science``, 392 persons, 4 items scored 1-4 here
0-3) with ``itemtype = c(rep('graded', 3), 'gpcm')``, mirt ``tests/testthat/test-02-mirtTwo.R``
(``modp5``): graded a = 1.057, 1.219, 2.254 with intercepts (4.876, 2.65, -1.472),
(2.918, 0.9, -2.263), (5.177, 2.19, -1.942); GPCM a = 0.771 with mirt's cumulative intercepts
d = 2.16, 2.973, 1.767 (d_k = sum_{v<=k} of our step intercepts).

A GPCM item with two categories is a 2PL item and a PCM or RSM item with two categories is a
Rasch item, so a mixed calibration of these 0/1 items through the polytomous code paths must
land on the published dichotomous estimates. Polytomous recovery is checked by simulation.
"""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import (
    ItemParameters,
    calibrate,
    item_information,
    parameters_from_dict,
    summed_score_table,
    theta_eap,
    theta_mle,
    theta_wle,
)
from psychometrics.errors import PsychometricsError, ResponseDataError
from psychometrics.fit import s_x2

LSAT7_FREQUENCIES = [12, 19, 1, 7, 3, 19, 3, 17, 10, 5, 3, 7, 7, 23, 8, 28,
                     7, 39, 11, 34, 14, 51, 15, 90, 6, 25, 7, 35, 18, 136, 32, 308]  # fmt: skip
MIRT_2PL_A = [0.988, 1.081, 1.706, 0.765, 0.736]
MIRT_2PL_D = [1.856, 0.808, 1.804, 0.486, 1.855]
MIRT_2PL_LOGLIK = -2658.805
MIRT_RASCH_D = [1.8680155, 0.7908857, 1.4607798, 0.5214175, 1.9927099]
MIRT_RASCH_VAR = 1.023
# Science response patterns (items Comfort, Work, Future, Benefit scored 0-3) : frequency
SCIENCE = (
    "0000:2 0210:1 0312:1 0320:1 1000:1 1013:1 1100:1 1111:4 1112:2 1120:1 1121:1 1122:1 1132:1 "
    "1202:1 1211:2 1212:1 1221:3 1222:3 1223:2 1230:1 1232:2 1310:1 1332:2 1333:1 2000:1 2002:2 "
    "2011:2 2012:4 2021:5 2022:5 2023:3 2032:1 2033:1 2101:1 2103:1 2110:1 2111:10 2112:7 2120:1 "
    "2121:16 2122:22 2123:5 2130:1 2131:1 2132:3 2133:2 2202:2 2210:1 2211:13 2212:10 2213:2 "
    "2220:5 2221:23 2222:52 2223:8 2231:7 2232:13 2233:12 2302:1 2312:1 2321:2 2322:4 2323:4 "
    "2330:1 2331:1 2332:6 2333:3 3003:1 3011:1 3013:2 3023:1 3110:1 3112:3 3122:8 3123:2 3131:1 "
    "3133:1 3212:1 3221:2 3222:21 3223:3 3231:2 3232:5 3233:8 3321:1 3322:2 3323:3 3331:2 3332:6 "
    "3333:12"
)


@pytest.fixture(scope="module")
def lsat7() -> np.ndarray:
    patterns = np.array([[int(c) for c in format(i, "05b")] for i in range(32)], dtype=float)
    return np.repeat(patterns, LSAT7_FREQUENCIES, axis=0)


def simulate_mixed(n_persons, models, n_cat=4, *, missing=0.0, seed=0, theta=None):
    """Responses and true (a, b, c) for items of the given models (b: (J, n_cat-1) NaN-padded);
    rating-scale items share steps tau = linspace(-1, 1)."""
    rng = np.random.default_rng(seed)
    j_n = len(models)
    th = rng.normal(size=n_persons) if theta is None else theta
    a = rng.lognormal(0.0, 0.25, j_n)
    c = np.zeros(j_n)
    b = np.full((j_n, n_cat - 1), np.nan)
    taus = np.linspace(-1.0, 1.0, n_cat - 1)
    x = np.empty((th.size, j_n))
    for j, m in enumerate(models):
        if m in ("rasch", "pcm", "rsm"):
            a[j] = 1.0
        if m in ("rasch", "1pl", "2pl", "3pl"):
            b[j, 0] = rng.normal()
            c[j] = rng.uniform(0.1, 0.25) if m == "3pl" else 0.0
            p = c[j] + (1 - c[j]) / (1 + np.exp(-a[j] * (th - b[j, 0])))
            x[:, j] = rng.random(th.size) < p
            continue
        if m == "rsm":
            b[j] = rng.normal(0, 0.7) + taus
        else:
            b[j] = np.sort(rng.normal(0, 1, n_cat - 1)) * 0.8 + rng.normal(0, 0.5)
        z = a[j] * (th[:, None] - b[j][None, :])
        num = np.concatenate([np.zeros((th.size, 1)), np.cumsum(z, axis=1)], axis=1)
        p = np.exp(num - num.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        x[:, j] = (rng.random((th.size, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    if missing:
        x[rng.random(x.shape) < missing] = np.nan
    return x, a, b, c


def science() -> np.ndarray:
    pairs = [tok.split(":") for tok in SCIENCE.split()]
    patterns = np.array([[int(ch) for ch in p] for p, _ in pairs], dtype=float)
    return np.repeat(patterns, [int(f) for _, f in pairs], axis=0)


def test_graded_and_gpcm_items_together_reproduce_mirt_on_science():
    x = science()
    assert x.shape == (392, 4)
    fit = calibrate(x, ["grm", "grm", "grm", "gpcm"], tol=1e-6)
    assert fit.converged and fit.item_models == ("grm", "grm", "grm", "gpcm")
    np.testing.assert_allclose(fit.a, [1.057, 1.219, 2.254, 0.771], atol=3e-3)
    d = -fit.a[:, None] * fit.b
    np.testing.assert_allclose(
        d[:3], [[4.876, 2.65, -1.472], [2.918, 0.9, -2.263], [5.177, 2.19, -1.942]], atol=3e-3
    )
    np.testing.assert_allclose(np.cumsum(d[3]), [2.16, 2.973, 1.767], atol=3e-3)
    assert fit.n_params == 16 and np.isfinite(fit.se_b).all()


def test_gpcm_items_among_2pl_items_reproduce_mirt_2pl(lsat7):
    fit = calibrate(lsat7, ["2pl", "gpcm", "2pl", "gpcm", "2pl"], tol=1e-6)
    assert fit.model == "mixed" and fit.item_models[1] == "gpcm"
    assert fit.converged
    np.testing.assert_allclose(fit.a, MIRT_2PL_A, atol=2e-3)
    np.testing.assert_allclose(-fit.a * fit.b[:, 0], MIRT_2PL_D, atol=2e-3)
    assert fit.loglik == pytest.approx(MIRT_2PL_LOGLIK, abs=2e-3)
    assert fit.n_params == 10
    # the same standard errors whichever code path an item took
    uniform = calibrate(lsat7, "2pl", tol=1e-6)
    np.testing.assert_allclose(fit.se_a, uniform.se_a, rtol=1e-3)
    np.testing.assert_allclose(fit.se_b[:, 0], uniform.se_b, rtol=1e-3)


@pytest.mark.parametrize(
    "model", ["pcm", "rsm", ["rasch", "pcm", "rasch", "rsm", "pcm"], {"item1": "rasch",
              "item2": "rasch", "item3": "pcm", "item4": "pcm", "item5": "rasch"}]
)
def test_partial_credit_and_rating_scale_on_01_items_reproduce_mirt_rasch(lsat7, model):
    fit = calibrate(lsat7, model, tol=1e-6)
    assert fit.converged
    np.testing.assert_allclose(np.asarray(fit.b).reshape(5, -1)[:, 0], -np.array(MIRT_RASCH_D),
                               atol=1e-3)  # fmt: skip
    assert np.ravel(fit.se_b)[0] == pytest.approx(0.100416, abs=1e-4)
    assert fit.latent_sd**2 == pytest.approx(MIRT_RASCH_VAR, abs=2e-3)
    np.testing.assert_allclose(fit.a, 1.0)
    assert 31 - fit.n_params == 25  # mirt's df


def test_mixed_3pl_gpcm_recovers_known_parameters_with_missing_cells():
    models = ["3pl"] * 10 + ["gpcm"] * 4 + ["2pl"] * 2
    x, a, b, _ = simulate_mixed(4000, models, missing=0.3, seed=11)
    fit = calibrate(x, models)
    assert fit.converged
    poly = np.arange(10, 14)
    dich = np.r_[0:10, 14:16]
    assert np.sqrt(np.mean((fit.a[poly] - a[poly]) ** 2)) < 0.12
    assert np.sqrt(np.mean((fit.b[poly] - b[poly]) ** 2)) < 0.15
    assert np.sqrt(np.mean((fit.b[dich, 0] - b[dich, 0]) ** 2)) < 0.3
    assert np.isnan(fit.se_c[10:]).all() and np.isfinite(fit.se_c[:10]).all()
    assert np.isfinite(fit.se_b[poly]).all() and np.isnan(fit.b[dich, 1:]).all()
    assert fit.n_params == 10 * 3 + 4 * 4 + 2 * 2
    doc = fit.to_dict()
    assert doc["model"] == "mixed"
    assert [item["model"] for item in doc["items"]] == models
    assert isinstance(doc["items"][0]["b"], float) and len(doc["items"][10]["b"]) == 3
    _, params = parameters_from_dict(doc)
    assert params.item_models == tuple(models)
    np.testing.assert_allclose(params.b[poly], fit.b[poly])
    np.testing.assert_allclose(params.c, fit.c)


def test_rating_scale_recovers_common_steps_and_is_nested_in_partial_credit():
    models = ["rsm"] * 8
    x, _, b, _ = simulate_mixed(3000, models, seed=5)
    rsm = calibrate(x, "rsm")
    pcm = calibrate(x, "pcm")
    steps = np.array([item["steps"] for item in rsm.to_dict()["items"]])
    np.testing.assert_allclose(steps, np.broadcast_to(steps[0], steps.shape))  # shared
    np.testing.assert_allclose(steps[0], np.linspace(-1, 1, 3), atol=0.1)
    locations = [item["location"] for item in rsm.to_dict()["items"]]
    np.testing.assert_allclose(locations, b.mean(axis=1), atol=0.12)
    assert rsm.latent_sd == pytest.approx(1.0, abs=0.08)
    # Andrich's model is the PCM with (J - 1)(K - 2) constraints
    assert pcm.n_params - rsm.n_params == (8 - 1) * (4 - 2)
    assert rsm.loglik <= pcm.loglik + 1e-6
    np.testing.assert_allclose(pcm.b, b, atol=0.2)


def test_scoring_information_and_fit_accept_mixed_parameters():
    models = ("3pl", "2pl", "gpcm", "grm", "pcm")
    b = np.array([[0.2, np.nan, np.nan], [-0.5, np.nan, np.nan], [-1.0, 0.0, 1.0],
                  [-0.8, 0.3, np.nan], [-0.4, 0.6, np.nan]])  # fmt: skip
    params = ItemParameters(models, [1.2, 0.9, 1.1, 1.4, 1.0], b, [0.2, 0, 0, 0, 0])
    assert params.model == "mixed"
    assert list(params.n_categories) == [2, 2, 4, 3, 3]
    theta = np.linspace(-3, 3, 7)
    # item information is each item's own model's information
    info = item_information(params, theta)
    for j, m in enumerate(models):
        alone = ItemParameters(m, params.a[j : j + 1], b[j : j + 1, : params.n_categories[j] - 1]
                               if m not in ("2pl", "3pl") else b[j : j + 1, 0],
                               params.c[j : j + 1])  # fmt: skip
        np.testing.assert_allclose(info[j], item_information(alone, theta)[0], rtol=1e-6)
    # EAP against the posterior mean by brute-force quadrature
    x = np.array([[1, 0, 2, 1, np.nan], [0, 0, 0, 0, 0], [1, 1, 3, 2, 2]])
    eap = theta_eap(x, params)
    grid = np.linspace(-6, 6, 2001)
    lp = params.log_prob(grid)
    for i, row in enumerate(x):
        ll = sum(lp[j, int(v)] for j, v in enumerate(row) if not np.isnan(v))
        w = np.exp(ll - ll.max()) * np.exp(-0.5 * grid**2)
        assert eap.theta[i] == pytest.approx((grid * w).sum() / w.sum(), abs=2e-3)
    mle = theta_mle(x, params)
    assert mle.theta[1] == -4.0 and mle.theta[2] == 4.0 and -4 < mle.theta[0] < 4
    assert np.isfinite(theta_wle(x, params).theta).all()
    table = summed_score_table(params)
    assert table.scores[-1] == 1 + 1 + 3 + 2 + 2
    assert table.probability.sum() == pytest.approx(1.0)


def test_s_x2_counts_parameters_per_item_model():
    # df = cells - score groups - the item's own parameters (mirt's convention), minus one for
    # the parameter Rasch-family items share
    models = ["2pl"] * 5 + ["gpcm"] * 2 + ["3pl"]
    x, *_ = simulate_mixed(1500, models, n_cat=3, seed=9)
    res = s_x2(x, calibrate(x, models))
    assert [r.df for r in res] == [r.n_cells - r.n_groups - k for r, k in
                                   zip(res, [2] * 5 + [3] * 2 + [3])]  # fmt: skip
    models = ["rasch"] * 5 + ["pcm"] * 2 + ["rsm"]
    x, *_ = simulate_mixed(1500, models, n_cat=3, seed=9)
    res = s_x2(x, calibrate(x, models))
    assert [r.df for r in res] == [r.n_cells - r.n_groups - k - 1 for r, k in
                                   zip(res, [1] * 5 + [2] * 2 + [1])]  # fmt: skip


def test_bad_model_specifications_are_refused(lsat7):
    with pytest.raises(PsychometricsError, match="3 models for 5 items"):
        calibrate(lsat7, ["2pl", "2pl", "3pl"])
    with pytest.raises(PsychometricsError, match="model for item 2"):
        calibrate(lsat7, ["2pl", "2pl", "4pl", "2pl", "2pl"])
    with pytest.raises(PsychometricsError, match="no model given for item.*item5"):
        calibrate(lsat7, {"item1": "2pl", "item2": "2pl", "item3": "2pl", "item4": "2pl"})
    with pytest.raises(PsychometricsError, match="unknown item id 'q9'"):
        calibrate(lsat7, {"q9": "2pl"})
    with pytest.raises(PsychometricsError, match="backend 'girth'"):
        calibrate(lsat7, ["2pl", "gpcm", "2pl", "2pl", "2pl"], backend="girth")
    x = lsat7.copy()
    x[3, 1] = 2
    with pytest.raises(ResponseDataError, match="row 3, column 1: .*not 0 or 1"):
        calibrate(x, ["2pl", "2pl", "gpcm", "2pl", "2pl"])
    calibrate(x[:200], ["2pl", "gpcm", "2pl", "2pl", "2pl"], standard_errors=False)
    with pytest.raises(PsychometricsError, match="rating-scale item"):
        calibrate(x, ["2pl", "rsm", "rsm", "2pl", "2pl"], fixed={"item2": {"b": [0.0, 1.0]}})
    with pytest.raises(PsychometricsError, match="item_models"):
        ItemParameters("mixed", [1.0], [0.0])


def test_mixed_louis_terms_equal_the_general_node_score_terms():
    """The indicator-basis shortcut for mixed tests against the explicit node scores."""
    from psychometrics.data import collapse_patterns
    from psychometrics.irt import standard_errors as se
    from psychometrics.irt.estimation import dlogp, e_step
    from psychometrics.irt.models import log_prob
    from psychometrics.irt.quadrature import normal_quadrature

    models = ("3pl", "gpcm", "2pl", "grm", "rsm", "rsm")
    x, *_ = simulate_mixed(300, ["3pl", "gpcm", "2pl", "gpcm", "rsm", "rsm"], n_cat=3,
                           missing=0.2, seed=2)  # fmt: skip
    fit = calibrate(x, list(models))
    assert np.isfinite(fit.se_a).all()
    n_cat = fit.params.n_categories
    quad = normal_quadrature(21, 5.0)
    pats = collapse_patterns(x, n_cat)
    rng = np.random.default_rng(0)
    xi = np.zeros((6, 4))
    xi[:, 0] = rng.uniform(0.7, 1.5, 6)
    xi[:, 1:3] = rng.normal(0, 0.5, (6, 2))
    xi[0, 2] = -1.5
    logp = log_prob(models, xi, n_cat, quad.points)
    post = e_step(pats, logp, quad.weights).posterior
    d = dlogp(models, xi, n_cat, quad.points)
    sl = slice(0, pats.codes.shape[0])
    fast = se._mixed_terms(pats, sl, post, logp, d, models)
    slow = se._general_terms(pats, sl, post, d)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-9, atol=1e-9)


def test_cli_calibrates_and_scores_a_mixed_format_test(tmp_path):
    import json

    from click.testing import CliRunner

    from psychometrics.cli import main

    models = ["2pl"] * 5 + ["gpcm"]
    x, *_ = simulate_mixed(400, models, n_cat=3, seed=21)
    path = tmp_path / "r.csv"
    rows = ["q1,q2,q3,q4,q5,essay"] + [",".join(str(int(v)) for v in row) for row in x]
    path.write_text("\n".join(rows) + "\n")
    fit_path = tmp_path / "fit.json"
    runner = CliRunner()
    result = runner.invoke(
        main, ["calibrate", str(path), "--item-model", "essay=gpcm", "--out", str(fit_path)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(fit_path.read_text())
    assert doc["model"] == "mixed" and [i["model"] for i in doc["items"]] == models
    assert doc == json.loads(json.dumps(calibrate(x, models, item_ids=rows[0].split(",")).to_dict()))
    result = runner.invoke(main, ["score", str(path), "--params", str(fit_path)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["persons"]) == 400
    result = runner.invoke(main, ["calibrate", str(path), "--item-model", "q9=gpcm"])
    assert result.exit_code != 0 and "'q9' is not a column" in result.output
    result = runner.invoke(main, ["calibrate", str(path), "--item-model", "essay=4pl"])
    assert result.exit_code != 0 and "'4pl' is not one of" in result.output


def test_pretest_gpcm_items_land_on_a_fixed_2pl_scale():
    """Fixed-parameter calibration (Kim, 2006) across formats: 2PL operational items held at
    their true values put polytomous pretest items and the latent N(0.5, 1.2^2) on their scale."""
    models = ["2pl"] * 8 + ["gpcm"] * 2
    theta = np.random.default_rng(0).normal(0.5, 1.2, 3000)
    x, a, b, _ = simulate_mixed(3000, models, n_cat=3, seed=4, theta=theta)
    fit = calibrate(x, models, fixed={j: {"a": a[j], "b": b[j, 0]} for j in range(8)})
    assert fit.status[:8] == ["fixed"] * 8 and fit.status[8:] == ["estimated"] * 2
    assert fit.latent_mean == pytest.approx(0.5, abs=0.08)
    assert fit.latent_sd == pytest.approx(1.2, abs=0.08)
    np.testing.assert_allclose(fit.b[8:], b[8:], atol=0.2)
    assert fit.n_params == 2 * 3 + 2
