"""What a standard-setting study's judgments come to: each round's cut with its standard error and
the panel's agreement, the impact (the pass rate the cut implies on the reference form's counted
results), and the recommended cut on the raw and theta scales.

Every number comes from :mod:`psychometrics.standard_setting` (the method) and
:mod:`psychometrics.cut_scores` / :mod:`psychometrics.equating` (raw <-> theta through the test
characteristic curve of the reference form's current calibrated parameters). This module only
gathers the stored judgments into the arrays those functions take.

Scales. Angoff cuts are expected (true) scores on the reference form; Hofstee, Beuk and the
candidate-centred methods give observed raw scores, carried to theta as if they were true scores
(the usual practice: the test characteristic curve is the one bridge between the two); Bookmark
gives a theta cut, whose raw cut is the curve's expected score there. The standard error on the
other scale is carried through the same curve: half the distance between the images of cut - SE
and cut + SE (the delta method's value for a smooth curve).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from assessment.delivery.models import Attempt, Result
from assessment.psych.results import counted_results
from assessment.psych.studies import (
    CLASSIFICATION_METHODS,
    ITEM_METHODS,
    Study,
    StudyItem,
    StudyRound,
    get_study,
    standing_classifications,
    standing_judgments,
    standing_ratings,
    study_items,
)
from assessment.users import User
from itembank.parameters import current_parameters
from psychometrics import (
    ItemParameters,
    PsychometricsError,
    angoff_cut,
    beuk_cut,
    beuk_cut_se,
    bookmark_cut,
    borderline_regression_cut,
    borderline_regression_cut_se,
    contrasting_groups_cut,
    contrasting_groups_cut_se,
    hofstee_cut,
    hofstee_cut_se,
    ordered_item_booklet,
    theta_cut_from_raw,
)
from psychometrics.cut_scores import round_raw_cut
from psychometrics.equating import raw_for_theta
from psychometrics.irt.models import DICHOTOMOUS_MODELS
from psychometrics.standard_setting import OrderedItemBooklet, fail_rate


@dataclass
class ReferenceScores:
    """The counted results on the reference form: raw scores and who/which attempt."""

    result_ids: list[int]
    scores: np.ndarray
    attempt_ids: list[int]
    emails: list[str]

    @property
    def n(self) -> int:
        return len(self.result_ids)

    def pass_rate(self, raw_cut: float | None) -> float | None:
        """Share at or above the whole raw cut (the cut rounded up: "at least")."""
        if raw_cut is None or self.n == 0 or not math.isfinite(raw_cut):
            return None
        whole = float(round_raw_cut(raw_cut, "ceil"))
        return float(np.mean(self.scores >= whole - 1e-9))


def reference_scores(session: Session, study: Study) -> ReferenceScores:
    counted = counted_results(study.exam_id).where(
        Attempt.form_id == study.reference_form_id).subquery()
    rows = session.execute(
        select(counted.c.result_id, Result.raw_score, Result.attempt_id, User.email)
        .join(Result, Result.id == counted.c.result_id)
        .join(Attempt, Attempt.id == Result.attempt_id)
        .join(User, User.id == Attempt.candidate_id)
        .order_by(counted.c.result_id)
    ).all()
    return ReferenceScores(
        result_ids=[r.result_id for r in rows],
        scores=np.array([float(r.raw_score) for r in rows]),
        attempt_ids=[r.attempt_id for r in rows],
        emails=[r.email for r in rows],
    )


def reference_parameters(session: Session, items: list[StudyItem]
                         ) -> tuple[ItemParameters | None, str | None]:
    """The reference form's current parameters in form order, or None and why not."""
    if not items:
        return None, "the reference form has no scored items"
    rows = current_parameters(session, [i.version.id for i in items])
    missing = [i.label for i in items if i.version.id not in rows]
    if missing:
        return None, (f"{len(missing)} of the reference form's {len(items)} items have no "
                      f"calibrated parameters ({', '.join(missing[:5])}"
                      f"{', ...' if len(missing) > 5 else ''}); approve a calibration run first")
    models, a, b, c = [], [], [], []
    for i in items:
        row = rows[i.version.id]
        if row.model.lower() not in DICHOTOMOUS_MODELS or row.b is None:
            return None, (f"item {i.label} is calibrated with {row.model}; carrying a cut "
                          "through the curve here needs dichotomous items")
        models.append(row.model.lower())
        a.append(row.a)
        b.append(row.b)
        c.append(row.c or 0.0)
    return ItemParameters("mixed", a, b, c, item_models=tuple(models)), None


