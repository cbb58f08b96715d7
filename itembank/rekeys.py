"""Re-keying: changing how a published item version is scored, without editing it.

A published version is immutable, so a new key, a new scoring rule or dropping the item from
scoring is its own append-only row (``ItemRekey``: who, when, why). Scoring reads a version
through :func:`scoring_views`, which applies the version's newest re-key: the one place that
says which key counts. After the row is written, :func:`rekey` sends
``microcred.signals.item_rekeyed``; delivery listens and rescores every affected attempt, and
its answer (the rescoring report, with the results that flip) comes back to the caller.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itembank import authoring
from itembank.models import DRAFT, IN_REVIEW, ItemRekey, ItemVersion
from itembank.types import item_type
from itembank.workflow import REKEYERS, ReviewInputError, require
from microcred import signals
from microcred.errors import DomainError


class RekeyRefused(DomainError):
    status, code = 409, "rekey_refused"


class ScoringView:
    """An item version as scoring sees it: the version, with its newest re-key's key,
    scoring and maximum applied; a dropped item is worth nothing (``max_score`` 0)."""

    __slots__ = ("_version", "dropped", "key", "max_score", "rekey_id", "scoring")

    def __init__(self, version: ItemVersion, rekey: ItemRekey | None) -> None:
        self._version = version
        self.rekey_id = rekey.id if rekey else None
        self.dropped = bool(rekey and rekey.dropped)
        self.key = rekey.key if rekey else version.key
        self.scoring = rekey.scoring if rekey else version.scoring
        self.max_score = 0.0 if self.dropped else (
            float(rekey.max_score) if rekey else float(version.max_score))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._version, name)

    def score(self, value: Any) -> float:
        """The points ``value`` earns under the standing key (0 when dropped)."""
        if self.dropped:
            return 0.0
        return item_type(self._version.item_type).score(self, value)  # type: ignore[arg-type]


def newest_rekeys(session: Session, version_ids: Iterable[int]) -> dict[int, ItemRekey]:
    """The standing (newest) re-key row of each version that has one, in one query."""
    ids = list(version_ids)
    if not ids:
        return {}
    newest = (select(func.max(ItemRekey.id)).where(ItemRekey.item_version_id.in_(ids))
              .group_by(ItemRekey.item_version_id))
    return {r.item_version_id: r for r in session.scalars(
        select(ItemRekey).where(ItemRekey.id.in_(newest)))}


def scoring_views(session: Session, versions: Iterable[ItemVersion]) -> dict[int, ScoringView]:
    versions = list(versions)
    rekeys = newest_rekeys(session, [v.id for v in versions])
    return {v.id: ScoringView(v, rekeys.get(v.id)) for v in versions}


def rekey_history(session: Session, version_ids: Iterable[int]) -> list[ItemRekey]:
    ids = list(version_ids)
    return list(session.scalars(select(ItemRekey).where(ItemRekey.item_version_id.in_(ids))
                                .order_by(ItemRekey.id.desc()))) if ids else []


@dataclass
class RekeyOutcome:
    rekey: ItemRekey
    #: what each receiver of ``item_rekeyed`` answered (delivery: its rescoring report)
    reports: list[Any]


def rekey(session: Session, actor: Any, version: ItemVersion, *, reason: str,
          key: dict[str, Any] | None = None, scoring: dict[str, Any] | None = None,
          max_score: float | None = None, dropped: bool = False) -> RekeyOutcome:
    """Record a re-key of a published ``version`` (what is not given stays as it stands) and
    have every affected attempt rescored. Nothing is written when the new key is not valid."""
    require(actor, REKEYERS, "re-key items")
    if version.status in (DRAFT, IN_REVIEW):
        raise RekeyRefused("a draft or a version in review is not re-keyed: edit the draft "
                           "(or ask for changes) instead")
    reason = (reason or "").strip()
    if not reason:
        raise ReviewInputError("a re-key needs a reason (what was wrong with the item)",
                               field="reason")
    newest = newest_rekeys(session, [version.id]).get(version.id)
    standing = ScoringView(version, newest)
    standing_max = float(newest.max_score if newest else version.max_score)
    new_key = standing.key if key is None else key
    new_scoring = standing.scoring if scoring is None else scoring
    new_max = standing_max if max_score is None else float(max_score)
    if not new_max > 0:
        raise ReviewInputError(f"max score must be above 0, got {new_max}", field="max_score")
    item_type(version.item_type).validate_definition(version.interaction, new_key, new_scoring)
    if (new_key, new_scoring, new_max, dropped) == (
            standing.key, standing.scoring, standing_max, standing.dropped):
        raise ReviewInputError("this re-key changes nothing: the key, scoring and max score "
                               "are what they are", field="key")
    row = ItemRekey(item_version_id=version.id, key=new_key, scoring=new_scoring,
                    max_score=new_max, dropped=dropped, reason=reason,
                    by_id=getattr(actor, "id", None))
    session.add(row)
    session.flush()
    changes = authoring.diff(
        {"key": standing.key, "scoring": standing.scoring, "dropped": standing.dropped},
        {"key": new_key, "scoring": new_scoring, "dropped": dropped})
    what = "dropped from scoring" if dropped else "re-keyed (" + ", ".join(changes) + ")"
    authoring.record_event(session, version, action="dropped" if dropped else "rekeyed",
                           actor=actor, summary=f"{what}: {reason}", changes=changes)
    answers = signals.item_rekeyed.send("itembank", session=session,
                                        item_version_id=version.id, rekey_id=row.id,
                                        reason=reason, by_id=getattr(actor, "id", None))
    return RekeyOutcome(rekey=row, reports=[ret for _, ret in answers if ret is not None])
