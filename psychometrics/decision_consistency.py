"""Decision accuracy and consistency of pass/fail (or multi-level) classifications at a cut.

Accuracy is the probability that the observed classification equals the true one; consistency
the probability that two independent parallel administrations classify alike; Cohen's (1960)
kappa corrects consistency for chance, ``(P - P_c) / (1 - P_c)`` with ``P_c = sum_k p_k^2`` over
the expected proportions p_k in each category.

* Rudner (2001, 2005): the observed theta given true theta is N(theta, SE(theta)^2). For
  category k between cuts c_k and c_{k+1}: ``p_k(theta) = Phi((c_{k+1} - theta) / SE) -
  Phi((c_k - theta) / SE)``. Conditional accuracy is p at theta's own category, conditional
  consistency ``sum_k p_k(theta)^2``; both are averaged over a sample of estimates with their SEs
  (the "P" method) or over quadrature nodes with SE = 1 / sqrt(I(theta)) and population weights
  (the "D" method). This is cacIRT's ``Rud.P`` / ``Rud.D`` (Lathrop, 2015).
* Lee (2010): the observed summed score given theta follows the Lord-Wingersky (1984)
  distribution; ``p_k(theta)`` sums it over the scores of category k (a raw cut c classifies an
  observed score x as passing when x >= ceil(c)) and the true category is that of the true score
  T(theta). Averaged as above (cacIRT's ``Lee.P`` / ``Lee.D``; works for any IRT model here).
* Livingston & Lewis (1995): the effective test length
  ``n = ((mu - min)(max - mu) - r s^2) / (s^2 (1 - r))`` (rounded), true proportion-correct
  scores ~ four-parameter beta fitted to Lord's (1965) true-score moments (Hanson, 1991; a
  two-parameter beta on [0, 1] when that fit fails), observed scores on the n-item scale ~
  Binomial(n, tau).
* Subkoviak (1976): each examinee's true proportion is estimated by Kelley's regression
  ``p_i = r x_i / n + (1 - r) mean(x) / n`` and the probability of passing on a parallel form is
  ``P_i = P(Binomial(n, p_i) >= c)``; consistency is ``mean(P_i^2 + (1 - P_i)^2)``, chance
  ``Pbar^2 + (1 - Pbar)^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from psychometrics.calibration import Calibration, _num
from psychometrics.equating import max_score, raw_for_theta, raw_score_sem
from psychometrics.errors import PsychometricsError
from psychometrics.irt.information import conditional_sem
from psychometrics.irt.models import ItemParameters
from psychometrics.irt.quadrature import normal_quadrature
from psychometrics.scoring import lord_wingersky

DEFAULT_NODES = 81
DEFAULT_BOUND = 6.0


@dataclass
class ClassificationIndices:
    """Marginal decision accuracy, consistency and kappa.

    ``confusion[t, o]`` (accuracy methods) is the expected proportion with true category t and
    observed category o; ``expected_proportions`` the expected proportion observed in each
    category (the last is the pass rate for one cut). ``conditional_*`` are per node or person.
    """

    method: str
    cuts: np.ndarray
    accuracy: float | None
    consistency: float
    kappa: float
    chance: float
    expected_proportions: np.ndarray
    confusion: np.ndarray | None = None
    points: np.ndarray | None = None
    conditional_accuracy: np.ndarray | None = None
    conditional_consistency: np.ndarray | None = None
    details: dict = field(default_factory=dict)

    @property
    def false_pass(self) -> float | None:
        """Expected proportion observed above their true category (false positives)."""
        if self.confusion is None:
            return None
        return float(np.triu(self.confusion, 1).sum())

    @property
    def false_fail(self) -> float | None:
        """Expected proportion observed below their true category (false negatives)."""
        if self.confusion is None:
            return None
        return float(np.tril(self.confusion, -1).sum())

    def to_dict(self) -> dict:
        doc = {
            "method": self.method,
            "cuts": [float(c) for c in self.cuts],
            "accuracy": _num(self.accuracy) if self.accuracy is not None else None,
            "consistency": _num(self.consistency),
            "kappa": _num(self.kappa),
            "chance": _num(self.chance),
            "false_pass": self.false_pass,
            "false_fail": self.false_fail,
            "expected_proportions": [float(v) for v in self.expected_proportions],
            "confusion": self.confusion.tolist() if self.confusion is not None else None,
        }
        doc.update({k: (_num(v) if isinstance(v, float) else v) for k, v in self.details.items()})
        return doc


def _cuts(cuts, name: str = "cuts") -> np.ndarray:
    c = np.atleast_1d(np.asarray(cuts, dtype=float))
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)):
        raise PsychometricsError(f"{name} must be one or more finite numbers")
    if np.any(np.diff(c) <= 0):
        raise PsychometricsError(f"{name} must be strictly increasing, got {c.tolist()}")
    return c


def _summarise(method, cuts, probs, true_cat, weights, points, details) -> ClassificationIndices:
    """Marginal indices from category probabilities ``probs`` (points x categories)."""
    w = weights / weights.sum()
    n_cat = probs.shape[1]
    cond_cons = (probs**2).sum(axis=1)
    expected = w @ probs
    consistency = float(w @ cond_cons)
    chance = float((expected**2).sum())
    kappa = (consistency - chance) / (1 - chance) if chance < 1 else float("nan")
    acc = cond_acc = confusion = None
    if true_cat is not None:
        cond_acc = probs[np.arange(probs.shape[0]), true_cat]
        acc = float(w @ cond_acc)
        confusion = np.zeros((n_cat, n_cat))
        for t in range(n_cat):
            confusion[t] = w[true_cat == t] @ probs[true_cat == t]
    return ClassificationIndices(
        method=method,
        cuts=cuts,
        accuracy=acc,
        consistency=consistency,
        kappa=float(kappa),
        chance=chance,
        expected_proportions=expected,
        confusion=confusion,
        points=points,
        conditional_accuracy=cond_acc,
        conditional_consistency=cond_cons,
        details=details,
    )


def _population(params, theta, weights, latent_mean, latent_sd, n_quad, bound):
    """(points, weights, method letter): a sample of thetas (P) or normal quadrature (D)."""
    if isinstance(params, Calibration):
        latent_mean, latent_sd = params.latent_mean, params.latent_sd
    if theta is not None:
        t = np.asarray(theta, dtype=float).reshape(-1)
        if t.size == 0 or not np.all(np.isfinite(t)):
            raise PsychometricsError("theta must hold one or more finite ability values")
        if weights is None:
            w = np.ones(t.size)
        else:
            w = np.asarray(weights, dtype=float).reshape(-1)
            if w.shape != t.shape or np.any(w < 0) or not w.sum() > 0:
                raise PsychometricsError(
                    "weights must be non-negative, one per theta, not all zero"
                )
        return t, w, "P" if weights is None else "D"
    if weights is not None:
        raise PsychometricsError("weights need theta (the quadrature nodes they weight)")
    q = normal_quadrature(n_quad, bound, latent_mean, latent_sd)
    return np.asarray(q.points), np.asarray(q.weights), "D"


def _params(params) -> ItemParameters:
    if isinstance(params, Calibration):
        return params.params
    if not isinstance(params, ItemParameters):
        raise TypeError(
            f"params must be ItemParameters or a Calibration, got {type(params).__name__}"
        )
    return params


def rudner(
    cuts,
    *,
    theta=None,
    se=None,
    params: ItemParameters | Calibration | None = None,
    weights=None,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    n_quad: int = DEFAULT_NODES,
    bound: float = DEFAULT_BOUND,
) -> ClassificationIndices:
    """Rudner's (2001, 2005) classification accuracy and consistency at theta cut(s).

    Give either ``theta`` with ``se`` (ability estimates and their standard errors: the P
    method), or ``params`` (SE(theta) = 1 / sqrt(I(theta))) with quadrature nodes ``theta`` and
    ``weights`` or, with neither, N(latent_mean, latent_sd^2) over ``n_quad`` nodes on
    ``[-bound, bound]`` (the D method). A theta exactly at a cut belongs to the upper category.
    """
    c = _cuts(cuts)
    if se is not None:
        if theta is None:
            raise PsychometricsError(
                "se needs theta (the estimates whose standard errors they are)"
            )
        t, w, letter = _population(None, theta, weights, 0, 1, n_quad, bound)
        s = np.asarray(se, dtype=float).reshape(-1)
        if s.shape != t.shape:
            raise PsychometricsError(f"se must have one value per theta ({t.size}); got {s.size}")
    else:
        if params is None:
            raise PsychometricsError("give theta and se, or params for SE(theta) = 1 / sqrt(I)")
        p = _params(params)
        t, w, letter = _population(params, theta, weights, latent_mean, latent_sd, n_quad, bound)
        # no information at a node (far below a 3PL floor): an infinitely wide error, which
        # classifies half and half, is the limit of the normal model there
        s = conditional_sem(p, t)
        s = np.where(np.isfinite(s), s, 1e12)
    if not np.all(np.isfinite(s) & (s > 0)):
        i = int(np.flatnonzero(~(np.isfinite(s) & (s > 0)))[0])
        raise PsychometricsError(f"se must be positive and finite; entry {i} is {s[i]!r}")
    edges = np.concatenate([[-np.inf], c, [np.inf]])
    cdf = stats.norm.cdf((edges[None, :] - t[:, None]) / s[:, None])
    probs = np.diff(cdf, axis=1)
    true_cat = np.searchsorted(c, t, side="right")
    return _summarise(f"rudner_{letter}", c, probs, true_cat, w, t, {})


def lee(
    params: ItemParameters | Calibration,
    raw_cuts,
    *,
    theta=None,
    weights=None,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    n_quad: int = DEFAULT_NODES,
    bound: float = DEFAULT_BOUND,
) -> ClassificationIndices:
    """Lee's (2010) classification accuracy and consistency at summed-score cut(s).

    ``raw_cuts`` are on the summed-score (true-score) metric of the form ``params``; an observed
    score x is at or above cut c when ``x >= ceil(c)``, and the true category is that of the true
    score ``T(theta)`` (T(theta) >= c). Averaged over ``theta`` (estimates, P method; or nodes
    with ``weights``) or, without theta, over N(latent_mean, latent_sd^2) quadrature (D method).
    A theta cut converts with :func:`psychometrics.raw_for_theta`.
    """
    p = _params(params)
    c = _cuts(raw_cuts, "raw_cuts")
    top = max_score(p)
    if np.any((c <= 0) | (c > top)):
        raise PsychometricsError(f"raw_cuts must lie in (0, {top}] (the form's maximum score)")
    t, w, letter = _population(params, theta, weights, latent_mean, latent_sd, n_quad, bound)
    dist = lord_wingersky(p, t).T  # (Q, S+1)
    bounds = np.concatenate([[0], np.ceil(c - 1e-9).astype(int), [top + 1]])
    probs = np.stack(
        [dist[:, bounds[k] : bounds[k + 1]].sum(axis=1) for k in range(c.size + 1)], axis=1
    )
    true_score = raw_for_theta(p, t)
    true_cat = np.searchsorted(c, true_score, side="right")
    return _summarise(f"lee_{letter}", c, probs, true_cat, w, t, {})


def _binomial_category_probs(n: int, tau: np.ndarray, cut_counts: np.ndarray) -> np.ndarray:
    """P(observed category k | tau) with X ~ Binomial(n, tau) and pass-at ``cut_counts``."""
    edges = np.concatenate([[0], cut_counts, [n + 1]])
    cdf = np.stack([stats.binom.cdf(e - 1, n, tau) for e in edges], axis=1)  # P(X <= e - 1)
    return np.diff(cdf, axis=1)


def true_score_moments(counts, n: int) -> np.ndarray:
    """Raw moments E[tau^k], k = 1..4, of the true proportion-correct score under binomial error
    on ``n`` items, from the observed counts' factorial moments (Lord, 1965):
    ``E[tau^k] = E[x (x - 1) ... (x - k + 1)] / (n (n - 1) ... (n - k + 1))``."""
    x = np.asarray(counts, dtype=float)
    out = np.empty(4)
    fall_x = np.ones_like(x)
    fall_n = 1.0
    for k in range(4):
        fall_x = fall_x * (x - k)
        fall_n *= n - k
        out[k] = fall_x.mean() / fall_n if fall_n != 0 else np.nan
    return out


def beta4_from_moments(moments) -> tuple[float, float, float, float] | None:
    """Four-parameter beta (alpha, beta, l, u) matching mean, variance, skewness and kurtosis
    (method of moments, Hanson, 1991; Johnson, Kotz & Balakrishnan, 1995, ch. 25), or None when
    no beta has those moments."""
    m1, m2, m3, m4 = (float(v) for v in moments)
    var = m2 - m1**2
    if not var > 0:
        return None
    g3 = (m3 - 3 * m1 * m2 + 2 * m1**3) / var**1.5
    g4 = (m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4) / var**2
    den = 6 + 3 * g3**2 - 2 * g4
    if den == 0:
        return None
    phi = 6 * (g4 - g3**2 - 1) / den
    inner = (phi + 2) * (phi + 3) * g4 - 3 * (phi + 1) * (phi - 6)
    if not phi > 0 or inner == 0:
        return None
    disc = 1 - 24 * (phi + 1) / inner
    if not 0 <= disc <= 1:
        return None
    big, small = phi / 2 * (1 + np.sqrt(disc)), phi / 2 * (1 - np.sqrt(disc))
    a, b = (big, small) if g3 < 0 else (small, big)  # negative skew: alpha > beta
    if not (a > 0 and b > 0):
        return None
    width = np.sqrt(var * (a + b) ** 2 * (a + b + 1) / (a * b))
    lower = m1 - width * a / (a + b)
    return float(a), float(b), float(lower), float(lower + width)


def livingston_lewis(
    scores,
    reliability: float,
    cuts,
    *,
    max_score: float,
    min_score: float = 0.0,
    true_model: str = "4p",
    n_nodes: int = 2000,
) -> ClassificationIndices:
    """Livingston & Lewis (1995) accuracy and consistency from observed scores and reliability.

    ``scores`` are observed total scores on ``min_score..max_score`` (any metric: weighted or
    polytomous scores are what the method is for); ``cuts`` are on that metric (a score at or
    above a cut passes it).

    1. Effective test length ``n = ((mu - min)(max - mu) - r s^2) / (s^2 (1 - r))``, rounded to
       an integer >= 4 (eq. 3 of the paper).
    2. Scores are rescaled to counts on n items, ``n (x - min) / (max - min)``; the true
       proportion's first four moments follow from Lord's (1965) binomial-error relations
       (:func:`true_score_moments`) and a four-parameter beta is fitted to them (Hanson, 1991).
       When that fit fails or leaves [0, 1] (the fail-safe of the BB-CLASS program, Brennan,
       2004), or with ``true_model="2p"``, a beta on [0, 1] with the true mean and variance is
       used; ``details["true_model"]`` says which.
    3. Observed counts given tau are Binomial(n, tau); an observed score passes cut c at
       ``ceil(n (c - min) / (max - min))`` and a true proportion at ``tau >= (c - min) / (max -
       min)``. Integrals over tau use ``n_nodes`` midpoints of the beta's quantiles.
    """
    x = np.asarray(scores, dtype=float).reshape(-1)
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise PsychometricsError("scores must hold two or more finite scores")
    lo, hi = float(min_score), float(max_score)
    if not lo < hi:
        raise PsychometricsError(f"min_score ({lo:g}) must be below max_score ({hi:g})")
    if np.any((x < lo) | (x > hi)):
        raise PsychometricsError(f"scores must lie in {lo:g}..{hi:g}")
    r = float(reliability)
    if not 0 < r < 1:
        raise PsychometricsError(
            f"reliability must lie strictly between 0 and 1, got {reliability!r}"
        )
    model = str(true_model).lower()
    if model not in ("4p", "2p"):
        raise PsychometricsError(f"true_model must be '4p' or '2p'; got {true_model!r}")
    c = _cuts(cuts)
    if np.any((c <= lo) | (c > hi)):
        raise PsychometricsError(f"cuts must lie in ({lo:g}, {hi:g}]")
    mu, var = float(x.mean()), float(x.var(ddof=1))
    if var <= 0:
        raise PsychometricsError("scores have no variance")
    n_eff = ((mu - lo) * (hi - mu) - r * var) / (var * (1 - r))
    n = max(round(n_eff), 4)
    moments = true_score_moments(n * (x - lo) / (hi - lo), n)
    fit = beta4_from_moments(moments) if model == "4p" else None
    if fit is not None and fit[2] >= 0 and fit[3] <= 1:
        alpha, beta, t_lo, t_hi = fit
        used = "4p"
    else:
        m, v = moments[0], moments[1] - moments[0] ** 2
        if not (0 < m < 1) or not 0 < v < m * (1 - m):
            raise PsychometricsError(
                "the true-score beta cannot be fitted: mean at a bound or variance out of range"
            )
        k = m * (1 - m) / v - 1
        alpha, beta, t_lo, t_hi = m * k, (1 - m) * k, 0.0, 1.0
        used = "2p"
    u = (np.arange(n_nodes) + 0.5) / n_nodes
    tau = t_lo + (t_hi - t_lo) * stats.beta.ppf(u, alpha, beta)
    w = np.full(n_nodes, 1.0 / n_nodes)
    cut_p = (c - lo) / (hi - lo)
    counts = np.ceil(n * cut_p - 1e-9).astype(int)
    probs = _binomial_category_probs(n, tau, counts)
    true_cat = np.searchsorted(cut_p, tau, side="right")
    details = {
        "effective_test_length": float(n_eff),
        "n": n,
        "true_model": used,
        "alpha": float(alpha),
        "beta": float(beta),
        "lower": float(t_lo),
        "upper": float(t_hi),
    }
    return _summarise("livingston_lewis", c, probs, true_cat, w, tau, details)


def subkoviak(scores, n_items: int, reliability: float, cut: float) -> ClassificationIndices:
    """Subkoviak's (1976) single-administration agreement coefficient and kappa.

    ``scores`` are number-correct scores on ``n_items`` dichotomous items, ``reliability`` the
    test's KR-20/alpha, and a score at or above ``cut`` passes. Consistency only (no accuracy).
    """
    x = np.asarray(scores, dtype=float).reshape(-1)
    n = int(n_items)
    if n != n_items or n < 1:
        raise PsychometricsError(f"n_items must be a positive integer, got {n_items!r}")
    if x.size < 2 or not np.all(np.isfinite(x)) or np.any((x < 0) | (x > n)):
        raise PsychometricsError(f"scores must hold two or more number-correct scores in 0..{n}")
    r = float(reliability)
    if not 0 <= r <= 1:
        raise PsychometricsError(f"reliability must lie in 0..1, got {reliability!r}")
    c = _cuts(cut, "cut")
    if c.size != 1 or not 0 < c[0] <= n:
        raise PsychometricsError(f"cut must be one score in (0, {n}]")
    p_hat = r * x / n + (1 - r) * x.mean() / n
    counts = np.ceil(c - 1e-9).astype(int)
    probs = _binomial_category_probs(n, p_hat, counts)
    return _summarise("subkoviak", c, probs, None, np.ones(x.size), p_hat, {})


@dataclass
class CutReport:
    """What a cut implies: SEMs at the cut and the pass rate."""

    theta_cut: float
    csem_theta: float
    csem_raw: float
    expected_raw: float
    pass_rate_population: float
    pass_rate_sample: float | None

    def to_dict(self) -> dict:
        return {k: _num(v) if v is not None else None for k, v in self.__dict__.items()}


def cut_report(
    params: ItemParameters | Calibration,
    theta_cut: float,
    *,
    raw_cut: float | None = None,
    theta=None,
    scores=None,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    n_quad: int = DEFAULT_NODES,
    bound: float = DEFAULT_BOUND,
) -> CutReport:
    """Conditional SEMs at a theta cut and the pass rate it implies.

    ``csem_theta = 1 / sqrt(I(theta_c))``, ``csem_raw = sqrt(sum_j Var(x_j | theta_c))`` (Lord,
    1980). ``pass_rate_population`` is the model-implied proportion with observed summed score
    >= ``raw_cut`` (default ``ceil(T(theta_c))``) under N(latent_mean, latent_sd^2) (Lord &
    Wingersky, 1984); ``pass_rate_sample`` is the proportion of ``scores`` >= raw_cut, or else of
    ``theta`` (a sample of ability estimates) >= theta_cut.
    """
    p = _params(params)
    if isinstance(params, Calibration):
        latent_mean, latent_sd = params.latent_mean, params.latent_sd
    t = float(theta_cut)
    if not np.isfinite(t):
        raise PsychometricsError(f"theta_cut must be finite, got {theta_cut!r}")
    expected = float(raw_for_theta(p, t)[0])
    rc = float(np.ceil(expected - 1e-9)) if raw_cut is None else float(raw_cut)
    q = normal_quadrature(n_quad, bound, latent_mean, latent_sd)
    dist = lord_wingersky(p, np.asarray(q.points)) @ np.asarray(q.weights)
    pop = float(dist[int(np.ceil(rc - 1e-9)) :].sum() / dist.sum())
    sample = None
    if scores is not None:
        s = np.asarray(scores, dtype=float).reshape(-1)
        sample = float(np.mean(s >= rc - 1e-9))
    elif theta is not None:
        th = np.asarray(theta, dtype=float).reshape(-1)
        sample = float(np.mean(th >= t))
    return CutReport(
        theta_cut=t,
        csem_theta=float(conditional_sem(p, [t])[0]),
        csem_raw=float(raw_score_sem(p, [t])[0]),
        expected_raw=expected,
        pass_rate_population=pop,
        pass_rate_sample=sample,
    )
