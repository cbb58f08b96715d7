"""The sweeper at scale (issue 15, goal 10): found by an index in batches of plain columns, one
short transaction per attempt, a failing attempt logged, recorded and backed off without
holding up the others, a bounded number of statements per sweep, and one leader at a time
(PostgreSQL advisory lock; a file lock on SQLite), on both databases."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select, update

from assessment.delivery import service, sweeper
from assessment.delivery.models import Attempt, Result, SweepFailure
from microcred import signals
from microcred.db import utcnow
from microcred.leader import try_lead
from microcred.querycount import count_queries


@pytest.fixture
def attempts(db, make_user, build_exam):
    """``attempts(n, late_s=...)``: n attempts in progress on a 10-minute exam, started
    ``600 + late_s`` seconds ago (late_s < 0: time remains)."""
    from assessment.users import User

    exam = build_exam(db, code="SWEEP")
    first = make_user("candidate")
    counter = iter(range(1, 100_000))

    def candidate():  # the first one's password hash: hashing one per candidate is slow
        user = User(email=f"swept{next(counter)}@example.org", display_name="Swept",
                    role="candidate", password_hash=first.password_hash)
        db.add(user)
        db.flush()
        return user

    def make(n: int, *, late_s: float) -> list[int]:
        ids = []
        for _ in range(n):
            a = service.start_attempt(db, candidate(), exam, grace_seconds=2)
            ids.append(a.id)
        db.flush()
        started = utcnow() - dt.timedelta(seconds=600 + late_s)
        db.execute(update(Attempt).where(Attempt.id.in_(ids)).values(
            started_at=started, deadline_at=started + dt.timedelta(seconds=600)))
        db.commit()
        return ids

    return make


def _status(db, ids):
    db.expire_all()
    return [db.scalar(select(Attempt.status).where(Attempt.id == i)) for i in ids]


def test_a_poisoned_attempt_is_recorded_backed_off_and_never_blocks_the_others(db, attempts, caplog):
    ids = attempts(4, late_s=30)
    poisoned = ids[0]  # swept first: every other attempt is behind it

    def receiver(sender, *, attempt_id, **_):
        if attempt_id == poisoned:
            raise RuntimeError("a receiver that always fails")

    signals.result_finalized.connect(receiver)
    try:
        first = sweeper.sweep(db, grace_seconds=2)
        assert first.finalized == ids[1:] and first.failed == [poisoned]
        assert _status(db, ids) == ["in_progress"] + ["finalized"] * 3
        row = db.get(SweepFailure, poisoned)
        assert row.failures == 1 and "a receiver that always fails" in row.last_error
        assert row.retry_at - row.failed_at == sweeper.backoff(1) == dt.timedelta(seconds=60)
        assert [r for r in caplog.records if r.levelname == "ERROR"
                and f"attempt {poisoned} could not be finalized" in r.message]

        # the next sweeps leave it alone until its backoff is over: no transaction spent on it
        again = sweeper.sweep(db, grace_seconds=2)
        assert (again.finalized, again.failed, again.backing_off) == ([], [], 1)

        # past the backoff it is tried again, fails again, and waits twice as long
        later = utcnow() + dt.timedelta(seconds=61)
        assert sweeper.sweep(db, grace_seconds=2, now=later).failed == [poisoned]
        db.expire_all()
        row = db.get(SweepFailure, poisoned)
        assert row.failures == 2 and row.retry_at - row.failed_at == dt.timedelta(seconds=120)
    finally:
        signals.result_finalized.disconnect(receiver)

    # mended: the next try after its backoff finalizes it, and its failure record goes
    mended = sweeper.sweep(db, grace_seconds=2, now=utcnow() + dt.timedelta(seconds=200))
    assert mended.finalized == [poisoned]
    assert db.get(SweepFailure, poisoned) is None
    assert db.scalar(select(Result.id).where(Result.attempt_id == poisoned)) is not None


def test_backoff_doubles_and_is_capped():
    assert [sweeper.backoff(n).total_seconds() for n in (1, 2, 3, 7, 50)] == [60, 120, 240, 3600, 3600]


def _statements(database, call) -> int:
    with count_queries(database.engine, database.write_engine) as sent:
        call()
    return len(sent)


def test_statements_per_sweep_do_not_grow_with_the_attempts_in_progress(db, database, attempts):
    """Attempts with time left cost nothing per attempt: the sweep sends the same statements for
    10 as for 40 of them. Ones past their base time but extended are not read either: the stored
    deadline (``deadline_at``) carries the extension, and the index finds only those past it."""
    attempts(10, late_s=-120)
    small = _statements(database, lambda: sweeper.sweep(db, grace_seconds=2))
    attempts(30, late_s=-120)
    large = _statements(database, lambda: sweeper.sweep(db, grace_seconds=2))
    assert small == large == 2  # the shortest limit; the (empty) first batch

    extended = attempts(25, late_s=30)
    for i in extended:
        service.extend_attempt(db, db.get(Attempt, i), seconds=600, by_user_id=None, reason="late")
    db.commit()
    report = []
    sent = _statements(database, lambda: report.append(sweeper.sweep(db, grace_seconds=2, batch=10)))
    assert report[0].examined == 0 and report[0].finalized == []
    assert sent == 2, sent

    # a stored deadline past the grace is read in batches: attempts, clock events, failures
    late = attempts(25, late_s=30)
    report.clear()
    sent = _statements(database, lambda: report.append(sweeper.sweep(db, grace_seconds=2, batch=10)))
    assert report[0].examined == 25 and sorted(report[0].finalized) == sorted(late)


def test_each_expired_attempt_costs_a_bounded_transaction(db, database, attempts):
    attempts(1, late_s=30)
    one = _statements(database, lambda: sweeper.sweep(db, grace_seconds=2))
    attempts(5, late_s=30)
    five = _statements(database, lambda: sweeper.sweep(db, grace_seconds=2))
    # scoring, release and the receivers of each: a bounded cost per attempt finalized
    assert five - one <= 4 * 40, (one, five)


def test_one_leader_at_a_time(database):
    """Two sweepers at once (every node runs one): while one holds the lock the other gets
    False at once, never waits; once released, the next one leads. Real advisory lock on
    PostgreSQL, a real flock on SQLite."""
    with try_lead(database.engine, "sweeper-test") as first:
        assert first
        got = []
        other = threading.Thread(target=lambda: got.append(
            _lead_once(database.engine, "sweeper-test")))
        other.start()
        other.join(10)
        assert got == [False]
        with try_lead(database.engine, "another-name") as unrelated:
            assert unrelated  # locks are by name
    assert _lead_once(database.engine, "sweeper-test") is True


def _lead_once(engine, name) -> bool:
    with try_lead(engine, name) as held:
        return held


def test_two_sweepers_concurrently_one_finalizes(db, database, attempts, settings):
    """Two nodes' sweeps at the same moment: the first holds the lead while it finalizes (a
    receiver makes it linger); the second, started meanwhile, does nothing; every attempt is
    finalized exactly once."""
    from assessment.cli import _sweep_once

    ids = attempts(3, late_s=30)
    inside, release = threading.Event(), threading.Event()

    def slow(sender, **_):
        inside.set()
        release.wait(10)

    signals.result_finalized.connect(slow)
    results: dict[str, object] = {}
    try:
        first = threading.Thread(target=lambda: results.setdefault("first", _sweep_once(database, settings)))
        first.start()
        assert inside.wait(10)
        results["second"] = _sweep_once(database, settings)
        release.set()
        first.join(30)
    finally:
        release.set()
        signals.result_finalized.disconnect(slow)
    assert results["second"] is None
    done, _flags = results["first"]
    assert sorted(done) == ids
    assert len(db.scalars(select(Result.id).where(Result.attempt_id.in_(ids))).all()) == 3


def test_the_sweep_holds_no_write_lock_through_its_long_reads(db, database, settings, monkeypatch):
    """The look for due proctoring rules reads every running session (0.2-0.3 s at 5,000) and
    the audit checkpoint reads the chain's head and signs a file: neither may run inside a write
    transaction of the sweep's. It did: the status lists' look began one (on SQLite, the write
    lock) and nothing ended it until the lost-jobs step committed, so every sweep queued every
    writer of the node for the length of those reads."""
    import sqlite3

    from proctoring import checkpoints, events

    if not database.is_sqlite:
        pytest.skip("SQLite's one write lock; PostgreSQL's writers do not queue on one")
    from assessment.cli import _sweep_once

    path = database.write_engine.url.database
    free: dict[str, bool] = {}

    def writer_can_lock() -> bool:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:  # database is locked
            return False
        finally:
            other.close()

    def probing(name, real):
        def call(*args, **kwargs):
            free[name] = writer_can_lock()
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(events, "sweep_rules", probing("rules", events.sweep_rules))
    monkeypatch.setattr(checkpoints, "checkpoint_if_due",
                        probing("checkpoint", checkpoints.checkpoint_if_due))
    assert _sweep_once(database, settings) is not None
    assert free == {"rules": True, "checkpoint": True}
