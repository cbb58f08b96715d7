"""Local dependence between item pairs: Yen's Q3 (and adjusted Q3) and Chen & Thissen's LD X2.

* Q3 (Yen, 1984): the correlation over persons of the residuals ``d_ij = x_ij - E[x_j | theta_i]``
  of two items, theta_i a person's ability estimate (EAP by default, as mirt's
  ``residuals(type = "Q3")``), over the persons who answered both items. Under local
  independence Q3 averages about -1 / (J - 1) (Yen, 1993), so the adjusted
  ``Q3* = Q3 - mean of the off-diagonal Q3`` (Marais, 2013) is judged instead; pairs with
  ``Q3* > 0.2`` are flagged (Christensen, Makransky & Horton, 2017, use cut-offs of this size
  relative to the average).
* LD X2 (Chen & Thissen, 1997): for items i and j, Pearson's X2 between the observed K_i x K_j
  table of responses and its model expectation
  ``E_km = N_ij sum_q P_ik(X_q) P_jm(X_q) A_q``, df = (K_i - 1)(K_j - 1), with mirt's signed
  Cramer's V, ``sign(gamma_O - gamma_E) sqrt(X2 / (N_ij (min(K_i, K_j) - 1)))`` (gamma the
  Goodman-Kruskal gamma of each table), and the approximate z ``sqrt(2 X2) - sqrt(2 df - 1)``.
  Pairs whose p-value is below ``alpha`` after a Bonferroni correction over all pairs are
  flagged (X2 is only approximately chi-square: Chen & Thissen, 1997).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from psychometrics.calibration import Calibration, _num
from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import ItemParameters
from psychometrics.irt.quadrature import DEFAULT_BOUND, DEFAULT_N_QUAD, normal_quadrature
from psychometrics.reliability import responses_for
from psychometrics.scoring import theta_eap

Q3_CUT = 0.2


def _inputs(responses, params, latent_mean, latent_sd, item_ids):
    if isinstance(params, Calibration):
        item_ids = item_ids or params.item_ids
        latent_mean, latent_sd = params.latent_mean, params.latent_sd
        params = params.params
    if not isinstance(params, ItemParameters):
        raise TypeError(
            f"params must be ItemParameters or a Calibration, got {type(params).__name__}"
        )
    x = responses_for(responses, params)
    if params.n_items < 2:
        raise PsychometricsError("params: local dependence needs at least 2 items")
    ids = list(item_ids) if item_ids is not None else [f"item{j + 1}" for j in range(x.shape[1])]
    if len(ids) != x.shape[1]:
        raise PsychometricsError(f"item_ids has {len(ids)} names for {x.shape[1]} items")
    return x, params, float(latent_mean), float(latent_sd), ids


def yen_q3(
    responses,
    params: ItemParameters | Calibration,
    *,
    theta=None,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
) -> np.ndarray:
    """Yen's (1984) Q3 matrix (J x J, 1 on the diagonal): correlations of the item residuals
    ``x - E[x | theta_hat]``, pairwise over persons who answered both items.

    ``theta`` gives each person's ability estimate; by default EAP under the calibration's
    latent distribution (as mirt). A pair with no residual variance gets NaN.
    """
    x, params, mu, sd, _ = _inputs(responses, params, latent_mean, latent_sd, None)
    return _q3(x, params, theta, mu, sd)


def _q3(x, params, theta, mu, sd) -> np.ndarray:
    if theta is None:
        theta = theta_eap(x, params, prior_mean=mu, prior_sd=sd).theta
    t = np.asarray(theta, dtype=float).reshape(-1)
    if t.size != x.shape[0] or not np.all(np.isfinite(t)):
        raise PsychometricsError(
            f"theta must hold one finite estimate per person ({x.shape[0]}); got {t.size}"
        )
    resid = x - params.expected_score(t).T  # NaN where not answered
    obs = ~np.isnan(resid)
    z = np.where(obs, resid, 0.0)
    o = obs.astype(float)
    # pairwise-complete moments through matrix products: n_ij, sums and sums of squares
    n = o.T @ o
    s_i = z.T @ o  # s_i[i, j]: sum of item i's residuals over persons who answered i and j
    ss_i = (z**2).T @ o
    cross = z.T @ z
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_i = s_i / n
        mean_j = mean_i.T
        cov = cross / n - mean_i * mean_j
        var_i = ss_i / n - mean_i**2
        var_j = var_i.T
        out = cov / np.sqrt(var_i * var_j)
    bad = (n < 3) | ~(var_i > 1e-14) | ~(var_j > 1e-14)
    out = np.where(bad, np.nan, np.clip(out, -1.0, 1.0))
    np.fill_diagonal(out, 1.0)
    return out


@dataclass
class LDChi2:
    """Chen & Thissen's LD X2 per item pair (J x J matrices, NaN on the diagonal)."""

    statistic: np.ndarray
    df: np.ndarray
    p_value: np.ndarray
    cramers_v: np.ndarray
    z: np.ndarray


