"""Multiple-group IRT calibration and IRT likelihood-ratio DIF.

Multiple-group marginal maximum likelihood (Bock & Zimowski, 1997): persons in group g have
theta ~ N(mu_g, sigma_g^2), the reference group N(0, 1) fixing the scale, and the other groups'
means and SDs are estimated. Anchor items have one set of parameters for every group; the
other items have their own parameters in each group. The marginal log-likelihood is the sum of
the groups' ones, ``logL = sum_g sum_{i in g} log sum_q L_i(X_q) A_q(mu_g, sigma_g)``.

EM: the E-step runs per group on the same quadrature nodes with that group's normal weights;
convergence needs both the largest parameter change below ``tol`` and a relative change of the
log-likelihood below 1e-8;
the expected counts r_jkq of an anchor item are summed over groups, so the M-step is the
single-group one over "virtual" items (an anchor item once, a free item once per group, each
seeing only its group's persons). The focal groups' mu and sigma are then the mean and SD of
their posterior node masses (Mislevy, 1984; Bock & Zimowski, 1997, the "empirical" update).

IRT likelihood-ratio DIF (Thissen, Steinberg & Wainer, 1988, 1993): the baseline holds every
item invariant (all anchors) with the focal latent mean and SD free; each studied item in turn
gets its own parameters in each group, and G^2 = 2 (logL_free - logL_baseline) is referred to
chi-square with df = the item's parameter count x (groups - 1). This is the "add" scheme of
mirt's ``DIF()`` over a fully constrained ``multipleGroup`` model.

Standard errors: the observed information is the negative Hessian of the marginal
log-likelihood in the item parameters and the focal groups' mu and sigma, by central differences
of its analytic gradient. By Fisher's identity the gradient is the posterior expectation of the
complete-data score (Louis, 1982): sum_kq r_jkq d log P_jk(X_q) / d xi for the items and, with
the normalised weights A_q proportional to phi((X_q - mu) / sigma),
sum_q m_gq (d log A_q / d mu) and (d log A_q / d sigma) for group g's node masses m_gq.

Items of the Rasch family share one slope across groups and items; results are reported in the
1PL metric (the common slope as ``a``, the reference latent SD 1). With the Beta prior on the
3PL asymptote (Bayes modal) the log-likelihood excludes the prior, so the test is approximate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from psychometrics.calibration import (
    DEFAULT_C_PRIOR,
    _categories,
    _check_dichotomous_columns,
    _item_ids,
    _item_standard_errors,
    _num,
)
from psychometrics.data import check_responses, collapse_patterns
from psychometrics.errors import ConvergenceWarning, PsychometricsError
from psychometrics.irt.estimation import build_parameter_map, dlogp, e_step, m_step
from psychometrics.irt.models import (
    DICHOTOMOUS_MODELS,
    ItemParameters,
    check_item_models,
    check_model,
    irt_from_xi,
    log_prob,
    n_xi,
    per_item,
)
from psychometrics.irt.priors import ItemPriors
from psychometrics.irt.quadrature import (
    DEFAULT_BOUND,
    DEFAULT_N_QUAD,
    normal_quadrature,
    posterior_moments,
)
from psychometrics.irt.standard_errors import covariance_from_information
from psychometrics.irt.start_values import start_xi

HESSIAN_STEP = 1e-4
LOGLIK_RTOL = 1e-8


@dataclass
class MultipleGroupCalibration:
    """Result of :func:`calibrate_groups`.

    ``params[g]`` are group g's item parameters (identical across groups for anchor items),
    ``latent_mean[g]`` and ``latent_sd[g]`` its latent distribution (0 and 1 for the reference
    group), ``anchored[j]`` whether item j is invariant. ``se_a[g]`` etc. are standard errors
    (None when not computed or when the information matrix is singular).
    """

    groups: list
    reference: object
    item_ids: list[str]
    item_models: tuple[str, ...]
    anchored: np.ndarray
    params: dict
    latent_mean: dict
    latent_sd: dict
    loglik: float
    n_params: int
    n_persons: dict
    converged: bool
    iterations: int
    max_change: float
    messages: list[str] = field(default_factory=list)
    se_a: dict | None = None
    se_b: dict | None = None
    se_c: dict | None = None
    se_latent_mean: dict | None = None
    se_latent_sd: dict | None = None
    _xi: np.ndarray | None = field(default=None, repr=False)  # (G, J, width) per group

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> float:
        return -2 * self.loglik + self.n_params * np.log(sum(self.n_persons.values()))

    def to_dict(self) -> dict:
        groups = []
        for g in self.groups:
            p = self.params[g]
            items = []
            for j, item in enumerate(self.item_ids):
                b = np.atleast_1d(p.b[j])[: max(int(p.n_categories[j]) - 1, 1)]
                items.append(
                    {
                        "id": item,
                        "model": self.item_models[j],
                        "anchored": bool(self.anchored[j]),
                        "a": _num(p.a[j]),
                        "b": [_num(v) for v in b]
                        if self.item_models[j] not in DICHOTOMOUS_MODELS
                        else _num(b[0]),
                        "c": _num(p.c[j]),
                    }
                )
                if self.se_a is not None:
                    se_b = np.atleast_1d(self.se_b[g][j])[: max(int(p.n_categories[j]) - 1, 1)]
                    items[-1]["se_a"] = _num(self.se_a[g][j])
                    items[-1]["se_b"] = (
                        [_num(v) for v in se_b]
                        if self.item_models[j] not in DICHOTOMOUS_MODELS
                        else _num(se_b[0])
                    )
                    items[-1]["se_c"] = _num(self.se_c[g][j])
            groups.append(
                {
                    "group": _label(g),
                    "reference": g == self.reference,
                    "n_persons": int(self.n_persons[g]),
                    "latent_mean": _num(self.latent_mean[g]),
                    "latent_sd": _num(self.latent_sd[g]),
                    "se_latent_mean": None
                    if self.se_latent_mean is None
                    else _num(self.se_latent_mean[g]),
                    "se_latent_sd": None if self.se_latent_sd is None else _num(self.se_latent_sd[g]),
                    "items": items,
                }
            )
        return {
            "groups": groups,
            "loglik": _num(self.loglik),
            "aic": _num(self.aic),
            "bic": _num(self.bic),
            "n_params": int(self.n_params),
            "converged": bool(self.converged),
            "iterations": int(self.iterations),
            "warnings": list(self.messages),
        }


def _label(g):
    return g.item() if isinstance(g, np.generic) else g


def check_groups(group, n_persons: int, reference=None) -> tuple[list, np.ndarray]:
    """Group levels (reference first) and each person's level index; refuses missing labels."""
    g = np.asarray(group, dtype=object)
    if g.shape != (n_persons,):
        raise PsychometricsError(f"group must have one entry per person ({n_persons}), got {g.shape}")
    missing = [i for i, v in enumerate(g) if v is None or (isinstance(v, float) and np.isnan(v))]
    if missing:
        raise PsychometricsError(
            f"group: person {missing[0]} has no group ({len(missing)} missing); assign every"
            " person a group or leave them out"
        )
    levels = list(dict.fromkeys(g.tolist()))
    if len(levels) < 2:
        raise PsychometricsError(f"group: need at least two groups, got {levels!r}")
    if reference is None:
        reference = min(levels, key=str)
    if reference not in levels:
        raise PsychometricsError(f"reference: no person belongs to group {reference!r}")
    levels = [reference] + sorted((v for v in levels if v != reference), key=str)
    index = {v: k for k, v in enumerate(levels)}
    return levels, np.array([index[v] for v in g.tolist()], dtype=int)


