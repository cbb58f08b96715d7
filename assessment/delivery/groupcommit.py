"""Group commit: the fast lane's saves that arrive together share one SQLite transaction.

On SQLite with ``synchronous=FULL`` (chosen on purpose: an acknowledged save survives a power
cut) every commit waits for an fsync of the WAL, ~6 ms on this machine, so one database file
commits at most ~170 transactions a second, however little each holds. Saves are tiny; what
limits them is the number of commits. So within a web process, saves that arrive while a
commit is under way are gathered and committed together in the next transaction:

- there is no timer: the first save of an idle process commits at once, alone, exactly as
  before (no savepoint, no added latency); saves that arrive meanwhile queue, and the thread
  that finds no commit under way takes the whole queue (at most :data:`MAX_BATCH`) as the
  next group. The wait a save sees is the commit before its own, which it would have waited
  for on SQLite's write lock anyway;
- the saves of a group run one after the other in the shared transaction, with no savepoint
  of their own (each savepoint and its release were two more statements a save, each a time
  the leading thread gave Python's lock up to SQLite and waited to get it back, the write lock
  held all the while). When one declines (another's attempt, time up, a bad answer) or meets
  a database error, the group's transaction is rolled back and the group run again, each save
  in a savepoint of its own: the one declined or failed is rolled back to its savepoint and
  goes to Flask as before (the full path, its own transaction); the others are unaffected;
- every save of a group gets its answer only after the group's COMMIT returned: nothing is
  acknowledged that is not durable. If the COMMIT (or anything outside a savepoint) fails,
  the transaction is rolled back and every save of the group goes to Flask, one transaction
  each (the per-save path), which stores it or answers the error. So durability is what it
  was: an ack means the save is in a committed, fsynced transaction.

Only threaded web processes (gunicorn ``--threads`` > 1, granian) ever form groups of more
than one; a sync worker runs one request at a time and every group is a single save.

The runner's other frequent writes (a camera frame, a batch of integrity events) join the
groups too: at 5,000 candidates they were about 100 of the node's 270 write transactions a
second. In their usual case the view looks at what it needs before the lock and hands the group
a plain work function, as a save's (``microcred.web.write_statements``,
``proctoring.hotwrites``). Their full path (a flag to raise) needs the request's own thread
(Flask's ``g``, the signed-in user), so it joins through :meth:`GroupCommitter.run_here`: when
the group reaches such a write, the thread leading the group hands the shared connection to
the request's thread, which runs its writes in its savepoint and hands it back; it is answered
after the same COMMIT, or, when the group failed, does its writes again in a transaction of its
own (``microcred.web.write_together``).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

#: saves per transaction at most: bounds the time the write lock is held by one group
MAX_BATCH = 64

#: ``work(connection)``: writes on the connection, returns the answer or None (declined: what
#: it wrote is rolled back); it must neither commit nor roll back itself
Work = Callable[[Connection], Any]


class _Job:
    __slots__ = ("conn", "done", "error", "fatal", "owner", "pending", "result", "turn_over",
                 "wake", "work")

    def __init__(self, work: Work, owner: int | None = None) -> None:
        self.work = work
        #: the thread that must run ``work`` (:meth:`GroupCommitter.run_here`); None: any
        self.owner = owner
        #: set to wake this job's thread alone: its turn, its answer, or the lead is free
        self.wake = threading.Event()
        #: the shared connection, while the owner has its turn on it
        self.conn: Connection | None = None
        self.turn_over = threading.Event() if owner is not None else None
        #: a database error that ended the shared transaction, met during the owner's turn
        self.fatal: BaseException | None = None
        self.done = False
        #: the answer until the COMMIT has returned; ``result`` only after it
        self.pending: Any = None
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommitter:
    """Runs ``work`` functions on connections of ``engine`` (SQLite's write engine), several
    to a transaction when they arrive together (see the module's docstring)."""

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.engine, self.max_batch = engine, max_batch
        # guards the queue and the lead; each waiting thread sleeps on its job's own event and
        # is woken alone (a shared condition's notify_all woke every waiting thread of the
        # process at every turn and every commit, and they competed for the GIL to sleep again)
        self._mutex = threading.Lock()
        self._queue: list[_Job] = []
        self._leading = False
        # what the tests and benchmarks read
        self.groups = 0
        self.grouped = 0  # saves committed in groups of more than one
        self.fell_back = 0  # saves sent to the per-save path after a failure
        self.redone = 0  # groups run again each work in a savepoint (one declined or failed)

    def run(self, work: Work) -> Any:
        """``work``'s answer once the transaction that holds it has committed; None when it
        declined or its group failed (nothing of it is stored: the caller takes the full path).
        An exception other than a database error in ``work`` is raised here, in its caller.
        ``work`` may run on another thread (the one leading the group)."""
        return self._run(_Job(work))

    def run_here(self, work: Work) -> Any:
        """As :meth:`run`, but ``work`` runs on this thread, whoever leads the group: it may
        read what belongs to the thread (a Flask request's context). It must use only the
        connection it is given: another write connection would wait for the lock the group
        holds."""
        return self._run(_Job(work, owner=threading.get_ident()))

    def commit_works(self, works: list[Work]) -> list[tuple[Any, BaseException | None]]:
        """Commit ``works`` as one group on this thread (the node's writer process, which runs
        alone: :mod:`microcred.writer`); for each, its answer (None: declined, or the group
        failed: nothing of it stored) and the exception it raised, if any."""
        jobs = [_Job(w) for w in works]
        for start in range(0, len(jobs), self.max_batch):
            self._commit(jobs[start:start + self.max_batch])
        return [(j.result, j.error) for j in jobs]

    def _run(self, job: _Job) -> Any:
        with self._mutex:
            self._queue.append(job)
            lead = not self._leading  # no commit under way: this thread leads, at once
            self._leading = True
        while True:
            if lead:
                self._lead(job)
                lead = False
                if job.done:
                    break
            job.wake.wait()
            job.wake.clear()
            conn = job.conn
            if conn is not None:  # the leader hands this thread its turn on the connection
                try:
                    job.fatal = self._one(conn, job)
                finally:
                    job.conn = None
                    job.turn_over.set()
                continue
            if job.done:
                break
            with self._mutex:  # woken to lead, unless a running thread took the lead first
                if not self._leading:
                    self._leading = lead = True
        if job.error is not None:
            raise job.error
        return job.result

    def _lead(self, job: _Job) -> None:
        """Commit the next group (what has queued, at most ``max_batch``: ``job`` first when it
        is the queue's first), then answer its jobs and wake one job still waiting, if any, to
        lead the next group. The lead is left free meanwhile: a thread arriving with a save takes
        it at once, with no thread to wake."""
        with self._mutex:
            batch = self._queue[:self.max_batch]
            del self._queue[:self.max_batch]
        try:
            self._commit(batch)
        finally:
            for j in batch:
                j.done = True
            with self._mutex:
                self._leading = False
                following = self._queue[0] if self._queue else None
            for j in batch:
                if j is not job:
                    j.wake.set()
            if following is not None:
                following.wake.set()

    def _commit(self, batch: list[_Job]) -> None:
        self.groups += 1
        if len(batch) == 1 and self._runs_here(batch[0]):
            # alone: its own transaction, as without group commit
            job = batch[0]
            try:
                with self.engine.connect() as conn:  # closing rolls back what was not committed
                    answer = job.work(conn)
                    if answer is None:
                        conn.rollback()
                    else:
                        conn.commit()
                job.result = answer  # only once committed
            except DBAPIError:
                pass  # nothing stored: the request takes the full path
            except Exception as exc:  # noqa: BLE001 - raised again in the request's thread
                job.error = exc
            return
        try:
            with self.engine.connect() as conn:
                conn.begin()  # on SQLite's write engine: BEGIN IMMEDIATE and the writer lock
                if not self._together(conn, batch):
                    # a plain work declined or failed: its writes cannot be told from the
                    # others', so all are undone, and run again each in a savepoint (the
                    # process keeps its writer lock meanwhile: nobody of ours goes between)
                    conn.rollback()
                    conn.begin()
                    self.redone += 1
                    for job in batch:
                        job.pending = None
                        self._in_savepoint(conn, job)
                conn.commit()
        except DBAPIError as exc:
            # the group's transaction failed as a whole (the COMMIT: disk full, I/O error; or a
            # savepoint could not be rolled back): nothing of it is stored; each save goes to
            # the per-save path, which stores it or answers the error itself
            log.warning("group commit of %d saves failed (%s); each falls back to its own "
                        "transaction", len(batch), exc.__class__.__name__)
            self.fell_back += len(batch)
            return
        # Answers are handed out only here, after the COMMIT returned: whatever else goes
        # wrong before (any exception, in this thread) leaves every save of the group unanswered
        for job in batch:
            job.result = job.pending
        self.grouped += len(batch)

    def _together(self, conn: Connection, batch: list[_Job]) -> bool:
        """Run the group's works in its transaction, the plain ones (:meth:`run`) with no
        savepoint: nearly every one is stored, and a savepoint and its release are two more
        statements each, two more times the leader gives up Python's lock to SQLite and waits
        to get it back while holding the write lock. False, at once, when a plain work declines
        or fails (the caller undoes them all). A ``run_here`` work keeps its savepoint (its
        request decides on its own thread whether it fails). Raises what ended the
        transaction."""
        for job in batch:
            if job.owner is not None:
                self._in_savepoint(conn, job)
                continue
            try:
                answer = job.work(conn)
            except Exception:  # noqa: BLE001 - run again in its savepoint, which sorts it out
                return False
            if answer is None:
                return False
            job.pending = answer
        return True

    def _in_savepoint(self, conn: Connection, job: _Job) -> None:
        """``job``'s work in a savepoint of the group's transaction, on this thread or its
        owner's; raises what ended the whole transaction."""
        fatal = self._one(conn, job) if self._runs_here(job) else self._hand(conn, job)
        if fatal is not None:
            raise fatal

    @staticmethod
    def _runs_here(job: _Job) -> bool:
        return job.owner is None or job.owner == threading.get_ident()

    def _hand(self, conn: Connection, job: _Job) -> BaseException | None:
        """Give ``job``'s thread its turn on the shared connection and wait for it to end."""
        job.turn_over.clear()  # a second turn (the group run again) waits for its own end
        job.conn = conn
        job.wake.set()
        job.turn_over.wait()
        return job.fatal

    def _one(self, conn: Connection, job: _Job) -> BaseException | None:
        """``job``'s work in a savepoint of the group's transaction. Returns the database error
        that ended the whole transaction (the group fails), else None."""
        savepoint = conn.begin_nested()
        try:
            answer = job.work(conn)
        except DBAPIError as exc:
            if not _in_transaction(conn):
                # the database ended the whole transaction on this error (SQLite: disk full,
                # I/O error; a lost connection): the saves before this one are gone too; the
                # group fails as a whole
                return exc
            try:
                savepoint.rollback()  # this save only; it goes to Flask (its own transaction)
            except DBAPIError as fatal:  # the savepoint could not be rolled back: all fails
                return fatal
            with self._mutex:  # may be a request's thread, in its turn (run_here)
                self.fell_back += 1
            return None
        except Exception as exc:  # noqa: BLE001 - raised again in the request's thread
            savepoint.rollback()
            job.error = exc
            return None
        if answer is None:
            savepoint.rollback()
        else:
            savepoint.commit()  # RELEASE: still inside the group's transaction
            job.pending = answer
        return None


def _in_transaction(conn: Connection) -> bool:
    """Whether the driver's connection is still inside a transaction (after an error in it)."""
    raw = conn.connection.dbapi_connection
    if hasattr(raw, "in_transaction"):  # sqlite3
        return bool(raw.in_transaction)
    info = getattr(raw, "info", None)  # psycopg: the transaction failed but goes on, or ended
    return info is not None and info.transaction_status.name in ("INTRANS", "INERROR")
