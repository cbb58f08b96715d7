"""Which calibrated parameters are current. ``ItemParameter`` rows are never edited: a new
calibration adds rows, and the newest row (highest id) of an item version is the current one.
One place answers that, for the workspace now and for IRT scoring later."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itembank.models import ItemParameter


def current_parameters(session: Session, version_ids: Sequence[int]) -> dict[int, ItemParameter]:
    """The current (newest: highest id) ``ItemParameter`` row of each item version."""
    if not version_ids:
        return {}
    newest = (
        select(func.max(ItemParameter.id))
        .where(ItemParameter.item_version_id.in_(list(version_ids)))
        .group_by(ItemParameter.item_version_id)
    )
    rows = session.scalars(select(ItemParameter).where(ItemParameter.id.in_(newest)))
    return {row.item_version_id: row for row in rows}
