"""IRT reliability: marginal, empirical, summed-score (EAP by summed score) and conditional curves.

* Marginal reliability (Green, Bock, Humphreys, Linn & Reckase, 1984; Thissen, 2000): the
  population average of the conditional reliability,
  ``rho = integral sigma^2 I(theta) / (sigma^2 I(theta) + 1) g(theta) d theta``
  with ``g = N(mu, sigma^2)`` and ``I`` the test information (error variance 1 / I(theta) against
  true variance sigma^2). With sigma = 1 this is mirt's ``marginal_rxx``, ``I / (I + 1)``; for
  other sigma mirt divides by ``I + sigma^2``, which we do not follow.
* Empirical reliability (mirt's ``empirical_rxx``; du Toit, 2003): from ability estimates and
  their standard errors, ``var(theta_hat) / (var(theta_hat) + mean(se^2))`` (sample variance with
  n - 1, as R's ``var``).
* Summed-score reliability: the empirical reliability of EAP[theta | summed score] (Thissen,
  Pommerich, Billeaud & Williams, 1995) over the persons, which is mirt's ``rxx_F1`` from
  ``fscores(method = "EAPsum", full.scores = FALSE)``; with it the model-implied coefficient alpha
  of the summed score, ``J / (J - 1) (1 - sum_j var(x_j) / var(X))`` from the model's marginal
  item and summed-score distributions (mirt's ``rxx.alpha``).
* Conditional SEM curves over a theta grid for charts: test information, ``SEM = 1 / sqrt(I)``,
  the raw-score CSEM ``sqrt(sum_j Var(x_j | theta))`` (Lord, 1980), the test characteristic curve
  and the conditional reliability ``sigma^2 I / (sigma^2 I + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psychometrics.calibration import Calibration
from psychometrics.data import check_responses
from psychometrics.equating import raw_for_theta, raw_score_sem
from psychometrics.errors import PsychometricsError
from psychometrics.irt.information import test_information
from psychometrics.irt.models import ItemParameters
from psychometrics.irt.quadrature import DEFAULT_BOUND, DEFAULT_N_QUAD, normal_quadrature
from psychometrics.scoring import lord_wingersky, summed_score_table

# marginal reliability integrates over this many equally spaced nodes per latent SD either side
_MARGINAL_NODES = 401
_MARGINAL_SDS = 8.0


def responses_for(responses, params: ItemParameters) -> np.ndarray:
    """``responses`` as a float array checked against ``params``: one column per item, every
    answered score within its item's categories (missing cells, NaN, pass)."""
    x = check_responses(responses, name="responses")
    if x.shape[1] != params.n_items:
        raise PsychometricsError(
            f"responses has {x.shape[1]} items but params describes {params.n_items}"
        )
    over = ~np.isnan(x) & (x >= np.asarray(params.n_categories)[None, :])
    if over.any():
        i, j = np.argwhere(over)[0]
        raise PsychometricsError(
            f"responses[{i}, {j}] = {x[i, j]:g} is outside item {j}'s categories"
        )
    return x


def _unpack(params, latent_mean, latent_sd):
    """ItemParameters and the latent distribution, from a Calibration when one is given."""
    if isinstance(params, Calibration):
        return params.params, params.latent_mean, params.latent_sd
    if not isinstance(params, ItemParameters):
        raise TypeError(
            f"params must be ItemParameters or a Calibration, got {type(params).__name__}"
        )
    if not np.isfinite(latent_mean):
        raise PsychometricsError(f"latent_mean must be finite, got {latent_mean!r}")
    if not latent_sd > 0:
        raise PsychometricsError(f"latent_sd must be positive, got {latent_sd!r}")
    return params, float(latent_mean), float(latent_sd)


def marginal_reliability(
    params: ItemParameters | Calibration,
    *,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
) -> float:
    """Marginal IRT reliability ``E_g[sigma^2 I(theta) / (sigma^2 I(theta) + 1)]`` over
    theta ~ N(latent_mean, latent_sd^2) (Green et al., 1984). A Calibration supplies its latent
    mean and SD."""
    params, mu, sd = _unpack(params, latent_mean, latent_sd)
    z = np.linspace(-_MARGINAL_SDS, _MARGINAL_SDS, _MARGINAL_NODES)
    w = np.exp(-0.5 * z**2)
    w /= w.sum()
    info = test_information(params, mu + sd * z)
    return float((sd**2 * info / (sd**2 * info + 1.0)) @ w)


def empirical_reliability(theta, se) -> float:
    """Empirical reliability ``var(theta) / (var(theta) + mean(se^2))`` over persons with a
    finite estimate and standard error (mirt's ``empirical_rxx``; variance with n - 1)."""
    t = np.asarray(theta, dtype=float).reshape(-1)
    e = np.asarray(se, dtype=float).reshape(-1)
    if t.shape != e.shape:
        raise PsychometricsError(
            f"theta and se must have one value per person; got {t.size} and {e.size}"
        )
    ok = np.isfinite(t) & np.isfinite(e)
    if ok.sum() < 2:
        raise PsychometricsError("theta: empirical reliability needs at least 2 finite estimates")
    var = float(np.var(t[ok], ddof=1))
    return var / (var + float(np.mean(e[ok] ** 2)))