def ld_chi2(
    responses,
    params: ItemParameters | Calibration,
    *,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
) -> LDChi2:
    """Chen & Thissen's (1997) LD X2 for every item pair (see the module docstring)."""
    x, params, mu, sd, _ = _inputs(responses, params, latent_mean, latent_sd, None)
    return _ld_chi2(x, params, mu, sd, n_quad, bound)


def _ld_chi2(x, params, mu, sd, n_quad, bound) -> LDChi2:
    quad = normal_quadrature(n_quad, bound, mu, sd)
    prob = params.prob(quad.points)  # (J, K, Q)
    n_cat = np.asarray(params.n_categories)
    j_n = x.shape[1]
    obs = ~np.isnan(x)
    # one-hot scores (persons x all categories) make every pair's observed table one block of a
    # single matrix product; the model's joint category probabilities likewise
    start = np.concatenate([[0], np.cumsum(n_cat)])
    onehot = np.zeros((x.shape[0], int(start[-1])))
    rows = np.arange(x.shape[0])
    for j in range(j_n):
        seen = obs[:, j]
        onehot[rows[seen], start[j] + x[seen, j].astype(int)] = 1.0
    observed = onehot.T @ onehot
    flat = np.concatenate([prob[j, : n_cat[j]] for j in range(j_n)])
    joint = (flat * quad.weights) @ flat.T
    answered = obs.astype(float).T @ obs.astype(float)
    shape = (j_n, j_n)
    x2, df, p, v, z = (np.full(shape, np.nan) for _ in range(5))
    for i in range(j_n):
        for j in range(i + 1, j_n):
            n_ij = answered[i, j]
            if n_ij == 0:
                continue
            block = np.s_[start[i] : start[i + 1], start[j] : start[j + 1]]
            table = observed[block]
            expected = n_ij * joint[block]
            ki, kj = int(n_cat[i]), int(n_cat[j])
            stat = float(((table - expected) ** 2 / np.maximum(expected, 1e-300)).sum())
            d = (ki - 1) * (kj - 1)
            sign = np.sign(_gamma(table) - _gamma(expected))
            sign = 1.0 if sign == 0 or not np.isfinite(sign) else sign
            x2[i, j] = x2[j, i] = stat
            df[i, j] = df[j, i] = d
            v[i, j] = v[j, i] = sign * np.sqrt(stat / (n_ij * (min(ki, kj) - 1)))
            z[i, j] = z[j, i] = np.sqrt(2 * stat) - np.sqrt(2 * d - 1)
    iu = np.triu_indices(j_n, 1)
    p[iu] = stats.chi2.sf(x2[iu], df[iu])
    p.T[iu] = p[iu]
    return LDChi2(statistic=x2, df=df, p_value=p, cramers_v=v, z=z)


def _gamma(table: np.ndarray) -> float:
    """Goodman-Kruskal gamma of a contingency table (ordered rows and columns)."""
    concordant = discordant = 0.0
    rows, cols = table.shape
    for r in range(rows):
        for c in range(cols):
            concordant += table[r, c] * table[r + 1 :, c + 1 :].sum()
            discordant += table[r, c] * table[r + 1 :, :c].sum()
    total = concordant + discordant
    return (concordant - discordant) / total if total > 0 else 0.0


