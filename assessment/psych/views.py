"""The psychometrician's workspace: exam overview, classical item analysis, IRT calibration
and its runs.

Thin views over the package's services. Every page loads what it shows in the view, a fixed
number of queries however many items an exam has: templates get plain values and eagerly
loaded rows, never a relationship to load row by row.

Calibration never runs inside the request: starting one stores a queued run and enqueues a
job (:mod:`assessment.psych.jobs`) that a ``microcred worker`` process runs; the run's page shows
the job's progress and refreshes itself until the run has finished or failed.

A calibration is stored as a proposed run and changes nothing until a psychometrician approves it
on the run's page (:mod:`assessment.psych.runs`); earlier runs stay there to be approved again.
"""
from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from assessment.candidate_attributes import (
    VALUE_MAX,
    BadAttribute,
    attribute_summaries,
    clean_name,
    groups_of_results,
)
from assessment.exams import Exam, exam_by_code
from assessment.jobs import app_queue
from assessment.psych.calibration import (
    CALIBRATION_MODELS,
    DEFAULT_MAX_ITER,
    FIT_ALPHA,
    MAX_ITER_LIMIT,
    check_max_iter,
    check_model_choice,
    exam_item_versions,
)
from assessment.psych.errors import AnalysisError
from assessment.psych.item_statistics import analyse_items
from assessment.psych.jobs import CALIBRATE
from assessment.psych.report import ReportScope, build_report
from assessment.psych.report_output import chart_img, render_pdf, table_csv, tables_zip
from assessment.psych.report_pdfs import SCOPE_KEYS, ReportPdf, pdfs_of_exam, request_pdf
from assessment.psych.response_matrix import require_results, version_label
from assessment.psych.results import exam_summaries
from assessment.psych.runs import (
    ERROR_LENGTH,
    CalibrationRefused,
    CalibrationRun,
    approve_run,
    get_run,
    queue_run,
    reject_run,
    run_with_details,
    runs_of_exam,
)
from assessment.psych.runs_compare import (
    BANK,
    ComparisonError,
    RunComparison,
    compare_run,
    parse_exclusions,
)
from assessment.users import User
from itembank.parameters import current_parameters
from microcred.errors import DomainError
from microcred.jobs import JobError
from microcred.web import db_session, role_required

bp = Blueprint("psych", __name__, url_prefix="/psych")
ROLES = ("psychometrician", "admin")


@bp.record_once
def _nav_links(state) -> None:
    wiring = state.app.extensions["microcred.wiring"]
    for role in ROLES:
        wiring.nav_links.append((role, "psych.index", "Psychometrics"))


class UnknownExam(DomainError):
    status, code = 404, "unknown_exam"


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
    rows = result.rows()
    return render_template(
        "psych/items.html", exam=exam, result=result, rows=rows,
        n_flagged=sum(1 for _, i in rows if i.flags), problem=None,
    )


@bp.get("/exams/<code>/items.json")
@role_required(*ROLES)
def items_json(code: str):
    return analyse_items(db_session(), _exam(code)).to_dict()


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
        max_iter_limit=MAX_ITER_LIMIT, problem=problem, runs=runs_of_exam(session, exam.id, limit=5),
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
        chosen = check_model_choice(model)
        require_results(session, exam)  # the one refusal known before any work: say it here
    except AnalysisError as exc:
        session.rollback()
        return _calibration_form(exam, problem=str(exc), model=model, max_iter=max_iter, status=422)
    run = queue_run(session, exam, model=chosen, max_iter=cycles, run_by_id=current_user.id)
    session.commit()  # the worker reads the run from its own connection
    try:
        app_queue().enqueue(CALIBRATE, run.id)
    except JobError as exc:
        run.job_state, run.error = "failed", str(exc)[:ERROR_LENGTH]
        session.commit()
    session.refresh(run)
    if run.job_state == "finished":
        flash(f"Calibration run {run.id} is stored as proposed. It changes no parameters until it"
              " is approved below.", "info")
    elif run.job_state == "failed":
        flash(f"Calibration run {run.id} failed: {run.error}", "error")
    else:
        flash(f"Calibration run {run.id} is queued: this page shows its progress. It changes no"
              " parameters until it is approved.", "info")
    return redirect(url_for("psych.run_detail", run_id=run.id)), 303


