"""The psychometrician's workspace: exam overview, classical item analysis, IRT calibration.

Thin views over :mod:`assessment.exam_analysis`. Calibration runs inside the request, on purpose:
on the demo (500 candidates x 31 item versions on two 20-item forms sharing 9) the EM fit takes
0.04-0.14 s (median of 10 runs, 2PL/3PL/Rasch) and the whole service call (score matrix, fit,
S-X2 per form, the new rows) 0.1-0.3 s, measured on a busy 2-core machine. A background job would
add machinery without sparing anyone a wait; move it to the job queue (RQ) when programs grow
past a couple of seconds (``bench/calibration.py`` gives the library's figures by size).
"""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user

from assessment.exam_analysis import (
    CALIBRATION_MODELS,
    DEFAULT_MAX_ITER,
    FIT_ALPHA,
    MAX_ITER_LIMIT,
    AnalysisError,
    analyse_items,
    calibrate_exam,
    check_max_iter,
    check_model_choice,
    exam_item_versions,
    exam_summaries,
    version_label,
)
from assessment.exams import Exam, exam_by_code
from itembank.parameters import current_parameters
from microcred.web import ApiError, db_session, role_required

bp = Blueprint("psych", __name__, url_prefix="/psych")
ROLES = ("psychometrician", "admin")


@bp.record_once
def _nav_links(state) -> None:
    wiring = state.app.extensions["microcred.wiring"]
    for role in ROLES:
        wiring.nav_links.append((role, "psych.index", "Psychometrics"))


class UnknownExam(LookupError):
    pass


@bp.errorhandler(UnknownExam)
def _unknown_exam(exc: UnknownExam):
    if request.path.endswith(".json"):
        return ApiError(404, "unknown_exam", str(exc)).response()
    return render_template("error.html", status=404, message=str(exc)), 404


def _exam(code: str) -> Exam:
    exam = exam_by_code(db_session(), code)
    if exam is None:
        raise UnknownExam(f"there is no exam with code {code!r}")
    return exam


@bp.get("/")
@role_required(*ROLES)
def index():
    return render_template("psych/index.html", summaries=exam_summaries(db_session()))


@bp.get("/exams/<code>/items")
@role_required(*ROLES)
def items(code: str):
    exam = _exam(code)
    try:
        result = analyse_items(db_session(), exam)
    except AnalysisError as exc:
        return render_template("psych/items.html", exam=exam, result=None, problem=str(exc))
    flagged = [i for i in result.analysis.items if i.flags]
    clean = [i for i in result.analysis.items if not i.flags]
    return render_template(
        "psych/items.html", exam=exam, result=result, rows=flagged + clean, n_flagged=len(flagged),
        problem=None,
    )


@bp.get("/exams/<code>/items.json")
@role_required(*ROLES)
def items_json(code: str):
    exam = _exam(code)
    try:
        return analyse_items(db_session(), exam).to_dict()
    except AnalysisError as exc:
        raise ApiError(409, "no_data", str(exc)) from None


@bp.get("/exams/<code>/calibrate")
@role_required(*ROLES)
def calibration_form(code: str):
    return _calibration_form(_exam(code))


def _calibration_form(exam: Exam, *, problem: str | None = None, model: str = "2pl",
                      max_iter: str | int = DEFAULT_MAX_ITER, status: int = 200):
    session = db_session()
    versions = exam_item_versions(session, exam)
    current = current_parameters(session, [v.id for v in versions])
    return render_template(
        "psych/calibrate.html", exam=exam, versions=versions, current=current,
        label=version_label, models=CALIBRATION_MODELS, model=model, max_iter=max_iter,
        max_iter_limit=MAX_ITER_LIMIT, problem=problem,
    ), status


@bp.post("/exams/<code>/calibrate")
@role_required(*ROLES)
def calibrate(code: str):
    exam = _exam(code)
    session = db_session()
    model = request.form.get("model", "")
    max_iter = request.form.get("max_iter", "")
    try:
        cycles = check_max_iter(max_iter)
        result = calibrate_exam(
            session, exam, model=check_model_choice(model), max_iter=cycles,
            calibrated_by=current_user.email,
        )
    except AnalysisError as exc:
        session.rollback()
        return _calibration_form(exam, problem=str(exc), model=model, max_iter=max_iter, status=422)
    session.commit()
    return render_template(
        "psych/calibration.html", exam=exam, result=result, fit_alpha=FIT_ALPHA,
        models=CALIBRATION_MODELS, max_iter=cycles, max_iter_limit=MAX_ITER_LIMIT,
    )
