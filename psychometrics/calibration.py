"""IRT calibration: the public ``calibrate`` function and its ``Calibration`` result.

``calibrate(X, model="2pl")`` estimates item parameters by marginal maximum likelihood (EM over a
quadrature grid, Bock & Aitkin, 1981; Bayes modal for the 3PL asymptote, Mislevy, 1986), computes
standard errors from the observed information (Louis, 1982), and reports the log-likelihood,
AIC = -2 logL + 2k and BIC = -2 logL + k log N. The result serialises with ``to_dict()`` to the
JSON the ``microcred calibrate`` command prints.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from psychometrics.data import check_responses, collapse_patterns
from psychometrics.errors import (
    CalibrationWarning,
    ConvergenceWarning,
    PsychometricsError,
    ResponseDataError,
)
from psychometrics.irt.estimation import (
    EStep,
    ParameterMap,
    ProgressCallback,
    at_bound,
    build_parameter_map,
    e_step,
    run_em,
)
from psychometrics.irt.models import (
    COMMON_SLOPE_MODELS,
    DICHOTOMOUS_MODELS,
    RASCH_METRIC_MODELS,
    ItemParameters,
    check_item_models,
    check_model,
    irt_from_xi,
    irt_jacobian,
    log_prob,
    model_groups,
    n_xi,
    per_item,
    xi_from_irt,
)
from psychometrics.irt.priors import ItemPriors
from psychometrics.irt.quadrature import DEFAULT_BOUND, DEFAULT_N_QUAD, Quadrature
from psychometrics.irt.standard_errors import covariance_from_information, observed_information
from psychometrics.irt.start_values import start_xi

DEFAULT_C_PRIOR = (5.0, 17.0)


@dataclass
class Calibration:
    """Result of :func:`calibrate`. Arrays are per item, in input column order.

    ``status`` per item: ``"estimated"``, ``"fixed"`` (held at given values), ``"constant"``
    (every presented response identical: not estimable, given a bounded placeholder and no SE)
    or ``"at_bound"`` (its slope or an intercept stopped at the bound that keeps a runaway item
    finite, +-20 or +-50: the value is an artefact of the bound, not an estimate).
    For the Rasch model slopes are 1 and the latent SD is estimated (``latent_sd``).
    ``model`` is the common model or ``"mixed"``; ``item_models`` gives every item's model.

    ``messages`` (``to_dict()["warnings"]``) holds every warning the calibration raised: a
    psychometrician reads them before using the parameters. ``n_persons`` counts the persons
    with at least one response; ``n_excluded`` those left out for having none.
    """

    model: str
    item_ids: list[str]
    params: ItemParameters
    se_a: np.ndarray
    se_b: np.ndarray
    se_c: np.ndarray
    status: list[str]
    loglik: float
    n_params: int
    n_persons: int
    converged: bool
    iterations: int
    max_change: float
    latent_mean: float = 0.0
    latent_sd: float = 1.0
    se_latent_sd: float | None = None
    quadrature: Quadrature | None = None
    covariance: np.ndarray | None = None
    engine: str = "microcred"
    messages: list[str] = field(default_factory=list)
    n_excluded: int = 0

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> float:
        return -2 * self.loglik + self.n_params * np.log(self.n_persons)

    @property
    def a(self) -> np.ndarray:
        return self.params.a

    @property
    def b(self) -> np.ndarray:
        return self.params.b

    @property
    def c(self) -> np.ndarray:
        return self.params.c

    @property
    def item_models(self) -> tuple[str, ...]:
        return self.params.item_models

    def item_dict(self, j: int) -> dict:
        model = self.params.item_models[j]
        poly = model not in DICHOTOMOUS_MODELS
        mixed_b = self.params.b.ndim == 2
        b_j = self.params.b[j] if mixed_b else self.params.b[j : j + 1]
        se_b_j = self.se_b[j] if np.ndim(self.se_b) == 2 else np.atleast_1d(self.se_b[j])
        out = {
            "id": self.item_ids[j],
            "a": _num(self.params.a[j]),
            "b": [_num(v) for v in b_j[: self.params.n_categories[j] - 1]]
            if poly
            else _num(b_j[0]),
            "c": None if poly else _num(self.params.c[j]),
            "se_a": _num(self.se_a[j]),
            "se_b": [_num(v) for v in se_b_j[: self.params.n_categories[j] - 1]]
            if poly
            else _num(se_b_j[0]),
            "se_c": _num(self.se_c[j]),
            "model": model,
            "n_categories": int(self.params.n_categories[j]),
            "status": self.status[j],
        }
        if model == "rsm":
            # Andrich (1978): b_jv = delta_j + tau_v with sum_v tau_v = 0
            thresholds = b_j[: self.params.n_categories[j] - 1]
            out["location"] = _num(np.mean(thresholds))
            out["steps"] = [_num(v) for v in thresholds - np.mean(thresholds)]
        return out

    def to_dict(self) -> dict:
        """The JSON document of ``microcred calibrate`` (NaN and infinities become null)."""
        return {
            "model": self.model,
            "n_persons": int(self.n_persons),
            "n_persons_excluded": int(self.n_excluded),
            "n_items": int(self.n_items),
            "loglik": _num(self.loglik),
            "aic": _num(self.aic),
            "bic": _num(self.bic),
            "converged": bool(self.converged),
            "iterations": int(self.iterations),
            "items": [self.item_dict(j) for j in range(self.n_items)],
            "n_params": int(self.n_params),
            "max_change": _num(self.max_change),
            "latent": {
                "mean": _num(self.latent_mean),
                "sd": _num(self.latent_sd),
                "se_sd": _num(self.se_latent_sd),
            },
            "engine": self.engine,
            "warnings": list(self.messages),
        }


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def calibrate(
    responses,
    model: str = "2pl",
    *,
    item_ids: Sequence[str] | None = None,
    fixed: Mapping[int | str, Mapping] | None = None,
    n_quad: int = DEFAULT_N_QUAD,
    bound: float = DEFAULT_BOUND,
    max_iter: int = 500,
    tol: float = 1e-4,
    c_prior: tuple[float, float] | None = DEFAULT_C_PRIOR,
    a_prior: tuple[float, float] | None = None,
    standard_errors: bool = True,
    backend: str = "microcred",
    progress: ProgressCallback | None = None,
) -> Calibration:
    """Calibrate items by marginal maximum likelihood (EM over a quadrature grid).

    Parameters
    ----------
    responses : array (persons, items)
        Integer scores, NaN where an item was not presented (never imputed). Dichotomous models
        need 0/1; GRM/GPCM take 0..K-1 with K per item from the highest observed score.
    model : {"rasch", "1pl", "2pl", "3pl", "grm", "gpcm"}
        ``P = c + (1 - c) / (1 + exp(-a (theta - b)))``, logistic metric, theta ~ N(0, 1). "1pl"
        estimates one common slope; "rasch" fixes slopes at 1 and estimates the latent SD.
    item_ids : item names, default "item1".."itemJ".
    fixed : {column index or item id: {"a", "b", "c"}}
        Items held at given parameters (fixed-parameter calibration of pretest items onto the
        operational scale). The latent mean and SD are then estimated (Kim, 2006).
    n_quad, bound : quadrature points on [-bound, bound]; default 61 on [-6, 6].
    max_iter, tol : EM stops when no free parameter changes by more than ``tol``.
    c_prior : Beta(alpha, beta) prior on the 3PL asymptote (Bayes modal); None for pure ML.
    a_prior : (mu, sigma) log-normal prior on slopes, or None.
    standard_errors : compute SEs from the observed information (Louis, 1982).
    backend : "microcred" (default) or "girth" (see :mod:`psychometrics.backends.girth_backend`).
    progress : callback(iteration, loglik, max_change) after every EM cycle.
    """
    if isinstance(model, str):
        model = check_model(model)
    x = check_responses(
        responses, model=model if isinstance(model, str) else None, name="responses"
    )
    x, n_excluded = _drop_empty_persons(x)
    n_persons, n_items = x.shape
    ids = _item_ids(item_ids, n_items)
    spec = check_item_models(model, n_items, ids)
    models = per_item(spec, n_items)
    mixed = not isinstance(spec, str)
    if mixed:
        _check_dichotomous_columns(x, models)
    if backend not in ("microcred", "girth"):
        raise PsychometricsError(f"backend must be 'microcred' or 'girth', got {backend!r}")
    if backend == "girth" and (mixed or spec in ("pcm", "rsm")):
        raise PsychometricsError(
            "backend 'girth' calibrates one of rasch, 1pl, 2pl, 3pl, grm, gpcm for every item;"
            " use backend='microcred' for mixed-format, partial credit or rating scale models"
        )
    if int(max_iter) < 1:
        raise PsychometricsError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not tol > 0:
        raise PsychometricsError(f"tol must be positive, got {tol!r}")
    priors = ItemPriors(c_beta=c_prior if "3pl" in models else None, a_lognormal=a_prior)
    messages: list[str] = []
    if n_excluded:
        messages.append(
            f"{n_excluded} person(s) with no response at all were left out: they carry no"
            f" information, and N = {n_persons} (used in BIC) counts only persons who responded"
        )
    # the Rasch metric (slopes 1, latent SD estimated) when every item is of the Rasch family
    rasch_metric = all(m in RASCH_METRIC_MODELS for m in models)

    obs = ~np.isnan(x)
    n_cat = _categories(x, models)
    width = n_xi(spec, n_cat if mixed else int(n_cat.max()))
    fixed_idx, fixed_xi = _fixed_items(fixed, ids, models, n_cat, width)
    constant = _constant_items(x, obs)
    constant &= ~fixed_idx
    for j in np.flatnonzero(constant):
        messages.append(
            f"item {ids[j]!r}: every presented response is the same (or fewer than 2 responses);"
            " not estimable, reported with a bounded placeholder and no standard error"
        )
    for j in np.flatnonzero(~constant & ~fixed_idx):
        if models[j] in DICHOTOMOUS_MODELS:
            continue
        seen = np.unique(x[obs[:, j], j]).astype(int)
        missing_cats = sorted(set(range(int(n_cat[j]))) - set(seen.tolist()))
        if missing_cats:
            messages.append(
                f"item {ids[j]!r}: categories {missing_cats} never observed; its thresholds"
                " there are weakly determined"
            )
    free = ~(constant | fixed_idx)
    if not free.any():
        raise PsychometricsError("responses: no item can be estimated (all are fixed or constant)")
    messages += _sample_size_notes(models, ids, obs, free)

    xi = start_xi(spec, x, n_cat, width)
    xi[constant] = _placeholder_xi(models, x, obs, n_cat, width, constant, xi)
    del obs  # (persons x items) booleans: not needed past this point
    if fixed_idx.any():
        xi[fixed_idx] = fixed_xi[fixed_idx]
    estimate_latent = bool(fixed_idx.any())
    common = np.array([m in COMMON_SLOPE_MODELS for m in models])
    if rasch_metric and estimate_latent:
        xi[~fixed_idx & common, 0] = 1.0
    pmap = build_parameter_map(
        spec, n_cat, width, free, shared_slope_free=not (rasch_metric and estimate_latent)
    )
    xi = pmap.unpack(pmap.pack(xi), xi)  # shared parameters start equal
    patterns = collapse_patterns(x, n_cat)
    under = _under_identified(spec, pmap, n_cat, estimate_latent)
    if under:
        messages.append(under)

    if backend == "girth":
        from psychometrics.backends.girth_backend import girth_xi

        gxi = girth_xi(x, spec, n_cat, width, messages)
        if gxi is not None and not fixed_idx.any():
            xi[free] = gxi[free]
            em = run_em(
                spec,
                patterns,
                xi,
                pmap,
                priors=priors,
                n_quad=n_quad,
                bound=bound,
                max_iter=1,
                tol=np.inf,
            )
            em.xi = xi
            em.iterations, em.converged, em.max_change = 0, True, 0.0
            engine = "girth"
        else:
            backend = "microcred"
    if backend == "microcred":
        em = run_em(
            spec,
            patterns,
            xi,
            pmap,
            priors=priors,
            n_quad=n_quad,
            bound=bound,
            max_iter=int(max_iter),
            tol=float(tol),
            estimate_latent=estimate_latent,
            progress=progress,
        )
        engine = "microcred"
        if em.non_finite:
            messages.append(
                f"numerical trouble: EM cycle {em.iterations} produced NaN or infinite values;"
                " the estimates are those of the last finite cycle and did not converge"
            )
        if not em.converged:
            messages.append(
                f"EM stopped after {em.iterations} iterations with max change {em.max_change:.2g}"
                f" > tol {tol:g}; estimates may be inaccurate"
            )
            warnings.warn(messages[-1], ConvergenceWarning, stacklevel=2)
    xi = em.xi
    # final E-step at the reported estimates: run_em's last one for its own estimates; the girth
    # path replaced em.xi, so it needs its own
    if engine == "girth":
        final = e_step(
            patterns,
            log_prob(spec, xi, n_cat, em.quadrature.points),
            em.quadrature.weights,
            keep_posterior=False,
        )
    else:
        final = em.estep

    bound_slots = at_bound(spec, xi, pmap.index >= 0)
    messages += _bound_notes(models, ids, xi, bound_slots, estimate_latent, rasch_metric)
    se_map = pmap.without(bound_slots)
    cov = None
    if standard_errors and under:
        pass  # the counting rule failed: no standard error would mean anything
    elif standard_errors and se_map.n_free:
        with np.errstate(all="ignore"):
            info = observed_information(
                spec,
                xi,
                patterns,
                em.quadrature.points,
                em.quadrature.weights,
                se_map,
                priors,
                counts=final.counts,
            )
        cov = covariance_from_information(info) if np.isfinite(info).all() else None
        if cov is None:
            messages.append(
                "the observed information matrix is not positive definite: standard errors"
                " are not available (the model may be over-parameterised for these data)"
            )
    for msg in messages:
        if "EM stopped" not in msg:
            warnings.warn(msg, CalibrationWarning, stacklevel=2)

    a, b, c = irt_from_xi(spec, xi, n_cat)
    latent_sd, se_latent_sd = em.latent_sd, None
    to_rasch = rasch_metric and not estimate_latent
    se_a, se_b, se_c = _item_standard_errors(
        models, xi, n_cat, se_map, cov, rasch_metric=to_rasch
    )
    runaway = _runaway_items(models, bound_slots)
    status = [
        "fixed"
        if fixed_idx[j]
        else "constant"
        if constant[j]
        else "at_bound"
        if runaway[j]
        else "estimated"
        for j in range(n_items)
    ]
    if to_rasch:
        # 1PL with N(0,1) == Rasch with slope 1 and theta ~ N(0, a^2): b_rasch = a * b_1pl = -d
        latent_sd = float(xi[free][0, 0])
        se_latent_sd = float(se_a[free][0]) if cov is not None else None
        if se_latent_sd is not None and not np.isfinite(se_latent_sd):
            se_latent_sd = None
        b = b * (a[:, None] if b.ndim == 2 else a)
        a = np.ones(n_items)
        se_a = np.full(n_items, np.nan)
    se_a[~free], se_c[~free] = np.nan, np.nan
    se_b[~free] = np.nan
    se_c[[m != "3pl" for m in models]] = np.nan
    n_params = pmap.n_free + (2 if estimate_latent else 0)
    params = ItemParameters(spec, a, b, np.clip(c, 0.0, 1 - 1e-12), n_cat)
    return Calibration(
        model=params.model,
        item_ids=ids,
        params=params,
        se_a=se_a,
        se_b=se_b,
        se_c=se_c,
        status=status,
        loglik=final.loglik,
        n_params=n_params,
        n_persons=n_persons,
        converged=em.converged,
        iterations=em.iterations,
        max_change=em.max_change,
        latent_mean=em.latent_mean,
        latent_sd=latent_sd,
        se_latent_sd=se_latent_sd,
        quadrature=em.quadrature,
        covariance=cov,
        engine=engine,
        messages=messages,
        n_excluded=n_excluded,
    )


def _drop_empty_persons(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows with no observed score add nothing to the likelihood but would inflate N."""
    answered = np.ones(x.shape[0], dtype=bool)
    for start in range(0, x.shape[0], 10_000):  # blocks keep the NaN mask small
        answered[start : start + 10_000] = ~np.isnan(x[start : start + 10_000]).all(axis=1)
    n_out = int(x.shape[0] - answered.sum())
    return (x[answered] if n_out else x), n_out


