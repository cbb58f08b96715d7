"""Item fit: the Orlando & Thissen (2000, 2003) S-X2 statistic, generalised to polytomous items
(Kang & Chen, 2008).

Persons are grouped by summed score s. The model-implied proportion of persons with score s who
score k on item j is (Lord-Wingersky recursion over the other items, L^{-j})::

    E_jks = sum_q P_jk(X_q) L^{-j}(s - k | X_q) A_q / sum_q L(s | X_q) A_q

and S-X2_j = sum over score groups and categories of (O - E)^2 / E on counts. Adjacent groups are
merged from the ends inward until every expected count is at least ``min_expected`` (1 by
default, as in mirt), and df = groups x (K - 1) - (number of estimated item parameters). Persons
who did not see every item are left out: summed scores on different forms are not comparable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from psychometrics.calibration import Calibration
from psychometrics.data import check_responses
from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import ItemParameters
from psychometrics.irt.quadrature import DEFAULT_BOUND, DEFAULT_N_QUAD, normal_quadrature
from psychometrics.scoring import lord_wingersky

PARAMS_PER_ITEM = {"rasch": 1, "1pl": 1, "2pl": 2, "3pl": 3}


@dataclass
class ItemFit:
    item: str
    statistic: float | None
    df: int
    p_value: float | None
    n_groups: int

    def to_dict(self) -> dict:
        return asdict(self)


def s_x2(
    responses,
    params: ItemParameters | Calibration,
    *,
    item_ids=None,
    min_expected: float = 1.0,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
) -> list[ItemFit]:
    """S-X2 item fit for every item; ``params`` may be a Calibration (its latent scale is used)."""
    if isinstance(params, Calibration):
        item_ids = item_ids or params.item_ids
        latent_mean, latent_sd = params.latent_mean, params.latent_sd
        params = params.params
    if not isinstance(params, ItemParameters):
        raise TypeError("params must be ItemParameters or a Calibration")
    if not min_expected > 0:
        raise PsychometricsError(f"min_expected must be positive, got {min_expected!r}")
    x = check_responses(responses, model=params.model, name="responses")
    if x.shape[1] != params.n_items:
        raise PsychometricsError(f"responses has {x.shape[1]} items but params describes {params.n_items}")
    x = x[~np.isnan(x).any(axis=1)]
    if x.shape[0] == 0:
        raise PsychometricsError("responses: S-X2 needs persons who saw every item; there are none")
    ids = item_ids or [f"item{j + 1}" for j in range(params.n_items)]
    quad = normal_quadrature(n_quad, bound, latent_mean, latent_sd)
    p = params.prob(quad.points)
    full = lord_wingersky(params, quad.points) @ quad.weights  # P(s)
    total = x.sum(axis=1).astype(int)
    max_score = full.size - 1
    counts_s = np.bincount(total, minlength=max_score + 1).astype(float)
    out = []
    for j in range(params.n_items):
        k_n = int(params.n_categories[j])
        rest = lord_wingersky(
            params.subset([i for i in range(params.n_items) if i != j]), quad.points
        )
        expected = np.zeros((max_score + 1, k_n))
        for k in range(k_n):
            expected[k : k + rest.shape[0], k] = (rest * p[j, k]) @ quad.weights
        expected /= np.maximum(full[:, None], 1e-300)
        observed = np.zeros((max_score + 1, k_n))
        np.add.at(observed, (total, x[:, j].astype(int)), 1.0)
        # scores where the item response is determined carry no information
        informative = (expected > 1e-12).sum(axis=1) > 1
        e_counts = expected * counts_s[:, None]
        groups = _collapse(e_counts[informative], observed[informative], min_expected)
        n_groups = len(groups)
        params_j = _n_item_parameters(params.item_models[j], k_n)
        df = n_groups * (k_n - 1) - params_j
        if n_groups == 0 or df <= 0:
            out.append(ItemFit(ids[j], None, int(df), None, n_groups))
            continue
        stat = sum(float(((o - e) ** 2 / e).sum()) for e, o in groups)
        out.append(ItemFit(ids[j], stat, int(df), float(stats.chi2.sf(stat, df)), n_groups))
    return out


def _n_item_parameters(model: str, n_cat: int) -> int:
    """Estimated parameters of one item: a and K-1 intercepts, K-1 thresholds for the PCM (the
    slope is shared), 1 location for the RSM (the steps are shared)."""
    if model in PARAMS_PER_ITEM:
        return PARAMS_PER_ITEM[model]
    return {"pcm": n_cat - 1, "rsm": 1}.get(model, n_cat)


def _collapse(expected: np.ndarray, observed: np.ndarray, min_expected: float):
    """Merge adjacent score groups until every expected cell count reaches ``min_expected``."""
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    acc_e = np.zeros(expected.shape[1])
    acc_o = np.zeros(expected.shape[1])
    for e, o in zip(expected, observed):
        acc_e = acc_e + e
        acc_o = acc_o + o
        if acc_e.min() >= min_expected:
            groups.append((acc_e, acc_o))
            acc_e = np.zeros_like(acc_e)
            acc_o = np.zeros_like(acc_o)
    if acc_e.sum() > 0:
        if groups:
            e, o = groups.pop()
            groups.append((e + acc_e, o + acc_o))
        elif acc_e.min() > 0:
            groups.append((acc_e, acc_o))
    return groups
