"""Counting the faces of camera frames off the request path (issue 15, goal 2).

The face search of a camera frame (``proctoring.faces.count_frame_faces``, BlazeFace run by
OpenCV) costs about 9 ms of CPU on this project's 2-core reference machine, several times
everything else a snapshot upload does (decode, shrink, re-encode, encrypt, store: ~1-3 ms);
the Haar search it replaced cost 50-60 ms. Done in the upload request, that search made
snapshots 90 % of a proctored candidate's server cost, and a node ran out of CPU at about a
thousand candidates sending a frame a minute, with the saves and heartbeats of everyone queued
behind the searches.

So a frame uploaded through the web is stored with ``faces`` None and a :class:`FaceCheck` row
in the same transaction (:func:`queue`); the upload answers at once. The **face checker**
(``microcred faces``, which ``microcred serve`` starts beside the server at a lower CPU
priority, ``--face-workers``) takes the owed checks in batches of up to :data:`BATCH`
(:func:`run_batch`):

- it claims them in one short transaction (a compare-and-set on each row, so two checkers, on
  one node or on many, never count the same frame), the sessions that have ended first
  (``urgent``), then the newest frames first: when checks fall behind, the proctors still see
  the current picture of every candidate judged, and the older frames are judged when the
  load drops;
- it decrypts the frames with no transaction open and hands them to the search
  (:class:`SearchPool` in the checker: processes of their own at the lowest CPU priority);
- in one short transaction, under each frame's session row lock, it writes each count
  (``UPDATE ... WHERE faces IS NULL``: written once), raises the frame's flags
  (``flags.snapshot_faces``, dated when the frame arrived), moves the console row, tells the
  plugins of the frame with its faces (``hook_outbox``), deletes the row, and, when the session
  has ended and this was its last owed check, makes the end-of-exam decision that waited for it
  (``review.after_face_checks``).

**A result never goes out ahead of its frames.** When an exam ends with checks owed and its
policy reviews flagged sessions, the session stays ``submitted`` and the result is held
("awaiting the face check of N camera snapshots", ``review.on_finalized``); its checks become
urgent. The last of them decides as the submission would have: cleared (the result is released)
or sent to review.

**The search runs apart from the transactions.** The checker's own process claims and stores
at the normal CPU priority; only the searches run in the idle class (``SCHED_IDLE``), in
processes that hold no lock. When the checker itself ran idle-class, a web worker sometimes
waited 200-300 ms for the database's write lock while the checker, holding it between two
statements, waited for a CPU that the busy web workers never left idle (priority inversion:
``bench/node_capacity.py --quick`` showed a save p99 of 299 ms at 34 requests/s with the checker,
14 ms without).

A checker killed mid-search leaves its row ``running``; after :data:`LOST_AFTER` another
claims it. A frame that cannot be searched (its image unreadable or purged) is tried
:data:`MAX_ATTEMPTS` times, then marked ``failed`` (the frame stays "not analysed", as it would
have before) and no longer holds anything up.

Frames stored by :func:`events.record_snapshot` from raw bytes (scripts, tests, the console
bench) are counted inline as before.
"""
from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.orm import Session

from microcred.db import utcnow
from microcred.words import plural
from proctoring.faces import count_frame_faces
from proctoring.images import ImageGone, ImageRefused, ImageVault
from proctoring.models import FaceCheck, ProctorSession, Snapshot, StoredImage, console_counted

log = logging.getLogger(__name__)

#: a check claimed this long ago and not done: its checker died (a search takes well under 1 s)
LOST_AFTER = dt.timedelta(minutes=5)
#: a frame that failed this many searches is marked failed and holds nothing up any more
MAX_ATTEMPTS = 3
#: frames claimed and stored together: on SQLite each transaction is a commit with an fsync under
#: the one write lock that every save and upload waits on, so a behind checker writes two
#: transactions per batch rather than two per frame
BATCH = 8
ERROR_LENGTH = 2000


def queue(db: Session, snap: Snapshot) -> None:
    """Owe a face check for ``snap`` (stored in ``db``'s transaction, ``faces`` None): one
    INSERT, written at once (the snapshot's writer holds the session's lock)."""
    db.execute(insert(FaceCheck.__table__).values(
        snapshot_id=snap.id, session_id=snap.session_id, server_at=snap.server_at))


def _still_owed(session_id: int):
    """The session's checks still to be done: pending or claimed, not given up."""
    return and_(FaceCheck.session_id == session_id,
                FaceCheck.state.in_(("pending", "running")))


