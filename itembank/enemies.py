"""Enemy items: two items that must never be on one form together (one gives away the other's
answer, or both test the same fact). The relation is symmetric and between items, not versions:
a new version of an item keeps its enemies. Form building and assembly both refuse enemies.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from itembank.models import Item, ItemEnemy
from microcred.errors import DomainError


class EnemyError(DomainError):
    """An enemy relation that cannot be made; the message says why."""

    status, code = 422, "invalid_enemy"


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def add_enemy(session: Session, item: Item, enemy: Item, *, reason: str = "") -> ItemEnemy:
    """Make ``item`` and ``enemy`` enemies (both ways); an existing relation is returned as is."""
    if item.id == enemy.id:
        raise EnemyError(f"item {item.code} cannot be its own enemy", field="enemy")
    low, high = _pair(item.id, enemy.id)
    row = session.scalar(select(ItemEnemy).where(ItemEnemy.item_id == low,
                                                 ItemEnemy.enemy_id == high))
    if row is None:
        row = ItemEnemy(item_id=low, enemy_id=high, reason=reason.strip())
        session.add(row)
        session.flush()
    return row


def remove_enemy(session: Session, item: Item, enemy: Item) -> bool:
    """Forget that the two are enemies; True when they were."""
    low, high = _pair(item.id, enemy.id)
    gone = session.execute(delete(ItemEnemy).where(ItemEnemy.item_id == low,
                                                   ItemEnemy.enemy_id == high))
    return bool(gone.rowcount)


def enemies_of(session: Session, item_id: int) -> list[int]:
    """The ids of ``item_id``'s enemies, ascending."""
    rows = session.execute(select(ItemEnemy.item_id, ItemEnemy.enemy_id).where(
        or_(ItemEnemy.item_id == item_id, ItemEnemy.enemy_id == item_id)))
    return sorted(b if a == item_id else a for a, b in rows)


def enemy_pairs(session: Session, item_ids: Iterable[int]) -> set[tuple[int, int]]:
    """Every enemy pair ``(low, high)`` with both items among ``item_ids``."""
    ids = set(item_ids)
    if len(ids) < 2:
        return set()
    pairs: set[tuple[int, int]] = set()
    chunk = sorted(ids)
    # (one IN list per 5,000 ids keeps the statement within every backend's parameter limit)
    for start in range(0, len(chunk), 5000):
        part = chunk[start:start + 5000]
        rows = session.execute(select(ItemEnemy.item_id, ItemEnemy.enemy_id)
                               .where(ItemEnemy.item_id.in_(part)))
        pairs.update((a, b) for a, b in rows if b in ids)
    return pairs
