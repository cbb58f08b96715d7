"""Pools of pre-assembled linear-on-the-fly forms: assembled before an exam window opens, so a
thousand candidates starting in the same minute each take one and cost no solver time.

:func:`claim_form` takes the oldest unclaimed form of a pool in one statement,
``UPDATE pooled_forms SET claimed_at = now WHERE id = (SELECT id ... LIMIT 1 FOR UPDATE SKIP
LOCKED) AND claimed_at IS NULL RETURNING form_id``: on PostgreSQL concurrent claimers skip each
other's locked rows instead of queueing on one; on SQLite the write lock serialises them. Either
way two candidates never get the same form, and a claim rolls back with the start it belongs to.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from itembank.assembly import (
    AssemblyTarget,
    Slots,
    assemble_unique,
    bank_versions,
    load_bank,
    loft_form_code,
    used_item_sets,
)
from itembank.blueprints import form_length
from itembank.forms import FormError, build_form
from itembank.models import LOFT, Blueprint, PooledForm
from microcred.db import utcnow

MAX_POOL_FILL = 10_000


@dataclass(frozen=True)
class PoolStatus:
    pool: str
    waiting: int
    claimed: int


def fill_pool(session: Session, *, pool: str, blueprint: Blueprint, target: AssemblyTarget,
              size: int, seed: int | None = None) -> list[int]:
    """Assemble ``size`` unique forms into ``pool`` (flushed, not committed); their form ids.

    The bank is read once; each form counts toward the exposure of its items for the next, as
    the exposure of pooled forms does in :mod:`itembank.exposure`."""
    if not 1 <= size <= MAX_POOL_FILL:
        raise FormError(f"a pool is filled with 1 to {MAX_POOL_FILL} forms at a time, not {size}",
                        field="size")
    if form_length(blueprint) < 1:
        raise FormError(f"blueprint {blueprint.code} asks for no items", field="blueprint")
    bank = load_bank(session, target)
    slots = Slots.of(blueprint)
    rng = random.Random(seed)
    used = used_item_sets(session, pool)
    made = []
    for _ in range(size):
        found, digest = assemble_unique(session, bank, slots, target, rng=rng,
                                        used_digests=used)
        versions = bank_versions(session, bank, found.scored)
        pretest = bank_versions(session, bank, found.pretest)
        form = build_form(session, code=loft_form_code(pool, digest), blueprint=blueprint,
                          versions=versions, pretest=pretest, kind=LOFT, loft_key=pool)
        session.add(PooledForm(pool=pool, form_id=form.id))
        used.add(digest)
        for i in (*found.scored, *found.pretest):
            bank.exposure[i] += 1
        made.append(form.id)
    session.flush()
    return made


def claim_form(session: Session, pool: str) -> int | None:
    """Take one waiting form of ``pool`` for a candidate (None: the pool is empty)."""
    oldest = (select(PooledForm.id)
              .where(PooledForm.pool == pool, PooledForm.claimed_at.is_(None))
              .order_by(PooledForm.id).limit(1)
              .with_for_update(skip_locked=True)
              .scalar_subquery())
    claimed = session.execute(
        update(PooledForm)
        .where(PooledForm.id == oldest, PooledForm.claimed_at.is_(None))
        .values(claimed_at=utcnow())
        .returning(PooledForm.form_id),
        execution_options={"synchronize_session": False})
    return claimed.scalar_one_or_none()


def pool_status(session: Session, pool: str) -> PoolStatus:
    waiting = session.scalar(select(func.count()).select_from(PooledForm).where(
        PooledForm.pool == pool, PooledForm.claimed_at.is_(None))) or 0
    claimed = session.scalar(select(func.count()).select_from(PooledForm).where(
        PooledForm.pool == pool, PooledForm.claimed_at.is_not(None))) or 0
    return PoolStatus(pool, int(waiting), int(claimed))
