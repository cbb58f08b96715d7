"""The face checker (``proctoring.face_checks``): a web upload stores the frame and owes its
face search; the checker counts the faces off the request, newest first and the ended sessions
first, raises the frame's flags, tells the plugins, and decides the sessions whose results
waited for it. On SQLite and PostgreSQL, with the real photographs and the real Haar search."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, update

from assessment.delivery import service as delivery
from assessment.delivery.models import ResultRelease
from proctoring import events, face_checks, hook_outbox, hooks, review
from proctoring.models import FaceCheck, Flag, HookCall, ProctorSession, Snapshot, StoredImage


def _started(db, proctored, policy=None):
    ns = proctored({"identity": "none", **(policy or {})})
    attempt = delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    ps = db.scalar(select(ProctorSession).where(ProctorSession.attempt_id == attempt.id))
    return ns, ps, attempt


def _two_started(db, proctored, make_user):
    """Two candidates' proctoring sessions, running in one exam."""
    ns, ps, _attempt = _started(db, proctored)
    attempt = delivery.start_attempt(db, make_user("candidate"), ns.exam, grace_seconds=5)
    db.commit()
    return ps, db.scalar(select(ProctorSession).where(ProctorSession.attempt_id == attempt.id))


def _upload(db, ps, vault, image: bytes, seq: int, *, at: dt.datetime | None = None) -> Snapshot:
    """As the web's snapshot route does: prepared without the face search, then stored."""
    prepared = events.prepare_snapshot(vault, session_id=ps.id, image=image, count=False)
    snap, created = events.record_snapshot(db, ps, vault, seq=seq, image=prepared, now=at)
    db.commit()
    assert created
    return snap


def _release(db, attempt):
    return db.scalar(select(ResultRelease).join_from(ResultRelease, delivery.Result,
                     ResultRelease.result_id == delivery.Result.id)
                     .where(delivery.Result.attempt_id == attempt.id)
                     .order_by(ResultRelease.id.desc()))


def _faces(db, snap_id):
    db.rollback()
    return db.scalar(select(Snapshot.faces).where(Snapshot.id == snap_id))


def test_an_upload_owes_the_search_and_the_checker_does_it(db, proctored, vault, face_jpeg,
                                                            two_faces_jpeg, test_plugin):
    hooks.set_plugin_manager(hooks.make_plugin_manager())
    _ns, ps, _attempt = _started(db, proctored)
    one = _upload(db, ps, vault, face_jpeg, 1)
    two = _upload(db, ps, vault, two_faces_jpeg, 2)
    assert (one.faces, two.faces) == (None, None)
    assert db.scalar(select(func.count()).select_from(Flag)) == 0
    assert face_checks.owed(db, ps.id) == 2
    assert not db.scalars(select(HookCall).where(  # the plugins hear of a frame with its faces
        HookCall.hook == hook_outbox.INTEGRITY_EVENT)).all()
    version = db.scalar(select(ProctorSession.console_version).where(ProctorSession.id == ps.id))

    assert face_checks.run_one(db, vault) == "done"
    assert face_checks.run_one(db, vault) == "done"
    assert face_checks.run_one(db, vault) is None
    assert (_faces(db, one.id), _faces(db, two.id)) == (1, 2)
    assert face_checks.owed(db, ps.id) == 0
    assert not db.scalars(select(FaceCheck)).all()
    flags = db.execute(select(Flag.rule, Flag.key, Flag.at)).all()
    assert [(rule, key) for rule, key, _ in flags] == [("multiple_faces", "s2")]
    assert flags[0].at == two.server_at  # dated when the frame arrived
    assert db.scalar(select(ProctorSession.risk_score).where(ProctorSession.id == ps.id)) > 0
    assert db.scalar(select(ProctorSession.console_version)
                     .where(ProctorSession.id == ps.id)) >= version + 2
    told = [e for call in db.scalars(select(HookCall).where(
        HookCall.hook == hook_outbox.INTEGRITY_EVENT).order_by(HookCall.id))
        for e in call.arguments["events"]]
    assert sorted((e["seq"], e["detail"]["faces"]) for e in told) == [(1, 1), (2, 2)]


def test_a_frame_reads_as_counted_being_counted_or_not_analysed():
    assert [face_checks.faces_label(n, False) for n in (0, 1, 2)] == ["0 faces", "1 face",
                                                                       "2 faces"]
    assert face_checks.faces_label(1, True) == "1 face"  # a count stands, whatever the queue
    assert face_checks.faces_label(None, True) == "faces being counted"
    assert face_checks.faces_label(None, False) == "not analysed"