@dataclass
class RoundOutcome:
    """One round's result (or the classifications' result, as round None)."""

    number: int | None
    is_open: bool = False
    released: bool = False
    n_judges: int = 0  # panelists (or candidates) whose judgments entered the cut
    raw_cut: float | None = None
    raw_se: float | None = None
    theta_cut: float | None = None
    theta_se: float | None = None
    sd: float | None = None
    percent: float | None = None
    pass_rate: float | None = None
    icc: dict[str, float] | None = None
    panelist_cuts: dict[int, float] = field(default_factory=dict)
    item_rows: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def has_cut(self) -> bool:
        return self.raw_cut is not None or self.theta_cut is not None


@dataclass
class StudyOutcome:
    study: Study
    items: list[StudyItem]
    max_score: float
    scores: ReferenceScores
    params: ItemParameters | None
    params_problem: str | None
    booklet: OrderedItemBooklet | None
    booklet_problem: str | None
    rounds: list[RoundOutcome]

    @property
    def recommended(self) -> RoundOutcome | None:
        """The last closed round with a cut (for classification methods, their result)."""
        for r in reversed(self.rounds):
            if not r.is_open and r.has_cut:
                return r
        return None


def _nan_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _to_theta(params: ItemParameters | None, raw: float | None, se: float | None
              ) -> tuple[float | None, float | None, str | None]:
    if params is None or raw is None:
        return None, None, None
    try:
        theta = theta_cut_from_raw(params, raw)
    except PsychometricsError as exc:
        return None, None, str(exc)
    if se is None or se <= 0:
        return theta, None, None
    ends = []
    for x in (raw - se, raw + se):
        try:
            ends.append(theta_cut_from_raw(params, x))
        except PsychometricsError:
            ends.append(theta)  # beyond the curve's range: one side carries the SE
    spread = ends[1] - ends[0]
    halves = 2 if ends[0] != theta and ends[1] != theta else 1
    return theta, spread / halves, None


def _from_theta(params: ItemParameters, theta: float, se: float | None
                ) -> tuple[float, float | None]:
    raw = float(raw_for_theta(params, [theta])[0])
    if se is None or not math.isfinite(se):
        return raw, None
    lo, hi = raw_for_theta(params, [theta - se, theta + se])
    return raw, float(hi - lo) / 2


def study_outcome(session: Session, study: Study, *, include_open: bool = True) -> StudyOutcome:
    """Every round's outcome (the open round's too, as a preview for the facilitator, when
    ``include_open``)."""
    items = study_items(session, study)
    max_score = float(sum(i.max_score for i in items))
    scores = reference_scores(session, study)
    params, params_problem = reference_parameters(session, items)
    booklet, booklet_problem = None, None
    if study.method == "bookmark":
        if params is None:
            booklet_problem = f"The ordered item booklet needs calibrated items: {params_problem}."
        else:
            try:
                booklet = ordered_item_booklet(params, study.rp, [i.label for i in items])
            except PsychometricsError as exc:
                booklet_problem = str(exc)
    outcome = StudyOutcome(study, items, max_score, scores, params, params_problem, booklet,
                           booklet_problem, [])
    if study.method in CLASSIFICATION_METHODS:
        outcome.rounds.append(_classification_outcome(session, outcome))
        return outcome
    rounds = [r for r in study.rounds if include_open or not r.is_open]
    ids = [r.id for r in rounds]
    if study.method in ITEM_METHODS:
        ratings = standing_ratings(session, ids)
        outcome.rounds = [_angoff_round(outcome, r, ratings) for r in rounds]
    else:
        judgments = standing_judgments(session, ids)
        outcome.rounds = [_judgment_round(outcome, r, judgments) for r in rounds]
    return outcome


def _base(rnd: StudyRound) -> RoundOutcome:
    return RoundOutcome(number=rnd.number, is_open=rnd.is_open,
                        released=rnd.released_at is not None)


def _panel(outcome: StudyOutcome) -> list[int]:
    """The panelists whose judgments count: removed panelists' rows stay but count no more."""
    return [p.user_id for p in outcome.study.seated]


