"""Property tests for cut carrying and decision indices over random forms and cuts."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from psychometrics import (
    ItemParameters,
    carry_cut,
    lee,
    raw_for_theta,
    rudner,
    theta_cut_from_raw,
)

FAST = settings(max_examples=15, deadline=None, database=None, derandomize=True)


def _form(seed: int, n_items: int, model: str) -> ItemParameters:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.5, n_items)
    b = rng.normal(0, 1, n_items)
    if model == "3pl":
        return ItemParameters("3pl", a, b, rng.uniform(0.0, 0.3, n_items))
    if model == "gpcm":
        steps = np.sort(rng.normal(0, 1, (n_items, 2)), axis=1)
        return ItemParameters("gpcm", a, steps)
    return ItemParameters("2pl", a, b)


forms = st.builds(
    _form,
    st.integers(0, 10_000),
    st.integers(5, 40),
    st.sampled_from(["2pl", "3pl", "gpcm"]),
)


@FAST
@given(form=forms, frac=st.floats(0.05, 0.95))
def test_raw_theta_raw_round_trip(form, frac):
    top = int((form.n_categories - 1).sum())
    floor = float(form.c.sum())
    raw = floor + frac * (top - floor)
    theta = theta_cut_from_raw(form, raw)
    assert abs(raw_for_theta(form, theta)[0] - raw) < 1e-7
    cut = carry_cut(theta, form).forms[0]
    assert cut.raw_cut == int(np.ceil(raw - 1e-9))
    assert 0 <= cut.raw_cut <= top


@FAST
@given(form=forms, cut=st.floats(-2.5, 2.5))
def test_decision_indices_are_probabilities(form, cut):
    r = rudner(cut, params=form)
    top = int((form.n_categories - 1).sum())
    raw = float(np.clip(raw_for_theta(form, cut)[0], 0.5, top))
    le = lee(form, raw)
    for res in (r, le):
        assert 0 <= res.accuracy <= 1 and 0 <= res.consistency <= 1
        assert -1 <= res.kappa <= 1
        assert abs(res.confusion.sum() - 1) < 1e-9
        assert abs(res.expected_proportions.sum() - 1) < 1e-9
        assert res.false_pass >= 0 and res.false_fail >= 0
        assert abs(res.accuracy + res.false_pass + res.false_fail - 1) < 1e-9


@FAST
@given(form=forms)
def test_raw_cut_is_monotone_in_theta_cut(form):
    cuts = [carry_cut(t, form).forms[0].raw_cut for t in np.linspace(-3, 3, 7)]
    assert all(b >= a for a, b in itertools.pairwise(cuts))
    pass_rates = [rudner(t, params=form).expected_proportions[-1] for t in (-1.0, 0.0, 1.0)]
    assert pass_rates[0] > pass_rates[1] > pass_rates[2]
