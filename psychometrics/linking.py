"""Linking two calibrations through common items (Kolen & Brennan, 2014, ch. 6).

Find A, B with theta_base = A theta_new + B, so new-form parameters move to the base scale as
a* = a / A, b* = A b + B, c* = c. Methods:

* mean-sigma (Marco, 1977): A = sd(b_base) / sd(b_new), B = mean(b_base) - A mean(b_new)
* mean-mean (Loyd & Hoover, 1980): A = mean(a_new) / mean(a_base), B as above
* Haebara (1980): minimise sum_q w_q sum_j sum_k (P_jk(X_q; base) - P_jk(X_q; new*))^2
* Stocking-Lord (1983): minimise sum_q w_q (T(X_q; base) - T(X_q; new*))^2, T the test
  characteristic curve of the common items

Characteristic-curve criteria are integrated over N(0, 1) quadrature on the base scale and
minimised with BFGS from the mean-sigma solution. Polytomous thresholds use all b_jk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import ItemParameters
from psychometrics.irt.quadrature import normal_quadrature

METHODS = ("mean-sigma", "mean-mean", "haebara", "stocking-lord")


@dataclass(frozen=True)
class LinkingConstants:
    """theta_base = A * theta_new + B."""

    A: float
    B: float
    method: str
    criterion: float | None = None

    def transform(self, params: ItemParameters) -> ItemParameters:
        """Put new-form item parameters on the base scale."""
        return ItemParameters(
            params.model,
            params.a / self.A,
            self.A * params.b + self.B,
            params.c,
            params.n_categories,
        )

    def transform_theta(self, theta) -> np.ndarray:
        return self.A * np.asarray(theta, dtype=float) + self.B

    def to_dict(self) -> dict:
        return {"A": self.A, "B": self.B, "method": self.method, "criterion": self.criterion}


def link(
    new: ItemParameters,
    base: ItemParameters,
    method: str = "stocking-lord",
    *,
    n_quad: int = 41,
    bound: float = 4.0,
) -> LinkingConstants:
    """Linking constants from the common items' parameters on the new and base calibrations.

    ``new`` and ``base`` hold the same common items in the same order (use
    ``ItemParameters.subset`` to pick them).
    """
    method = str(method).lower().replace("_", "-")
    if method not in METHODS:
        raise PsychometricsError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if not isinstance(new, ItemParameters) or not isinstance(base, ItemParameters):
        raise TypeError("new and base must be ItemParameters")
    if new.model != base.model or new.n_items != base.n_items:
        raise PsychometricsError(
            f"new ({new.model}, {new.n_items} items) and base ({base.model}, {base.n_items} "
            "items) must hold the same common items under the same model"
        )
    if not np.array_equal(new.n_categories, base.n_categories):
        raise PsychometricsError("new and base common items differ in their category counts")
    if new.n_items < 2 and method in ("mean-sigma",):
        raise PsychometricsError("mean-sigma linking needs at least 2 common items")
    b_new, b_base = _flat_b(new), _flat_b(base)
    sd_new = b_new.std()
    if sd_new == 0:
        raise PsychometricsError("new: the common items' difficulties do not vary; use mean-mean")
    a_ms = b_base.std() / sd_new
    start = (a_ms, b_base.mean() - a_ms * b_new.mean())
    if method == "mean-sigma":
        return LinkingConstants(float(start[0]), float(start[1]), method)
    if method == "mean-mean":
        a_mm = new.a.mean() / base.a.mean()
        return LinkingConstants(float(a_mm), float(b_base.mean() - a_mm * b_new.mean()), method)
    quad = normal_quadrature(n_quad, bound)
    target_p = base.prob(quad.points)
    target_t = base.expected_score(quad.points).sum(axis=0)

    def loss(ab: np.ndarray) -> float:
        moved = LinkingConstants(float(ab[0]), float(ab[1]), method).transform(new)
        if method == "haebara":
            diff = ((target_p - moved.prob(quad.points)) ** 2).sum(axis=(0, 1))
        else:
            diff = (target_t - moved.expected_score(quad.points).sum(axis=0)) ** 2
        return float(diff @ quad.weights)

    res = optimize.minimize(loss, np.asarray(start), method="BFGS", options={"gtol": 1e-10})
    return LinkingConstants(float(res.x[0]), float(res.x[1]), method, float(res.fun))


def _flat_b(params: ItemParameters) -> np.ndarray:
    b = np.asarray(params.b, dtype=float).reshape(-1)
    return b[np.isfinite(b)]
