"""Continuing education (CE): the credit a credential carries and the cycle a certification
requires. This module is the one place CE is counted: the holder's page, the program's report,
the public holder page, the cycle-end reminders and renewal through CE all call
:func:`cycles`/:func:`cycle_for`.

The cycle of a holder's certification starts on the day (UTC) its credential became valid
and runs ``cycle_months`` calendar months: it ends the day before the same day of the month
``cycle_months`` later (a day that month lacks is its last day: a cycle from 31 January over
one month ends on 28 or 29 February, inclusive). Its last day counts in full, 23:59:59 UTC
included; a credential that became valid the next day does not count.

A credit counts in a cycle when its credential became valid within the cycle and is neither
revoked nor suspended now. CE credit is for learning done, so a CE credential that has since
expired still counts for the cycle it was earned in. The certification itself, and its own
renewals, earn it nothing. Every category counts toward the total; the category minimums say
how much of the total each named category must supply at least.

Amounts are whole hundredths of a credit (``renewal_models``); :func:`parse_amount` and
:func:`show` convert from and to what people type and read.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials import revocation
from credentials.errors import CredentialError
from credentials.models import Achievement, Credential
from credentials.renewal_models import CE_UNITS, CeCredit, CeRequirement
from microcred.db import utcnow

#: at most 10,000 credits in one category or one cycle: more is a typo
MAX_AMOUNT = 1_000_000
MAX_CYCLE_MONTHS = 120
CATEGORY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._&/-]{0,63}")


class CeError(CredentialError):
    """A CE credit or requirement that cannot be recorded; the message names the field."""


# --- amounts ----------------------------------------------------------------------------------

def parse_amount(raw: str | float | None, field_name: str) -> int:
    """``"2.5"`` -> 250 hundredths. Refuses negatives, zero, more than two decimals, and more
    than :data:`MAX_AMOUNT`."""
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise CeError(f"{field_name}: {raw!r} is not a number of credits", field=field_name) \
            from None
    if not value.is_finite() or value <= 0:
        raise CeError(f"{field_name}: credits must be more than 0", field=field_name)
    hundredths = value * 100
    if hundredths != hundredths.to_integral_value():
        raise CeError(f"{field_name}: credits have at most two decimals ({raw})",
                      field=field_name)
    if hundredths > MAX_AMOUNT:
        raise CeError(f"{field_name}: at most {MAX_AMOUNT // 100} credits", field=field_name)
    return int(hundredths)


def show(hundredths: int) -> str:
    """250 -> ``"2.5"``; 300 -> ``"3"``."""
    text = f"{Decimal(hundredths) / 100:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- the cycle's dates ------------------------------------------------------------------------

def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months later, or that month's last day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def cycle_dates(start: dt.datetime, months: int) -> tuple[dt.date, dt.date]:
    """(first day, last day), both inclusive, UTC, of a cycle that starts at ``start``."""
    first = start.astimezone(dt.UTC).date()
    return first, add_months(first, months) - dt.timedelta(days=1)


def cycle_end_instant(last_day: dt.date) -> dt.datetime:
    """The first instant after the cycle: midnight UTC after its last day."""
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def within(moment: dt.datetime, first: dt.date, last: dt.date) -> bool:
    return first <= moment.astimezone(dt.UTC).date() <= last


# --- configuration ----------------------------------------------------------------------------

def _category(raw: str, field_name: str) -> str:
    category = (raw or "").strip()
    if not CATEGORY_PATTERN.fullmatch(category):
        raise CeError(f"{field_name}: a category is 1 to 64 letters, digits, spaces or . _ & / -",
                      field=field_name)
    return category


def _unit(unit: str) -> str:
    if unit not in CE_UNITS:
        raise CeError(f"unit: must be one of {', '.join(CE_UNITS)}", field="unit")
    return unit


def set_credits(session: Session, achievement: Achievement, amounts: dict[str, int], *,
                unit: str = "hours") -> list[CeCredit]:
    """Make ``achievement`` carry exactly ``amounts`` ({category: hundredths})."""
    if achievement.is_stack:
        raise CeError("a stack carries no CE credit of its own: its components do")
    if session.scalar(select(CeRequirement.id).where(
            CeRequirement.achievement_id == achievement.id)) is not None and amounts:
        raise CeError("a certification that requires CE cannot also carry CE credit")
    clean = {_category(c, "category"): a for c, a in amounts.items()}
    for category, amount in clean.items():
        if not 0 < amount <= MAX_AMOUNT:
            raise CeError(f"amount for {category}: 0.01 to {MAX_AMOUNT // 100}", field="amount")
    unit = _unit(unit)
    for row in session.scalars(select(CeCredit).where(CeCredit.achievement_id == achievement.id)):
        session.delete(row)
    session.flush()
    rows = [CeCredit(achievement_id=achievement.id, category=c, amount=a, unit=unit)
            for c, a in sorted(clean.items())]
    session.add_all(rows)
    session.flush()
    return rows


def set_requirement(session: Session, achievement: Achievement, *, total: int,
                    cycle_months: int, minimums: dict[str, int],
                    unit: str = "hours") -> CeRequirement:
    """Attach (or change) the CE cycle holders of ``achievement`` must complete."""
    clean = _checked_requirement(total, cycle_months, minimums)
    row = requirement(session, achievement.id) or CeRequirement(achievement_id=achievement.id)
    row.total, row.cycle_months, row.minimums, row.unit = total, cycle_months, clean, _unit(unit)
    session.add(row)
    session.flush()
    return row


def preview_requirement(session: Session, achievement: Achievement, *, total: int,
                        cycle_months: int, minimums: dict[str, int], unit: str = "hours",
                        now: dt.datetime | None = None) -> list[CycleProgress]:
    """Who would stand where under this CE cycle, before it is saved: the cycle of each
    current holder of ``achievement`` (newest credential, not revoked), counted by the same
    :func:`cycle_for` the holder's pages, reminders and renewals use. Nothing is written."""
    clean = _checked_requirement(total, cycle_months, minimums)
    proposed = CeRequirement(achievement_id=achievement.id, total=total,
                             cycle_months=cycle_months, minimums=clean, unit=_unit(unit))
    newest: dict[int, Credential] = {}
    for cred in session.scalars(select(Credential).where(
            Credential.achievement_id == achievement.id).order_by(Credential.id.desc())):
        newest.setdefault(cred.holder_id, cred)
    out = []
    for cred in newest.values():
        if revocation.status_of(session, cred).revoked:
            continue
        out.append(cycle_for(session, cred, now, req=proposed))
    return sorted(out, key=lambda c: (c.complete, -c.earned))


