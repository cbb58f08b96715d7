"""Starting values for calibration from classical statistics.

Slopes come from the item-rest correlation r through the normal-ogive relation
a = 1.7 r / sqrt(1 - r^2) (Lord & Novick, 1968, ch. 16); intercepts from the marginal proportion p
through the logistic-normal approximation E[logistic(a theta + d)] ~ logistic(d / sqrt(1 + pi a^2 / 8))
(so d = logit(p) sqrt(1 + pi a^2 / 8)). Good starts cut EM cycles; they never change the optimum.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logit

from psychometrics.irt.models import COMMON_SLOPE_MODELS, DICHOTOMOUS_MODELS, model_groups, n_xi


def item_rest_correlation(x: np.ndarray) -> np.ndarray:
    """Correlation of each item with the mean score on the other presented items (NaN-aware)."""
    obs = ~np.isnan(x)
    total = np.zeros(x.shape[0])
    for j in range(x.shape[1]):  # column loops keep memory at a few person-length vectors
        total += np.where(obs[:, j], x[:, j], 0.0)
    count = obs.sum(axis=1)
    r = np.zeros(x.shape[1])
    for j in range(x.shape[1]):
        sel = obs[:, j] & (count > 1)
        if sel.sum() < 3:
            continue
        a = x[sel, j]
        b = (total[sel] - a) / (count[sel] - 1)
        sa, sb = a.std(), b.std()
        if sa > 0 and sb > 0:
            r[j] = np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb)
    return np.nan_to_num(r)


def start_xi(
    model, x: np.ndarray, n_cat: np.ndarray, width: int, r: np.ndarray | None = None
) -> np.ndarray:
    """Starting slope-intercept array (J, width) for ``model`` from the score matrix ``x``.

    ``model`` may give one model per item (a mixed-format test): each model's items start as
    they would alone, with item-rest correlations over the whole test and one common slope for
    all Rasch-family items. Rating-scale items start from their adjacent-category logits split
    into an item intercept and steps averaged over the rating-scale items.
    """
    if r is None:
        r = item_rest_correlation(x)
    if not isinstance(model, str):
        xi = np.zeros((x.shape[1], width))
        for m, idx in model_groups(model, x.shape[1]):
            w = n_xi(m, int(n_cat[idx].max()))
            xi[idx, :w] = start_xi(m, x[:, idx], n_cat[idx], w, r[idx])
        common = np.array([m in COMMON_SLOPE_MODELS for m in model])
        if common.any():
            xi[common, 0] = float(np.median(xi[common, 0]))
        return xi
    if model == "rsm":
        d = start_xi("pcm", x, n_cat, width - 1, r)
        k_n = int(n_cat.max())
        steps = (d[:, 1:k_n] - d[:, 1:2]).mean(axis=0)
        xi = np.zeros((x.shape[1], width))
        xi[:, 0] = d[:, 0]
        xi[:, 1] = (d[:, 1:k_n] - steps).mean(axis=1)
        xi[:, 2 : k_n + 1] = steps
        return xi
    j = x.shape[1]
    r = np.clip(r, 0.05, 0.9)
    a = np.clip(1.7 * r / np.sqrt(1 - r**2), 0.3, 2.5)
    if model in COMMON_SLOPE_MODELS:
        a = np.full(j, float(np.median(a)))
    scale = np.sqrt(1 + np.pi * a**2 / 8)
    xi = np.zeros((j, width))
    xi[:, 0] = a
    obs = ~np.isnan(x)
    n_obs = np.maximum(obs.sum(axis=0), 1)
    if model in DICHOTOMOUS_MODELS:
        right = np.array([np.nansum(x[:, item]) for item in range(j)])
        p = (right + 0.5) / (n_obs + 1.0)
        if model == "3pl":
            c = 0.15
            p = np.clip((p - c) / (1 - c), 0.02, 0.98)
            xi[:, 2] = logit(c)
        xi[:, 1] = logit(np.clip(p, 0.01, 0.99)) * scale
        return xi
    for item in range(j):
        col = x[obs[:, item], item].astype(int)
        k_n = int(n_cat[item])
        freq = np.bincount(col, minlength=k_n)[:k_n] + 0.5
        prop = freq / freq.sum()
        if model == "grm":
            at_least = np.clip(prop[::-1].cumsum()[::-1][1:], 0.005, 0.995)
            d = logit(at_least) * scale[item]
            d = np.minimum.accumulate(d - 1e-3 * np.arange(d.size))
        else:  # gpcm: adjacent-category logits
            d = np.clip(np.log(prop[1:] / prop[:-1]), -4, 4) * scale[item]
        xi[item, 1:k_n] = d
    return xi