def _angoff_round(outcome: StudyOutcome, rnd: StudyRound, ratings: dict) -> RoundOutcome:
    out = _base(rnd)
    items = outcome.items
    complete = [u for u in _panel(outcome)
                if all((rnd.id, u, i.version.id) in ratings for i in items)]
    out.n_judges = len(complete)
    if not items:
        out.problem = "the reference form has no scored items"
        return out
    if not complete:
        out.problem = "no panelist has rated every item yet"
        return out
    table = np.array([[ratings[(rnd.id, u, i.version.id)].value for i in items]
                      for u in complete])
    try:
        res = angoff_cut(table, item_max=[i.max_score for i in items],
                         yes_no=outcome.study.method == "yes_no_angoff",
                         panelist_ids=[str(u) for u in complete],
                         item_ids=[i.label for i in items],
                         scores=outcome.scores.scores if outcome.scores.n else None)
    except PsychometricsError as exc:
        out.problem = str(exc)
        return out
    r = res.rounds[0]
    out.raw_cut, out.sd, out.raw_se = r.cut, _nan_none(r.sd), _nan_none(r.se)
    out.percent = r.cut_percent
    out.pass_rate = outcome.scores.pass_rate(r.cut)
    out.panelist_cuts = {u: float(c) for u, c in zip(complete, r.panelist_cuts)}
    if r.icc is not None:
        out.icc = {k: _nan_none(getattr(r.icc, k)) for k in ("icc2", "icc2k", "icc3", "icc3k")}
    flagged = set(r.flagged_items)
    out.item_rows = [
        {"label": i.label, "mean": float(r.item_means[j]), "sd": _nan_none(r.item_sd[j]),
         "flagged": i.label in flagged, "version_id": i.version.id}
        for j, i in enumerate(items)
    ]
    out.theta_cut, out.theta_se, problem = _to_theta(outcome.params, out.raw_cut, out.raw_se)
    out.details["theta_problem"] = problem
    return out


def _judgment_round(outcome: StudyOutcome, rnd: StudyRound, judgments: dict) -> RoundOutcome:
    out = _base(rnd)
    study = outcome.study
    given = [(u, judgments[(rnd.id, u)].values) for u in _panel(outcome)
             if (rnd.id, u) in judgments]
    out.n_judges = len(given)
    if not given:
        out.problem = "no panelist has made a judgment in this round yet"
        return out
    try:
        if study.method == "bookmark":
            _bookmark(outcome, out, given)
        elif study.method == "hofstee":
            _hofstee(outcome, out, given)
        else:
            _beuk(outcome, out, given)
    except PsychometricsError as exc:
        out.problem = str(exc)
    return out


def _bookmark(outcome: StudyOutcome, out: RoundOutcome, given: list) -> None:
    if outcome.booklet is None or outcome.params is None:
        out.problem = outcome.booklet_problem
        return
    res = bookmark_cut(outcome.booklet, [v["page"] for _, v in given])
    out.theta_cut, out.theta_se, out.sd = res.cut, _nan_none(res.se), _nan_none(res.sd)
    out.raw_cut, out.raw_se = _from_theta(outcome.params, res.cut, out.theta_se)
    out.percent = 100 * out.raw_cut / outcome.max_score
    out.pass_rate = outcome.scores.pass_rate(out.raw_cut)
    out.panelist_cuts = {u: float(c) for (u, _), c in zip(given, res.panelist_cuts)}
    out.details.update(pages={u: v["page"] for u, v in given}, aggregate=res.aggregate,
                       placement=res.placement)


def _need_scores(outcome: StudyOutcome) -> None:
    if outcome.scores.n < 2:
        raise PsychometricsError(
            f"the reference form {outcome.study.reference_form.code} has "
            f"{outcome.scores.n} counted result(s); this method needs the observed score "
            "distribution (at least two results)")


def _hofstee(outcome: StudyOutcome, out: RoundOutcome, given: list) -> None:
    _need_scores(outcome)
    top = outcome.max_score
    judged = ([v["c_min"] * top / 100 for _, v in given], [v["c_max"] * top / 100 for _, v in given],
              [v["f_min"] / 100 for _, v in given], [v["f_max"] / 100 for _, v in given])
    res = hofstee_cut(outcome.scores.scores, *judged)
    se = hofstee_cut_se(outcome.scores.scores, *judged) if len(given) >= 2 else None
    _compromise(outcome, out, res, se)


def _beuk(outcome: StudyOutcome, out: RoundOutcome, given: list) -> None:
    _need_scores(outcome)
    top = outcome.max_score
    judged = ([v["cut"] * top / 100 for _, v in given], [v["pass_rate"] / 100 for _, v in given])
    res = beuk_cut(outcome.scores.scores, *judged)
    _compromise(outcome, out, res, beuk_cut_se(outcome.scores.scores, *judged))
    out.panelist_cuts = {u: v["cut"] * top / 100 for u, v in given}


def _compromise(outcome: StudyOutcome, out: RoundOutcome, res, se) -> None:
    out.raw_cut = res.cut
    _standard_error(out, se)
    out.percent = 100 * res.cut / outcome.max_score
    out.pass_rate = outcome.scores.pass_rate(res.cut)
    out.details.update(line=dict(res.line), intersects=res.intersects, whole_cut=res.raw_cut)
    out.theta_cut, out.theta_se, problem = _to_theta(outcome.params, out.raw_cut, out.raw_se)
    out.details["theta_problem"] = problem


