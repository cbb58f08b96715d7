"""The tables of keeping a credential alive: continuing-education (CE) credit and cycles,
recertification policies, the reminder outbox and its opt-outs, and the public holder pages a
holder chooses to share.

CE amounts are stored as whole hundredths of a credit (``2.5`` hours is ``250``): sums and
minimums are exact, with no float drift at a boundary.

- :class:`CeCredit`: an achievement carries ``amount`` credits in ``category`` (one row per
  category), e.g. a micro-credential worth 3 hours of "ethics" and 2 of "practice".
- :class:`CeRequirement`: a certification (an achievement) requires ``total`` credits earned
  within ``cycle_months`` of the holder's certification, with at least a minimum in each named
  category (``credentials.ce`` does the arithmetic).
- :class:`RenewalPolicy`: when an expiring certification's recertification window opens, how
  long after expiry a holder may still renew (then they have lapsed), and when reminders go out.
- :class:`Reminder`: the outbox, one row per (kind, credential, point): the unique key makes
  planning idempotent and the state column makes sending happen once (``credentials.reminders``).
- :class:`ReminderOptOut`: a holder's unsubscribe (and re-subscribe), append-only; newest wins.
- :class:`HolderShare`: a public page of the credentials a holder chose, at an unguessable
  token, until the holder ends it.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microcred.db import Base, append_only, utcnow

#: CE credit units a program may count in
CE_UNITS = ("hours", "units")


class CeCredit(Base):
    """CE credit an achievement's credentials carry, in one category."""

    __tablename__ = "credential_ce_credits"
    __table_args__ = (UniqueConstraint("achievement_id", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    achievement_id: Mapped[int] = mapped_column(ForeignKey("credential_achievements.id"),
                                                index=True)
    category: Mapped[str] = mapped_column(String(64))
    #: hundredths of a credit
    amount: Mapped[int]
    unit: Mapped[str] = mapped_column(String(10), default="hours")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CeRequirement(Base):
    """The CE cycle attached to holders of a certification."""

    __tablename__ = "credential_ce_requirements"

    id: Mapped[int] = mapped_column(primary_key=True)
    achievement_id: Mapped[int] = mapped_column(ForeignKey("credential_achievements.id"),
                                                unique=True)
    #: hundredths of a credit, over the whole cycle
    total: Mapped[int]
    cycle_months: Mapped[int]
    #: {category: hundredths}: the least each named category must contribute
    minimums: Mapped[dict[str, Any]] = mapped_column(default=dict)
    unit: Mapped[str] = mapped_column(String(10), default="hours")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RenewalPolicy(Base):
    """How a certification is renewed: the window before expiry, the grace after it, and the
    reminder points (days before expiry; days before the CE cycle ends)."""

    __tablename__ = "credential_renewal_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    achievement_id: Mapped[int] = mapped_column(ForeignKey("credential_achievements.id"),
                                                unique=True)
    window_days: Mapped[int] = mapped_column(default=90)
    grace_days: Mapped[int] = mapped_column(default=0)
    expiry_reminder_days: Mapped[list[Any]] = mapped_column(default=list)
    cycle_reminder_days: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Reminder(Base):
    """One email owed to a holder: ``pending`` until a job claims it (``sending``), then
    ``sent``, ``failed`` (with the reason), or ``skipped`` (unsubscribed, renewed meanwhile)."""

    __tablename__ = "credential_reminders"
    __table_args__ = (UniqueConstraint("kind", "credential_id", "point_days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: expiry | ce_cycle
    kind: Mapped[str] = mapped_column(String(10))
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"))
    holder_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    point_days: Mapped[int]
    due_at: Mapped[dt.datetime] = mapped_column(index=True)
    #: the date the reminder is about (expiry, or the cycle's last day), for the message
    deadline: Mapped[dt.date]
    state: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReminderOptOut(Base):
    """A holder unsubscribed from reminders (``opted_out``) or subscribed again."""

    __tablename__ = "credential_reminder_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    opted_out: Mapped[bool]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(ReminderOptOut)


class HolderShare(Base):
    """A public page at ``/holders/<token>`` showing the credentials a holder chose (their
    public ids) and, if they chose, their CE progress; gone once ``ended_at`` is set."""

    __tablename__ = "credential_holder_shares"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    credential_ids: Mapped[list[Any]] = mapped_column(default=list)
    show_ce: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