def _anchor_flags(anchors, ids: list[str]) -> np.ndarray:
    if anchors is None:
        return np.ones(len(ids), dtype=bool)
    flags = np.zeros(len(ids), dtype=bool)
    for key in anchors:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not 0 <= key < len(ids):
                raise PsychometricsError(f"anchors: column index {key} outside 0..{len(ids) - 1}")
            flags[int(key)] = True
        elif str(key) in ids:
            flags[ids.index(str(key))] = True
        else:
            raise PsychometricsError(f"anchors: unknown item id {key!r}")
    return flags


def calibrate_groups(
    responses,
    group,
    model="2pl",
    *,
    item_ids=None,
    anchors=None,
    reference=None,
    estimate_latent: bool = True,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
    max_iter: int = 500,
    tol: float = 1e-4,
    c_prior: tuple[float, float] | None = DEFAULT_C_PRIOR,
    a_prior: tuple[float, float] | None = None,
    standard_errors: bool = True,
    start: MultipleGroupCalibration | None = None,
) -> MultipleGroupCalibration:
    """Calibrate items in several groups at once (see the module docstring).

    Parameters
    ----------
    responses : (persons, items) scores, NaN where not presented.
    group : one group label per person (no missing labels).
    model : one model for all items, a list with one per item, or a mapping item id -> model.
    anchors : items invariant across groups (ids or column indices); default every item.
    reference : the group whose latent distribution is N(0, 1); default the first label in
        sorted order.
    estimate_latent : estimate the other groups' latent mean and SD (needs at least one anchor);
        False holds them at N(0, 1).
    standard_errors : observed-information SEs of the item parameters and latent means and SDs.
    start : a previous result on the same data whose estimates start the EM.
    """
    if isinstance(model, str):
        model = check_model(model)
    x = check_responses(responses, model=model if isinstance(model, str) else None)
    n_persons, n_items = x.shape
    ids = _item_ids(item_ids, n_items)
    spec = check_item_models(model, n_items, ids)
    models = per_item(spec, n_items)
    if not isinstance(spec, str):
        _check_dichotomous_columns(x, models)
    levels, gi = check_groups(group, n_persons, reference)
    n_groups = len(levels)
    anchored = _anchor_flags(anchors, ids)
    if estimate_latent and not anchored.any():
        raise PsychometricsError(
            "anchors: at least one anchor item is needed to estimate the groups' latent means"
            " and SDs (or pass estimate_latent=False)"
        )
    if int(max_iter) < 1 or not tol > 0:
        raise PsychometricsError("max_iter must be a positive integer and tol positive")
    n_cat = _categories(x, models)

    # virtual items: an anchor item once, a free item once per group
    cols = [(j, -1) if anchored[j] else (j, g) for j in range(n_items) for g in range(n_groups)]
    cols = list(dict.fromkeys(cols))
    vx = np.full((n_persons, len(cols)), np.nan)
    for e, (j, g) in enumerate(cols):
        rows = slice(None) if g < 0 else gi == g
        vx[rows, e] = x[rows, j]
    vmodels = tuple(models[j] for j, _ in cols)
    vspec = vmodels[0] if len(set(vmodels)) == 1 else vmodels
    vcat = n_cat[[j for j, _ in cols]]
    lo, hi = np.fmin.reduce(vx, axis=0), np.fmax.reduce(vx, axis=0)
    for e in np.flatnonzero((lo == hi) | np.isnan(lo)):
        j, g = cols[e]
        where = "" if g < 0 else f" in group {_label(levels[g])!r}"
        raise PsychometricsError(
            f"item {ids[j]!r}{where}: every response is the same; it cannot be calibrated"
            + ("" if g < 0 else " separately there (anchor it or leave it out)")
        )
    width = n_xi(vspec, vcat if not isinstance(vspec, str) else int(vcat.max()))
    pmap = build_parameter_map(vspec, vcat, width, np.ones(len(cols), dtype=bool))
    means, sds = np.zeros(n_groups), np.ones(n_groups)
    if start is not None:
        xi = np.zeros((len(cols), width))
        for e, (j, g) in enumerate(cols):
            xi[e, : start._xi.shape[2]] = start._xi[max(g, 0), j, :width]
        for k, level in enumerate(levels):
            means[k], sds[k] = start.latent_mean[level], start.latent_sd[level]
    else:
        xi = start_xi(vspec, vx, vcat, width)
    xi = pmap.unpack(pmap.pack(xi), xi)
    priors = ItemPriors(c_beta=c_prior if "3pl" in models else None, a_lognormal=a_prior)
    patterns = [collapse_patterns(vx[gi == g], vcat) for g in range(n_groups)]
    points = normal_quadrature(n_quad, bound).points

    def e_steps():
        logp = log_prob(vspec, xi, vcat, points)
        return [
            e_step(patterns[g], logp, normal_quadrature(n_quad, bound, means[g], sds[g]).weights)
            for g in range(n_groups)
        ]

    converged, change, iteration, last_ll = False, np.inf, 0, -np.inf
    for iteration in range(1, int(max_iter) + 1):
        steps = e_steps()
        ll = float(sum(s.loglik for s in steps))
        if not np.isfinite(ll):
            raise PsychometricsError(
                f"the log-likelihood became {ll} at EM cycle {iteration}; the data may be"
                " perfectly separated in a group (check items every person there answers alike)"
            )
        ll_change, last_ll = ll - last_ll, ll
        counts = sum(s.counts for s in steps)
        old = np.r_[pmap.pack(xi), means, sds]
        if estimate_latent:
            quad = normal_quadrature(n_quad, bound)
            for g in range(1, n_groups):
                means[g], sds[g] = posterior_moments(quad, steps[g].node_mass)
        xi = m_step(vspec, xi, vcat, points, counts, pmap, priors)
        change = float(np.abs(np.r_[pmap.pack(xi), means, sds] - old).max())
        # parameters and log-likelihood both settled: a crawl along a bound is not convergence
        if change < tol and abs(ll_change) <= LOGLIK_RTOL * (1 + abs(ll)):
            converged = True
            break
    loglik = float(sum(s.loglik for s in e_steps()))
    messages = []
    if not converged:
        messages.append(
            f"EM stopped after {iteration} iterations with max change {change:.2g} > tol {tol:g};"
            " estimates may be inaccurate"
        )
        warnings.warn(messages[-1], ConvergenceWarning, stacklevel=2)

    ses = None
    if standard_errors:
        latent_free = list(range(1, n_groups)) if estimate_latent else []
        cov = _covariance(
            vspec, xi, vcat, points, patterns, means, sds, pmap, priors, latent_free,
            n_quad, bound,
        )  # fmt: skip
        if cov is None:
            messages.append(
                "the observed information matrix is not positive definite: standard errors"
                " are not available"
            )
        else:
            ses = _group_standard_errors(
                cov, vmodels, xi, vcat, pmap, cols, levels, n_items, n_cat, latent_free
            )
    per_group = np.zeros((n_groups, n_items, width))
    for e, (j, g) in enumerate(cols):
        targets = range(n_groups) if g < 0 else [g]
        for t in targets:
            per_group[t, j] = xi[e]
    params = {}
    for k, level in enumerate(levels):
        a, b, c = irt_from_xi(spec, per_group[k], n_cat)
        params[level] = ItemParameters(spec, a, b, np.clip(c, 0.0, 1 - 1e-12), n_cat)
    return MultipleGroupCalibration(
        groups=levels,
        reference=levels[0],
        item_ids=ids,
        item_models=models,
        anchored=anchored,
        params=params,
        latent_mean={level: float(means[k]) for k, level in enumerate(levels)},
        latent_sd={level: float(sds[k]) for k, level in enumerate(levels)},
        loglik=loglik,
        n_params=pmap.n_free + (2 * (n_groups - 1) if estimate_latent else 0),
        n_persons={level: int((gi == k).sum()) for k, level in enumerate(levels)},
        converged=converged,
        iterations=iteration,
        max_change=change,
        messages=messages,
        **(ses or {}),
        _xi=per_group,
    )


