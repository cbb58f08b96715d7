"""Psychometric analysis of an exam's results: the persons x items score matrix, classical item
analysis, and IRT calibration whose parameters become new ``ItemParameter`` rows.

Which results count: those of finalized attempts, minus results whose newest release decision is
``invalidated`` (a terminated attempt or a review that found misconduct is not a measurement).
Held results are counted: they are scored responses awaiting a proctoring verdict.

Columns are item *versions*: two wordings of an item are two items to a psychometrician. A cell
is the item's score divided by its maximum (0 or 1) and NaN where the item was not presented, as
when candidates sit different forms. Partial-credit scores are refused with a message, because
every model offered here is dichotomous.

A calibration is stored as a run (:mod:`assessment.calibration_runs`) with its estimates; it
changes no parameters until a psychometrician approves it. Approval adds ``ItemParameter`` rows
(append-only: the newest row of a version is current).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, selectinload

from assessment.calibration_runs import CalibrationEstimate, CalibrationRun
from assessment.delivery.models import Attempt, ItemScore, Result, ResultRelease
from assessment.delivery.reads import newest_release_id
from assessment.exams import Exam
from itembank.models import Form, ItemVersion
from psychometrics import (
    Calibration,
    ItemAnalysis,
    PsychometricsError,
    calibrate,
    item_analysis,
    s_x2,
)
from psychometrics.ctt import (
    FlagRules,
    ItemStatistics,
    ReliabilityEstimate,
    ScoreDistribution,
    cronbach_alpha,
    score_distribution,
)
from psychometrics.fit import ItemFit

#: The option label of a presented item left unanswered (distractor analysis counts it as a
#: choice; an empty label means "not presented").
OMITTED = "(omitted)"

#: IRT models the workspace offers (all dichotomous: the exams are scored 0/1).
CALIBRATION_MODELS = ("rasch", "2pl", "3pl")
DEFAULT_MAX_ITER = 500
MAX_ITER_LIMIT = 5000
#: S-X2 p-values below this are marked as misfit.
FIT_ALPHA = 0.01

FLAG_REASONS = {
    "few_responses": "fewer than {r.min_responses} responses",
    "too_hard": "too hard: p below {r.p_min:.2f}",
    "too_easy": "too easy: p above {r.p_max:.2f}",
    "low_discrimination": "low discrimination: corrected item-total r below {r.corrected_r_min:.2f}",
    "negative_discrimination": "negative discrimination: corrected item-total r below 0 (check the key)",
    "alpha_increases_if_deleted": "alpha would rise if the item were deleted",
    "distractor_attracts_high_scorers": "a distractor attracts high scorers",
}


class AnalysisError(ValueError):
    """The exam's results cannot be analysed as asked; the message says why."""


# ---------------------------------------------------------------- which results count


def _invalidated_result_ids() -> Select:
    return select(ResultRelease.result_id).where(
        ResultRelease.id == newest_release_id(ResultRelease.result_id),
        ResultRelease.status == "invalidated")


def counted_results(exam_id: int | None = None) -> Select:
    """The results that count (see the module docstring): ``result_id``, ``exam_id``,
    ``form_id``, ``percent``, ``passed``."""
    query = (
        select(
            Result.id.label("result_id"),
            Attempt.exam_id,
            Attempt.form_id,
            Result.percent,
            Result.passed,
        )
        .join(Attempt, Attempt.id == Result.attempt_id)
        .where(Attempt.status == "finalized", Result.id.not_in(_invalidated_result_ids()))
    )
    return query if exam_id is None else query.where(Attempt.exam_id == exam_id)


@dataclass
class ExamSummary:
    exam: Exam
    n_results: int
    mean_percent: float | None
    pass_rate: float | None
    n_invalidated: int


def exam_summaries(session: Session) -> list[ExamSummary]:
    """Every exam with the number of counted results, their mean percent and pass rate."""
    counted = counted_results().subquery()
    stats = {
        row.exam_id: row
        for row in session.execute(
            select(
                counted.c.exam_id,
                func.count().label("n"),
                func.avg(counted.c.percent).label("mean_percent"),
                func.sum(case((counted.c.passed.is_(True), 1), else_=0)).label("passed"),
            ).group_by(counted.c.exam_id)
        )
    }
    invalidated = dict(
        session.execute(
            select(Attempt.exam_id, func.count())
            .join(Result, Result.attempt_id == Attempt.id)
            .where(Result.id.in_(_invalidated_result_ids()))
            .group_by(Attempt.exam_id)
        ).all()
    )
    out = []
    for exam in session.scalars(select(Exam).order_by(Exam.title)):
        row = stats.get(exam.id)
        n = int(row.n) if row else 0
        out.append(
            ExamSummary(
                exam=exam,
                n_results=n,
                mean_percent=float(row.mean_percent) if n else None,
                pass_rate=float(row.passed) / n if n else None,
                n_invalidated=int(invalidated.get(exam.id, 0)),
            )
        )
    return out


