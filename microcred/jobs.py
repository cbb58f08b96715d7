"""Background jobs on huey: one queue for every process, embedded by default, on Redis at scale.

Why huey: it is a small, dependable task queue with the two backends Microcred's two shapes
need. On one machine its SQLite backend keeps the queue in a file under ``instance/`` (no
server to install, `make run` works on a fresh machine); beyond one machine its Redis backend
(``MICROCRED_REDIS_URL``) is shared by every app node and worker. Jobs never run on a thread
of a web worker: a ``microcred worker`` process (huey's consumer) runs them, and
``microcred serve`` starts one beside the server.

A package declares jobs as plain functions over a SQLAlchemy ``Session`` decorated with
:func:`job` in the modules its ``Package.jobs`` lists; :func:`load_jobs` imports them, so the
web (which enqueues) and the worker (which runs) know the same tasks by the same names. A job
must be idempotent: huey retries a job that raised, and a retried job must not do its work
twice (a finished calibration run is left alone; a badge is not issued twice).

``immediate`` mode (the job runs inside the call that enqueues it, in memory) exists for tests
only: :func:`make_huey` takes it as an explicit argument that no setting turns on.
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

QUEUE_NAME = "microcred"
SQLITE_FILE = "jobs.db"


@dataclass(frozen=True)
class JobSpec:
    name: str
    function: Callable[..., Any]
    retries: int
    retry_delay: int
    retry_backoff: float = 0


_JOBS: dict[str, JobSpec] = {}


class JobError(RuntimeError):
    """A job that cannot be enqueued (unknown name, queue unreachable); the message says which."""


def job(name: str, *, retries: int = 2, retry_delay: int = 10, retry_backoff: float = 0):
    """Register ``function(session, *args)`` as the job ``name``. The worker opens the session
    (and closes it afterwards); the function commits what it writes. ``retry_backoff`` > 1
    multiplies the delay at each retry (huey's backoff)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        known = _JOBS.get(name)
        if known is not None and known.function is not function:
            raise JobError(f"two jobs are named {name!r}: {known.function.__module__} and "
                           f"{function.__module__}")
        _JOBS[name] = JobSpec(name, function, retries, retry_delay, retry_backoff)
        return function

    return register


def load_jobs() -> dict[str, JobSpec]:
    """Import every registered package's job modules; the registered jobs by name."""
    from microcred.packages import packages

    for package in packages():
        for module in package.jobs:
            importlib.import_module(module)
    return dict(_JOBS)


def make_huey(*, instance_dir: Path, redis_url: str | None, name: str = QUEUE_NAME,
              immediate: bool = False) -> Huey:
    """The huey instance of the settings: Redis when ``redis_url`` is given, else a SQLite
    file under ``instance_dir``; ``immediate`` (tests only) runs each job as it is enqueued."""
    # No result store: a job writes what it did to the database (the run's row); results kept
    # by huey would pile up unread in Redis or the queue file.
    if immediate:
        return Huey(name, immediate=True, results=False)
    if redis_url:
        return RedisHuey(name, url=redis_url, results=False)
    Path(instance_dir).mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(Path(instance_dir) / SQLITE_FILE), results=False)


class JobQueue:
    """A huey instance with every registered job bound to a way of opening database sessions."""

    def __init__(self, huey: Huey, open_session: Callable[[], Any]) -> None:
        self.huey = huey
        self.open_session = open_session
        self._tasks: dict[str, Any] = {}
        for spec in load_jobs().values():
            self._tasks[spec.name] = huey.task(
                name=spec.name, retries=spec.retries, retry_delay=spec.retry_delay,
                **({"retry_backoff": spec.retry_backoff} if spec.retry_backoff else {}),
            )(self._runner(spec))

    @property
    def names(self) -> list[str]:
        return sorted(self._tasks)

    @property
    def backend(self) -> str:
        if self.huey.immediate:
            return "immediate"
        return type(self.huey.storage).__name__.removesuffix("Storage").lower()

    def _runner(self, spec: JobSpec) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            session = self.open_session()
            try:
                return spec.function(session, *args)
            finally:
                session.rollback()  # nothing the job did not commit is kept
                session.close()

        run.__name__ = spec.function.__name__
        return run

    def enqueue(self, name: str, *args: Any) -> Any:
        """Put the job ``name`` with ``args`` on the queue (no result is kept: the job records
        its outcome in the database). Raises
        :class:`JobError` when the name is unknown or the queue's store cannot be reached."""
        task = self._tasks.get(name)
        if task is None:
            raise JobError(f"there is no job named {name!r} (known: {', '.join(sorted(self._tasks))})")
        try:
            return task(*args)
        except Exception as exc:
            if self.huey.immediate:
                raise
            raise JobError(f"the job queue ({self.backend}) could not take job {name!r}: {exc}") from exc