def owed(db: Session, session_id: int) -> int:
    """How many of the session's frames still wait for their faces (failed ones do not)."""
    return db.scalar(select(func.count()).select_from(FaceCheck)
                     .where(_still_owed(session_id))) or 0


def counting(db: Session, session_id: int) -> set[int]:
    """The session's frames (snapshot ids) whose faces are still being counted."""
    return set(db.scalars(select(FaceCheck.snapshot_id).where(_still_owed(session_id))))


def faces_label(faces: int | None, pending: bool) -> str:
    """What a frame's face count reads as for a proctor or reviewer: "2 faces", "faces being
    counted" (the checker has not got to it yet), or "not analysed" (it could not be)."""
    if faces is not None:
        return plural(faces, "face")
    return "faces being counted" if pending else "not analysed"


def hurry(db: Session, session_id: int) -> int:
    """Put the session's owed checks ahead of every live session's (its exam has ended and its
    result waits for them); how many are owed."""
    db.execute(update(FaceCheck).where(_still_owed(session_id))
               .values(urgent=True).execution_options(synchronize_session=False))
    return owed(db, session_id)


def backlog(db: Session) -> tuple[int, dt.datetime | None]:
    """The checks owed in the deployment and the arrival of the oldest (for the bench and
    the operator: how far the checkers are behind)."""
    count, oldest = db.execute(select(func.count(), func.min(FaceCheck.server_at)).where(
        FaceCheck.state.in_(("pending", "running")))).one()
    db.rollback()
    return count or 0, oldest


@dataclass(frozen=True)
class Claim:
    snapshot_id: int
    session_id: int
    attempts: int
    #: the frame's stored (encrypted) image, read in the claim's transaction
    image: StoredImage = field(compare=False, repr=False)


#: counts the faces of decrypted frames: for each, a count or why it could not be searched
Search = Callable[[list[bytes]], list["int | str"]]


def count_one(image: bytes) -> int | str:
    """The faces in one decrypted frame, or why it could not be searched. Any failure of the
    search is this frame's (unreadable, too large to decode, or a fault in the search itself):
    raised, it would fail the frames searched with it in their batch too."""
    try:
        return count_frame_faces(image).faces
    except (ImageRefused, ValueError) as exc:  # unreadable, or too large to decode
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # e.g. an OpenCV error on a frame it cannot take
        log.exception("face search failed on one frame")
        return f"{type(exc).__name__}: {exc}"


def search_here(images: list[bytes]) -> list[int | str]:
    """The search in this thread (tests, the live-server fixture, ``run_pending``)."""
    return [count_one(image) for image in images]


def _lower_priority(niceness: int, idle: bool) -> None:
    """A search process's start: the lowest CPU priority, one OpenCV thread."""
    import cv2

    if niceness:
        os.nice(niceness)
    if idle and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    cv2.setNumThreads(1)