#: Rules of thumb for the smallest calibration sample (persons answering an item), with their
#: basis. They are published simulation findings, not guarantees: below them parameter
#: recovery is known to be poor for typical test lengths.
MIN_SAMPLE = {
    "rasch": (
        100,
        ("Linacre (1994, Rasch Meas. Trans. 7, 328): 64-144 persons for difficulties stable"
        " within +-0.5 logit at 95% confidence"),
    ),
    "1pl": (100, "Linacre (1994, Rasch Meas. Trans. 7, 328), as for the Rasch model"),
    "pcm": (100, "Linacre (1994, Rasch Meas. Trans. 7, 328), as for the Rasch model"),
    "rsm": (100, "Linacre (1994, Rasch Meas. Trans. 7, 328), as for the Rasch model"),
    "2pl": (
        500,
        ("Hulin, Lissak & Drasgow (1982, Appl. Psych. Meas. 6, 249-260): about 500 persons"
        " for the 2PL"),
    ),
    "3pl": (
        1000,
        ("Hulin, Lissak & Drasgow (1982, Appl. Psych. Meas. 6, 249-260): about 1,000 persons"
        " for the 3PL"),
    ),
    "grm": (500, "Reise & Yu (1990, J. Educ. Meas. 27, 133-144): 500 persons for the GRM"),
    "gpcm": (
        500,
        ("Reise & Yu (1990, J. Educ. Meas. 27, 133-144) for the GRM, applied to the GPCM by"
        " analogy"),
    ),
}


