"""Adopting a cut score on the theta scale, and what it implies before it is adopted.

A psychometrician proposes a theta cut (typed, or prefilled from a standard-setting study), a
reported scale (a linear transform anchored at the cut, e.g. 100..500 with the cut at 350) and
how delivery scores against it (IRT: EAP theta against the theta cut; or number-correct against
each form's raw cut). :func:`propose` shows, from the engine (:mod:`psychometrics.cut_scores`,
:mod:`psychometrics.decision_consistency`) and the exam's *approved* parameters: each fixed
and linear-on-the-fly form's raw cut through its test characteristic curve, the conditional SEM
at the cut, the pass rate the cut implies on delivered results, and decision consistency and
accuracy by IRT (Rudner; Lee) and classical methods (Livingston-Lewis; Subkoviak).

:func:`adopt` records the decision as an append-only :class:`CutAdoption` row (who, when, why,
the theta cut, the approved calibration run and parameter rows it was computed on, the source
study, the scale transform, each fixed form's raw cut and raw-to-scale table, and the evidence
shown). The newest adoption of an exam is its current cut; adoptions are never edited.
Delivery scores attempts finalized after an adoption by it (:mod:`assessment.psych.cuts_scoring`);
results released before change only through a recorded rescoring
(:mod:`assessment.delivery.rescore`).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from assessment.exams import Exam, ExamForm
from assessment.psych.errors import AnalysisError
from assessment.psych.response_matrix import ScoreMatrix, score_matrix
from itembank.models import FIXED, Form, FormItem
from itembank.parameters import CurrentParameters, current_parameters
from microcred.db import Base, append_only, utcnow
from microcred.errors import DomainError
from microcred.inputs import is_whole
from psychometrics import (
    PsychometricsError,
    ScaleTransform,
    carry_cut,
    cut_report,
    lee,
    livingston_lewis,
    rudner,
    subkoviak,
)
from psychometrics.ctt import cronbach_alpha
from psychometrics.equating import conversion_table
from psychometrics.irt.models import DICHOTOMOUS_MODELS, ItemParameters
from psychometrics.scoring import theta_eap

#: How delivery scores against an adopted cut.
SCORING = {
    "irt": "IRT: EAP theta (with its SE) against the theta cut",
    "number_correct": "Number-correct against each form's raw cut",
}
ROUNDING = {
    "ceil": "up (the smallest whole score at or above the expected score at the cut)",
    "round": "to the nearest whole score",
    "floor": "down (the largest whole score at or below it)",
}
REASON_LENGTH = 1000
#: Theta cuts further out than this are typing mistakes, not standards.
THETA_LIMIT = 4.0
#: Scale values beyond this are typing mistakes.
SCALE_LIMIT = 1e6
#: Linear-on-the-fly forms carried on the page (the newest delivered); the rest are summarised.
LOFT_FORMS = 500
#: Defaults of a new proposal: the issue's 100..500 scale with the cut at 350.
DEFAULTS = {"cut_scale": "350", "slope": "50", "lower": "100", "upper": "500", "decimals": "0",
            "rounding": "ceil", "scoring": "irt"}


class CutRefused(DomainError):
    """A cut cannot be proposed or adopted as asked; ``field`` names the input at fault."""

    status, code = 422, "cut_refused"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, **({"field": field} if field else {}))
        self.field = field


class CutAdoption(Base):
    """An adopted cut of an exam (append-only: the newest is current)."""

    __tablename__ = "cut_adoptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"), index=True)
    theta_cut: Mapped[float]
    #: ``irt`` or ``number_correct`` (:data:`SCORING`)
    scoring: Mapped[str] = mapped_column(String(20))
    #: how a form's expected score at the cut becomes a whole raw cut (:data:`ROUNDING`)
    rounding: Mapped[str] = mapped_column(String(10))
    scale_cut: Mapped[float]
    scale_slope: Mapped[float]
    scale_lower: Mapped[float]
    scale_upper: Mapped[float]
    scale_decimals: Mapped[int]
    #: the approved calibration run whose parameters the cut was computed on (None: parameters
    #: approved outside a run, e.g. imported)
    calibration_run_id: Mapped[int | None] = mapped_column(ForeignKey("calibration_runs.id"))
    #: the parameter rows it was computed on: ``{item_version_id: ItemParameter id}``
    parameter_ids: Mapped[dict[str, Any]]
    #: the standard-setting study it came from (None: typed by hand). No foreign key: studies
    #: are recorded by their own module.
    study_id: Mapped[int | None]
    #: per fixed form at adoption: ``{"form_id", "code", "raw_cut", "expected_raw",
    #: "max_score", "percent", "csem_theta", "scale": [scale score of raw 0..max]}``
    form_cuts: Mapped[list[Any]]
    #: the numbers shown when it was adopted (pass rates, decision consistency)
    evidence: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def transform(self) -> ScaleTransform:
        return ScaleTransform(self.theta_cut, self.scale_cut, self.scale_slope,
                              (self.scale_lower, self.scale_upper), self.scale_decimals)

    def form_cut(self, form_id: int) -> dict[str, Any] | None:
        return next((f for f in self.form_cuts or [] if f["form_id"] == form_id), None)

    @property
    def scale_text(self) -> str:
        return (f"{_g(self.scale_lower)}\u2013{_g(self.scale_upper)}, passing score "
                f"{_g(self.scale_cut)}")


append_only(CutAdoption)


def _g(v: float) -> str:
    return f"{v:g}"


# ---------------------------------------------------------------- what is proposed


@dataclass(frozen=True)
class CutInput:
    """A checked proposal: the theta cut, the scale and how delivery scores against it."""

    theta_cut: float
    scale: ScaleTransform
    rounding: str = "ceil"
    scoring: str = "irt"
    study_id: int | None = None


def _number(values: Mapping[str, str], name: str, label: str, *, integer: bool = False) -> float:
    raw = (values.get(name) or DEFAULTS.get(name) or "").strip()
    if not raw:
        raise CutRefused(f"{label} is required", field=name)
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise CutRefused(f"{label} must be {kind}, got {raw[:40]!r}", field=name) from None
    if not math.isfinite(value) or abs(value) > SCALE_LIMIT:
        raise CutRefused(f"{label} must be a finite number below {SCALE_LIMIT:g} in size",
                         field=name)
    return value


def scale_transform(theta_cut: float, *, cut_scale: float, slope: float, lower: float,
                    upper: float, decimals: int) -> ScaleTransform:
    """The reported scale, checked with messages that name the field: slope positive, bounds in
    order, the passing score strictly inside them, 0..3 decimals."""
    if not slope > 0:
        raise CutRefused(f"the slope must be positive (scale scores rise with ability); got "
                         f"{slope:g}", field="slope")
    if not lower < upper:
        raise CutRefused(f"the lowest scale score ({lower:g}) must be below the highest "
                         f"({upper:g})", field="upper")
    if not lower < cut_scale < upper:
        raise CutRefused(f"the passing scale score {cut_scale:g} must lie strictly between the "
                         f"lowest ({lower:g}) and highest ({upper:g}) scale scores",
                         field="cut_scale")
    if not 0 <= decimals <= 3:
        raise CutRefused(f"decimals must be 0 to 3, got {decimals}", field="decimals")
    try:
        return ScaleTransform(theta_cut, cut_scale, slope, (lower, upper), decimals)
    except PsychometricsError as exc:  # the engine's own checks, should ours miss one
        raise CutRefused(str(exc), field="slope") from None


def parse_cut(values: Mapping[str, str]) -> CutInput:
    """A :class:`CutInput` from form or query values (strings), refusing with the field named."""
    theta = _number(values, "theta", "the theta cut")
    if abs(theta) > THETA_LIMIT:
        raise CutRefused(f"the theta cut must lie between -{THETA_LIMIT:g} and {THETA_LIMIT:g} "
                         f"(got {theta:g}): a cut further out passes or fails nearly everyone",
                         field="theta")
    rounding = (values.get("rounding") or DEFAULTS["rounding"]).strip()
    if rounding not in ROUNDING:
        raise CutRefused(f"rounding must be one of {', '.join(ROUNDING)}; got {rounding[:20]!r}",
                         field="rounding")
    scoring = (values.get("scoring") or DEFAULTS["scoring"]).strip()
    if scoring not in SCORING:
        raise CutRefused(f"scoring must be one of {', '.join(SCORING)}; got {scoring[:20]!r}",
                         field="scoring")
    study = (values.get("study") or "").strip()
    study_id = None
    if study:
        if not is_whole(study) or len(study) > 12:
            raise CutRefused(f"study must be a study id (a whole number), got {study[:20]!r}",
                             field="study")
        study_id = int(study)
    scale = scale_transform(
        theta, cut_scale=_number(values, "cut_scale", "the passing scale score"),
        slope=_number(values, "slope", "the slope (scale points per theta unit)"),
        lower=_number(values, "lower", "the lowest scale score"),
        upper=_number(values, "upper", "the highest scale score"),
        decimals=int(_number(values, "decimals", "decimals", integer=True)))
    return CutInput(theta_cut=theta, scale=scale, rounding=rounding, scoring=scoring,
                    study_id=study_id)


def study_recommendation(session: Session, study_id: int) -> dict[str, Any] | None:
    """The study's recommended theta cut when the studies module offers it (``theta``,
    ``title``...), else None: the page then shows the study id as given."""
    try:
        from assessment.psych import studies  # type: ignore[attr-defined]
    except ImportError:
        return None
    recommend = getattr(studies, "study_recommendation", None)
    if recommend is None:
        return None
    found = recommend(session, study_id)
    if found is None:
        return {"missing": True, "study": study_id}
    if isinstance(found, Mapping):
        return dict(found)
    return {k: getattr(found, k) for k in dir(found) if not k.startswith("_")
            and not callable(getattr(found, k))}


def check_study(session: Session, exam: Exam, study_id: int) -> None:
    """Refuse a source study that does not exist or was set on another exam (when the studies
    module is installed; without it the id is recorded as given)."""
    found = study_recommendation(session, study_id)
    if found is None:
        return
    if found.get("missing"):
        raise CutRefused(f"there is no standard-setting study {study_id}", field="study")
    if found.get("exam") not in (None, exam.code):
        raise CutRefused(f"study {study_id} was set on exam {found['exam']}, not {exam.code}",
                         field="study")


# ---------------------------------------------------------------- the exam's forms and parameters


@dataclass
class ParameterSet:
    """The approved parameters a cut is computed on (and delivery scores with)."""

    rows: dict[int, CurrentParameters]
    run_id: int | None

    def ids(self, version_ids) -> dict[str, int]:
        return {str(v): self.rows[v].id for v in version_ids if v in self.rows}

    def usable(self, version_id: int) -> bool:
        row = self.rows.get(version_id)
        return (row is not None and row.model.lower() in DICHOTOMOUS_MODELS
                and row.b is not None)

    def for_items(self, version_ids: list[int]) -> ItemParameters | None:
        """The items' parameters in order, or None when one has no usable approved row."""
        if not version_ids or not all(self.usable(v) for v in version_ids):
            return None
        rows = [self.rows[v] for v in version_ids]
        return ItemParameters("mixed", [r.a for r in rows], [r.b for r in rows],
                              [r.c or 0.0 for r in rows],
                              item_models=tuple(r.model.lower() for r in rows))


