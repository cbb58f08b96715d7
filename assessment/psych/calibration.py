"""IRT calibration of an exam's item versions on its counted results.

All forms are fitted at once, on the common scale their shared items give. Nothing is stored
here: :func:`assessment.psych.runs.record_run` keeps a calibration as a proposed run, and only
approving the run (itembank's :func:`~itembank.parameters.supersede_parameters`) changes the
current parameters.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from assessment.exams import Exam, ExamForm
from assessment.psych.errors import AnalysisError
from assessment.psych.response_matrix import ScoreMatrix, score_matrix
from itembank.models import Form, FormItem, ItemVersion
from psychometrics import Calibration, PsychometricsError, calibrate, s_x2
from psychometrics.fit import ItemFit

#: IRT models the workspace offers (all dichotomous: the exams are scored 0/1).
CALIBRATION_MODELS = ("rasch", "2pl", "3pl")
DEFAULT_MAX_ITER = 500
MAX_ITER_LIMIT = 5000
#: S-X2 p-values below this are marked as misfit.
FIT_ALPHA = 0.01


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
    progress: Callable[[int, float, float], None] | None = None,
) -> ExamCalibration:
    """Calibrate the exam's item versions on its counted results. Nothing is stored: see
    :func:`record_run`.

    Items the library could not estimate (no variance) and items with a non-finite estimate are
    marked unusable: approving the run leaves their previous parameters current.
    ``progress(iteration, loglik, change)`` is called after each EM cycle (the engine's
    ``ProgressCallback``).
    """
    model = check_model_choice(model)
    matrix = score_matrix(session, exam)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = calibrate(matrix.scores, model=model, item_ids=matrix.item_ids, max_iter=max_iter,
                            progress=progress)
        except PsychometricsError as exc:
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
        except PsychometricsError as exc:
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
    """The item versions on the exam's forms (active or not), in form and position order, with
    their items loaded (the calibration page labels every row)."""
    exam_forms = session.scalars(
        select(ExamForm)
        .where(ExamForm.exam_id == exam.id)
        .order_by(ExamForm.id)
        .options(
            selectinload(ExamForm.form)
            .selectinload(Form.items)
            .selectinload(FormItem.item_version)
            .selectinload(ItemVersion.item)
        )
    )
    seen: dict[int, ItemVersion] = {}
    for exam_form in exam_forms:
        for form_item in exam_form.form.items:
            seen.setdefault(form_item.item_version_id, form_item.item_version)
    return list(seen.values())
