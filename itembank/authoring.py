"""Creating items, revising drafts, publishing versions, blueprints and forms.

A version is edited only while it is a draft; a published one (and so every item on a published
form) is refused with :class:`PublishedVersionError`: the change becomes a new version
(:func:`new_version`), so responses keep pointing at the wording their candidates saw."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank.blueprints import save_blueprint
from itembank.content import clean_item_content
from itembank.forms import build_form
from itembank.models import (
    DRAFT,
    PUBLISHED,
    Blueprint,
    Form,
    Item,
    ItemVersion,
)
from itembank.types import ItemDefinitionError, item_type
from microcred.db import utcnow
from microcred.errors import DomainError

#: what a draft's revision may change (the item, its version number and status are not content)
CONTENT = ("item_type", "domain_code", "stem", "interaction", "key", "scoring", "rationale",
           "meta", "max_score", "stimulus_id")


class PublishedVersionError(DomainError, ValueError):
    """A published item version was to be edited."""

    status = 409
    code = "published_item_version"


def create_item(
    session: Session,
    *,
    code: str,
    item_type_name: str,
    domain_code: str,
    stem: str,
    interaction: dict[str, Any],
    key: dict[str, Any],
    scoring: dict[str, Any] | None = None,
    rationale: str = "",
    meta: dict[str, Any] | None = None,
    max_score: float = 1.0,
    stimulus_id: int | None = None,
) -> ItemVersion:
    """Create an item with its first (draft) version; ``stimulus_id`` makes it a member of
    that stimulus's item set. Its HTML is sanitized (``itembank.content``) before it is kept."""
    scoring = scoring or {}
    if not stem.strip():
        raise ItemDefinitionError(f"item {code}: the stem is empty")
    item_type(item_type_name).validate_definition(interaction, key, scoring)
    stem, interaction, rationale = clean_item_content(
        item_type_name, stem=stem, interaction=interaction, rationale=rationale)
    if session.scalar(select(Item.id).where(Item.code == code)) is not None:
        raise ItemDefinitionError(f"an item with code {code} already exists")
    item = Item(code=code)
    session.add(item)
    session.flush()
    version = ItemVersion(
        item_id=item.id,
        version=1,
        item_type=item_type_name,
        domain_code=domain_code,
        stem=stem,
        interaction=interaction,
        key=key,
        scoring=scoring,
        rationale=rationale,
        meta=meta or {},
        max_score=max_score,
        stimulus_id=stimulus_id,
    )
    session.add(version)
    session.flush()
    return version


def revise_version(session: Session, version: ItemVersion, **changes: Any) -> ItemVersion:
    """Change a draft's content (the fields of :data:`CONTENT`); a published version refuses."""
    code = session.scalar(select(Item.code).where(Item.id == version.item_id))
    if version.status != DRAFT:
        raise PublishedVersionError(
            f"item {code} version {version.version} is {version.status} and is never edited: "
            "make a new version of the item instead", item=code, version=version.version)
    unknown = sorted(set(changes) - set(CONTENT))
    if unknown:
        raise ItemDefinitionError(f"item {code}: {unknown[0]!r} is not an item version's "
                                  f"content; the fields are {', '.join(CONTENT)}")
    merged = {name: changes.get(name, getattr(version, name)) for name in CONTENT}
    if not str(merged["stem"]).strip():
        raise ItemDefinitionError(f"item {code}: the stem is empty")
    item_type(merged["item_type"]).validate_definition(
        merged["interaction"], merged["key"], merged["scoring"])
    stem, interaction, rationale = clean_item_content(
        merged["item_type"], stem=merged["stem"], interaction=merged["interaction"],
        rationale=merged["rationale"])
    for name, value in (("stem", stem), ("interaction", interaction), ("rationale", rationale)):
        if name in changes:
            changes[name] = value
    for name, value in changes.items():
        setattr(version, name, value)
    session.flush()
    return version


def new_version(session: Session, item: Item) -> ItemVersion:
    """A new draft of ``item``, a copy of its newest version's content to revise."""
    newest = session.scalar(select(ItemVersion).where(ItemVersion.item_id == item.id)
                            .order_by(ItemVersion.version.desc()).limit(1))
    if newest is None:
        raise ItemDefinitionError(f"item {item.code} has no version to start from")
    draft = ItemVersion(item_id=item.id, version=newest.version + 1,
                        **{name: getattr(newest, name) for name in CONTENT})
    session.add(draft)
    session.flush()
    return draft


def publish_version(session: Session, version: ItemVersion) -> ItemVersion:
    if version.status == PUBLISHED:
        return version
    item_type(version.item_type).validate_definition(
        version.interaction, version.key, version.scoring
    )
    version.status = PUBLISHED
    version.published_at = utcnow()
    session.flush()
    return version


def create_blueprint(
    session: Session, *, code: str, name: str, domains: list[dict[str, Any]],
    total_items: int | None = None,
) -> Blueprint:
    """A blueprint (see :func:`itembank.blueprints.save_blueprint`, which checks it)."""
    return save_blueprint(session, code=code, name=name, domains=domains,
                          total_items=total_items)


def create_form(
    session: Session, *, code: str, blueprint: Blueprint, versions: list[ItemVersion],
    pretest: list[ItemVersion] | None = None, name: str = "",
) -> Form:
    """A published form of deliverable item versions, checked against the blueprint's counts
    (see :func:`itembank.forms.build_form`)."""
    return build_form(session, code=code, blueprint=blueprint, versions=versions,
                      pretest=pretest or (), name=name)
