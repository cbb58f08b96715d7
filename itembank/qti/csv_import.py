"""A plain multiple-choice bank from a spreadsheet (CSV), with errors by row and column.

Columns (a header row, names case-insensitive): ``code``, ``stem``, ``key`` and two to eight
options ``option_a`` ... ``option_h`` (or ``a`` ... ``h``); optional ``domain``,
``cognitive_level``, ``rationale``, ``max_score``. ``key`` is the letter of the right option
(``B``), or several separated by ``;`` or ``,`` for a multiple-response item (``A;C``). Text is
plain text (what a spreadsheet holds): it is escaped, never read as HTML.

Every row is checked before anything is written; a row with an error is reported (its row
number as the spreadsheet shows it, counting the header as row 1, and the column) and skipped,
the others are imported in one transaction.
"""
from __future__ import annotations

import csv
import html
import io
from typing import Any

from sqlalchemy.orm import Session

from itembank.qti.package import Plan, Planned, write_plan
from itembank.qti.record import ItemRecord
from itembank.qti.report import IMPORTED, SKIPPED, ImportReport, ItemOutcome
from itembank.qti.safety import PackageRefused
from itembank.types import ItemDefinitionError, item_type
from microcred.errors import Invalid

MAX_CSV_BYTES = 10 * 1024 * 1024
LETTERS = "abcdefgh"


class RowError(Invalid, ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column


def _columns(header: list[str]) -> dict[str, int]:
    out = {}
    for i, name in enumerate(header):
        key = name.strip().lower().replace(" ", "_")
        if len(key) == 1 and key in LETTERS:
            key = f"option_{key}"
        out.setdefault(key, i)
    return out


def _paragraph(text: str) -> str:
    return "".join(f"<p>{html.escape(line.strip())}</p>" for line in text.splitlines()
                   if line.strip())


def read_csv(data: bytes, name: str = "bank.csv") -> Plan:
    """Read and check every row; nothing is written."""
    if len(data) > MAX_CSV_BYTES:
        raise PackageRefused(f"{name} is {len(data):,} bytes; at most {MAX_CSV_BYTES:,}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PackageRefused(f"{name} is not UTF-8 text: {exc}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise PackageRefused(f"{name} is empty")
    cols = _columns(rows[0])
    missing = [c for c in ("code", "stem", "key") if c not in cols]
    if missing:
        raise PackageRefused(f"{name}: the header has no column {', '.join(missing)} "
                             f"(found {', '.join(rows[0])})")
    options = [f"option_{x}" for x in LETTERS if f"option_{x}" in cols]
    if len(options) < 2:
        raise PackageRefused(f"{name}: the header needs at least two option columns "
                             "(option_a, option_b, ...)")
    report = ImportReport(source=name, format="CSV")
    plan = Plan(report)
    seen: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cell = {c: (row[i].strip() if i < len(row) else "") for c, i in cols.items()}
        outcome = ItemOutcome(identifier=cell.get("code") or f"row {number}",
                              where=f"row {number}", status=SKIPPED)
        try:
            rec = _row(cell, options, seen)
        except RowError as exc:
            outcome.reason = str(exc)
            plan.items.append(Planned(outcome))
            continue
        outcome.status, outcome.item_type = IMPORTED, rec.item_type
        plan.items.append(Planned(outcome, rec))
    report.items = [p.outcome for p in plan.items]
    return plan


def _row(cell: dict[str, str], options: list[str], seen: set[str]) -> ItemRecord:
    code = cell["code"]
    if not code:
        raise RowError("code", "empty")
    if len(code) > 64:
        raise RowError("code", f"{len(code)} characters; at most 64")
    if code in seen:
        raise RowError("code", f"{code} appears twice in the file")
    seen.add(code)
    if not cell["stem"]:
        raise RowError("stem", "empty")
    opts = [{"id": c[-1].upper(), "text": html.escape(cell[c])} for c in options if cell[c]]
    filled = [c for c in options if cell[c]]
    gaps = [c for c in options[:len(filled)] if not cell[c]]
    if gaps or len(opts) < 2:
        raise RowError(gaps[0] if gaps else options[len(opts)],
                       "empty; options are filled from option_a on, at least two")
    letters = [k.strip().upper() for k in cell["key"].replace(",", ";").split(";") if k.strip()]
    if not letters:
        raise RowError("key", "empty; give the right option's letter (e.g. B)")
    ids = [o["id"] for o in opts]
    unknown = [k for k in letters if k not in ids]
    if unknown:
        raise RowError("key", f"{', '.join(unknown)} names no option (options "
                       f"{ids[0]}-{ids[-1]})")
    if len(set(letters)) != len(letters):
        raise RowError("key", "a letter is given twice")
    max_score = 1.0
    if cell.get("max_score"):
        try:
            max_score = float(cell["max_score"])
        except ValueError:
            raise RowError("max_score", f"{cell['max_score']!r} is not a number") from None
        if not 0 < max_score <= 1000:
            raise RowError("max_score", "must be above 0 and at most 1000")
    kind = "single_choice" if len(letters) == 1 else "multiple_response"
    rec = ItemRecord(code=code, item_type=kind, stem=_paragraph(cell["stem"]),
                     interaction={"options": opts}, key={"correct": sorted(letters)},
                     max_score=max_score, rationale=_paragraph(cell.get("rationale", "")),
                     domain_code=cell.get("domain", "")[:40])
    if cell.get("cognitive_level"):
        rec.metadata["cognitive_level"] = cell["cognitive_level"][:40]
    try:
        item_type(kind).validate_definition(rec.interaction, rec.key, rec.scoring)
    except ItemDefinitionError as exc:
        raise RowError("key", exc.message) from None
    return rec


def import_csv(session: Session, data: bytes, name: str = "bank.csv", *, actor: Any = None,
               commit: bool = True) -> ImportReport:
    """Import the valid rows as draft items; the report names each bad row and column."""
    return write_plan(session, read_csv(data, name), actor=actor, keep_status=False,
                      commit=commit)
