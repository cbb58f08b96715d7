"""Recertification: where an expiring credential stands, renewing it through continuing
education, and the holders who lapsed.

A certification credential with an expiry moves through these states (its achievement's
:class:`~credentials.renewal_models.RenewalPolicy`, or the defaults below):

- ``current``: more than ``window_days`` before it expires;
- ``window``: the recertification window, ``window_days`` before expiry up to expiry: the
  holder is reminded and may renew (the recertification exam, or CE when the cycle is met);
- ``grace``: expired less than ``grace_days`` ago: it no longer verifies, and may still be
  renewed;
- ``lapsed``: expired and past the grace, not renewed;
- ``renewed``: a newer credential supersedes it (``Credential.supersedes_id``).

A renewal by exam is issued by :func:`credentials.issuance.issue_for_result` (a pass on the
achievement's ``recertification_exam_id``); a renewal through CE by :func:`renew_through_ce`.
Both issue a new credential that names the one it renews (``supersedes_id``, and evidence
with the old credential's id).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials import ce, openbadge, revocation
from credentials.config import CredentialConfig
from credentials.errors import CredentialError
from credentials.models import Achievement, Credential
from credentials.renewal_models import RenewalPolicy
from microcred.db import utcnow
from microcred.records import records

DEFAULT_WINDOW_DAYS = 90
DEFAULT_GRACE_DAYS = 0
DEFAULT_EXPIRY_REMINDERS = [60, 30, 7]
DEFAULT_CYCLE_REMINDERS = [60, 14]
MAX_POLICY_DAYS = 3650


class RecertificationError(CredentialError):
    """A renewal that is not allowed now; the message says why."""


def policy(session: Session, achievement_id: int) -> RenewalPolicy:
    """The achievement's policy, or an unsaved one with the defaults."""
    row = session.scalar(select(RenewalPolicy).where(
        RenewalPolicy.achievement_id == achievement_id))
    return row or RenewalPolicy(
        achievement_id=achievement_id, window_days=DEFAULT_WINDOW_DAYS,
        grace_days=DEFAULT_GRACE_DAYS, expiry_reminder_days=list(DEFAULT_EXPIRY_REMINDERS),
        cycle_reminder_days=list(DEFAULT_CYCLE_REMINDERS))


def _days_list(values: list[int], name: str) -> list[int]:
    clean = sorted({int(v) for v in values}, reverse=True)
    if any(not 0 <= v <= MAX_POLICY_DAYS for v in clean):
        raise RecertificationError(f"{name}: each is 0 to {MAX_POLICY_DAYS} days", field=name)
    if len(clean) > 10:
        raise RecertificationError(f"{name}: at most 10 reminder points", field=name)
    return clean


def set_policy(session: Session, achievement: Achievement, *, window_days: int,
               grace_days: int, expiry_reminder_days: list[int],
               cycle_reminder_days: list[int]) -> RenewalPolicy:
    for name, value in (("window_days", window_days), ("grace_days", grace_days)):
        if not 0 <= value <= MAX_POLICY_DAYS:
            raise RecertificationError(f"{name}: 0 to {MAX_POLICY_DAYS} days", field=name)
    row = session.scalar(select(RenewalPolicy).where(
        RenewalPolicy.achievement_id == achievement.id)) or RenewalPolicy(
        achievement_id=achievement.id)
    row.window_days, row.grace_days = window_days, grace_days
    row.expiry_reminder_days = _days_list(expiry_reminder_days, "expiry_reminder_days")
    row.cycle_reminder_days = _days_list(cycle_reminder_days, "cycle_reminder_days")
    session.add(row)
    session.flush()
    return row


@dataclass
class Standing:
    credential: Credential
    state: str  # current | window | grace | lapsed | renewed | revoked | no expiry
    window_opens: dt.datetime | None
    expires: dt.datetime | None
    grace_ends: dt.datetime | None
    renewed_by: Credential | None = None

    @property
    def renewable(self) -> bool:
        return self.state in ("window", "grace")