# ---------------------------------------------------------------- calibration runs


@bp.get("/exams/<code>/runs")
@role_required(*ROLES)
def runs(code: str):
    exam = _exam(code)
    session = db_session()
    all_runs = runs_of_exam(session, exam.id)
    return render_template("psych/runs.html", exam=exam, runs=all_runs,
                           people=_people(session, all_runs))


def _run(run_id: int, *, for_update: bool = False) -> CalibrationRun:
    run = get_run(db_session(), run_id, for_update=for_update)  # ids in range: IdConverter
    return _found(run, run_id)


def _found(run: CalibrationRun | None, run_id: int) -> CalibrationRun:
    if run is None:
        raise UnknownExam(f"there is no calibration run {run_id}")
    return run


def _people(session, runs: list[CalibrationRun]) -> dict[int, User]:
    ids = {r.run_by_id for r in runs} | {r.decided_by_id for r in runs}
    ids |= {d.by_id for r in runs for d in r.decisions}
    ids.discard(None)
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}


@bp.get("/runs/<int:run_id>")
@role_required(*ROLES)
def run_detail(run_id: int):
    """The run; ``?method=&exclude=`` choose the link to the bank's parameters it shows (and
    that its approval form records)."""
    try:
        exclude = parse_exclusions(request.args.getlist("exclude"))
    except ComparisonError:
        exclude = request.args.getlist("exclude")  # compare_run names them in its message
    return _run_page(run_id, form={"method": request.args.get("method"), "exclude": exclude})


def _run_page(run_id: int, *, problem: str | None = None, form: dict | None = None,
              status: int = 200):
    session = db_session()
    run = _found(run_with_details(session, run_id), run_id)
    exam = session.get(Exam, run.exam_id)
    if exam is None:  # runs belong to exams, which are never deleted
        abort(404)
    current = current_parameters(session, [e.item_version_id for e in run.estimates])
    current_ids = {p.id for p in current.values()}
    truth = {
        e.id: e.item_version.meta["simulation"]
        for e in run.estimates
        if isinstance((e.item_version.meta or {}).get("simulation"), dict)
    }
    comparison, compare_problem = None, None
    if run.finished:
        form = form or {}
        try:
            comparison = compare_run(session, run, base=BANK, method=form.get("method"),
                                     exclude=form.get("exclude"), current=current,
                                     with_se=False)  # the compare page and approval have SEs
        except ComparisonError as exc:
            compare_problem = str(exc)
    return render_template(
        "psych/run.html", exam=exam, run=run, label=version_label, fit_alpha=FIT_ALPHA, truth=truth,
        comparison=comparison, compare_problem=compare_problem, methods=LINKING_METHODS,
        people=_people(session, [run]), problem=problem, form=form or {},
        models=CALIBRATION_MODELS, max_iter=run.options.get("max_iter", DEFAULT_MAX_ITER),
        max_iter_limit=MAX_ITER_LIMIT, n_current=len(current_ids),
        progress=run_progress_dict(run),
    ), status


@bp.get("/runs/<int:run_id>/progress.json")
@role_required(*ROLES)
def run_progress(run_id: int):
    """Where the run's job stands, for the run page's poll."""
    return run_progress_dict(_run(run_id))


def run_progress_dict(run: CalibrationRun) -> dict:
    progress = run.progress or {}
    return {
        "run": run.id,
        "state": run.job_state,
        "iteration": progress.get("iteration", 0),
        "max_iter": progress.get("max_iter", run.options.get("max_iter", DEFAULT_MAX_ITER)),
        "loglik": progress.get("loglik"),
        "change": progress.get("change"),
        "error": run.error,
        "message": progress_message(run),
    }