def _sample_size_notes(models, ids, obs: np.ndarray, free: np.ndarray) -> list[str]:
    """One note per item model whose free items have fewer responses than MIN_SAMPLE says."""
    counts = obs.sum(axis=0)
    notes = []
    for name, idx in model_groups(models, len(models)):
        rule = MIN_SAMPLE.get(name)
        if rule is None:
            continue
        minimum, basis = rule
        mine = idx[free[idx]]
        short = [j for j in mine if counts[j] < minimum]
        if not short:
            continue
        if len(short) == mine.size and np.ptp(counts[short]) == 0:
            where = f"all {len(short)} estimated items have {int(counts[short[0]])} responses"
        else:
            names = ", ".join(f"{ids[j]!r} ({int(counts[j])})" for j in short[:10])
            more = f" and {len(short) - 10} more" if len(short) > 10 else ""
            where = f"{len(short)} item(s) have fewer responses: {names}{more}"
        notes.append(
            f"small sample for the {name}: {where}, below the rule-of-thumb minimum of {minimum}"
            f" ({basis}); expect large standard errors and unstable estimates"
        )
    return notes


def _under_identified(spec, pmap: ParameterMap, n_cat, estimate_latent: bool) -> str:
    """The counting rule: a model of the multinomial table of response patterns cannot identify
    more parameters than the table has free cells, prod_j K_j - 1 (Bartholomew, Knott &
    Moustaki, 2011, sec. 4.9, on degrees of freedom of latent trait models). Necessary, not
    sufficient: passing it does not prove identification."""
    k = pmap.n_free + (2 if estimate_latent else 0)
    cells = float(np.prod(np.asarray(n_cat, dtype=float))) - 1
    if k <= cells:
        return ""
    name = spec if isinstance(spec, str) else "mixed-format model"
    return (
        f"under-identified: the {name} here has {k} free parameters but {len(n_cat)} item(s)"
        f" give a response-pattern table with only {int(cells)} free cells; the estimates are"
        " arbitrary and no standard errors are reported (add items or use a simpler model)"
    )


