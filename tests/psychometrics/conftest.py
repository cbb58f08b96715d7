"""Fixtures for the psychometrics tests: the LSAT-6 data and simulated response matrices."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# the repository root first, so `import psychometrics` is the package (its __init__ runs) even
# when the editable install registered it as a namespace before psychometrics/__init__.py existed
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# LSAT Section 6: 1000 examinees, 5 items, the 32 response patterns and their frequencies
# (Bock & Lieberman, 1970, Psychometrika 35, 179-197; the `LSAT` data of R's ltm and `LSAT6`
# of mirt). Pattern index i in binary order, item 1 the most significant bit.
LSAT6_FREQUENCIES = [
    3,
    6,
    2,
    11,
    1,
    1,
    3,
    4,
    1,
    8,
    0,
    16,
    0,
    3,
    2,
    15,
    10,
    29,
    14,
    81,
    3,
    28,
    15,
    80,
    16,
    56,
    21,
    173,
    11,
    61,
    28,
    298,
]


# LSAT Section 7: 1000 examinees, 5 items, same pattern order (Bock & Lieberman, 1970; the
# `LSAT7` data of mirt, whose `expand.table(LSAT7)` example shows the first rows 12, 19, 1, 7, 3,
# 19). Item proportions correct .828, .658, .772, .606, .843 (mirt `itemstats`).
LSAT7_FREQUENCIES = [
    12, 19, 1, 7, 3, 19, 3, 17,
    10, 5, 3, 7, 7, 23, 8, 28,
    7, 39, 11, 34, 14, 51, 15, 90,
    6, 25, 7, 35, 18, 136, 32, 308,
]  # fmt: skip


def lsat6_patterns() -> np.ndarray:
    return np.array([[int(c) for c in format(i, "05b")] for i in range(32)], dtype=float)


@pytest.fixture(scope="session")
def lsat6() -> np.ndarray:
    return np.repeat(lsat6_patterns(), LSAT6_FREQUENCIES, axis=0)


@pytest.fixture(scope="session")
def lsat7() -> np.ndarray:
    return np.repeat(lsat6_patterns(), LSAT7_FREQUENCIES, axis=0)


def simulate_dichotomous(n_persons, n_items, *, model="2pl", missing=0.0, seed=0):
    """Responses and true parameters: a ~ lognormal(0, 0.3), b ~ N(0, 1), c ~ U(.1, .25)."""
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.3, n_items) if model != "rasch" else np.ones(n_items)
    b = rng.normal(0.0, 1.0, n_items)
    c = rng.uniform(0.1, 0.25, n_items) if model == "3pl" else np.zeros(n_items)
    theta = rng.normal(size=n_persons)
    p = c + (1 - c) / (1 + np.exp(-a * (theta[:, None] - b)))
    x = (rng.random((n_persons, n_items)) < p).astype(float)
    if missing:
        x[rng.random(x.shape) < missing] = np.nan
    return x, {"a": a, "b": b, "c": c, "theta": theta}


def simulate_polytomous(n_persons, n_items, n_cat, *, model="grm", seed=0):
    """GRM or GPCM responses with ordered thresholds spread around N(0, 1) locations."""
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.25, n_items)
    loc = rng.normal(0.0, 0.7, n_items)
    b = np.sort(rng.normal(0, 1, (n_items, n_cat - 1)), axis=1) * 0.8 + loc[:, None]
    theta = rng.normal(size=n_persons)
    z = a[None, :, None] * (theta[:, None, None] - b[None, :, :])  # (N, J, K-1)
    if model == "grm":
        cum = 1 / (1 + np.exp(-z))
        u = rng.random((n_persons, n_items, 1))
        x = (u < cum).sum(axis=2).astype(float)
    else:
        num = np.concatenate([np.zeros((n_persons, n_items, 1)), np.cumsum(z, axis=2)], axis=2)
        p = np.exp(num - num.max(axis=2, keepdims=True))
        p /= p.sum(axis=2, keepdims=True)
        u = rng.random((n_persons, n_items, 1))
        x = (u > np.cumsum(p, axis=2)).sum(axis=2).astype(float)
    return x, {"a": a, "b": b, "theta": theta}


def rmse(estimate, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(estimate) - np.asarray(truth)) ** 2)))


class Simulators:
    """The simulation helpers, handed to tests as the ``sim`` fixture (--import-mode=importlib
    keeps test modules from importing this conftest by name)."""

    dichotomous = staticmethod(simulate_dichotomous)
    polytomous = staticmethod(simulate_polytomous)
    rmse = staticmethod(rmse)
    lsat6_patterns = staticmethod(lsat6_patterns)


@pytest.fixture(scope="session")
def sim() -> Simulators:
    return Simulators()
