"""Rasch toolkit: item infit and outfit mean squares with standardised (ZSTD) values (Wright &
Masters, 1982), item Zh (Drasgow, Levine & Williams, 1985), and Wright map data.

Item statistics sum the cell terms of :mod:`psychometrics.personfit` over the persons who
answered the item: outfit = (1/N) sum_i z_ij^2, infit = sum_i (x_ij - E_ij)^2 / sum_i W_ij, the
same Wilson-Hilferty standardisation, and Zh = (sum_i l_ij - sum_i E l_ij) / sqrt(sum_i Var l_ij)
as mirt's ``itemfit(fit_stats = c("infit", "Zh"))`` computes them (Chalmers, 2012), at EAP
abilities unless ``theta`` is given. Mean squares near 1 fit; Linacre (2002) reads 0.5-1.5 as
productive for measurement, above 2 as degrading it. The formulas apply to any model, though
infit and outfit are conventionally read for Rasch-family models.

A Wright map (Wright & Stone, 1979; Bond & Fox, 2015) puts persons and items on one logit scale:
the persons as a histogram of ability estimates, the items at their locations (b, where
P(x = 1) = (1 + c) / 2; polytomous items at the mean of their thresholds, with the thresholds
listed), each item placed in the histogram bin it falls in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import DICHOTOMOUS_MODELS, ItemParameters
from psychometrics.personfit import _num, _theta_for, fit_statistics, residual_sums
from psychometrics.scoring import _check_inputs


@dataclass
class ItemResidualFit:
    item: str
    n: int
    outfit: float | None
    z_outfit: float | None
    infit: float | None
    z_infit: float | None
    zh: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def item_infit_outfit(
    responses, params: ItemParameters, *, theta=None, method: str = "eap", item_ids=None
) -> list[ItemResidualFit]:
    """Item outfit, infit (mean squares and ZSTD) and Zh, at ``theta`` or ``method`` scores."""
    x = _check_inputs(responses, params)
    t = _theta_for(x, params, theta, method)
    t = np.where((~np.isnan(x)).any(axis=1), t, np.nan)
    sums = residual_sums(x, params, t, axis=0)
    st = fit_statistics(sums)
    ids = (
        [f"item{j + 1}" for j in range(params.n_items)]
        if item_ids is None
        else list(map(str, item_ids))
    )
    if len(ids) != params.n_items:
        raise PsychometricsError(f"item_ids must name {params.n_items} items, got {len(ids)}")
    return [
        ItemResidualFit(
            ids[j],
            int(sums.n[j]),
            _num(st["outfit"][j]),
            _num(st["z_outfit"][j]),
            _num(st["infit"][j]),
            _num(st["z_infit"][j]),
            _num(st["lz"][j]),
        )
        for j in range(params.n_items)
    ]


@dataclass
class WrightMapItem:
    item: str
    location: float
    thresholds: list[float]
    bin: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class WrightMap:
    """Persons and items on one scale: ``person_counts[k]`` persons in [edges[k], edges[k+1])."""

    bin_edges: np.ndarray
    person_counts: np.ndarray
    items: list[WrightMapItem]
    person_mean: float
    person_sd: float
    item_mean: float
    item_sd: float
    n_persons: int

    def to_dict(self) -> dict:
        return {
            "bin_edges": self.bin_edges.tolist(),
            "person_counts": self.person_counts.astype(int).tolist(),
            "items": [i.to_dict() for i in self.items],
            "person_mean": self.person_mean,
            "person_sd": self.person_sd,
            "item_mean": self.item_mean,
            "item_sd": self.item_sd,
            "n_persons": self.n_persons,
        }


def item_locations(params: ItemParameters) -> tuple[np.ndarray, list[list[float]]]:
    """Location of each item on the theta scale and its thresholds (see the module docstring)."""
    if params.model in DICHOTOMOUS_MODELS:
        b = np.asarray(params.b, dtype=float).reshape(-1)
        return b, [[float(v)] for v in b]
    b = np.atleast_2d(np.asarray(params.b, dtype=float))
    thresholds = [[float(v) for v in row if np.isfinite(v)] for row in b]
    return np.array([np.mean(t) for t in thresholds]), thresholds


def wright_map(
    theta, params: ItemParameters, *, item_ids=None, bins: int = 20, limits: tuple | None = None
) -> WrightMap:
    """Histogram of person abilities and item locations on shared bins.

    ``limits`` (low, high) defaults to the span of persons and items together; non-finite
    abilities (persons with no responses) are left out and counted in neither.
    """
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    if t.ndim != 1:
        raise PsychometricsError("theta must be a 1-d array of person abilities")
    t = t[np.isfinite(t)]
    if t.size == 0:
        raise PsychometricsError("theta: no finite person ability to map")
    if int(bins) != bins or bins < 2:
        raise PsychometricsError(f"bins must be an integer >= 2, got {bins!r}")
    loc, thresholds = item_locations(params)
    ids = (
        [f"item{j + 1}" for j in np.arange(params.n_items)]
        if item_ids is None
        else list(map(str, item_ids))
    )
    if len(ids) != params.n_items:
        raise PsychometricsError(f"item_ids must name {params.n_items} items, got {len(ids)}")
    if limits is None:
        everything = np.concatenate([t, loc[np.isfinite(loc)]])
        low, high = float(everything.min()), float(everything.max())
        if low == high:
            low, high = low - 0.5, high + 0.5
    else:
        low, high = map(float, limits)
        if not low < high:
            raise PsychometricsError(f"limits must satisfy low < high, got {limits!r}")
    edges = np.linspace(low, high, int(bins) + 1)
    counts, _ = np.histogram(t, bins=edges)
    item_bins = np.clip(np.searchsorted(edges, loc, side="right") - 1, 0, int(bins) - 1)
    items = [
        WrightMapItem(ids[j], float(loc[j]), thresholds[j], int(item_bins[j]))
        for j in np.argsort(loc, kind="stable")
    ]
    return WrightMap(
        bin_edges=edges,
        person_counts=counts,
        items=items,
        person_mean=float(t.mean()),
        person_sd=float(t.std()),
        item_mean=float(np.mean(loc)),
        item_sd=float(np.std(loc)),
        n_persons=int(t.size),
    )
