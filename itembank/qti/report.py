"""What an import did, item by item: imported, or skipped and why."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

IMPORTED, SKIPPED = "imported", "skipped"


@dataclass
class ItemOutcome:
    #: the item's identifier in the package (or the CSV's row label)
    identifier: str
    #: where in the package: the file, or "row 7"
    where: str
    status: str
    reason: str = ""
    item_type: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    source: str
    format: str = ""
    items: list[ItemOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    committed: bool = False

    @property
    def imported(self) -> list[ItemOutcome]:
        return [i for i in self.items if i.status == IMPORTED]

    @property
    def skipped(self) -> list[ItemOutcome]:
        return [i for i in self.items if i.status == SKIPPED]

    def add(self, outcome: ItemOutcome) -> ItemOutcome:
        self.items.append(outcome)
        return outcome

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "committed": self.committed,
                "imported": len(self.imported), "skipped": len(self.skipped),
                "notes": self.notes, "items": [asdict(i) for i in self.items]}

    def lines(self) -> list[str]:
        """The report as text, one line per item (what the command line prints)."""
        verb = "imported" if self.committed else "would import"
        head = (f"{self.source} ({self.format}): {verb} {len(self.imported)} item(s), "
                f"skipped {len(self.skipped)}")
        out = [head]
        out += [f"  note: {n}" for n in self.notes]
        for i in self.items:
            what = f" as {i.item_type.replace('_', ' ')}" if i.item_type else ""
            line = f"  {i.status:8} {i.identifier} ({i.where}){what}"
            if i.reason:
                line += f": {i.reason}"
            out.append(line)
            out += [f"           - {n}" for n in i.notes]
        return out
