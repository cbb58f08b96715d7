"""Proctoring's tables.

Everything that is evidence is append-only (``microcred.db.append_only``): transitions, identity
checks, integrity events, snapshot metadata, flags, notes, messages, review decisions and audit
records. Two rows change in place, on purpose:

- :class:`ProctorSession` carries the current ``state`` (changed only by a compare-and-set in
  :func:`proctoring.sessions.transition`, each change also written as a :class:`Transition`),
  two denormalised figures for the console (``risk_score``, ``last_seen_at``), the event
  rules' running state (``rule_state``), derived from the events and rebuilt from them at will,
  and ``console_version``, a change counter for the console's delta poll (see
  :func:`_count_console_changes`).
- :class:`StoredImage` loses its ciphertext when the retention period ends (``purged_at`` says
  when); the row stays so that snapshot and identity metadata keep pointing at something.
- :class:`Snapshot` ``faces`` is written once: a frame uploaded through the web is stored with
  ``faces`` None and a :class:`FaceCheck` owed, and the face checker
  (``proctoring.face_checks``) sets it from None to the count (``UPDATE ... WHERE faces IS
  NULL``), never again; the ORM still refuses any edit of the row.

:class:`AuditChainHead` is the one-row lock that serialises appends to the audit chain.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as OrmSession

from microcred.db import Base, append_only, utcnow


class ProctorAssignment(Base):
    """A proctor may watch and act on the sessions of an exam. Admins may act on all."""

    __tablename__ = "proctor_assignments"
    __table_args__ = (UniqueConstraint("proctor_id", "exam_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proctor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"), index=True)
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProctorSession(Base):
    """One proctored sitting: a candidate, an exam, and (once started) the attempt."""

    __tablename__ = "proctoring_sessions"
    __table_args__ = (
        Index("ix_proctoring_sessions_exam_state", "exam_id", "state"),
        Index("ix_proctoring_sessions_candidate_exam", "candidate_id", "exam_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id"), unique=True)
    #: see proctoring.states
    state: Mapped[str] = mapped_column(String(20), default="created")
    #: the exam's proctoring policy as it was when the session was created (normalised)
    policy: Mapped[dict[str, Any]]
    risk_score: Mapped[int] = mapped_column(default=0)
    last_seen_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    state_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: what the event rules remember of the events judged so far (``flags.EventState``), so a
    #: batch is judged without reading the history; None: not kept yet (rebuilt on next use)
    rule_state: Mapped[dict[str, Any] | None]
    #: moves whenever a row the console shows of this session is written (a flag, a snapshot,
    #: an identity check, a transition): ``proctoring.console_feed`` compares it, not the view
    console_version: Mapped[int] = mapped_column(default=0, server_default="0")


class Transition(Base):
    __tablename__ = "proctoring_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"), index=True)
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(Transition)


class StoredImage(Base):
    """An image encrypted with AES-GCM. ``kind``: selfie | id_document | snapshot."""

    __tablename__ = "proctoring_images"
    __table_args__ = (Index("ix_proctoring_images_created_purged", "created_at", "purged_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    content_type: Mapped[str] = mapped_column(String(40))
    #: first 16 hex digits of SHA-256(key): which key encrypted it
    key_id: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    plaintext_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    purged_at: Mapped[dt.datetime | None]


class IdentityCheck(Base):
    """One verifier's finding on a submitted pair of images.

    ``outcome``: passed | failed | pending (a human must decide) | error (the verifier broke).
    The proctor's admit or reject is a check by the ``proctor`` verifier with ``by_user_id``.
    """

    __tablename__ = "proctoring_identity_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"), index=True)
    submission: Mapped[int]
    verifier: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    selfie_image_id: Mapped[int | None] = mapped_column(ForeignKey("proctoring_images.id"))
    id_image_id: Mapped[int | None] = mapped_column(ForeignKey("proctoring_images.id"))
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(IdentityCheck)


class IdentityAttempt(Base):
    """One identity submission that got past the rate limit, whatever became of it (stored, or
    refused as unreadable or oversized): what :func:`proctoring.identity.count_attempt` counts,
    in the database so that the limit holds across workers."""

    __tablename__ = "proctoring_identity_attempts"
    __table_args__ = (Index("ix_proctoring_identity_attempts_session_at", "session_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(IdentityAttempt)


class IntegrityEvent(Base):
    """Something the candidate's page reported. ``seq`` is the page's own counter, unique per
    session, so a retried batch is stored once. ``server_at`` is when it arrived here."""

    __tablename__ = "proctoring_events"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    client_at: Mapped[dt.datetime | None]
    server_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


append_only(IntegrityEvent)


class Snapshot(Base):
    """A periodic camera frame; the image itself is a :class:`StoredImage`."""

    __tablename__ = "proctoring_snapshots"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    image_id: Mapped[int] = mapped_column(ForeignKey("proctoring_images.id"))
    #: faces the detector found; None when the image could not be analysed
    faces: Mapped[int | None]
    client_at: Mapped[dt.datetime | None]
    server_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(Snapshot)


class FaceCheck(Base):
    """A camera frame whose faces are still to be counted (``proctoring.face_checks``): the
    queue of the face checker, written in the snapshot's own transaction, deleted in the one
    that stores the count. ``state``: pending | running (a checker claimed it at
    ``claimed_at``) | failed (``error`` says why; the frame stays "not analysed").
    ``urgent``: the session has ended and its result waits for these checks."""

    __tablename__ = "proctoring_face_checks"
    __table_args__ = (Index("ix_proctoring_face_checks_next", "state", "urgent", "server_at"),)

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("proctoring_snapshots.id"),
                                             primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"), index=True)
    #: the frame's arrival, the checker's order (newest first: the live picture matters most)
    server_at: Mapped[dt.datetime]
    state: Mapped[str] = mapped_column(String(10), default="pending")
    urgent: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class Flag(Base):
    """A rule's finding. ``key`` makes a rule raise a given flag once per session."""

    __tablename__ = "proctoring_flags"
    __table_args__ = (UniqueConstraint("session_id", "rule", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(10))
    points: Mapped[int]
    message: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64), default="microcred")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(Flag)


