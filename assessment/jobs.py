"""The app's and the worker's job queue, built from the settings (:mod:`microcred.jobs`).

``MICROCRED_REDIS_URL`` set: huey's Redis backend, shared by every node; unset: huey's SQLite
backend in ``instance/jobs.db``. Huey's ``immediate`` mode is only ever asked for explicitly,
by tests (``create_app(..., JOBS_IMMEDIATE=True)``); no setting turns it on.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from assessment.config import Settings
from microcred.jobs import JobQueue, make_huey

_building = threading.Lock()


def build_queue(settings: Settings, open_session: Callable, *, immediate: bool = False) -> JobQueue:
    huey = make_huey(instance_dir=settings.instance_dir, redis_url=settings.redis_url,
                     name=settings.jobs_queue, immediate=immediate)
    return JobQueue(huey, open_session)


def app_queue() -> JobQueue:
    """The current app's queue, built on first use (no Redis connection or queue file until a
    job is enqueued)."""
    from flask import current_app

    app = current_app
    queue = app.extensions.get("microcred.jobs")
    if queue is None:
        with _building:
            queue = app.extensions.get("microcred.jobs")
            if queue is None:
                database = app.extensions["microcred.database"]
                queue = build_queue(app.config["MICROCRED"], database.session,
                                    immediate=bool(app.config.get("JOBS_IMMEDIATE")))
                app.extensions["microcred.jobs"] = queue
    return queue