def _runaway_items(models, bound_slots: np.ndarray) -> np.ndarray:
    """Items with an own slope or an intercept on its bound (the shared slope of the Rasch
    family and the 3PL asymptote are reported separately, see _bound_notes)."""
    own = bound_slots.copy()
    for j, name in enumerate(models):
        if name in COMMON_SLOPE_MODELS:
            own[j, 0] = False
        if name == "3pl":
            own[j, 2] = False
    return own.any(axis=1)


def _bound_notes(models, ids, xi, bound_slots, estimate_latent, rasch_metric) -> list[str]:
    """One warning per parameter (or kind of parameter) that stopped on its M-step bound."""
    notes = []
    common = np.array([m in COMMON_SLOPE_MODELS for m in models], dtype=bool)
    guess = np.array([m == "3pl" for m in models], dtype=bool)
    if (bound_slots[:, 0] & common).any():
        what = "latent SD" if rasch_metric and not estimate_latent else "common slope"
        notes.append(
            f"the {what} stopped at its bound {xi[bound_slots[:, 0] & common, 0][0]:g}: the data"
            " are perfectly or almost perfectly separated (persons ordered without error); the"
            " scale and the difficulties are not estimable from them"
        )
    for j in np.flatnonzero(bound_slots[:, 0] & ~common):
        notes.append(
            f"item {ids[j]!r}: slope stopped at its bound a = {xi[j, 0]:g}; the item orders the"
            " persons (almost) perfectly or the sample is too small, so the value is an"
            " artefact of the bound, not an estimate, and it has no standard error"
        )
    intercepts = bound_slots[:, 1:].copy()
    intercepts[guess, 1:] = False
    for j in np.flatnonzero(intercepts.any(axis=1)):
        notes.append(
            f"item {ids[j]!r}: an intercept stopped at its bound (+-50): a category is (almost)"
            " never or always reached; the value is an artefact of the bound"
        )
    if guess.any():
        low = guess & bound_slots[:, 2] & (xi[:, 2] < 0)
        high = guess & bound_slots[:, 2] & (xi[:, 2] > 0)
        if low.any():
            names = ", ".join(repr(ids[j]) for j in np.flatnonzero(low))
            notes.append(
                f"item(s) {names}: lower asymptote c estimated at its boundary 0; such an item"
                " behaves as a 2PL item and c has no standard error"
            )
        if high.any():
            names = ", ".join(repr(ids[j]) for j in np.flatnonzero(high))
            notes.append(
                f"item(s) {names}: lower asymptote c stopped at its upper bound .95: the item is"
                " answered right regardless of ability; the value is not an estimate"
            )
    return notes


