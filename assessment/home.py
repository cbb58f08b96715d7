"""The landing page: each role goes to its own workspace."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, send_from_directory, url_for
from flask_login import current_user, login_required

bp = Blueprint("home", __name__)

ROLE_HOME = {
    "candidate": "delivery.exams",
    "proctor": "proctoring.console",
    "psychometrician": "psych.index",
    "admin": "admin.index",
    "item_author": "itembank.items",
    "panelist": "studies.panel_index",
}


@bp.get("/")
@login_required
def index():
    endpoint = ROLE_HOME.get(current_user.role)
    if endpoint and endpoint in current_app.view_functions:
        return redirect(url_for(endpoint))
    return render_template("home.html")


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/favicon.ico")
def favicon():
    """Browsers and feed readers ask for /favicon.ico whatever the page links; pages link the
    SVG (base.html)."""
    return send_from_directory(current_app.static_folder, "favicon.ico",
                               mimetype="image/vnd.microsoft.icon", max_age=86400)
