"""Outside plugins hear of a change after it commits (issue 15, goal 9; ``proctoring.hook_outbox``),
on SQLite and PostgreSQL:

- a plugin that raises, even past the isolation of plain implementations (a hookwrapper), does not
  undo the start;
- a hook is called once, after the commit (it sees the start in the database from a connection of
  its own), and a job that runs again, or a copy of it, calls nothing more; a start that rolls back
  announces nothing;
- a slow plugin holds no lock: another write completes while it sleeps (on SQLite, the write lock;
  before, the start transaction held it for as long as the plugin took);
- a notification whose job was lost is queued again by the sweeper, once per wait.

Unless a test records them (``queued``), jobs run as they are queued (the ``db`` fixture's
immediate queue: right after the commit has given its connection back, in the committing thread,
as a worker would run it a moment later)."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from assessment.delivery import service as delivery
from microcred.db import utcnow
from proctoring import actions, hook_outbox, hooks
from proctoring.models import HookCall, ProctorSession
from proctoring.sessions import open_session, session_for_attempt
from proctoring.wiring import identity_gate

NO_IDENTITY = {"identity": "none"}


@pytest.fixture
def queued(db):
    """Jobs are recorded, not run (as if no worker had taken them yet): the queued
    ``(name, *args)``."""
    from assessment.jobs import use_process_queue

    jobs: list[tuple] = []

    class Recorder:
        def enqueue(self, name, *args):
            jobs.append((name, *args))

    use_process_queue(Recorder, pin=True)
    return jobs


def _register(*plugins: object) -> None:
    pm = hooks.make_plugin_manager(load_entry_points=False)
    for plugin in plugins:
        pm.register(plugin, name=type(plugin).__name__.lower())
    hooks.set_plugin_manager(pm)


def _calls(db, hook: str | None = None) -> list[HookCall]:
    db.rollback()  # a fresh snapshot: the jobs wrote through sessions of their own
    q = select(HookCall).order_by(HookCall.id)
    if hook:
        q = q.where(HookCall.hook == hook)
    return list(db.scalars(q))


def _deliver(database, queued: list[tuple]) -> None:
    """The recorded jobs, run as a worker runs them: each in a session of its own."""
    for _name, call_id in list(queued):
        with database.session() as worker:
            hook_outbox.deliver(worker, call_id)


def _write_seconds(database, write) -> float | None:
    """Seconds a ``write(session)`` took to commit in a thread of its own, or None if it had
    not within 10 s (it waited for a lock someone held)."""
    done: list[float] = []

    def run() -> None:
        t = time.perf_counter()
        with database.session() as s:
            write(s)
            s.commit()
        done.append(time.perf_counter() - t)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    return done[0] if done else None


class Recorder:
    """Records each ``session_started`` with what a connection of its own sees of the session
    at that moment (committed state only)."""

    def __init__(self, database) -> None:
        self.database = database
        self.seen: list[tuple[int, str | None]] = []

    @hooks.hookimpl
    def microcred_session_started(self, session):
        with self.database.session(write=False) as own:
            state = own.scalar(select(ProctorSession.state)
                               .where(ProctorSession.id == session.session_id))
        self.seen.append((session.session_id, state))


def test_a_hook_that_raises_does_not_undo_the_start(db, database, proctored):
    class Raises:
        @hooks.hookimpl
        def microcred_session_started(self, session):
            raise RuntimeError("the provider's service is down")

    class RaisingWrapper:
        """Wrappers are not isolated like plain implementations (they wrap the others): one that
        raises makes the whole hook call raise."""

        @hooks.hookimpl(wrapper=True)
        def microcred_session_started(self, session):
            yield
            raise RuntimeError("the wrapper broke")

    ns = proctored(NO_IDENTITY)
    _register(Raises(), RaisingWrapper())
    attempt = delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    attempt_id = attempt.id
    db.rollback()
    ps = session_for_attempt(db, attempt_id)
    assert ps is not None and ps.state == "in_progress"
    (call,) = _calls(db, "microcred_session_started")
    # the wrapper's failure reaches the job (huey retries it), never the start; each try claimed
    # the call, failed and gave it back, so it is still owed for the sweeper
    assert call.state == "pending" and "the wrapper broke" in call.error and call.attempts >= 1

    _register(Raises())  # the wrapper is gone: the job delivers, naming the plugin that raised
    assert hook_outbox.deliver(database.session(), call.id) == "done"
    (call,) = _calls(db, "microcred_session_started")
    assert call.state == "done" and call.done_at is not None and "raises" in call.error


def test_a_hook_is_called_once_after_the_commit(db, database, proctored):
    ns = proctored(NO_IDENTITY)
    recorder = Recorder(database)
    _register(recorder)
    attempt = delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    assert recorder.seen == []  # nothing before the commit
    db.commit()
    ps_id = session_for_attempt(db, attempt.id).id
    # called once, and the start was already in the database for another connection to see
    assert recorder.seen == [(ps_id, "in_progress")]
    (call,) = _calls(db, "microcred_session_started")
    assert call.state == "done" and call.attempts == 1 and call.error is None
    assert call.arguments["session"]["attempt_id"] == attempt.id

    # the job run again (a huey retry, a duplicate from the sweeper), then two copies at once
    assert hook_outbox.deliver(database.session(), call.id) == "done"
    copies = [threading.Thread(target=hook_outbox.deliver, args=(database.session(), call.id))
              for _ in range(2)]
    for t in copies:
        t.start()
    for t in copies:
        t.join(30)
    assert recorder.seen == [(ps_id, "in_progress")]
    assert _calls(db, "microcred_session_started")[0].attempts == 1


def test_a_start_that_rolls_back_announces_nothing(db, database, proctored):
    ns = proctored(NO_IDENTITY)
    recorder = Recorder(database)
    _register(recorder)
    delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.rollback()
    assert recorder.seen == [] and _calls(db) == []


def test_no_row_when_no_plugin_listens(db, proctored):
    """Every process builds the same plugin manager, so a hook nobody implements is not owed:
    a deployment without providers writes no outbox rows and queues no jobs."""
    ns = proctored(NO_IDENTITY)
    _register()
    delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    assert _calls(db) == []


def test_notifications_keep_their_order(db, database, proctored, queued):
    """state_changed then session_started, in the order the start announced them, even when
    the later call's job runs first (a job delivers its session's earlier calls first)."""
    heard: list[str] = []

    class Both:
        @hooks.hookimpl
        def microcred_state_changed(self, session, from_state, to_state, reason):
            heard.append(f"{from_state}->{to_state}")

        @hooks.hookimpl
        def microcred_session_started(self, session):
            heard.append("started")

    ns = proctored(NO_IDENTITY)
    identity_gate(db, ns.candidate, ns.exam, url_for=lambda *a, **k: "/identity")
    db.commit()
    _register(Both())
    delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    calls = _calls(db)
    assert [c.hook for c in calls] == ["microcred_state_changed", "microcred_session_started"]
    assert queued == [(hook_outbox.HOOK_JOB, c.id) for c in calls] and heard == []
    # the later call's job runs first (two workers, or the first job lost)
    assert hook_outbox.deliver(database.session(), calls[-1].id) == "done"
    assert heard == ["admitted->in_progress", "started"]


class Slow:
    """A remote provider that takes its time over ``session_started`` (the test says when)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    @hooks.hookimpl
    def microcred_session_started(self, session):
        self.entered.set()
        self.release.wait(30)