@dataclass
class LocalDependence:
    """Q3, adjusted Q3 and LD X2 for every item pair, with the pairs flagged.

    ``flags`` lists dicts ``{"items": [id_i, id_j], "statistic": "q3" | "ld_x2", "value",
    "threshold"}``; ``to_dict()`` also lists every pair.
    """

    item_ids: list[str]
    q3: np.ndarray
    q3_adjusted: np.ndarray
    q3_mean: float
    ld: LDChi2
    q3_cut: float
    alpha: float
    flags: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        pairs = []
        j_n = len(self.item_ids)
        for i in range(j_n):
            for j in range(i + 1, j_n):
                pairs.append(
                    {
                        "items": [self.item_ids[i], self.item_ids[j]],
                        "q3": _num(self.q3[i, j]),
                        "q3_adjusted": _num(self.q3_adjusted[i, j]),
                        "ld_x2": _num(self.ld.statistic[i, j]),
                        "df": None if np.isnan(self.ld.df[i, j]) else int(self.ld.df[i, j]),
                        "p_value": _num(self.ld.p_value[i, j]),
                        "cramers_v": _num(self.ld.cramers_v[i, j]),
                        "z": _num(self.ld.z[i, j]),
                    }
                )
        return {
            "q3_mean": _num(self.q3_mean),
            "q3_cut": self.q3_cut,
            "alpha": self.alpha,
            "pairs": pairs,
            "flags": list(self.flags),
        }


def local_dependence(
    responses,
    params: ItemParameters | Calibration,
    *,
    item_ids=None,
    theta=None,
    q3_cut: float = Q3_CUT,
    alpha: float = 0.05,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
) -> LocalDependence:
    """Q3, adjusted Q3 (Marais, 2013) and LD X2 (Chen & Thissen, 1997) for every item pair, and
    the flag list: adjusted Q3 above ``q3_cut``, or an LD X2 p-value below ``alpha`` divided by
    the number of pairs (Bonferroni)."""
    if not 0 < alpha < 1:
        raise PsychometricsError(f"alpha must lie in (0, 1), got {alpha!r}")
    if not np.isfinite(q3_cut):
        raise PsychometricsError(f"q3_cut must be finite, got {q3_cut!r}")
    x, params, mu, sd, ids = _inputs(responses, params, latent_mean, latent_sd, item_ids)
    q3 = _q3(x, params, theta, mu, sd)
    iu, ju = np.triu_indices(x.shape[1], 1)
    q3_mean = float(np.nanmean(q3[iu, ju]))
    adjusted = q3 - q3_mean
    np.fill_diagonal(adjusted, np.nan)
    ld = _ld_chi2(x, params, mu, sd, n_quad, bound)
    flags = []
    n_pairs = iu.size
    for i, j in zip(iu, ju):
        if np.isfinite(adjusted[i, j]) and adjusted[i, j] > q3_cut:
            flags.append(
                {
                    "items": [ids[i], ids[j]],
                    "statistic": "q3",
                    "value": float(adjusted[i, j]),
                    "threshold": float(q3_cut),
                    "message": f"adjusted Q3 {adjusted[i, j]:.3f} > {q3_cut:g}",
                }
            )
        if np.isfinite(ld.p_value[i, j]) and ld.p_value[i, j] < alpha / n_pairs:
            flags.append(
                {
                    "items": [ids[i], ids[j]],
                    "statistic": "ld_x2",
                    "value": float(ld.statistic[i, j]),
                    "threshold": float(alpha / n_pairs),
                    "message": (
                        f"LD X2 {ld.statistic[i, j]:.2f} on {int(ld.df[i, j])} df, p ="
                        f" {ld.p_value[i, j]:.2g} < {alpha:g}/{n_pairs} (Bonferroni)"
                    ),
                }
            )
    return LocalDependence(
        item_ids=ids,
        q3=q3,
        q3_adjusted=adjusted,
        q3_mean=q3_mean,
        ld=ld,
        q3_cut=float(q3_cut),
        alpha=float(alpha),
        flags=flags,
    )
