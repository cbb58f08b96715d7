"""Linking two calibrations through common items (Kolen & Brennan, 2014, ch. 6).

Find A, B with theta_base = A theta_new + B, so new-form parameters move to the base scale as
a* = a / A, b* = A b + B, c* = c. Methods:

* mean-sigma (Marco, 1977): A = sd(b_base) / sd(b_new), B = mean(b_base) - A mean(b_new)
* mean-mean (Loyd & Hoover, 1980): A = mean(a_new) / mean(a_base), B as above
* Haebara (1980): minimise sum_q w_q sum_j sum_k (P_jk(X_q; base) - P_jk(X_q; new*))^2
* Stocking-Lord (1983): minimise sum_q w_q (T(X_q; base) - T(X_q; new*))^2, T the test
  characteristic curve of the common items

Characteristic-curve criteria follow Kim & Kolen (2007): the squared differences are weighted by
a grid ``theta`` with weights ``weights`` on the base scale and divided by the sum of the
weights (STUIRT's standardised criterion; Haebara's is also divided by the number of common
items); a dichotomous item contributes its P(x = 1) only, a polytomous item every category. ``symmetric=True`` adds the criterion taken the other way,
base items moved to the new scale (a A, (b - B) / A) over the new group's grid ``new_theta``,
``new_weights`` (STUIRT's "SY BI BI"). By default the grid is 41 equally spaced points on
[-4, 4] weighted by the N(0, 1) density. Passing STUIRT's or plink's grid and weights
reproduces their results.

``D`` is the scaling constant of the parameters given (1.7 or 1.702 for the normal-ogive
metric; 1 for the logistic metric this library uses): slopes are multiplied by ``D`` inside the
criteria, and A, B do not depend on the metric otherwise.

Standard errors of A and B (``se="jackknife"``) are the delete-one-item jackknife over the
common items, the linking error due to the choice of common items (Haberman, Lee & Qian, 2009;
Monseur & Berezner, 2007): SE^2 = (n - 1) / n sum_i (A_(i) - mean A_(.))^2.

:func:`anchor_drift` screens common items for parameter drift with the robust z statistic of
Huynh & Meyer (2010): z_j = (d_j - median d) / (0.74 IQR(d)) for the differences of the
difficulties (b_base - b_new) and for the log ratios of the slopes, flagging |z| > 1.645.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import ItemParameters
from psychometrics.irt.quadrature import normal_quadrature

METHODS = ("mean-sigma", "mean-mean", "haebara", "stocking-lord")
SE_METHODS = (None, "jackknife")
ROBUST_Z_CUT = 1.645
ROBUST_Z_TOL = 1e-9


@dataclass(frozen=True)
class LinkingConstants:
    """theta_base = A * theta_new + B; ``criterion`` is the minimised standardised criterion."""

    A: float
    B: float
    method: str
    criterion: float | None = None
    se_A: float | None = None
    se_B: float | None = None
    symmetric: bool = False

    def transform(self, params: ItemParameters) -> ItemParameters:
        """Put new-form item parameters on the base scale."""
        return _rescale(params, self.A, self.B)

    def transform_theta(self, theta) -> np.ndarray:
        return self.A * np.asarray(theta, dtype=float) + self.B

    def to_dict(self) -> dict:
        return {
            "A": self.A,
            "B": self.B,
            "method": self.method,
            "criterion": self.criterion,
            "se_A": self.se_A,
            "se_B": self.se_B,
            "symmetric": self.symmetric,
        }


def _rescale(params: ItemParameters, A: float, B: float) -> ItemParameters:
    return ItemParameters(
        params.item_models, params.a / A, A * params.b + B, params.c, params.n_categories
    )


def _grid(theta, weights, default, name: str) -> tuple[np.ndarray, np.ndarray]:
    if theta is None:
        if weights is not None:
            raise PsychometricsError(f"{name}weights given without {name}theta")
        return default
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)):
        raise PsychometricsError(f"{name}theta must be a 1-d array of at least 2 finite points")
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != t.shape:
        raise PsychometricsError(
            f"{name}weights must have one value per {name}theta point ({t.size})"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise PsychometricsError(f"{name}weights must be finite, non-negative and not all zero")
    return t, w


def _curves(params: ItemParameters, theta: np.ndarray, method: str) -> np.ndarray:
    """What the criterion compares: item category curves (Haebara) or the TCC (Stocking-Lord)."""
    if method == "stocking-lord":
        return params.expected_score(theta).sum(axis=0)
    p = params.prob(theta)  # (J, K, Q)
    keep = np.ones(p.shape[:2], dtype=bool)
    keep[params.n_categories == 2, 0] = False  # a 0/1 item counts P(x = 1) once (Kim & Kolen, 2007)
    return np.where(keep[:, :, None], p, 0.0)


def _criterion(diff: np.ndarray, weights: np.ndarray, method: str) -> float:
    """Weighted mean over the grid; Haebara's is also averaged over the common items."""
    sq = diff**2 if method == "stocking-lord" else (diff**2).sum(axis=(0, 1)) / diff.shape[0]
    return float(sq @ weights / weights.sum())


