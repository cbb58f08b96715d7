"""Marginal maximum likelihood estimation of item parameters by EM (Bock & Aitkin, 1981).

E-step: with item parameters fixed, the posterior weight of each response pattern u at quadrature
node X_q is  w_uq = L_u(X_q) A_q / sum_q' L_u(X_q') A_q',  where
``log L_u(X_q) = sum_j sum_k [x_uj = k] log P_jk(X_q)``. For all patterns at once this is a handful
of matrix products: ``LL = M @ log P_0 + sum_{k>=1} Y_k @ (log P_k - log P_0)`` with ``Y_k`` the
(patterns x items) indicator of score k and ``M`` the presented-item mask (omitted when nothing is
missing). Items not presented contribute nothing, so sparse designs need no imputation. The
expected counts are ``r_jkq = sum_u f_u w_uq [x_uj = k]`` = ``Y_k^T (f * W)``.

M-step: every item maximises ``sum_kq r_jkq log P_jk(X_q)`` (plus a log prior for Bayes modal
estimation) by Fisher scoring in slope-intercept form, vectorised across items. Parameters shared
between items (the common slope of the 1PL) and parameters held fixed (fixed-parameter
calibration, degenerate items) are handled by a map from the (J, m) array ``xi`` to the free
parameter vector ``phi``; the M-step works on ``phi``, so constraints cost nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from psychometrics.data import ResponsePatterns
from psychometrics.irt.models import (
    COMMON_SLOPE_MODELS,
    DICHOTOMOUS_MODELS,
    log_prob,
    model_groups,
    n_xi,
    per_item,
)
from psychometrics.irt.priors import ItemPriors
from psychometrics.irt.quadrature import Quadrature, normal_quadrature, posterior_moments

# Bounds that keep a runaway item (a Guttman item, an unobserved category) finite
XI_BOUND_SLOPE = 20.0
XI_BOUND_INTERCEPT = 50.0
XI_BOUND_LOGIT_C = (-12.0, 3.0)
DERIV_STEP = 1e-6

ProgressCallback = Callable[[int, float, float], None]


@dataclass
class ParameterMap:
    """``index[j, m]`` is the position of ``xi[j, m]`` in the free vector ``phi``, or -1."""

    index: np.ndarray

    @property
    def n_free(self) -> int:
        return int(self.index.max()) + 1 if (self.index >= 0).any() else 0

    def pack(self, xi: np.ndarray) -> np.ndarray:
        phi = np.zeros(self.n_free)
        free = self.index >= 0
        phi[self.index[free]] = xi[free]
        return phi

    def unpack(self, phi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        out = xi.copy()
        free = self.index >= 0
        out[free] = phi[self.index[free]]
        return out

    def design(self) -> np.ndarray:
        """Dense 0/1 matrix T with ``vec(xi)[free] = T @ phi`` (rows over all J*m slots)."""
        flat = self.index.reshape(-1)
        t = np.zeros((flat.size, self.n_free))
        rows = np.flatnonzero(flat >= 0)
        t[rows, flat[rows]] = 1.0
        return t


def build_parameter_map(
    model,
    n_cat: np.ndarray,
    width: int,
    free_items: np.ndarray,
    shared_slope_free: bool = True,
) -> ParameterMap:
    """Free parameters of ``model`` (one name, or one per item) for the items in ``free_items``.

    1PL/Rasch/PCM/RSM: one slope shared by all free items of these models plus their intercepts.
    2PL: (a, d). 3PL: (a, d, logit c). GRM/GPCM: a and one intercept per category boundary.
    RSM: the item intercept c_j, and step intercepts e_2..e_{K-1} shared by every rating-scale
    item (e_1 = 0 identifies them). With ``shared_slope_free=False`` the common slope stays at its
    current value (a Rasch calibration onto a scale fixed by anchor items).
    """
    j = n_cat.size
    models = per_item(model, j)
    index = np.full((j, width), -1, dtype=int)
    nxt = 0
    shared = np.array([m in COMMON_SLOPE_MODELS for m in models], dtype=bool)
    if shared_slope_free and (free_items & shared).any():
        index[free_items & shared, 0] = 0
        nxt = 1
    rsm_steps: dict[int, int] = {}
    for item in np.flatnonzero(free_items):
        m = models[item]
        cols = range(1 if shared[item] else 0, n_xi(m, int(n_cat[item])))
        for col in cols:
            if m == "rsm" and col >= 2:
                if col == 2:
                    continue  # e_1 = 0
                if col not in rsm_steps:
                    rsm_steps[col] = nxt
                    nxt += 1
                index[item, col] = rsm_steps[col]
                continue
            if m not in DICHOTOMOUS_MODELS and col >= n_cat[item]:
                continue
            index[item, col] = nxt
            nxt += 1
    return ParameterMap(index)


@dataclass
class EStep:
    loglik: float
    posterior: np.ndarray  # (U, Q) posterior weights per pattern, rows sum to one
    counts: np.ndarray  # (J, K, Q) expected counts r_jkq
    node_mass: np.ndarray  # (Q,) expected number of persons at each node


def pattern_loglik(patterns: ResponsePatterns, logp: np.ndarray) -> np.ndarray:
    """log L_u(X_q) for every pattern and node, shape (U, Q)."""
    base = logp[:, 0, :]
    if patterns.observed is None:
        ll = np.broadcast_to(base.sum(axis=0), (patterns.codes.shape[0], base.shape[1])).copy()
    else:
        ll = patterns.observed @ base
    for k, y in enumerate(patterns.indicators, start=1):
        ll += y @ (logp[:, k, :] - base)
    return ll


def e_step(patterns: ResponsePatterns, logp: np.ndarray, weights: np.ndarray) -> EStep:
    """Posterior weights, marginal log-likelihood and expected counts (see module docstring)."""
    ll = pattern_loglik(patterns, logp)
    with np.errstate(divide="ignore"):
        ll += np.log(weights)
    mx = ll.max(axis=1, keepdims=True)
    np.subtract(ll, mx, out=ll)
    np.exp(ll, out=ll)
    total = ll.sum(axis=1)
    loglik = float(patterns.freq @ (np.log(total) + mx[:, 0]))
    ll /= total[:, None]
    post = ll
    fw = post * patterns.freq[:, None]
    j, k_max, q = logp.shape
    counts = np.empty((j, k_max, q))
    node_mass = fw.sum(axis=0)
    n_jq = (
        np.broadcast_to(node_mass, (j, q))
        if patterns.observed is None
        else (patterns.observed.T @ fw)
    )
    rest = np.array(n_jq, copy=True)
    for k, y in enumerate(patterns.indicators, start=1):
        counts[:, k, :] = y.T @ fw
        rest -= counts[:, k, :]
    counts[:, 0, :] = np.maximum(rest, 0.0)
    return EStep(loglik=loglik, posterior=post, counts=counts, node_mass=node_mass)


def dlogp(model: str, xi: np.ndarray, n_cat: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """d log P_jk(theta_q) / d xi_jm, all items at once: (J, m, K, Q).

    Closed form for the dichotomous models (z = a theta + d, s = logistic(z), c = logistic(g)):
    dP/da = (1 - c) s (1 - s) theta, dP/dd = (1 - c) s (1 - s), dP/dg = c (1 - c)(1 - s), and
    d log P_1 = dP / P, d log P_0 = -dP / (1 - P). Central differences for GRM and GPCM.
    With one model per item the parts are computed model by model and padded.
    """
    if not isinstance(model, str):
        return _per_model(model, xi, n_cat, lambda m, x, nc: dlogp(m, x, nc, theta))
    if model in DICHOTOMOUS_MODELS:
        return _dlogp_dichotomous(model, xi, theta)
    j, m = xi.shape
    out = None
    for col in range(m):
        up = xi.copy()
        dn = xi.copy()
        up[:, col] += DERIV_STEP
        dn[:, col] -= DERIV_STEP
        diff = (log_prob(model, up, n_cat, theta) - log_prob(model, dn, n_cat, theta)) / (
            2 * DERIV_STEP
        )
        if out is None:
            out = np.empty((j, m) + diff.shape[1:])
        out[:, col] = diff
    return out


def _dlogp_dichotomous(model: str, xi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    j, m = xi.shape
    z = xi[:, :1] * theta + xi[:, 1:2]
    s = expit(z)
    out = np.empty((j, m, 2, theta.size))
    if model == "3pl":
        c = expit(xi[:, 2:3])
        p = c + (1 - c) * s
        q = (1 - c) * (1 - s)  # 1 - P without cancellation
        dz = (1 - c) * s * (1 - s)
        dg = c * (1 - c) * (1 - s)
        inv_p = 1 / p
        out[:, 2, 1] = dg * inv_p
        out[:, 2, 0] = -dg / q
        # dP/dz / (1 - P) = s, exactly
        out[:, 0, 1] = dz * inv_p * theta
        out[:, 1, 1] = dz * inv_p
        out[:, 0, 0] = -s * theta
        out[:, 1, 0] = -s
        return out
    out[:, 0, 1] = (1 - s) * theta
    out[:, 1, 1] = 1 - s
    out[:, 0, 0] = -s * theta
    out[:, 1, 0] = -s
    return out


def item_objective(
    model: str,
    xi: np.ndarray,
    n_cat: np.ndarray,
    theta: np.ndarray,
    counts: np.ndarray,
    priors: ItemPriors,
) -> np.ndarray:
    """Per-item expected complete-data log-likelihood plus log prior, shape (J,)."""
    lp = log_prob(model, xi, n_cat, theta)
    obj = np.einsum("jkq,jkq->j", counts, lp)
    if priors.active(model):
        obj = obj + priors.logpdf(model, xi)
    return obj


def _per_model(model, xi: np.ndarray, n_cat: np.ndarray, fn) -> np.ndarray:
    """``fn(model_g, xi_g, n_cat_g)`` per model group, laid into one array padded with zeros
    (axis 1 to the width of ``xi``, axis 2 to the most categories)."""
    out = None
    for m, idx in model_groups(model, n_cat.size):
        width = n_xi(m, int(n_cat[idx].max()))
        part = fn(m, xi[idx, :width], n_cat[idx])
        if out is None:
            shape = list(part.shape)
            shape[0] = n_cat.size
            if len(shape) > 1:
                shape[1] = xi.shape[1]
            if len(shape) > 2:
                shape[2] = int(n_cat.max())
            out = np.zeros(shape)
        out[(idx,) + tuple(slice(0, k) for k in part.shape[1:])] = part
    return out


def clip_xi(model, xi: np.ndarray) -> np.ndarray:
    if not isinstance(model, str):
        out = xi.copy()
        for m, idx in model_groups(model, xi.shape[0]):
            out[idx] = clip_xi(m, xi[idx])
        return out
    out = xi.copy()
    out[:, 0] = np.clip(out[:, 0], -XI_BOUND_SLOPE, XI_BOUND_SLOPE)
    if model == "3pl":
        out[:, 1] = np.clip(out[:, 1], -XI_BOUND_INTERCEPT, XI_BOUND_INTERCEPT)
        out[:, 2] = np.clip(out[:, 2], *XI_BOUND_LOGIT_C)
    else:
        out[:, 1:] = np.clip(out[:, 1:], -XI_BOUND_INTERCEPT, XI_BOUND_INTERCEPT)
    return out


def m_step(
    model: str,
    xi: np.ndarray,
    n_cat: np.ndarray,
    theta: np.ndarray,
    counts: np.ndarray,
    pmap: ParameterMap,
    priors: ItemPriors,
    n_steps: int = 1,
    tol: float = 1e-7,
) -> np.ndarray:
    """Fisher-scoring ascent of the expected complete-data log-posterior over free parameters."""
    if pmap.n_free == 0:
        return xi
    free = pmap.index >= 0
    n_jq = counts.sum(axis=1)
    # pairs (j, m, n) of free slots of the same item, scattered into the phi information matrix
    jj, mm, nn = np.nonzero(free[:, :, None] & free[:, None, :])
    rows, cols = pmap.index[jj, mm], pmap.index[jj, nn]
    phi = pmap.pack(xi)
    obj = item_objective(model, xi, n_cat, theta, counts, priors).sum()
    for _ in range(n_steps):
        d = dlogp(model, xi, n_cat, theta)
        p = np.exp(log_prob(model, xi, n_cat, theta))
        score_xi = np.einsum("jkq,jmkq->jm", counts, d)
        # expected information sum_q n_jq sum_k P_jkq D_jmkq D_jnkq as one batched product
        root = d * np.sqrt(n_jq[:, None, None, :] * p[:, None, :, :])
        root = root.reshape(root.shape[0], root.shape[1], -1)
        info_xi = root @ root.transpose(0, 2, 1)
        if priors.active(model):
            score_xi += priors.gradient(model, xi)
            info_xi[:, np.arange(xi.shape[1]), np.arange(xi.shape[1])] += priors.neg_hessian_diag(
                model, xi
            )
        score = np.bincount(pmap.index[free], weights=score_xi[free], minlength=pmap.n_free)
        info = np.zeros((pmap.n_free, pmap.n_free))
        np.add.at(info, (rows, cols), info_xi[jj, mm, nn])
        info[np.diag_indices_from(info)] += 1e-8 * (1 + np.abs(np.diag(info)))
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            step = score / np.maximum(np.diag(info), 1e-8)
        biggest = np.abs(step).max()
        if biggest > 1.0:
            step /= biggest
        for _halving in range(12):
            cand = clip_xi(model, pmap.unpack(phi + step, xi))
            cand_obj = item_objective(model, cand, n_cat, theta, counts, priors).sum()
            if np.isfinite(cand_obj) and cand_obj >= obj - 1e-9 * abs(obj):
                break
            step /= 2
        else:
            break
        phi = pmap.pack(cand)
        xi, obj = cand, cand_obj
        if np.abs(step).max() < tol:
            break
    return xi


@dataclass
class EMResult:
    xi: np.ndarray
    loglik: float
    iterations: int
    converged: bool
    max_change: float
    latent_mean: float
    latent_sd: float
    estep: EStep
    quadrature: Quadrature


def run_em(
    model: str,
    patterns: ResponsePatterns,
    xi: np.ndarray,
    pmap: ParameterMap,
    *,
    priors: ItemPriors,
    n_quad: int,
    bound: float,
    max_iter: int,
    tol: float,
    estimate_latent: bool = False,
    progress: ProgressCallback | None = None,
) -> EMResult:
    """Iterate E- and M-steps until the largest change in a free parameter is below ``tol``.

    With ``estimate_latent`` (fixed-parameter calibration) the latent mean and SD are updated
    each cycle from the posterior node masses, the "multiple weights updating" scheme of
    Kim (2006), so pretest items land on the operational scale.
    """
    n_cat = patterns.n_cat
    quad = normal_quadrature(n_quad, bound)
    mean, sd = 0.0, 1.0
    phi = pmap.pack(xi)
    converged = False
    change = np.inf
    iteration = 0
    estep = None
    for iteration in range(1, max_iter + 1):
        logp = log_prob(model, xi, n_cat, quad.points)
        estep = e_step(patterns, logp, quad.weights)
        if estimate_latent:
            mean, sd = posterior_moments(quad, estep.node_mass)
            quad = normal_quadrature(n_quad, bound, mean, sd)
        xi = m_step(model, xi, n_cat, quad.points, estep.counts, pmap, priors)
        new_phi = pmap.pack(xi)
        change = float(np.abs(new_phi - phi).max()) if phi.size else 0.0
        phi = new_phi
        if progress is not None:
            progress(iteration, estep.loglik, change)
        if change < tol:
            converged = True
            break
    logp = log_prob(model, xi, n_cat, quad.points)
    estep = e_step(patterns, logp, quad.weights)
    return EMResult(
        xi=xi,
        loglik=estep.loglik,
        iterations=iteration,
        converged=converged,
        max_change=change,
        latent_mean=mean,
        latent_sd=sd,
        estep=estep,
        quadrature=quad,
    )
