"""Creating items, publishing versions, blueprints and forms."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank.models import Blueprint, BlueprintDomain, Form, FormItem, Item, ItemVersion
from itembank.types import ItemDefinitionError, item_type
from microcred.db import utcnow


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
) -> ItemVersion:
    """Create an item with its first (draft) version."""
    scoring = scoring or {}
    if not stem.strip():
        raise ItemDefinitionError(f"item {code}: the stem is empty")
    item_type(item_type_name).validate_definition(interaction, key, scoring)
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
    )
    session.add(version)
    session.flush()
    return version


def publish_version(session: Session, version: ItemVersion) -> ItemVersion:
    if version.is_published:
        return version
    item_type(version.item_type).validate_definition(
        version.interaction, version.key, version.scoring
    )
    version.is_published = True
    version.status = "published"
    version.published_at = utcnow()
    session.flush()
    return version


def create_blueprint(
    session: Session, *, code: str, name: str, domains: list[dict[str, Any]]
) -> Blueprint:
    total = sum(float(d["weight"]) for d in domains)
    if abs(total - 1.0) > 1e-6:
        raise ItemDefinitionError(f"blueprint {code}: domain weights sum to {total}, not 1")
    bp = Blueprint(code=code, name=name)
    session.add(bp)
    session.flush()
    for pos, d in enumerate(domains):
        session.add(
            BlueprintDomain(
                blueprint_id=bp.id,
                position=pos,
                code=d["code"],
                name=d["name"],
                description=d.get("description", ""),
                weight=float(d["weight"]),
                items_on_form=int(d["items_on_form"]),
            )
        )
    session.flush()
    return bp


def create_form(
    session: Session, *, code: str, blueprint: Blueprint, versions: list[ItemVersion]
) -> Form:
    """A published form of published item versions, checked against the blueprint's counts."""
    unpublished = [v.id for v in versions if not v.is_published]
    if unpublished:
        raise ItemDefinitionError(f"form {code}: item versions {unpublished} are not published")
    if len({v.item_id for v in versions}) != len(versions):
        raise ItemDefinitionError(f"form {code}: an item appears twice")
    counts: dict[str, int] = {}
    for v in versions:
        counts[v.domain_code] = counts.get(v.domain_code, 0) + 1
    for dom in blueprint.domains:
        if counts.get(dom.code, 0) != dom.items_on_form:
            raise ItemDefinitionError(
                f"form {code}: domain {dom.code} needs {dom.items_on_form} items, "
                f"has {counts.get(dom.code, 0)}"
            )
    form = Form(code=code, blueprint_id=blueprint.id)
    session.add(form)
    session.flush()
    for pos, v in enumerate(versions):
        session.add(FormItem(form_id=form.id, position=pos, item_version_id=v.id))
    form.is_published = True
    form.published_at = utcnow()
    session.flush()
    return form
