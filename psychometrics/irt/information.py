"""Item and test information, test characteristic curve and conditional SEM.

Fisher information of an item with category probabilities P_k(theta) (Samejima, 1969;
Lord, 1980, eq. 5-9)::

    I_j(theta) = sum_k P'_jk(theta)^2 / P_jk(theta)

which is a^2 P (1 - P) for the 2PL and a^2 (P - c)^2 (1 - P) / ((1 - c)^2 P) for the 3PL. The test
information is the sum over items, the conditional standard error of measurement is
1 / sqrt(I(theta)), and the test characteristic curve is T(theta) = sum_j E[x_j | theta].
Derivatives in theta are central differences of the exact response functions.
"""

from __future__ import annotations

import numpy as np

from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import ItemParameters

THETA_STEP = 1e-4


def _theta(theta) -> np.ndarray:
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise PsychometricsError("theta must be a finite scalar or 1-d array")
    return t


def category_derivatives(params: ItemParameters, theta) -> tuple[np.ndarray, ...]:
    """P, dP/dtheta and d2P/dtheta2, each (J, K, Q)."""
    t = _theta(theta)
    h = THETA_STEP
    p = params.prob(t)
    up = params.prob(t + h)
    dn = params.prob(t - h)
    return p, (up - dn) / (2 * h), (up - 2 * p + dn) / h**2


def item_information(params: ItemParameters, theta) -> np.ndarray:
    """Fisher information of each item at each theta, shape (J, Q)."""
    p, d1, _ = category_derivatives(params, theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 1e-300, d1**2 / p, 0.0)
    return terms.sum(axis=1)


def test_information(params: ItemParameters, theta) -> np.ndarray:
    """Test information I(theta) = sum_j I_j(theta), shape (Q,)."""
    return item_information(params, theta).sum(axis=0)


def conditional_sem(params: ItemParameters, theta) -> np.ndarray:
    """Conditional standard error of measurement 1 / sqrt(I(theta)) on the theta scale."""
    info = test_information(params, theta)
    with np.errstate(divide="ignore"):
        return 1.0 / np.sqrt(info)


def test_characteristic_curve(params: ItemParameters, theta) -> np.ndarray:
    """Expected summed score T(theta) = sum_j E[x_j | theta], shape (Q,)."""
    return params.expected_score(_theta(theta)).sum(axis=0)


def item_characteristic_curves(params: ItemParameters, theta) -> np.ndarray:
    """Expected item scores E[x_j | theta], shape (J, Q) (the ICC for 0/1 items)."""
    return params.expected_score(_theta(theta))


# pytest would otherwise collect test_information / test_characteristic_curve as tests
test_information.__test__ = False  # type: ignore[attr-defined]
test_characteristic_curve.__test__ = False  # type: ignore[attr-defined]