def progress_message(run: CalibrationRun) -> str:
    """One sentence on where the run's job stands (the page's live status)."""
    progress = run.progress or {}
    cap = progress.get("max_iter", run.options.get("max_iter", DEFAULT_MAX_ITER))
    if run.job_state == "queued":
        return "Queued: waiting for a job worker to start it."
    if run.job_state == "running":
        return f"Running: EM cycle {progress.get('iteration', 0)} of at most {cap}."
    if run.job_state == "failed":
        return f"Failed: {run.error or 'no reason was recorded'}"
    return f"Finished after {run.iterations} EM cycles."


LINKING_METHODS = (
    ("stocking-lord", "Stocking-Lord (test characteristic curve)"),
    ("haebara", "Haebara (item characteristic curves)"),
    ("mean-sigma", "Mean-sigma"),
    ("mean-mean", "Mean-mean"),
)


@bp.post("/runs/<int:run_id>/approve")
@role_required(*ROLES)
def approve(run_id: int):
    session = db_session()
    run = _run(run_id, for_update=True)
    reason = request.form.get("reason", "")
    override = request.form.get("override_not_converged") == "yes"
    scale = request.form.get("scale", "as-estimated")
    form = {"action": "approve", "reason": reason, "override": override, "scale": scale,
            "method": request.form.get("method"), "exclude": request.form.getlist("exclude")}
    try:
        if scale not in ("as-estimated", "link"):
            raise CalibrationRefused(f"scale must be 'as-estimated' or 'link'; got {scale[:40]!r}")
        linking = None
        try:
            form["exclude"] = parse_exclusions(form["exclude"])
            linking = compare_run(session, run_with_details(session, run_id), base=BANK,
                                  method=form["method"], exclude=form["exclude"])
        except ComparisonError as exc:
            if scale == "link":  # the psychometrician asked for a link that cannot be made
                raise CalibrationRefused(str(exc)) from None
        approve_run(session, run, by=current_user, reason=reason, override_not_converged=override,
                    linking=linking, apply_linking=scale == "link")
    except CalibrationRefused as exc:
        session.rollback()
        return _run_page(run_id, problem=f"Not approved: {exc}.", form=form, status=422)
    session.commit()
    linked = (f" placed on the bank's scale (A = {linking.constants['A']:.4f}, "
              f"B = {linking.constants['B']:.4f}, {linking.method})" if scale == "link" else "")
    flash(
        f"Calibration run {run.id} is approved: its {len(run.usable_estimates)} usable estimates"
        f"{linked} are now the current parameters.", "info",
    )
    return redirect(url_for("psych.run_detail", run_id=run.id)), 303


@bp.post("/runs/<int:run_id>/reject")
@role_required(*ROLES)
def reject(run_id: int):
    session = db_session()
    run = _run(run_id, for_update=True)
    reason = request.form.get("reason", "")
    try:
        reject_run(session, run, by=current_user, reason=reason)
    except CalibrationRefused as exc:
        session.rollback()
        form = {"action": "reject", "reason": reason}
        return _run_page(run_id, problem=f"Not rejected: {exc}.", form=form, status=422)
    session.commit()
    flash(f"Calibration run {run.id} is rejected; the current parameters are unchanged.", "info")
    return redirect(url_for("psych.run_detail", run_id=run.id)), 303


# ---------------------------------------------------------------- run comparison


def _comparison(run_id: int) -> tuple[CalibrationRun, Exam, RunComparison, dict]:
    session = db_session()
    run = _found(run_with_details(session, run_id), run_id)
    exam = session.get(Exam, run.exam_id)
    query = {"base": request.args.get("base", BANK).strip() or BANK,
             "method": request.args.get("method", "stocking-lord"),
             "exclude": parse_exclusions(request.args.getlist("exclude"))}
    return run, exam, compare_run(session, run, **query), query


