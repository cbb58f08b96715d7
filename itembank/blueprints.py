"""Blueprints: the domains (and subdomains) a form covers, with item counts or weights.

A blueprint is given either by **counts** (each domain's ``items_on_form``) or by **weights**
(each domain's share of ``total_items``, the shares summing to 1 or to 100). Both are stored:
counts are derived from weights by the largest-remainder method (Hamilton), weights from counts
as count / total, so assembly always reads counts and reports always read weights.

A subdomain names its domain in ``parent_code`` (one level deep); its count is part of its
domain's (the subdomains of a domain may not ask for more items than the domain has). Each
domain may also seed ``pretest_items`` unscored pretest slots on every form.

Every write goes through :func:`save_blueprint`, which checks the whole definition first and
writes nothing when any part is wrong; its :class:`BlueprintError` names the field
(``domains[2].weight``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank.models import Blueprint, BlueprintDomain, Form
from microcred.inputs import InvalidInput, is_whole

CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_DOMAINS = 100
MAX_ITEMS = 1000
WEIGHT_TOLERANCE = 1e-6


class BlueprintError(InvalidInput):
    """A blueprint definition that cannot be stored; ``field`` names the bad part."""

    status, code = 422, "invalid_blueprint"


@dataclass(frozen=True)
class DomainSpec:
    """One checked domain, ready to store."""

    code: str
    name: str
    description: str
    weight: float
    items_on_form: int
    parent_code: str | None
    pretest_items: int


def _code(raw: Any, field: str, max_length: int) -> str:
    text = str(raw or "").strip()
    if not text:
        raise BlueprintError(f"{field} is required", field=field)
    if len(text) > max_length or not CODE_PATTERN.fullmatch(text):
        raise BlueprintError(f"{field} must be 1 to {max_length} letters, digits, dots, dashes "
                             f"or underscores, starting with a letter or digit; got {text[:50]!r}",
                             field=field)
    return text


def _count(raw: Any, field: str, *, low: int = 0, high: int = MAX_ITEMS) -> int:
    if isinstance(raw, bool):
        raise BlueprintError(f"{field} must be a whole number from {low} to {high}", field=field)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, str) and is_whole(raw.strip()):
        raw = int(raw.strip())
    if not isinstance(raw, int) or not low <= raw <= high:
        raise BlueprintError(f"{field} must be a whole number from {low} to {high}, got {raw!r}",
                             field=field)
    return raw


def _weight(raw: Any, field: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BlueprintError(f"{field} must be a number, got {raw!r}", field=field) from None
    if not math.isfinite(value) or value < 0:
        raise BlueprintError(f"{field} must be a number of at least 0, got {raw!r}", field=field)
    return value


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def largest_remainder(weights: list[float], total: int) -> list[int]:
    """Whole counts summing to ``total`` in proportion to ``weights`` (Hamilton's method: floor
    each quota, then give the left-over seats to the largest remainders, first listed first)."""
    s = sum(weights)
    quotas = [w / s * total for w in weights] if s else [0.0] * len(weights)
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def check_domains(domains: list[dict[str, Any]], *, total_items: int | None = None
                  ) -> list[DomainSpec]:
    """The checked domains of a blueprint definition (see the module's docstring).

    ``total_items`` given: the blueprint is by weights and each domain's count is derived.
    Otherwise each domain gives ``items_on_form`` (and may give a weight, checked too)."""
    if not isinstance(domains, list) or not domains:
        raise BlueprintError("a blueprint needs at least one domain", field="domains")
    if len(domains) > MAX_DOMAINS:
        raise BlueprintError(f"a blueprint has at most {MAX_DOMAINS} domains", field="domains")
    by_weight = total_items is not None
    if by_weight:
        total_items = _count(total_items, "total_items", low=1)
    seen: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for i, raw in enumerate(domains):
        where = f"domains[{i}]"
        if not isinstance(raw, dict):
            raise BlueprintError(f"{where} must be an object with a code and a name", field=where)
        code = _code(raw.get("code"), f"{where}.code", 40)
        if code in seen:
            raise BlueprintError(f"{where}.code: domain code {code} is used twice (also by "
                                 f"domains[{seen[code]}]); codes must be unique",
                                 field=f"{where}.code")
        seen[code] = i
        name = str(raw.get("name") or "").strip()
        if not name:
            raise BlueprintError(f"{where}.name: domain {code} needs a name",
                                 field=f"{where}.name")
        parent = None if _blank(raw.get("parent_code")) else str(raw["parent_code"]).strip()
        weight = None if _blank(raw.get("weight")) else _weight(raw["weight"], f"{where}.weight")
        count = (None if _blank(raw.get("items_on_form"))
                 else _count(raw["items_on_form"], f"{where}.items_on_form"))
        if by_weight and weight is None:
            raise BlueprintError(f"{where}.weight: domain {code} needs a weight (the blueprint "
                                 "is given by weights)", field=f"{where}.weight")
        if not by_weight and count is None:
            raise BlueprintError(f"{where}.items_on_form: domain {code} needs an item count",
                                 field=f"{where}.items_on_form")
        rows.append({"i": i, "code": code, "name": name, "parent": parent, "weight": weight,
                     "count": count,
                     "description": str(raw.get("description") or "").strip(),
                     "pretest": _count(raw.get("pretest_items") or 0,
                                       f"{where}.pretest_items")})
    top = [r for r in rows if r["parent"] is None]
    for r in rows:
        if r["parent"] is not None:
            parent = next((t for t in top if t["code"] == r["parent"]), None)
            if parent is None:
                raise BlueprintError(
                    f"domains[{r['i']}].parent_code: {r['parent']!r} is not a top-level domain "
                    "of this blueprint (subdomains are one level deep)",
                    field=f"domains[{r['i']}].parent_code")
    if not top:
        raise BlueprintError("a blueprint needs at least one top-level domain", field="domains")
    _check_weights(top, "the domains' weights")
    if by_weight:
        _derive_counts(top, total_items, scale=_scale(top))
        for parent in top:
            subs = [r for r in rows if r["parent"] == parent["code"]]
            if subs:
                for r in subs:
                    r["count"] = round(r["weight"] / _scale(top) * total_items)
    total = sum(r["count"] for r in top)
    if total < 1:
        raise BlueprintError("the domains' item counts sum to 0: a form needs at least one item",
                             field="domains")
    for parent in top:
        subs = [r for r in rows if r["parent"] == parent["code"]]
        asked = sum(r["count"] for r in subs)
        if asked > parent["count"]:
            raise BlueprintError(
                f"domains[{subs[-1]['i']}].items_on_form: the subdomains of {parent['code']} ask "
                f"for {asked} items; the domain has {parent['count']}",
                field=f"domains[{subs[-1]['i']}].items_on_form")
    for r in rows:
        if r["weight"] is None or r["parent"] is not None:
            r["weight"] = r["count"] / total
        else:
            r["weight"] = r["weight"] / _scale(top)
    return [DomainSpec(code=r["code"], name=r["name"], description=r["description"],
                       weight=r["weight"], items_on_form=r["count"], parent_code=r["parent"],
                       pretest_items=r["pretest"]) for r in rows]


def _scale(top: list[dict[str, Any]]) -> float:
    """1 or 100: what the given weights sum to (checked by :func:`_check_weights`)."""
    total = sum(r["weight"] for r in top if r["weight"] is not None)
    return 100.0 if total > 1.5 else 1.0


def _check_weights(top: list[dict[str, Any]], what: str) -> None:
    given = [r for r in top if r["weight"] is not None]
    if not given:
        return
    if len(given) != len(top):
        missing = next(r for r in top if r["weight"] is None)
        raise BlueprintError(f"domains[{missing['i']}].weight: give every top-level domain a "
                             "weight, or none", field=f"domains[{missing['i']}].weight")
    total = sum(r["weight"] for r in given)
    if not (abs(total - 1) <= WEIGHT_TOLERANCE or abs(total - 100) <= 100 * WEIGHT_TOLERANCE):
        raise BlueprintError(f"{what} sum to {total:g}; they must sum to 1 (or to 100, as "
                             "percentages)", field="domains")


def _derive_counts(top: list[dict[str, Any]], total_items: int, *, scale: float) -> None:
    counts = largest_remainder([r["weight"] / scale for r in top], total_items)
    for r, n in zip(top, counts):
        r["count"] = n


def save_blueprint(session: Session, *, code: str, name: str, domains: list[dict[str, Any]],
                   total_items: int | None = None, blueprint: Blueprint | None = None
                   ) -> Blueprint:
    """Create a blueprint, or (``blueprint`` given) replace its name and domains. A blueprint
    that a published form was built to is never changed: build a new blueprint instead."""
    code = _code(code, "code", 64)
    name = str(name or "").strip()
    if not name:
        raise BlueprintError("the blueprint needs a name", field="name")
    specs = check_domains(domains, total_items=total_items)
    clash = session.scalar(select(Blueprint.id).where(Blueprint.code == code))
    if clash is not None and (blueprint is None or clash != blueprint.id):
        raise BlueprintError(f"a blueprint with code {code} already exists", field="code")
    if blueprint is None:
        blueprint = Blueprint(code=code, name=name)
        session.add(blueprint)
        session.flush()
    else:
        if in_use(session, blueprint):
            raise BlueprintError(f"blueprint {blueprint.code} has published forms built to it "
                                 "and is not changed; make a new blueprint", field="code")
        blueprint.code, blueprint.name = code, name
        for old in list(blueprint.domains):
            session.delete(old)
        session.flush()
    for position, spec in enumerate(specs):
        session.add(BlueprintDomain(blueprint_id=blueprint.id, position=position, code=spec.code,
                                    name=spec.name, description=spec.description,
                                    weight=spec.weight, items_on_form=spec.items_on_form,
                                    parent_code=spec.parent_code,
                                    pretest_items=spec.pretest_items))
    session.flush()
    session.expire(blueprint, ["domains"])
    return blueprint


def in_use(session: Session, blueprint: Blueprint) -> bool:
    return session.scalar(select(Form.id).where(Form.blueprint_id == blueprint.id,
                                                Form.is_published.is_(True)).limit(1)) is not None


def top_domains(blueprint: Blueprint) -> list[BlueprintDomain]:
    return [d for d in blueprint.domains if d.parent_code is None]


def form_length(blueprint: Blueprint) -> int:
    """Scored items on a form built to ``blueprint``."""
    return sum(d.items_on_form for d in top_domains(blueprint))


def pretest_length(blueprint: Blueprint) -> int:
    return sum(d.pretest_items for d in top_domains(blueprint))


def blueprint_definition(blueprint: Blueprint) -> dict[str, Any]:
    """The blueprint as :func:`save_blueprint` takes it (the editor's starting point)."""
    return {"code": blueprint.code, "name": blueprint.name, "domains": [
        {"code": d.code, "name": d.name, "description": d.description, "weight": d.weight,
         "items_on_form": d.items_on_form, "parent_code": d.parent_code,
         "pretest_items": d.pretest_items} for d in blueprint.domains]}
