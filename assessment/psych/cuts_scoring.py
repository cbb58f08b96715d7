"""The pass/fail decision of a scored attempt under the exam's adopted cut: one function,
:func:`judge`, used by finalization and by both rescorings (re-key and cut change), so a
decision is always made the same way and can be made again from what the result records.

The rule, in order:

1. No cut adopted: ``percent``, the exam's pass percent against the percent correct (as every
   exam was judged before cuts existed).
2. The cut scores by IRT and every scored item of the attempt has usable approved dichotomous
   parameters: ``irt``, the EAP theta (Bock & Mislevy, 1982; N(0, 1) prior, the calibration's
   metric) against the theta cut; pass when ``theta >= theta_cut``. The scale score is the
   adopted transform of theta; the form's raw cut is recorded alongside for reference.
3. Otherwise number-correct against the form's raw cut: the cut's stored raw cut of a fixed
   form (from its test characteristic curve when the cut was adopted), or, for a form the cut
   has none for (a linear-on-the-fly form), carried now through the form's approved
   parameters: ``number_correct``, pass when ``raw >= raw_cut``. The scale score is that of
   the raw score through the form's test characteristic curve.
4. A form the cut cannot reach (no stored raw cut, items without approved parameters): the
   ``percent`` rule, and the result names no cut.

Everything a result needs to be reproduced is returned: the rule, the cut, the approved run
and the parameter rows, the raw cut, theta and its SE, the scale score.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from assessment.psych.cuts import CutAdoption, current_cut, parameter_set, raw_to_scale
from psychometrics import PsychometricsError, carry_cut
from psychometrics.scoring import theta_eap

log = logging.getLogger(__name__)
CURRENT: Any = object()


@dataclass(frozen=True)
class Judgement:
    rule: str
    passed: bool
    #: the percent of the maximum the pass needs (the raw cut's percent under a cut)
    pass_percent: float
    raw_cut: float | None = None
    theta: float | None = None
    theta_se: float | None = None
    scale_score: float | None = None
    cut_adoption_id: int | None = None
    calibration_run_id: int | None = None
    parameter_ids: dict[str, int] | None = None

    def apply_to(self, result: Any) -> Any:
        """Set the decision's columns on an unsaved ``Result``."""
        result.scoring_rule, result.passed = self.rule, self.passed
        result.pass_percent = self.pass_percent
        result.raw_cut, result.scale_score = self.raw_cut, self.scale_score
        result.theta, result.theta_se = self.theta, self.theta_se
        result.cut_adoption_id = self.cut_adoption_id
        result.calibration_run_id = self.calibration_run_id
        result.parameter_ids = self.parameter_ids
        return result


def percent_rule(percent: float, pass_percent: float) -> Judgement:
    return Judgement(rule="percent", passed=percent >= pass_percent, pass_percent=pass_percent)


def _dichotomous(scored: list[tuple[int, float, float]]) -> bool:
    return all(m == 1.0 and s in (0.0, 1.0) for _, s, m in scored)


def _parameters(session: Session, exam: Any, vids: list[int], cache: dict | None):
    """The approved parameter set of these items and their parameters in this order (None when
    one has none usable); with ``cache``, each set is read once and each order built once."""
    key = tuple(vids)
    found = cache.get(key) if cache is not None else None
    if found is None:
        items = frozenset(vids)
        pset = cache.get(items) if cache is not None else None
        if pset is None:
            pset = parameter_set(session, exam.id, vids)
            if cache is not None:
                cache[items] = pset
        found = (pset, pset.for_items(vids))
        if cache is not None:
            cache[key] = found
    return found


def judge_many(session: Session, exam: Any, attempts: list[tuple[int, list]], *,
               adoption: CutAdoption | None, cache: dict | None = None) -> list[Judgement]:
    """:func:`judge` for many attempts ``(form_id, scored)`` at once (a rescoring): the EAP
    estimates of the attempts that share a set of items come from one call over their response
    matrix, in item-id order (EAP does not depend on the order of the items), instead of one
    call per attempt. Each decision is then made by :func:`judge`, the one rule."""
    cache = {} if cache is None else cache
    estimates: dict[int, tuple[float, float]] = {}
    if adoption is not None and adoption.scoring == "irt":
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (_, scored) in enumerate(attempts):
            if scored and _dichotomous(scored):
                groups.setdefault(tuple(sorted(v for v, _, _ in scored)), []).append(i)
        for vids, members in groups.items():
            _, params = _parameters(session, exam, list(vids), cache)
            if params is None:
                continue
            scored = ({v: s for v, s, _ in attempts[i][1]} for i in members)
            matrix = np.array([[row[v] for v in vids] for row in scored], dtype=float)
            est = theta_eap(matrix, params)
            for row, i in enumerate(members):
                estimates[i] = (float(est.theta[row]), float(est.se[row]))
    return [judge(session, exam, form_id, scored, adoption=adoption, cache=cache,
                  estimate=estimates.get(i))
            for i, (form_id, scored) in enumerate(attempts)]


