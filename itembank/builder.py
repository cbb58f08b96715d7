"""The blueprint editor and the form builder (admin and psychometrician).

Thin views over :mod:`itembank.blueprints`, :mod:`itembank.forms` and :mod:`itembank.assembly`:
parse the submitted form, call the service, render; a refusal is shown next to the field it
names, and nothing is stored. The form builder shows the blueprint's coverage as items are
placed and the test information curve (drawn by the app's one chart module, with a table of
the same numbers).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from sqlalchemy import func, or_, select

from itembank import assembly, forms
from itembank.blueprints import blueprint_definition, in_use, save_blueprint
from itembank.information import CURVE_THETAS, test_information_curve
from itembank.models import FIXED, Form, FormItem, Item, ItemVersion
from itembank.models import Blueprint as BlueprintRow
from microcred.errors import DomainError
from microcred.inputs import is_whole
from microcred.web import db_session, role_required

bp = Blueprint("builder", __name__, url_prefix="/bank")
ROLES = ("admin", "psychometrician")
#: empty domain rows offered below a blueprint's domains in the editor
SPARE_ROWS = 4
#: versions listed to choose from in the form builder's search
CHOICES = 50
DOMAIN_FIELDS = ("code", "name", "parent_code", "items_on_form", "weight", "pretest_items")


def init_app(app: Flask) -> None:
    from itembank.qti import screens  # QTI import and export, the bank's other screens

    app.register_blueprint(bp)
    screens.init_app(app)
    wiring = app.extensions["microcred.wiring"]
    for role in ROLES:
        wiring.nav_links.append((role, "builder.forms_page", "Forms"))
        wiring.nav_links.append((role, "builder.blueprints_page", "Blueprints"))


def _blueprint(code: str) -> BlueprintRow:
    found = db_session().scalar(select(BlueprintRow).where(BlueprintRow.code == code))
    if found is None:
        abort(404)
    return found


def error_field(error: DomainError | None) -> str | None:
    """The field a refusal names, if any."""
    if error is None:
        return None
    return getattr(error, "field", None) or error.extra.get("field")


def _form(code: str) -> Form:
    found = db_session().scalar(select(Form).where(Form.code == code))
    if found is None:
        abort(404)
    return found


# --------------------------------------------------------------------------- blueprints


@bp.get("/blueprints")
@role_required(*ROLES)
def blueprints_page() -> str:
    rows = db_session().scalars(select(BlueprintRow).order_by(BlueprintRow.code)).all()
    return render_template("builder/blueprints.html", blueprints=rows)


def _posted_domains() -> list[dict[str, Any]]:
    """The domain rows of the editor (``domain-<i>-<field>``); rows without a code are empty."""
    out = []
    for i in range(int(request.form.get("rows", "0") or 0)):
        row = {f: request.form.get(f"domain-{i}-{f}", "").strip() for f in DOMAIN_FIELDS}
        if row["code"] or row["name"]:
            out.append(row)
    return out


@bp.route("/blueprints/new", methods=["GET", "POST"], defaults={"code": None})
@bp.route("/blueprints/<code>", methods=["GET", "POST"])
@role_required(*ROLES)
def blueprint_editor(code: str | None) -> Any:
    session = db_session()
    existing = _blueprint(code) if code else None
    error = None
    if request.method == "POST":
        domains = _posted_domains()
        by = request.form.get("by", "counts")
        total = request.form.get("total_items", "").strip()
        try:
            saved = save_blueprint(
                session, code=request.form.get("code", ""), name=request.form.get("name", ""),
                domains=domains, blueprint=existing,
                total_items=(total or 0) if by == "weights" else None)
        except DomainError as exc:
            session.rollback()
            error = exc
            definition = {"code": request.form.get("code", ""),
                          "name": request.form.get("name", ""), "domains": domains}
        else:
            session.commit()
            flash(f"Blueprint {saved.code} saved.", "success")
            return redirect(url_for("builder.blueprint_editor", code=saved.code))
    else:
        by, total = "counts", ""
        definition = (blueprint_definition(existing) if existing
                      else {"code": "", "name": "", "domains": []})
    rows = definition["domains"] + [dict.fromkeys(DOMAIN_FIELDS, "")] * SPARE_ROWS
    return render_template(
        "builder/blueprint.html", blueprint=existing, definition=definition, rows=rows,
        by=by, total=total, error=error, error_field=error_field(error),
        locked=bool(existing and in_use(session, existing))), (422 if error else 200)


# --------------------------------------------------------------------------- forms


@bp.route("/forms", methods=["GET", "POST"])
@role_required(*ROLES)
def forms_page() -> Any:
    session = db_session()
    error = None
    if request.method == "POST":
        action = request.form.get("action", "draft")
        code = request.form.get("code", "").strip()
        blueprint = session.scalar(select(BlueprintRow).where(
            BlueprintRow.code == request.form.get("blueprint", "")))
        try:
            if blueprint is None:
                raise forms.FormError("choose the blueprint the form is built to",
                                      field="blueprint")
            if action == "assemble":
                target = assembly.AssemblyTarget.from_dict(_target_fields())
                made = assembly.assemble_form(session, code=code, blueprint=blueprint,
                                              target=target,
                                              name=request.form.get("name", ""))
            else:
                made = forms.create_draft_form(session, code=code, blueprint=blueprint,
                                               name=request.form.get("name", ""))
        except DomainError as exc:
            session.rollback()
            error = exc
        else:
            session.commit()
            flash(f"Form {made.code} {'assembled' if made.is_published else 'created'}.",
                  "success")
            return redirect(url_for("builder.form_builder", code=made.code))
    rows = session.execute(
        select(Form, BlueprintRow.code, func.count(FormItem.id))
        .join(BlueprintRow, BlueprintRow.id == Form.blueprint_id)
        .outerjoin(FormItem, FormItem.form_id == Form.id)
        .where(Form.kind == FIXED).group_by(Form.id, BlueprintRow.code)
        .order_by(Form.code)).all()
    blueprints = session.scalars(select(BlueprintRow).order_by(BlueprintRow.code)).all()
    return render_template("builder/forms.html", forms=rows, blueprints=blueprints,
                           error=error, error_field=error_field(error), posted=request.form), (422 if error else 200)


def _target_fields() -> dict[str, Any]:
    f = request.form
    return assembly.target_from_fields(
        cut_theta=f.get("cut_theta", ""), exposure_ceiling=f.get("exposure_ceiling", ""),
        curve=f.get("target_curve", ""), tolerance=f.get("tolerance", ""))


def _curve(session: Any, version_ids: list[int], cut: float | None) -> dict[str, Any]:
    """The scored items' test information and CSEM, drawn by the one chart module the app
    provides (``app.extensions["microcred.information_chart"]``: the psychometrics workspace's
    ``information_and_csem``; the bank imports nothing of the application), and as a table."""
    info, missing = test_information_curve(session, version_ids)
    xs = [float(t) for t in CURVE_THETAS]
    with np.errstate(divide="ignore"):
        csem = 1.0 / np.sqrt(info)  # Lord (1980): SE(theta) = 1 / sqrt(I(theta))
    svg = None
    draw = current_app.extensions.get("microcred.information_chart")
    if draw is not None and info.any():
        svg = Markup(draw(xs, info.tolist(), csem.tolist(), cut_theta=cut,
                          title="Test information curve").svg)
    table = [(x, float(v)) for x, v in zip(xs, info) if float(x).is_integer()]
    return {"svg": svg, "table": table, "missing": missing}


@bp.get("/forms/<code>")
@role_required(*ROLES)
def form_builder(code: str, error: DomainError | None = None) -> Any:
    session = db_session()
    form = _form(code)
    placed = forms.form_placements(session, form)
    codes = dict(session.execute(select(Item.id, Item.code).where(
        Item.id.in_([v.item_id for v, _ in placed]))).all()) if placed else {}
    query = request.args.get("q", "").strip()[:64]
    choices = []
    if not form.is_published:
        on_form = {v.item_id for v, _ in placed}
        q = (select(ItemVersion, Item.code).join(Item, Item.id == ItemVersion.item_id)
             .where(ItemVersion.status.in_(forms.DELIVERABLE_STATUSES),
                    ItemVersion.domain_code.in_([d.code for d in form.blueprint.domains])))
        if query:
            like = f"%{query.lower()}%"
            q = q.where(or_(func.lower(Item.code).like(like),
                            func.lower(ItemVersion.stem).like(like)))
        choices = [(v, c) for v, c in session.execute(
            q.order_by(Item.code, ItemVersion.version.desc()).limit(CHOICES * 2))
            if v.item_id not in on_form][:CHOICES]
    cut = request.args.get("cut", "0")
    try:
        cut_theta = max(-4.0, min(4.0, float(cut)))
    except ValueError:
        cut_theta = 0.0
    return render_template(
        "builder/form.html", form=form, placed=placed, codes=codes,
        coverage=forms.coverage(form.blueprint, placed),
        problems=forms.coverage_problems(form.blueprint, placed),
        curve=_curve(session, [v.id for v, s in placed if s], cut_theta), cut=cut_theta,
        choices=choices, query=query, error=error, error_field=error_field(error),
        exposure=_exposure(session, [v.id for v, _ in placed])), (422 if error else 200)


def _exposure(session: Any, ids: list[int]) -> dict[int, int]:
    from itembank.exposure import exposure_counts

    return exposure_counts(session, ids)


@bp.post("/forms/<code>/items")
@role_required(*ROLES)
def form_items(code: str) -> Any:
    """Add, remove or (un)score a placed item, or publish the form."""
    session = db_session()
    form = _form(code)
    action = request.form.get("action", "")
    try:
        raw_id = request.form.get("version_id", "")
        version = session.get(ItemVersion, int(raw_id)) if is_whole(raw_id) else None
        if action == "publish":
            forms.publish_form(session, form)
            message = f"Form {form.code} published: its items are fixed."
        elif version is None:
            raise forms.FormError("choose an item version", field="version_id")
        elif action == "add":
            forms.add_to_form(session, form, version,
                              scored=request.form.get("slot", "scored") == "scored")
            message = "Item added."
        elif action == "remove":
            forms.remove_from_form(session, form, version.id)
            message = "Item removed."
        elif action in ("score", "unscore"):
            forms.set_scored(session, form, version.id, action == "score")
            message = "Item changed."
        else:
            raise forms.FormError(f"unknown action {action!r}", field="action")
    except DomainError as exc:
        session.rollback()
        return form_builder(code, error=exc)
    session.commit()
    flash(message, "success")
    return redirect(url_for("builder.form_builder", code=form.code))
