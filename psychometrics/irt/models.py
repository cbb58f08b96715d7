"""Item response functions for the Rasch/1PL, 2PL, 3PL, graded response and generalized partial
credit models, in the logistic metric with no 1.7 scaling constant.

Every model is evaluated in slope-intercept form, ``z = a * theta + d`` with ``d = -a * b``,
because the likelihood is much better behaved there; results are reported in the usual IRT
parameterisation ``(a, b, c)``.

Dichotomous (Birnbaum, 1968; Lord, 1980)::

    P(x = 1 | theta) = c + (1 - c) / (1 + exp(-a (theta - b)))

Graded response model (Samejima, 1969), categories 0..K-1::

    P*(x >= k | theta) = 1 / (1 + exp(-a (theta - b_k))),   P(x = k) = P*_k - P*_{k+1}

Generalized partial credit model (Muraki, 1992)::

    P(x = k | theta) = exp(sum_{v<=k} a (theta - b_v)) / sum_h exp(sum_{v<=h} a (theta - b_v))

Arrays of item parameters in slope-intercept form are called ``xi``: shape (J, m) where column 0
is the slope ``a``, columns 1..K-1 the intercepts ``d_k`` and, for the 3PL, column 2 holds
``logit(c)``. Items with fewer categories than the widest item have unused trailing columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, log_expit, logit

from psychometrics.errors import PsychometricsError

DICHOTOMOUS_MODELS = ("rasch", "1pl", "2pl", "3pl")
POLYTOMOUS_MODELS = ("grm", "gpcm")
MODELS = DICHOTOMOUS_MODELS + POLYTOMOUS_MODELS

# log-probabilities are floored here so that an impossible category never yields -inf * 0 = NaN
LOG_FLOOR = -1000.0


def check_model(model: str) -> str:
    """Return the canonical model name or raise naming the ``model`` argument."""
    name = str(model).lower()
    if name not in MODELS:
        raise PsychometricsError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    return name


def n_xi(model: str, max_categories: int) -> int:
    """Width of the slope-intercept parameter array for ``model``."""
    if model == "3pl":
        return 3
    if model in DICHOTOMOUS_MODELS:
        return 2
    return max_categories


def log_prob(model: str, xi: np.ndarray, n_cat: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Log category probabilities, shape (J, K, Q) with K the widest item's category count.

    Entries for categories an item does not have are 0 (they are never multiplied by a count).
    """
    theta = np.asarray(theta, dtype=float)
    a = xi[:, :1]
    if model in DICHOTOMOUS_MODELS:
        z = a * theta + xi[:, 1:2]
        out = np.empty((xi.shape[0], 2, theta.size))
        if model == "3pl":
            log_c = log_expit(xi[:, 2:3])
            log_1mc = log_expit(-xi[:, 2:3])
            out[:, 1, :] = np.logaddexp(log_c, log_1mc + log_expit(z))
            out[:, 0, :] = log_1mc + log_expit(-z)
        else:
            out[:, 1, :] = log_expit(z)
            out[:, 0, :] = log_expit(-z)
        return out
    k_max = int(xi.shape[1])
    valid = np.arange(1, k_max)[None, :] < n_cat[:, None]  # (J, K-1): threshold k exists
    z = a[:, :, None] * theta[None, None, :] + xi[:, 1:, None]  # (J, K-1, Q)
    if model == "grm":
        cum = np.where(valid[:, :, None], expit(z), 0.0)
        upper = np.concatenate([np.ones_like(cum[:, :1]), cum], axis=1)
        lower = np.concatenate([cum, np.zeros_like(cum[:, :1])], axis=1)
        prob = upper - lower
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log(np.where(prob > 0, prob, np.nan))
        out = np.where(np.isnan(out), LOG_FLOOR, out)
    else:  # gpcm
        steps = np.where(valid[:, :, None], z, 0.0)
        num = np.concatenate([np.zeros_like(steps[:, :1]), np.cumsum(steps, axis=1)], axis=1)
        cat_ok = np.concatenate([np.ones_like(valid[:, :1]), valid], axis=1)[:, :, None]
        num = np.where(cat_ok, num, -np.inf)
        mx = num.max(axis=1, keepdims=True)
        out = num - (mx + np.log(np.exp(num - mx).sum(axis=1, keepdims=True)))
    cat_ok = np.arange(k_max)[None, :] < n_cat[:, None]
    out = np.where(cat_ok[:, :, None], np.maximum(out, LOG_FLOOR), 0.0)
    return out


