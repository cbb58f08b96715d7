"""Creating items, revising drafts, publishing versions, blueprints and forms.

A version is edited only while it is a draft; one submitted or published (and so every item on
a published form) is refused with :class:`PublishedVersionError`: the change becomes a new
version (:func:`new_version`), so responses keep pointing at the wording their candidates saw.

Every change to an item is written to its history here (:func:`record_event`), whoever makes it
(a person through ``itembank.workflow``, or a program: the demo, an import): ``actor`` is the
user, or None for a program. Review and permissions are ``itembank.workflow``'s.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank.blueprints import save_blueprint
from itembank.content import clean_item_content
from itembank.forms import build_form
from itembank.lifecycle import ACTIONS, check_transition
from itembank.models import (
    DRAFT,
    PUBLISHED,
    Blueprint,
    Form,
    Item,
    ItemEvent,
    ItemVersion,
)
from itembank.types import ItemDefinitionError, item_type
from microcred.db import utcnow
from microcred.errors import DomainError

#: what a draft's revision may change (the item, its version number and status are not content)
CONTENT = ("item_type", "domain_code", "stem", "interaction", "key", "scoring", "rationale",
           "meta", "max_score", "stimulus_id", "subdomain_code", "cognitive_level", "reference",
           "keywords")
#: a changed value longer than this (as JSON) is summarised in the history, not copied
HISTORY_VALUE_LIMIT = 2000


def record_event(session: Session, version: ItemVersion | None, *, action: str,
                 actor: Any = None, summary: str = "", changes: dict[str, Any] | None = None,
                 item_id: int | None = None) -> ItemEvent:
    """Append one row to an item's history (``actor``: a user, or None for a program)."""
    event = ItemEvent(
        item_id=version.item_id if version is not None else item_id,
        item_version_id=version.id if version is not None else None,
        version=version.version if version is not None else None,
        actor_id=getattr(actor, "id", None), action=action, summary=summary,
        changes=changes or {})
    session.add(event)
    session.flush()
    return event


def _history_value(value: Any) -> Any:
    text = json.dumps(value, sort_keys=True, default=str)
    return value if len(text) <= HISTORY_VALUE_LIMIT else f"({len(text)} characters)"


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{field: {"from": old, "to": new}}`` for every field whose value changed."""
    return {name: {"from": _history_value(before.get(name)), "to": _history_value(after[name])}
            for name in after if before.get(name) != after[name]}


def _clean_keywords(keywords: Any) -> list[str]:
    if isinstance(keywords, str):
        keywords = keywords.split(",")
    if not isinstance(keywords, list | tuple):
        raise ItemDefinitionError("keywords must be a list of words or a comma-separated text")
    out: list[str] = []
    for word in keywords:
        word = str(word).strip().lower()
        if word and word not in out:
            out.append(word)
    return out


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
    subdomain_code: str = "",
    cognitive_level: str = "",
    reference: str = "",
    keywords: list[str] | str = (),
    actor: Any = None,
) -> ItemVersion:
    """Create an item with its first (draft) version, written by ``actor`` (None: a program);
    ``stimulus_id`` makes it a member of that stimulus's item set. Its HTML is sanitized
    (``itembank.content``) before it is kept."""
    scoring = scoring or {}
    keywords = _clean_keywords(list(keywords) if isinstance(keywords, tuple) else keywords)
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
        subdomain_code=subdomain_code.strip(),
        cognitive_level=cognitive_level.strip(),
        reference=reference,
        keywords=keywords,
        author_id=getattr(actor, "id", None),
    )
    session.add(version)
    session.flush()
    record_event(session, version, action="created", actor=actor,
                 summary=f"created {code} as a {item_type_name.replace('_', ' ')} draft")
    return version


def revise_version(session: Session, version: ItemVersion, *, actor: Any = None,
                   **changes: Any) -> ItemVersion:
    """Change a draft's content (the fields of :data:`CONTENT`); a version out of draft
    refuses. The history records which fields changed, from what to what."""
    code = session.scalar(select(Item.code).where(Item.id == version.item_id))
    if version.status != DRAFT:
        raise PublishedVersionError(
            f"item {code} version {version.version} is {version.status} and is never edited: "
            "make a new version of the item instead", item=code, version=version.version)
    unknown = sorted(set(changes) - set(CONTENT))
    if unknown:
        raise ItemDefinitionError(f"item {code}: {unknown[0]!r} is not an item version's "
                                  f"content; the fields are {', '.join(CONTENT)}")
    if "keywords" in changes:
        changes["keywords"] = _clean_keywords(changes["keywords"])
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
    changed = diff({name: getattr(version, name) for name in changes}, changes)
    for name, value in changes.items():
        setattr(version, name, value)
    session.flush()
    if changed:
        record_event(session, version, action="revised", actor=actor, changes=changed,
                     summary="changed " + ", ".join(name.replace("_", " ") for name in changed))
    return version


def new_version(session: Session, item: Item, *, actor: Any = None) -> ItemVersion:
    """A new draft of ``item``, a copy of its newest version's content to revise (an item has
    at most one draft: asking again returns the draft there is)."""
    newest = session.scalar(select(ItemVersion).where(ItemVersion.item_id == item.id)
                            .order_by(ItemVersion.version.desc()).limit(1))
    if newest is None:
        raise ItemDefinitionError(f"item {item.code} has no version to start from")
    if newest.status == DRAFT:
        return newest
    draft = ItemVersion(item_id=item.id, version=newest.version + 1,
                        author_id=getattr(actor, "id", newest.author_id),
                        **{name: getattr(newest, name) for name in CONTENT})
    session.add(draft)
    session.flush()
    record_event(session, draft, action="new_version", actor=actor,
                 summary=f"opened version {draft.version} as a draft of version {newest.version}")
    return draft


def publish_version(session: Session, version: ItemVersion, *, status: str = PUBLISHED,
                    actor: Any = None, note: str = "") -> ItemVersion:
    """Make a draft deliverable without review (``status``: approved, or pretest): for content
    reviewed before it reached the bank (the demo's, an import's, a test's). People's drafts go
    through review (``itembank.workflow``). The history says it skipped review."""
    if version.status == status:
        return version
    check_transition(version.status, status, without_review=True)
    item_type(version.item_type).validate_definition(
        version.interaction, version.key, version.scoring
    )
    version.status = status
    version.published_at = utcnow()
    session.flush()
    record_event(session, version, action=ACTIONS[(DRAFT, status)], actor=actor,
                 summary=note or f"published as {status} without review in the bank",
                 changes={"status": {"from": DRAFT, "to": status}})
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
