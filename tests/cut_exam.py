"""An exam for the cut tests: two fixed forms of 36 single-choice items whose approved 3PL
parameters are Kolen & Brennan's (2014, ch. 6) Forms X and Y (the engine's known values live in
``tests/psychometrics/test_equating.py``), and delivered results simulated from them.

Form Y is the easier form: a raw cut of 25 on X is theta 1.102159 and a true score of
26.387408 on Y (POLYEQUATE), so one theta cut gives raw cuts 25 on X and 27 on Y.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy.orm import Session

from tests.psychometrics.test_equating import KB_FORM_X, KB_FORM_Y, KB_X_THETA

#: theta of raw 25 on Form X (Kolen & Brennan, 2014, ch. 6; POLYEQUATE)
THETA_25_ON_X = KB_X_THETA[25 - 7]
KEY = "B"
WRONG = "A"


def kb_parameters(rows) -> list[tuple[float, float, float]]:
    """Kolen & Brennan's (a, b, c) on the normal metric, as the logistic 3PL the bank stores."""
    return [(1.7 * a, b, c) for a, b, c in rows]


def build_kb_exam(session: Session, *, code: str = "KB", pass_percent: float = 60,
                  calibrate: bool = True, forms: tuple[str, ...] = ("X", "Y"),
                  approved_run: bool = True, by=None):
    """The exam (forms ``KB-X`` and ``KB-Y``), committed. With ``calibrate``, the forms' items
    get their approved parameters through the item bank's one writer, from an approved
    calibration run row (so results can name the run)."""
    from assessment.exams import create_exam
    from itembank.authoring import create_blueprint, create_form, create_item, publish_version
    from itembank.parameters import ParameterValues, supersede_parameters

    bp = create_blueprint(session, code=f"{code}-BP", name=f"{code} blueprint", domains=[
        {"code": "D", "name": "Domain D", "weight": 1.0, "items_on_form": 36}])
    built, values = [], []
    for name in forms:
        rows = kb_parameters(KB_FORM_X if name == "X" else KB_FORM_Y)
        versions = []
        for i, (a, b, c) in enumerate(rows, start=1):
            v = create_item(
                session, code=f"{code}-{name}{i:02d}", item_type_name="single_choice",
                domain_code="D", stem=f"Form {name}, question {i}: which option is right?",
                interaction={"options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]},
                key={"correct": [KEY]})
            v = publish_version(session, v)
            versions.append(v)
            values.append(ParameterValues(item_version_id=v.id, model="3pl", a=a, b=b, c=c))
        built.append(create_form(session, code=f"{code}-{name}", blueprint=bp,
                                 versions=versions))
    exam = create_exam(session, code=code, title=f"Exam {code}", blueprint=bp, forms=built,
                       time_limit_seconds=3600, pass_percent=pass_percent,
                       instructions=["Answer every question."], agreement="I will work alone.",
                       shuffle_items=False, shuffle_options=False)
    session.flush()
    if calibrate:
        run_id = _approved_run(session, exam, by) if approved_run else None
        supersede_parameters(session, values, source=f"calibration run {run_id}: K&B ch. 6")
    session.commit()
    return exam


def _approved_run(session: Session, exam, by) -> int:
    from assessment.psych.runs import CalibrationRun

    run = CalibrationRun(exam_id=exam.id, model="3pl", options={}, converged=True,
                         iterations=12, log_likelihood=None, status="approved",
                         decided_by_id=getattr(by, "id", None), job_state="finished")
    session.add(run)
    session.flush()
    return run.id


def form_of(session: Session, exam, name: str):
    return next(ef.form for ef in exam.forms if ef.form.code.endswith(f"-{name}"))


def deliver(session: Session, exam, form, candidate_ids: list[int], patterns: np.ndarray,
            *, passed: list[bool] | None = None) -> list[int]:
    """Finalized, released attempts on ``form`` with the 0/1 ``patterns`` (one row per
    candidate), written as rows (fast: the decision-consistency tests need many); scored by
    the percent rule as results before any cut were. Returns the result ids."""
    from assessment.delivery.models import Attempt, ItemScore, Result, ResultRelease

    order = [fi.item_version_id for fi in sorted(form.items, key=lambda fi: fi.position)]
    now = dt.datetime.now(dt.UTC)
    ids = []
    for k, (cid, row) in enumerate(zip(candidate_ids, patterns)):
        attempt = Attempt(candidate_id=cid, exam_id=exam.id, form_id=form.id, seed=k,
                          item_order=order, option_orders={}, started_at=now,
                          time_limit_seconds=3600, agreement_accepted_at=now, status="finalized",
                          finalized_at=now, finalize_reason="submitted")
        session.add(attempt)
        session.flush()
        raw = float(row.sum())
        percent = round(100.0 * raw / len(order), 2)
        result = Result(attempt_id=attempt.id, raw_score=raw, max_score=float(len(order)),
                        percent=percent, pass_percent=exam.pass_percent,
                        passed=percent >= exam.pass_percent if passed is None else passed[k],
                        answered=len(order), n_items=len(order),
                        domain_scores=[], theta=None, theta_se=None)
        session.add(result)
        session.flush()
        session.add_all([ItemScore(result_id=result.id, item_version_id=vid, position=p,
                                   domain_code="D", response=KEY if x else WRONG, score=float(x),
                                   max_score=1.0) for p, (vid, x) in enumerate(zip(order, row))])
        session.add(ResultRelease(result_id=result.id, status="released"))
        ids.append(result.id)
    session.flush()
    return ids


def simulate(rows, n: int, seed: int) -> np.ndarray:
    """0/1 responses of ``n`` simulees, theta ~ N(0, 1), under the 3PL ``rows``."""
    rng = np.random.default_rng(seed)
    a, b, c = (np.array(col) for col in zip(*kb_parameters(rows)))
    theta = rng.normal(size=(n, 1))
    p = c + (1 - c) / (1 + np.exp(-a * (theta - b)))
    return (rng.random(p.shape) < p).astype(int)