def _gradient(vspec, xi, vcat, points, patterns, means, sds, pmap, priors, latent_free,
              n_quad, bound) -> np.ndarray:  # fmt: skip
    """Gradient of the marginal log-likelihood (posterior) in (phi, mu_g, sigma_g for g free)."""
    logp = log_prob(vspec, xi, vcat, points)
    counts = 0.0
    latent = []
    for g, pats in enumerate(patterns):
        w = normal_quadrature(n_quad, bound, means[g], sds[g]).weights
        est = e_step(pats, logp, w)
        counts = counts + est.counts
        if g in latent_free:
            z = (points - means[g]) / sds[g]
            d_mu = z / sds[g]
            d_sd = (z**2 - 1) / sds[g]
            latent += [est.node_mass @ (d_mu - w @ d_mu), est.node_mass @ (d_sd - w @ d_sd)]
    score = np.einsum("jkq,jmkq->jm", counts, dlogp(vspec, xi, vcat, points))
    if priors.active(vspec):
        score = score + priors.gradient(vspec, xi)
    free = pmap.index >= 0
    phi = np.bincount(pmap.index[free], weights=score[free], minlength=pmap.n_free)
    return np.r_[phi, latent]


def _covariance(vspec, xi, vcat, points, patterns, means, sds, pmap, priors, latent_free,
                n_quad, bound) -> np.ndarray | None:  # fmt: skip
    """Inverse of the negative Hessian, by central differences of :func:`_gradient`."""
    phi0 = pmap.pack(xi)
    lat0 = np.array([v for g in latent_free for v in (means[g], sds[g])])
    theta0 = np.r_[phi0, lat0]
    n_phi = phi0.size

    def grad(theta):
        mu, sd = means.copy(), sds.copy()
        for k, g in enumerate(latent_free):
            mu[g], sd[g] = theta[n_phi + 2 * k], theta[n_phi + 2 * k + 1]
        x = pmap.unpack(theta[:n_phi], xi)
        return _gradient(vspec, x, vcat, points, patterns, mu, sd, pmap, priors, latent_free,
                         n_quad, bound)  # fmt: skip

    hess = np.empty((theta0.size, theta0.size))
    for i in range(theta0.size):
        h = HESSIAN_STEP * max(1.0, abs(theta0[i]))
        up, dn = theta0.copy(), theta0.copy()
        up[i] += h
        dn[i] -= h
        hess[:, i] = (grad(up) - grad(dn)) / (2 * h)
    return covariance_from_information(-0.5 * (hess + hess.T))


