"""Ability estimation and summed-score conversion tables.

* EAP (Bock & Mislevy, 1982): posterior mean and SD of theta on a quadrature grid,
  theta_EAP = sum_q X_q L(X_q) A_q / sum_q L(X_q) A_q.
* MAP: posterior mode, solving d log L / d theta - (theta - mu) / sigma^2 = 0;
  SE = 1 / sqrt(I(theta) + 1 / sigma^2).
* MLE: root of d log L / d theta = 0, bounded to [lower, upper] (all-correct and all-wrong
  patterns get the bound); SE = 1 / sqrt(I(theta)).
* WLE (Warm, 1989): root of g(theta) = d log L / d theta + J(theta) / (2 I(theta)) = 0 with
  J = sum_jk P'_jk P''_jk / P_jk; finite for perfect patterns. Two standard errors, named by
  ``se``: ``"information"`` (default), 1 / sqrt(I(theta)) (Warm, 1989); ``"hessian"``,
  1 / sqrt(-g'(theta)), the curvature of the weighted likelihood at its maximum. For the
  Rasch/1PL, 2PL and GPCM J = I', so g is the derivative of log L + log sqrt(I) and this is the
  SE mirt's ``fscores(method = "WLE")`` reports from the Hessian of that criterion (Chalmers,
  2012); for the 3PL and GRM, where J differs from I', it is the curvature of Warm's equation.
  g' is a central difference of the exact g (step 1e-3).
* Summed-score EAP tables through the Lord-Wingersky (1984) recursion for P(X = s | theta)
  (Thissen, Pommerich, Billeaud & Williams, 1995).

Responses follow the library convention: (persons, items), NaN for items not presented; a single
person may be given as a 1-d vector. Items are those of the ``ItemParameters`` in the same order.

A person with no response at all has no likelihood. Such persons are flagged in
``AbilityEstimates.no_response``; EAP and MAP return the prior (its mean, and its SD as the SE:
the posterior is the prior), MLE and WLE return NaN (serialised as null), never a bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psychometrics.data import check_responses, collapse_patterns
from psychometrics.errors import PsychometricsError
from psychometrics.irt.estimation import pattern_loglik
from psychometrics.irt.information import category_derivatives
from psychometrics.irt.models import ItemParameters
from psychometrics.irt.quadrature import DEFAULT_BOUND, DEFAULT_N_QUAD, normal_quadrature

METHODS = ("eap", "map", "mle", "wle")


@dataclass
class AbilityEstimates:
    """``theta`` and ``se`` per person (input row order) from ``method``; ``no_response`` flags
    persons who answered nothing (see the module docstring for what they get)."""

    method: str
    theta: np.ndarray
    se: np.ndarray
    se_method: str = "information"
    no_response: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.no_response is None:
            self.no_response = np.zeros(np.shape(self.theta), dtype=bool)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "se_method": self.se_method,
            "theta": [float(v) if np.isfinite(v) else None for v in self.theta],
            "se": [float(v) if np.isfinite(v) else None for v in self.se],
            "no_response": [bool(v) for v in self.no_response],
        }


def _check_inputs(responses, params: ItemParameters) -> np.ndarray:
    if not isinstance(params, ItemParameters):
        raise TypeError(f"params must be ItemParameters, got {type(params).__name__}")
    x = np.asarray(responses, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    x = check_responses(x, model=params.model, name="responses")
    if x.shape[1] != params.n_items:
        raise PsychometricsError(f"responses has {x.shape[1]} items but params describes {params.n_items}")
    over = ~np.isnan(x) & (x >= params.n_categories[None, :])
    if over.any():
        i, j = np.argwhere(over)[0]
        raise PsychometricsError(
            f"responses[{i}, {j}] = {x[i, j]:g} is outside item {j}'s categories "
            f"0..{params.n_categories[j] - 1}"
        )
    return x


def _check_prior(prior_mean: float, prior_sd: float) -> None:
    if not np.isfinite(prior_mean):
        raise PsychometricsError(f"prior_mean must be finite, got {prior_mean!r}")
    if not prior_sd > 0:
        raise PsychometricsError(f"prior_sd must be positive, got {prior_sd!r}")


def theta_eap(
    responses,
    params: ItemParameters,
    *,
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
) -> AbilityEstimates:
    """Expected a posteriori ability and posterior SD (Bock & Mislevy, 1982)."""
    _check_prior(prior_mean, prior_sd)
    x = _check_inputs(responses, params)
    quad = normal_quadrature(n_quad, max(bound, abs(prior_mean) + bound), prior_mean, prior_sd)
    pats = collapse_patterns(x, params.n_categories)
    ll = pattern_loglik(pats, params.log_prob(quad.points))
    ll += np.log(np.maximum(quad.weights, 1e-300))
    ll -= ll.max(axis=1, keepdims=True)
    post = np.exp(ll)
    post /= post.sum(axis=1, keepdims=True)
    mean = post @ quad.points
    var = post @ quad.points**2 - mean**2
    empty = _empty_rows(x)
    theta = mean[pats.inverse]
    se = np.sqrt(np.maximum(var, 0.0))[pats.inverse]
    theta[empty], se[empty] = prior_mean, prior_sd  # the exact posterior, not its grid version
    return AbilityEstimates("eap", theta, se, no_response=empty)


def _empty_rows(x: np.ndarray) -> np.ndarray:
    return np.isnan(x).all(axis=1)


def _score_terms(x: np.ndarray, params: ItemParameters, theta: np.ndarray):
    """d log L / d theta, test information and Warm's J at person-specific theta."""
    p, d1, d2 = category_derivatives(params, theta)  # (J, K, N)
    obs = ~np.isnan(x)
    codes = np.where(obs, x, 0).astype(int).T  # (J, N)
    pk = np.take_along_axis(p, codes[:, None, :], axis=1)[:, 0, :]
    dk = np.take_along_axis(d1, codes[:, None, :], axis=1)[:, 0, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        grad_terms = np.where(obs.T, dk / np.maximum(pk, 1e-300), 0.0)
        info_terms = np.where(p > 1e-300, d1**2 / p, 0.0).sum(axis=1)
        warm_terms = np.where(p > 1e-300, d1 * d2 / p, 0.0).sum(axis=1)
    info = np.where(obs.T, info_terms, 0.0).sum(axis=0)
    warm = np.where(obs.T, warm_terms, 0.0).sum(axis=0)
    return grad_terms.sum(axis=0), info, warm


def _solve_estimating_equation(x, params, method, lower, upper, prior_mean, prior_sd, start):
    """Safeguarded Fisher scoring on the estimating equation g(theta) = 0 within a bracket.

    g is decreasing in theta for the 1PL/2PL/GRM/GPCM; where it is not, the bracket keeps
    the iteration inside [lower, upper] and at a sign change.
    """

    def g(theta):
        grad, info, warm = _score_terms(x, params, theta)
        slope = info.copy()
        if method == "map":
            grad = grad - (theta - prior_mean) / prior_sd**2
            slope = slope + 1 / prior_sd**2
        elif method == "wle":
            grad = grad + np.where(info > 0, warm / (2 * np.maximum(info, 1e-300)), 0.0)
        return grad, slope, info

    n = x.shape[0]
    lo = np.full(n, float(lower))
    hi = np.full(n, float(upper))
    g_lo, _, _ = g(lo)
    g_hi, _, _ = g(hi)
    theta = np.clip(start, lower, upper)
    at_lo = g_lo <= 0
    at_hi = (g_hi >= 0) & ~at_lo
    for _ in range(100):
        val, slope, _ = g(theta)
        pos = val > 0
        lo = np.where(pos, theta, lo)
        hi = np.where(pos, hi, theta)
        step = val / np.maximum(slope, 1e-8)
        new = theta + step
        outside = (new <= lo) | (new >= hi)
        new = np.where(outside, 0.5 * (lo + hi), new)
        done = np.abs(new - theta) < 1e-9
        theta = new
        if done.all():
            break
    theta = np.where(at_lo, lower, np.where(at_hi, upper, theta))
    _, _, info = g(theta)
    return theta, info


WLE_SE_METHODS = ("information", "hessian")
WLE_HESSIAN_STEP = 1e-3


def _wle_function(x, params, theta) -> np.ndarray:
    grad, info, warm = _score_terms(x, params, theta)
    return grad + np.where(info > 0, warm / (2 * np.maximum(info, 1e-300)), 0.0)


def _wle_hessian_se(x, params, theta) -> np.ndarray:
    """1 / sqrt(-g'(theta)) with g Warm's estimating function (see the module docstring)."""
    h = WLE_HESSIAN_STEP
    slope = (_wle_function(x, params, theta + h) - _wle_function(x, params, theta - h)) / (2 * h)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(slope < 0, 1 / np.sqrt(-slope), np.inf)


def _point_estimate(
    responses, params, method, lower, upper, prior_mean, prior_sd, se="information"
):
    if not lower < upper:
        raise PsychometricsError(f"bounds must satisfy lower < upper, got ({lower}, {upper})")
    x = _check_inputs(responses, params)
    pats = collapse_patterns(x, params.n_categories)
    xu = np.where(pats.codes < 0, np.nan, pats.codes).astype(float)
    start = theta_eap(xu, params, prior_mean=prior_mean, prior_sd=prior_sd).theta
    theta, info = _solve_estimating_equation(
        xu, params, method, lower, upper, prior_mean, prior_sd, start
    )
    if method == "map":
        info = info + 1 / prior_sd**2
    if se == "hessian":
        errors = _wle_hessian_se(xu, params, theta)
    else:
        with np.errstate(divide="ignore"):
            errors = 1 / np.sqrt(info)
    theta, errors = theta[pats.inverse], errors[pats.inverse]
    empty = _empty_rows(x)
    if method == "map":
        theta[empty], errors[empty] = prior_mean, prior_sd
    else:
        theta[empty], errors[empty] = np.nan, np.nan
    return AbilityEstimates(method, theta, errors, se, no_response=empty)


def theta_map(
    responses,
    params: ItemParameters,
    *,
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
    bounds: tuple[float, float] = (-6.0, 6.0),
) -> AbilityEstimates:
    """Maximum a posteriori ability with a N(prior_mean, prior_sd^2) prior."""
    _check_prior(prior_mean, prior_sd)
    return _point_estimate(responses, params, "map", *bounds, prior_mean, prior_sd)


def theta_mle(
    responses, params: ItemParameters, *, bounds: tuple[float, float] = (-4.0, 4.0)
) -> AbilityEstimates:
    """Bounded maximum likelihood ability; perfect and zero patterns get the bounds, persons with
    no response NaN (flagged in ``no_response``)."""
    return _point_estimate(responses, params, "mle", *bounds, 0.0, 1.0)


def theta_wle(
    responses,
    params: ItemParameters,
    *,
    bounds: tuple[float, float] = (-6.0, 6.0),
    se: str = "information",
) -> AbilityEstimates:
    """Warm's (1989) weighted likelihood ability, bias-corrected and finite for every pattern with
    at least one response; persons with none get NaN (flagged in ``no_response``).

    ``se="information"`` gives 1 / sqrt(I(theta)), ``se="hessian"`` the curvature-based SE
    mirt reports (module docstring).
    """
    if se not in WLE_SE_METHODS:
        raise PsychometricsError(f"se must be one of {', '.join(WLE_SE_METHODS)}; got {se!r}")
    return _point_estimate(responses, params, "wle", *bounds, 0.0, 1.0, se)


def score(responses, params: ItemParameters, method: str = "eap", **options) -> AbilityEstimates:
    """Ability estimates by ``method`` in {"eap", "map", "mle", "wle"} (options pass through)."""
    method = str(method).lower()
    fn = {"eap": theta_eap, "map": theta_map, "mle": theta_mle, "wle": theta_wle}.get(method)
    if fn is None:
        raise PsychometricsError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return fn(responses, params, **options)


def lord_wingersky(params: ItemParameters, theta) -> np.ndarray:
    """P(summed score = s | theta) for s = 0..max, shape (S+1, Q) (Lord & Wingersky, 1984).

    Items are added one at a time: f_new(s) = sum_k f_old(s - k) P_jk(theta).
    """
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    p = params.prob(t)  # (J, K, Q)
    max_score = int((params.n_categories - 1).sum())
    f = np.zeros((max_score + 1, t.size))
    f[0] = 1.0
    top = 0
    for j in range(params.n_items):
        k_n = int(params.n_categories[j])
        new = np.zeros_like(f)
        for k in range(k_n):
            new[k : top + k + 1] += f[: top + 1] * p[j, k]
        f = new
        top += k_n - 1
    return f


@dataclass
class SummedScoreTable:
    """EAP[theta | summed score] conversion (Thissen et al., 1995).

    ``probability[s]`` is the model-implied proportion of the population with summed score s.
    """

    scores: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    probability: np.ndarray

    def lookup(self, summed_score) -> tuple[np.ndarray, np.ndarray]:
        s = np.asarray(summed_score)
        if np.any((s < 0) | (s > self.scores[-1]) | (s != np.round(s))):
            raise PsychometricsError(f"summed_score must be integers in 0..{int(self.scores[-1])}")
        idx = s.astype(int)
        return self.theta[idx], self.se[idx]

    def to_dict(self) -> dict:
        return {
            "rows": [
                {"score": int(s), "theta": float(t), "se": float(e), "probability": float(p)}
                for s, t, e, p in zip(self.scores, self.theta, self.se, self.probability)
            ]
        }


def summed_score_table(
    params: ItemParameters,
    *,
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
) -> SummedScoreTable:
    """EAP ability and posterior SD for every summed score of the full item set."""
    _check_prior(prior_mean, prior_sd)
    quad = normal_quadrature(n_quad, max(bound, abs(prior_mean) + bound), prior_mean, prior_sd)
    like = lord_wingersky(params, quad.points)
    joint = like * quad.weights
    marg = joint.sum(axis=1)
    post = joint / np.maximum(marg[:, None], 1e-300)
    mean = post @ quad.points
    var = post @ quad.points**2 - mean**2
    return SummedScoreTable(
        scores=np.arange(like.shape[0]),
        theta=mean,
        se=np.sqrt(np.maximum(var, 0.0)),
        probability=marg,
    )
