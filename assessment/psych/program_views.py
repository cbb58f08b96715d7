"""The program report and candidate attributes, in the workspace (``/psych/program``,
``/psych/attributes``): psychometricians and admins read them; only admins record attributes.

Thin views: parse the filters, call :mod:`assessment.psych.program_report` or
:mod:`assessment.candidate_attributes`, render. No candidate or proctor reaches any of these
pages (403), and no candidate page shows an attribute.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

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
    current_of,
    history_of,
    import_csv,
    record,
)
from assessment.exams import Exam, exam_by_code
from assessment.psych.program_report import ProgramReport, ProgramScope, build_program_report
from assessment.psych.report_output import chart_img
from assessment.users import User, find_user_by_email
from itembank.models import Form
from microcred.errors import DomainError
from microcred.web import body_limit, db_session, role_required

bp = Blueprint("programs", __name__, url_prefix="/psych")
READERS = ("psychometrician", "admin")
#: A CSV of attributes may be this large (50,000 lines of a few attributes each).
IMPORT_MAX_BYTES = 4 * 1024 * 1024


class BadProgramScope(DomainError):
    status, code = 422, "bad_program_scope"


def _min_group() -> int:
    return current_app.config["MICROCRED"].report_min_group


# ---------------------------------------------------------------- program report


FILTERS = ("exam", "form", "since", "until", "group", "value")


def _query() -> dict[str, str]:
    return {k: request.args[k].strip() for k in FILTERS if request.args.get(k, "").strip()}


def _date(name: str, value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadProgramScope(f"{name} must be a date as YYYY-MM-DD, got {value[:40]!r}") from None


def _scope(query: dict[str, str]) -> ProgramScope:
    session = db_session()
    scope = ProgramScope(min_group=_min_group())
    if query.get("exam"):
        scope.exam = exam_by_code(session, query["exam"][:64])
        if scope.exam is None:
            raise BadProgramScope(f"there is no exam with code {query['exam'][:64]!r}")
    if query.get("form"):
        form = session.scalar(select(Form).where(Form.code == query["form"][:64]))
        if form is None:
            raise BadProgramScope(f"there is no form with code {query['form'][:64]!r}")
        if scope.exam is not None and form.id not in {ef.form.id for ef in scope.exam.forms}:
            raise BadProgramScope(f"form {form.code} is not a form of exam {scope.exam.code}")
        scope.form = form
    scope.since, scope.until = _date("since", query.get("since")), _date("until", query.get("until"))
    if scope.since and scope.until and scope.since > scope.until:
        raise BadProgramScope(
            f"the date range is empty: since {scope.since} is after until {scope.until}")
    if query.get("group"):
        try:
            scope.group_attribute = clean_name(query["group"], "the group attribute")
        except BadAttribute as exc:
            raise BadProgramScope(exc.message) from None
    if query.get("value"):
        if scope.group_attribute is None:
            raise BadProgramScope("a group value needs its attribute: choose the group attribute")
        if len(query["value"]) > VALUE_MAX:
            raise BadProgramScope(f"the group value is longer than {VALUE_MAX} characters")
        scope.group_value = query["value"]
    return scope


def _choices() -> dict:
    session = db_session()
    exams = list(session.scalars(select(Exam).order_by(Exam.code)))
    forms = sorted({(ef.form.code, e.code) for e in exams for ef in e.forms})
    return {"exams": exams, "forms": forms, "attributes": attribute_summaries(session)}


@bp.get("/program")
@role_required(*READERS)
def program():
    query = _query()
    try:
        report = build_program_report(db_session(), _scope(query))
    except BadProgramScope as exc:
        return render_template("psych/program.html", r=None, query=query, problem=exc.message,
                               min_group=_min_group(), **_choices()), 422
    return render_template("psych/program.html", r=report, query=query, problem=None,
                           min_group=_min_group(), **_choices())


def _built() -> tuple[ProgramReport, str]:
    query = _query()
    report = build_program_report(db_session(), _scope(query), with_charts=False)
    return report, report.scope.exam.code if report.scope.exam else "all-exams"


def table_csv(report: ProgramReport, name: str) -> str:
    table = report.tables[name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(["" if v is None else str(v) for v in row] for row in table.rows)
    return out.getvalue()


@bp.get("/program/<table>.csv")
@role_required(*READERS)
def program_csv(table: str):
    report, stem = _built()
    if table not in report.tables:
        abort(404)
    return _download(table_csv(report, table).encode(), "text/csv; charset=utf-8",
                     f"program-{stem}-{table}.csv")


@bp.get("/program.json")
@role_required(*READERS)
def program_json():
    return _built()[0].to_dict()


@bp.get("/program.zip")
@role_required(*READERS)
def program_zip():
    report, stem = _built()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in report.tables:
            zf.writestr(f"{name}.csv", table_csv(report, name))
        zf.writestr("report.json", json.dumps(report.to_dict(), indent=1, ensure_ascii=False))
    return _download(buf.getvalue(), "application/zip", f"program-{stem}.zip")


def _download(body: bytes, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# ---------------------------------------------------------------- candidate attributes


def _attributes_page(*, status: int = 200, import_report=None, candidate=None, form=None):
    session = db_session()
    return render_template(
        "psych/attributes.html", summaries=attribute_summaries(session), min_group=_min_group(),
        import_report=import_report, candidate=candidate,
        current=current_of(session, candidate.id) if candidate else {},
        history=history_of(session, candidate.id) if candidate else [],
        people=_people([r.recorded_by_id for r in history_of(session, candidate.id)]
                       if candidate else []),
        form=form or {}, may_record=current_user.has_role("admin"),
    ), status


def _people(ids: list[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in db_session().scalars(select(User).where(User.id.in_(wanted)))}


def _candidate(email: str) -> User:
    user = find_user_by_email(db_session(), email.strip()[:254]) if email.strip() else None
    if user is None or not user.has_role("candidate"):
        raise BadAttribute(f"no candidate has the email {email.strip()[:254]!r}")
    return user


@bp.get("/attributes")
@role_required(*READERS)
def attributes():
    email = request.args.get("email", "").strip()
    if not email:
        return _attributes_page()
    try:
        candidate = _candidate(email)
    except BadAttribute as exc:
        flash(exc.message, "error")
        return _attributes_page(status=404, form={"email": email[:254]})
    return _attributes_page(candidate=candidate, form={"email": candidate.email})


@bp.post("/attributes/record")
@role_required("admin")
def record_attribute():
    session = db_session()
    form = {k: request.form.get(k, "") for k in ("email", "name", "value")}
    try:
        candidate = _candidate(form["email"])
        row = record(session, candidate, form["name"], form["value"], by=current_user,
                     source="admin")
    except BadAttribute as exc:
        session.rollback()
        flash(f"Not recorded: {exc.message}.", "error")
        return _attributes_page(status=422, form=form)
    session.commit()
    if row is None:
        flash(f"{candidate.email}'s {clean_name(form['name'])} was already that: nothing changed.",
              "info")
    elif row.value is None:
        flash(f"{candidate.email}'s {row.name} is withdrawn (kept in the history).", "info")
    else:
        flash(f"Recorded {candidate.email}'s {row.name}: {row.value}.", "info")
    return redirect(url_for("programs.attributes", email=candidate.email)), 303


@bp.post("/attributes/import")
@role_required("admin")
@body_limit(IMPORT_MAX_BYTES + 64 * 1024)
def import_attributes():
    session = db_session()
    file = request.files.get("file")
    if file is None or not file.filename:
        flash("Choose a CSV file to import.", "error")
        return _attributes_page(status=422)
    data = file.stream.read(IMPORT_MAX_BYTES + 1)
    if len(data) > IMPORT_MAX_BYTES:
        flash(f"Not imported: the file is larger than {IMPORT_MAX_BYTES // (1024 * 1024)} MB;"
              " split it.", "error")
        return _attributes_page(status=422)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        flash(f"Not imported: the file is not UTF-8 text (byte {exc.start}).", "error")
        return _attributes_page(status=422)
    report = import_csv(session, text, by=current_user)
    if not report.ok:
        session.rollback()
        return _attributes_page(status=422, import_report=report)
    session.commit()
    return _attributes_page(import_report=report)


bp.add_app_template_global(chart_img, "chart_img")
