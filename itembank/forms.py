"""Forms: building one by hand (the form builder's services), checking it against its blueprint,
and publishing it. Assembly (:mod:`itembank.assembly`) ends in the same :func:`build_form`.

A form holds scored items (the blueprint's counts) and unscored pretest items (its pretest
slots) riding along. Which versions may go on a form is decided here, in one place
(:func:`deliverable_for`): an operational version for a scored slot, a pretest or operational
one for a pretest slot; never two versions of one item, never two enemies. Items sharing a
stimulus (an item set) are kept next to each other when the form is published.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from itembank.blueprints import top_domains
from itembank.enemies import enemy_pairs
from itembank.models import (
    APPROVED,
    FIXED,
    PRETEST,
    Blueprint,
    Form,
    FormItem,
    Item,
    ItemVersion,
)
from microcred.db import utcnow
from microcred.errors import DomainError

#: statuses of versions that may fill a scored slot (``itembank.lifecycle``)
OPERATIONAL_STATUSES = (APPROVED,)
#: statuses of versions that may fill only an unscored pretest slot
PRETEST_STATUSES = (PRETEST,)
DELIVERABLE_STATUSES = OPERATIONAL_STATUSES + PRETEST_STATUSES


class FormError(DomainError):
    """A form that cannot be built or changed as asked; the message says why."""

    status, code = 422, "invalid_form"


def item_set_digest(version_ids: Iterable[int]) -> str:
    """SHA-256 of the sorted version ids: two forms with the same items have the same digest."""
    return hashlib.sha256(",".join(map(str, sorted(version_ids))).encode()).hexdigest()


def subdomain_of(version: Any) -> str | None:
    """The blueprint subdomain code an item version is written to (its ``subdomain_code``, or
    for versions written before that field its metadata's ``subdomain``), or None."""
    code = getattr(version, "subdomain_code", None)
    if not code:
        meta = getattr(version, "meta", None) or {}
        code = meta.get("subdomain") if isinstance(meta, dict) else None
    return str(code) if code else None


def stimulus_of(version: Any) -> Any:
    """The stimulus (item set) a version belongs to, or None: members stay adjacent."""
    return getattr(version, "stimulus_id", None)


def deliverable_for(version: ItemVersion, *, scored: bool) -> str | None:
    """Why ``version`` may not fill a slot (scored or pretest), or None when it may."""
    allowed = OPERATIONAL_STATUSES if scored else DELIVERABLE_STATUSES
    if version.status not in allowed:
        slot = "a scored slot" if scored else "a pretest slot"
        return (f"version {version.version} is {version.status}; {slot} takes "
                f"{' or '.join(allowed)} versions")
    return None


# --------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class DomainCoverage:
    code: str
    name: str
    parent_code: str | None
    required: int
    placed: int
    pretest_required: int
    pretest_placed: int

    @property
    def met(self) -> bool:
        return self.placed == self.required and self.pretest_placed == self.pretest_required


def coverage(blueprint: Blueprint, placed: Sequence[tuple[ItemVersion, bool]]
             ) -> list[DomainCoverage]:
    """Each blueprint domain's required and placed counts, for ``placed`` (version, scored)."""
    scored: dict[str, int] = {}
    pretest: dict[str, int] = {}
    for version, is_scored in placed:
        for code in filter(None, (version.domain_code, subdomain_of(version))):
            bucket = scored if is_scored else pretest
            bucket[code] = bucket.get(code, 0) + 1
    return [DomainCoverage(d.code, d.name, d.parent_code, d.items_on_form,
                           scored.get(d.code, 0),
                           d.pretest_items if d.parent_code is None else 0,
                           pretest.get(d.code, 0) if d.parent_code is None else 0)
            for d in blueprint.domains]


def coverage_problems(blueprint: Blueprint, placed: Sequence[tuple[ItemVersion, bool]]
                      ) -> list[str]:
    """What keeps ``placed`` from meeting the blueprint, one sentence each (empty: it does)."""
    problems = []
    for c in coverage(blueprint, placed):
        if c.placed != c.required:
            problems.append(f"domain {c.code} needs {c.required} scored items, has {c.placed}")
        if c.pretest_placed != c.pretest_required:
            problems.append(f"domain {c.code} needs {c.pretest_required} pretest items, "
                            f"has {c.pretest_placed}")
    known = {d.code for d in top_domains(blueprint)}
    stray = sorted({v.domain_code for v, _ in placed} - known)
    if stray:
        problems.append(f"domain {', '.join(stray)} is not in blueprint {blueprint.code}")
    return problems


def form_placements(session: Session, form: Form) -> list[tuple[ItemVersion, bool]]:
    rows = session.execute(select(ItemVersion, FormItem.scored)
                           .join(FormItem, FormItem.item_version_id == ItemVersion.id)
                           .where(FormItem.form_id == form.id).order_by(FormItem.position))
    return [(v, bool(s)) for v, s in rows]


def unscored_versions(session: Session, form_id: int) -> set[int]:
    """The pretest (unscored) item versions of a form: delivery leaves them out of the score."""
    return set(session.scalars(select(FormItem.item_version_id).where(
        FormItem.form_id == form_id, FormItem.scored.is_(False))))


# --------------------------------------------------------------------------- checks


def _check_placeable(session: Session, form_code: str,
                     placed: Sequence[tuple[ItemVersion, bool]]) -> None:
    codes = dict(session.execute(select(Item.id, Item.code).where(
        Item.id.in_({v.item_id for v, _ in placed}))).all()) if placed else {}
    for version, scored in placed:
        why = deliverable_for(version, scored=scored)
        if why:
            raise FormError(f"form {form_code}: item {codes.get(version.item_id)} {why}",
                            field="items")
    seen: dict[int, ItemVersion] = {}
    for version, _ in placed:
        if version.item_id in seen:
            raise FormError(f"form {form_code}: item {codes.get(version.item_id)} appears twice "
                            "(a form holds one version of an item)", field="items")
        seen[version.item_id] = version
    pairs = enemy_pairs(session, seen)
    if pairs:
        a, b = min(pairs)
        raise FormError(f"form {form_code}: items {codes.get(a)} and {codes.get(b)} are enemies "
                        "and may not be on one form together", field="items")


def _base_order(blueprint: Blueprint, placed: Sequence[tuple[ItemVersion, bool]]
                ) -> list[tuple[ItemVersion, bool]]:
    """Blueprint domain order, items of one stimulus together (at the first member's place)."""
    rank = {d.code: i for i, d in enumerate(top_domains(blueprint))}
    ordered = sorted(enumerate(placed), key=lambda p: (rank.get(p[1][0].domain_code, 1 << 20),
                                                       p[0]))
    out: list[tuple[ItemVersion, bool]] = []
    groups: dict[Any, list[tuple[ItemVersion, bool]]] = {}
    for _, pv in ordered:
        stim = stimulus_of(pv[0])
        if stim is None:
            out.append(pv)
        elif stim in groups:
            groups[stim].append(pv)
        else:
            groups[stim] = [pv]
            out.append(pv)
    final: list[tuple[ItemVersion, bool]] = []
    for pv in out:
        stim = stimulus_of(pv[0])
        final.extend(groups[stim] if stim is not None else [pv])
    return final


# --------------------------------------------------------------------------- building


def build_form(session: Session, *, code: str, blueprint: Blueprint,
               versions: Sequence[ItemVersion], pretest: Sequence[ItemVersion] = (),
               name: str = "", kind: str = FIXED, loft_key: str | None = None,
               check_coverage: bool = True) -> Form:
    """A published form of ``versions`` (scored) and ``pretest`` (unscored), checked against
    the blueprint, deliverability and enemies; nothing is written when a check fails."""
    placed = [(v, True) for v in versions] + [(v, False) for v in pretest]
    if session.scalar(select(Form.id).where(Form.code == code)) is not None:
        raise FormError(f"a form with code {code} already exists", field="code")
    _check_placeable(session, code, placed)
    if check_coverage:
        problems = coverage_problems(blueprint, placed)
        if problems:
            raise FormError(f"form {code}: {'; '.join(problems)}", field="items")
    form = Form(code=code, name=name, kind=kind, loft_key=loft_key, blueprint_id=blueprint.id,
                item_set_digest=item_set_digest(v.id for v, _ in placed) if loft_key else None)
    session.add(form)
    session.flush()
    session.add_all(FormItem(form_id=form.id, position=pos, item_version_id=v.id, scored=scored)
                    for pos, (v, scored) in enumerate(_base_order(blueprint, placed)))
    session.flush()  # the items go in before the form is published: after, they are fixed
    form.is_published = True
    form.published_at = utcnow()
    session.flush()
    return form


def create_draft_form(session: Session, *, code: str, blueprint: Blueprint,
                      name: str = "") -> Form:
    """An empty draft form for the form builder."""
    code = (code or "").strip()
    if not code:
        raise FormError("the form needs a code", field="code")
    if session.scalar(select(Form.id).where(Form.code == code)) is not None:
        raise FormError(f"a form with code {code} already exists", field="code")
    form = Form(code=code, name=(name or "").strip(), blueprint_id=blueprint.id)
    session.add(form)
    session.flush()
    return form


def _require_draft(form: Form) -> None:
    if form.is_published:
        raise FormError(f"form {form.code} is published: its items are fixed; build a new form",
                        field="form")


def add_to_form(session: Session, form: Form, version: ItemVersion, *,
                scored: bool = True) -> FormItem:
    """Put ``version`` on the draft ``form`` (last), if it may go there."""
    _require_draft(form)
    placed = form_placements(session, form)
    _check_placeable(session, form.code, [*placed, (version, scored)])
    position = session.scalar(select(func.coalesce(func.max(FormItem.position), -1))
                              .where(FormItem.form_id == form.id)) + 1
    row = FormItem(form_id=form.id, position=position, item_version_id=version.id,
                   scored=scored)
    session.add(row)
    session.flush()
    return row


def _placed(session: Session, form: Form, version_id: int) -> FormItem:
    """The row placing ``version_id`` on ``form``, or a FormError naming the field."""
    row = session.scalar(select(FormItem).where(FormItem.form_id == form.id,
                                                FormItem.item_version_id == version_id))
    if row is None:
        raise FormError(f"form {form.code} does not hold item version {version_id}",
                        field="item_version_id")
    return row


def remove_from_form(session: Session, form: Form, version_id: int) -> None:
    """Take a version off the draft ``form``; the items after it move up one place."""
    _require_draft(form)
    row = _placed(session, form, version_id)
    gone = row.position
    session.delete(row)
    session.flush()
    later = session.scalars(select(FormItem.id).where(
        FormItem.form_id == form.id, FormItem.position > gone).order_by(FormItem.position))
    for item_id in list(later):  # one by one, upwards: the unique (form, position) holds
        session.execute(update(FormItem).where(FormItem.id == item_id)
                        .values(position=FormItem.position - 1))
    session.expire_all()


def set_scored(session: Session, form: Form, version_id: int, scored: bool) -> None:
    """Make a placed version a scored item or an unscored pretest item."""
    _require_draft(form)
    row = _placed(session, form, version_id)
    version = session.get(ItemVersion, version_id)
    why = deliverable_for(version, scored=scored)
    if why:
        raise FormError(f"form {form.code}: {why}", field="scored")
    row.scored = scored
    session.flush()


def publish_form(session: Session, form: Form) -> Form:
    """Freeze a draft form that meets its blueprint: its items are fixed from now on."""
    _require_draft(form)
    placed = form_placements(session, form)
    if not placed:
        raise FormError(f"form {form.code} has no items", field="items")
    _check_placeable(session, form.code, placed)
    problems = coverage_problems(form.blueprint, placed)
    if problems:
        raise FormError(f"form {form.code} does not meet its blueprint: {'; '.join(problems)}",
                        field="items")
    ordered = _base_order(form.blueprint, placed)
    if [v.id for v, _ in ordered] != [v.id for v, _ in placed]:
        rows = {r.item_version_id: r for r in session.scalars(
            select(FormItem).where(FormItem.form_id == form.id))}
        for r in rows.values():  # out of the way first: (form, position) is unique
            r.position += len(rows)
        session.flush()
        for pos, (v, _) in enumerate(ordered):
            rows[v.id].position = pos
        session.flush()
    form.is_published = True
    form.published_at = utcnow()
    session.flush()
    return form