# --- enqueueing when a transaction commits ---------------------------------------------------

#: ``enqueue(name, *args)`` of this process (``assessment.jobs`` sets it: the app's queue in a
#: request, the command's queue in a CLI process); None: nothing can be queued here.
_enqueuer: Callable[..., Any] | None = None
_AFTER_COMMIT = "microcred.jobs.after_commit"
#: jobs of a committed transaction, queued once it has given its connection back
_COMMITTED = "microcred.jobs.committed"
#: the session's transaction is a part of a larger one (a group commit): its jobs wait for
#: :func:`release_jobs`, called once that one has committed
_HELD = "microcred.jobs.held"


def set_enqueuer(enqueue: Callable[..., Any] | None) -> None:
    global _enqueuer
    _enqueuer = enqueue


def enqueue_after_commit(session: Session, name: str, *args: Any) -> None:
    """Queue the job ``name`` once ``session``'s transaction commits (nothing if it rolls back):
    a job never runs for rows that were never written. A failure to queue is logged, not
    raised (the transaction is already committed): write a row the sweeper can find, so a job
    that could not be queued, or was lost, is queued again."""
    session.info.setdefault(_AFTER_COMMIT, []).append((name, args))


def hold_jobs(session: Session) -> None:
    """``session`` commits into a transaction that is not yet durable (its savepoint in a
    group commit, ``microcred.web.write_together``): the jobs its commit owes are kept until
    :func:`release_jobs`, so no job runs for rows whose transaction may still roll back."""
    session.info[_HELD] = True


def release_jobs(session: Session) -> None:
    """Queue the jobs ``session`` owes now that the transaction holding its commit committed."""
    session.info.pop(_HELD, None)
    _queue_committed(session)


@event.listens_for(Session, "after_commit")
def _note_committed(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: the outer transaction may yet roll back
        return
    waiting = session.info.pop(_AFTER_COMMIT, None)
    if waiting:
        session.info.setdefault(_COMMITTED, []).extend(waiting)


@event.listens_for(Session, "after_transaction_end")
def _enqueue_committed(session: Session, transaction: Any) -> None:
    # Queued here, once the committed transaction has given its connection back, not in
    # after_commit: SQLAlchemy calls after_commit before it returns the connection to the pool,
    # and on SQLite the process's write lock (assessment.database._serialise_writers) is held
    # until then, so a queue's own write (huey's SQLite file) or a job run at once (tests'
    # immediate queue) would have run under every other writer's lock.
    if transaction.parent is not None or session.info.get(_HELD):
        return
    _queue_committed(session)


def _queue_committed(session: Session) -> None:
    waiting = session.info.pop(_COMMITTED, None)
    for name, args in waiting or ():
        if _enqueuer is None:
            log.warning("job %s%r not queued: this process has no job queue", name, args)
            continue
        try:
            _enqueuer(name, *args)
        except Exception:  # committed already: the sweeper queues it again
            log.exception("job %s%r could not be queued; the sweeper will queue it again", name, args)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    # only the outermost transaction's rollback: a savepoint's leaves the outer writes standing
    if not session.in_nested_transaction():
        session.info.pop(_AFTER_COMMIT, None)
