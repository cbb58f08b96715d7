"""Pathway pages, on credentials' blueprint: the holder's pathway page, the admin's pathways
page (rules, trainings, completions, LMS tokens), the rule editor with its preview of who would
qualify, the program view with its CSV export, and the LMS completions API.

Every answer comes from the one evaluator, :mod:`credentials.pathways`.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from credentials import ce, pathway_rules, pathways, trainings
from credentials.config import current
from credentials.issuance import MAX_VALIDITY_DAYS
from credentials.models import Achievement
from credentials.web import MANAGERS, bp
from microcred.db import utcnow
from microcred.errors import Invalid
from microcred.inputs import json_body, object_list, whole_number
from microcred.records import records
from microcred.web import ApiError, body_limit, db_session, form_page, role_required


def init_app(app: Any) -> None:
    """Exempt the token-authenticated LMS API from CSRF; add the nav links."""
    from microcred.web import runner_wiring

    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(api_training_completions)
    wiring = runner_wiring()
    wiring.nav_links.append(("candidate", "credentials.my_pathways", "My pathways"))
    wiring.nav_links.append(("admin", "credentials.admin_pathways", "Pathways"))


def _award(session: Any, holder_ids: list[int]) -> int:
    """Issue the stacks that completions just completed; how many were issued."""
    people = records().people(session, set(holder_ids))
    return sum(len(pathways.award_completed(session, current(), people[h]))
               for h in holder_ids if h in people)


# --- the holder -------------------------------------------------------------------------------

@bp.get("/pathways")
@role_required("candidate")
def my_pathways() -> str:
    session = db_session()
    catalog = pathways.Catalog.load(session)
    progress = pathways.holder_pathways(session, current_user.id, catalog=catalog)
    held = pathways.holdings(session, current_user.id)
    holding = sorted(held.credentials.values(),
                     key=lambda s: (not s.valid, s.credential.achievement.name))
    gates = [(catalog.exams[e], pathways.eligible_for_exam(session, current_user.id, e,
                                                           catalog=catalog))
             for e in sorted(catalog.exam_rules) if e in catalog.exams]
    trainings_done = [(t, held.completions.get(t.id)) for t in catalog.trainings.values()
                      if t.id in held.completions]
    # CE progress by the one CE module, as the renewals page and the reminders count it
    cycles = ce.cycles(session, current_user.id, held.now)
    return render_template("credentials/pathways.html", progress=progress, holding=holding,
                           gates=gates, trainings_done=trainings_done, now=held.now,
                           cycles=cycles, show=ce.show)


# --- administration ---------------------------------------------------------------------------

@bp.get("/admin/pathways")
@role_required(*MANAGERS)
def admin_pathways() -> str:
    session = db_session()
    catalog = pathways.Catalog.load(session)
    stacks = [(a, catalog.stack_rules[a.id]) for a in catalog.pathways()]
    candidates = sorted((a for a in catalog.achievements.values()
                         if a.exam_id is None and a.id not in catalog.stack_rules),
                        key=lambda a: a.code)
    exam_rules = [(catalog.exams[e], r) for e, r in catalog.exam_rules.items()
                  if e in catalog.exams]
    return render_template(
        "credentials/admin_pathways.html", catalog=catalog, stacks=stacks,
        other_achievements=candidates, exam_rules=exam_rules,
        exams=sorted(catalog.exams.values(), key=lambda e: e.code),
        trainings=trainings.trainings(session), tokens=trainings.tokens(session))


def _editor(subject: dict[str, Any], rule: pathways.Rule | None, *, required_text: str,
            electives_text: str, problem: pathway_rules.RuleError | None = None,
            preview: tuple | None = None, status: int = 200) -> tuple[str, int]:
    return render_template(
        "credentials/rule_editor.html", subject=subject, rule=rule,
        required_text=required_text, electives_text=electives_text, problem=problem,
        problem_field=problem.extra.get("field") if problem else None,
        preview=preview, catalog=pathways.Catalog.load(db_session())), status


def _rule_texts(rule: pathways.Rule | None) -> tuple[str, str]:
    if rule is None:
        return "", ""
    return (", ".join(str(r) for r in rule.required),
            "\n".join(f"{g.choose} of " + ", ".join(str(r) for r in g.options)
                      for g in rule.electives))


def _edit_rule(subject: dict[str, Any], rule: pathways.Rule | None,
               achievement: Achievement | None, exam_id: int | None) -> Any:
    session = db_session()
    if request.method == "GET":
        req, elec = _rule_texts(rule)
        return _editor(subject, rule, required_text=req, electives_text=elec)
    req, elec = request.form.get("required", ""), request.form.get("electives", "")
    try:
        new = pathway_rules.parse(req, elec)
        if request.form.get("action") == "preview":
            shown = pathway_rules.preview(session, new, achievement=achievement,
                                          exam_id=exam_id)
            return _editor(subject, new, required_text=req, electives_text=elec,
                           preview=shown)
        pathway_rules.save(session, new, achievement=achievement, exam_id=exam_id,
                           by_user_id=current_user.id)
    except pathway_rules.RuleError as exc:
        session.rollback()
        return _editor(subject, rule, required_text=req, electives_text=elec, problem=exc,
                       status=422)
    issued = 0
    if achievement is not None:
        session.flush()
        issued = _award(session, pathway_rules.holders(session))
    session.commit()
    flash("Rule saved." + (f" {issued} stack credential(s) issued to holders who now complete "
                           "it." if issued else ""), "success")
    return redirect(request.path)


@bp.get("/admin/pathways/stack")
@role_required(*MANAGERS)
def admin_stack_pick() -> Any:
    """The picker's choice, as the editor's address."""
    code = request.args.get("code", "")
    return redirect(url_for("credentials.admin_stack_rule", code=code) if code
                    else url_for("credentials.admin_pathways"))


@bp.route("/admin/pathways/stacks/<code>", methods=["GET", "POST"])
@role_required(*MANAGERS)
def admin_stack_rule(code: str) -> Any:
    session = db_session()
    a = session.scalar(select(Achievement).where(Achievement.code == code))
    if a is None:
        abort(404)
    subject = {"kind": "stack", "title": f"{a.name}", "code": a.code,
               "earned_by_exam": a.exam_id is not None}
    return _edit_rule(subject, pathways.rule_for(session, a), a, None)


@bp.route("/admin/pathways/exams/<int:exam_id>", methods=["GET", "POST"])
@role_required(*MANAGERS)
def admin_exam_rule(exam_id: int) -> Any:
    session = db_session()
    exam = records().exam(session, exam_id)
    if exam is None:
        abort(404)
    subject = {"kind": "exam", "title": exam.title, "code": exam.code, "earned_by_exam": False}
    return _edit_rule(subject, pathways.exam_rule(session, exam_id), None, exam_id)


@bp.post("/admin/pathways/trainings")
@form_page("credentials.admin_pathways")
@role_required(*MANAGERS)
def admin_create_training() -> Any:
    session = db_session()
    f = request.form
    t = trainings.create_training(
        session, code=f.get("code", ""), name=f.get("name", ""),
        description=f.get("description", ""),
        validity_days=whole_number(f.get("validity_days"), "validity_days", low=1,
                                   high=MAX_VALIDITY_DAYS))
    session.commit()
    flash(f"Training {t.code} created; name it in a rule as training:{t.code}.", "success")
    return redirect(url_for("credentials.admin_pathways") + "#trainings")


@bp.post("/admin/pathways/completions")
@form_page("credentials.admin_pathways")
@role_required(*MANAGERS)
def admin_record_completion() -> Any:
    session = db_session()
    f = request.form
    rows = trainings.validate_completions(session, [("the form", {
        "email": f.get("email", ""), "training": f.get("training", ""),
        "completed_on": f.get("completed_on", ""), "reference": f.get("reference") or None})])
    new, holders = trainings.record(session, rows, source="admin", by_user_id=current_user.id)
    issued = _award(session, holders)
    session.commit()
    flash(("Completion recorded." if new else "That completion was already recorded.")
          + (f" {issued} stack credential(s) issued." if issued else ""), "success")
    return redirect(url_for("credentials.admin_pathways") + "#completions")


@bp.post("/admin/pathways/completions.csv")
@form_page("credentials.admin_pathways")
@role_required(*MANAGERS)
@body_limit(trainings.MAX_CSV_BYTES + 64 * 1024)
def admin_import_completions() -> Any:
    session = db_session()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise trainings.TrainingError("choose a CSV file to import", field="file")
    new, holders = trainings.import_csv(session, upload.read(), by_user_id=current_user.id)
    issued = _award(session, holders)
    session.commit()
    flash(f"Imported {len(new)} new completion(s) for {len(holders)} holder(s)."
          + (f" {issued} stack credential(s) issued." if issued else ""), "success")
    return redirect(url_for("credentials.admin_pathways") + "#completions")


@bp.post("/admin/pathways/tokens")
@form_page("credentials.admin_pathways")
@role_required(*MANAGERS)
def admin_issue_token() -> Any:
    session = db_session()
    row, token = trainings.issue_token(session, name=request.form.get("name", ""),
                                       by_user_id=current_user.id)
    session.commit()
    # shown once, on this response only: never stored, never put in a URL
    return render_template("credentials/token_issued.html", row=row, token=token)


@bp.post("/admin/pathways/tokens/<int:token_id>/revoke")
@form_page("credentials.admin_pathways")
@role_required(*MANAGERS)
def admin_revoke_token(token_id: int) -> Any:
    session = db_session()
    trainings.revoke_token(session, token_id)
    session.commit()
    flash("Token revoked: the LMS can no longer post with it.", "success")
    return redirect(url_for("credentials.admin_pathways") + "#tokens")


# --- the program view -------------------------------------------------------------------------

def _program_rows(session: Any, close_within: int) -> list[dict[str, Any]]:
    catalog = pathways.Catalog.load(session)
    ids = pathways.holders(session)
    held = pathways.holdings_of(session, ids)
    people = records().people(session, set(ids))
    rows = []
    for a in catalog.pathways():
        for h in ids:
            p = pathways.evaluate(session, h, a, catalog=catalog, held=held[h])
            if not p.started and p.held is None:
                continue
            person = people.get(h)
            status = "holds" if p.held else "complete" if p.complete else "in progress"
            rows.append({
                "pathway": a, "holder_id": h, "progress": p, "status": status,
                "name": person.display_name if person else f"user {h}",
                "email": person.email if person else "",
                "close": status == "in progress" and p.still_needed <= close_within,
                "missing": "; ".join(c.name for c in p.missing),
                "expires": p.held.valid_until if p.held else p.expires_at,
            })
    return rows


@bp.get("/admin/pathways/program")
@role_required(*MANAGERS)
def admin_program() -> Any:
    session = db_session()
    close_within = whole_number(request.args.get("close"), "close", low=1, high=50, default=1)
    rows = _program_rows(session, close_within)
    if request.args.get("format") == "csv":
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["pathway_code", "pathway", "holder", "email", "status", "counted",
                    "needed", "still_needed", "close", "missing", "expires"])
        for r in rows:
            p = r["progress"]
            w.writerow([r["pathway"].code, r["pathway"].name, _cell(r["name"]),
                        _cell(r["email"]), r["status"], p.total_needed - p.still_needed,
                        p.total_needed, p.still_needed, "yes" if r["close"] else "no",
                        _cell(r["missing"]),
                        r["expires"].date().isoformat() if r["expires"] else ""])
        resp = Response(out.getvalue(), mimetype="text/csv")
        resp.headers["Content-Disposition"] = 'attachment; filename="pathways.csv"'
        return resp
    return render_template("credentials/program.html", rows=rows, close_within=close_within,
                           now=utcnow())


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- the LMS completions API ------------------------------------------------------------------

@bp.post("/api/training-completions")
@body_limit(trainings.MAX_CSV_BYTES)
def api_training_completions() -> Response:
    """An LMS posts ``{"completions": [{"email", "training", "completed_on", "reference"?}]}``
    with ``Authorization: Bearer <token>``; all are recorded, or none (422 listing each bad
    entry)."""
    session = db_session()
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(401, "not_authenticated",
                       "send the LMS token as 'Authorization: Bearer <token>'")
    who = trainings.token_name(session, presented.strip())
    if who is None:
        raise ApiError(401, "not_authenticated", "the token is not valid (unknown or revoked)")
    try:
        entries = object_list(json_body(), "completions", most=trainings.MAX_ROWS)
    except Invalid as exc:
        raise ApiError(422, "invalid", exc.message, **exc.extra) from None
    try:
        rows = trainings.validate_completions(session, entries)
    except trainings.TrainingError as exc:
        raise ApiError(422, exc.code, exc.message, errors=exc.errors) from None
    new, holders = trainings.record(session, rows, source="lms")
    issued = _award(session, holders)
    session.commit()
    return Response(json.dumps(
        {"recorded": len(new), "already_recorded": len(rows) - len(new),
         "holders": len(holders), "credentials_issued": issued, "token": who}),
        status=201 if new else 200, mimetype="application/json")
