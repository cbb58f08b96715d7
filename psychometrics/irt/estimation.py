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
# EM stops only when the log-likelihood also changes by less than this, relative (see run_em)
LOGLIK_RTOL = 1e-8

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

    def without(self, held: np.ndarray) -> ParameterMap:
        """The map with the slots flagged in ``held`` (J, m) fixed, free positions renumbered."""
        index = np.where(held, -1, self.index)
        kept = np.unique(index[index >= 0])
        renumber = np.full(self.n_free, -1)
        renumber[kept] = np.arange(kept.size)
        return ParameterMap(np.where(index >= 0, renumber[np.maximum(index, 0)], -1))

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
    posterior: np.ndarray | None  # (U, Q) posterior weights per pattern (None if not kept)
    counts: np.ndarray  # (J, K, Q) expected counts r_jkq
    node_mass: np.ndarray  # (Q,) expected number of persons at each node


# patterns per E-step block: the (block, Q) work arrays stay near 16 MB however many persons
E_STEP_BLOCK_CELLS = 2_000_000


def _stacked_indicators(patterns: ResponsePatterns) -> np.ndarray | None:
    """[Y_1 | Y_2 | ... | Y_{K-1}], (U, J (K-1)): one matrix product serves every category.
    Built once per pattern set (a 0/1 test needs no copy: it is Y_1 itself)."""
    if not patterns.indicators:
        return None
    if len(patterns.indicators) == 1:
        return patterns.indicators[0]
    cached = getattr(patterns, "_stacked", None)
    if cached is None:
        cached = np.hstack(patterns.indicators)
        patterns._stacked = cached  # type: ignore[attr-defined]
    return cached


def _category_contrasts(logp: np.ndarray) -> np.ndarray:
    """(J (K-1), Q): log P_k - log P_0 for k = 1..K-1, stacked k-major like the indicators."""
    diff = logp[:, 1:, :] - logp[:, :1, :]
    return np.ascontiguousarray(diff.transpose(1, 0, 2)).reshape(-1, logp.shape[2])


def pattern_loglik(
    patterns: ResponsePatterns, logp: np.ndarray, rows: slice | None = None
) -> np.ndarray:
    """log L_u(X_q) for every pattern (or the patterns in ``rows``) and node, shape (U, Q)."""
    rows = rows if rows is not None else slice(None)
    base = logp[:, 0, :]
    n = patterns.codes[rows].shape[0]
    if patterns.observed is None:
        ll = np.broadcast_to(base.sum(axis=0), (n, base.shape[1])).copy()
    else:
        ll = patterns.observed[rows] @ base
    y = _stacked_indicators(patterns)
    if y is not None:
        ll += y[rows] @ _category_contrasts(logp)
    return ll


@dataclass
class _PosteriorSetup:
    y: np.ndarray | None
    contrasts: np.ndarray
    base: np.ndarray
    offset: np.ndarray
    # (coefficients (R, 2), basis (2, Q)) when contrasts = coefficients @ basis, else None
    factors: tuple[np.ndarray, np.ndarray] | None = None


# contrasts reproduced by a rank-2 factorisation to this (relative) accuracy are replaced by it
FACTOR_RTOL = 1e-12


