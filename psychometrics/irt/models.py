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

Partial credit model (Masters, 1982): the GPCM with one slope shared by the items (1 in the Rasch
metric, where the latent SD is estimated instead); b_jv are Masters' step difficulties.
Rating scale model (Andrich, 1978): a partial credit model whose steps are an item location plus
thresholds common to all rating-scale items, b_jv = delta_j + tau_v with sum_v tau_v = 0.

Mixed-format tests: wherever a function takes ``model`` it also takes a tuple with one model name
per item; items are then evaluated model by model (:func:`model_groups`) and the results laid
side by side, padded to the widest item.

Arrays of item parameters in slope-intercept form are called ``xi``: shape (J, m) where column 0
is the slope ``a``, columns 1..K-1 the intercepts ``d_k`` and, for the 3PL, column 2 holds
``logit(c)``. Items with fewer categories than the widest item have unused trailing columns.
Rating-scale items are the exception: column 1 holds the item intercept ``c_j = -a delta_j`` and
columns 2..K the step intercepts ``e_v = -a tau_v`` shared by the rating-scale items, with
``e_1 = 0`` for identification (reports re-centre the steps to sum to zero), so that the GPCM
intercepts are ``d_jv = c_j + e_v``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, log_expit, logit

from psychometrics.errors import PsychometricsError

DICHOTOMOUS_MODELS = ("rasch", "1pl", "2pl", "3pl")
POLYTOMOUS_MODELS = ("grm", "gpcm", "pcm", "rsm")
MODELS = DICHOTOMOUS_MODELS + POLYTOMOUS_MODELS
# models whose items share one slope (the Rasch family)
COMMON_SLOPE_MODELS = ("rasch", "1pl", "pcm", "rsm")
# models whose common slope is reported as the latent SD with item slopes 1 (Rasch metric)
RASCH_METRIC_MODELS = ("rasch", "pcm", "rsm")
# the response function each model evaluates with, in ItemParameters' (a, b, c) form
RESPONSE_FUNCTION = {
    "rasch": "2pl", "1pl": "2pl", "2pl": "2pl", "3pl": "3pl",
    "grm": "grm", "gpcm": "gpcm", "pcm": "gpcm", "rsm": "gpcm",
}

ModelSpec = "str | tuple[str, ...]"

# log-probabilities are floored here so that an impossible category never yields -inf * 0 = NaN
LOG_FLOOR = -1000.0


def check_model(model: str) -> str:
    """Return the canonical model name or raise naming the ``model`` argument."""
    name = str(model).lower()
    if name not in MODELS:
        raise PsychometricsError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    return name


def check_item_models(model, n_items: int, item_ids=None) -> str | tuple[str, ...]:
    """One model for all items (a string) or one per item: a sequence, or a mapping from item id
    (or column index) to model naming every item.

    Returns the canonical model name when every item has the same model, else a tuple of names.
    """
    if isinstance(model, str):
        return check_model(model)
    if isinstance(model, Mapping):
        ids = list(item_ids) if item_ids is not None else [f"item{j + 1}" for j in range(n_items)]
        names: list[str | None] = [None] * n_items
        for key, value in dict(model).items():
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                if not 0 <= int(key) < n_items:
                    raise PsychometricsError(f"model: column index {key} outside 0..{n_items - 1}")
                j = int(key)
            elif str(key) in ids:
                j = ids.index(str(key))
            else:
                raise PsychometricsError(f"model: unknown item id {key!r}")
            names[j] = value
        absent = [ids[j] for j, v in enumerate(names) if v is None]
        if absent:
            raise PsychometricsError(
                f"model: no model given for item(s) {', '.join(map(repr, absent[:5]))}"
                + (" ..." if len(absent) > 5 else "")
            )
        seq = names
    else:
        try:
            seq = list(model)
        except TypeError:
            raise PsychometricsError(
                f"model must be a model name, a list of names or a mapping; got {model!r}"
            ) from None
        if len(seq) != n_items:
            raise PsychometricsError(f"model lists {len(seq)} models for {n_items} items")
    out = []
    for j, name in enumerate(seq):
        try:
            out.append(check_model(name))
        except PsychometricsError as exc:
            raise PsychometricsError(f"model for item {j}: {exc}") from None
    return out[0] if len(set(out)) == 1 else tuple(out)


def per_item(model, n_items: int) -> tuple[str, ...]:
    """The model of every item as a tuple, whether ``model`` is one name or already per item."""
    return (model,) * n_items if isinstance(model, str) else tuple(model)


def model_groups(model, n_items: int) -> list[tuple[str, np.ndarray]]:
    """(model name, item indices) for each model present, in order of first appearance."""
    if isinstance(model, str):
        return [(model, np.arange(n_items))]
    names = np.asarray(model, dtype=object)
    return [(m, np.flatnonzero(names == m)) for m in dict.fromkeys(model)]


