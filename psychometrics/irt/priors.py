"""Prior densities on item parameters for Bayes modal (maximum a posteriori) calibration.

The 3PL lower asymptote is weakly identified; following BILOG and Mislevy (1986) it gets a Beta
prior, c ~ Beta(alpha, beta), whose default Beta(5, 17) has its mode at 0.2. Slopes may get a
log-normal prior, log a ~ N(mu, sigma^2) (Mislevy, 1986), which keeps near-Guttman items finite.
Densities are expressed on the slope-intercept parameters ``xi`` (see :mod:`irt.models`) and
return per-item log densities, gradients and diagonal negative Hessians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from psychometrics.errors import PsychometricsError


@dataclass(frozen=True)
class ItemPriors:
    """``c_beta=(alpha, beta)`` for the 3PL asymptote; ``a_lognormal=(mu, sigma)`` for slopes."""

    c_beta: tuple[float, float] | None = None
    a_lognormal: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.c_beta is not None and (len(self.c_beta) != 2 or min(self.c_beta) < 1):
            raise PsychometricsError(f"c_prior must be (alpha, beta) with both >= 1, got {self.c_beta!r}")
        if self.a_lognormal is not None and (
            len(self.a_lognormal) != 2 or not self.a_lognormal[1] > 0
        ):
            raise PsychometricsError(
                f"a_prior must be (mu, sigma) with sigma > 0, got {self.a_lognormal!r}"
            )

    def active(self, model) -> bool:
        """``model`` is one name or one per item (a mixed-format test)."""
        return self.a_lognormal is not None or (self.c_beta is not None and _any_3pl(model))

    def logpdf(self, model: str, xi: np.ndarray) -> np.ndarray:
        out = np.zeros(xi.shape[0])
        if self.a_lognormal is not None:
            mu, sigma = self.a_lognormal
            a = np.maximum(xi[:, 0], 1e-8)
            out += -np.log(a) - (np.log(a) - mu) ** 2 / (2 * sigma**2)
        if self.c_beta is not None and _any_3pl(model):
            alpha, beta = self.c_beta
            c = expit(np.where(_rows_3pl(model, xi) > 0, xi[:, 2], 0.0))
            out += _rows_3pl(model, xi) * ((alpha - 1) * np.log(c) + (beta - 1) * np.log1p(-c))
        return out

    def gradient(self, model: str, xi: np.ndarray) -> np.ndarray:
        out = np.zeros_like(xi)
        if self.a_lognormal is not None:
            mu, sigma = self.a_lognormal
            a = np.maximum(xi[:, 0], 1e-8)
            out[:, 0] = -1 / a - (np.log(a) - mu) / (sigma**2 * a)
        if self.c_beta is not None and _any_3pl(model):
            alpha, beta = self.c_beta
            c = expit(np.where(_rows_3pl(model, xi) > 0, xi[:, 2], 0.0))
            out[:, 2] = _rows_3pl(model, xi) * ((alpha - 1) * (1 - c) - (beta - 1) * c)
        return out

    def neg_hessian_diag(self, model: str, xi: np.ndarray) -> np.ndarray:
        out = np.zeros_like(xi)
        if self.a_lognormal is not None:
            mu, sigma = self.a_lognormal
            a = np.maximum(xi[:, 0], 1e-8)
            out[:, 0] = -(1 / a**2 - (1 - (np.log(a) - mu)) / (sigma**2 * a**2))
        if self.c_beta is not None and _any_3pl(model):
            alpha, beta = self.c_beta
            c = expit(np.where(_rows_3pl(model, xi) > 0, xi[:, 2], 0.0))
            out[:, 2] = _rows_3pl(model, xi) * (alpha + beta - 2) * c * (1 - c)
        return out


def _any_3pl(model) -> bool:
    return model == "3pl" if isinstance(model, str) else "3pl" in model


def _rows_3pl(model, xi: np.ndarray) -> np.ndarray:
    """1.0 for the rows (items) that are 3PL, else 0.0: the asymptote prior applies only there."""
    if isinstance(model, str):
        return np.ones(xi.shape[0])
    return np.array([m == "3pl" for m in model], dtype=float)
