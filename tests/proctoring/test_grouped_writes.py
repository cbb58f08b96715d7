"""A camera frame and a batch of integrity events commit together with the saves arriving at the
same moment (SQLite's group commit, ``microcred.web.write_together``): one transaction, one
write lock, one fsync. Each is answered only after that transaction's COMMIT, its plugins'
job is queued only then, and when the shared COMMIT fails each is stored alone, once.

The views' writes need their request's own thread (Flask's ``g``, the signed-in user): the
group's leader here is a plain thread with no request, so a view's writes run on the leader's
thread would fail outright."""
from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import event, insert, select

from microcred.db import utcnow
from proctoring import hooks
from proctoring.models import Flag, HookCall, IntegrityEvent, Snapshot


class Judge:
    """An integrity provider that flags right clicks, and notes whether the batch's outbox row
    was committed (seen from a connection of its own) when its job ran."""

    def __init__(self, database) -> None:
        self.database = database
        self.calls: list[tuple[str, int, bool]] = []

    @hooks.hookimpl
    def microcred_integrity_event(self, session, event):
        with self.database.session(write=False) as own:
            committed = own.scalar(select(HookCall.id).where(
                HookCall.session_id == session.session_id)) is not None
        self.calls.append((event.kind, event.seq, committed))
        if event.kind == "right_click":
            return [hooks.FlagSpec("acme_context_menu", f"e{event.seq}", "low", "context menu")]
        return None


@pytest.fixture
def runner(app, client, db, proctored, signin, csrf_token):
    """A candidate in a proctored attempt, signed in on two clients (the runner's two
    connections): ``(attempt_id, session_id, frames_client, events_client, token)``."""
    if not app.extensions["microcred.database"].is_sqlite:
        # PostgreSQL commits concurrent transactions in parallel: there is no group to join
        assert "microcred.group_commit" not in app.extensions
        pytest.skip("group commit is SQLite's")
    ns = proctored({"identity": "none"})
    signin(client, ns.candidate)
    token = csrf_token(client)
    started = client.post(f"/exams/{ns.exam.code}/start", data={"agree": "yes", "csrf_token": token})
    attempt_id = int(re.search(r"/attempts/(\d+)", started.headers["Location"]).group(1))
    extras = client.get(f"/api/attempts/{attempt_id}/heartbeat").json["extras"]["proctoring"]
    second = app.test_client()
    name = app.config["SESSION_COOKIE_NAME"]
    second.set_cookie(name, client.get_cookie(name).value)
    return attempt_id, extras, client, second, token


def _in_one_group(committer, requests: list, also=None, meanwhile=None) -> tuple[dict, dict]:
    """Send ``requests`` (functions answering a response) from threads of their own while a
    first write holds the committer, so that all of them (and ``also``, a plain work function)
    queue behind it and form the next group; ``meanwhile()`` is called once they have queued,
    the lock still held. Returns (responses by index, also's result)."""
    answers: dict[int, object] = {}
    extra: dict = {}
    release = threading.Event()

    def hold(conn):
        assert release.wait(10), "the writes never queued"
        return "held"

    holder = threading.Thread(target=committer.run, args=(hold,))
    holder.start()
    while not committer._leading:
        time.sleep(0.001)
    threads = [threading.Thread(target=lambda i=i, r=r: answers.__setitem__(i, r()))
               for i, r in enumerate(requests)]
    if also is not None:
        threads.append(threading.Thread(target=lambda: extra.__setitem__("also", committer.run(also))))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(committer._queue) < len(threads) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(committer._queue) == len(threads), "the requests did not queue for the group"
    if meanwhile is not None:
        meanwhile()
    release.set()
    for t in (holder, *threads):
        t.join(20)
    return answers, extra


def _frame(client, extras, token, jpeg, seq):
    return lambda: client.post(extras["snapshots_url"], data=jpeg, content_type="image/jpeg",
                               headers={"X-CSRFToken": token, "X-Snapshot-Seq": str(seq)})


def _events(client, extras, token, *events):
    return lambda: client.post(extras["events_url"], json={"events": list(events)},
                               headers={"X-CSRFToken": token})


