"""Quadrature grids for the latent trait distribution.

Marginal maximum likelihood integrates over theta ~ N(mu, sigma^2) with a rectangular rule on an
equally spaced grid (Bock & Aitkin, 1981), the scheme mirt and BILOG use: nodes X_q on
[-bound, bound] and weights A_q proportional to the normal density at X_q, summing to one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psychometrics.errors import PsychometricsError

DEFAULT_N_QUAD = 61
DEFAULT_BOUND = 6.0


@dataclass(frozen=True)
class Quadrature:
    """Nodes ``points`` (Q,) and weights ``weights`` (Q,) that sum to one."""

    points: np.ndarray
    weights: np.ndarray

    @property
    def n(self) -> int:
        return int(self.points.size)


def normal_quadrature(
    n_quad: int = DEFAULT_N_QUAD, bound: float = DEFAULT_BOUND, mean: float = 0.0, sd: float = 1.0
) -> Quadrature:
    """Equally spaced nodes on ``[-bound, bound]`` weighted by the N(mean, sd^2) density.

    The nodes stay fixed when ``mean``/``sd`` change, which is what the empirical-prior update in
    fixed-parameter calibration needs (Kim, 2006).
    """
    if int(n_quad) != n_quad or n_quad < 5:
        raise PsychometricsError(f"n_quad must be an integer >= 5, got {n_quad!r}")
    if not np.isfinite(bound) or bound <= 0:
        raise PsychometricsError(f"bound must be a positive number, got {bound!r}")
    if not sd > 0:
        raise PsychometricsError(f"sd must be positive, got {sd!r}")
    points = np.linspace(-bound, bound, int(n_quad))
    log_w = -0.5 * ((points - mean) / sd) ** 2
    weights = np.exp(log_w - log_w.max())
    weights /= weights.sum()
    return Quadrature(points=points, weights=weights)


def posterior_moments(quad: Quadrature, node_mass: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the latent distribution carried by ``node_mass`` (Q,)."""
    total = node_mass.sum()
    mean = float(node_mass @ quad.points / total)
    var = float(node_mass @ (quad.points - mean) ** 2 / total)
    return mean, float(np.sqrt(max(var, 1e-12)))