def _checked_requirement(total: int, cycle_months: int,
                         minimums: dict[str, int]) -> dict[str, int]:
    if not 1 <= cycle_months <= MAX_CYCLE_MONTHS:
        raise CeError(f"cycle_months: 1 to {MAX_CYCLE_MONTHS}", field="cycle_months")
    if not 0 < total <= MAX_AMOUNT:
        raise CeError(f"total: 0.01 to {MAX_AMOUNT // 100} credits", field="total")
    clean = {_category(c, "minimums"): a for c, a in minimums.items()}
    if any(a <= 0 for a in clean.values()):
        raise CeError("minimums: each category minimum must be more than 0", field="minimums")
    if sum(clean.values()) > total:
        raise CeError(f"minimums: the category minimums add up to {show(sum(clean.values()))}, "
                      f"more than the total of {show(total)}", field="minimums")
    return clean


def requirement(session: Session, achievement_id: int) -> CeRequirement | None:
    return session.scalar(select(CeRequirement).where(
        CeRequirement.achievement_id == achievement_id))


def credits_of(session: Session, achievement_id: int) -> dict[str, int]:
    return {r.category: r.amount for r in session.scalars(
        select(CeCredit).where(CeCredit.achievement_id == achievement_id))}


# --- progress ---------------------------------------------------------------------------------