def _group_standard_errors(cov, vmodels, xi, vcat, pmap, cols, levels, n_items, n_cat,
                           latent_free) -> dict:  # fmt: skip
    """SEs of each group's (a, b, c) and of the free groups' latent mean and SD."""
    n_phi = pmap.n_free
    se_a_v, se_b_v, se_c_v = _item_standard_errors(vmodels, xi, vcat, pmap, cov[:n_phi, :n_phi])
    poly = se_b_v.ndim == 2
    out = {"se_a": {}, "se_b": {}, "se_c": {}, "se_latent_mean": {}, "se_latent_sd": {}}
    for k, level in enumerate(levels):
        se_a = np.full(n_items, np.nan)
        se_b = np.full((n_items, se_b_v.shape[1]) if poly else n_items, np.nan)
        se_c = np.full(n_items, np.nan)
        for e, (j, g) in enumerate(cols):
            if g < 0 or g == k:
                se_a[j], se_b[j], se_c[j] = se_a_v[e], se_b_v[e], se_c_v[e]
        out["se_a"][level], out["se_b"][level], out["se_c"][level] = se_a, se_b, se_c
        out["se_latent_mean"][level] = np.nan
        out["se_latent_sd"][level] = np.nan
    diag = np.sqrt(np.maximum(np.diag(cov), 0.0))
    for k, g in enumerate(latent_free):
        out["se_latent_mean"][levels[g]] = float(diag[n_phi + 2 * k])
        out["se_latent_sd"][levels[g]] = float(diag[n_phi + 2 * k + 1])
    return out