def _linear_factors(contrasts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(coef, basis)`` with ``contrasts = coef @ basis`` and basis rows (t_q, 1), when every row
    of the contrasts is linear in one node variable t, else None.

    For the 2PL, 1PL and Rasch, log P_1 - log P_0 = a theta + d; for the GPCM, PCM and RSM,
    log P_k - log P_0 = k a theta + sum of intercepts: both linear in theta. The E-step product
    ``Y @ contrasts`` (patterns x items x nodes) then becomes ``(Y @ coef) @ basis`` (patterns x
    items x 2), a factor of Q/2 less work, with the same values to rounding. The test is
    numerical (a least-squares fit checked entry by entry), so a floored log-probability or a
    3PL or GRM item simply keeps the full product.
    """
    r, q = contrasts.shape
    if r == 0 or q < 3 or not np.isfinite(contrasts).all():
        return None
    spread = contrasts.max(axis=1) - contrasts.min(axis=1)
    row = int(np.argmax(spread))
    if not spread[row] > 0:
        return None
    t = contrasts[row] - contrasts[row].mean()
    basis = np.vstack([t / np.abs(t).max(), np.ones(q)])
    coef = np.linalg.lstsq(basis.T, contrasts.T, rcond=None)[0].T  # (R, 2)
    resid = np.abs(coef @ basis - contrasts).max()
    if not resid <= FACTOR_RTOL * (1.0 + np.abs(contrasts).max()):
        return None
    return coef, basis


def _posterior_setup(patterns: ResponsePatterns, logp: np.ndarray, weights: np.ndarray):
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    base = logp[:, 0, :]
    y = _stacked_indicators(patterns)
    contrasts = _category_contrasts(logp)
    return _PosteriorSetup(
        y=y,
        contrasts=contrasts,
        base=base,
        offset=log_w + (base.sum(axis=0) if patterns.observed is None else 0.0),
        factors=None if y is None else _linear_factors(contrasts),
    )


def posterior_blocks(patterns: ResponsePatterns, logp: np.ndarray):
    """Row slices of the pattern blocks the E-step works on (about E_STEP_BLOCK_CELLS each)."""
    j, k_max, q = logp.shape
    n_pat = patterns.codes.shape[0]
    block = max(1, E_STEP_BLOCK_CELLS // max(q, j * (k_max - 1), 1))
    for start in range(0, n_pat, block):
        yield slice(start, min(n_pat, start + block))


def _block_likelihood(patterns: ResponsePatterns, prep: _PosteriorSetup, rows: slice):
    """exp(log L_u(X_q) + log A_q - max_q) for the patterns in ``rows`` (a fresh array), with
    its row sums and row maxima, and the block's float64 indicators and mask."""
    y_blk = None if prep.y is None else prep.y[rows].astype(float)  # float32 storage, float64 work
    o_blk = None if patterns.observed is None else patterns.observed[rows].astype(float)
    if y_blk is not None:
        if prep.factors is not None:
            ll = (y_blk @ prep.factors[0]) @ prep.factors[1]
        else:
            ll = y_blk @ prep.contrasts
        if o_blk is not None:
            ll += o_blk @ prep.base
    elif o_blk is not None:
        ll = o_blk @ prep.base
    else:
        ll = np.zeros((rows.stop - rows.start, prep.offset.size))
    ll += prep.offset
    mx = ll.max(axis=1, keepdims=True)
    ll -= mx
    np.exp(ll, out=ll)
    return ll, ll.sum(axis=1), mx, y_blk, o_blk


def block_posterior(
    patterns: ResponsePatterns, logp: np.ndarray, weights: np.ndarray, rows: slice
) -> np.ndarray:
    """Posterior weights w_uq of the patterns in ``rows`` only, computed exactly as
    :func:`e_step` computes them (callers that need the posterior of 100,000 patterns take it a
    block at a time instead of holding the whole (U, Q) array)."""
    ll, total, _, _, _ = _block_likelihood(patterns, _posterior_setup(patterns, logp, weights), rows)
    return np.divide(ll, total[:, None], out=ll)


def e_step(
    patterns: ResponsePatterns,
    logp: np.ndarray,
    weights: np.ndarray,
    keep_posterior: bool = True,
) -> EStep:
    """Posterior weights, marginal log-likelihood and expected counts (see module docstring).

    Patterns are processed in blocks, so without ``keep_posterior`` (the EM loop) memory is
    bounded by a block however many persons there are; the counts of all categories k >= 1
    come from one matrix product ``[Y_1 | ... | Y_{K-1}]^T (f * W)``.
    """
    j, k_max, q = logp.shape
    n_pat = patterns.codes.shape[0]
    prep = _posterior_setup(patterns, logp, weights)
    post_all = np.empty((n_pat, q)) if keep_posterior else None
    upper = np.zeros((prep.contrasts.shape[0], q))
    n_jq = np.zeros((j, q)) if patterns.observed is not None else None
    node_mass = np.zeros(q)
    loglik = 0.0
    for rows in posterior_blocks(patterns, logp):
        ll, total, mx, y_blk, o_blk = _block_likelihood(patterns, prep, rows)
        freq = patterns.freq[rows]
        loglik += float(freq @ (np.log(total) + mx[:, 0]))
        if post_all is not None:
            np.divide(ll, total[:, None], out=post_all[rows])
        fw = np.multiply(ll, (freq / total)[:, None], out=ll)  # f_u w_uq in one pass
        node_mass += fw.sum(axis=0)
        if y_blk is not None:
            upper += y_blk.T @ fw
        if o_blk is not None:
            n_jq += o_blk.T @ fw
    counts = np.empty((j, k_max, q))
    if k_max > 1:
        counts[:, 1:, :] = upper.reshape(k_max - 1, j, q).transpose(1, 0, 2)
    rest = np.broadcast_to(node_mass, (j, q)) if n_jq is None else n_jq
    counts[:, 0, :] = np.maximum(rest - counts[:, 1:, :].sum(axis=1), 0.0)
    return EStep(loglik=loglik, posterior=post_all, counts=counts, node_mass=node_mass)


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
        dz = (1 - c) * s * (1 - s)
        dg = c * (1 - c) * (1 - s)
        inv_p = 1 / p
        out[:, 2, 1] = dg * inv_p
        out[:, 2, 0] = -c  # d log[(1 - c)(1 - s)] / dg, exactly (no 0/0 where s rounds to 1)
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
    # a subset of a mixed test may have fewer categories than the counts array holds
    obj = np.einsum("jkq,jkq->j", counts[:, : lp.shape[1]], lp)
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


def three_pl_rows(model, n_items: int) -> np.ndarray:
    """(J,) flags: the items whose column 2 is logit(c) (the 3PL items)."""
    if isinstance(model, str):
        return np.full(n_items, model == "3pl")
    return np.array([m == "3pl" for m in per_item(model, n_items)], dtype=bool)


def xi_bounds(model, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of every slot of ``xi`` (J, m): slopes +-20, intercepts +-50 and,
    for 3PL items, logit(c) in [-12, 3] (c between 6e-6, zero for practical purposes, and .95).
    ``model`` is one name or one per item.
    """
    lo = np.full(xi.shape, -XI_BOUND_INTERCEPT)
    hi = np.full(xi.shape, XI_BOUND_INTERCEPT)
    lo[:, 0], hi[:, 0] = -XI_BOUND_SLOPE, XI_BOUND_SLOPE
    guess = three_pl_rows(model, xi.shape[0])
    if guess.any():
        lo[guess, 2], hi[guess, 2] = XI_BOUND_LOGIT_C
    return lo, hi


def clip_xi(model, xi: np.ndarray) -> np.ndarray:
    lo, hi = xi_bounds(model, xi)
    return np.clip(xi, lo, hi)


def at_bound(model, xi: np.ndarray, free: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """(J, m) flags: a free slot that sits on its bound."""
    lo, hi = xi_bounds(model, xi)
    span = rtol * (hi - lo)
    return free & ((xi <= lo + span) | (xi >= hi - span))


def _item_information(model, xi, n_cat, theta, counts, priors):
    """Score (J, m) and expected information (J, m, m) of the M-step objective per item."""
    n_jq = counts.sum(axis=1)
    d = dlogp(model, xi, n_cat, theta)
    p = np.exp(log_prob(model, xi, n_cat, theta))
    score = np.einsum("jkq,jmkq->jm", counts, d)
    # expected information sum_q n_jq sum_k P_jkq D_jmkq D_jnkq as one batched product
    root = d * np.sqrt(n_jq[:, None, None, :] * p[:, None, :, :])
    root = root.reshape(root.shape[0], root.shape[1], -1)
    info = root @ root.transpose(0, 2, 1)
    if priors.active(model):
        score += priors.gradient(model, xi)
        m = xi.shape[1]
        info[:, np.arange(m), np.arange(m)] += priors.neg_hessian_diag(model, xi)
    return score, info


def _pinned(model, xi, score, free):
    """Active set of the bound constraints (Bertsekas, 1982, projected Newton): free slots on a
    bound whose gradient points out of the box. They are held where they are for this step, so
    an asymptote heading to 0 cannot dictate the step of the item's slope and intercept."""
    lo, hi = xi_bounds(model, xi)
    span = 1e-9 * (hi - lo)
    return free & (((xi <= lo + span) & (score < 0)) | ((xi >= hi - span) & (score > 0)))


def _limit_step(model, step: np.ndarray) -> np.ndarray:
    """Trust region per item (not one scale for all items): each item's step is shrunk as a
    whole, keeping its Newton direction (an ascent direction), until no slope or intercept moves
    by more than 1 and logit(c) by no more than 3. Slots pinned at a bound take no part."""
    cap = np.ones(step.shape)
    cap[three_pl_rows(model, step.shape[0]), 2:3] = 3.0
    ratio = (np.abs(step) / cap).max(axis=1, keepdims=True)
    return step / np.maximum(ratio, 1.0)


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
    """Projected Fisher scoring of the expected complete-data log-posterior over free parameters.

    Every item's objective depends on its own parameters only, so unless a parameter is shared
    between items (the common 1PL slope) each item takes its own Newton step, trust limit and
    step-halving line search. Bounds are handled by an active set and projection (Bertsekas,
    1982): a slot on its bound with the gradient pointing outward is held fixed and dropped from
    that item's Newton system; the other slots step and are projected back into the box.
    """
    if pmap.n_free == 0:
        return xi
    free = pmap.index >= 0
    shared = np.bincount(pmap.index[free], minlength=pmap.n_free).max() > 1
    for _ in range(n_steps):
        with np.errstate(all="ignore"):
            if shared:
                xi, moved = _shared_step(model, xi, n_cat, theta, counts, pmap, priors)
            else:
                xi, moved = _itemwise_step(model, xi, n_cat, theta, counts, free, priors)
        if moved < tol:
            break
    return xi


def _itemwise_step(model, xi, n_cat, theta, counts, free, priors):
    score, info = _item_information(model, xi, n_cat, theta, counts, priors)
    move = free & ~_pinned(model, xi, score, free)
    m = xi.shape[1]
    eye = np.broadcast_to(np.eye(m), info.shape)
    both = move[:, :, None] & move[:, None, :]
    system = np.where(both, info, eye)
    diag = np.arange(m)
    system[:, diag, diag] += np.where(move, 1e-8 * (1 + np.abs(info[:, diag, diag])), 0.0)
    rhs = np.where(move, score, 0.0)
    ok = np.isfinite(system).all(axis=(1, 2)) & np.isfinite(rhs).all(axis=1)
    step = np.zeros_like(xi)
    if ok.any():
        try:
            step[ok] = np.linalg.solve(system[ok], rhs[ok][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step[ok] = rhs[ok] / np.maximum(np.abs(system[ok][:, diag, diag]), 1e-8)
    step = np.where(move & np.isfinite(step), step, 0.0)
    step = _limit_step(model, step)
    obj = item_objective(model, xi, n_cat, theta, counts, priors)
    todo = np.flatnonzero(np.abs(step).max(axis=1) > 0)
    out = xi.copy()
    for _halving in range(20):
        if todo.size == 0:
            break
        sub = model if isinstance(model, str) else tuple(model[i] for i in todo)
        cand = clip_xi(sub, xi[todo] + step[todo])
        cand_obj = item_objective(sub, cand, n_cat[todo], theta, counts[todo], priors)
        good = np.isfinite(cand_obj) & (cand_obj >= obj[todo] - 1e-12 * np.abs(obj[todo]))
        out[todo[good]] = cand[good]
        todo = todo[~good]
        step[todo] /= 2
    return out, float(np.abs(out - xi).max())


def _shared_step(model, xi, n_cat, theta, counts, pmap, priors):
    """One projected Fisher-scoring step on the full free vector (parameters shared by items)."""
    free = pmap.index >= 0
    score_xi, info_xi = _item_information(model, xi, n_cat, theta, counts, priors)
    jj, mm, nn = np.nonzero(free[:, :, None] & free[:, None, :])
    rows, cols = pmap.index[jj, mm], pmap.index[jj, nn]
    score = np.bincount(pmap.index[free], weights=score_xi[free], minlength=pmap.n_free)
    info = np.zeros((pmap.n_free, pmap.n_free))
    np.add.at(info, (rows, cols), info_xi[jj, mm, nn])
    info[np.diag_indices_from(info)] += 1e-8 * (1 + np.abs(np.diag(info)))
    phi = pmap.pack(xi)
    lo, hi = xi_bounds(model, xi)
    lo_phi, hi_phi = pmap.pack(lo), pmap.pack(hi)
    span = 1e-9 * (hi_phi - lo_phi)
    pinned = ((phi <= lo_phi + span) & (score < 0)) | ((phi >= hi_phi - span) & (score > 0))
    move = ~pinned & np.isfinite(score)
    step = np.zeros_like(phi)
    sub = info[np.ix_(move, move)]
    if move.any() and np.isfinite(sub).all():
        try:
            step[move] = np.linalg.solve(sub, score[move])
        except np.linalg.LinAlgError:
            step[move] = score[move] / np.maximum(np.diag(sub), 1e-8)
    step = np.where(np.isfinite(step), step, 0.0)
    biggest = np.abs(step).max() if step.size else 0.0
    if biggest > 1.0:
        step /= biggest
    obj = item_objective(model, xi, n_cat, theta, counts, priors).sum()
    for _halving in range(20):
        cand = clip_xi(model, pmap.unpack(phi + step, xi))
        cand_obj = item_objective(model, cand, n_cat, theta, counts, priors).sum()
        if np.isfinite(cand_obj) and cand_obj >= obj - 1e-12 * abs(obj):
            return cand, float(np.abs(cand - xi).max())
        step /= 2
    return xi, 0.0


def _squarem_point(cycle: list[np.ndarray], alpha_max: float):
    """SQUAREM's extrapolated point from three successive EM iterates (scheme S3), or None."""
    r = cycle[1] - cycle[0]
    v = cycle[2] - 2 * cycle[1] + cycle[0]
    vv = float(v @ v)
    if not vv > 0 or not np.isfinite(vv):
        return None
    alpha = -np.sqrt(float(r @ r) / vv)
    alpha = float(np.clip(alpha, -alpha_max, -1.0))
    return cycle[0] - 2 * alpha * r + alpha**2 * v, alpha


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
    loglik_change: float = np.inf
    non_finite: int = 0  # EM cycles whose E- or M-step produced NaN or infinities


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
    """Iterate E- and M-steps until converged: the largest change in a free parameter is below
    ``tol`` *and* the marginal log-likelihood rose by less than ``LOGLIK_RTOL * (1 + |logL|)``
    over the cycle. A parameter criterion alone stops an EM that is crawling (small steps, a
    log-likelihood still climbing), which can be far from the maximum (Dempster, Laird & Rubin,
    1977, on EM's linear rate; McLachlan & Krishnan, 2008, sec. 3.9 on stopping rules).

    Floating-point trouble (a NaN or infinity in the log-likelihood or the parameters) never
    escapes as a numpy RuntimeWarning: the cycle is undone, counted in ``non_finite`` and the
    iteration stops unconverged, for the caller to report.

    With ``estimate_latent`` (fixed-parameter calibration) the latent mean and SD are updated
    each cycle from the posterior node masses, the "multiple weights updating" scheme of
    Kim (2006), so pretest items land on the operational scale.

    Otherwise EM is accelerated by SQUAREM (Varadhan & Roland, 2008, scheme S3): after two EM
    steps theta_1 = F(theta_0), theta_2 = F(theta_1), with r = theta_1 - theta_0 and
    v = theta_2 - 2 theta_1 + theta_0, the point theta_0 - 2 alpha r + alpha^2 v with
    alpha = -|r| / |v| (at most ``alpha_max`` in size) is projected into the parameter box and,
    if its log-likelihood is no lower than that of theta_1, followed by an EM step; else the
    plain theta_2 is kept. The many slowly converging cycles of plain EM on long tests (the
    common scale of all slopes converges at a rate near 1) become a few. Every E-step counts
    as one iteration.
    """
    n_cat = patterns.n_cat
    quad = normal_quadrature(n_quad, bound)
    mean, sd = 0.0, 1.0
    phi = pmap.pack(xi)
    converged = False
    change = np.inf
    ll_change = np.inf
    last_ll = -np.inf
    iteration = 0
    non_finite = 0
    estep = None
    accelerate = not estimate_latent and pmap.n_free > 0
    cycle = [phi]  # the points of the current SQUAREM cycle
    trial = None  # (plain EM point to fall back to, log-likelihood to beat) after extrapolating
    alpha_max = 4.0
    with np.errstate(all="ignore"):
        for iteration in range(1, max_iter + 1):
            logp = log_prob(model, xi, n_cat, quad.points)
            estep = e_step(patterns, logp, quad.weights, keep_posterior=False)
            finite = np.isfinite(estep.loglik) and np.isfinite(estep.counts).all()
            if trial is not None:
                fallback, to_beat, alpha = trial
                trial = None
                if not finite or estep.loglik < to_beat - 1e-12 * abs(to_beat):
                    alpha_max = max(1.0, alpha_max / 4)
                    xi, phi = fallback, pmap.pack(fallback)
                    cycle = [phi]
                    continue
                if abs(alpha) >= alpha_max:
                    alpha_max *= 4
                cycle = []
            if not finite:
                non_finite += 1
                break
            ll_change = estep.loglik - last_ll
            last_ll = estep.loglik
            if estimate_latent:
                mean, sd = posterior_moments(quad, estep.node_mass)
                quad = normal_quadrature(n_quad, bound, mean, sd)
            new_xi = m_step(model, xi, n_cat, quad.points, estep.counts, pmap, priors)
            if not np.isfinite(new_xi).all():
                non_finite += 1
                break
            xi = new_xi
            new_phi = pmap.pack(xi)
            change = float(np.abs(new_phi - phi).max()) if phi.size else 0.0
            phi = new_phi
            if progress is not None:
                progress(iteration, estep.loglik, change)
            if change < tol and abs(ll_change) <= LOGLIK_RTOL * (1 + abs(estep.loglik)):
                converged = True
                break
            cycle.append(phi)
            if accelerate and len(cycle) == 3:
                step = _squarem_point(cycle, alpha_max)
                cycle = [phi]
                if step is not None:
                    point, alpha = step
                    trial = (xi, estep.loglik, alpha)
                    xi = clip_xi(model, pmap.unpack(point, xi))
                    phi = pmap.pack(xi)
        logp = log_prob(model, xi, n_cat, quad.points)
        estep = e_step(patterns, logp, quad.weights, keep_posterior=False)
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
        loglik_change=float(ll_change),
        non_finite=non_finite,
    )
