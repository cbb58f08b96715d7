"""The program manager's pages: users and accommodations."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from assessment.exams import Exam
from assessment.users import (
    Accommodation,
    Role,
    User,
    UserError,
    create_user,
    find_user_by_email,
    grant_accommodation,
)
from microcred.inputs import InvalidInput, form_id
from microcred.web import db_session, role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin")
def index():
    session = db_session()
    users = list(session.scalars(select(User).order_by(User.role, User.email)))
    accommodations = list(
        session.scalars(select(Accommodation).order_by(Accommodation.id.desc()).limit(50))
    )
    exams = list(session.scalars(select(Exam).order_by(Exam.title)))
    return render_template(
        "admin/index.html",
        users=users,
        accommodations=accommodations,
        exams=exams,
        users_by_id={u.id: u for u in users},
        exams_by_id={e.id: e for e in exams},
        roles=[r.value for r in Role],
    )


@bp.post("/users")
@role_required("admin")
def add_user():
    session = db_session()
    try:
        user = create_user(
            session,
            email=request.form.get("email", ""),
            password=request.form.get("password", ""),
            role=request.form.get("role", ""),
            display_name=request.form.get("display_name", ""),
        )
    except UserError as exc:
        session.rollback()
        flash(f"User not created: {exc}.", "error")
        return redirect(url_for("admin.index")), 303
    session.commit()
    flash(f"Created {user.role} {user.email}.", "info")
    return redirect(url_for("admin.index")), 303


@bp.post("/accommodations")
@role_required("admin")
def add_accommodation():
    session = db_session()
    email = request.form.get("candidate_email", "")
    candidate = find_user_by_email(session, email)
    try:
        if candidate is None:
            raise UserError(f"no user with email {email!r}")
        try:
            multiplier = float(request.form.get("time_multiplier", ""))
        except ValueError:
            raise UserError("time multiplier must be a number such as 1.5") from None
        exam_id = form_id("exam_id")
        grant_accommodation(
            session,
            candidate=candidate,
            time_multiplier=multiplier,
            reason=request.form.get("reason", ""),
            granted_by=current_user,
            exam_id=exam_id,
        )
    except (UserError, InvalidInput) as exc:
        session.rollback()
        flash(f"Accommodation not granted: {exc}.", "error")
        return redirect(url_for("admin.index")), 303
    session.commit()
    flash(f"Granted {multiplier}x time to {candidate.email}.", "info")
    return redirect(url_for("admin.index")), 303
