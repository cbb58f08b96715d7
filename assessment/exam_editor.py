"""The exam editor (admin): what a candidate sits, on which forms or linear-on-the-fly, for how
long, when, how often, under which proctoring, and which achievement a pass earns.

A thin view over :func:`assessment.exams.save_exam` (which checks every field and names the one
it refuses), the policy sections' own validators (``microcred.policy``) and credentials' public
:func:`credentials.issuance.link_exam_achievement`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from assessment.exams import Exam, ExamError, exam_by_code, save_exam
from itembank.assembly import AssemblyError, target_from_fields
from itembank.models import FIXED, Form
from itembank.models import Blueprint as BlueprintRow
from microcred.errors import DomainError
from microcred.web import db_session, role_required

bp = Blueprint("exam_editor", __name__, url_prefix="/admin/exams")
ROLES = ("admin",)
IDENTITY_CHOICES = ("proctor", "none")
REVIEW_CHOICES = ("flagged", "always", "never")


@bp.record_once
def _nav(state: Any) -> None:
    state.app.extensions["microcred.wiring"].nav_links.append(
        ("admin", "exam_editor.exams_page", "Exams"))


@bp.get("/")
@role_required(*ROLES)
def exams_page() -> str:
    from assessment.psych.cuts import passing_standards

    session = db_session()
    exams = session.scalars(select(Exam).order_by(Exam.code)).all()
    return render_template("admin/exams.html", exams=exams,
                           standards=passing_standards(session, [e.id for e in exams]))


def _identity_choices() -> tuple[str, ...]:
    try:
        from proctoring.policy import IDENTITY_ALIASES
    except ModuleNotFoundError:
        return IDENTITY_CHOICES
    return tuple(IDENTITY_ALIASES)


def _when(name: str) -> dt.datetime | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        return dt.datetime.fromisoformat(raw).replace(tzinfo=dt.UTC)
    except ValueError:
        raise ExamError(f"{name.replace('_', ' ')} must be a date and time such as "
                        "2027-01-31T09:00", field=name) from None


def _whole(name: str, *, low: int, high: int) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ExamError(f"{name.replace('_', ' ')} must be a whole number from {low} to {high}",
                        field=name)
    return int(raw)


def _number(name: str, default: float | None = None) -> float | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ExamError(f"{name.replace('_', ' ')} must be a number", field=name) from None


def _policy(existing: dict[str, Any]) -> dict[str, Any]:
    """The policy from the form: retake rules and proctoring, other sections kept as they are."""
    f = request.form
    policy = {k: v for k, v in (existing or {}).items() if k not in ("retake", "proctoring")}
    retake: dict[str, Any] = {"wait_hours": _whole("wait_hours", low=0, high=24 * 366) or 0}
    attempts = _whole("max_attempts", low=1, high=1000)
    if attempts is not None:
        retake["max_attempts"] = attempts
    policy["retake"] = retake
    if f.get("proctored"):
        kept = dict((existing or {}).get("proctoring") or {})
        kept.update({"identity": f.get("identity", "proctor"),
                     "review": f.get("review", "flagged"),
                     "fullscreen": bool(f.get("fullscreen")),
                     "snapshot_interval_s": _whole("snapshot_interval_s", low=0, high=3600)
                     or 0})
        kept.pop("enabled", None)
        policy["proctoring"] = kept
    return policy


def _save(session: Any, exam: Exam | None) -> Exam:
    f = request.form
    blueprint = session.scalar(select(BlueprintRow).where(
        BlueprintRow.code == f.get("blueprint", "")))
    if blueprint is None:
        raise ExamError("choose the blueprint the exam is built to", field="blueprint")
    form_codes = f.getlist("forms")
    forms = list(session.scalars(select(Form).where(Form.code.in_(form_codes)))) \
        if form_codes else []
    minutes = _number("time_limit_minutes")
    try:
        assembly = target_from_fields(
            cut_theta=f.get("cut_theta", ""), exposure_ceiling=f.get("exposure_ceiling", ""),
            curve=f.get("target_curve", ""), tolerance=f.get("tolerance", ""))
    except AssemblyError as exc:
        raise ExamError(exc.message, field=exc.extra.get("field")) from None
    saved = save_exam(
        session, exam=exam, code=f.get("code", ""), title=f.get("title", ""),
        blueprint=blueprint, forms=forms,
        time_limit_seconds=round(minutes * 60) if minutes is not None else 0,
        pass_percent=_number("pass_percent", 0.0), delivery_mode=f.get("delivery_mode", ""),
        assembly=assembly, opens_at=_when("opens_at"), closes_at=_when("closes_at"),
        policy=_policy(exam.policy if exam else {}),
        is_open=bool(f.get("is_open")), description=f.get("description", "").strip(),
        program_name=f.get("program_name", "").strip(),
        instructions=[line.strip() for line in f.get("instructions", "").splitlines()
                      if line.strip()],
        agreement=f.get("agreement", "").strip(),
        shuffle_items=bool(f.get("shuffle_items")),
        shuffle_options=bool(f.get("shuffle_options")))
    from credentials.issuance import link_exam_achievement

    link_exam_achievement(session, saved.id, f.get("achievement") or None)
    return saved


@bp.route("/new", methods=["GET", "POST"], defaults={"code": None})
@bp.route("/<code>", methods=["GET", "POST"])
@role_required(*ROLES)
def exam_editor(code: str | None) -> Any:
    from credentials.issuance import achievement_choices, exam_achievement

    session = db_session()
    exam = exam_by_code(session, code) if code else None
    if code and exam is None:
        abort(404)
    error = None
    if request.method == "POST":
        try:
            saved = _save(session, exam)
        except DomainError as exc:
            session.rollback()
            error = exc
            exam = exam_by_code(session, code) if code else None
        else:
            session.commit()
            flash(f"Exam {saved.code} saved.", "success")
            return redirect(url_for("exam_editor.exam_editor", code=saved.code))
    achievement = exam_achievement(session, exam.id) if exam else None
    target = (exam.assembly or {}).get("target") if exam else None
    curve_text = ", ".join(f"{t:g}:{i:g}" for t, i in zip(target["thetas"],
                                                          target["information"])) \
        if target else ""
    return render_template(
        "admin/exam.html", exam=exam, error=error,
        error_field=(getattr(error, "field", None) or error.extra.get("field"))
        if error else None,
        posted=request.form if error else None,
        blueprints=session.scalars(select(BlueprintRow).order_by(BlueprintRow.code)).all(),
        forms=session.scalars(select(Form).where(Form.kind == FIXED,
                                                 Form.is_published.is_(True))
                              .order_by(Form.code)).all(),
        active_forms={ef.form_id for ef in exam.forms if ef.active} if exam else set(),
        achievements=achievement_choices(session),
        achievement=achievement.code if achievement else "",
        identity_choices=_identity_choices(), review_choices=REVIEW_CHOICES,
        curve_text=curve_text,
        ), (422 if error else 200)