def approved_run_id(session: Session, exam_id: int) -> int | None:
    from assessment.psych.runs import CalibrationRun

    return session.scalar(select(CalibrationRun.id).where(
        CalibrationRun.exam_id == exam_id, CalibrationRun.status == "approved")
        .order_by(CalibrationRun.id.desc()).limit(1))


def parameter_set(session: Session, exam_id: int, version_ids) -> ParameterSet:
    return ParameterSet(rows=current_parameters(session, sorted(set(version_ids))),
                        run_id=approved_run_id(session, exam_id))


@dataclass
class ExamFormItems:
    form: Form
    kind: str  # fixed | loft
    active: bool
    scored: list[int]  # scored item version ids, in form order


def forms_of_exam(session: Session, exam: Exam) -> list[ExamFormItems]:
    """The exam's fixed forms (active first) and the linear-on-the-fly forms its candidates
    were delivered (the newest :data:`LOFT_FORMS`), each with its scored item versions."""
    listed = {ef.form_id: ef.active for ef in session.scalars(
        select(ExamForm).where(ExamForm.exam_id == exam.id))}
    from assessment.delivery.models import Attempt

    delivered = list(session.scalars(
        select(Attempt.form_id).where(Attempt.exam_id == exam.id,
                                      Attempt.form_id.not_in(list(listed) or [0]))
        .group_by(Attempt.form_id).order_by(func.max(Attempt.id).desc()).limit(LOFT_FORMS)))
    ids = list(listed) + delivered
    if not ids:
        return []
    forms = {f.id: f for f in session.scalars(select(Form).where(Form.id.in_(ids)))}
    scored: dict[int, list[tuple[int, int]]] = {}
    for form_id, pos, vid in session.execute(
            select(FormItem.form_id, FormItem.position, FormItem.item_version_id)
            .where(FormItem.form_id.in_(ids), FormItem.scored.is_(True))):
        scored.setdefault(form_id, []).append((pos, vid))
    out = []
    for fid in ids:
        form = forms[fid]
        out.append(ExamFormItems(
            form=form, kind="fixed" if form.kind == FIXED else "loft",
            active=listed.get(fid, True),
            scored=[vid for _, vid in sorted(scored.get(fid, []))]))
    out.sort(key=lambda f: (f.kind != "fixed", not f.active, f.form.code))
    return out


