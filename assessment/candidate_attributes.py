"""Candidate attributes: what a program records about its candidates, with their consent, to
report by group and to study differential item functioning (region, language, accommodation,
demographic groups).

One row is one value of one attribute of one candidate, entered by an admin or imported from a
CSV file. Rows are append-only: a changed value is a new row, and a withdrawn value (consent
withdrawn, or entered by mistake) is a new row whose value is None. The current value of an
attribute is its newest row (highest id); the rows before it are its history.

Privacy: these are read only by the workspace's pages and reports, which only psychometricians
and admins reach; reports suppress groups smaller than the configured minimum
(``MICROCRED_REPORT_MIN_GROUP``, default 5). No candidate page shows any of them.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, ForeignKey, Index, Select, String, func, select
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from assessment.users import Role, User
from microcred.db import Base, append_only, utcnow
from microcred.errors import Invalid

NAME_MAX = 64
VALUE_MAX = 200
#: Lines an import may have (a program's whole candidate list, many times over).
IMPORT_MAX_LINES = 50_000
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\- ]*$")
SOURCES = ("admin", "import")


class CandidateAttribute(Base):
    __tablename__ = "candidate_attributes"
    __table_args__ = (Index("ix_candidate_attributes_name_candidate", "name", "candidate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: lower case, e.g. "region", "first language"
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    #: None: the value was withdrawn (the candidate has no value for the attribute from now on)
    value: Mapped[str | None] = mapped_column(String(VALUE_MAX))
    #: admin | import
    source: Mapped[str] = mapped_column(String(10))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(CandidateAttribute)


class BadAttribute(Invalid):
    """A bad attribute name or value; the message names it."""

    code = "bad_candidate_attribute"


def clean_name(raw: object, where: str = "the attribute name") -> str:
    """The attribute name as stored: trimmed, inner spaces single, lower case."""
    name = " ".join(str(raw or "").split()).lower()
    if not name:
        raise BadAttribute(f"{where} is empty")
    if len(name) > NAME_MAX:
        raise BadAttribute(f"{where} is {len(name)} characters long; keep it to {NAME_MAX}")
    if not NAME_PATTERN.match(name):
        raise BadAttribute(
            f"{where} {name[:40]!r} may use only letters a-z, digits, spaces, '_', '-' and '.'")
    return name


def clean_value(raw: object, where: str = "the value") -> str | None:
    """The value as stored: trimmed; empty means withdrawn (None)."""
    value = " ".join(str(raw or "").split())
    if len(value) > VALUE_MAX:
        raise BadAttribute(f"{where} is {len(value)} characters long; keep it to {VALUE_MAX}")
    return value or None


def _is_newest() -> ColumnElement[bool]:
    """A condition on ``CandidateAttribute``: no newer row of the same candidate and name.
    (NOT EXISTS over the (name, candidate_id) index: a join the database can flatten, where
    ``id IN (SELECT max(id) ... GROUP BY ...)`` made SQLite scan the table once per row.)"""
    newer = aliased(CandidateAttribute)
    return ~select(newer.id).where(
        newer.candidate_id == CandidateAttribute.candidate_id,
        newer.name == CandidateAttribute.name, newer.id > CandidateAttribute.id).exists()


def current_values(name: str) -> Select:
    """``candidate_id``, ``value`` of every candidate's current value of attribute ``name``
    (withdrawn values left out): a query to join in reports."""
    return select(CandidateAttribute.candidate_id, CandidateAttribute.value).where(
        CandidateAttribute.name == name, _is_newest(), CandidateAttribute.value.is_not(None))


def groups_of_results(session: Session, name: str, exam_id: int) -> dict[int, str]:
    """Result id -> its candidate's value of attribute ``name`` *as it stood when the attempt
    started*, for every result of ``exam_id`` whose candidate has one (two queries).

    DIF compares candidates as they were when they sat: a candidate who sat in French and later
    changed their first language to English is in the French group for that attempt. The value
    in force is the newest row (highest id) recorded at or before the attempt's start. When no
    row was recorded by then (attributes are often imported after the fact) the earliest
    recorded value is taken, the best evidence of the value at the time. A candidate whose
    newest row withdraws the value (consent withdrawn, or entered by mistake) is left out of
    every attempt: the withdrawal cannot tell which, and a withdrawn consent covers the past.
    """
    from assessment.delivery.models import Attempt, Result

    sat = session.execute(
        select(Result.id, Attempt.candidate_id, Attempt.started_at)
        .join(Attempt, Attempt.id == Result.attempt_id)
        .where(Attempt.exam_id == exam_id)).all()
    history: dict[int, list[tuple[dt.datetime, str | None]]] = {}
    sitters = select(Attempt.candidate_id).where(Attempt.exam_id == exam_id).distinct()
    for cid, recorded_at, value in session.execute(
            select(CandidateAttribute.candidate_id, CandidateAttribute.recorded_at,
                   CandidateAttribute.value)
            .where(CandidateAttribute.name == name, CandidateAttribute.candidate_id.in_(sitters))
            .order_by(CandidateAttribute.id)):
        history.setdefault(cid, []).append((recorded_at, value))
    out: dict[int, str] = {}
    for result_id, cid, started_at in sat:
        rows = history.get(cid)
        if not rows or rows[-1][1] is None:
            continue
        value = value_at(rows, started_at)
        if value is not None:
            out[result_id] = value
    return out


def value_at(rows: list[tuple[dt.datetime, str | None]], when: dt.datetime) -> str | None:
    """The value in force at ``when`` of one candidate's attribute history ``rows`` ((recorded
    at, value), oldest row first): the newest row recorded at or before ``when``, else the first
    row (no value was recorded yet; the earliest one is the best evidence)."""
    before = [value for recorded_at, value in rows if recorded_at <= when]
    return before[-1] if before else rows[0][1]


def current_of(session: Session, candidate_id: int) -> dict[str, str]:
    """One candidate's current attributes, name -> value."""
    rows = session.execute(
        select(CandidateAttribute.name, CandidateAttribute.value).where(
            CandidateAttribute.candidate_id == candidate_id,
            _is_newest(), CandidateAttribute.value.is_not(None))
        .order_by(CandidateAttribute.name))
    return {n: v for n, v in rows}