def test_a_slow_hook_does_not_hold_the_write_lock(db, database, proctored, make_user, queued):
    ns = proctored(NO_IDENTITY)
    # another candidate's session, for the proctor to write to meanwhile
    other_candidate = make_user("candidate")
    identity_gate(db, other_candidate, ns.exam, url_for=lambda *a, **k: "/identity")
    db.commit()
    other_id = open_session(db, other_candidate.id, ns.exam.id).id
    db.rollback()
    slow = Slow()
    _register(slow)
    started: list[int] = []

    def start() -> None:  # the start's request, then its queued job, as a worker runs it
        with database.session() as s:
            started.append(delivery.start_attempt(s, ns.candidate, ns.exam, grace_seconds=5).id)
            s.commit()
        _deliver(database, queued)

    def proctor_writes(s) -> None:
        target = s.get(ProctorSession, other_id, with_for_update=True)
        actions.note(s, target, by=ns.proctor, text="checked the room")

    starting = threading.Thread(target=start, daemon=True)
    starting.start()
    try:
        assert slow.entered.wait(30), "the hook was never called"
        took = _write_seconds(database, proctor_writes)
        assert took is not None and took < 5, "another write waited for the slow hook"
        assert not slow.release.is_set() and starting.is_alive()
        # the start is in the database while the hook still sleeps
        db.rollback()
        assert db.scalar(select(ProctorSession.state).where(
            ProctorSession.candidate_id == ns.candidate.id)) == "in_progress"
    finally:
        slow.release.set()
        starting.join(30)
    assert started and _calls(db, "microcred_session_started")[0].state == "done"


def test_the_sweeper_queues_a_lost_notification_again(db, database, proctored, queued):
    ns = proctored(NO_IDENTITY)
    recorder = Recorder(database)
    _register(recorder)
    delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    (call,) = _calls(db, "microcred_session_started")
    queued.clear()  # the job was lost (a worker or a Redis gone, or the queue was down)

    def enqueue(name, *args):
        queued.append((name, *args))

    assert hook_outbox.requeue_stale(db, enqueue) == []  # not yet: its job may still come
    later = utcnow() + hook_outbox.REQUEUE_AFTER + dt.timedelta(seconds=1)
    assert hook_outbox.requeue_stale(db, enqueue, now=later) == [call.id]
    assert hook_outbox.requeue_stale(db, enqueue, now=later) == []  # once per wait
    assert queued == [(hook_outbox.HOOK_JOB, call.id)]
    assert hook_outbox.deliver(database.session(), call.id) == "done"
    assert len(recorder.seen) == 1

    # a worker that died while the plugins ran leaves the call claimed: owed again, later
    db.rollback()
    db.get(HookCall, call.id).state = "running"
    db.commit()
    much_later = later + hook_outbox.RUNNING_LOST_AFTER + dt.timedelta(seconds=1)
    assert hook_outbox.requeue_stale(db, enqueue, now=later) == []
    assert hook_outbox.requeue_stale(db, enqueue, now=much_later) == [call.id]


