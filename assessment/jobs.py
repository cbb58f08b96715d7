"""The app's and the worker's job queue, built from the settings (:mod:`microcred.jobs`).

``MICROCRED_REDIS_URL`` set: huey's Redis backend, shared by every node; unset: huey's SQLite
backend in ``instance/jobs.db``. Huey's ``immediate`` mode is only ever asked for explicitly,
by tests (``create_app(..., JOBS_IMMEDIATE=True)``); no setting turns it on.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from assessment.config import Settings
from microcred.jobs import JobQueue, make_huey, set_enqueuer

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


_process_queue: list[Callable[[], JobQueue]] = []
_pinned: list[bool] = [False]


def use_process_queue(make_queue: Callable[[], JobQueue] | None, *, pin: bool = False) -> None:
    """Outside a request (a CLI command such as ``microcred sweep``), the jobs that commits ask
    for (``microcred.jobs.enqueue_after_commit``) go to the queue ``make_queue`` builds on first
    use; None: forget it. A queue set with ``pin`` (tests: one that runs jobs at once) is kept
    until it is forgotten: a command does not replace it with the settings' queue."""
    if make_queue is not None and _pinned[0] and not pin:
        return
    _process_queue.clear()
    _pinned[0] = pin and make_queue is not None
    if make_queue is not None:
        built: list[JobQueue] = []

        def once() -> JobQueue:
            if not built:
                built.append(make_queue())
            return built[0]

        _process_queue.append(once)


def enqueue(name: str, *args) -> None:
    """Queue ``name`` on the current app's queue in a request, else on the process's."""
    from flask import has_app_context

    if has_app_context():
        app_queue().enqueue(name, *args)
    elif _process_queue:
        _process_queue[0]().enqueue(name, *args)
    else:
        raise RuntimeError("no job queue in this process (neither an app nor a command's)")


set_enqueuer(enqueue)
