"""Cut scores and equating through the test characteristic curve and the observed-score model.

Every function takes the items of a form as one :class:`ItemParameters` (any set of items:
dichotomous, polytomous, or mixed when the parameters hold one model per item) on one theta
scale. Forms calibrated separately must be linked first (:func:`psychometrics.link`).

* Test characteristic curve (Lord, 1980, eq. 4-5): ``T(theta) = sum_j sum_k k P_jk(theta)``,
  the expected raw score. :func:`raw_for_theta` evaluates it; :func:`theta_for_raw` inverts it
  (T is strictly increasing when every slope is positive), which carries a raw cut score to the
  theta scale and back.
* IRT true-score equating (Lord, 1980, ch. 13; Kolen & Brennan, 2014, sec. 6.6.2): the form-X
  score x maps to ``T_Y(T_X^{-1}(x))``. Below the lowest attainable true score of form X (the sum
  of the 3PL lower asymptotes) x maps linearly from (0, 0) to (sum c_X, sum c_Y) (Kolen, 1981;
  Kolen & Brennan, 2014, eq. 6.27), and the maximum maps to the maximum.
* IRT observed-score equating (Lord, 1980; Zeng & Kolen, 1995; Kolen & Brennan, 2014,
  sec. 6.6.3): the summed-score distribution of each form is ``f(x) = sum_q P(x | X_q) A_q`` with
  ``P(x | theta)`` from the Lord-Wingersky (1984) recursion and ``A_q`` the (synthetic) population's
  latent distribution; the two distributions are then equated equipercentile.
* Equipercentile equating (Kolen & Brennan, 2014, eqs. 2.14-2.18): percentile ranks of the
  continuized discrete distribution, ``P(x) = F(x - 1) + f(x) / 2`` at integer x, inverted on form
  Y with the upper definition ``y_U`` (the smallest score with ``F(y) > p``).
* Raw-to-scale conversion tables with conditional SEMs: the raw-score CSEM at theta is
  ``sqrt(sum_j Var(x_j | theta))`` (Lord, 1980, eq. 4-3), and the scale-score CSEM at theta is
  ``sqrt(sum_s sc(s)^2 P(s | theta) - (sum_s sc(s) P(s | theta))^2)`` over the conversion
  ``sc`` (Kolen, Zeng & Hanson, 1996), evaluated at the theta of each raw score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from psychometrics.calibration import Calibration, _num
from psychometrics.errors import PsychometricsError
from psychometrics.irt.information import conditional_sem
from psychometrics.irt.models import ItemParameters
from psychometrics.irt.quadrature import DEFAULT_BOUND, DEFAULT_N_QUAD, normal_quadrature
from psychometrics.scoring import lord_wingersky, summed_score_table

DEFAULT_THETA_BOUNDS = (-10.0, 10.0)
_BISECTIONS = 200


def _check_params(params, name: str = "params") -> ItemParameters:
    if not isinstance(params, ItemParameters):
        raise TypeError(f"{name} must be ItemParameters, got {type(params).__name__}")
    if np.any(params.a <= 0):
        j = int(np.flatnonzero(params.a <= 0)[0])
        raise PsychometricsError(
            f"{name}: item {j} has slope a = {params.a[j]:g} <= 0; the test characteristic curve"
            " is then not increasing and cannot be inverted"
        )
    return params


def max_score(params: ItemParameters) -> int:
    """Highest attainable raw (summed) score: sum over items of (categories - 1)."""
    return int((np.asarray(params.n_categories) - 1).sum())


def lowest_true_score(params: ItemParameters) -> float:
    """Lower asymptote of the test characteristic curve: the sum of the guessing parameters."""
    return float(np.asarray(params.c, dtype=float).sum())


def raw_for_theta(params: ItemParameters, theta) -> np.ndarray:
    """Expected raw score (true score) at each theta: the test characteristic curve
    ``T(theta) = sum_j E[x_j | theta]`` (Lord, 1980, eq. 4-5). Shape of ``theta`` (1-d).

    A theta cut carried to a whole raw cut ("at least") is ``ceil(raw_for_theta(params, cut))``.
    """
    if not isinstance(params, ItemParameters):
        raise TypeError(f"params must be ItemParameters, got {type(params).__name__}")
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise PsychometricsError("theta must be a finite scalar or 1-d array")
    return params.expected_score(t).sum(axis=0)


def theta_for_raw(
    params: ItemParameters,
    raw,
    *,
    bounds: tuple[float, float] = DEFAULT_THETA_BOUNDS,
) -> np.ndarray:
    """Theta at which the test characteristic curve equals ``raw``: ``T^{-1}(raw)``.

    ``raw`` (scalar or 1-d, need not be an integer: a cut may be a true score) must lie strictly
    between the curve's lower asymptote (the sum of the 3PL guessing parameters, 0 without them)
    and the maximum score, where the inverse exists; the root is found by bisection on ``bounds``
    (to machine precision) and must lie inside them.
    """
    params = _check_params(params)
    r = np.atleast_1d(np.asarray(raw, dtype=float))
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise PsychometricsError("raw must be a finite scalar or 1-d array")
    lo_b, hi_b = (float(v) for v in bounds)
    if not lo_b < hi_b:
        raise PsychometricsError(f"bounds must satisfy lower < upper, got {bounds!r}")
    floor, top = lowest_true_score(params), max_score(params)
    bad = (r <= floor) | (r >= top)
    if bad.any():
        v = float(r[np.flatnonzero(bad)[0]])
        raise PsychometricsError(
            f"raw = {v:g} has no theta: raw must lie strictly between the lowest true score "
            f"{floor:.4g} (sum of the guessing parameters) and the maximum score {top}"
        )
    t_lo, t_hi = raw_for_theta(params, [lo_b, hi_b])
    outside = (r < t_lo) | (r > t_hi)
    if outside.any():
        v = float(r[np.flatnonzero(outside)[0]])
        raise PsychometricsError(
            f"raw = {v:g} needs a theta outside bounds {bounds!r} (T ranges {t_lo:.4g}.."
            f"{t_hi:.4g} there); widen bounds"
        )
    lo = np.full(r.shape, lo_b)
    hi = np.full(r.shape, hi_b)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        below = raw_for_theta(params, mid) < r
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        if np.all(hi - lo <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(mid))):
            break
    return 0.5 * (lo + hi)


@dataclass
class EquatingTable:
    """Form-Y equivalents of form-X raw scores.

    ``theta`` is the form-X theta of each score for true-score equating (NaN where the score is
    at or below the lowest true score, or at the maximum, where the ad hoc rules apply) and is
    None for observed-score equating, which carries ``prob_x`` and ``prob_y``: the model-implied
    summed-score distributions that were equated.
    """

    method: str
    scores: np.ndarray
    equivalents: np.ndarray
    theta: np.ndarray | None = None
    prob_x: np.ndarray | None = None
    prob_y: np.ndarray | None = None

    def lookup(self, score) -> np.ndarray:
        """Form-Y equivalents of integer form-X scores."""
        return self.equivalents[_score_index(score, self.scores[-1], "score")]

    def to_dict(self) -> dict:
        rows = []
        for i, s in enumerate(self.scores):
            row = {"score": int(s), "equivalent": float(self.equivalents[i])}
            if self.theta is not None:
                row["theta"] = _num(self.theta[i])
            if self.prob_x is not None:
                row["prob_x"] = float(self.prob_x[i])
            rows.append(row)
        doc = {"method": self.method, "rows": rows}
        if self.prob_y is not None:
            doc["prob_y"] = [float(v) for v in self.prob_y]
        return doc


def _score_index(values, top: float, name: str) -> np.ndarray:
    """Integer indices of the whole scores ``values`` in 0..``top``; anything else raises,
    naming the argument ``name``."""
    s = np.asarray(values, dtype=float)
    if np.any((s < 0) | (s > top) | (s != np.round(s))):
        raise PsychometricsError(f"{name} must be integers in 0..{int(top)}")
    return s.astype(int)


def true_score_equating(
    form_x: ItemParameters,
    form_y: ItemParameters,
    *,
    bounds: tuple[float, float] = (-40.0, 40.0),
) -> EquatingTable:
    """IRT true-score equating of every form-X raw score to the form-Y scale (Lord, 1980;
    Kolen & Brennan, 2014, sec. 6.6.2), both forms' parameters on one theta scale.

    Scores strictly between form X's lowest true score and its maximum go through
    ``T_Y(T_X^{-1}(x))``; scores at or below the lowest true score map linearly from (0, 0) to
    (sum c_X, sum c_Y) (Kolen, 1981); the maximum maps to form Y's maximum.
    """
    form_x = _check_params(form_x, "form_x")
    form_y = _check_params(form_y, "form_y")
    top_x, top_y = max_score(form_x), max_score(form_y)
    floor_x, floor_y = lowest_true_score(form_x), lowest_true_score(form_y)
    scores = np.arange(top_x + 1)
    theta = np.full(scores.size, np.nan)
    equiv = np.empty(scores.size)
    inside = (scores > floor_x) & (scores < top_x)
    if inside.any():
        theta[inside] = theta_for_raw(form_x, scores[inside], bounds=bounds)
        equiv[inside] = raw_for_theta(form_y, theta[inside])
    low = scores <= floor_x
    equiv[low] = scores[low] * (floor_y / floor_x) if floor_x > 0 else 0.0
    equiv[scores == top_x] = top_y
    return EquatingTable("irt-true-score", scores, equiv, theta=theta)


def equipercentile(prob_x, prob_y) -> np.ndarray:
    """Equipercentile equivalents on Y of the scores 0..len(prob_x)-1 of X (Kolen & Brennan,
    2014, eqs. 2.14-2.18, integer scores one apart).

    ``prob_x`` and ``prob_y`` are relative frequencies (or counts) of the scores 0, 1, ... on each
    form. The percentile rank of integer x is ``P(x) = F(x - 1) + f(x) / 2`` and its equivalent is
    ``(P - F(y_U - 1)) / f(y_U) + y_U - 1/2`` with ``y_U`` the smallest Y score with F(y) > P.
    """
    fx = _distribution(prob_x, "prob_x")
    fy = _distribution(prob_y, "prob_y")
    cum_x = np.cumsum(fx)
    cum_y = np.cumsum(fy)
    cum_y[-1] = 1.0
    rank = cum_x - fx / 2.0  # F(x - 1) + f(x) / 2
    out = np.empty(fx.size)
    for i, p in enumerate(rank):
        if p >= 1.0:  # only a zero-probability top can reach 1; map it to the top of Y
            out[i] = fy.size - 0.5
            continue
        y_u = int(np.searchsorted(cum_y, p, side="right"))
        below = cum_y[y_u - 1] if y_u > 0 else 0.0
        out[i] = (p - below) / fy[y_u] + y_u - 0.5
    return out


def _distribution(prob, name: str) -> np.ndarray:
    f = np.asarray(prob, dtype=float)
    if f.ndim != 1 or f.size < 2:
        raise PsychometricsError(f"{name} must be a 1-d array of at least 2 score probabilities")
    if not np.all(np.isfinite(f)) or np.any(f < 0) or f.sum() <= 0:
        raise PsychometricsError(f"{name} must hold non-negative finite values with a positive sum")
    return f / f.sum()


def _latent_weights(theta, weights, latent_mean, latent_sd, n_quad, bound):
    """Quadrature nodes and weights of the (synthetic) population's latent distribution."""
    if theta is None:
        quad = normal_quadrature(n_quad, bound, latent_mean, latent_sd)
        return quad.points, quad.weights
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    w = np.atleast_1d(np.asarray(weights, dtype=float)) if weights is not None else None
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise PsychometricsError("theta must be a finite 1-d array of quadrature nodes")
    if w is None or w.shape != t.shape:
        raise PsychometricsError("weights must be given with theta, one weight per node")
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise PsychometricsError("weights must be non-negative and finite with a positive sum")
    return t, w / w.sum()