def test_a_frame_and_an_event_batch_share_one_commit_and_are_answered_after_it(
        app, db, runner, blank_jpeg):
    _attempt_id, extras, frames, batches, token = runner
    database = app.extensions["microcred.database"]
    judge = Judge(database)
    pm = hooks.make_plugin_manager(load_entry_points=False)
    pm.register(judge, name="judge")
    hooks.set_plugin_manager(pm)
    committer = app.extensions["microcred.group_commit"]
    commits: list[int] = []
    listener = lambda conn: commits.append(1)
    event.listen(database.write_engine, "commit", listener)
    try:
        groups, grouped = committer.groups, committer.grouped
        answers, _ = _in_one_group(committer, [
            _frame(frames, extras, token, blank_jpeg, 1),
            _events(batches, extras, token, {"seq": 1, "kind": "right_click"},
                    {"seq": 2, "kind": "copy"})])
    finally:
        event.remove(database.write_engine, "commit", listener)
    assert answers[0].status_code == 200, answers[0].get_data(as_text=True)
    assert answers[0].json == {"seq": 1, "status": "stored", "faces": None}
    assert answers[1].status_code == 200, answers[1].get_data(as_text=True)
    assert answers[1].json["acks"] == [{"seq": 1, "status": "stored"},
                                       {"seq": 2, "status": "stored"}]
    # the holder alone, then the frame and the batch in one transaction: two groups, two
    # COMMITs (the provider's job writes its flag in a transaction of its own, a third)
    assert committer.groups - groups == 2 and committer.grouped - grouped == 2
    assert len(commits) == 3
    # the provider's job ran once the batch was durable, not at its savepoint's release
    assert judge.calls == [("right_click", 1, True), ("copy", 2, True)]
    db.rollback()
    sid = extras["session_id"]
    assert db.scalar(select(Flag.source).where(Flag.session_id == sid,
                                               Flag.rule == "acme_context_menu")) == "judge"
    assert db.scalars(select(Snapshot.seq).where(Snapshot.session_id == sid)).all() == [1]
    hooks.set_plugin_manager(None)


def test_when_the_shared_commit_fails_each_write_is_stored_alone_once(app, db, runner,
                                                                     blank_jpeg):
    """A write of the group is refused only at COMMIT (a deferred foreign key, as a full disk
    or an I/O error would fail it): nothing of the group is stored or answered from it; the
    frame and the batch are then stored in transactions of their own, once each."""
    _attempt_id, extras, frames, batches, token = runner
    committer = app.extensions["microcred.group_commit"]

    def dangling(conn):
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        conn.execute(insert(Snapshot.__table__).values(
            session_id=extras["session_id"], seq=99, image_id=10**9, server_at=utcnow()))
        return "dangling"

    answers, extra = _in_one_group(committer, [
        _frame(frames, extras, token, blank_jpeg, 1),
        _events(batches, extras, token, {"seq": 1, "kind": "copy"})], also=dangling)
    assert extra["also"] is None  # its group failed: the caller's own path decides
    assert answers[0].status_code == 200 and answers[0].json["status"] == "stored"
    assert answers[1].status_code == 200 and answers[1].json["acks"] == [
        {"seq": 1, "status": "stored"}]
    db.rollback()
    sid = extras["session_id"]
    assert db.scalars(select(Snapshot.seq).where(Snapshot.session_id == sid)).all() == [1]
    assert db.scalars(select(IntegrityEvent.seq).where(IntegrityEvent.session_id == sid)).all() == [1]


def test_a_refused_batch_is_answered_without_waiting_for_the_write_lock(
        app, db, runner, blank_jpeg):
    """A batch for a session that is not the candidate's is refused by the look before the
    lock (``proctoring.hotwrites``): answered 404 while another write holds the lock, never
    queued, nothing of it stored; the frame sent at the same moment is stored."""
    _attempt_id, extras, frames, batches, token = runner
    committer = app.extensions["microcred.group_commit"]
    elsewhere = f"/api/proctoring/sessions/{extras['session_id'] + 1000}/events"
    refused = {}

    def refuse():
        refused["answer"] = batches.post(elsewhere, json={"events": [{"seq": 1, "kind": "copy"}]},
                                         headers={"X-CSRFToken": token})
        refused["queued"] = len(committer._queue)

    answers, _ = _in_one_group(committer, [_frame(frames, extras, token, blank_jpeg, 1)],
                               also=None, meanwhile=refuse)
    assert refused["answer"].status_code == 404 and refused["answer"].json["error"] == "not_found"
    assert refused["queued"] == 1  # the frame only
    assert answers[0].status_code == 200 and answers[0].json["status"] == "stored"
    db.rollback()
    assert db.scalars(select(Snapshot.seq).where(
        Snapshot.session_id == extras["session_id"])).all() == [1]
    assert db.scalar(select(IntegrityEvent.id)) is None