def _check_dichotomous_columns(x: np.ndarray, models: tuple[str, ...]) -> None:
    """In a mixed-format test the dichotomous items' scores must be 0 or 1."""
    for j, m in enumerate(models):
        if m not in DICHOTOMOUS_MODELS:
            continue
        col = x[:, j]
        bad = np.flatnonzero(~np.isnan(col) & (col > 1))
        if bad.size:
            raise ResponseDataError(
                f"responses score {col[bad[0]]:g} is not 0 or 1 (item model {m!r})",
                row=int(bad[0]),
                column=j,
            )


def _item_ids(item_ids, n_items: int) -> list[str]:
    if item_ids is None:
        return [f"item{j + 1}" for j in range(n_items)]
    ids = [str(i) for i in item_ids]
    if len(ids) != n_items:
        raise PsychometricsError(f"item_ids has {len(ids)} names for {n_items} items")
    if len(set(ids)) != len(ids):
        raise PsychometricsError("item_ids must be unique")
    return ids


def _categories(x: np.ndarray, models: tuple[str, ...]) -> np.ndarray:
    """Categories per item: 2 for dichotomous items, else 1 + the highest observed score; the
    rating-scale items share one category count (Andrich's common thresholds need it)."""
    top = np.nan_to_num(np.fmax.reduce(x, axis=0), nan=1.0)
    n_cat = np.maximum(top, 1).astype(int) + 1
    dich = np.array([m in DICHOTOMOUS_MODELS for m in models])
    n_cat[dich] = 2
    rsm = np.array([m == "rsm" for m in models])
    if rsm.any():
        n_cat[rsm] = n_cat[rsm].max()
    return n_cat