def test_raw_bytes_are_still_counted_inline(db, proctored, vault, two_faces_jpeg):
    _ns, ps, _attempt = _started(db, proctored)
    snap, _ = events.record_snapshot(db, ps, vault, seq=1, image=two_faces_jpeg)
    db.commit()
    assert snap.faces == 2 and face_checks.owed(db, ps.id) == 0
    assert db.scalar(select(Flag.rule)) == "multiple_faces"


def test_newest_first_and_ended_sessions_before_live_ones(db, proctored, vault, face_jpeg,
                                                          make_user):
    ps, ps2 = _two_started(db, proctored, make_user)
    t0 = dt.datetime.now(dt.UTC)
    old = _upload(db, ps, vault, face_jpeg, 1, at=t0)
    new = _upload(db, ps, vault, face_jpeg, 2, at=t0 + dt.timedelta(seconds=60))
    ended = _upload(db, ps2, vault, face_jpeg, 1, at=t0 - dt.timedelta(seconds=60))
    assert face_checks.hurry(db, ps2.id) == 1
    db.commit()
    order = []
    while claimed := face_checks.claim(db):
        order += [c.snapshot_id for c in claimed]
    assert order == [ended.id, new.id, old.id]


def test_a_result_waits_for_its_checks_then_is_released(db, proctored, vault, face_jpeg):
    _ns, ps, attempt = _started(db, proctored, {"review": "flagged"})
    _upload(db, ps, vault, face_jpeg, 1)
    delivery.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    db.refresh(ps)
    held = _release(db, attempt)
    assert ps.state == "submitted" and held.status == "held"
    assert held.reason == "awaiting the face check of 1 camera snapshot"
    assert db.scalar(select(FaceCheck.urgent)) is True

    assert face_checks.run_pending(db, vault) == 1
    db.refresh(ps)
    assert ps.state == "cleared"
    released = _release(db, attempt)
    assert released.status == "released" and released.by_user_id is None
    assert "every camera snapshot checked" in released.reason


def test_a_second_face_found_after_the_exam_sends_it_to_review(db, proctored, vault, face_jpeg,
                                                              two_faces_jpeg):
    _ns, ps, attempt = _started(db, proctored, {"review": "flagged"})
    _upload(db, ps, vault, face_jpeg, 1)
    _upload(db, ps, vault, two_faces_jpeg, 2)
    delivery.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    assert "2 camera snapshots" in _release(db, attempt).reason
    assert face_checks.run_one(db, vault) == "done"
    db.refresh(ps)
    assert ps.state == "submitted"  # one check still owed: no decision yet
    assert face_checks.run_one(db, vault) == "done"
    db.refresh(ps)
    assert ps.state == "in_review" and _release(db, attempt).status == "held"


@pytest.mark.parametrize("review", ["always", "never"])
def test_policies_that_do_not_weigh_flags_do_not_wait(db, proctored, vault, face_jpeg, review):
    _ns, ps, attempt = _started(db, proctored, {"review": review})
    _upload(db, ps, vault, face_jpeg, 1)
    delivery.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    db.refresh(ps)
    assert ps.state == ("in_review" if review == "always" else "cleared")
    assert face_checks.run_pending(db, vault) == 1  # still counted, for the reviewer
    db.refresh(ps)
    assert ps.state == ("in_review" if review == "always" else "cleared")


def test_a_dead_checker_s_claim_is_taken_over_and_its_late_answer_dropped(db, proctored, vault,
                                                                         face_jpeg):
    _ns, ps, _attempt = _started(db, proctored)
    snap = _upload(db, ps, vault, face_jpeg, 1)
    [first] = face_checks.claim(db)
    assert face_checks.claim(db) == []  # claimed: nobody else takes it
    later = dt.datetime.now(dt.UTC) + face_checks.LOST_AFTER + dt.timedelta(seconds=1)
    [second] = face_checks.claim(db, now=later)
    assert second.snapshot_id == snap.id and second.attempts == 2
    assert face_checks._store_one(db, first, 3) is False  # the first checker woke up too late
    db.commit()
    assert _faces(db, snap.id) is None
    assert face_checks._store_one(db, second, 1) is True
    db.commit()
    assert _faces(db, snap.id) == 1


