"""The browser's QTI screens: import (upload, the per-item report, then commit) and export.

Import is for admins and psychometricians, who may keep the lifecycle state a package gives
(approved items arrive approved) and its statistics; and for item authors, whose imports
arrive as drafts without statistics: a draft goes through review before any candidate sees it,
so an author importing drafts can do no more than an author typing them, while a state or an
IRT parameter from a file would skip the review that is the approvers' job. Proctors and
candidates never see the bank (403).

The upload is held server-side (``itembank.qti.uploads``: keyed, owned, expiring), with the
report of a dry run made in the upload's own transaction and rolled back, so what the page
shows is what the commit will do; the commit runs the import again, for real.
"""
from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from itembank.models import ItemVersion
from itembank.qti import uploads
from itembank.qti.csv_import import read_csv
from itembank.qti.package import export_package, newest_versions, read_package, write_plan
from itembank.qti.report import ImportReport
from itembank.qti.safety import MAX_PACKAGE_BYTES, PackageRefused
from itembank.types import ITEM_TYPES
from microcred.errors import DomainError
from microcred.web import body_limit, db_session, role_required

bp = Blueprint("qti", __name__, url_prefix="/bank")
APPROVERS = ("admin", "psychometrician")
ITEM_AUTHOR = "item_author"
IMPORTERS = (*APPROVERS, ITEM_AUTHOR)
EXPORTERS = APPROVERS


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    wiring = app.extensions["microcred.wiring"]
    for role in IMPORTERS:
        wiring.nav_links.append((role, "qti.import_page", "Import items"))
    for role in EXPORTERS:
        wiring.nav_links.append((role, "qti.export_page", "Export items"))


def _is_approver() -> bool:
    return current_user.role in APPROVERS


def _plan(filename: str, data: bytes):
    if filename.lower().endswith(".csv"):
        return read_csv(data, filename)
    return read_package(data, filename)


def _run(filename: str, data: bytes, *, commit: bool) -> ImportReport:
    plan = _plan(filename, data)
    approver = _is_approver()
    if not approver:
        for planned in plan.items:
            if planned.record is not None:
                planned.record.statistics = []
    return write_plan(db_session(), plan, actor=current_user, keep_status=approver,
                      commit=commit)


@bp.get("/import")
@role_required(*IMPORTERS)
def import_page() -> str:
    return render_template("qti/import.html", error=None, approver=_is_approver(),
                           limit=MAX_PACKAGE_BYTES)


@bp.post("/import")
@role_required(*IMPORTERS)
@body_limit(MAX_PACKAGE_BYTES + 1024 * 1024)
def upload() -> Any:
    file = request.files.get("package")
    if file is None or not file.filename:
        return _upload_error("Choose a package (.zip), an item (.xml) or a CSV bank (.csv).")
    data = file.stream.read(MAX_PACKAGE_BYTES + 1)
    session = db_session()
    try:
        report = _run(file.filename, data, commit=False)
    except PackageRefused as exc:
        session.rollback()
        return _upload_error(f"Refused, nothing imported: {exc.message}")
    except DomainError as exc:
        session.rollback()
        return _upload_error(exc.message)
    row = uploads.hold(session, current_user.id, file.filename, data, report.as_dict())
    session.commit()
    return redirect(url_for("qti.review_page", key=row.key), code=303)


def _upload_error(message: str) -> tuple[str, int]:
    db_session().rollback()
    return render_template("qti/import.html", error=message, approver=_is_approver(),
                           limit=MAX_PACKAGE_BYTES), 422


@bp.get("/import/<key>")
@role_required(*IMPORTERS)
def review_page(key: str) -> str:
    try:
        row = uploads.pending(db_session(), key, current_user.id)
    except DomainError:
        abort(404)
    return render_template("qti/report.html", report=row.report, key=key, pending=True,
                           expires_at=row.expires_at)


@bp.post("/import/<key>")
@role_required(*IMPORTERS)
def commit_import(key: str) -> Any:
    session = db_session()
    try:
        row = uploads.pending(session, key, current_user.id)
    except DomainError:
        abort(404)
    if request.form.get("action") == "discard":
        uploads.discard(session, row)
        session.commit()
        return redirect(url_for("qti.import_page"), code=303)
    try:
        report = _run(row.filename, row.data, commit=True)
    except DomainError as exc:
        session.rollback()
        return render_template("qti/import.html", error=exc.message,
                               approver=_is_approver(), limit=MAX_PACKAGE_BYTES), 422
    uploads.discard(session, row)
    session.commit()
    return render_template("qti/report.html", report=report.as_dict(), key=None,
                           pending=False, expires_at=None)


# ------------------------------------------------------------------------------- export
#
# The export takes the item list's filter (``itembank.screens``: search, type, domain, status,
# statistics flag) and exports what the list shows, each item by its newest version. A bank
# without that list filters here by type, domain, status and a search of code and question.

FILTERS = ("q", "type", "domain", "status", "flag")


def _filters() -> dict[str, str]:
    """The filters asked for; a value with control characters is no filter value at all."""
    out = {}
    for name in FILTERS:
        value = request.args.get(name, "").strip()[:200]
        out[name] = "" if any(ord(c) < 32 for c in value) else value
    return out


def _matching(filters: dict[str, str]) -> list[ItemVersion]:
    session = db_session()
    try:
        from itembank.screens import ListFilters, list_query  # the item list's own filter
    except ImportError:
        ListFilters = None
    if ListFilters is not None:
        from itembank.models import Item

        query = list_query(ListFilters.from_args({**filters, "page": "1"}))
        return [v for v, _ in session.execute(query.order_by(Item.code))]
    versions = newest_versions(session, status=filters["status"] or None,
                               domain=filters["domain"] or None,
                               item_type=filters["type"] or None)
    q = filters["q"].lower()
    if q:
        from itembank.models import Item

        codes = {v.item_id: session.get(Item, v.item_id).code for v in versions}
        versions = [v for v in versions if q in codes[v.item_id].lower() or q in v.stem.lower()]
    return versions


def _flags() -> dict[str, str]:
    try:
        from itembank.screens import FLAGS
    except ImportError:
        return {}
    return dict(FLAGS)


@bp.get("/export")
@role_required(*EXPORTERS)
def export_page() -> Any:
    filters = _filters()
    session = db_session()
    from itembank.models import STATUSES

    try:
        count = len(_matching(filters))
    except DomainError as exc:
        return render_template("error.html", status=400, message=exc.message), 400
    domains = session.scalars(select(ItemVersion.domain_code).distinct()
                              .order_by(ItemVersion.domain_code)).all()
    return render_template("qti/export.html", filters=filters, statuses=STATUSES,
                           types=sorted(ITEM_TYPES), domains=[d for d in domains if d],
                           flags=_flags(), count=count)


@bp.get("/export.zip")
@role_required(*EXPORTERS)
def export_download() -> Response:
    fmt = request.args.get("format", "qti3")
    if fmt not in ("qti3", "qti21"):
        abort(400)
    filters = _filters()
    try:
        versions = _matching(filters)
    except DomainError:
        abort(400)
    data = export_package(db_session(), versions, fmt)
    name = "microcred-items-" + "-".join(v for v in (fmt, filters["status"], filters["type"],
                                                      filters["domain"]) if v)
    return Response(data, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}.zip"'})