def _constant_items(x: np.ndarray, obs: np.ndarray) -> np.ndarray:
    # fmin/fmax skip NaN without copying the matrix
    lo = np.fmin.reduce(x, axis=0)
    hi = np.fmax.reduce(x, axis=0)
    return (obs.sum(axis=0) < 2) | (lo == hi)


def _placeholder_xi(models, x, obs, n_cat, width, constant, xi) -> np.ndarray:
    """Bounded values for an item with no variance: slope 1 (or the common slope) and a
    difficulty at the continuity-corrected logit of its observed proportion, clipped to +-6."""
    out = np.zeros((int(constant.sum()), width))
    common = np.array([m in COMMON_SLOPE_MODELS for m in models])
    for row, j in enumerate(np.flatnonzero(constant)):
        model = models[j]
        n = obs[:, j].sum()
        a = float(np.median(xi[common, 0])) if model in COMMON_SLOPE_MODELS else 1.0
        out[row, 0] = a
        if n == 0:
            continue
        value = x[obs[:, j], j][0]
        if model in DICHOTOMOUS_MODELS:
            p = (n + 0.5) / (n + 1.0) if value == 1 else 0.5 / (n + 1.0)
            b = float(np.clip(-np.log(p / (1 - p)), -6, 6))
            out[row, 1] = -a * b
            if model == "3pl":
                out[row, 2] = np.log(0.2 / 0.8)
        elif model == "rsm":
            # the item intercept alone: steps are shared with the other rating-scale items
            out[row, 1] = -a * (6.0 if value == 0 else -6.0)
            out[row, 2 : int(n_cat[j]) + 1] = xi[j, 2 : int(n_cat[j]) + 1]
        else:
            k = int(n_cat[j]) - 1
            b = np.where(np.arange(1, k + 1) <= value, -6.0, 6.0)
            out[row, 1 : k + 1] = -a * b
    return out


