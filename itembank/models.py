"""Items, their versions, their history and review, calibrated parameters, blueprints and forms.

An ``Item`` is the stable identity of a question; an ``ItemVersion`` is one wording of it. Its
``status`` is the one record of where it is in its life (``itembank.lifecycle``: draft, in
review, approved or pretest, retired). Only a draft's content is ever edited
(``microcred.db.append_only``): once submitted, only the status moves on, and a change of
content makes a new version. Candidates' responses and results point at the version they saw,
so history stays true. What happened to an item, and who did it, is its ``ItemEvent`` rows;
its review is ``ReviewNote`` and ``ReviewAssignment`` rows; a re-key is an ``ItemRekey`` row.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from microcred.db import Base, ImmutableRowError, append_only, utcnow

#: An item version's life (the transitions between them: ``itembank.lifecycle``).
DRAFT = "draft"
IN_REVIEW = "in_review"
APPROVED = "approved"
PRETEST = "pretest"
RETIRED = "retired"
STATUSES = (DRAFT, IN_REVIEW, APPROVED, PRETEST, RETIRED)
#: What may be put on a form and delivered: operational (scored) and pretest (unscored) items.
DELIVERABLE = frozenset({APPROVED, PRETEST})
#: The status ``publish_version`` gives: operational. (Before review stages existed, this was
#: the one "published" status; migration i0002 turned stored "published" into "approved".)
PUBLISHED = APPROVED


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[ItemVersion]] = relationship(
        back_populates="item", order_by="ItemVersion.version"
    )


class ItemVersion(Base):
    """One wording of an item. ``interaction`` is what the candidate may see; ``key`` and
    ``scoring`` never leave the server."""

    __tablename__ = "item_versions"
    __table_args__ = (
        UniqueConstraint("item_id", "version"),
        # the item list filters on these
        Index("ix_item_versions_status", "status"),
        Index("ix_item_versions_item_type", "item_type"),
        Index("ix_item_versions_domain_code", "domain_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default=DRAFT)
    item_type: Mapped[str] = mapped_column(String(40))
    domain_code: Mapped[str] = mapped_column(String(40))
    stem: Mapped[str] = mapped_column(Text)
    interaction: Mapped[dict[str, Any]] = mapped_column(default=dict)
    key: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scoring: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rationale: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    max_score: Mapped[float] = mapped_column(default=1.0)
    #: the shared passage, exhibit or case of an item set (members share one stimulus)
    stimulus_id: Mapped[int | None] = mapped_column(ForeignKey("stimuli.id"), index=True)
    #: Blueprint metadata beyond ``domain_code``, and where the item comes from.
    subdomain_code: Mapped[str] = mapped_column(String(40), default="", server_default="")
    cognitive_level: Mapped[str] = mapped_column(String(40), default="", server_default="")
    reference: Mapped[str] = mapped_column(Text, default="", server_default="")
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    #: Who wrote this version (None: loaded by a program, not a person).
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: How many times this version was submitted for review: sign-offs count for their round.
    review_round: Mapped[int] = mapped_column(default=0, server_default="0")
    published_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    item: Mapped[Item] = relationship(back_populates="versions")
    stimulus: Mapped[Stimulus | None] = relationship()

    @property
    def is_published(self) -> bool:
        """Whether the version may be delivered (approved or pretest), read from ``status``,
        the one source (there is no flag to set)."""
        return self.status in DELIVERABLE

    @property
    def is_draft(self) -> bool:
        return self.status == DRAFT

    @validates("status")
    def _check_status(self, _key: str, value: str) -> str:
        if value not in STATUSES:
            raise ValueError(f"item version status must be one of {', '.join(STATUSES)}, "
                             f"got {value!r}")
        return value


# Once out of draft, a version's content is frozen; its status (and when it was published)
# still moves on, each move checked by ``itembank.lifecycle`` (below).
append_only(ItemVersion, frozen_when="status", frozen_if=lambda status: status != DRAFT,
            still_changes=("status", "published_at"))


@event.listens_for(ItemVersion, "before_update")
def _status_moves_only_as_the_lifecycle_allows(mapper: Any, connection: Any,
                                               target: ItemVersion) -> None:
    from sqlalchemy import inspect

    from itembank.lifecycle import check_transition

    hist = inspect(target).attrs["status"].history
    if hist.deleted and hist.added and hist.deleted[0] != hist.added[0]:
        check_transition(hist.deleted[0], hist.added[0], without_review=True)


class ItemEvent(Base):
    """One thing that happened to an item: who (``actor_id``; None for a program), when, what
    (``action``) and a summary of the change in words, with the changed fields in ``changes``.
    The item's history is these rows; they are never edited or deleted."""

    __tablename__ = "item_events"
    __table_args__ = (Index("ix_item_events_item_id_id", "item_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    item_version_id: Mapped[int | None] = mapped_column(ForeignKey("item_versions.id"))
    version: Mapped[int | None]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(Text, default="")
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ItemEvent)


class ReviewStage(Base):
    """A review stage a program adds to the path from "in review" to approval (content, bias,
    psychometric...): each active stage needs a reviewer's sign-off before a version may be
    approved or pretested. Stages are the bank's configuration, changed by an admin."""

    __tablename__ = "review_stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)


class ReviewAssignment(Base):
    """A reviewer asked to review a version (optionally for one stage)."""

    __tablename__ = "review_assignments"
    __table_args__ = (Index("ix_review_assignments_reviewer_id", "reviewer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    stage_code: Mapped[str] = mapped_column(String(40), default="")
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ReviewAssignment)


class ReviewNote(Base):
    """A reviewer's comment on a version, or a stage sign-off (``verdict``: ``passed`` or
    ``changes`` for changes requested; empty for a plain comment), in review ``round``."""

    __tablename__ = "review_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    round: Mapped[int] = mapped_column(default=0)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    stage_code: Mapped[str] = mapped_column(String(40), default="")
    verdict: Mapped[str] = mapped_column(String(20), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ReviewNote)


class ItemRekey(Base):
    """A psychometrician's change to how a published version is scored: a new ``key``, a new
    ``scoring`` rule or ``max_score``, or ``dropped`` from scoring altogether. The version stays
    as published; scoring consults the newest re-key row of a version (``itembank.rekeys``)."""

    __tablename__ = "item_rekeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    key: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scoring: Mapped[dict[str, Any]] = mapped_column(default=dict)
    max_score: Mapped[float]
    dropped: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ItemRekey)


class ItemParameter(Base):
    """Calibrated IRT parameters of one item version; the newest row for a version wins."""

    __tablename__ = "item_parameters"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    model: Mapped[str] = mapped_column(String(10))
    a: Mapped[float]
    b: Mapped[float | None]
    c: Mapped[float] = mapped_column(default=0.0)
    thresholds: Mapped[list[Any] | None]
    standard_errors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ItemParameter)


