"""Fisher information of item versions at chosen abilities, from their current parameters.

The formulas are psychometrics' (:func:`psychometrics.irt.information.item_information`): this
module only turns the bank's ``ItemParameter`` rows into its arrays, one model at a time. A
version without parameters (a pretest item not yet calibrated) has no information and is absent
from the answer.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy.orm import Session

from itembank.models import ItemParameter
from itembank.parameters import current_parameters
from psychometrics.irt.information import item_information
from psychometrics.irt.models import DICHOTOMOUS_MODELS, ItemParameters

#: the abilities a test information curve is drawn at
CURVE_THETAS = tuple(np.round(np.linspace(-4.0, 4.0, 33), 2))


def _group(rows: list[ItemParameter]) -> dict[str, list[ItemParameter]]:
    groups: dict[str, list[ItemParameter]] = {}
    for row in rows:
        model = row.model.lower()
        if model in DICHOTOMOUS_MODELS and row.b is None:
            continue  # a dichotomous item without a difficulty cannot be evaluated
        if model not in DICHOTOMOUS_MODELS and not row.thresholds:
            continue
        groups.setdefault(model, []).append(row)
    return groups


def _params(model: str, rows: list[ItemParameter]) -> ItemParameters:
    a = [r.a for r in rows]
    c = [r.c or 0.0 for r in rows]
    if model in DICHOTOMOUS_MODELS:
        return ItemParameters(model, a, [r.b for r in rows], c)
    width = max(len(r.thresholds) for r in rows)
    b = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        b[i, : len(r.thresholds)] = [np.nan if t is None else float(t) for t in r.thresholds]
    return ItemParameters(model, a, b, c)


def information_by_version(rows: Sequence[ItemParameter], thetas: Sequence[float]
                           ) -> dict[int, np.ndarray]:
    """Item information of each parameter row's version at ``thetas`` (shape (Q,) each)."""
    out: dict[int, np.ndarray] = {}
    theta = np.asarray(thetas, dtype=float)
    for model, group in _group(list(rows)).items():
        info = item_information(_params(model, group), theta)
        for row, values in zip(group, info):
            out[row.item_version_id] = values
    return out


def version_information(session: Session, version_ids: Sequence[int],
                        thetas: Sequence[float]) -> dict[int, np.ndarray]:
    """Information of each item version with current parameters at ``thetas``."""
    params = current_parameters(session, list(version_ids))
    return information_by_version(list(params.values()), thetas)


def test_information_curve(session: Session, version_ids: Sequence[int],
                           thetas: Sequence[float] = CURVE_THETAS) -> tuple[np.ndarray, int]:
    """The test information of the versions at ``thetas``, and how many versions had no
    parameters (and so add nothing to it)."""
    info = version_information(session, version_ids, thetas)
    total = np.zeros(len(thetas))
    for values in info.values():
        total += values
    return total, len(set(version_ids) - set(info))


test_information_curve.__test__ = False  # type: ignore[attr-defined]