def _fixed_items(fixed, ids, models, n_cat, width):
    j_n = len(ids)
    flags = np.zeros(j_n, dtype=bool)
    xi = np.zeros((j_n, width))
    if not fixed:
        return flags, xi
    for key, spec in fixed.items():
        if isinstance(key, (int, np.integer)):
            if not 0 <= key < j_n:
                raise PsychometricsError(f"fixed: column index {key} outside 0..{j_n - 1}")
            j = int(key)
        elif key in ids:
            j = ids.index(key)
        else:
            raise PsychometricsError(f"fixed: unknown item id {key!r}")
        model = models[j]
        if model == "rsm":
            raise PsychometricsError(
                f"fixed[{key!r}]: a rating-scale item shares its steps with the other rating-scale"
                " items and cannot be fixed alone; give it as a 'pcm' item with its thresholds"
            )
        if "b" not in spec:
            raise PsychometricsError(f"fixed[{key!r}] needs at least 'b'")
        try:
            a = float(spec.get("a", 1.0))
            c = float(spec.get("c", 0.0) or 0.0)
            if model in DICHOTOMOUS_MODELS:
                row = xi_from_irt(model, np.array([a]), np.array([float(spec["b"])]), np.array([c]))
            else:
                b = np.full((1, width - 1), np.nan)
                given = np.asarray(spec["b"], dtype=float).reshape(-1)
                if given.size != n_cat[j] - 1:
                    raise PsychometricsError(
                        f"fixed[{key!r}]: {given.size} thresholds for an item with {n_cat[j]} "
                        "observed categories"
                    )
                b[0, : given.size] = given
                row = xi_from_irt(model, np.array([a]), b)
        except PsychometricsError:
            raise
        except (TypeError, ValueError) as exc:  # a string, None or a list where a number goes
            raise PsychometricsError(
                f"fixed[{key!r}]: 'a', 'b' and 'c' must be numbers ({exc})"
            ) from exc
        xi[j, : row.shape[1]] = row[0]
        flags[j] = True
    return flags, xi


