"""The program manager's pages: users and accommodations."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from assessment.exams import Exam
from assessment.users import (
    Accommodation,
    Role,
    User,
    UserError,
    create_user,
    find_user_by_email,
    grant_accommodation,
    set_active,
)
from microcred.errors import DomainError
from microcred.inputs import InvalidInput, form_id
from microcred.web import db_session, role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


#: Users listed per page of the administration page.
USERS_PER_PAGE = 50
#: Longest search text accepted (an email is at most 254 characters).
MAX_SEARCH = 254


class ListRequestError(DomainError):
    """A search or page number that cannot be served; the message says why."""

    status, code = 400, "bad_list_request"


def _like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, with its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _page_number(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        raise ListRequestError(f"the page number must be a whole number from 1, not {raw!r}")
    return int(raw)


@bp.get("/")
@role_required("admin")
def index():
    session = db_session()
    query = request.args.get("q", "").strip()
    try:
        if len(query) > MAX_SEARCH:
            raise ListRequestError(
                f"the search text is {len(query)} characters long; keep it to {MAX_SEARCH}")
        page = _page_number(request.args.get("page", "1"))
        users_query = select(User)
        if query:
            pattern = _like_pattern(query.lower())
            users_query = users_query.where(or_(
                func.lower(User.email).like(pattern, escape="\\"),
                func.lower(User.display_name).like(pattern, escape="\\"),
            ))
        total = session.scalar(select(func.count()).select_from(users_query.subquery()))
        pages = max(1, -(-total // USERS_PER_PAGE))
        if page > pages:
            raise ListRequestError(
                f"there is no page {page}: {total} users make {pages} page{'s' if pages != 1 else ''}")
    except ListRequestError as exc:
        return render_template("error.html", status=400, message=str(exc)), 400
    users = list(session.scalars(
        users_query.order_by(User.role, User.email)
        .offset((page - 1) * USERS_PER_PAGE).limit(USERS_PER_PAGE)
    ))
    accommodations = list(
        session.scalars(select(Accommodation).order_by(Accommodation.id.desc()).limit(50))
    )
    named = {a.candidate_id for a in accommodations} | {a.granted_by_id for a in accommodations}
    exams = list(session.scalars(select(Exam).order_by(Exam.title)))
    return render_template(
        "admin/index.html",
        users=users,
        query=query,
        page=page,
        pages=pages,
        total=total,
        first=(page - 1) * USERS_PER_PAGE + 1,
        per_page=USERS_PER_PAGE,
        accommodations=accommodations,
        exams=exams,
        users_by_id={u.id: u for u in session.scalars(select(User).where(User.id.in_(named)))},
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


@bp.post("/users/status")
@role_required("admin")
def set_user_status():
    """Deactivate an account (its sessions end at once) or reactivate it."""
    session = db_session()
    email = request.form.get("email", "")
    action = request.form.get("action", "")
    user = find_user_by_email(session, email) if email.strip() else None
    try:
        if action not in ("deactivate", "reactivate"):
            raise UserError(f"unknown action {action!r}; use deactivate or reactivate")
        if user is None:
            raise UserError(f"no user with email {email!r}")
        set_active(session, user, active=action == "reactivate", by=current_user)
    except UserError as exc:
        session.rollback()
        flash(f"Account not changed: {exc}.", "error")
        return redirect(url_for("admin.index")), 303
    session.commit()
    done = "deactivated; every session it had is ended" if action == "deactivate" else "reactivated"
    flash(f"Account {user.email} {done}.", "info")
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
