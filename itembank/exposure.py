"""How often each item version has been put before candidates: its exposure.

The item bank keeps its own record and never reads delivery's tables. Delivery calls
:func:`record_delivery` when an attempt starts on a form (one row per start, insert only, so a
thousand candidates starting at once never wait on one counter row). A version's exposure is
the number of deliveries of the forms it is on, plus the pre-assembled linear-on-the-fly forms
holding it that wait unclaimed in a pool (each is promised to one candidate already).
"""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itembank.models import FormDelivery, FormItem, PooledForm


def record_delivery(session: Session, form_id: int) -> None:
    """One more delivery of ``form_id`` (in the caller's transaction)."""
    session.add(FormDelivery(form_id=form_id))


def exposure_counts(session: Session, version_ids: Sequence[int] | None = None
                    ) -> dict[int, int]:
    """Exposure of each item version in ``version_ids`` (all versions with any, when None);
    versions never delivered nor pooled are absent (exposure 0)."""
    delivered = (select(FormItem.item_version_id, func.count().label("n"))
                 .join(FormDelivery, FormDelivery.form_id == FormItem.form_id)
                 .group_by(FormItem.item_version_id))
    pooled = (select(FormItem.item_version_id, func.count().label("n"))
              .join(PooledForm, PooledForm.form_id == FormItem.form_id)
              .where(PooledForm.claimed_at.is_(None))
              .group_by(FormItem.item_version_id))
    if version_ids is not None:
        if not version_ids:
            return {}
        wanted = list(version_ids)
        delivered = delivered.where(FormItem.item_version_id.in_(wanted))
        pooled = pooled.where(FormItem.item_version_id.in_(wanted))
    counts: dict[int, int] = {}
    for query in (delivered, pooled):
        for vid, n in session.execute(query):
            counts[vid] = counts.get(vid, 0) + int(n)
    return counts


def exposure_of(session: Session, version_id: int) -> int:
    return exposure_counts(session, [version_id]).get(version_id, 0)