@dataclass
class IRTDIFItem:
    """One studied item: G^2, df, p-value, and its parameters in each group when freed."""

    item: str
    statistic: float
    df: int
    p_value: float
    flagged: bool
    a: dict
    b: dict

    def to_dict(self) -> dict:
        return {
            "item": self.item,
            "statistic": self.statistic,
            "df": self.df,
            "p_value": self.p_value,
            "flagged": self.flagged,
            "a": {str(_label(k)): float(v) for k, v in self.a.items()},
            "b": {str(_label(k)): np.atleast_1d(v).tolist() for k, v in self.b.items()},
        }


@dataclass
class IRTLikelihoodRatioDIF:
    """The invariant baseline and one :class:`IRTDIFItem` per studied item."""

    baseline: MultipleGroupCalibration
    items: list[IRTDIFItem]
    alpha: float

    @property
    def flagged(self) -> list[str]:
        return [r.item for r in self.items if r.flagged]

    def to_dict(self) -> dict:
        return {
            "alpha": self.alpha,
            "flagged": self.flagged,
            "items": [r.to_dict() for r in self.items],
            "baseline": self.baseline.to_dict(),
        }


def irt_lr_dif(
    responses,
    group,
    model="2pl",
    *,
    items=None,
    item_ids=None,
    reference=None,
    alpha: float = 0.05,
    **options,
) -> IRTLikelihoodRatioDIF:
    """IRT likelihood-ratio DIF: free each studied item in turn against the all-anchored model.

    ``items`` are the studied items (ids or indices; default all); ``options`` go to
    :func:`calibrate_groups` (quadrature, tolerances, priors). An item is flagged when its
    p-value is below ``alpha`` (no multiplicity adjustment; apply one to ``p_value`` if wanted).
    """
    if not 0 < alpha < 1:
        raise PsychometricsError(f"alpha must lie in (0, 1), got {alpha!r}")
    options.setdefault("standard_errors", False)
    base = calibrate_groups(
        responses, group, model, item_ids=item_ids, reference=reference, **options
    )
    ids = base.item_ids
    studied = np.flatnonzero(_anchor_flags(items, ids)) if items is not None else range(len(ids))
    rows = []
    for j in studied:
        anchors = [k for k in range(len(ids)) if k != j]
        fit = calibrate_groups(
            responses,
            group,
            model,
            item_ids=ids,
            reference=base.reference,
            anchors=anchors,
            start=base,
            **options,
        )
        g2 = max(0.0, 2.0 * (fit.loglik - base.loglik))
        df = fit.n_params - base.n_params
        p = float(stats.chi2.sf(g2, df))
        rows.append(
            IRTDIFItem(
                item=ids[j],
                statistic=g2,
                df=int(df),
                p_value=p,
                flagged=p < alpha,
                a={g: float(fit.params[g].a[j]) for g in fit.groups},
                b={g: fit.params[g].b[j] for g in fit.groups},
            )
        )
    return IRTLikelihoodRatioDIF(baseline=base, items=rows, alpha=alpha)


__all__ = [
    "IRTDIFItem",
    "IRTLikelihoodRatioDIF",
    "MultipleGroupCalibration",
    "calibrate_groups",
    "check_groups",
    "irt_lr_dif",
]