def judge(session: Session, exam: Any, form_id: int, scored: list[tuple[int, float, float]],
          *, adoption: CutAdoption | None = CURRENT, cache: dict | None = None,
          estimate: tuple[float, float] | None = None) -> Judgement:
    """The decision for the scored items ``(item_version_id, score, max_score)`` of an attempt
    on ``form_id`` (see the module for the rule). ``adoption``: the cut to judge by (default the
    exam's current one; None: the percent rule). ``cache``: a dict kept across calls for many
    results (a rescoring), so each set of items' parameters is read once. ``estimate``: the
    attempt's EAP (theta, SE) when :func:`judge_many` already computed it."""
    raw = float(sum(s for _, s, _ in scored))
    maximum = float(sum(m for _, _, m in scored))
    percent = round(100.0 * raw / maximum, 2) if maximum else 0.0
    if adoption is CURRENT:
        adoption = current_cut(session, exam.id)
    if adoption is None or not scored:
        return percent_rule(percent, exam.pass_percent)
    vids = [v for v, _, _ in scored]
    pset, params = _parameters(session, exam, vids, cache)
    params = params if _dichotomous(scored) else None
    transform = adoption.transform()
    stored = adoption.form_cut(form_id)
    if stored is not None and stored.get("max_score") != int(maximum):
        stored = None  # the form's scored items changed since the cut was adopted
    common = {"cut_adoption_id": adoption.id}
    if adoption.scoring == "irt" and params is not None:
        if estimate is None:
            est = theta_eap(np.array([[s for _, s, _ in scored]], dtype=float), params)
            estimate = (float(est.theta[0]), float(est.se[0]))
        theta, se = estimate
        raw_cut = stored["raw_cut"] if stored else _carried_raw_cut(adoption, params)
        return Judgement(
            rule="irt", passed=theta >= adoption.theta_cut,
            pass_percent=_percent(raw_cut, maximum, exam), raw_cut=raw_cut, theta=theta,
            theta_se=se, scale_score=float(transform(theta)),
            calibration_run_id=pset.run_id, parameter_ids=pset.ids(vids), **common)
    if stored is not None:
        table = stored.get("scale") or []
        return Judgement(
            rule="number_correct", passed=raw >= stored["raw_cut"],
            pass_percent=_percent(stored["raw_cut"], maximum, exam), raw_cut=stored["raw_cut"],
            scale_score=_lookup(table, raw), calibration_run_id=adoption.calibration_run_id,
            parameter_ids={str(v): adoption.parameter_ids[str(v)] for v in vids
                           if str(v) in (adoption.parameter_ids or {})}, **common)
    if params is not None:
        raw_cut = _carried_raw_cut(adoption, params)
        if raw_cut is not None:
            return Judgement(
                rule="number_correct", passed=raw >= raw_cut,
                pass_percent=_percent(raw_cut, maximum, exam), raw_cut=raw_cut,
                scale_score=_lookup(raw_to_scale(params, transform), raw),
                calibration_run_id=pset.run_id, parameter_ids=pset.ids(vids), **common)
    log.warning("exam %s, form %s: the adopted cut %s cannot reach this form (no stored raw cut,"
                " items without approved parameters); judged by the pass percent",
                exam.code, form_id, adoption.id)
    return percent_rule(percent, exam.pass_percent)


def _carried_raw_cut(adoption: CutAdoption, params) -> int | None:
    try:
        return carry_cut(adoption.theta_cut, params, rounding=adoption.rounding).forms[0].raw_cut
    except PsychometricsError:
        return None


def _percent(raw_cut: float | None, maximum: float, exam: Any) -> float:
    if raw_cut is None or not maximum:
        return float(exam.pass_percent)
    return round(100.0 * raw_cut / maximum, 2)


def _lookup(table: list[float], raw: float) -> float | None:
    k = round(raw)
    return float(table[k]) if table and 0 <= k < len(table) and k == raw else None
