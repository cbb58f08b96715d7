"""Credentials' tables: issuers and their keys, achievements (with validity period, alignment,
exam link and stack criteria), issued credentials (the signed JSON stored verbatim), status
lists, status events (revocation, suspension, restoration) with the signed list publications,
and holders' display choices.

Issued credentials, keys, status events, publications and holder choices are append-only
(``microcred.db.append_only``): a new row supersedes an old one. A recertification is a new
credential whose ``supersedes_id`` points at the old.

Achievements are linked to exams by ``Achievement.exam_id`` (a pass on that exam earns it) and
``Achievement.recertification_exam_id`` (a pass on that exam renews it).
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from microcred.db import Base, append_only, utcnow


class Issuer(Base):
    """An issuing organisation (OB 3.0 Profile). ``slug`` names its did:web path."""

    __tablename__ = "credential_issuers"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(254))
    description: Mapped[str] = mapped_column(Text, default="")
    #: the default issuer is ``did:web:<host>`` (``/.well-known/did.json``); others
    #: ``did:web:<host>:issuers:<slug>``
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    keys: Mapped[list[IssuerKey]] = relationship(order_by="IssuerKey.id")


class IssuerKey(Base):
    """One Ed25519 key pair of an issuer. The newest signs; older ones stay published so that
    the credentials they signed keep verifying. The private key is sealed (AES-256-GCM)."""

    __tablename__ = "credential_issuer_keys"
    __table_args__ = (UniqueConstraint("issuer_id", "key_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("credential_issuers.id"), index=True)
    #: the did:web fragment, ``key-1``, ``key-2``, ...
    key_ref: Mapped[str] = mapped_column(String(40))
    public_key_multibase: Mapped[str] = mapped_column(String(100), unique=True)
    sealed_private_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(IssuerKey)


class Achievement(Base):
    """What a credential recognises (OB 3.0 Achievement): earned by passing ``exam_id``, or,
    for a stack, by holding ``stack_required`` of the ``stack_components`` (achievement codes).
    """

    __tablename__ = "credential_achievements"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("credential_issuers.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    criteria: Mapped[str] = mapped_column(Text)
    achievement_type: Mapped[str] = mapped_column(String(40), default="Certification")
    exam_id: Mapped[int | None] = mapped_column(ForeignKey("exams.id"), unique=True)
    recertification_exam_id: Mapped[int | None] = mapped_column(ForeignKey("exams.id"),
                                                                unique=True)
    #: credentials expire this many days after issue (None: never)
    validity_days: Mapped[int | None]
    #: alignment targets beyond the exam blueprint's domains: [{code, name, description, url}]
    extra_alignment: Mapped[list[Any]] = mapped_column(default=list)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    is_stack: Mapped[bool] = mapped_column(default=False)
    stack_components: Mapped[list[Any]] = mapped_column(default=list)
    stack_required: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    issuer: Mapped[Issuer] = relationship()


class StatusList(Base):
    """A pair of bitstrings of ``size`` entries, one per purpose (revocation, suspension),
    published at ``/status/<id>/<purpose>``. A credential owns the same index in both.

    A list is signed by the key that signed its credentials (``issuer_key_id``), so that with
    did:key, where a rotated key is a new DID, list and credentials keep the same issuer."""

    __tablename__ = "credential_status_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("credential_issuers.id"), index=True)
    issuer_key_id: Mapped[int] = mapped_column(ForeignKey("credential_issuer_keys.id"))
    size: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Credential(Base):
    """An issued OpenBadgeCredential. ``document`` is the signed JSON exactly as issued."""

    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("status_list_id", "status_index"),
        UniqueConstraint("result_id", "achievement_id"),
        Index("ix_credentials_holder_achievement", "holder_id", "achievement_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    achievement_id: Mapped[int] = mapped_column(ForeignKey("credential_achievements.id"))
    issuer_key_id: Mapped[int] = mapped_column(ForeignKey("credential_issuer_keys.id"))
    holder_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    result_id: Mapped[int | None] = mapped_column(ForeignKey("results.id"))
    #: exam | stack | recertification
    kind: Mapped[str] = mapped_column(String(20))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id"))
    status_list_id: Mapped[int] = mapped_column(ForeignKey("credential_status_lists.id"))
    status_index: Mapped[int]
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime | None] = mapped_column(index=True)
    document: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    achievement: Mapped[Achievement] = relationship()
    issuer_key: Mapped[IssuerKey] = relationship()
    supersedes: Mapped[Credential | None] = relationship(remote_side="Credential.id")

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.document)


append_only(Credential)


class StatusEvent(Base):
    """Who revoked, suspended or restored a credential, when and why. Never edited: the
    credential's status is derived from its events."""

    __tablename__ = "credential_status_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"), index=True)
    status_list_id: Mapped[int] = mapped_column(ForeignKey("credential_status_lists.id"),
                                                index=True)
    #: revoke | suspend | restore
    action: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(StatusEvent)