def observed_score_distribution(
    params: ItemParameters,
    *,
    theta=None,
    weights=None,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
) -> np.ndarray:
    """Model-implied summed-score distribution ``f(s) = sum_q P(s | X_q) A_q``, s = 0..max
    (Lord & Wingersky, 1984). The population is N(latent_mean, latent_sd^2) on ``n_quad`` nodes
    on [-bound, bound], or the given ``theta`` nodes with ``weights``."""
    if not isinstance(params, ItemParameters):
        raise TypeError(f"params must be ItemParameters, got {type(params).__name__}")
    t, w = _latent_weights(theta, weights, latent_mean, latent_sd, n_quad, bound)
    return lord_wingersky(params, t) @ w


def observed_score_equating(
    form_x: ItemParameters,
    form_y: ItemParameters,
    *,
    theta=None,
    weights=None,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
) -> EquatingTable:
    """IRT observed-score equating (Lord, 1980; Zeng & Kolen, 1995; Kolen & Brennan, 2014,
    sec. 6.6.3): the Lord-Wingersky summed-score distributions of both forms over one population
    (the synthetic population of a common-item design: pass its nodes ``theta`` and ``weights``,
    e.g. ``w1 g1 + w2 g2`` on one grid), equated equipercentile.

    For two groups N(mu1, sd1^2) and N(mu2, sd2^2) on the common scale, weighted w1 and w2::

        q1 = normal_quadrature(61, 6.0, mu1, sd1)   # the nodes do not move with mu and sd
        q2 = normal_quadrature(61, 6.0, mu2, sd2)
        observed_score_equating(x, y, theta=q1.points, weights=w1 * q1.weights + w2 * q2.weights)
    """
    for name, p in (("form_x", form_x), ("form_y", form_y)):
        if not isinstance(p, ItemParameters):
            raise TypeError(f"{name} must be ItemParameters, got {type(p).__name__}")
    options = {
        "theta": theta,
        "weights": weights,
        "latent_mean": latent_mean,
        "latent_sd": latent_sd,
        "n_quad": n_quad,
        "bound": bound,
    }
    fx = observed_score_distribution(form_x, **options)
    fy = observed_score_distribution(form_y, **options)
    equiv = equipercentile(fx, fy)
    # the equipercentile range is [-1/2, max + 1/2]; report within the score range
    equiv = np.clip(equiv, -0.5, max_score(form_y) + 0.5)
    return EquatingTable(
        "irt-observed-score", np.arange(fx.size), equiv, prob_x=fx, prob_y=fy
    )