@dataclass
class CategoryProgress:
    category: str
    earned: int
    minimum: int

    @property
    def missing(self) -> int:
        return max(0, self.minimum - self.earned)


@dataclass
class Contribution:
    credential: Credential
    category: str
    amount: int


@dataclass
class CycleProgress:
    """One holder's CE cycle for one certification credential."""

    requirement: CeRequirement
    certification: Credential
    first_day: dt.date
    last_day: dt.date
    categories: list[CategoryProgress]
    contributions: list[Contribution] = field(default_factory=list)

    @property
    def earned(self) -> int:
        return sum(c.amount for c in self.contributions)

    @property
    def missing_total(self) -> int:
        return max(0, self.requirement.total - self.earned)

    @property
    def complete(self) -> bool:
        return self.missing_total == 0 and all(c.missing == 0 for c in self.categories)

    @property
    def ends_at(self) -> dt.datetime:
        return cycle_end_instant(self.last_day)

    def days_left(self, now: dt.datetime | None = None) -> int:
        return ((self.last_day - (now or utcnow()).astimezone(dt.UTC).date()).days)

    def missing(self) -> list[str]:
        """What is still missing, in words (empty when complete)."""
        unit = self.requirement.unit
        out = [f"{show(c.missing)} {unit} of {c.category}" for c in self.categories if c.missing]
        if self.missing_total > sum(c.missing for c in self.categories):
            out.append(f"{show(self.missing_total)} {unit} in all")
        return out


def cycle_for(session: Session, certification: Credential,
              now: dt.datetime | None = None, *,
              req: CeRequirement | None = None) -> CycleProgress | None:
    """The CE cycle of ``certification`` (None when its achievement requires no CE).
    ``req``: a proposed requirement to count against instead of the stored one (a preview)."""
    req = req if req is not None else requirement(session, certification.achievement_id)
    if req is None:
        return None
    first, last = cycle_dates(certification.valid_from, req.cycle_months)
    earned: dict[str, int] = {}
    contributions = []
    carrying = {}
    for row in session.scalars(select(CeCredit)):
        carrying.setdefault(row.achievement_id, []).append(row)
    candidates = session.scalars(
        select(Credential).where(Credential.holder_id == certification.holder_id,
                                 Credential.achievement_id.in_(list(carrying) or [-1]),
                                 Credential.achievement_id != certification.achievement_id)
        .order_by(Credential.valid_from, Credential.id))
    for cred in candidates:
        if not within(cred.valid_from, first, last):
            continue
        if revocation.status_of(session, cred).label != "active":
            continue
        for row in carrying[cred.achievement_id]:
            if row.unit != req.unit:
                continue  # hours do not count toward a cycle counted in units
            earned[row.category] = earned.get(row.category, 0) + row.amount
            contributions.append(Contribution(cred, row.category, row.amount))
    categories = [CategoryProgress(c, earned.get(c, 0), m) for c, m in sorted(req.minimums.items())]
    return CycleProgress(req, certification, first, last, categories, contributions)


def cycles(session: Session, holder_id: int,
           now: dt.datetime | None = None) -> list[CycleProgress]:
    """The CE cycle of each certification the holder holds (newest credential of each
    achievement that requires CE, not revoked)."""
    required = set(session.scalars(select(CeRequirement.achievement_id)))
    if not required:
        return []
    newest: dict[int, Credential] = {}
    for cred in session.scalars(select(Credential).where(
            Credential.holder_id == holder_id, Credential.achievement_id.in_(required))
            .order_by(Credential.id.desc())):
        newest.setdefault(cred.achievement_id, cred)
    out = []
    for cred in newest.values():
        if revocation.status_of(session, cred).revoked:
            continue
        progress = cycle_for(session, cred, now)
        if progress is not None:
            out.append(progress)
    return sorted(out, key=lambda p: p.last_day)
