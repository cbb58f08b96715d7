"""Item fit: the Orlando & Thissen (2000, 2003) S-X2 statistic, generalised to polytomous items
(Kang & Chen, 2008).

Persons are grouped by summed score s. The model-implied proportion of persons with score s who
score k on item j is (Lord-Wingersky recursion over the other items, L^{-j})::

    E_jks = sum_q P_jk(X_q) L^{-j}(s - k | X_q) A_q / sum_q L(s | X_q) A_q

and S-X2_j = sum over the cells left after collapsing of (O - E)^2 / E on counts, for the
summed scores 1..S-1 (0 and S say nothing about the item).

Sparse cells are collapsed cell by cell as mirt's ``itemfit`` does (Chalmers, 2012;
``collapseCells``; ``mincell`` = ``min_expected`` = 1): score groups where a category is
impossible are merged into the nearest possible group; empty groups are dropped and groups
holding a single person merged upwards; within a score group whose expected counts fall below
the minimum, categories are merged one at a time (the smallest into its smaller neighbour)
until every remaining cell reaches it; a top category that is rare overall (expected total
below min x ceil(groups / 10)) is merged into the one below, and a category expected in fewer
than 5 % of the groups is merged into its lower neighbour; finally whole score groups with a
cell still below the minimum are merged into the adjacent group with fewer observed persons. A
polytomous item therefore keeps its score groups and gets a statistic where merging whole
groups (the rule before) could leave one group and none.

df = (cells left) - (score groups left) - (item parameters estimated), as in mirt. For the
Rasch model and the 1PL the latent variance (Rasch) or the common slope (1PL) is one more
parameter shared by all items, and mirt subtracts it from every item's df (its ``Rasch``
itemtype estimates the latent variance): df = cells - groups - 1 - 1 for a 0/1 Rasch item.
``shared_df=False`` gives the Orlando & Thissen (2000) count without it. An item whose df is
0 or less gets no statistic. Persons who did not see every item are left out: summed scores
on different forms are not comparable.
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
# models whose items share one estimated parameter (latent variance or common slope)
SHARED_PARAMETER_MODELS = ("rasch", "1pl", "pcm", "rsm")


@dataclass
class ItemFit:
    item: str
    statistic: float | None
    df: int
    p_value: float | None
    n_groups: int
    n_cells: int = 0
    rmsea: float | None = None

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
    shared_df: bool = True,
) -> list[ItemFit]:
    """S-X2 item fit for every item; ``params`` may be a Calibration (its latent scale is used).

    ``shared_df`` subtracts the parameter the Rasch/1PL items share from each item's df, as
    mirt does (see the module docstring).
    """
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
        raise PsychometricsError(
            f"responses has {x.shape[1]} items but params describes {params.n_items}"
        )
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
    n_persons = x.shape[0]
    out = []
    for j in range(params.n_items):
        k_n = int(params.n_categories[j])
        rest = lord_wingersky(
            params.subset([i for i in range(params.n_items) if i != j]), quad.points
        )
        expected = np.full((max_score + 1, k_n), np.nan)
        for k in range(k_n):
            expected[k : k + rest.shape[0], k] = (rest * p[j, k]) @ quad.weights
        expected /= np.maximum(full[:, None], 1e-300)
        observed = np.zeros((max_score + 1, k_n))
        np.add.at(observed, (total, x[:, j].astype(int)), 1.0)
        seen = np.unique(x[:, j]).size
        e_counts = (expected * counts_s[:, None])[1:-1]
        cells = collapse_cells(observed[1:-1], e_counts, min_expected) if seen == k_n else None
        df = -1
        if cells is not None:
            o, e = cells
            used = ~np.isnan(e)
            model_j = params.item_models[j]
            df = int(used.sum() - e.shape[0] - item_parameter_count(model_j, k_n))
            if shared_df and model_j in SHARED_PARAMETER_MODELS:
                df -= 1
        if cells is None or df <= 0:
            n_groups = 0 if cells is None else int(cells[1].shape[0])
            out.append(ItemFit(ids[j], None, max(int(df), 0), None, n_groups))
            continue
        stat = float((((o - e) ** 2) / e)[used].sum())
        rmsea = float(np.sqrt(max(stat - df, 0.0) / (df * (n_persons - 1))))
        out.append(
            ItemFit(
                ids[j],
                stat,
                df,
                float(stats.chi2.sf(stat, df)),
                int(e.shape[0]),
                int(used.sum()),
                rmsea,
            )
        )
    return out


def item_parameter_count(model: str, n_categories: int) -> int:
    """Parameters estimated for one item, not counting any shared by all items: a and K-1
    intercepts (GRM/GPCM), K-1 thresholds for the partial credit model (the slope is shared),
    the location alone for a rating-scale item (its steps are shared, and not subtracted)."""
    if model in PARAMS_PER_ITEM:
        return PARAMS_PER_ITEM[model]
    return {"pcm": n_categories - 1, "rsm": 1}.get(model, n_categories)


def collapse_cells(observed: np.ndarray, expected: np.ndarray, mincell: float = 1.0):
    """Port of mirt's ``collapseCells`` for one item: (O, E) score-group x category tables.

    ``expected`` holds NaN where a category is impossible at that score. Returns the collapsed
    (O, E), E with NaN for cells merged away, or None when nothing is left.
    """
    o = observed.astype(float).copy()
    e = expected.astype(float).copy()
    drop = np.flatnonzero(np.isnan(e).any(axis=1))
    e = np.nan_to_num(e)
    if drop.size:
        half = max(drop.size // 2, 1)
        up = np.arange(drop[0], drop[half - 1] + 1)
        low = np.arange(drop[half], drop[-1] + 1) if drop.size > 1 else np.array([], int)
        if up.size and up.max() + 1 < e.shape[0]:
            tgt = up.max() + 1
            e[tgt] = e[np.append(up, tgt)].sum(axis=0)
            o[tgt] = o[np.append(up, tgt)].sum(axis=0)
        if low.size and low.min() - 1 >= 0:
            tgt = low.min() - 1
            e[tgt] = e[np.append(low, tgt)].sum(axis=0)
            o[tgt] = o[np.append(low, tgt)].sum(axis=0)
        keep = np.ones(e.shape[0], bool)
        keep[np.concatenate([up, low]).astype(int)] = False
        o, e = o[keep], e[keep]
    if o.shape[0] == 0:
        return None
    nonempty = o.sum(axis=1) != 0
    o, e = o[nonempty], e[nonempty]
    if o.shape[0] == 0:
        return None
    small = e < mincell  # computed here, before single-person rows are merged (as mirt does)
    single = []
    for r in range(o.shape[0] - 1):
        if o[r].sum() == 1:
            single.append(r)
            o[r + 1] += o[r]
            e[r + 1] += e[r]
    if single:
        keep = np.ones(o.shape[0], bool)
        keep[single] = False
        o, e = o[keep], e[keep]
    if o.shape[0] > 1 and o[-1].sum() == 1:
        o[-2] += o[-1]
        e[-2] += e[-1]
        o, e = o[:-1], e[:-1]
    n_cat = e.shape[1]
    if n_cat > 2:
        for r in range(min(o.shape[0], small.shape[0])):
            if not small[r].any():
                continue
            te, to = list(e[r]), list(o[r])
            while len(te) > 2:
                m = min(te)
                whc = max(i for i, v in enumerate(te) if v == m)
                if whc == 0:
                    pick = 1
                elif whc == len(te) - 1:
                    pick = whc - 1
                else:
                    pick = whc - 1 if min(te[whc - 1], te[whc + 1]) == te[whc - 1] else whc + 1
                te[pick] += te[whc]
                to[pick] += to[whc]
                del te[whc], to[whc]
                if all(v >= mincell for v in te):
                    break
            e[r] = te + [np.nan] * (n_cat - len(te))
            o[r] = to + [0.0] * (n_cat - len(to))
    e = np.nan_to_num(e)
    if e.shape[1] > 2:
        while e.shape[1] > 2 and e[:, -1].sum() < mincell * np.ceil(e.shape[0] * 0.1):
            o[:, -2] += o[:, -1]
            e[:, -2] += e[:, -1]
            o, e = o[:, :-1], e[:, :-1]
    dropcol = np.zeros(e.shape[1], bool)
    for c in range(e.shape[1] - 1, 0, -1):
        if (e[:, c] > 0).sum() / e.shape[0] < 0.05:
            dropcol[c] = True
            e[:, c - 1] += e[:, c]
            o[:, c - 1] += o[:, c]
    o, e = o[:, ~dropcol], e[:, ~dropcol]
    while e.shape[0] > 1 and e.shape[1] > 1:
        low_cells = (e < mincell) & (e != 0)
        rows = np.flatnonzero(low_cells.any(axis=1))
        if rows.size == 0:
            break
        r = rows[0]
        if r == 0:
            pick = 1
        elif r == e.shape[0] - 1:
            pick = r - 1
        else:
            above, below = o[r - 1].sum(), o[r + 1].sum()
            pick = r - 1 if above <= below else r + 1
        e[pick] += e[r]
        o[pick] += o[r]
        o, e = np.delete(o, r, axis=0), np.delete(e, r, axis=0)
    e = np.where(e == 0, np.nan, e)
    return o, e