# ---------------------------------------------------------------- the score matrix


@dataclass
class ScoreMatrix:
    """Persons x item versions, 0/1 with NaN where the item was not presented."""

    scores: np.ndarray
    #: The chosen option per cell ("A"; "A+C" for a multiple response; ``OMITTED``; "" where the
    #: item was not presented) and the keyed label per column, for distractor analysis.
    choices: np.ndarray
    keys: list[str]
    result_ids: list[int]
    form_ids: np.ndarray  # per person
    versions: list[ItemVersion]  # per column
    forms: dict[int, Form]

    @property
    def n_persons(self) -> int:
        return self.scores.shape[0]

    @property
    def item_ids(self) -> list[str]:
        return [version_label(v) for v in self.versions]

    def form_block(self, form_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Row mask of the form's candidates and the columns every one of them saw."""
        rows = self.form_ids == form_id
        cols = np.flatnonzero(~np.isnan(self.scores[rows]).any(axis=0)) if rows.any() else np.array([], int)
        return rows, cols


def version_label(version: ItemVersion) -> str:
    code = version.item.code
    return code if version.version == 1 else f"{code} v{version.version}"


def score_matrix(session: Session, exam: Exam) -> ScoreMatrix:
    """The counted results of ``exam`` as a persons x item versions matrix (see module doc).

    Raises :class:`AnalysisError` when the exam has no counted results or a score is not 0/1.
    """
    counted = counted_results(exam.id).subquery()
    people = session.execute(
        select(counted.c.result_id, counted.c.form_id).order_by(counted.c.result_id)
    ).all()
    if not people:
        raise AnalysisError(
            f"exam {exam.code} has no finalized results yet, so there is nothing to analyse"
        )
    cells = session.execute(
        select(ItemScore.result_id, ItemScore.item_version_id, ItemScore.score, ItemScore.max_score,
               ItemScore.response)
        .join(counted, counted.c.result_id == ItemScore.result_id)
    ).all()
    result_ids = [r.result_id for r in people]
    row_of = {rid: i for i, rid in enumerate(result_ids)}
    version_ids = sorted({c.item_version_id for c in cells})
    if not version_ids:
        raise AnalysisError(f"exam {exam.code}: its results hold no item scores")
    col_of = {vid: j for j, vid in enumerate(version_ids)}
    versions_by_id = {
        v.id: v
        for v in session.scalars(
            select(ItemVersion).where(ItemVersion.id.in_(version_ids)).options(selectinload(ItemVersion.item))
        )
    }
    scores = np.full((len(result_ids), len(version_ids)), np.nan)
    rows = np.fromiter((row_of[c.result_id] for c in cells), dtype=int, count=len(cells))
    cols = np.fromiter((col_of[c.item_version_id] for c in cells), dtype=int, count=len(cells))
    values = np.fromiter(
        (c.score / c.max_score if c.max_score else np.nan for c in cells), dtype=float, count=len(cells)
    )
    scores[rows, cols] = values
    choices = np.full(scores.shape, "", dtype=object)
    choices[rows, cols] = [_choice_label(c.response) for c in cells]
    bad = ~np.isnan(scores) & (scores != 0) & (scores != 1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise AnalysisError(
            f"item {version_label(versions_by_id[version_ids[j]])} has a partial-credit score"
            f" ({scores[i, j]:.3g} of its maximum); the workspace analyses items scored 0/1"
        )
    form_ids = np.array([r.form_id for r in people], dtype=int)
    forms = {f.id: f for f in session.scalars(select(Form).where(Form.id.in_(set(form_ids.tolist()))))}
    versions = [versions_by_id[vid] for vid in version_ids]
    return ScoreMatrix(
        scores=scores,
        choices=choices,
        keys=[_choice_label((v.key or {}).get("correct")) for v in versions],
        result_ids=result_ids,
        form_ids=form_ids,
        versions=versions,
        forms=forms,
    )


def _choice_label(response) -> str:
    """A response as an option label: "B" for one choice, "A+C" for several (all-or-nothing
    multiple response is right exactly when this equals the key's label)."""
    if response is None or response == [] or response == "":
        return OMITTED
    if isinstance(response, list):
        return "+".join(sorted(str(r) for r in response))
    return str(response)


# ---------------------------------------------------------------- classical item analysis


@dataclass
class FormReliability:
    """A form's own classical analysis over the candidates who sat it: alpha, the score
    distribution and each item's alpha-if-deleted (which need everyone to have seen every
    item, so they exist per form, not pooled over forms)."""

    form: Form
    reliability: ReliabilityEstimate
    distribution: ScoreDistribution
    alpha_if_deleted: dict[int, float | None]  # column -> alpha of the form without the item


@dataclass
class ExamItemAnalysis:
    """The one classical analysis of an exam: the page and the JSON export both render it."""

    exam: Exam
    matrix: ScoreMatrix
    analysis: ItemAnalysis
    by_form: list[FormReliability]

    def flag_reasons(self, flags: Sequence[str]) -> list[str]:
        return [FLAG_REASONS.get(f, f).format(r=self.analysis.rules) for f in flags]

    def alpha_if_deleted(self, column: int) -> dict[str, float | None]:
        """Form code -> alpha of that form without the item, for each form the item is on."""
        return {
            f.form.code: f.alpha_if_deleted[column] for f in self.by_form if column in f.alpha_if_deleted
        }

    def rows(self) -> list[tuple[int, ItemStatistics]]:
        """(column, statistics) of every item version, flagged ones first."""
        pairs = list(enumerate(self.analysis.items))
        return [p for p in pairs if p[1].flags] + [p for p in pairs if not p[1].flags]

    def to_dict(self) -> dict:
        doc = self.analysis.to_dict()
        for j, (item, version) in enumerate(zip(doc["items"], self.matrix.versions)):
            item["item_version_id"] = version.id
            item["alpha_if_deleted"] = self.alpha_if_deleted(j)
            item["flag_reasons"] = self.flag_reasons(item["flags"])
        doc["exam"] = self.exam.code
        doc["n_persons"] = self.matrix.n_persons
        doc["forms"] = [
            {"form": f.form.code, **ItemAnalysis([], f.reliability, f.distribution, self.analysis.rules)
             .to_dict()} for f in self.by_form
        ]
        for f in doc["forms"]:
            del f["items"], f["flag_rules"]
        return doc


def analyse_items(session: Session, exam: Exam, *, rules: FlagRules | None = None) -> ExamItemAnalysis:
    """Classical item analysis (``psychometrics.item_analysis``) of the exam's counted results,
    with distractor analysis of the chosen options, plus each form's own alpha, score
    distribution and alpha-if-deleted: those need persons who saw every item, which nobody
    does when forms differ.

    The pooled score distribution is of every counted candidate's total over the items they
    were presented (so its ``n`` is the number of results); pooled alpha and alpha-if-deleted
    stay per form."""
    rules = rules or FlagRules()
    matrix = score_matrix(session, exam)
    by_form = []
    for form_id in sorted(matrix.forms):
        rows, cols = matrix.form_block(form_id)
        block = matrix.scores[np.ix_(rows, cols)]
        if block.size == 0:
            continue
        form_items = item_analysis(block, rules=rules).items
        by_form.append(
            FormReliability(
                matrix.forms[form_id],
                cronbach_alpha(block),
                score_distribution(block),
                {int(j): s.alpha_if_deleted for j, s in zip(cols, form_items)},
            )
        )
    analysis = item_analysis(
        matrix.scores, item_ids=matrix.item_ids, choices=matrix.choices, key=matrix.keys, rules=rules
    )
    totals = np.nansum(matrix.scores, axis=1)
    analysis.distribution = score_distribution(totals[:, None])
    for j, item in enumerate(analysis.items):
        alpha_rises = any(
            f.alpha_if_deleted.get(j) is not None and f.reliability.alpha is not None
            and f.alpha_if_deleted[j] > f.reliability.alpha
            for f in by_form
        )
        if alpha_rises and "alpha_increases_if_deleted" not in item.flags:
            item.flags.append("alpha_increases_if_deleted")
    return ExamItemAnalysis(exam, matrix, analysis, by_form)


# ---------------------------------------------------------------- IRT calibration


@dataclass
class Recovery:
    """How well estimates recover known (simulated) parameters."""

    parameter: str
    n: int
    correlation: float | None
    rmse: float | None
    bias: float | None


@dataclass
class ExamCalibration:
    exam: Exam
    matrix: ScoreMatrix
    fit: Calibration
    seconds: float
    unusable: dict[int, str]  # column -> why its estimate may not become current
    warnings: list[str]
    item_fit: dict[int, list[tuple[str, ItemFit]]]  # column -> [(form code, S-X2 on that form)]
    fit_notes: list[str]
    truth: dict[int, dict]  # column -> meta["simulation"]
    recovery: list[Recovery] = field(default_factory=list)

    def fit_forms(self) -> list[str]:
        """Codes of the forms with S-X2 results, in form order."""
        codes = {code for fits in self.item_fit.values() for code, _ in fits}
        return [self.matrix.forms[f].code for f in sorted(self.matrix.forms) if self.matrix.forms[f].code in codes]

    def items(self) -> list[dict]:
        rows = []
        for j in range(self.fit.n_items):
            rows.append(
                {
                    **self.fit.item_dict(j),
                    "label": self.matrix.item_ids[j],
                    "n": int((~np.isnan(self.matrix.scores[:, j])).sum()),
                    "unusable": self.unusable.get(j),
                    "truth": self.truth.get(j),
                    "fit": dict(self.item_fit.get(j, [])),
                }
            )
        return rows


def check_model_choice(model: str) -> str:
    name = (model or "").strip().lower()
    if name not in CALIBRATION_MODELS:
        raise AnalysisError(f"model must be one of {', '.join(CALIBRATION_MODELS)}; got {model!r}")
    return name


def check_max_iter(value: str | int | None) -> int:
    if value in (None, ""):
        return DEFAULT_MAX_ITER
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise AnalysisError(f"maximum EM cycles must be a whole number, got {value!r}") from None
    if not 1 <= n <= MAX_ITER_LIMIT:
        raise AnalysisError(f"maximum EM cycles must be between 1 and {MAX_ITER_LIMIT}, got {n}")
    return n


def calibrate_exam(
    session: Session,
    exam: Exam,
    *,
    model: str = "2pl",
    max_iter: int = DEFAULT_MAX_ITER,
) -> ExamCalibration:
    """Calibrate the exam's item versions on its counted results. Nothing is stored: see
    :func:`record_run`.

    Items the library could not estimate (no variance) and items with a non-finite estimate are
    marked unusable: approving the run leaves their previous parameters current.
    """
    model = check_model_choice(model)
    matrix = score_matrix(session, exam)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = calibrate(matrix.scores, model=model, item_ids=matrix.item_ids, max_iter=max_iter)
        except (PsychometricsError, ValueError) as exc:
            raise AnalysisError(f"the calibration of exam {exam.code} failed: {exc}") from exc
    seconds = time.perf_counter() - started
    messages = list(fit.messages)
    messages += [str(w.message) for w in caught if str(w.message) not in messages]
    unusable = {}
    for j in range(len(matrix.versions)):
        reason = _unstorable(fit, j)
        if reason:
            unusable[j] = reason

    item_fit, fit_notes = _item_fit_by_form(matrix, fit)
    truth = {
        j: v.meta["simulation"]
        for j, v in enumerate(matrix.versions)
        if isinstance((v.meta or {}).get("simulation"), dict)
    }
    return ExamCalibration(
        exam=exam,
        matrix=matrix,
        fit=fit,
        seconds=seconds,
        unusable=unusable,
        warnings=messages,
        item_fit=item_fit,
        fit_notes=fit_notes,
        truth=truth,
        recovery=_recovery(fit, truth),
    )


def record_run(
    session: Session, calibration: ExamCalibration, *, run_by_id: int | None, max_iter: int
) -> CalibrationRun:
    """Store ``calibration`` as a proposed run with one estimate row per item version (flushed,
    not committed). The current parameters do not change."""
    fit, matrix = calibration.fit, calibration.matrix
    three = fit.model == "3pl"
    run = CalibrationRun(
        exam_id=calibration.exam.id,
        model=fit.model,
        options={"max_iter": int(max_iter)},
        run_by_id=run_by_id,
        converged=bool(fit.converged),
        iterations=int(fit.iterations),
        log_likelihood=_finite_or_none(fit.loglik),
        fit_summary=_json_safe({
            "exam": calibration.exam.code,
            "engine": fit.engine,
            "n_persons": fit.n_persons,
            "n_items": fit.n_items,
            "forms": [matrix.forms[f].code for f in sorted(matrix.forms)],
            "max_change": fit.max_change,
            "aic": fit.aic,
            "bic": fit.bic,
            "n_params": fit.n_params,
            "latent_mean": fit.latent_mean,
            "latent_sd": fit.latent_sd,
            "seconds": calibration.seconds,
            "recovery": [vars(r) for r in calibration.recovery],
            "fit_forms": calibration.fit_forms(),
            "fit_notes": calibration.fit_notes,
        }),
        warnings=[str(w) for w in calibration.warnings],
        status="proposed",
    )
    session.add(run)
    session.flush()
    for j, version in enumerate(matrix.versions):
        session.add(CalibrationEstimate(
            run_id=run.id,
            item_version_id=version.id,
            position=j,
            n_responses=int((~np.isnan(matrix.scores[:, j])).sum()),
            a=_finite_or_none(fit.a[j]),
            b=_finite_or_none(fit.b[j]),
            c=_finite_or_none(fit.c[j]) if three else 0.0,
            standard_errors={
                name: _finite_or_none(se[j])
                for name, se in (("a", fit.se_a), ("b", fit.se_b), ("c", fit.se_c))
                if three or name != "c"
            },
            status=str(fit.status[j])[:20],
            note=calibration.unusable.get(j),
            item_fit=_json_safe({
                code: item.to_dict() for code, item in calibration.item_fit.get(j, [])
            }),
        ))
    session.flush()
    return run


def _json_safe(value):
    """NaN and infinities become None (JSON has neither), numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite_or_none(value)
    return value


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _unstorable(fit: Calibration, j: int) -> str | None:
    if fit.status[j] != "estimated":
        return f"not estimable ({fit.status[j]}): the previous parameters stay current"
    values = {"a": fit.a[j], "b": fit.b[j]}
    if fit.model == "3pl":
        values["c"] = fit.c[j]
    bad = [name for name, value in values.items() if not np.isfinite(value)]
    if bad:
        return f"non-finite {', '.join(bad)}: not stored"
    return None


def _item_fit_by_form(
    matrix: ScoreMatrix, fit: Calibration
) -> tuple[dict[int, list[tuple[str, ItemFit]]], list[str]]:
    """S-X2 (Orlando & Thissen, 2000) per form: summed scores are comparable only among persons
    who sat the same items, so each form's candidates are tested on that form's items."""
    out: dict[int, list[tuple[str, ItemFit]]] = {}
    notes = []
    for form_id in sorted(matrix.forms):
        code = matrix.forms[form_id].code
        rows, cols = matrix.form_block(form_id)
        if cols.size < 2:
            notes.append(f"form {code}: too few common items for S-X2")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fits = s_x2(
                    matrix.scores[np.ix_(rows, cols)],
                    fit.params.subset(cols),
                    item_ids=[matrix.item_ids[j] for j in cols],
                    latent_mean=fit.latent_mean,
                    latent_sd=fit.latent_sd,
                )
        except (PsychometricsError, ValueError) as exc:
            notes.append(f"form {code}: S-X2 not available ({exc})")
            continue
        for j, item in zip(cols, fits):
            out.setdefault(int(j), []).append((code, item))
    return out, notes


def _recovery(fit: Calibration, truth: dict[int, dict]) -> list[Recovery]:
    out = []
    names = ("b",) if fit.model == "rasch" else ("a", "b")
    for name in names:
        cols = [j for j, t in truth.items() if t.get(name) is not None and fit.status[j] == "estimated"]
        if len(cols) < 3:
            continue
        est = np.array([getattr(fit, name)[j] for j in cols], dtype=float)
        true = np.array([float(truth[j][name]) for j in cols])
        ok = np.isfinite(est)
        est, true = est[ok], true[ok]
        if est.size < 3:
            continue
        corr = float(np.corrcoef(est, true)[0, 1]) if est.std() > 0 and true.std() > 0 else None
        out.append(
            Recovery(
                parameter=name,
                n=int(est.size),
                correlation=corr,
                rmse=float(np.sqrt(np.mean((est - true) ** 2))),
                bias=float(np.mean(est - true)),
            )
        )
    return out


def exam_item_versions(session: Session, exam: Exam) -> list[ItemVersion]:
    """The item versions on the exam's forms (active or not), in form and position order."""
    seen: dict[int, ItemVersion] = {}
    for exam_form in exam.forms:
        for form_item in exam_form.form.items:
            seen.setdefault(form_item.item_version_id, form_item.item_version)
    return list(seen.values())
