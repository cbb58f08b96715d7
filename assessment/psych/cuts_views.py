"""The cut adoption page, ``/psych/exams/<code>/cuts``, and the cut rescoring of released
results: thin views over :mod:`assessment.psych.cuts` and :mod:`assessment.delivery.rescore`.

``GET /psych/exams/<code>/cuts?theta=<float>&study=<id>`` prefills a proposal (a study's link
lands here) and shows what it implies; ``POST`` adopts it with a reason. Nothing on these pages
reaches a candidate: they are the psychometrician's.
"""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from assessment.psych.cuts import (
    DEFAULTS,
    ROUNDING,
    SCORING,
    CutRefused,
    adopt,
    current_cut,
    cut_history,
    parse_cut,
    propose,
    study_recommendation,
)
from assessment.psych.views import ROLES, _exam, bp
from assessment.users import User
from microcred.inputs import is_whole
from microcred.web import db_session, role_required

FIELDS = ("theta", "cut_scale", "slope", "lower", "upper", "decimals", "rounding", "scoring",
          "study")


def _values(source) -> dict[str, str]:
    return {k: source.get(k, "").strip()[:100] for k in FIELDS if source.get(k, "").strip()}


def _people(session, rows) -> dict[int, User]:
    ids = {r.by_id for r in rows}
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}


def _page(code: str, values: dict[str, str], *, reason: str = "", problem: CutRefused | None = None,
          status: int = 200):
    session = db_session()
    exam = _exam(code)
    current = current_cut(session, exam.id)
    history = cut_history(session, exam.id)
    study = None
    if is_whole(values.get("study", "")):
        study = study_recommendation(session, int(values["study"]))
        if study and "theta" not in values and study.get("theta") is not None:
            values["theta"] = f"{float(study['theta']):.4f}"
    if "theta" not in values and current is not None:
        values = {"theta": f"{current.theta_cut:.4f}", "cut_scale": f"{current.scale_cut:g}",
                  "slope": f"{current.scale_slope:g}", "lower": f"{current.scale_lower:g}",
                  "upper": f"{current.scale_upper:g}", "decimals": str(current.scale_decimals),
                  "rounding": current.rounding, "scoring": current.scoring, **values}
    proposal = None
    if "theta" in values:
        try:
            proposal = propose(session, exam, parse_cut(values))
        except CutRefused as exc:
            problem, status = problem or exc, 422
    shown = {**DEFAULTS, **values}
    return render_template(
        "psych/cuts.html", exam=exam, values=shown, proposal=proposal, problem=problem,
        reason=reason, current=current, history=history, people=_people(session, history),
        study=study, scoring=SCORING, rounding=ROUNDING,
    ), status


@bp.get("/exams/<code>/cuts")
@role_required(*ROLES)
def cuts(code: str):
    return _page(code, _values(request.args))


@bp.post("/exams/<code>/cuts")
@role_required(*ROLES)
def adopt_cut(code: str):
    session = db_session()
    exam = _exam(code)
    values = _values(request.form)
    reason = request.form.get("reason", "")
    try:
        row = adopt(session, exam, parse_cut(values), by=current_user, reason=reason)
    except CutRefused as exc:
        session.rollback()
        return _page(code, values, reason=reason[:1000], problem=exc, status=422)
    session.commit()
    flash(f"Cut {row.id} is adopted: theta {row.theta_cut:.3f}, passing scale score "
          f"{row.scale_cut:g}. Attempts finalized from now on are scored by it; results "
          "released earlier change only through a cut rescoring.", "info")
    return redirect(url_for("psych.cuts", code=exam.code)), 303


# ---------------------------------------------------------------- rescoring for a cut change


def _rescoring_page(code: str, *, reason: str = "", problem: str | None = None,
                    status: int = 200):
    from assessment.delivery.models import CutRescoring
    from assessment.delivery.rescore import CutRescoreRefused, preview_cut_rescoring

    session = db_session()
    exam = _exam(code)
    preview = None
    try:
        preview = preview_cut_rescoring(session, exam)
    except CutRescoreRefused as exc:  # no cut adopted: the page says so (a GET is no error)
        problem = problem or exc.message
    done = list(session.scalars(select(CutRescoring).where(CutRescoring.exam_id == exam.id)
                                .order_by(CutRescoring.id.desc())))
    return render_template("psych/cut_rescoring.html", exam=exam, preview=preview,
                           problem=problem, reason=reason, done=done,
                           people=_people(session, done)), status


@bp.get("/exams/<code>/cuts/rescore")
@role_required(*ROLES)
def cut_rescoring(code: str):
    return _rescoring_page(code)


@bp.post("/exams/<code>/cuts/rescore")
@role_required(*ROLES)
def apply_cut_rescoring(code: str):
    from assessment.delivery.rescore import CutRescoreRefused
    from assessment.delivery.rescore import apply_cut_rescoring as apply

    session = db_session()
    exam = _exam(code)
    reason = request.form.get("reason", "")
    try:
        row = apply(session, exam, by=current_user, reason=reason,
                    digest=request.form.get("digest", ""))
    except CutRescoreRefused as exc:
        session.rollback()
        return _rescoring_page(code, reason=reason[:1000], problem=exc.message, status=409)
    session.commit()
    flash(f"Rescoring {row.id} is applied: {row.rescored} results superseded, "
          f"{len(row.flips)} decisions flipped.", "info")
    return redirect(url_for("psych.cut_rescoring", code=exam.code)), 303