# ---------------------------------------------------------------- the proposal's numbers


@dataclass
class FormProposal:
    form_id: int
    code: str
    kind: str
    active: bool
    n_items: int
    #: scored items without usable approved parameters (their labels); non-empty: no raw cut
    uncalibrated: list[int] = field(default_factory=list)
    raw_cut: int | None = None
    expected_raw: float | None = None
    max_score: int | None = None
    percent: float | None = None
    theta_at_raw_cut: float | None = None
    scale_at_raw_cut: float | None = None
    csem_theta: float | None = None
    csem_raw: float | None = None
    pass_rate_population: float | None = None
    #: delivered results on this form
    n_results: int = 0
    pass_rate_raw: float | None = None
    pass_rate_theta: float | None = None
    alpha: float | None = None
    indices: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    scale_table: list[float] | None = None

    def snapshot(self) -> dict[str, Any]:
        return {"form_id": self.form_id, "code": self.code, "raw_cut": self.raw_cut,
                "expected_raw": self.expected_raw, "max_score": self.max_score,
                "percent": self.percent, "csem_theta": self.csem_theta,
                "scale": self.scale_table}


@dataclass
class CutProposal:
    exam: Exam
    cut: CutInput
    parameters: ParameterSet
    forms: list[FormProposal]
    n_results: int = 0
    #: over delivered results on calibrated forms, by the chosen scoring rule
    pass_rate: float | None = None
    pass_rate_theta: float | None = None
    pass_rate_raw: float | None = None
    rudner_sample: dict | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def fixed(self) -> list[FormProposal]:
        return [f for f in self.forms if f.kind == "fixed"]

    @property
    def loft(self) -> list[FormProposal]:
        return [f for f in self.forms if f.kind == "loft"]

    def loft_summary(self) -> dict[str, Any] | None:
        cuts = [f.raw_cut for f in self.loft if f.raw_cut is not None]
        if not self.loft:
            return None
        return {"n": len(self.loft), "carried": len(cuts),
                "min": min(cuts) if cuts else None, "max": max(cuts) if cuts else None,
                "min_percent": min((f.percent for f in self.loft if f.percent is not None),
                                   default=None),
                "max_percent": max((f.percent for f in self.loft if f.percent is not None),
                                   default=None)}

    def evidence(self) -> dict[str, Any]:
        return {
            "n_results": self.n_results, "pass_rate": self.pass_rate,
            "pass_rate_theta": self.pass_rate_theta, "pass_rate_raw": self.pass_rate_raw,
            "rudner_sample": self.rudner_sample,
            "forms": [{"code": f.code, "kind": f.kind, "raw_cut": f.raw_cut,
                       "csem_theta": f.csem_theta, "csem_raw": f.csem_raw,
                       "pass_rate_population": f.pass_rate_population,
                       "pass_rate_raw": f.pass_rate_raw, "pass_rate_theta": f.pass_rate_theta,
                       "n_results": f.n_results, "indices": f.indices}
                      for f in self.forms if f.kind == "fixed"],
            "loft": self.loft_summary(),
        }


