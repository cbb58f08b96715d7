"""Standard errors of item parameters from the observed information matrix (Louis, 1982).

For marginal maximum likelihood with persons independent, Louis' identity reads

    I_obs = sum_u f_u ( E_u[-H_c] - E_u[s s^T] + E_u[s] E_u[s]^T )

with ``s`` the complete-data score of a pattern at a quadrature node, ``H_c`` its complete-data
Hessian, and the expectations over the pattern's posterior on the nodes. The first term is
block-diagonal by item and comes from the expected counts; the other two couple items.

For dichotomous items the node score factorises, ``s_uq,(j,m) = e_ujq h_jmq`` with
``e = y - P_j(X_q)`` and ``h = dlogit-free derivative``, so the cross-product term needs one
(items x patterns x items) product per node rather than one per parameter pair; the general
(polytomous) path builds the node scores explicitly. Bayes modal estimates add the negative
log-prior Hessian (the posterior information). Work is chunked over patterns to bound memory.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import dsyrk

from psychometrics.data import ResponsePatterns
from psychometrics.irt.estimation import DERIV_STEP, ParameterMap, block_posterior, dlogp, e_step
from psychometrics.irt.models import DICHOTOMOUS_MODELS, log_prob, per_item
from psychometrics.irt.priors import ItemPriors

CHUNK_CELLS = 2_000_000
HESS_STEP = 1e-4


def complete_data_information(
    model: str, xi: np.ndarray, n_cat: np.ndarray, theta: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """-d^2/dxi^2 of sum_kq r_jkq log P_jk(X_q) per item, (J, m, m), by central differences."""
    j, m = xi.shape

    def objective(x: np.ndarray) -> np.ndarray:
        return np.einsum("jkq,jkq->j", counts, log_prob(model, x, n_cat, theta))

    out = np.zeros((j, m, m))
    base = objective(xi)
    h = HESS_STEP
    for a in range(m):
        for b in range(a, m):
            if a == b:
                up, dn = xi.copy(), xi.copy()
                up[:, a] += h
                dn[:, a] -= h
                val = (objective(up) - 2 * base + objective(dn)) / h**2
            else:
                pts = []
                for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                    x = xi.copy()
                    x[:, a] += sa * h
                    x[:, b] += sb * h
                    pts.append(objective(x))
                val = (pts[0] - pts[1] - pts[2] + pts[3]) / (4 * h**2)
            out[:, a, b] = out[:, b, a] = -val
    return out


def observed_information(
    model: str,
    xi: np.ndarray,
    patterns: ResponsePatterns,
    theta: np.ndarray,
    weights: np.ndarray,
    pmap: ParameterMap,
    priors: ItemPriors,
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """Observed (posterior) information matrix of the free parameters ``phi`` (Louis, 1982).

    ``counts`` are the expected counts of an E-step at ``xi`` on this grid when the caller has
    them (else one is run). The posterior is never held whole: each chunk of patterns gets its
    own, computed as the E-step computes it, so memory stays at a chunk's worth however many
    persons there are (a (100,000 x 61) posterior alone is 49 MB).
    """
    n_cat = patterns.n_cat
    j, m = xi.shape
    logp = log_prob(model, xi, n_cat, theta)
    if counts is None:
        counts = e_step(patterns, logp, weights, keep_posterior=False).counts
    info_xi = np.zeros((j, m, j, m))
    block = complete_data_information(model, xi, n_cat, theta, counts)
    info_xi[np.arange(j), :, np.arange(j), :] = block
    d = dlogp(model, xi, n_cat, theta)
    n_pat = patterns.codes.shape[0]
    chunk = max(1, CHUNK_CELLS // max(1, j * m))
    names = per_item(model, j)
    dichotomous = all(name in DICHOTOMOUS_MODELS for name in names)
    # no guessing parameter and every cell presented: the node score is e_q (theta_q, 1)
    linear = patterns.observed is None and all(name in LINEAR_SCORE_MODELS for name in names)
    node_grams = np.zeros((theta.size, j, j)) if dichotomous and not linear else None
    moments = np.zeros((3, j, j)) if linear else None
    for start in range(0, n_pat, chunk):
        sl = slice(start, min(n_pat, start + chunk))
        post = block_posterior(patterns, logp, weights, sl)
        if linear:
            part, gram = _linear_terms(patterns, sl, post, logp, theta)
            moments += part
            cross = 0.0
        elif dichotomous:
            grams, gram = _dichotomous_terms(patterns, sl, post, logp, d)
            node_grams += grams
            cross = 0.0
        elif not isinstance(model, str):
            cross, gram = _mixed_terms(patterns, sl, post, logp, d, model)
        else:
            cross, gram = _general_terms(patterns, sl, post, d)
        info_xi -= cross
        info_xi += gram
    if linear:
        for a in range(2):
            for b in range(2):
                info_xi[:, a, :, b] -= moments[(a == 0) + (b == 0)]
    elif dichotomous:
        info_xi -= _dichotomous_cross(node_grams, d)
    flat = info_xi.reshape(j * m, j * m)
    t = pmap.design()
    info = t.T @ flat @ t
    if priors.active(model):
        prior_diag = priors.neg_hessian_diag(model, xi)
        free = pmap.index >= 0
        np.add.at(info, (pmap.index[free], pmap.index[free]), prior_diag[free])
    return 0.5 * (info + info.T)


# a pattern whose posterior weight at a node is below this adds nothing measurable there
NODE_WEIGHT_FLOOR = 1e-12


def _node_rows(weight: np.ndarray) -> np.ndarray:
    """Patterns that carry posterior weight at a node: for a test of any length a pattern's
    posterior covers a fraction of the grid, so most (pattern, node) pairs can be skipped."""
    return np.flatnonzero(weight > NODE_WEIGHT_FLOOR)


def _weighted_gram(a: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """a^T diag(weight) a for weight >= 0, as one symmetric rank-k update (BLAS syrk, half the
    work of a general product)."""
    if a.shape[0] == 0:
        return np.zeros((a.shape[1], a.shape[1]))
    root = a * np.sqrt(weight)[:, None]  # C order: its transpose is Fortran order, no copy
    upper = dsyrk(1.0, root.T, trans=0)
    return np.triu(upper) + np.triu(upper, 1).T


def _dichotomous_cross(node_grams: np.ndarray, d: np.ndarray) -> np.ndarray:
    """E[s s^T] summed over patterns from the per-node item grams C_q (Q, J, J):
    cross[(j,m),(k,n)] = sum_q C_q[j,k] h_jmq h_knq, done once for all patterns."""
    h = d[:, :, 1, :] - d[:, :, 0, :]  # (J, m, Q)
    j, m, _ = h.shape
    cross = np.zeros((j, m, j, m))
    for a in range(m):
        ha = h[:, a, :].T[:, :, None]  # (Q, J, 1)
        for b in range(m):
            hb = h[:, b, :].T[:, None, :]  # (Q, 1, J)
            cross[:, a, :, b] = (node_grams * ha * hb).sum(axis=0)
    return cross


# models whose node score is e_jq * (theta_q, 1): d log P_1 - d log P_0 w.r.t. (a, d) is
# (1 - s) (theta, 1) + s (theta, 1) = (theta, 1), the same for every item
LINEAR_SCORE_MODELS = ("2pl", "1pl", "rasch")


def _linear_terms(patterns, sl, post, logp, theta):
    """E[s s^T] and E[s] E[s]^T summed over the patterns in ``sl`` for 2PL/1PL/Rasch items with
    every cell presented. The node score is s_uq,(j,m) = e_ujq t_mq with e = y - P_j(X_q) and
    t = (theta_q, 1) for every item, so E[s s^T] only needs the three item-by-item moments

        M_p = sum_uq f_u w_uq theta_q^p e_uq e_uq^T
            = Y^T diag(v_p) Y - B_p - B_p^T + P diag(m theta^p) P^T     (p = 0, 1, 2)

    with v_p = (f w) theta^p, B_p = Y^T (f w diag(theta^p)) P^T and m the node masses: three
    (patterns x items^2) products in place of one per node a pattern has weight at (Louis' cross
    term for the 2PL was (nodes x patterns x items^2)). The same sums as
    :func:`_dichotomous_terms`, regrouped; that path's floor on negligible node weights is not
    needed here. Returns (M (3, J, J), gram (J, 2, J, 2)).
    """
    y = patterns.indicators[0][sl].astype(float)
    f = patterns.freq[sl]
    p1 = np.exp(logp[:, 1, :])  # (J, Q)
    fw = post * f[:, None]
    mass = fw.sum(axis=0)
    n, j = y.shape
    powers = (np.ones_like(theta), theta, theta**2)
    moments = np.empty((3, j, j))
    for p, tp in enumerate(powers):
        fwp = fw * tp
        v = fwp.sum(axis=1)
        outer = _weighted_gram(y, v) if p != 1 else (y * v[:, None]).T @ y
        cross = (y.T @ fwp) @ p1.T  # sum_uq f w theta^p y_u P_q^T
        moments[p] = outer - cross - cross.T + (p1 * (mass * tp)) @ p1.T
    # expected node scores g_u,(j,m) = y_uj sum_q w_uq t_mq - sum_q w_uq P_jq t_mq
    g = np.empty((n, j, 2))
    for col, tp in ((0, theta), (1, powers[0])):
        g[:, :, col] = y * (post @ tp)[:, None] - post @ (p1 * tp).T
    g = g.reshape(n, 2 * j)
    gram = _weighted_gram(g, f)
    return moments, gram.reshape(j, 2, j, 2)


def _dichotomous_terms(patterns, sl, post, logp, d):
    """Per-node item grams C_q = sum_u f_u w_uq e_uq e_uq^T (Q, J, J) and E[s] E[s]^T summed
    over the patterns in ``sl`` for 0/1 items (the node score factorises, s = e h)."""
    y = patterns.indicators[0][sl]
    mask = None if patterns.observed is None else patterns.observed[sl]
    f = patterns.freq[sl]
    p1 = np.exp(logp[:, 1, :])  # (J, Q)
    h = d[:, :, 1, :] - d[:, :, 0, :]  # (J, m, Q): d log P1 - d log P0 = dP / (P (1 - P))
    j, m, q_n = h.shape
    grams = np.empty((q_n, j, j))
    fw = post * f[:, None]
    for q in range(q_n):
        rows = _node_rows(fw[:, q])
        e = y[rows] - (p1[:, q] if mask is None else mask[rows] * p1[:, q])
        grams[q] = _weighted_gram(e, fw[rows, q])
    # expected node score per pattern: g_u,(j,m) = sum_q w_uq e_ujq h_jmq
    g = np.empty((y.shape[0], j, m))
    for col in range(m):
        hy = post @ h[:, col, :].T  # sum_q w_uq h_jmq
        hp = post @ (p1 * h[:, col, :]).T  # sum_q w_uq P_jq h_jmq
        g[:, :, col] = y * hy - (hp if mask is None else mask * hp)
    g = g.reshape(y.shape[0], j * m)
    gram = _weighted_gram(g, f)  # syrk: half the work of (f g)^T g
    return grams, gram.reshape(j, m, j, m)


def _general_terms(patterns, sl, post, d):
    """The same two sums for polytomous items. A pattern's node score is a gather,
    s_uq,(j,m) = d log P_{j, x_uj}(X_q) / d xi_jm (zero where item j was not presented), taken
    for the patterns with posterior weight at the node only; the expected scores
    g_u = sum_q w_uq s_uq come from one product of the posterior with all category derivatives.
    """
    f = patterns.freq[sl]
    j, m, k_max, q_n = d.shape
    codes = patterns.codes[sl].astype(np.intp)
    codes[codes < 0] = k_max  # the zero "category" of an item not presented
    padded = np.zeros((j, m, k_max + 1, q_n))
    padded[:, :, :k_max] = d
    # (Q, J (K+1), m): row j (K+1) + k holds d log P_jk / d xi_j. at node q
    by_node = np.ascontiguousarray(padded.transpose(3, 0, 2, 1)).reshape(q_n, -1, m)
    flat = codes + (k_max + 1) * np.arange(j)  # (n, J) rows of by_node[q], one per item
    n = post.shape[0]
    fw = post * f[:, None]
    cross = np.zeros((j * m, j * m))
    for q in range(q_n):
        rows = _node_rows(fw[:, q])
        s = np.take(by_node[q], flat[rows], axis=0).reshape(rows.size, j * m)
        cross += _weighted_gram(s, fw[rows, q])
    expected = (post @ padded.reshape(-1, q_n).T).reshape(n, j, m, k_max + 1)
    g = np.take_along_axis(expected, codes[:, :, None, None], axis=3)[..., 0]
    g = g.reshape(n, j * m)
    gram = _weighted_gram(g, f)  # syrk: half the work of (f g)^T g
    return cross.reshape(j, m, j, m), gram.reshape(j, m, j, m)


def _mixed_terms(patterns, sl, post, logp, d, models):
    """The two sums for a mixed-format test, on a small basis of response indicators.

    A pattern's node score is s_uq = B_uq H_q: a dichotomous item contributes one basis column
    e = y - P(X_q) with coefficients h = dlog P_1 - dlog P_0 (as in the all-dichotomous path), a
    polytomous item the columns "presented" and "scored k" (k >= 1) with coefficients dlog P_0
    and dlog P_k - dlog P_0. The cross-products then cost (basis size)^2 per pattern and node
    rather than (number of parameters)^2.
    """
    f = patterns.freq[sl]
    obs = patterns.observed_mask()[sl]
    ys = [ind[sl] for ind in patterns.indicators]
    j_n, m, k_max, q_n = d.shape
    is_dich = np.array([name in DICHOTOMOUS_MODELS for name in models])
    dich = np.flatnonzero(is_dich)
    poly = np.flatnonzero(~is_dich)
    n_d, n_p = dich.size, poly.size
    nb = n_d + n_p * k_max
    # coefficients H[q, basis, item, param]
    h = np.zeros((q_n, nb, j_n, m))
    hd = d[dich, :, 1, :] - d[dich, :, 0, :]  # (D, m, Q)
    h[:, np.arange(n_d), dich, :] = hd.transpose(2, 0, 1)
    for k in range(k_max):
        coef = d[poly, :, k, :] - (d[poly, :, 0, :] if k else 0.0)  # (P, m, Q)
        h[:, n_d + k * n_p + np.arange(n_p), poly, :] = coef.transpose(2, 0, 1)
    h = h.reshape(q_n, nb, j_n * m)
    constant = np.concatenate(
        [obs[:, poly]] + [y[:, poly] for y in ys] + [np.zeros((obs.shape[0], n_p))] * (k_max - 1 - len(ys)),
        axis=1,
    )
    p1 = np.exp(logp[dich, 1, :])  # (D, Q)
    y1 = ys[0][:, dich]  # some item is polytomous, so there is an indicator of score 1
    od = obs[:, dich]
    root_fw = np.sqrt(post * f[:, None])
    basis = np.empty((obs.shape[0], nb))
    cross = np.zeros((j_n * m, j_n * m))
    for q in range(q_n):
        rows = _node_rows(root_fw[:, q])
        part = basis[rows]
        part[:, :n_d] = y1[rows] - od[rows] * p1[:, q]
        part[:, n_d:] = constant[rows]
        c = _weighted_gram(part, root_fw[rows, q] ** 2)
        cross += h[q].T @ c @ h[q]
    # expected node scores g_u = sum_q w_uq B_uq H_q, category by category
    dd = d.reshape(j_n * m, k_max, q_n)
    g_dich = np.zeros((obs.shape[0], j_n, m))
    if n_d:
        hy = post @ hd.reshape(n_d * m, q_n).T  # (n, D*m)
        hp = post @ (p1[:, None, :] * hd).reshape(n_d * m, q_n).T
        g_dich[:, dich, :] = (
            y1[:, :, None] * hy.reshape(-1, n_d, m) - od[:, :, None] * hp.reshape(-1, n_d, m)
        )
    base = (post @ dd[:, 0, :].T).reshape(-1, j_n, m)
    g_poly = obs[:, :, None] * base
    for k, y in enumerate(ys, start=1):
        g_poly += y[:, :, None] * ((post @ dd[:, k, :].T).reshape(-1, j_n, m) - base)
    g = np.where(is_dich[None, :, None], g_dich, g_poly).reshape(obs.shape[0], j_n * m)
    gram = _weighted_gram(g, f)  # syrk: half the work of (f g)^T g
    return cross.reshape(j_n, m, j_n, m), gram.reshape(j_n, m, j_n, m)


def covariance_from_information(info: np.ndarray) -> np.ndarray | None:
    """Inverse of a symmetric information matrix, or None when it is not positive definite."""
    if info.size == 0:
        return info
    try:
        vals, vecs = np.linalg.eigh(info)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(vals)) or vals.min() <= 1e-10 * max(1.0, vals.max()):
        return None
    return (vecs / vals) @ vecs.T


__all__ = ["DERIV_STEP", "covariance_from_information", "observed_information"]