SE_NOTES = {
    "bootstrap_panelists": "bootstrap over panelists ({n_boot} replicates, seed {seed}), the "
                           "observed scores held fixed",
    "bootstrap_candidates": "bootstrap over the classified candidates ({n_boot} replicates, "
                            "seed {seed})",
    "regression": "least-squares SE of the fitted score at the borderline rating",
    "delta": "delta method on the logistic regression",
}


def _standard_error(out: RoundOutcome, se) -> None:
    """Set the round's raw SE from a :class:`psychometrics.CutStandardError` (None: too few
    judges for one), and say how it was obtained."""
    if se is None:
        out.details["se_note"] = "no SE: it needs at least two panelists"
        return
    out.raw_se = _nan_none(se.se)
    note = SE_NOTES[se.method].format(n_boot=se.n_boot, seed=se.seed)
    if se.n_failed:
        note += f"; {se.n_failed} replicate(s) without a cut left out"
    if out.raw_se is None:
        note = "no SE: too many bootstrap replicates had no cut"
    out.details["se_note"] = note


def _classification_outcome(session: Session, outcome: StudyOutcome) -> RoundOutcome:
    study = outcome.study
    out = RoundOutcome(number=None, is_open=False, released=False)
    standing = standing_classifications(session, study.id, excluded=study.removed_ids())
    index = {rid: k for k, rid in enumerate(outcome.scores.result_ids)}
    used = [(index[rid], c.rating) for rid, c in standing.items() if rid in index]
    out.n_judges = len(used)
    if not used:
        out.problem = "no candidate has been classified yet"
        return out
    x = outcome.scores.scores[[k for k, _ in used]]
    g = np.array([r for _, r in used], dtype=float)
    try:
        if study.method == "contrasting_groups":
            if g.min() == g.max():
                raise PsychometricsError("both groups are needed: classify candidates as "
                                         "qualified and as not qualified")
            res = contrasting_groups_cut(x, g)
            se = contrasting_groups_cut_se(x, g)
            out.details.update(n_qualified=int(g.sum()), n_unqualified=int((g == 0).sum()),
                               misclassified=res.details.get("misclassified"))
        else:
            borderline = study.settings.get("borderline", 1)
            res = borderline_regression_cut(x, g, borderline=borderline)
            se = borderline_regression_cut_se(x, g, borderline=borderline)
            out.details.update({k: res.details[k] for k in ("intercept", "slope", "r_squared",
                                                             "residual_sd")})
    except PsychometricsError as exc:
        out.problem = str(exc)
        return out
    out.raw_cut = res.cut
    _standard_error(out, se)
    out.percent = 100 * res.cut / outcome.max_score
    out.pass_rate = outcome.scores.pass_rate(res.cut)
    out.theta_cut, out.theta_se, problem = _to_theta(outcome.params, out.raw_cut, out.raw_se)
    out.details["theta_problem"] = problem
    return out


def observed_fail_curve(outcome: StudyOutcome) -> tuple[list[float], list[float]]:
    """Fail rate ``P(X < c)`` at each whole score c of the reference form (for the charts)."""
    grid = np.arange(0, math.ceil(outcome.max_score) + 1, dtype=float)
    if outcome.scores.n < 2:
        return [], []
    return grid.tolist(), fail_rate(outcome.scores.scores, grid).tolist()


def study_recommendation(session: Session, study_id: int) -> dict[str, Any]:
    """Where a study's recommended cut stands, for the adoption page: ``{"study", "title",
    "exam", "method", "round", "raw_cut", "raw_se", "theta_cut" (also as "theta"), "theta_se",
    "percent",
    "pass_rate", "n_judges", "reference_form", "status"}``; cut fields None when the study has no
    closed round with a cut yet."""
    study = get_study(session, study_id)
    outcome = study_outcome(session, study, include_open=False)
    rec = outcome.recommended
    doc: dict[str, Any] = {
        "study": study.id, "title": study.title, "exam": study.exam.code,
        "method": study.method, "method_name": study.method_name, "status": study.status,
        "reference_form": study.reference_form.code, "round": None, "raw_cut": None,
        "raw_se": None, "theta_cut": None, "theta": None, "theta_se": None, "percent": None,
        "pass_rate": None,
        "n_judges": 0,
    }
    if rec is not None:
        doc.update(round=rec.number, raw_cut=rec.raw_cut, raw_se=rec.raw_se,
                   theta_cut=rec.theta_cut, theta=rec.theta_cut, theta_se=rec.theta_se, percent=rec.percent,
                   pass_rate=rec.pass_rate, n_judges=rec.n_judges)
    return doc