def link(
    new: ItemParameters,
    base: ItemParameters,
    method: str = "stocking-lord",
    *,
    theta=None,
    weights=None,
    symmetric: bool = False,
    new_theta=None,
    new_weights=None,
    D: float = 1.0,
    se: str | None = None,
    n_quad: int = 41,
    bound: float = 4.0,
) -> LinkingConstants:
    """Linking constants from the common items' parameters on the new and base calibrations.

    ``new`` and ``base`` hold the same common items in the same order (use
    ``ItemParameters.subset`` to pick them). ``theta``/``weights`` is the base-scale grid of the
    characteristic-curve criteria; ``new_theta``/``new_weights`` the new-scale grid of the
    reverse criterion when ``symmetric`` (default: the base grid).
    """
    method = str(method).lower().replace("_", "-")
    if method not in METHODS:
        raise PsychometricsError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if se not in SE_METHODS:
        raise PsychometricsError(f"se must be None or 'jackknife'; got {se!r}")
    if not isinstance(new, ItemParameters) or not isinstance(base, ItemParameters):
        raise TypeError("new and base must be ItemParameters")
    if new.item_models != base.item_models or new.n_items != base.n_items:
        raise PsychometricsError(
            f"new ({new.model}, {new.n_items} items) and base ({base.model}, {base.n_items} "
            "items) must hold the same common items under the same model"
        )
    if not np.array_equal(new.n_categories, base.n_categories):
        raise PsychometricsError("new and base common items differ in their category counts")
    if not (np.isfinite(D) and D > 0):
        raise PsychometricsError(f"D must be a positive number, got {D!r}")
    if new.n_items < 2 and method in ("mean-sigma",):
        raise PsychometricsError("mean-sigma linking needs at least 2 common items")
    if se == "jackknife" and new.n_items < 3:
        raise PsychometricsError("jackknife standard errors need at least 3 common items")
    quad = normal_quadrature(n_quad, bound)
    grid = _grid(theta, weights, (quad.points, quad.weights), "")
    new_grid = _grid(new_theta, new_weights, grid, "new_")
    if D != 1.0:
        new = ItemParameters(new.item_models, new.a * D, new.b, new.c, new.n_categories)
        base = ItemParameters(base.item_models, base.a * D, base.b, base.c, base.n_categories)
    out = _link(new, base, method, grid, new_grid, bool(symmetric))
    if se == "jackknife":
        out = _jackknife(out, new, base, method, grid, new_grid, bool(symmetric))
    return out


def _link(new, base, method, grid, new_grid, symmetric) -> LinkingConstants:
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
    (t_base, w_base), (t_new, w_new) = grid, new_grid
    target_base = _curves(base, t_base, method)
    target_new = _curves(new, t_new, method) if symmetric else None

    def loss(ab: np.ndarray) -> float:
        A, B = float(ab[0]), float(ab[1])
        if not A > 0:
            return np.inf
        value = _criterion(
            target_base - _curves(_rescale(new, A, B), t_base, method), w_base, method
        )
        if symmetric:
            back = ItemParameters(
                base.item_models, base.a * A, (base.b - B) / A, base.c, base.n_categories
            )
            value += _criterion(target_new - _curves(back, t_new, method), w_new, method)
        return value

    res = optimize.minimize(loss, np.asarray(start), method="BFGS", options={"gtol": 1e-12})
    res = optimize.minimize(
        loss, res.x, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-16}
    )
    return LinkingConstants(
        float(res.x[0]), float(res.x[1]), method, float(res.fun), symmetric=symmetric
    )