def test_two_checkers_at_once_count_each_frame_once(database, db, proctored, vault, face_jpeg):
    _ns, ps, _attempt = _started(db, proctored)
    snaps = [_upload(db, ps, vault, face_jpeg, seq) for seq in range(1, 7)]
    results: list[str | None] = []

    def check() -> None:
        with database.session() as session:
            while (out := face_checks.run_one(session, vault)) is not None:
                results.append(out)

    threads = [threading.Thread(target=check) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["done"] * 6
    assert [_faces(db, s.id) for s in snaps] == [1] * 6
    assert db.scalar(select(func.count()).select_from(HookCall)) == 0  # no plugin installed


def test_an_unreadable_frame_is_retried_then_given_up_and_holds_nothing(db, proctored, vault,
                                                                        face_jpeg):
    _ns, ps, attempt = _started(db, proctored, {"review": "flagged"})
    snap = _upload(db, ps, vault, face_jpeg, 1)
    db.execute(update(StoredImage).where(StoredImage.id == snap.image_id)
               .values(ciphertext=None, nonce=None))  # purged, as retention would
    db.commit()
    delivery.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    assert _release(db, attempt).status == "held"
    outcomes = [face_checks.run_one(db, vault) for _ in range(face_checks.MAX_ATTEMPTS)]
    assert outcomes == ["retry"] * (face_checks.MAX_ATTEMPTS - 1) + ["failed"]
    row = db.scalar(select(FaceCheck))
    assert row.state == "failed" and "retention" in row.error
    assert face_checks.run_one(db, vault) is None and _faces(db, snap.id) is None
    # given up: the frame reads "not analysed", no longer "being counted"
    assert face_checks.counting(db, ps.id) == set()
    assert [i["text"] for i in review.timeline(db, ps) if i["kind"] == "snapshot"] == [
        "snapshot 1: not analysed"]
    db.refresh(ps)
    assert ps.state == "cleared" and _release(db, attempt).status == "released"


def test_the_checker_loop_runs_until_stopped(database, db, proctored, vault, two_faces_jpeg):
    _ns, ps, _attempt = _started(db, proctored)
    snap = _upload(db, ps, vault, two_faces_jpeg, 1)
    stop = threading.Event()
    loop = threading.Thread(target=face_checks.serve, args=(database.session, vault),
                            kwargs={"stop": stop, "idle_s": 0.05})
    loop.start()
    try:
        assert face_checks.wait_idle(database.session, timeout_s=30)
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive() and _faces(db, snap.id) == 2
    assert face_checks.backlog(db) == (0, None)


def test_a_batch_is_claimed_in_one_transaction_and_stored_in_one_more(db, proctored, vault,
                                                                     face_jpeg, two_faces_jpeg,
                                                                     make_user):
    from sqlalchemy import event

    ps, ps2 = _two_started(db, proctored, make_user)
    for seq in range(1, 6):
        _upload(db, ps, vault, face_jpeg, seq)
        _upload(db, ps2, vault, two_faces_jpeg if seq == 3 else face_jpeg, seq)
    commits = []
    listener = lambda session: commits.append(1)
    event.listen(db, "after_commit", listener)
    try:
        assert face_checks.run_batch(db, vault, limit=8) == ["done"] * 8
    finally:
        event.remove(db, "after_commit", listener)
    assert len(commits) == 2  # the claim, then the eight counts
    assert face_checks.backlog(db)[0] == 2 and face_checks.run_pending(db, vault) == 2
    assert db.scalars(select(Snapshot.faces).order_by(Snapshot.session_id, Snapshot.seq)).all() \
        == [1] * 5 + [1, 1, 2, 1, 1]
    assert db.execute(select(Flag.session_id, Flag.key)).all() == [(ps2.id, "s3")]


def test_the_searches_run_in_processes_of_their_own_at_the_lowest_priority(db, proctored, vault,
                                                                           face_jpeg,
                                                                           two_faces_jpeg):
    """The checker's searches go to processes in Linux's idle class (and niced), which hold no
    lock; the checker's own process, which holds the write lock while it stores, keeps its
    priority. A checker that ran idle-class itself kept saves waiting 200-300 ms for the lock
    (priority inversion, ``bench/node_capacity.py --quick``)."""
    import os

    _ns, ps, _attempt = _started(db, proctored)
    one = _upload(db, ps, vault, face_jpeg, 1)
    two = _upload(db, ps, vault, two_faces_jpeg, 2)
    ours = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    pool = face_checks.SearchPool(1, niceness=7, idle=True)
    try:
        assert face_checks.run_batch(db, vault, search=pool) == ["done", "done"]
        [pid] = pool.pids()
        assert pid != os.getpid()
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours[1] + 7)
    finally:
        pool.close()
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == ours
    assert (_faces(db, one.id), _faces(db, two.id)) == (1, 2)


def test_a_search_process_that_dies_is_replaced(face_jpeg, two_faces_jpeg):
    """A frame that kills its search process (a crash in the decoder) does not stop the checker:
    the next search runs in a new process."""
    import os
    import signal

    pool = face_checks.SearchPool(1, niceness=0, idle=False)
    try:
        assert pool([face_jpeg]) == [1]
        [first] = pool.pids()
        os.kill(first, signal.SIGKILL)
        assert pool([two_faces_jpeg, b"not a picture"])[0] == 2
        [second] = pool.pids()
        assert second != first
        assert pool([b"not a picture"])[0].startswith("ImageUnreadable")
    finally:
        pool.close()