def _indices(res) -> dict[str, Any]:
    return {"accuracy": res.accuracy, "consistency": float(res.consistency),
            "kappa": float(res.kappa), "false_pass": res.false_pass,
            "false_fail": res.false_fail}


def _matrix(session: Session, exam: Exam) -> ScoreMatrix | None:
    try:
        return score_matrix(session, exam)
    except AnalysisError:
        return None


def propose(session: Session, exam: Exam, cut: CutInput) -> CutProposal:
    """Everything the adoption page shows about ``cut`` (nothing is stored)."""
    forms = forms_of_exam(session, exam)
    pset = parameter_set(session, exam.id, [v for f in forms for v in f.scored])
    proposal = CutProposal(exam=exam, cut=cut, parameters=pset, forms=[])
    matrix = _matrix(session, exam)
    col_of = {v.id: j for j, v in enumerate(matrix.versions)} if matrix else {}
    thetas, ses, passes_theta, passes_raw = [], [], [], []
    for f in forms:
        fp = FormProposal(form_id=f.form.id, code=f.form.code, kind=f.kind, active=f.active,
                          n_items=len(f.scored))
        proposal.forms.append(fp)
        params = pset.for_items(f.scored)
        if params is None:
            fp.uncalibrated = [v for v in f.scored if not pset.usable(v)]
            if not f.scored:
                fp.notes.append("the form has no scored items")
            continue
        carried = carry_cut(cut.theta_cut, {f.form.code: params}, rounding=cut.rounding,
                            scale=cut.scale).forms[0]
        fp.raw_cut, fp.expected_raw = carried.raw_cut, carried.expected_raw
        fp.max_score, fp.percent = carried.max_score, carried.percent
        fp.theta_at_raw_cut, fp.scale_at_raw_cut = carried.theta_at_raw_cut, carried.scale_at_raw_cut
        fp.csem_theta = carried.csem_theta
        if f.kind == "fixed":
            fp.scale_table = raw_to_scale(params, cut.scale)
        # the form's delivered results, number-correct on its scored items
        x = totals = None
        if matrix is not None and all(v in col_of for v in f.scored):
            rows = matrix.form_ids == f.form.id
            if rows.any():
                x = matrix.scores[np.ix_(rows, [col_of[v] for v in f.scored])]
                x = x[~np.isnan(x).any(axis=1)]
                totals = x.sum(axis=1) if x.size else None
        try:
            report = cut_report(params, cut.theta_cut, raw_cut=fp.raw_cut, scores=totals)
            fp.csem_raw, fp.pass_rate_population = report.csem_raw, report.pass_rate_population
        except PsychometricsError as exc:
            fp.notes.append(f"conditional SEM not available: {exc}")
        if totals is not None and totals.size:
            fp.n_results = int(totals.size)
            est = theta_eap(x, params)
            fp.pass_rate_raw = float(np.mean(totals >= fp.raw_cut))
            fp.pass_rate_theta = float(np.mean(est.theta >= cut.theta_cut))
            thetas += est.theta.tolist()
            ses += est.se.tolist()
            passes_theta += (est.theta >= cut.theta_cut).tolist()
            passes_raw += (totals >= fp.raw_cut).tolist()
        if f.kind == "fixed":
            _form_indices(fp, params, cut, x, totals)
    proposal.n_results = len(thetas)
    if thetas:
        proposal.pass_rate_theta = float(np.mean(passes_theta))
        proposal.pass_rate_raw = float(np.mean(passes_raw))
        proposal.pass_rate = (proposal.pass_rate_theta if cut.scoring == "irt"
                              else proposal.pass_rate_raw)
        try:
            proposal.rudner_sample = _indices(rudner([cut.theta_cut], theta=thetas, se=ses))
        except PsychometricsError as exc:
            proposal.notes.append(f"Rudner (delivered results) not available: {exc}")
    _problems(proposal, session)
    return proposal


