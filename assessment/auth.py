"""Sign-in, sign-out and password change.

Sign-in is throttled with growing delays per account-and-address and per address
(assessment/signin_throttle.py). Sign-out and a password change end the user's sessions on the
server (``users.end_sessions``): a copy of an old cookie no longer signs anybody in.
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from assessment.signin_throttle import SigninThrottle
from assessment.users import (
    SigninAttempt,
    UserError,
    end_sessions,
    find_user_by_email,
    replace_password,
    spend_password_check,
)
from microcred.web import db_session, safe_next

bp = Blueprint("auth", __name__)

GENERIC_FAILURE = "That email and password do not match an account."


def _client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def signin_throttle() -> SigninThrottle:
    """The app's throttle, built on first use from its settings (Redis or the database)."""
    ext = current_app.extensions
    if "microcred.signin_throttle" not in ext:
        ext["microcred.signin_throttle"] = SigninThrottle.from_settings(
            current_app.config["MICROCRED"], ext["microcred.database"])
    return ext["microcred.signin_throttle"]


def _release_request_transaction() -> None:
    """End the request session's transaction (opened by loading the signed-in user) before the
    throttle writes through its own connection: on SQLite that transaction holds the write
    lock (``BEGIN IMMEDIATE``), and the throttle would wait for it until the busy timeout."""
    if "db_session" in g:
        g.db_session.commit()


def _wait_words(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{round(seconds / 60)} minutes"


def _too_many(template: str, wait: int, **context):
    flash(f"Too many failed sign-ins. Wait {_wait_words(wait)} and try again.", "error")
    return render_template(template, **context), 429, {"Retry-After": str(wait)}


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    if request.method == "GET":
        return render_template("auth/signin.html", next=safe_next(request.args.get("next"), ""))
    email = (request.form.get("email") or "").strip().lower()[:254]
    password = request.form.get("password") or ""
    address = _client_address()
    form = {"email": email, "next": safe_next(request.form.get("next"), "")}
    if not email or not password:
        flash("Enter your email and your password.", "error")
        return render_template("auth/signin.html", **form), 400
    throttle = signin_throttle()
    _release_request_transaction()
    wait = throttle.reserve(email, address)
    if wait:
        return _too_many("auth/signin.html", wait, **form)
    # Verify in a read transaction: the ~0.1 s argon2 check must not hold SQLite's write lock,
    # which would stall every candidate's autosave meanwhile. The try is already counted.
    with current_app.extensions["microcred.database"].session(write=False) as reader:
        user = find_user_by_email(reader, email)
        # Unknown emails pay for a hash verification too (no timing oracle for existing accounts).
        password_ok = user.check_password(password) if user else spend_password_check(password)
        ok = user is not None and user.is_active and password_ok
    session = db_session()
    session.add(SigninAttempt(email=email, address=address, succeeded=ok))
    session.commit()
    if not ok:
        flash(GENERIC_FAILURE, "error")
        return render_template("auth/signin.html", **form), 401
    throttle.succeeded(email, address)
    login_user(user)
    return redirect(safe_next(request.form.get("next"), url_for("home.index")))


@bp.post("/signout")
def signout():
    if current_user.is_authenticated:
        session = db_session()
        end_sessions(session, current_user._get_current_object())
        session.commit()
    logout_user()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.signin"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    if request.method == "GET":
        return render_template("auth/password.html")
    current = request.form.get("current_password") or ""
    new = request.form.get("new_password") or ""
    user = current_user._get_current_object()
    if not current or not new:
        problem = "enter your current password and a new one"
    elif new != (request.form.get("confirm_password") or ""):
        problem = "the new password and its confirmation are different"
    elif new == current:
        problem = "the new password is the same as the current one"
    else:
        problem = None
    if problem:
        flash(f"Password not changed: {problem}.", "error")
        return render_template("auth/password.html"), 400
    # The current password is a guess like any sign-in: the same throttle counts it.
    throttle, address = signin_throttle(), _client_address()
    _release_request_transaction()
    wait = throttle.reserve(user.email, address)
    if wait:
        return _too_many("auth/password.html", wait)
    if not user.check_password(current):
        flash("Password not changed: your current password is not the one you entered.", "error")
        return render_template("auth/password.html"), 400
    throttle.succeeded(user.email, address)
    session = db_session()
    try:
        replace_password(session, user, new)
    except UserError as exc:
        session.rollback()
        flash(f"Password not changed: {exc}.", "error")
        return render_template("auth/password.html"), 400
    session.commit()
    login_user(user)  # this browser carries on under the new generation; every other one ends
    flash("Password changed. Every other device signed in as you has been signed out.", "info")
    return redirect(url_for("home.index"), code=303)