def history_of(session: Session, candidate_id: int) -> list[CandidateAttribute]:
    """Every row of one candidate, newest first."""
    return list(session.scalars(
        select(CandidateAttribute).where(CandidateAttribute.candidate_id == candidate_id)
        .order_by(CandidateAttribute.id.desc())))


@dataclass
class AttributeSummary:
    name: str
    #: (value, candidates) of its current values, largest group first
    values: list[tuple[str, int]]

    @property
    def candidates(self) -> int:
        return sum(n for _, n in self.values)


def attribute_summaries(session: Session) -> list[AttributeSummary]:
    """Every attribute in use, with its current values and how many candidates hold each."""
    rows = session.execute(
        select(CandidateAttribute.name, CandidateAttribute.value, func.count())
        .where(_is_newest(), CandidateAttribute.value.is_not(None))
        .group_by(CandidateAttribute.name, CandidateAttribute.value))
    by_name: dict[str, list[tuple[str, int]]] = {}
    for name, value, n in rows:
        by_name.setdefault(name, []).append((value, int(n)))
    return [AttributeSummary(name, sorted(vals, key=lambda v: (-v[1], v[0])))
            for name, vals in sorted(by_name.items())]


def _candidate(user: User | None, where: str) -> User:
    if user is None:
        raise BadAttribute(f"{where}: no candidate has that email")
    if not user.has_role(Role.CANDIDATE):
        raise BadAttribute(f"{where}: {user.email} is not a candidate (role {user.role})")
    return user