ScaleSpec = Callable[[np.ndarray], np.ndarray] | tuple[float, float] | None


@dataclass
class ConversionTable:
    """Raw-to-scale conversion of one form with conditional standard errors at each raw score.

    Per raw score s = 0..max: ``theta`` (the theta the scale is computed from: EAP[theta | s] or
    the test characteristic curve's inverse), ``se_theta`` (posterior SD for EAP, 1 / sqrt(I) for
    the TCC), ``scale`` (the reported scale score), ``csem_raw`` and ``csem_scale`` (Lord, 1980;
    Kolen, Zeng & Hanson, 1996, at ``theta``) and ``probability`` (model-implied proportion of the
    population with score s).
    """

    theta_from: str
    scores: np.ndarray
    theta: np.ndarray
    se_theta: np.ndarray
    scale: np.ndarray
    csem_raw: np.ndarray
    csem_scale: np.ndarray
    probability: np.ndarray
    clipped: np.ndarray

    def lookup(self, raw) -> np.ndarray:
        """Scale scores of integer raw scores."""
        return self.scale[_score_index(raw, self.scores[-1], "raw")]

    def to_dict(self) -> dict:
        return {
            "theta_from": self.theta_from,
            "rows": [
                {
                    "raw": int(self.scores[i]),
                    "theta": _num(self.theta[i]),
                    "se_theta": _num(self.se_theta[i]),
                    "scale": _num(self.scale[i]),
                    "csem_raw": _num(self.csem_raw[i]),
                    "csem_scale": _num(self.csem_scale[i]),
                    "probability": float(self.probability[i]),
                    "theta_clipped": bool(self.clipped[i]),
                }
                for i in range(self.scores.size)
            ],
        }