class Blueprint(Base):
    __tablename__ = "blueprints"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    domains: Mapped[list[BlueprintDomain]] = relationship(
        back_populates="blueprint", order_by="BlueprintDomain.position"
    )


class BlueprintDomain(Base):
    __tablename__ = "blueprint_domains"
    __table_args__ = (UniqueConstraint("blueprint_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    blueprint_id: Mapped[int] = mapped_column(ForeignKey("blueprints.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    weight: Mapped[float]
    items_on_form: Mapped[int]
    #: the domain this one is a subdomain of (its code); None: a top-level domain
    parent_code: Mapped[str | None] = mapped_column(String(40))
    #: unscored pretest slots of this domain seeded on every form built to the blueprint
    pretest_items: Mapped[int] = mapped_column(default=0)

    blueprint: Mapped[Blueprint] = relationship(back_populates="domains")


#: how a form came to be: built (by hand or assembled) for an exam's list of forms, or
#: assembled for one candidate of a linear-on-the-fly exam
FIXED = "fixed"
LOFT = "loft"


class Form(Base):
    """A fixed set of published item versions in a base order, built to a blueprint.

    A draft form (not yet published) is what the form builder edits; publishing freezes it.
    ``loft_key`` names the linear-on-the-fly exam a one-candidate form was assembled for, and
    ``item_set_digest`` (SHA-256 of its sorted item ids) makes two such forms with the same
    items impossible (a unique pair)."""

    __tablename__ = "forms"
    __table_args__ = (Index("ix_forms_loft_key_item_set_digest", "loft_key", "item_set_digest",
                            unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(10), default=FIXED)
    loft_key: Mapped[str | None] = mapped_column(String(64))
    item_set_digest: Mapped[str | None] = mapped_column(String(64))
    blueprint_id: Mapped[int] = mapped_column(ForeignKey("blueprints.id"))
    is_published: Mapped[bool] = mapped_column(default=False)
    published_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    items: Mapped[list[FormItem]] = relationship(
        back_populates="form", order_by="FormItem.position"
    )
    blueprint: Mapped[Blueprint] = relationship()


append_only(Form, frozen_when="is_published")


class FormItem(Base):
    __tablename__ = "form_items"
    __table_args__ = (
        UniqueConstraint("form_id", "position"),
        UniqueConstraint("form_id", "item_version_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    position: Mapped[int]
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"))
    #: False: a pretest item riding along, answered but not counted in the candidate's score
    scored: Mapped[bool] = mapped_column(default=True)

    form: Mapped[Form] = relationship(back_populates="items")
    item_version: Mapped[ItemVersion] = relationship()


# A published form's items are fixed: none is added, edited or deleted. A draft's are the
# form builder's to change.
@event.listens_for(FormItem, "before_insert")
@event.listens_for(FormItem, "before_update")
@event.listens_for(FormItem, "before_delete")
def _published_form_items_are_fixed(mapper: Any, connection: Any, target: FormItem) -> None:
    published = connection.scalar(select(Form.is_published).where(Form.id == target.form_id))
    if published:
        raise ImmutableRowError(f"form {target.form_id} is published: its items are fixed; "
                                "build a new form instead")


class ItemEnemy(Base):
    """Two items that must never be on one form together (one cues the other's answer, or they
    test the same fact). Symmetric: stored once, the lower item id first."""

    __tablename__ = "item_enemies"
    __table_args__ = (
        UniqueConstraint("item_id", "enemy_id"),
        CheckConstraint("item_id < enemy_id", name="ordered_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    enemy_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FormDelivery(Base):
    """One delivery of a form to a candidate (written when an attempt starts on it): the item
    bank's own record of exposure, so it never reads delivery's tables."""

    __tablename__ = "form_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    delivered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(FormDelivery)


class PooledForm(Base):
    """A linear-on-the-fly form assembled ahead of time, waiting in its exam's pool for one
    candidate: ``claimed_at`` is set once, by the start that takes it."""

    __tablename__ = "pooled_forms"
    __table_args__ = (Index("ix_pooled_forms_pool_claimed_at", "pool", "claimed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pool: Mapped[str] = mapped_column(String(64))
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[dt.datetime | None]


class Stimulus(Base):
    """What an item set's members share: a passage, an exhibit or a case (sanitized HTML). One
    ``code`` may have several versions; a version stops being editable once a published item
    version uses it (``itembank.stimuli``), so what candidates saw stays true."""

    __tablename__ = "stimuli"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(default=1)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Media(Base):
    """An image or audio file, stored once by its content's SHA-256 (``itembank.media``). In the
    database rather than a folder: every app node sees it (nodes are stateless), it is backed
    up with the items that use it, and the hash key makes a second upload a no-op."""

    __tablename__ = "media"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int]
    width: Mapped[int | None]
    height: Mapped[int | None]
    filename: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(Media)
