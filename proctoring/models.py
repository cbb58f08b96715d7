"""Proctoring's tables.

Everything that is evidence is append-only (``microcred.db.append_only``): transitions, identity
checks, integrity events, snapshot metadata, flags, notes, messages, review decisions and audit
records. Two rows change in place, on purpose:

- :class:`ProctorSession` carries the current ``state`` (changed only by a compare-and-set in
  :func:`proctoring.sessions.transition`, each change also written as a :class:`Transition`),
  two denormalised figures for the console (``risk_score``, ``last_seen_at``), and the event
  rules' running state (``rule_state``), derived from the events and rebuilt from them at will.
- :class:`StoredImage` loses its ciphertext when the retention period ends (``purged_at`` says
  when); the row stays so that snapshot and identity metadata keep pointing at something.

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
)
from sqlalchemy.orm import Mapped, mapped_column

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