@bp.get("/runs/<int:run_id>/compare")
@role_required(*ROLES)
def compare(run_id: int):
    session = db_session()
    run = _found(run_with_details(session, run_id), run_id)
    exam = session.get(Exam, run.exam_id)
    others = [r for r in runs_of_exam(session, run.exam_id) if r.id != run.id and r.finished]
    base = request.args.get("base", BANK).strip() or BANK
    method = request.args.get("method", "stocking-lord")
    comparison, problem = None, None
    try:
        comparison = _comparison(run_id)[2]
    except ComparisonError as exc:
        problem = str(exc)
    query = {"base": base, "method": method}
    if comparison is not None:
        query["exclude"] = comparison.excluded
    return render_template("psych/compare.html", exam=exam, run=run, others=others, base=base,
                           method=method, methods=LINKING_METHODS, c=comparison, problem=problem,
                           query=query), (422 if problem else 200)


@bp.get("/runs/<int:run_id>/compare.csv")
@role_required(*ROLES)
def compare_csv(run_id: int):
    run, exam, comparison, _query = _comparison(run_id)
    return _download(comparison.to_csv().encode(), "text/csv; charset=utf-8",
                     f"{exam.code}-run{run.id}-vs-{comparison.base.key}.csv")


@bp.get("/runs/<int:run_id>/compare.json")
@role_required(*ROLES)
def compare_json(run_id: int):
    return _comparison(run_id)[2].to_dict()


# ---------------------------------------------------------------- item-analysis report


class BadReportScope(DomainError):
    status, code = 422, "bad_report_scope"


def _report_query() -> dict[str, str]:
    """The report's scope as given in the query string (only the keys given)."""
    return {k: request.args[k].strip() for k in ("form", "since", "until", "dif", "reference",
                                                 "focal")
            if request.args.get(k, "").strip()}


def _date(name: str, value: str | None):
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadReportScope(f"{name} must be a date as YYYY-MM-DD, got {value[:40]!r}") from None


def _report_scope(exam: Exam, query: dict[str, str]) -> ReportScope:
    form = None
    if query.get("form"):
        form = next((ef.form for ef in exam.forms if ef.form.code == query["form"]), None)
        if form is None:
            raise BadReportScope(f"exam {exam.code} has no form {query['form'][:64]!r}")
    since, until = _date("since", query.get("since")), _date("until", query.get("until"))
    if since and until and since > until:
        raise BadReportScope(f"the date range is empty: since {since} is after until {until}")
    scope = ReportScope(exam=exam, form=form, since=since, until=until,
                        min_group=current_app.config["MICROCRED"].report_min_group)
    if query.get("dif"):
        try:
            scope.dif_attribute = clean_name(query["dif"], "the DIF attribute")
        except BadAttribute as exc:
            raise BadReportScope(exc.message) from None
        for key in ("reference", "focal"):
            if len(query.get(key, "")) > VALUE_MAX:
                raise BadReportScope(f"the {key} group is longer than {VALUE_MAX} characters")
        scope.dif_reference, scope.dif_focal = query.get("reference"), query.get("focal")
    return scope


def _dif_groups(scope: ReportScope) -> dict[int, str] | None:
    """Result id -> the chosen DIF attribute's value, or None when no attribute is chosen."""
    if scope.dif_attribute is None:
        return None
    return groups_of_results(db_session(), scope.dif_attribute, scope.exam.id)


def _build(code: str, *, with_charts: bool, item_charts_later: bool = False):
    exam = _exam(code)
    query = _report_query()
    scope = _report_scope(exam, query)
    return exam, query, build_report(db_session(), scope, groups=_dif_groups(scope),
                                     with_charts=with_charts,
                                     item_charts_later=item_charts_later)


@bp.get("/exams/<code>/report")
@role_required(*ROLES)
def report(code: str):
    exam = _exam(code)
    query = _report_query()
    forms = [ef.form for ef in exam.forms]
    attributes = attribute_summaries(db_session())
    try:
        scope = _report_scope(exam, query)
        built = build_report(db_session(), scope, groups=_dif_groups(scope))
    except (AnalysisError, BadReportScope) as exc:
        status = 422 if isinstance(exc, BadReportScope) else 200
        return render_template("psych/report.html", exam=exam, forms=forms, query=query, r=None,
                               tables=[], problem=str(exc), attributes=attributes,
                               min_group=current_app.config["MICROCRED"].report_min_group), status
    return render_template("psych/report.html", exam=exam, forms=forms, query=query, r=built,
                           tables=list(built.tables()), problem=None, attributes=attributes,
                           min_group=current_app.config["MICROCRED"].report_min_group,
                           pdfs=pdfs_of_exam(db_session(), exam.id, limit=5))


