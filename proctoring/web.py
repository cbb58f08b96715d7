"""Plug proctoring into the Flask app: ``init_app(app)`` is called by ``assessment.app``.

Registers the candidate's and the proctor's views, the identity start gate, the runner state
contributor and runner script, the header links, the image vault (key from configuration) and
the error handler that turns a :class:`~proctoring.errors.ProctoringError` into a 4xx.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, flash, make_response, redirect, render_template, request

from microcred.web import ApiError, db_session, same_site_referrer, wants_json
from proctoring.errors import ProctoringError
from proctoring.identity import AttemptLimit
from proctoring.images import ImageVault, load_key, max_image_pixels, retention_days

RUNNER_SCRIPT = "proctor/runner.js"

#: One blueprint for the candidate's and the proctor's views (proctoring.candidate, .console).
bp = Blueprint("proctoring", __name__)


@dataclass
class ProctoringConfig:
    vault: ImageVault
    retention_days: int
    identity_attempts: AttemptLimit


def config(app: Flask | None = None) -> ProctoringConfig:
    from flask import current_app

    return (app or current_app).extensions["microcred.proctoring"]


def init_app(app: Flask) -> None:
    from proctoring import candidate, console, wiring

    app.extensions["microcred.proctoring"] = ProctoringConfig(
        vault=ImageVault(load_key(app.instance_path), max_pixels=max_image_pixels()),
        retention_days=retention_days(), identity_attempts=AttemptLimit.from_env())
    assert candidate.bp is console.bp is bp  # the modules add their routes to bp on import
    app.register_blueprint(bp)
    w = app.extensions["microcred.wiring"]
    w.start_gates.append(wiring.identity_gate)
    w.state_contributors.append(wiring.runner_extras)
    w.runner_scripts.append(f"{app.static_url_path}/{RUNNER_SCRIPT}")
    for role in ("proctor", "admin"):
        w.nav_links.append((role, "proctoring.console", "Proctor console"))
        w.nav_links.append((role, "proctoring.review_queue", "Review queue"))
    w.nav_links.append(("admin", "proctoring.assignments", "Proctor assignments"))

    @app.errorhandler(ProctoringError)
    def _proctoring_error(exc: ProctoringError):
        db_session().rollback()
        if wants_json():
            response = ApiError(exc.status, exc.code, exc.message, **exc.extra).response()
        elif back := (same_site_referrer("") if request.method == "POST" else ""):
            flash(exc.message, "error")
            return redirect(back)
        else:
            response = make_response(
                render_template("error.html", status=exc.status, message=exc.message), exc.status)
        if "retry_after" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retry_after"])
        return response