def record(session: Session, candidate: User, name: object, value: object, *,
           by: User | None, source: str = "admin") -> CandidateAttribute | None:
    """Record ``candidate``'s value of attribute ``name`` (empty: withdraw it). Returns the new
    row, or None when the value is already the current one (nothing is written)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    _candidate(candidate, "the candidate")
    key, val = clean_name(name), clean_value(value)
    now = session.scalar(
        select(CandidateAttribute.value).where(
            CandidateAttribute.candidate_id == candidate.id, CandidateAttribute.name == key)
        .order_by(CandidateAttribute.id.desc()).limit(1))
    if now == val:
        return None
    row = CandidateAttribute(candidate_id=candidate.id, name=key, value=val, source=source,
                             recorded_by_id=by.id if by else None)
    session.add(row)
    session.flush()
    return row


# ---------------------------------------------------------------- CSV import


@dataclass
class ImportReport:
    lines: int = 0
    recorded: int = 0
    unchanged: int = 0
    #: (line number in the file, message); with any error nothing is recorded
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_import(text: str) -> tuple[list[tuple[int, str, str, str | None]], list[tuple[int, str]]]:
    """The CSV's cells as ``(line, email, attribute, value)`` and every error found.

    Two layouts: long (columns ``email``, ``attribute``, ``value``: one value a line) or wide
    (column ``email`` and one column per attribute, named in the header). An empty value
    withdraws the candidate's value of that attribute."""
    errors: list[tuple[int, str]] = []
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return [], [(1, "the file is empty: its first line must be a header with an 'email' column")]
    except csv.Error as exc:
        return [], [(1, f"not CSV: {exc}")]
    columns = [h.strip().lower() for h in header]
    if "email" not in columns:
        return [], [(1, ("the header has no 'email' column (found: "
                        f"{', '.join(repr(c) for c in columns[:8]) or 'nothing'})"))]
    email_at = columns.index("email")
    long = "attribute" in columns and "value" in columns
    names: dict[int, str] = {}
    if not long:
        for i, raw in enumerate(header):
            if i == email_at:
                continue
            try:
                names[i] = clean_name(raw, f"column {i + 1}'s name")
            except BadAttribute as exc:
                errors.append((1, f"header: {exc.message}"))
        if not names and not errors:
            errors.append((1, ("the header names no attribute: give columns 'email', 'attribute',"
                              " 'value', or 'email' and one column per attribute")))
    cells: list[tuple[int, str, str, str | None]] = []
    seen: dict[tuple[str, str], tuple[int, str | None]] = {}
    try:
        for row in reader:
            line = reader.line_num
            if line > IMPORT_MAX_LINES + 1:
                errors.append((line, f"the file has more than {IMPORT_MAX_LINES} lines; split it"))
                break
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                errors.append((line, f"has {len(row)} cells; the header has {len(header)}"))
                continue
            email = row[email_at].strip().lower()
            if not email:
                errors.append((line, "the email is empty"))
                continue
            pairs = ([(row[columns.index("attribute")], row[columns.index("value")], "attribute")]
                     if long else [(names[i], row[i], names[i]) for i in names])
            for raw_name, raw_value, label in pairs:
                try:
                    name = clean_name(raw_name)
                    value = clean_value(raw_value, f"the value of {label!r}")
                except BadAttribute as exc:
                    errors.append((line, exc.message))
                    continue
                earlier = seen.get((email, name))
                if earlier is not None and earlier[1] != value:
                    errors.append((line, (f"{email} has {name!r} = {value!r} here but"
                                         f" {earlier[1]!r} on line {earlier[0]}")))
                    continue
                seen[(email, name)] = (line, value)
                cells.append((line, email, name, value))
    except csv.Error as exc:
        errors.append((reader.line_num, f"not CSV: {exc}"))
    return cells, errors


def import_csv(session: Session, text: str, *, by: User) -> ImportReport:
    """Record every value in ``text`` (see :func:`parse_import`), or none: with any error
    (an unknown candidate email, an empty or bad attribute name, a too long value, a line of
    the wrong length) the report lists every one with its line and nothing is written."""
    cells, errors = parse_import(text)
    report = ImportReport(lines=len({c[0] for c in cells}), errors=errors)
    emails = sorted({c[1] for c in cells})
    users: dict[str, User] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start:start + 500]
        users.update({u.email.lower(): u for u in session.scalars(
            select(User).where(func.lower(User.email).in_(chunk)))})
    for line, email, _, _ in cells:
        user = users.get(email)
        if user is None:
            report.errors.append((line, f"no candidate has the email {email[:254]!r}"))
        elif not user.has_role(Role.CANDIDATE):
            report.errors.append((line, f"{email} is not a candidate (role {user.role})"))
    if report.errors:
        report.errors = sorted(set(report.errors))
        return report
    ids = sorted({u.id for u in users.values()})
    current: dict[tuple[int, str], str | None] = {}
    for start in range(0, len(ids), 500):
        current.update({(cid, name): value for cid, name, value in session.execute(
            select(CandidateAttribute.candidate_id, CandidateAttribute.name,
                   CandidateAttribute.value)
            .where(_is_newest(), CandidateAttribute.candidate_id.in_(ids[start:start + 500])))})
    for _, email, name, value in cells:
        cid = users[email].id
        if current.get((cid, name)) == value:
            report.unchanged += 1
            continue
        session.add(CandidateAttribute(candidate_id=cid, name=name, value=value,
                                       source="import", recorded_by_id=by.id))
        current[(cid, name)] = value
        report.recorded += 1
    session.flush()
    return report