@dataclass
class SummedScoreReliability:
    """Reliability of EAP-by-summed-score estimates (``rxx``, mirt's ``rxx_F1``) and the
    model-implied coefficient alpha of the summed score (``alpha``, mirt's ``rxx.alpha``) with
    its SEM ``sqrt(var(X) (1 - alpha))``."""

    rxx: float
    alpha: float
    sem_alpha: float
    n_persons: int
    expected_score: float
    score_variance: float

    def to_dict(self) -> dict:
        return {
            "rxx": self.rxx,
            "alpha": self.alpha,
            "sem_alpha": self.sem_alpha,
            "n_persons": self.n_persons,
            "expected_score": self.expected_score,
            "score_variance": self.score_variance,
        }


def summed_score_reliability(
    responses,
    params: ItemParameters | Calibration,
    *,
    latent_mean: float = 0.0,
    latent_sd: float = 1.0,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
) -> SummedScoreReliability:
    """Reliability of the summed-score EAP conversion over the persons in ``responses``.

    Every person gets EAP[theta | summed score] and its posterior SD from the Lord-Wingersky
    table (Thissen et al., 1995); ``rxx`` is their empirical reliability (mirt's ``rxx_F1`` of
    ``fscores(method = "EAPsum")``). Persons must have answered every item (a summed score over
    different item sets is not one scale): a row with a missing response is refused.
    """
    params, mu, sd = _unpack(params, latent_mean, latent_sd)
    x = responses_for(responses, params)
    missing = np.isnan(x).any(axis=1)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise PsychometricsError(
            f"responses row {i} has a missing response; summed-score reliability needs persons"
            " who answered every item (drop the incomplete rows first)"
        )
    table = summed_score_table(params, prior_mean=mu, prior_sd=sd, n_quad=n_quad, bound=bound)
    total = x.sum(axis=1).astype(int)
    rxx = empirical_reliability(table.theta[total], table.se[total])
    alpha, mean_x, var_x = _model_alpha(params, mu, sd, n_quad, bound)
    return SummedScoreReliability(
        rxx=rxx,
        alpha=alpha,
        sem_alpha=float(np.sqrt(var_x * max(1.0 - alpha, 0.0))),
        n_persons=int(x.shape[0]),
        expected_score=mean_x,
        score_variance=var_x,
    )


def _model_alpha(params, mu, sd, n_quad, bound) -> tuple[float, float, float]:
    quad = normal_quadrature(n_quad, bound, mu, sd)
    f = lord_wingersky(params, quad.points) @ quad.weights
    s = np.arange(f.size)
    mean_x = float(s @ f)
    var_x = float(((s - mean_x) ** 2) @ f)
    p = params.prob(quad.points) @ quad.weights  # (J, K) marginal category probabilities
    k = np.arange(p.shape[1], dtype=float)
    item_var = p @ k**2 - (p @ k) ** 2
    j = params.n_items
    alpha = (j / (j - 1)) * (1 - item_var.sum() / var_x) if j > 1 and var_x > 0 else np.nan
    return float(alpha), mean_x, var_x


@dataclass
class ConditionalSEMCurve:
    """Arrays over a theta grid for the workspace's charts (one value per ``theta``)."""

    theta: np.ndarray
    information: np.ndarray
    sem: np.ndarray
    raw_sem: np.ndarray
    expected_score: np.ndarray
    reliability: np.ndarray

    def to_dict(self) -> dict:
        def arr(v):
            return [float(x) if np.isfinite(x) else None for x in v]

        return {
            "theta": arr(self.theta),
            "information": arr(self.information),
            "sem": arr(self.sem),
            "raw_sem": arr(self.raw_sem),
            "expected_score": arr(self.expected_score),
            "reliability": arr(self.reliability),
        }


def conditional_sem_curve(
    params: ItemParameters | Calibration,
    theta=None,
    *,
    latent_sd: float = 1.0,
) -> ConditionalSEMCurve:
    """Test information, SEM = 1 / sqrt(I), raw-score CSEM, test characteristic curve and
    conditional reliability ``sigma^2 I / (sigma^2 I + 1)`` at each theta (default: 81 points on
    [-4, 4]). ``latent_sd`` (a Calibration's own by default) only enters the reliability."""
    params, _, sd = _unpack(params, 0.0, latent_sd)
    t = np.linspace(-4.0, 4.0, 81) if theta is None else np.asarray(theta, dtype=float)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
        raise PsychometricsError("theta must be a non-empty finite 1-d grid")
    info = test_information(params, t)
    with np.errstate(divide="ignore"):
        sem = 1.0 / np.sqrt(info)
    return ConditionalSEMCurve(
        theta=t,
        information=info,
        sem=sem,
        raw_sem=raw_score_sem(params, t),
        expected_score=raw_for_theta(params, t),
        reliability=sd**2 * info / (sd**2 * info + 1.0),
    )