@bp.get("/exams/<code>/report.pdf")
@role_required(*ROLES)
def report_pdf(code: str):
    exam, _, built = _build(code, with_charts=True, item_charts_later=True)
    return _download(render_pdf(built), "application/pdf", f"{exam.code}-item-analysis.pdf")


@bp.get("/exams/<code>/report.json")
@role_required(*ROLES)
def report_json(code: str):
    _, _, built = _build(code, with_charts=False)
    return built.to_dict()


@bp.get("/exams/<code>/report.zip")
@role_required(*ROLES)
def report_zip(code: str):
    exam, _, built = _build(code, with_charts=False)
    return _download(tables_zip(built), "application/zip", f"{exam.code}-item-analysis.zip")


@bp.get("/exams/<code>/report/<table>.csv")
@role_required(*ROLES)
def report_csv(code: str, table: str):
    exam, _, built = _build(code, with_charts=False)
    if table not in built.tables():
        abort(404)
    return _download(table_csv(built, table).encode(), "text/csv; charset=utf-8",
                     f"{exam.code}-{table}.csv")


def _download(body: bytes, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


bp.add_app_template_global(chart_img, "chart_img")


# the cut adoption and cut rescoring pages register on this blueprint
from assessment.psych import cuts_views  # noqa: F401

# ---------------------------------------------------------------- report PDFs (a background job)


@bp.post("/exams/<code>/report/pdfs")
@role_required(*ROLES)
def report_pdf_request(code: str):
    """Queue the report's PDF for the scope in the form (the report page's query), or find the
    one already being rendered for it; the PDF's page follows the job."""
    exam = _exam(code)
    session = db_session()
    scope = {k: request.form[k].strip() for k in SCOPE_KEYS if request.form.get(k, "").strip()}
    checked = _report_scope(exam, scope)  # a bad scope is refused here, not in the job
    scope["min_group"] = str(checked.min_group)
    row, reused = request_pdf(session, exam, scope, by_id=current_user.id)
    session.commit()  # the job is queued once the row is committed
    if reused:
        flash(f"This report's PDF is already being rendered (request {row.id}): this page follows"
              " it.", "info")
    return redirect(url_for("psych.report_pdf_page", pdf_id=row.id)), 303


def _pdf_row(pdf_id: int) -> ReportPdf:
    row = db_session().get(ReportPdf, pdf_id)
    if row is None:
        raise UnknownExam(f"there is no report PDF {pdf_id}")
    return row


@bp.get("/report-pdfs/<int:pdf_id>")
@role_required(*ROLES)
def report_pdf_page(pdf_id: int):
    session = db_session()
    row = _pdf_row(pdf_id)
    exam = session.get(Exam, row.exam_id)
    people = {}
    if row.requested_by_id:
        user = session.get(User, row.requested_by_id)
        people = {user.id: user} if user else {}
    return render_template("psych/report_pdf_job.html", exam=exam, pdf=row, people=people,
                           progress=row.progress_dict())


@bp.get("/report-pdfs/<int:pdf_id>/progress.json")
@role_required(*ROLES)
def report_pdf_progress(pdf_id: int):
    return _pdf_row(pdf_id).progress_dict()


@bp.get("/report-pdfs/<int:pdf_id>/download")
@role_required(*ROLES)
def report_pdf_download(pdf_id: int):
    row = _pdf_row(pdf_id)
    if row.state != "finished" or row.pdf is None:
        raise PdfNotReady(f"report PDF {pdf_id} is {row.state}: there is nothing to download yet")
    exam = db_session().get(Exam, row.exam_id)
    return _download(row.pdf, "application/pdf", row.filename(exam.code))


class PdfNotReady(DomainError):
    status, code = 409, "pdf_not_ready"