class StatusListPublication(Base):
    """A signed BitstringStatusListCredential, cached. ``through_event_id`` is the newest
    status event it reflects; a newer event makes it stale."""

    __tablename__ = "credential_status_publications"
    __table_args__ = (Index("ix_credential_status_publications_list_purpose",
                            "status_list_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    status_list_id: Mapped[int] = mapped_column(ForeignKey("credential_status_lists.id"))
    purpose: Mapped[str] = mapped_column(String(12))
    through_event_id: Mapped[int] = mapped_column(default=0)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(StatusListPublication)


class HolderChoice(Base):
    """How a holder shows themself on public badge pages, and their DID if they added one.
    The newest row wins."""

    __tablename__ = "credential_holder_choices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: full | initials | hidden
    name_display: Mapped[str] = mapped_column(String(10), default="full")
    did: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(HolderChoice)


class Issuance(Base):
    """The badge a released pass is owed, while a job issues it (``credentials.jobs``): written
    ``pending`` by the ``result_released`` receiver in the release's own transaction (so a
    release that rolls back leaves none), ``failed`` with the reason when an attempt failed (huey
    retries it; the sweeper queues it again later), ``issued`` once its credentials exist."""

    __tablename__ = "credential_issuances"

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"), unique=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: pending | failed | issued
    state: Mapped[str] = mapped_column(String(10), index=True, default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: when a job for it was last queued (by the receiver or the sweeper)
    queued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- pathways: rules, trainings, completions (``credentials.pathways``) -------------------------

class PathwayRule(Base):
    """What earns a stack (``achievement_id``: "A and B, plus 2 of C-F") or opens an exam to a
    candidate (``exam_id``: its prerequisites). A component is an achievement code, or
    ``training:<code>`` for a training requirement; a component that is itself a stack makes
    this rule a cluster.

    Rules are data edited in the admin UI: each edit is a new row, the newest row of a subject
    is the rule (an exam rule with no components removes the exam's prerequisites).
    ``credentials.pathways`` is the one evaluator of these rules."""

    __tablename__ = "credential_pathway_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    achievement_id: Mapped[int | None] = mapped_column(ForeignKey("credential_achievements.id"),
                                                       index=True)
    exam_id: Mapped[int | None] = mapped_column(ForeignKey("exams.id"), index=True)
    #: component references every one of which is needed
    required: Mapped[list[Any]] = mapped_column(default=list)
    #: elective groups: [{"choose": n, "from": [references]}]
    electives: Mapped[list[Any]] = mapped_column(default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(PathwayRule)


class Training(Base):
    """A training requirement (a course, a workshop) that a rule can name as
    ``training:<code>``; completions are recorded by an admin, imported from CSV or posted by an
    LMS. ``validity_days``: a completion counts for that long (None: for ever)."""

    __tablename__ = "credential_trainings"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    validity_days: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TrainingCompletion(Base):
    """A holder completed a training on ``completed_at``; ``source`` says who said so (admin,
    csv, lms) and ``reference`` the sender's own id for it. One completion per holder, training
    and moment: a resent completion is the same completion."""

    __tablename__ = "credential_training_completions"
    __table_args__ = (UniqueConstraint("training_id", "holder_id", "completed_at",
                                       name="uq_credential_training_completions_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    training_id: Mapped[int] = mapped_column(ForeignKey("credential_trainings.id"))
    holder_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    completed_at: Mapped[dt.datetime]
    #: admin | csv | lms
    source: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str | None] = mapped_column(String(200))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(TrainingCompletion)


class LmsToken(Base):
    """A bearer token an LMS posts training completions with; only its SHA-256 is stored.
    ``revoked_at`` set: refused."""

    __tablename__ = "credential_lms_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