def _form_indices(fp: FormProposal, params: ItemParameters, cut: CutInput, x, totals) -> None:
    """Decision consistency and accuracy of one fixed form at its raw cut (the engine's)."""
    try:
        fp.indices["rudner"] = _indices(rudner([cut.theta_cut], params=params))
    except PsychometricsError as exc:
        fp.notes.append(f"Rudner not available: {exc}")
    try:
        fp.indices["lee"] = _indices(lee(params, [fp.raw_cut]))
    except PsychometricsError as exc:
        fp.notes.append(f"Lee not available: {exc}")
    if totals is None or totals.size < 2:
        fp.notes.append("Livingston-Lewis and Subkoviak need delivered results on this form")
        return
    try:
        fp.alpha = float(cronbach_alpha(x).alpha)
    except PsychometricsError as exc:
        fp.notes.append(f"coefficient alpha not available: {exc}")
        return
    try:
        fp.indices["livingston_lewis"] = _indices(livingston_lewis(
            totals, fp.alpha, [fp.raw_cut], max_score=fp.max_score))
    except PsychometricsError as exc:
        fp.notes.append(f"Livingston-Lewis not available: {exc}")
    try:
        fp.indices["subkoviak"] = _indices(subkoviak(totals, fp.max_score, fp.alpha, fp.raw_cut))
    except PsychometricsError as exc:
        fp.notes.append(f"Subkoviak not available: {exc}")


