"""Nothing slow inside a write transaction (issue 15, goal 9), on SQLite and PostgreSQL:

- the audit chain's head is locked only for the append, at commit: a transaction that noted a
  record and then does slow work blocks no other appender;
- identity photos are decoded, encrypted and judged by the verifier plugins with no transaction
  open: a slow (remote) verifier holds neither the session row, the audit head nor SQLite's write
  lock, so another proctoring state change completes meanwhile;
- snapshots are prepared (decoded, encrypted, face-counted) before the session is locked.

(Badge signing is not in the submit transaction: ``tests/credentials/test_issue_job.py`` shows a
credentials failure leaves the release standing and the badge owed.)"""
from __future__ import annotations

import io
import threading
import time

from sqlalchemy import select

from proctoring import actions, audit, events, hooks
from proctoring.models import AuditRecord, IdentityCheck, ProctorSession
from proctoring.sessions import open_session


def _appended_by_another(database, tag: str, within_s: float = 10.0) -> float | None:
    """Seconds another connection took to append and commit an audit record; None if it was
    still waiting after ``within_s`` (it is then left to finish in the background)."""
    done: list[float] = []

    def other() -> None:
        t = time.perf_counter()
        with database.session() as s:
            audit.record(s, "test.other", actor=None, subject_type="t", subject_id=tag)
            s.commit()
        done.append(time.perf_counter() - t)

    thread = threading.Thread(target=other, daemon=True)
    thread.start()
    thread.join(within_s)
    return done[0] if done else None


def test_a_noted_record_holds_no_lock_until_its_commit(database, db):
    """A transaction notes a record, then works on (say, a slow plugin): another process's
    append goes through meanwhile; the first appends when it commits, and the chain holds."""
    with database.session() as first:
        audit.record(first, "test.first", actor=None, subject_type="t", subject_id=1)
        first.flush()
        took = _appended_by_another(database, "meanwhile")
        assert took is not None and took < 5, "the other appender waited for the first's commit"
        first.commit()
    rows = db.execute(select(AuditRecord.action).order_by(AuditRecord.seq)).scalars().all()
    assert rows == ["test.other", "test.first"]  # chained in commit order
    assert audit.verify(db).ok


def test_a_rolled_back_transaction_appends_nothing(database, db):
    with database.session() as s:
        audit.record(s, "test.gone", actor=None, subject_type="t", subject_id=1)
        s.rollback()
        s.commit()
    assert db.scalar(select(AuditRecord.id)) is None and audit.verify(db).ok


class SlowVerifier:
    """A remote identity service that answers after a while (the test says when)."""

    name = "slow_remote"

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    @hooks.hookimpl
    def microcred_verify_identity(self, request):
        self.entered.set()
        self.release.wait(30)
        return hooks.IdentityOutcome(self.name, "passed", "looked fine")


def test_a_slow_verifier_does_not_hold_up_other_state_changes(app, database, db, proctored,
                                                              signin, csrf_token, face_jpeg,
                                                              make_user):
    from proctoring.wiring import identity_gate

    ns = proctored({"identity": "automated+proctor"})
    identity_gate(db, ns.candidate, ns.exam, url_for=lambda *a, **k: "/identity")
    # another candidate's session, for the proctor to act on meanwhile
    other_candidate = make_user("candidate")
    identity_gate(db, other_candidate, ns.exam, url_for=lambda *a, **k: "/identity")
    db.commit()
    ps = open_session(db, ns.candidate.id, ns.exam.id)
    other = open_session(db, other_candidate.id, ns.exam.id)

    slow = SlowVerifier()
    hooks.plugin_manager().register(slow, name=slow.name)
    client = app.test_client()
    signin(client, ns.candidate)
    token = csrf_token(client)
    answer: list = []

    def upload() -> None:
        answer.append(client.post(f"/proctoring/identity/{ps.id}", data={
            "csrf_token": token,
            "selfie": (io.BytesIO(face_jpeg), "selfie.jpg"),
            "id_document": (io.BytesIO(face_jpeg), "id.jpg")},
            content_type="multipart/form-data"))

    uploading = threading.Thread(target=upload, daemon=True)
    uploading.start()
    try:
        assert slow.entered.wait(30), "the verifier was never called"
        # while the verifier thinks: a proctor's state change on another session (a row lock,
        # an audit append, on SQLite the write lock) completes at once
        done: list[float] = []

        def proctor_acts() -> None:
            t = time.perf_counter()
            with database.session() as s:
                target = s.get(ProctorSession, other.id, with_for_update=True)
                actions.note(s, target, by=ns.proctor, text="checked the room")
                s.commit()
            done.append(time.perf_counter() - t)

        acting = threading.Thread(target=proctor_acts, daemon=True)
        acting.start()
        acting.join(10)
        assert done and done[0] < 5, "a proctor's action waited for the slow verifier"
        assert not slow.release.is_set() and uploading.is_alive()
    finally:
        slow.release.set()
        uploading.join(30)
    assert answer and answer[0].status_code == 303, answer[0].get_data(as_text=True)[:300]
    db.rollback()  # a fresh read: the test's own transaction began before the upload
    checks = {c.verifier: c.outcome for c in db.scalars(
        select(IdentityCheck).where(IdentityCheck.session_id == ps.id))}
    assert checks.get("slow_remote") == "passed" and checks.get("face_count") == "passed", checks
    assert audit.verify(db).ok


def test_snapshot_work_happens_before_the_lock(db, proctored, vault, face_jpeg, blank_jpeg):
    """``prepare_snapshot`` needs no session at all; what runs under the lock stores bytes
    already encrypted and a face count already made."""
    ps_id = 12345  # no database is touched: any id
    prepared = events.prepare_snapshot(vault, session_id=ps_id, image=face_jpeg)
    assert prepared.faces == 1 and prepared.sealed.session_id == ps_id
    assert prepared.sealed.ciphertext != prepared.sealed.jpeg
    assert events.prepare_snapshot(vault, session_id=ps_id, image=blank_jpeg).faces == 0
