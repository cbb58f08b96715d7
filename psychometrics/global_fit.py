"""Global (limited-information) model fit: M2 with RMSEA, SRMSR, CFI and TLI.

M2 (Maydeu-Olivares & Joe, 2005, 2006) compares the first and second moments of the responses,
the item means and the cross-products ``x_i x_j`` (i < j), with the model's. With ``r = p - e``
the residual moments (observed minus model-implied), ``Delta`` their derivatives with respect to
the estimated parameters, ``Delta_c`` an orthonormal basis of its orthogonal complement and
``Xi`` the moments' asymptotic covariance under the model::

    M2 = N r' Delta_c (Delta_c' Xi Delta_c)^{-1} Delta_c' r,    df = (number of moments) - q

q the number of estimated parameters. For polytomous items the moments are the item means and
cross-products of the scores, which is Cai & Hansen's (2013) M2* (mirt's default type). With
missing responses each moment uses the persons who answered its items (N_a of them) and its
residual is weighted ``N_a / sqrt(N)``, as mirt does. Model moments integrate over the
calibration's latent N(mu, sigma^2) on 61 equally spaced nodes on [-6, 6], as mirt.

Fit indices, in mirt's definitions:

* RMSEA (Maydeu-Olivares & Joe, 2014): ``sqrt(max(M2 / df - 1, 0) / (N - 1))``, with a 90 %
  interval from the non-central chi-square: ``sqrt(lambda / (N df))`` where
  ``P(chi2(df, lambda) <= M2)`` is .95 (lower) and .05 (upper), 0 when no root exists.
* SRMSR (Maydeu-Olivares, 2013): the root mean square, over item pairs, of the observed minus
  model-implied correlations of the item scores.
* CFI and TLI (Bentler, 1990; Tucker & Lewis, 1973; Cai, Chung & Lee, 2023, for IRT) against the
  independence (null) model, slopes 0 and every item's category proportions free:
  ``TLI = (M2_0 / df_0 - M2 / df) / (M2_0 / df_0 - 1)``,
  ``CFI = 1 - (M2 - df) / (M2_0 - df_0)`` clipped to [0, 1]. The null model's moments depend on
  an item only through its mean, so its complement is taken of one column per item while its
  df counts every category intercept, as mirt's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize, stats

from psychometrics.calibration import Calibration
from psychometrics.data import check_responses
from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import ItemParameters
from psychometrics.irt.quadrature import DEFAULT_BOUND, DEFAULT_N_QUAD, normal_quadrature

# models whose items share one slope (and, for the rating scale model, its step thresholds)
COMMON_SLOPE = ("rasch", "1pl", "pcm", "rsm")
_STEP = 1e-5


@dataclass
class M2Fit:
    """M2 and the fit indices built on it (see the module docstring)."""

    statistic: float
    df: int
    p_value: float
    rmsea: float
    rmsea_ci: tuple[float, float]
    srmsr: float
    cfi: float | None
    tli: float | None
    null_statistic: float | None
    null_df: int | None
    n_persons: int
    ci_level: float = 0.90

    def to_dict(self) -> dict:
        def num(v):
            return None if v is None or not np.isfinite(v) else float(v)

        return {
            "M2": num(self.statistic),
            "df": int(self.df),
            "p_value": num(self.p_value),
            "rmsea": num(self.rmsea),
            "rmsea_ci": [num(self.rmsea_ci[0]), num(self.rmsea_ci[1])],
            "ci_level": self.ci_level,
            "srmsr": num(self.srmsr),
            "cfi": num(self.cfi),
            "tli": num(self.tli),
            "null_M2": num(self.null_statistic),
            "null_df": self.null_df,
            "n_persons": int(self.n_persons),
        }


def _item_models(params: ItemParameters) -> tuple[str, ...]:
    return tuple(params.item_models)


def m2(
    responses,
    params: ItemParameters | Calibration,
    *,
    free=None,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    estimated_latent: bool | None = None,
    ci_level: float = 0.90,
    null_model: bool = True,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
) -> M2Fit:
    """M2 limited-information fit of a calibration to ``responses`` (Maydeu-Olivares & Joe, 2006).

    Parameters
    ----------
    responses : the persons x items scores the model was calibrated on (NaN for not presented).
    params : a :class:`Calibration` (its latent scale, which items were estimated and whether the
        latent mean and SD were estimated are taken from it) or :class:`ItemParameters` with
    free : boolean per item, the items whose parameters were estimated (default all), and
    latent_mean, latent_sd, estimated_latent : the latent distribution and whether its mean and
        SD were estimated (fixed-parameter calibration).
    ci_level : coverage of the RMSEA interval (mirt's 90 % by default).
    null_model : compute the independence model's M2 for CFI and TLI.
    """
    if isinstance(params, Calibration):
        cal = params
        params = cal.params
        latent_mean, latent_sd = cal.latent_mean, cal.latent_sd
        free = np.array([s == "estimated" for s in cal.status])
        if estimated_latent is None:
            estimated_latent = any(s == "fixed" for s in cal.status)
    if not isinstance(params, ItemParameters):
        raise TypeError(
            f"params must be ItemParameters or a Calibration, got {type(params).__name__}"
        )
    if not 0 < ci_level < 1:
        raise PsychometricsError(f"ci_level must lie in (0, 1), got {ci_level!r}")
    j_n = params.n_items
    if j_n < 2:
        raise PsychometricsError("params: M2 needs at least 2 items")
    free = np.ones(j_n, bool) if free is None else np.asarray(free, dtype=bool).reshape(-1)
    if free.shape != (j_n,):
        raise PsychometricsError(f"free must hold one flag per item ({j_n}); got {free.size}")
    x = check_responses(responses, name="responses")
    if x.shape[1] != j_n:
        raise PsychometricsError(f"responses has {x.shape[1]} items but params describes {j_n}")
    over = ~np.isnan(x) & (x >= np.asarray(params.n_categories)[None, :])
    if over.any():
        i, j = np.argwhere(over)[0]
        raise PsychometricsError(
            f"responses[{i}, {j}] = {x[i, j]:g} is outside item {j}'s categories"
        )
    obs = ~np.isnan(x)
    if (obs.sum(axis=1) == 0).any():
        x, obs = x[obs.any(axis=1)], obs[obs.any(axis=1)]
    n_full = x.shape[0]
    moments = _observed_moments(x, obs)
    quad = normal_quadrature(n_quad, bound, latent_mean, latent_sd)

    ei, ei2 = _conditional_moments(params, quad.points)
    e = _model_moments(ei, quad.weights)
    xi = _moment_covariance(ei, ei2, quad.weights)
    delta = _moment_derivatives(params, free, quad, bool(estimated_latent), latent_mean, latent_sd,
                                n_quad, bound)
    stat = _quadratic_form(moments.p - e, moments.n, n_full, delta, xi)
    df = int(moments.p.size - delta.shape[1])
    if df <= 0:
        raise PsychometricsError(
            f"M2 has no degrees of freedom: {moments.p.size} moments for {delta.shape[1]}"
            " estimated parameters (too few items for this model)"
        )
    rmsea = float(np.sqrt(max(stat / df - 1.0, 0.0) / (n_full - 1)))
    ci = _rmsea_interval(stat, df, n_full, ci_level)
    srmsr = _srmsr(moments, ei, ei2, quad.weights)
    cfi = tli = null_stat = null_df = None
    if null_model:
        null_stat, null_df = _null_m2(moments, params, n_full)
        if null_stat > stat and null_df > 0:
            tli = (null_stat / null_df - stat / df) / (null_stat / null_df - 1.0)
            cfi = float(np.clip(1.0 - (stat - df) / (null_stat - null_df), 0.0, 1.0))
    return M2Fit(
        statistic=float(stat),
        df=df,
        p_value=float(stats.chi2.sf(stat, df)),
        rmsea=rmsea,
        rmsea_ci=ci,
        srmsr=srmsr,
        cfi=cfi,
        tli=None if tli is None else float(tli),
        null_statistic=None if null_stat is None else float(null_stat),
        null_df=null_df,
        n_persons=int(n_full),
        ci_level=float(ci_level),
    )


@dataclass
class _Moments:
    p: np.ndarray  # observed moments: item means, then cross-products (i < j)
    n: np.ndarray  # persons behind each moment
    mean: np.ndarray  # item means
    cov: np.ndarray  # observed covariance matrix (pairwise, as mirt's)
    pairs: tuple[np.ndarray, np.ndarray]


def _observed_moments(x: np.ndarray, obs: np.ndarray) -> _Moments:
    z = np.where(obs, x, 0.0)
    o = obs.astype(float)
    n_item = o.sum(axis=0)
    mean = z.sum(axis=0) / np.maximum(n_item, 1)
    cross_n = o.T @ o
    cross = (z.T @ z) / np.maximum(cross_n, 1)
    iu, ju = np.triu_indices(x.shape[1], 1)
    if (cross_n[iu, ju] == 0).any():
        k = int(np.flatnonzero(cross_n[iu, ju] == 0)[0])
        raise PsychometricsError(
            f"responses: no person answered both item {iu[k]} and item {ju[k]}; M2 needs every"
            " pair of items answered together"
        )
    p = np.concatenate([mean, cross[iu, ju]])
    n = np.concatenate([n_item, cross_n[iu, ju]])
    cov = cross - np.outer(mean, mean)
    return _Moments(p=p, n=n, mean=mean, cov=cov, pairs=(iu, ju))


def _conditional_moments(params: ItemParameters, theta: np.ndarray):
    """E[x_j | theta] and E[x_j^2 | theta], each (J, Q)."""
    prob = params.prob(theta)
    k = np.arange(prob.shape[1], dtype=float)
    return np.einsum("jkq,k->jq", prob, k), np.einsum("jkq,k->jq", prob, k**2)


def _model_moments(ei: np.ndarray, w: np.ndarray) -> np.ndarray:
    iu, ju = np.triu_indices(ei.shape[0], 1)
    return np.concatenate([ei @ w, (ei[iu] * ei[ju]) @ w])


def _moment_covariance(ei: np.ndarray, ei2: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Covariance of the moment statistics (x_i; x_i x_j) under the model (one person).

    E[s_a s_b] integrates the product of the conditional moments of the items in a and b; an
    item in both contributes E[x^2 | theta] instead of E[x | theta]^2 (local independence).
    """
    j_n = ei.shape[0]
    iu, ju = np.triu_indices(j_n, 1)
    y = np.vstack([ei, ei[iu] * ei[ju]])  # (S, Q)
    e = y @ w
    second = (y * w) @ y.T  # right where a and b share no item
    pair_index = np.full((j_n, j_n), -1)
    pair_index[iu, ju] = j_n + np.arange(iu.size)
    pair_index[ju, iu] = pair_index[iu, ju]
    for m in range(j_n):
        others = np.delete(np.arange(j_n), m)
        idx = np.concatenate([[m], pair_index[m, others]])
        rest = np.vstack([np.ones_like(ei[0]), ei[others]])
        second[np.ix_(idx, idx)] = (rest * (w * ei2[m])) @ rest.T
    diag_pairs = j_n + np.arange(iu.size)
    second[diag_pairs, diag_pairs] = (ei2[iu] * ei2[ju]) @ w
    return second - np.outer(e, e)


def _replace(params: ItemParameters, a=None, b=None, c=None) -> ItemParameters:
    return dataclasses.replace(
        params,
        a=params.a if a is None else a,
        b=params.b if b is None else b,
        c=params.c if c is None else c,
    )


def _moment_derivatives(params, free, quad, estimated_latent, mu, sd, n_quad, bound) -> np.ndarray:
    """d(model moments) / d(estimated parameters), one column per parameter (numerical).

    Any parameterisation spans the same column space, which is all M2 uses; items of a common
    slope model share one slope column (and rating-scale items their step columns).
    """
    models = _item_models(params)
    w = quad.weights
    ei, _ = _conditional_moments(params, quad.points)
    j_n = params.n_items
    iu, ju = np.triu_indices(j_n, 1)

    def moment_columns(j, d_ei):  # d_ei: (Q,) derivative of E[x_j | theta]
        col = np.zeros(j_n + iu.size)
        col[j] = d_ei @ w
        col[j_n:] = np.where(iu == j, (d_ei * ei[ju]) @ w, 0.0) + np.where(
            ju == j, (d_ei * ei[iu]) @ w, 0.0
        )
        return col

    columns: list[np.ndarray] = []
    shared_slope = np.zeros(j_n + iu.size)
    has_shared = False
    rsm_steps: dict[int, np.ndarray] = {}
    for j in np.flatnonzero(free):
        item = params.subset([j])
        model = models[j]

        def d_expected(kind, k=0, item=item):
            base = {"a": item.a, "b": item.b, "c": item.c}[kind].astype(float)
            h = _STEP * max(1.0, abs(float(base.reshape(-1)[k])))
            out = []
            for sign in (1.0, -1.0):
                v = base.copy().reshape(-1)
                v[k] += sign * h
                if kind == "c" and v[k] < 0:  # a guessing parameter at 0: one-sided
                    v[k] = base.reshape(-1)[k]
                out.append((_replace(item, **{kind: v.reshape(base.shape)}), v[k]))
            (up, x_up), (dn, x_dn) = out
            return (up.expected_score(quad.points)[0] - dn.expected_score(quad.points)[0]) / (
                x_up - x_dn
            )

        if model in COMMON_SLOPE:
            shared_slope += moment_columns(j, d_expected("a"))
            has_shared = True
        else:
            columns.append(moment_columns(j, d_expected("a")))
        n_thresholds = int(params.n_categories[j]) - 1
        if model == "rsm":
            cols = [moment_columns(j, d_expected("b", k)) for k in range(n_thresholds)]
            columns.append(np.sum(cols, axis=0))  # the item's location
            for k in range(n_thresholds - 1):  # steps, summing to zero
                rsm_steps.setdefault(k, np.zeros_like(cols[0]))
                rsm_steps[k] += cols[k] - cols[-1]
        else:
            for k in range(n_thresholds):
                columns.append(moment_columns(j, d_expected("b", k)))
        if model == "3pl":
            columns.append(moment_columns(j, d_expected("c")))
    if has_shared:
        columns.append(shared_slope)
    columns.extend(rsm_steps.values())
    if estimated_latent:
        for which in ("mean", "sd"):
            h = _STEP
            shifted = []
            for sign in (1.0, -1.0):
                m2_mu = mu + sign * h if which == "mean" else mu
                m2_sd = sd + sign * h if which == "sd" else sd
                q = normal_quadrature(n_quad, bound, m2_mu, m2_sd)
                shifted.append(_model_moments(ei, q.weights))
            columns.append((shifted[0] - shifted[1]) / (2 * h))
    if not columns:
        raise PsychometricsError("params: no estimated parameters (free is all False)")
    return np.column_stack(columns)


def _quadratic_form(resid, n_moment, n_full, delta, xi) -> float:
    """``r' Delta_c (Delta_c' Xi Delta_c)^{-1} Delta_c' r`` on the weighted residuals.

    When Xi is positive definite this equals ``r' (Xi^-1 - Xi^-1 Delta (Delta' Xi^-1 Delta)^-1
    Delta' Xi^-1) r`` (Maydeu-Olivares & Joe, 2005, eq. 11), computed through a Cholesky factor
    without forming the complement; otherwise the complement comes from a complete QR of Delta.
    """
    weighted = resid * n_moment / np.sqrt(n_full)
    try:
        chol = linalg.cholesky(xi, lower=True)
    except linalg.LinAlgError:
        chol = None
    if chol is not None:
        a = linalg.solve_triangular(chol, delta, lower=True)
        b = linalg.solve_triangular(chol, weighted, lower=True)
        ab = a.T @ b
        try:
            inner = np.linalg.solve(a.T @ a, ab)
        except np.linalg.LinAlgError:
            inner = np.linalg.lstsq(a.T @ a, ab, rcond=None)[0]
        return float(abs(b @ b - ab @ inner))
    q_full, _ = np.linalg.qr(delta, mode="complete")
    comp = q_full[:, delta.shape[1] :]
    u = comp.T @ weighted
    inner = comp.T @ xi @ comp
    try:
        return float(abs(u @ np.linalg.solve(inner, u)))
    except np.linalg.LinAlgError:
        raise PsychometricsError(
            "M2: the moments' covariance on the residual space is singular (an item with a"
            " category nobody can reach, or too few items for the model)"
        ) from None


def _rmsea_interval(stat, df, n, level) -> tuple[float, float]:
    alpha = (1 - level) / 2

    def cdf(lam):
        return stats.chi2.cdf(stat, df) if lam <= 0 else stats.ncx2.cdf(stat, df, lam)

    def root(target, upper):
        f_lo, f_hi = cdf(0.0) - target, cdf(upper) - target
        if not (np.isfinite(f_lo) and np.isfinite(f_hi)) or f_lo * f_hi > 0:
            return 0.0
        return float(optimize.brentq(lambda lam: cdf(lam) - target, 0.0, upper))

    lam_lo = root(1 - alpha, stat)
    lam_hi = root(alpha, max(n, stat * 5))
    return float(np.sqrt(lam_lo / (n * df))), float(np.sqrt(lam_hi / (n * df)))


def _srmsr(moments: _Moments, ei, ei2, w) -> float:
    obs_cov = moments.cov
    e1 = ei @ w
    model = (ei * w) @ ei.T
    np.fill_diagonal(model, ei2 @ w)
    model_cov = model - np.outer(e1, e1)

    def corr(c):
        s = np.sqrt(np.diag(c))
        return c / np.outer(s, s)

    iu, ju = moments.pairs
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = corr(obs_cov)[iu, ju] - corr(model_cov)[iu, ju]
    return float(np.sqrt(np.mean(diff**2)))


def _null_m2(moments: _Moments, params: ItemParameters, n_full: int) -> tuple[float, int]:
    """M2 of the independence model: item means free, no association (slopes 0)."""
    mean = moments.mean
    j_n = mean.size
    iu, ju = moments.pairs
    e = np.concatenate([mean, mean[iu] * mean[ju]])
    # one person's moment covariance with independent items: E[x_i^2] from observed margins
    ex2 = np.empty(j_n)
    for j in range(j_n):
        ex2[j] = moments.cov[j, j] + mean[j] ** 2
    ei = mean[:, None]
    ei2 = ex2[:, None]
    xi = _moment_covariance(ei, ei2, np.ones(1))
    delta = np.zeros((e.size, j_n))
    delta[np.arange(j_n), np.arange(j_n)] = 1.0
    delta[j_n + np.arange(iu.size), iu] = mean[ju]
    delta[j_n + np.arange(iu.size), ju] = mean[iu]
    stat = _quadratic_form(moments.p - e, moments.n, n_full, delta, xi)
    df = int(e.size - (np.asarray(params.n_categories) - 1).sum())
    return stat, df