def raw_to_scale(params: ItemParameters, scale: ScaleTransform) -> list[float]:
    """Scale score of each raw score 0..max of a form, through its test characteristic curve
    (the theta whose expected score is the raw score; Kolen & Brennan, 2014, sec. 6.6)."""
    table = conversion_table(params, scale=scale, theta_from="tcc")
    return [float(v) for v in table.scale]


def calibrated_pool(session: Session, exam: Exam) -> int:
    """How many deliverable item versions of the exam's blueprint domains have approved
    parameters: what a linear-on-the-fly exam's forms are assembled from."""
    from itembank.parameters import calibrated_count

    return calibrated_count(session, [d.code for d in exam.blueprint.domains])


def _problems(p: CutProposal, session: Session) -> None:
    """Why the proposal cannot be adopted (empty: it can)."""
    if p.exam.delivery_mode == "loft":
        # each candidate's form is assembled from calibrated items and carried when scored
        if not calibrated_pool(session, p.exam):
            p.problems.append(
                f"exam {p.exam.code} has no approved item parameters in its blueprint's "
                "domains: a theta cut needs a theta scale. Approve a calibration run first")
        return
    if not any(f.raw_cut is not None for f in p.forms) and not p.parameters.rows:
        p.problems.append(
            f"exam {p.exam.code} has no approved item parameters: a theta cut needs a theta "
            "scale. Approve a calibration run (Calibrate, then approve the run) first")
        return
    for f in p.fixed:
        if f.active and f.raw_cut is None:
            if f.uncalibrated:
                p.problems.append(
                    f"form {f.code}: {len(f.uncalibrated)} of its {f.n_items} scored items have "
                    "no approved dichotomous parameters, so the cut cannot be carried to it; "
                    "approve a calibration run that covers them")
            else:
                p.problems.append(f"form {f.code}: no raw cut ({'; '.join(f.notes)})")
    if not p.fixed:
        p.problems.append(f"exam {p.exam.code} has no fixed form to carry the cut to")