class ProctorNote(Base):
    __tablename__ = "proctoring_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ProctorNote)


class ProctorMessage(Base):
    """A message the candidate sees in the exam runner."""

    __tablename__ = "proctoring_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ProctorMessage)


class ReviewDecision(Base):
    __tablename__ = "proctoring_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(12))  # cleared | invalidated
    reason: Mapped[str] = mapped_column(Text)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ReviewDecision)


class HookCall(Base):
    """A notification hook owed to the plugins (``proctoring.hook_outbox``): written in the
    transaction of the change it announces (so a change that rolls back announces nothing), and
    delivered by a job after that transaction commits, never inside it: a slow or failing plugin
    neither holds a lock nor undoes the change. ``state``: pending (owed) | running (a job has
    claimed it and is calling the plugins) | done (called; ``error`` names the plugins that
    raised, if any)."""

    __tablename__ = "proctoring_hook_calls"
    __table_args__ = (Index("ix_proctoring_hook_calls_state_queued", "state", "queued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("proctoring_sessions.id"), index=True)
    hook: Mapped[str] = mapped_column(String(64))
    #: the hook's keyword arguments as JSON (``session``: the ``SessionInfo`` as it was then)
    arguments: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(10), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    #: how many times a job claimed it (more than one: a worker died mid-call, or re-queued)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: when a job for it was last queued, or last claimed (the sweeper's clock for lost jobs)
    queued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None]


class AuditRecord(Base):
    """One link of the hash chain: ``hash = SHA-256(canonical(row) + prev_hash)``."""

    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[dt.datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


append_only(AuditRecord)


class AuditChainHead(Base):
    """The newest link's sequence number and hash. Appending locks this row first, so appends
    from every process queue up and the chain never forks."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


# ---------------------------------------------------------------- the console's change counter

#: the rows whose arrival changes what the console shows of their session
_SHOWN_ON_CONSOLE: tuple[type, ...] = (Flag, Snapshot, IdentityCheck, Transition)


#: ``Session.info`` key: the sessions whose counter moved in the current transaction
_COUNTED = "proctoring.console_counted"


def console_counted(session: OrmSession) -> set[int]:
    """The proctoring sessions whose ``console_version`` already moved in ``session``'s current
    transaction (once per transaction is enough: the console compares after commit). A writer
    that moves it in an UPDATE of its own adds the id here."""
    return session.info.setdefault(_COUNTED, set())


@event.listens_for(OrmSession, "before_flush")
def _count_console_changes(session: OrmSession, flush_context: Any, instances: Any) -> None:
    """Every new flag, snapshot, identity check or transition moves its session's
    ``console_version`` in the same flush, hence the same transaction, whichever code path
    wrote it (so a new writer cannot forget). The session row is the one the writer already
    holds (locked or just updated), so no row is shared between candidates: no hot row, and
    nothing on the saves' and heartbeats' path (their marks are the attempt's and
    ``last_seen_at``, read as they are). Evaluated in SQL (``+ 1``), so two writers never lose
    a count; once per transaction."""
    counted = console_counted(session)
    ids = {obj.session_id for obj in session.new
           if isinstance(obj, _SHOWN_ON_CONSOLE)} - counted - {None}
    if not ids:
        return
    with session.no_autoflush:
        for sid in ids:
            ps = session.get(ProctorSession, sid)
            if ps is not None:
                ps.console_version = ProctorSession.console_version + 1
    counted |= ids


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_counted(session: OrmSession, transaction: Any) -> None:
    # the transaction's end, or a savepoint's (a count rolled back with it must be counted
    # again); not the inner transaction every flush opens and closes
    if transaction.parent is None or transaction.nested:
        session.info.pop(_COUNTED, None)