def n_xi(model, max_categories) -> int:
    """Width of the slope-intercept parameter array for ``model`` (see the module docstring).

    With one model per item, ``max_categories`` is per item too and the width is the widest.
    """
    if not isinstance(model, str):
        n_cat = np.broadcast_to(np.asarray(max_categories), (len(model),))
        return max(n_xi(m, int(n_cat[idx].max())) for m, idx in model_groups(model, len(model)))
    if model == "3pl":
        return 3
    if model in DICHOTOMOUS_MODELS:
        return 2
    if model == "rsm":
        return max_categories + 1
    return max_categories


def rsm_to_gpcm(xi: np.ndarray, n_cat: np.ndarray) -> np.ndarray:
    """GPCM slope-intercept array ``(a, d_1..)`` of rating-scale items: d_jv = c_j + e_v."""
    k_max = int(n_cat.max())
    out = np.zeros((xi.shape[0], k_max))
    out[:, 0] = xi[:, 0]
    out[:, 1:] = xi[:, 1:2] + xi[:, 2 : k_max + 1]
    return out


def _scatter(model, n_cat: np.ndarray, fn, shape_tail) -> np.ndarray:
    """Evaluate ``fn(model_g, idx)`` per model group and lay the parts into one padded array."""
    n_items = n_cat.size
    out = None
    for m, idx in model_groups(model, n_items):
        part = fn(m, idx)
        if out is None:
            out = np.zeros((n_items,) + shape_tail(part))
        out[(idx,) + tuple(slice(0, s) for s in part.shape[1:])] = part
    return out