# ---------------------------------------------------------------- adopting


def check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise CutRefused("say why this cut is adopted (the study, the panel's decision, the "
                         "policy it follows)", field="reason")
    if len(reason) > REASON_LENGTH:
        raise CutRefused(f"the reason is {len(reason)} characters long; keep it to "
                         f"{REASON_LENGTH}", field="reason")
    return reason


def adopt(session: Session, exam: Exam, cut: CutInput, *, by: Any, reason: str) -> CutAdoption:
    """Record ``cut`` as the exam's current cut (a new row, flushed, not committed), computed
    again here on the parameters approved now. Refused (:class:`CutRefused`) without a reason,
    or when a form cannot take the cut (see :func:`propose`)."""
    reason = check_reason(reason)
    if cut.study_id is not None:
        check_study(session, exam, cut.study_id)
    # one adoption of an exam at a time: lock the exam row (PostgreSQL; SQLite writes serially)
    session.execute(select(Exam.id).where(Exam.id == exam.id).with_for_update())
    proposal = propose(session, exam, cut)
    if proposal.problems:
        raise CutRefused("the cut cannot be adopted: " + "; ".join(proposal.problems),
                         field="theta")
    used = [v for f in forms_of_exam(session, exam) for v in f.scored]
    s = cut.scale
    row = CutAdoption(
        exam_id=exam.id, theta_cut=cut.theta_cut, scoring=cut.scoring, rounding=cut.rounding,
        scale_cut=s.cut_scale, scale_slope=s.slope, scale_lower=s.limits[0],
        scale_upper=s.limits[1], scale_decimals=int(s.decimals or 0),
        calibration_run_id=proposal.parameters.run_id,
        parameter_ids=proposal.parameters.ids(used), study_id=cut.study_id,
        form_cuts=[f.snapshot() for f in proposal.fixed if f.raw_cut is not None],
        evidence=_json_safe(proposal.evidence()), reason=reason, by_id=by.id, at=utcnow())
    session.add(row)
    session.flush()
    return row


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def current_cut(session: Session, exam_id: int) -> CutAdoption | None:
    """The exam's standing cut: its newest adoption (None: the exam's pass percent rules)."""
    return session.scalar(select(CutAdoption).where(CutAdoption.exam_id == exam_id)
                          .order_by(CutAdoption.id.desc()).limit(1))


def cut_history(session: Session, exam_id: int) -> list[CutAdoption]:
    return list(session.scalars(select(CutAdoption).where(CutAdoption.exam_id == exam_id)
                                .order_by(CutAdoption.id.desc())))


def passing_standards(session: Session, exam_ids) -> dict[int, str]:
    """What a candidate is told of each exam's standard before sitting it: the passing scale
    score of its current cut ("a scale score of 350 on 100-500"); exams without a cut are
    absent (their pass percent is the standard). Never the theta or raw cut: the scoring rule
    stays on the server."""
    ids = list(set(exam_ids))
    if not ids:
        return {}
    newest = (select(func.max(CutAdoption.id)).where(CutAdoption.exam_id.in_(ids))
              .group_by(CutAdoption.exam_id))
    return {row.exam_id: f"a scale score of {_g(row.scale_cut)} on a scale of "
                         f"{_g(row.scale_lower)}\u2013{_g(row.scale_upper)}"
            for row in session.scalars(select(CutAdoption).where(CutAdoption.id.in_(newest)))}
