"""Which calibrated parameters are current, and the one way to make new ones current.

``ItemParameter`` rows are never edited: a new calibration adds rows, and the newest row (highest
id) of an item version is the current one. One place answers that, for the workspace now and for
IRT scoring later, and one function writes the rows (:func:`supersede_parameters`), so nobody
edits a row in place or invents another notion of "current".
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itembank.models import DELIVERABLE, ItemParameter, ItemVersion

#: Length of ``ItemParameter.source``.
SOURCE_LENGTH = 200


@dataclass(frozen=True)
class ParameterValues:
    """The parameters of one item version, as a calibration estimated them."""

    item_version_id: int
    model: str
    a: float
    b: float | None
    c: float = 0.0
    thresholds: list[Any] | None = None
    standard_errors: dict[str, Any] = field(default_factory=dict)


class CurrentParameters(Protocol):
    """What a reader outside the bank may see of a current parameter row (read-only)."""

    @property
    def id(self) -> int: ...
    @property
    def item_version_id(self) -> int: ...
    @property
    def model(self) -> str: ...
    @property
    def a(self) -> float: ...
    @property
    def b(self) -> float | None: ...
    @property
    def c(self) -> float: ...
    @property
    def thresholds(self) -> list[Any] | None: ...
    @property
    def standard_errors(self) -> dict[str, Any]: ...
    @property
    def source(self) -> str: ...


def current_parameters(session: Session, version_ids: Sequence[int]
                       ) -> dict[int, CurrentParameters]:
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


def calibrated_count(session: Session, domain_codes: Sequence[str]) -> int:
    """How many deliverable item versions in these blueprint domains have a difficulty: the pool
    a linear-on-the-fly form is assembled from (:func:`itembank.assembly.load_bank` takes
    operational items only with parameters)."""
    if not domain_codes:
        return 0
    return session.scalar(
        select(func.count(func.distinct(ItemParameter.item_version_id)))
        .join(ItemVersion, ItemVersion.id == ItemParameter.item_version_id)
        .where(ItemVersion.status.in_(list(DELIVERABLE)),
               ItemVersion.domain_code.in_(list(domain_codes)),
               ItemParameter.b.is_not(None))) or 0


def supersede_parameters(
    session: Session, values: Iterable[ParameterValues], *, source: str
) -> list[ItemParameter]:
    """Make ``values`` the current parameters of their item versions by adding new rows
    (flushed, not committed); the rows they supersede stay as they were."""
    rows = [
        ItemParameter(
            item_version_id=v.item_version_id,
            model=v.model,
            a=v.a,
            b=v.b,
            c=v.c,
            thresholds=v.thresholds,
            standard_errors=dict(v.standard_errors),
            source=source[:SOURCE_LENGTH],
        )
        for v in values
    ]
    session.add_all(rows)
    session.flush()
    return rows