def standing(session: Session, credential: Credential,
             now: dt.datetime | None = None) -> Standing:
    now = now or utcnow()
    renewed_by = session.scalar(select(Credential).where(
        Credential.supersedes_id == credential.id).order_by(Credential.id).limit(1))
    end = credential.valid_until
    if end is None:
        return Standing(credential, "renewed" if renewed_by else "no expiry", None, None, None,
                        renewed_by)
    pol = policy(session, credential.achievement_id)
    opens = end - dt.timedelta(days=pol.window_days)
    grace_ends = end + dt.timedelta(days=pol.grace_days)
    if renewed_by is not None:
        state = "renewed"
    elif revocation.status_of(session, credential).revoked:
        state = "revoked"
    elif now < opens:
        state = "current"
    elif now < end:
        state = "window"
    elif now < grace_ends:
        state = "grace"
    else:
        state = "lapsed"
    return Standing(credential, state, opens, end, grace_ends, renewed_by)


def renew_through_ce(session: Session, cfg: CredentialConfig, credential: Credential, *,
                     now: dt.datetime | None = None) -> Credential:
    """Renew ``credential`` on its completed CE cycle: a new credential that supersedes it,
    with each contributing CE credential as evidence. Refused outside the window and grace,
    or while the cycle misses anything."""
    from credentials.issuance import issue

    now = now or utcnow()
    st = standing(session, credential, now)
    if not st.renewable:
        raise RecertificationError(_not_renewable(st))
    cycle = ce.cycle_for(session, credential, now)
    if cycle is None:
        raise RecertificationError("this certification has no CE requirement: renew it by the "
                                   "recertification exam")
    if not cycle.complete:
        raise RecertificationError("the CE cycle is not complete: missing "
                                   + ", ".join(cycle.missing()))
    holder = records().person(session, credential.holder_id)
    if holder is None:
        raise RecertificationError(f"the holder (user {credential.holder_id}) no longer exists")
    unit = cycle.requirement.unit
    evidence = [
        openbadge.EvidenceInfo(
            id=c.credential.json["id"], name=c.credential.achievement.name,
            genre="Continuing education",
            narrative=f"{ce.show(c.amount)} {unit} of {c.category}, earned "
                      f"{c.credential.valid_from.date().isoformat()}.")
        for c in cycle.contributions]
    evidence.append(openbadge.EvidenceInfo(
        id=credential.json["id"], name="Recertification", genre="Recertification",
        narrative=f"Renews the credential issued on {credential.issued_at.date().isoformat()}, "
                  f"through continuing education: {ce.show(cycle.earned)} {unit} from "
                  f"{cycle.first_day.isoformat()} to {cycle.last_day.isoformat()}."))
    achievement = session.get(Achievement, credential.achievement_id)
    return issue(session, cfg, achievement=achievement, holder=holder, kind="recertification",
                 evidence=evidence, supersedes=credential, now=now)


def _not_renewable(st: Standing) -> str:
    if st.state == "current":
        return (f"the recertification window opens on {st.window_opens.date().isoformat()}")
    if st.state == "lapsed":
        return (f"the credential lapsed on {st.grace_ends.date().isoformat()}: take the "
                "exam again to earn it anew")
    if st.state == "renewed":
        return "this credential was already renewed; renew the newest one"
    if st.state == "revoked":
        return "a revoked credential cannot be renewed"
    return "this credential does not expire"


def newest_with_expiry(session: Session) -> list[Credential]:
    """Each holder's newest credential of each achievement, where it expires."""
    newest: dict[tuple[int, int], Credential] = {}
    for c in session.scalars(select(Credential).where(Credential.valid_until.is_not(None))
                             .order_by(Credential.id.desc())):
        newest.setdefault((c.holder_id, c.achievement_id), c)
    return list(newest.values())


def lapsed(session: Session, *, start: dt.datetime | None = None,
           end: dt.datetime | None = None, now: dt.datetime | None = None) -> list[Standing]:
    """Holders whose newest credential lapsed (past expiry and grace, not renewed, not
    revoked), with its grace having ended within [start, end) when given: "who lapsed this
    quarter"."""
    now = now or utcnow()
    out = []
    for c in newest_with_expiry(session):
        st = standing(session, c, now)
        if st.state != "lapsed":
            continue
        if start is not None and st.grace_ends < start:
            continue
        if end is not None and st.grace_ends >= end:
            continue
        out.append(st)
    return sorted(out, key=lambda s: s.grace_ends)


def quarter_of(moment: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[first instant, first instant of the next) of ``moment``'s calendar quarter, UTC."""
    month = (moment.month - 1) // 3 * 3 + 1
    start = dt.datetime(moment.year, month, 1, tzinfo=dt.UTC)
    nxt = dt.datetime(moment.year + (month == 10), month % 12 + 3 if month != 10 else 1, 1,
                      tzinfo=dt.UTC)
    return start, nxt
