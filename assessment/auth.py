"""Sign-in and sign-out, throttled per account and per address."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from assessment.users import (
    SigninAttempt,
    find_user_by_email,
    recent_failures,
    spend_password_check,
)
from microcred.web import db_session

bp = Blueprint("auth", __name__)

GENERIC_FAILURE = "That email and password do not match an account."


def _client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    if request.method == "GET":
        return render_template("auth/signin.html", next=request.args.get("next", ""))
    settings = current_app.config["MICROCRED"]
    email = (request.form.get("email") or "").strip().lower()[:254]
    password = request.form.get("password") or ""
    address = _client_address()
    if not email or not password:
        flash("Enter your email and your password.", "error")
        return render_template("auth/signin.html", email=email, next=request.form.get("next", "")), 400
    window = settings.signin_window_seconds
    # Throttle and verify in a read transaction: the ~0.1 s argon2 check must not hold SQLite's
    # write lock, which would stall every candidate's autosave meanwhile. The price: sign-ins
    # racing each other may pass the limit by the few that are in flight at once.
    with current_app.extensions["microcred.database"].session(write=False) as reader:
        if (
            recent_failures(reader, email=email, window_s=window)
            >= settings.signin_max_failures_per_account
            or recent_failures(reader, address=address, window_s=window)
            >= settings.signin_max_failures_per_address
        ):
            minutes = max(1, window // 60)
            flash(f"Too many failed sign-ins. Wait {minutes} minutes and try again.", "error")
            resp = render_template("auth/signin.html", email=email, next=request.form.get("next", ""))
            return resp, 429, {"Retry-After": str(window)}
        user = find_user_by_email(reader, email)
        # Unknown emails pay for a hash verification too (no timing oracle for existing accounts).
        password_ok = user.check_password(password) if user else spend_password_check(password)
        ok = user is not None and user.is_active and password_ok
    session = db_session()
    session.add(SigninAttempt(email=email, address=address, succeeded=ok))
    session.commit()
    if not ok:
        flash(GENERIC_FAILURE, "error")
        return render_template("auth/signin.html", email=email, next=request.form.get("next", "")), 401
    login_user(user)
    return redirect(_safe_next(request.form.get("next")) or url_for("home.index"))


@bp.post("/signout")
def signout():
    logout_user()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.signin"))