def _item_standard_errors(models, xi, n_cat, pmap: ParameterMap, cov, rasch_metric=False):
    """Delta-method SEs of (a, b, c) from the covariance of the free parameters.

    In the Rasch metric b = -d (the slope is the latent SD), so b's Jacobian drops the slope.
    """
    j_n, m = xi.shape
    poly = any(name not in DICHOTOMOUS_MODELS for name in models)
    k_b = max(int(n_cat.max()) - 1, 1) if poly else 1
    se_a = np.full(j_n, np.nan)
    se_b = np.full((j_n, k_b), np.nan)
    se_c = np.full(j_n, np.nan)
    if cov is not None:
        t = pmap.design().reshape(j_n, m, -1)
        for j in range(j_n):
            if not (pmap.index[j] >= 0).any():
                continue
            model = models[j]
            w = n_xi(model, int(n_cat[j]))
            cov_xi = (t[j] @ cov @ t[j].T)[:w, :w]
            row = xi[j, :w].copy()
            if rasch_metric:
                row[0] = 1.0
            jac = irt_jacobian(model, row, int(n_cat[j]))
            if rasch_metric:
                jac[1:, 0] = 0.0
            se = np.sqrt(np.maximum(np.diag(jac @ cov_xi @ jac.T), 0.0))
            # a slot outside the map (at a bound) has no SE, nor has what is computed from it
            held = pmap.index[j] < 0
            se_a[j] = se[0] if not held[0] else np.nan
            if model in DICHOTOMOUS_MODELS:
                se_b[j, 0] = se[1] if not held[1] else np.nan
                if model == "3pl":
                    se_c[j] = se[2] if not held[2] else np.nan
            else:
                k = int(n_cat[j])
                se_b[j, : k - 1] = np.where(held[1:k], np.nan, se[1:k])
    return se_a, (se_b if poly else se_b[:, 0]), se_c


@dataclass(frozen=True)
class LikelihoodRatioTest:
    """G^2 = 2 (logL_general - logL_restricted), chi-square with df = k_general - k_restricted."""

    statistic: float
    df: int
    p_value: float

    def to_dict(self) -> dict:
        return {"statistic": self.statistic, "df": self.df, "p_value": self.p_value}


def likelihood_ratio_test(restricted: Calibration, general: Calibration) -> LikelihoodRatioTest:
    """Likelihood-ratio test between nested calibrations of the same data (e.g. 1PL in 2PL).

    The 3PL is Bayes modal: its log-likelihood excludes the prior, so the test is approximate.
    """
    if restricted.n_persons != general.n_persons or restricted.n_items != general.n_items:
        raise PsychometricsError("restricted and general must be calibrations of the same data")
    df = general.n_params - restricted.n_params
    if df <= 0:
        raise PsychometricsError(
            f"general must have more parameters than restricted ({general.n_params} vs "
            f"{restricted.n_params}); pass the nested (smaller) model first"
        )
    g2 = max(0.0, 2.0 * (general.loglik - restricted.loglik))
    return LikelihoodRatioTest(statistic=g2, df=int(df), p_value=float(stats.chi2.sf(g2, df)))


__all__ = ["Calibration", "EStep", "LikelihoodRatioTest", "calibrate", "likelihood_ratio_test"]


def parameters_from_dict(doc: Mapping) -> tuple[list[str], ItemParameters]:
    """Item ids and :class:`ItemParameters` from a ``Calibration.to_dict()`` document."""
    try:
        items = list(doc["items"])
        model = (
            tuple(check_model(item["model"]) for item in items)
            if doc["model"] == "mixed"
            else check_model(doc["model"])
        )
    except (KeyError, TypeError) as exc:
        raise PsychometricsError(f"calibration document lacks {exc}; expected 'model' and 'items'") from exc
    if not items:
        raise PsychometricsError("calibration document has no items")
    ids = [str(item["id"]) for item in items]
    a = np.array([float(item["a"]) for item in items])
    if not isinstance(model, str):
        width = max(len(item["b"]) if isinstance(item["b"], list) else 1 for item in items)
        b = np.full((len(items), width), np.nan)
        for j, item in enumerate(items):
            given = item["b"] if isinstance(item["b"], list) else [item["b"]]
            b[j, : len(given)] = [float(v) for v in given]
        c = np.array([float(item.get("c") or 0.0) for item in items])
        n_cat = np.array([int(item.get("n_categories") or 1 + len(np.atleast_1d(item["b"])))
                          for item in items])
        return ids, ItemParameters(model, a, b, c, n_cat)
    if model in DICHOTOMOUS_MODELS:
        b = np.array([float(item["b"]) for item in items])
        c = np.array([float(item.get("c") or 0.0) for item in items])
        return ids, ItemParameters(model, a, b, c)
    width = max(len(item["b"]) for item in items)
    b = np.full((len(items), width), np.nan)
    for j, item in enumerate(items):
        b[j, : len(item["b"])] = [float(v) for v in item["b"]]
    return ids, ItemParameters(model, a, b, None, 1 + (~np.isnan(b)).sum(axis=1))