class SearchPool:
    """The face searches in ``workers`` processes of their own at a lower CPU priority (``nice``
    and, with ``idle``, Linux's ``SCHED_IDLE``: they run only on CPU nothing else wants). They
    hold no lock and no database connection, so a starved search never keeps a web worker
    waiting; the checker's process, which does hold the write lock for its short transactions,
    keeps the normal priority. A search process that dies (a frame that crashes the decoder)
    is replaced and the batch tried once more; a second death is raised (the batch's claims
    are taken again after :data:`LOST_AFTER`, and given up after :data:`MAX_ATTEMPTS`)."""

    def __init__(self, workers: int = 1, *, niceness: int = 10, idle: bool = True) -> None:
        self.workers, self.niceness, self.idle = workers, niceness, idle
        self._lock = threading.Lock()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawned, not forked: the checker has threads and open database connections
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_lower_priority,
                                   initargs=(self.niceness, self.idle))

    def pids(self) -> list[int]:
        """The search processes running now (started on the first search)."""
        return [p.pid for p in (self._pool._processes or {}).values()]

    def __call__(self, images: list[bytes]) -> list[int | str]:
        pool = self._pool
        try:
            return list(pool.map(count_one, images))
        except BrokenProcessPool:
            log.error("face search process died; starting another")
            with self._lock:  # another thread may have replaced it already
                if self._pool is pool:
                    self._pool = self._start()
        return list(self._pool.map(count_one, images))  # a second death is raised

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def claim(db: Session, *, now: dt.datetime | None = None, limit: int = 1) -> list[Claim]:
    """Claim up to ``limit`` checks in one transaction: those whose checker died first, then
    the urgent ones, then the newest frames. Committed; empty when nothing is owed."""
    now = now or utcnow()
    lost = select(FaceCheck.snapshot_id, FaceCheck.state, FaceCheck.attempts).where(
        FaceCheck.state == "running", FaceCheck.claimed_at < now - LOST_AFTER).limit(limit)
    fresh = (select(FaceCheck.snapshot_id, FaceCheck.state, FaceCheck.attempts)
             .where(FaceCheck.state == "pending")
             .order_by(FaceCheck.urgent.desc(), FaceCheck.server_at.desc()).limit(limit + 4))
    won: dict[int, int] = {}
    worn_out: list[tuple[int, str, int]] = []
    for query in (lost, fresh):
        for snapshot_id, state, attempts in db.execute(query).all():
            if len(won) == limit:
                break
            if attempts >= MAX_ATTEMPTS:
                worn_out.append((snapshot_id, state, attempts))
                continue
            if db.execute(
                    update(FaceCheck).where(FaceCheck.snapshot_id == snapshot_id,
                                            FaceCheck.state == state,
                                            FaceCheck.attempts == attempts)
                    .values(state="running", claimed_at=now, attempts=attempts + 1)
                    .execution_options(synchronize_session=False)).rowcount == 1:
                won[snapshot_id] = attempts + 1  # else another checker took it first
    claims = [Claim(snapshot_id, session_id, won[snapshot_id], image)
              for snapshot_id, session_id, image in db.execute(
                  select(Snapshot.id, Snapshot.session_id, StoredImage)
                  .join(StoredImage, StoredImage.id == Snapshot.image_id)
                  .where(Snapshot.id.in_(won)).order_by(Snapshot.id))] if won else []
    db.commit()
    for snapshot_id, state, attempts in worn_out:
        _give_up(db, snapshot_id, state, attempts, "its checker stopped on every try")
    return claims


def run_batch(db: Session, vault: ImageVault, *, now: dt.datetime | None = None,
              limit: int = BATCH, search: Search = search_here) -> list[str]:
    """Count the faces of up to ``limit`` owed frames and store them, claimed (with their
    images) in one transaction and stored in one more (on SQLite, two commits for the batch
    rather than two a frame); what became of each (``done``, ``retry``, ``failed``, ``lost``:
    another checker finished it first). No transaction is open while the frames are decrypted
    and searched (``search``: here, or a :class:`SearchPool`)."""
    claims = claim(db, now=now, limit=limit)
    if not claims:
        return []
    counted: dict[int, int | str] = {}  # snapshot -> a count, or why it could not be searched
    plain: dict[int, bytes] = {}
    for c in claims:
        try:
            plain[c.snapshot_id] = vault.open(c.image)
        except (ImageGone, InvalidTag, ValueError) as exc:  # purged, altered, or another key
            counted[c.snapshot_id] = f"{type(exc).__name__}: {exc}"
    counted.update(zip(plain, search(list(plain.values()))))
    out = []
    for c in sorted(claims, key=lambda c: c.session_id):  # locks in one order
        faces = counted[c.snapshot_id]
        if isinstance(faces, str):
            out.append(_failed(db, c, faces))
        else:
            out.append("done" if _store_one(db, c, faces) else "lost")
    db.commit()
    return out


def run_one(db: Session, vault: ImageVault, *, now: dt.datetime | None = None) -> str | None:
    """Count the faces of the next owed frame and store them; what became of it (see
    :func:`run_batch`), None when nothing is owed."""
    done = run_batch(db, vault, now=now, limit=1)
    return done[0] if done else None


def run_pending(db: Session, vault: ImageVault, *, limit: int | None = None) -> int:
    """Run checks until none is owed (or ``limit``); how many were run."""
    done = 0
    while limit is None or done < limit:
        batch = run_batch(db, vault, limit=BATCH if limit is None else min(BATCH, limit - done))
        if not batch:
            break
        done += len(batch)
    return done