def test_only_notifications_are_announced(db):
    with pytest.raises(ValueError, match="not a notification hook"):
        hook_outbox.announce(db, "microcred_verify_identity", hooks.SessionInfo(1, 1, 1, 1, "x"))


class Judge:
    """A provider that flags right clicks and camera frames with no face, and counts its calls;
    ``sleep`` makes it slow."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.entered, self.release = threading.Event(), threading.Event()
        self.slow = False

    @hooks.hookimpl
    def microcred_integrity_event(self, session, event):
        self.calls.append((event.kind, event.seq))
        if self.slow:
            self.entered.set()
            self.release.wait(30)
        if event.kind == "right_click":
            return [hooks.FlagSpec("acme_context_menu", f"e{event.seq}", "low", "context menu")]
        if event.kind == "snapshot" and event.detail.get("faces") == 0:
            return [hooks.FlagSpec("acme_empty_room", f"s{event.seq}", "medium", "nobody there")]
        return None


def _locked(db, ps_id: int) -> ProctorSession:
    """The session row, locked, in a fresh transaction (as the events view reads it)."""
    db.rollback()
    return db.scalar(select(ProctorSession).where(ProctorSession.id == ps_id)
                     .with_for_update())


def _started(db, ns):
    attempt = delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    return session_for_attempt(db, attempt.id)


def test_integrity_events_reach_the_providers_after_the_commit(db, database, proctored, vault,
                                                              blank_jpeg):
    """The batch is stored and answered without the providers; the job calls them, once per
    event, and stores their flags (source: the plugin) dated when the event arrived, with the
    risk score; a job run again raises nothing twice."""
    from proctoring import events
    from proctoring.models import Flag

    ns = proctored(NO_IDENTITY)
    judge = Judge()
    _register(judge)
    ps = _started(db, ns)
    ps_id = ps.id
    batch = events.parse_events({"events": [{"seq": 1, "kind": "right_click"},
                                            {"seq": 2, "kind": "copy"}]})
    out = events.ingest_events(db, ps, batch)
    assert judge.calls == [] and "context menu" not in out["flags"]  # not inside the transaction
    db.commit()
    assert judge.calls == [("right_click", 1), ("copy", 2)]
    events.record_snapshot(db, _locked(db, ps_id), vault, seq=1, image=blank_jpeg)
    db.commit()
    assert judge.calls[-1] == ("snapshot", 1)
    db.rollback()
    flags = {f.rule: f for f in db.scalars(select(Flag).where(Flag.session_id == ps_id))}
    assert flags["acme_context_menu"].source == "judge"
    assert flags["acme_empty_room"].source == "judge"
    assert db.get(ProctorSession, ps_id).risk_score >= flags["acme_empty_room"].points
    calls = _calls(db, hook_outbox.INTEGRITY_EVENT)
    assert [c.state for c in calls] == ["done", "done"]
    # again (a retry or a duplicate job): the plugins are not called, no flag is doubled
    n_flags = len(flags)
    for c in calls:
        assert hook_outbox.deliver(database.session(), c.id) == "done"
    assert len(judge.calls) == 3
    db.rollback()
    assert len(db.scalars(select(Flag).where(Flag.session_id == ps_id)).all()) == n_flags


def test_a_slow_integrity_provider_does_not_hold_the_session(db, database, proctored, queued):
    """While a provider thinks about an event, the session's next batch (its row lock; on
    SQLite, the write lock) goes through."""
    from proctoring import events
    from proctoring.models import Flag

    ns = proctored(NO_IDENTITY)
    judge = Judge()
    _register(judge)
    ps_id = _started(db, ns).id
    db.rollback()
    judge.slow = True
    first = events.parse_events({"events": [{"seq": 1, "kind": "right_click"}]})

    def batch_then_worker() -> None:
        with database.session() as s:
            events.ingest_events(s, _locked(s, ps_id), first)
            s.commit()
        _deliver(database, queued)

    def next_batch(s) -> None:
        events.ingest_events(s, _locked(s, ps_id), events.parse_events(
            {"events": [{"seq": 2, "kind": "copy"}]}))

    thread = threading.Thread(target=batch_then_worker, daemon=True)
    thread.start()
    try:
        assert judge.entered.wait(30), "the provider was never called"
        took = _write_seconds(database, next_batch)
        assert took is not None and took < 5, "the next batch waited for the slow provider"
    finally:
        judge.release.set()
        thread.join(30)
    first_call = _calls(db, hook_outbox.INTEGRITY_EVENT)[0]
    assert first_call.state == "done" and ("right_click", 1) in judge.calls
    assert db.scalar(select(Flag.rule).where(Flag.session_id == ps_id,
                                             Flag.source == "judge")) == "acme_context_menu"
