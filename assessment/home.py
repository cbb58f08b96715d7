"""The landing page: each role goes to its own workspace."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

bp = Blueprint("home", __name__)

ROLE_HOME = {
    "candidate": "delivery.exams",
    "proctor": "proctoring.console",
    "psychometrician": "psych.index",
    "admin": "admin.index",
}


@bp.get("/")
@login_required
def index():
    endpoint = ROLE_HOME.get(current_user.role)
    from flask import current_app

    if endpoint and endpoint in current_app.view_functions:
        return redirect(url_for(endpoint))
    return render_template("home.html")


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}