def _store_one(db: Session, c: Claim, faces: int) -> bool:
    """Under the session's row lock: the count (written once), the frame's flags, the console
    row, the plugins told, the deferred end-of-exam decision; False (nothing written) when this
    checker was taken for dead and another has the frame now. The caller commits."""
    from proctoring.events import announce_snapshot, raise_flags
    from proctoring.flags import History, snapshot_faces
    from proctoring.review import after_face_checks
    from proctoring.sessions import get_session, policy

    ps = get_session(db, c.session_id, lock=True)
    gone = db.execute(delete(FaceCheck).where(
        FaceCheck.snapshot_id == c.snapshot_id, FaceCheck.state == "running",
        FaceCheck.attempts == c.attempts).execution_options(synchronize_session=False)).rowcount
    if gone != 1:
        return False
    db.execute(update(Snapshot).where(Snapshot.id == c.snapshot_id, Snapshot.faces.is_(None))
               .values(faces=faces).execution_options(synchronize_session=False))
    snap = db.scalar(select(Snapshot).where(Snapshot.id == c.snapshot_id)
                     .execution_options(populate_existing=True))
    specs = list(snapshot_faces(policy(ps), History(events=[], snapshots=[snap],
                                                    now=snap.server_at)))
    raise_flags(db, ps, specs, now=snap.server_at)
    _console_changed(db, ps)
    announce_snapshot(db, ps, snap)
    after_face_checks(db, ps)
    return True


def _console_changed(db: Session, ps: ProctorSession) -> None:
    """The console shows each session's newest frame with its faces: move the row's change
    counter (once per transaction, as ``models._count_console_changes`` does for new rows)."""
    counted = console_counted(db)
    if ps.id in counted:
        return
    db.execute(update(ProctorSession).where(ProctorSession.id == ps.id)
               .values(console_version=ProctorSession.console_version + 1)
               .execution_options(synchronize_session=False))
    counted.add(ps.id)


def _failed(db: Session, c: Claim, error: str) -> str:
    """A search that could not run: owed again, or given up after :data:`MAX_ATTEMPTS`. The
    caller commits."""
    if c.attempts < MAX_ATTEMPTS:
        db.execute(update(FaceCheck).where(FaceCheck.snapshot_id == c.snapshot_id,
                                           FaceCheck.state == "running",
                                           FaceCheck.attempts == c.attempts)
                   .values(state="pending", error=error[:ERROR_LENGTH])
                   .execution_options(synchronize_session=False))
        log.warning("face check of snapshot %s failed (try %s): %s", c.snapshot_id,
                    c.attempts, error)
        return "retry"
    _give_up(db, c.snapshot_id, "running", c.attempts, error, commit=False)
    return "failed"


def _give_up(db: Session, snapshot_id: int, state: str, attempts: int, error: str, *,
             commit: bool = True) -> None:
    from proctoring.review import after_face_checks
    from proctoring.sessions import get_session

    session_id = db.scalar(select(FaceCheck.session_id).where(FaceCheck.snapshot_id == snapshot_id))
    if session_id is not None:
        ps = get_session(db, session_id, lock=True)
        won = db.execute(update(FaceCheck).where(
            and_(FaceCheck.snapshot_id == snapshot_id, FaceCheck.state == state,
                 FaceCheck.attempts == attempts))
            .values(state="failed", error=error[:ERROR_LENGTH])
            .execution_options(synchronize_session=False)).rowcount
        if won == 1:
            log.error("face check of snapshot %s given up after %s tries: %s", snapshot_id,
                      attempts, error)
            after_face_checks(db, ps)
    if commit:
        db.commit()


def serve(open_session: Callable[..., Session], vault: ImageVault, *,
          stop: threading.Event, idle_s: float = 0.5, search: Search = search_here) -> None:
    """Run checks until ``stop`` is set, looking every ``idle_s`` for one owed. The look is a
    read (``open_session(write=False)``: on SQLite it takes no write lock); only a check to run
    opens a writing session. A database error is logged and the loop goes on after a pause
    (the database may be restarting)."""
    while not stop.is_set():
        try:
            with open_session(write=False) as probe:
                due = _anything_due(probe)
            if due:
                with open_session() as db:
                    while not stop.is_set() and run_batch(db, vault, search=search):
                        pass
        except Exception:  # keep checking after a passing database error
            log.exception("face checker: a check failed; going on")
            stop.wait(max(idle_s, 2.0))
            continue
        stop.wait(idle_s)


def _anything_due(db: Session, *, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    found = db.scalar(select(FaceCheck.snapshot_id).where(
        (FaceCheck.state == "pending")
        | ((FaceCheck.state == "running") & (FaceCheck.claimed_at < now - LOST_AFTER))).limit(1))
    db.rollback()
    return found is not None


def wait_idle(open_session: Callable[..., Session], *, timeout_s: float) -> bool:
    """Wait until no check is owed (tests and benches); whether that happened in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open_session(write=False) as db:
            if backlog(db)[0] == 0:
                return True
        time.sleep(0.1)
    return False