def _jackknife(full, new, base, method, grid, new_grid, symmetric) -> LinkingConstants:
    n = new.n_items
    reps = np.array(
        [
            (k.A, k.B)
            for k in (
                _link(new.subset(keep), base.subset(keep), method, grid, new_grid, symmetric)
                for keep in ([i for i in range(n) if i != j] for j in range(n))
            )
        ]
    )
    var = (n - 1) / n * ((reps - reps.mean(axis=0)) ** 2).sum(axis=0)
    se_a, se_b = np.sqrt(var)
    return LinkingConstants(
        full.A, full.B, full.method, full.criterion, float(se_a), float(se_b), full.symmetric
    )


def _flat_b(params: ItemParameters) -> np.ndarray:
    b = np.asarray(params.b, dtype=float).reshape(-1)
    return b[np.isfinite(b)]


@dataclass
class AnchorDrift:
    """Robust z statistics of one common item's change between calibrations."""

    item: str
    b_difference: float
    z_b: float
    log_a_ratio: float
    z_a: float
    flagged: bool

    def to_dict(self) -> dict:
        return {
            "item": self.item,
            "b_difference": self.b_difference,
            "z_b": _finite(self.z_b),
            "log_a_ratio": self.log_a_ratio,
            "z_a": _finite(self.z_a),
            "flagged": self.flagged,
        }


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def robust_z(values) -> np.ndarray:
    """(d - median d) / (0.74 IQR(d)) (Huynh & Meyer, 2010); 0.74 IQR estimates the normal SD."""
    d = np.asarray(values, dtype=float)
    q1, med, q3 = np.percentile(d, [25, 50, 75])
    # differences below ROBUST_Z_TOL are rounding, not drift (identical parameters give IQR ~ 1e-16)
    dev = np.where(np.abs(d - med) < ROBUST_Z_TOL, 0.0, d - med)
    scale = max(0.74 * (q3 - q1), ROBUST_Z_TOL)
    return dev / scale


def anchor_drift(
    new: ItemParameters, base: ItemParameters, *, item_ids=None, cut: float = ROBUST_Z_CUT
) -> list[AnchorDrift]:
    """Screen common items for drift: robust z of b_base - b_new* and of log(a_base / a_new*).

    ``new*`` is the new calibration put on the base scale with robust constants, A the median of
    a_new / a_base and B the median of b_base - A b_new, so a change of scale between the
    calibrations is not mistaken for drift (the raw differences of Huynh & Meyer, 2010, assume
    A = 1) and a drifting item cannot pull the constants towards itself. A polytomous item is represented by the mean of its
    thresholds. Items with |z| > ``cut`` on either statistic are flagged; consider dropping them
    from the anchor and linking again.
    """
    if not isinstance(new, ItemParameters) or not isinstance(base, ItemParameters):
        raise TypeError("new and base must be ItemParameters")
    if new.n_items != base.n_items or not np.array_equal(new.n_categories, base.n_categories):
        raise PsychometricsError("new and base must hold the same common items in the same order")
    if new.n_items < 4:
        raise PsychometricsError("anchor_drift needs at least 4 common items for a robust spread")
    if not cut > 0:
        raise PsychometricsError(f"cut must be positive, got {cut!r}")
    ids = (
        [f"item{j + 1}" for j in range(new.n_items)]
        if item_ids is None
        else list(map(str, item_ids))
    )
    if len(ids) != new.n_items:
        raise PsychometricsError(f"item_ids must name {new.n_items} items, got {len(ids)}")
    loc_new = np.nanmean(new.b.reshape(new.n_items, -1), axis=1)
    loc_base = np.nanmean(base.b.reshape(base.n_items, -1), axis=1)
    A = float(np.median(new.a / base.a))
    B = float(np.median(loc_base - A * loc_new))
    moved = ItemParameters(new.item_models, new.a / A, A * new.b + B, new.c, new.n_categories)
    loc_new = A * loc_new + B
    d_b = loc_base - loc_new
    d_a = np.log(base.a / moved.a)
    z_b, z_a = robust_z(d_b), robust_z(d_a)
    return [
        AnchorDrift(
            ids[j],
            float(d_b[j]),
            float(z_b[j]),
            float(d_a[j]),
            float(z_a[j]),
            bool(abs(z_b[j]) > cut or abs(z_a[j]) > cut),
        )
        for j in range(new.n_items)
    ]
