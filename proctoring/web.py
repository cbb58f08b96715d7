"""Plug proctoring into the Flask app: ``init_app(app)`` is called by ``assessment.app``.

Registers the candidate's and the proctor's views, the identity start gate, the runner state
contributor and runner script, the header links and the image vault (key from configuration).
A :class:`~microcred.errors.DomainError` becomes a 4xx in the app's one domain-error handler.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask

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
    from proctoring import candidate, console, lane, wiring

    vault = ImageVault(load_key(app.instance_path), max_pixels=max_image_pixels())
    app.extensions["microcred.proctoring"] = ProctoringConfig(
        vault=vault, retention_days=retention_days(),
        identity_attempts=AttemptLimit.from_env())
    assert candidate.bp is console.bp is bp  # the modules add their routes to bp on import
    app.register_blueprint(bp)
    w = app.extensions["microcred.wiring"]
    w.start_gates.append(wiring.identity_gate)
    w.state_contributors.append(wiring.runner_extras)
    w.heartbeat_parts.append(wiring.heartbeat_part())
    w.runner_scripts.append(f"{app.static_url_path}/{RUNNER_SCRIPT}")
    # the runner's frames and event batches, answered in front of Flask in their usual case
    w.lane_routes.extend(lane.routes(vault, candidate.SNAPSHOT_MAX_BYTES))
    for role in ("proctor", "admin"):
        w.nav_links.append((role, "proctoring.console", "Proctor console"))
        w.nav_links.append((role, "proctoring.review_queue", "Review queue"))
    w.nav_links.append(("admin", "proctoring.assignments", "Proctor assignments"))

