"""What travels for one item: a version's content, key, scoring and metadata, independent of
the database (the writer reads one, the reader makes one, the importer turns one into the
bank's authoring calls)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StimulusRecord:
    code: str
    kind: str
    title: str
    content: str


@dataclass
class ItemRecord:
    code: str
    item_type: str
    stem: str
    interaction: dict[str, Any]
    key: dict[str, Any]
    scoring: dict[str, Any] = field(default_factory=dict)
    max_score: float = 1.0
    title: str = ""
    rationale: str = ""
    domain_code: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    statistics: list[dict[str, Any]] = field(default_factory=list)
    stimulus: StimulusRecord | None = None
    #: what the reader noticed but kept (a dropped feedback, a changed score): for the report
    notes: list[str] = field(default_factory=list)

    def definition(self) -> dict[str, Any]:
        """What must survive a round trip unchanged."""
        return {"code": self.code, "item_type": self.item_type, "stem": self.stem,
                "interaction": self.interaction, "key": self.key, "scoring": self.scoring,
                "max_score": float(self.max_score)}