def prob(model: str, xi: np.ndarray, n_cat: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Category probabilities (J, K, Q); zero for categories an item does not have."""
    k_max = 2 if model in DICHOTOMOUS_MODELS else xi.shape[1]
    cat_ok = np.arange(k_max)[None, :] < n_cat[:, None]
    return np.where(cat_ok[:, :, None], np.exp(log_prob(model, xi, n_cat, theta)), 0.0)


def xi_from_irt(
    model: str, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None
) -> np.ndarray:
    """Slope-intercept array from IRT parameters; ``b`` is (J,) or (J, K-1) for polytomous."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if model in DICHOTOMOUS_MODELS:
        b = b.reshape(-1)
        cols = [a, -a * b]
        if model == "3pl":
            cc = np.zeros_like(a) if c is None else np.asarray(c, dtype=float)
            cols.append(logit(np.clip(cc, 1e-6, 1 - 1e-6)))
        return np.column_stack(cols)
    b = np.atleast_2d(b)
    d = np.where(np.isnan(b), 0.0, -a[:, None] * b)
    return np.column_stack([a, d])


def irt_from_xi(model: str, xi: np.ndarray, n_cat: np.ndarray):
    """``(a, b, c)``: slopes (J,), difficulties (J,) or thresholds (J, K-1) NaN-padded, asymptotes."""
    a = xi[:, 0].copy()
    safe_a = np.where(np.abs(a) < 1e-12, 1e-12, a)
    if model in DICHOTOMOUS_MODELS:
        b = -xi[:, 1] / safe_a
        c = expit(xi[:, 2]) if model == "3pl" else np.zeros_like(a)
        return a, b, c
    b = -xi[:, 1:] / safe_a[:, None]
    valid = np.arange(1, xi.shape[1])[None, :] < n_cat[:, None]
    return a, np.where(valid, b, np.nan), np.zeros_like(a)


def irt_jacobian(model: str, xi_row: np.ndarray, n_cat: int) -> np.ndarray:
    """d(a, b_1.., c) / d(xi) for one item, for delta-method standard errors."""
    m = xi_row.size
    a = xi_row[0]
    if model in DICHOTOMOUS_MODELS:
        rows = 3
        jac = np.zeros((rows, m))
        jac[0, 0] = 1.0
        jac[1, 0] = xi_row[1] / a**2
        jac[1, 1] = -1.0 / a
        if model == "3pl":
            c = expit(xi_row[2])
            jac[2, 2] = c * (1 - c)
        return jac
    jac = np.zeros((m, m))
    jac[0, 0] = 1.0
    for k in range(1, n_cat):
        jac[k, 0] = xi_row[k] / a**2
        jac[k, k] = -1.0 / a
    return jac


@dataclass
class ItemParameters:
    """Calibrated (or given) parameters of a set of items, in the IRT parameterisation.

    ``b`` is (J,) for dichotomous models and (J, K-1) NaN-padded thresholds for polytomous ones.
    This is what the item bank stores and what scoring consumes.
    """

    model: str
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray = field(default=None)  # type: ignore[assignment]
    n_categories: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.model = check_model(self.model)
        self.a = np.atleast_1d(np.asarray(self.a, dtype=float))
        j = self.a.size
        if self.model in DICHOTOMOUS_MODELS:
            self.b = np.atleast_1d(np.asarray(self.b, dtype=float)).reshape(-1)
            if self.n_categories is None:
                self.n_categories = np.full(j, 2, dtype=int)
        else:
            self.b = np.atleast_2d(np.asarray(self.b, dtype=float))
            if self.n_categories is None:
                self.n_categories = 1 + (~np.isnan(self.b)).sum(axis=1)
        if self.b.shape[0] != j:
            raise PsychometricsError(f"b must have one row per item ({j}); got shape {self.b.shape}")
        self.c = np.zeros(j) if self.c is None else np.atleast_1d(np.asarray(self.c, float))
        if self.c.shape != (j,):
            raise PsychometricsError(f"c must have one value per item ({j}); got shape {self.c.shape}")
        self.n_categories = np.asarray(self.n_categories, dtype=int)
        if not np.all(np.isfinite(self.a)):
            raise PsychometricsError("a must be finite for every item")
        if np.any((self.c < 0) | (self.c >= 1)):
            raise PsychometricsError("c must lie in [0, 1) for every item")

    @property
    def n_items(self) -> int:
        return int(self.a.size)

    @property
    def max_categories(self) -> int:
        return int(self.n_categories.max())

    def xi(self) -> np.ndarray:
        return xi_from_irt(self.model, self.a, self.b, self.c)

    def log_prob(self, theta: np.ndarray) -> np.ndarray:
        """log P(x = k | theta) with shape (J, K, Q)."""
        return log_prob(self.model, self.xi(), self.n_categories, np.atleast_1d(theta))

    def prob(self, theta: np.ndarray) -> np.ndarray:
        """P(x = k | theta) with shape (J, K, Q)."""
        return prob(self.model, self.xi(), self.n_categories, np.atleast_1d(theta))

    def expected_score(self, theta: np.ndarray) -> np.ndarray:
        """Item expected scores E[x | theta], shape (J, Q)."""
        p = self.prob(theta)
        return np.einsum("jkq,k->jq", p, np.arange(p.shape[1], dtype=float))

    def subset(self, items) -> ItemParameters:
        idx = np.asarray(items)
        return ItemParameters(
            self.model, self.a[idx], self.b[idx], self.c[idx], self.n_categories[idx]
        )

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "a": self.a.tolist(),
            "b": _nan_to_none(self.b.tolist()),
            "c": self.c.tolist(),
            "n_categories": self.n_categories.tolist(),
        }


def _nan_to_none(value):
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