def log_prob(model: str, xi: np.ndarray, n_cat: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Log category probabilities, shape (J, K, Q) with K the widest item's category count.

    Entries for categories an item does not have are 0 (they are never multiplied by a count).
    """
    theta = np.asarray(theta, dtype=float)
    if not isinstance(model, str):
        k_max = int(n_cat.max())

        def part(m, idx):
            width = n_xi(m, int(n_cat[idx].max()))
            return log_prob(m, xi[idx, :width], n_cat[idx], theta)

        return _scatter(model, n_cat, part, lambda p: (k_max, p.shape[2]))
    if model == "rsm":
        return log_prob("gpcm", rsm_to_gpcm(xi, n_cat), n_cat, theta)
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
    lp = log_prob(model, xi, n_cat, theta)
    cat_ok = np.arange(lp.shape[1])[None, :] < np.asarray(n_cat)[:, None]
    return np.where(cat_ok[:, :, None], np.exp(lp), 0.0)


def xi_from_irt(model, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    """Slope-intercept array from IRT parameters; ``b`` is (J,) or (J, K-1) for polytomous.

    Rating-scale items are given by their thresholds b_jv like any partial credit item and come
    back in the GPCM layout. With one model per item, dichotomous items read ``b[:, 0]``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if not isinstance(model, str):
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        cc = np.zeros_like(a) if c is None else np.asarray(c, dtype=float)
        width = max(
            3 if m == "3pl" else 2 if m in DICHOTOMOUS_MODELS else 1 + b2.shape[1]
            for m in set(model)
        )
        out = np.zeros((a.size, width))
        for m, idx in model_groups(model, a.size):
            bb = b2[idx, 0] if m in DICHOTOMOUS_MODELS else b2[idx]
            part = xi_from_irt(m, a[idx], bb, cc[idx])
            out[idx, : part.shape[1]] = part
        return out
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


def irt_from_xi(model, xi: np.ndarray, n_cat: np.ndarray):
    """``(a, b, c)``: slopes (J,), difficulties (J,) or thresholds (J, K-1) NaN-padded, asymptotes.

    Rating-scale items (internal layout) come back as their thresholds b_jv = -(c_j + e_v) / a.
    With one model per item ``b`` is (J, K-1) as soon as one item is polytomous, the dichotomous
    items' difficulty in column 0.
    """
    n_cat = np.asarray(n_cat)
    if not isinstance(model, str):
        a = xi[:, 0].copy()
        c = np.zeros_like(a)
        poly = any(m not in DICHOTOMOUS_MODELS for m in model)
        b = np.full((a.size, max(int(n_cat.max()) - 1, 1)) if poly else a.size, np.nan)
        for m, idx in model_groups(model, a.size):
            width = n_xi(m, int(n_cat[idx].max()))
            _, bb, cc = irt_from_xi(m, xi[idx, :width], n_cat[idx])
            c[idx] = cc
            if not poly:
                b[idx] = bb
            elif bb.ndim == 1:
                b[idx, 0] = bb
            else:
                b[idx, : bb.shape[1]] = bb
        return a, b, c
    if model == "rsm":
        return irt_from_xi("gpcm", rsm_to_gpcm(xi, n_cat), n_cat)
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
    """d(a, b_1.., c) / d(xi) for one item, for delta-method standard errors.

    For a rating-scale item (internal layout ``a, c_j, e_1..``) the rows are ``a, b_1..b_{K-1}``
    with b_v = -(c_j + e_v) / a.
    """
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
        if model == "rsm":
            jac[k, 0] = (xi_row[1] + xi_row[1 + k]) / a**2
            jac[k, 1] = -1.0 / a
            jac[k, 1 + k] = -1.0 / a
        else:
            jac[k, 0] = xi_row[k] / a**2
            jac[k, k] = -1.0 / a
    return jac


@dataclass
class ItemParameters:
    """Calibrated (or given) parameters of a set of items, in the IRT parameterisation.

    ``model`` is one model name, or one per item (a sequence) for a mixed-format test; after
    construction ``model`` is the common name or ``"mixed"`` and ``item_models`` holds every
    item's model. ``b`` is (J,) when every item is dichotomous and (J, K-1) NaN-padded thresholds
    otherwise (a dichotomous item's difficulty in column 0). Partial credit and rating-scale items
    are given by their step thresholds b_jv (Masters, 1982; b_jv = delta_j + tau_v for Andrich's
    rating scale). This is what the item bank stores and what scoring consumes.
    """

    model: str
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray = field(default=None)  # type: ignore[assignment]
    n_categories: np.ndarray = field(default=None)  # type: ignore[assignment]
    item_models: tuple = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.a = np.atleast_1d(np.asarray(self.a, dtype=float))
        j = self.a.size
        mixed = isinstance(self.model, str) and self.model == "mixed"
        spec = self.item_models if mixed else self.model
        if spec is None:
            raise PsychometricsError("model 'mixed' needs item_models, one model name per item")
        spec = check_item_models(spec, j)
        self.item_models = per_item(spec, j)
        self.model = spec if isinstance(spec, str) else "mixed"
        dichotomous = all(m in DICHOTOMOUS_MODELS for m in self.item_models)
        if dichotomous:
            self.b = np.atleast_1d(np.asarray(self.b, dtype=float)).reshape(-1)
            if self.n_categories is None:
                self.n_categories = np.full(j, 2, dtype=int)
        else:
            self.b = np.atleast_2d(np.asarray(self.b, dtype=float))
            if self.b.shape[0] != j and self.b.shape[1] == j and self.b.shape[0] == 1:
                self.b = self.b.T
            if self.n_categories is None:
                n_cat = 1 + (~np.isnan(self.b)).sum(axis=1)
                dich = np.array([m in DICHOTOMOUS_MODELS for m in self.item_models])
                self.n_categories = np.where(dich, 2, n_cat)
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

    @property
    def is_mixed(self) -> bool:
        return self.model == "mixed"

    def _response_functions(self):
        rf = tuple(RESPONSE_FUNCTION[m] for m in self.item_models)
        return rf[0] if len(set(rf)) == 1 else rf

    def xi(self) -> np.ndarray:
        """Slope-intercept array in the layout of :meth:`response_functions` (rating-scale items
        in the GPCM layout)."""
        return xi_from_irt(self._response_functions(), self.a, self.b, self.c)

    def log_prob(self, theta: np.ndarray) -> np.ndarray:
        """log P(x = k | theta) with shape (J, K, Q)."""
        return log_prob(
            self._response_functions(), self.xi(), self.n_categories, np.atleast_1d(theta)
        )

    def prob(self, theta: np.ndarray) -> np.ndarray:
        """P(x = k | theta) with shape (J, K, Q)."""
        return prob(self._response_functions(), self.xi(), self.n_categories, np.atleast_1d(theta))

    def expected_score(self, theta: np.ndarray) -> np.ndarray:
        """Item expected scores E[x | theta], shape (J, Q)."""
        p = self.prob(theta)
        return np.einsum("jkq,k->jq", p, np.arange(p.shape[1], dtype=float))

    def subset(self, items) -> ItemParameters:
        idx = np.atleast_1d(np.asarray(items))
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        models = tuple(self.item_models[i] for i in idx)
        b = self.b[idx]
        if b.ndim == 2 and all(m in DICHOTOMOUS_MODELS for m in models):
            b = b[:, 0]
        elif b.ndim == 2:
            width = max(int(self.n_categories[idx].max()) - 1, 1)
            b = b[:, :width]
        return ItemParameters(models, self.a[idx], b, self.c[idx], self.n_categories[idx])

    def to_dict(self) -> dict:
        out = {
            "model": self.model,
            "a": self.a.tolist(),
            "b": _nan_to_none(self.b.tolist()),
            "c": self.c.tolist(),
            "n_categories": self.n_categories.tolist(),
        }
        if self.is_mixed:
            out["item_models"] = list(self.item_models)
        return out


def _nan_to_none(value):
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