def _scale_function(scale: ScaleSpec, decimals: int | None, limits) -> Callable:
    if scale is None:
        base = lambda t: np.asarray(t, dtype=float)
    elif callable(scale):
        base = scale
    else:
        try:
            slope, intercept = (float(v) for v in scale)
        except (TypeError, ValueError):
            raise PsychometricsError(
                f"scale must be a callable or (slope, intercept); got {scale!r}"
            ) from None
        if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
            raise PsychometricsError(f"scale slope must be finite and non-zero; got {scale!r}")
        base = lambda t: slope * np.asarray(t, dtype=float) + intercept
    if limits is not None:
        lo, hi = (float(v) for v in limits)
        if not lo < hi:
            raise PsychometricsError(f"scale_limits must satisfy lower < upper, got {limits!r}")

    def convert(theta):
        out = np.asarray(base(np.asarray(theta, dtype=float)), dtype=float)
        if limits is not None:
            out = np.clip(out, lo, hi)
        if decimals is not None:  # halves away from zero as reports do (numpy rounds to even)
            f = 10.0 ** int(decimals)
            out = np.sign(out) * np.floor(np.abs(out) * f + 0.5) / f
        return out

    return convert


def conversion_table(
    params: ItemParameters | Calibration,
    *,
    scale: ScaleSpec = None,
    decimals: int | None = None,
    scale_limits: tuple[float, float] | None = None,
    theta_from: str = "eap",
    theta_limits: tuple[float, float] = (-4.0, 4.0),
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
) -> ConversionTable:
    """Raw-to-scale conversion table of a fixed form (or any set of items) with CSEMs.

    Parameters
    ----------
    params : the form's items on the reporting theta scale; a Calibration also gives the latent
        mean and SD (else ``latent_mean``, ``latent_sd``) that EAP scoring uses.
    scale : ``(slope, intercept)`` for ``scale = slope * theta + intercept``, any vectorised
        callable of theta, or None for theta itself.
    decimals, scale_limits : round reported scale scores (halves away from zero), clip them to
        [lower, upper].
    theta_from : "eap" (EAP[theta | raw score] from the Lord-Wingersky recursion, Thissen et al.,
        1995; defined for every raw score) or "tcc" (the test characteristic curve's inverse,
        true-score scoring; raw scores with no inverse, at or below the lowest true score or at
        the maximum, take ``theta_limits``).
    theta_limits : thetas are clipped to this range (``clipped`` marks the rows).

    The conditional SEMs are computed at each row's theta: on the raw metric
    ``sqrt(sum_j Var(x_j | theta))`` and on the scale metric (Kolen, Zeng & Hanson, 1996)
    ``sqrt(sum_s sc(s)^2 P(s | theta) - (sum_s sc(s) P(s | theta))^2)`` with ``sc`` this table's
    conversion and ``P(s | theta)`` from the Lord-Wingersky recursion.
    """
    if isinstance(params, Calibration):
        latent_mean, latent_sd = params.latent_mean, params.latent_sd
        params = params.params
    params = _check_params(params)
    theta_from = str(theta_from).lower()
    if theta_from not in ("eap", "tcc"):
        raise PsychometricsError(f"theta_from must be 'eap' or 'tcc'; got {theta_from!r}")
    t_lo, t_hi = (float(v) for v in theta_limits)
    if not t_lo < t_hi:
        raise PsychometricsError(f"theta_limits must satisfy lower < upper, got {theta_limits!r}")
    convert = _scale_function(scale, decimals, scale_limits)
    table = summed_score_table(
        params, prior_mean=latent_mean, prior_sd=latent_sd, n_quad=n_quad, bound=bound
    )
    scores = table.scores
    if theta_from == "eap":
        theta = table.theta.copy()
        se = table.se.copy()
    else:
        theta = np.where(scores <= lowest_true_score(params), t_lo, t_hi).astype(float)
        inside = (scores > lowest_true_score(params)) & (scores < scores[-1])
        if inside.any():
            theta[inside] = theta_for_raw(params, scores[inside], bounds=(-40.0, 40.0))
        se = np.full(scores.size, np.nan)
    clipped = (theta < t_lo) | (theta > t_hi) | ~np.isfinite(theta)
    if theta_from == "tcc":
        clipped |= ~inside  # no inverse: the row took a theta limit
    theta = np.clip(theta, t_lo, t_hi)
    if theta_from == "tcc":
        se = conditional_sem(params, theta)
    scale_scores = convert(theta)
    p_s = lord_wingersky(params, theta)  # P(s | theta_row), (S+1, rows)
    mean_sc = scale_scores @ p_s
    var_sc = (scale_scores**2) @ p_s - mean_sc**2
    csem_scale = np.sqrt(np.maximum(var_sc, 0.0))
    return ConversionTable(
        theta_from=theta_from,
        scores=scores,
        theta=theta,
        se_theta=se,
        scale=scale_scores,
        csem_raw=raw_score_sem(params, theta),
        csem_scale=csem_scale,
        probability=table.probability,
        clipped=clipped,
    )


def raw_score_sem(params: ItemParameters, theta) -> np.ndarray:
    """Conditional SEM of the raw score at theta, ``sqrt(sum_j Var(x_j | theta))`` (Lord, 1980,
    eq. 4-3; for 0/1 items ``sqrt(sum_j P_j (1 - P_j))``)."""
    if not isinstance(params, ItemParameters):
        raise TypeError(f"params must be ItemParameters, got {type(params).__name__}")
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    p = params.prob(t)  # (J, K, Q)
    k = np.arange(p.shape[1], dtype=float)
    mean = np.einsum("jkq,k->jq", p, k)
    second = np.einsum("jkq,k->jq", p, k**2)
    return np.sqrt(np.maximum(second - mean**2, 0.0).sum(axis=0))
