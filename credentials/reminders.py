"""Reminder emails: before a credential expires and before a CE cycle ends, through a real
SMTP server, with an unsubscribe link that works. The outbox is the ``credential_reminders``
table and a background job works it (``credentials.reminders``).

Planning (:func:`plan`) writes one row per (kind, credential, point): the unique key makes a
second planner, or a second run, insert nothing. Only the nearest point already due is planned,
so a job that did not run for a month sends one reminder, not three.

Sending (:func:`send_due`) claims each due row with a conditional update (``pending`` ->
``sending`` where it is still ``pending``), commits the claim, sends, then records ``sent``.
Two jobs running at once never send the same reminder: only one claim succeeds. A send that
the server refused (an ``SMTPException``, a refused connection) puts the row back to
``pending`` with the reason, to be tried again, up to :data:`MAX_ATTEMPTS`; then ``failed``.
A worker killed between the server's acceptance and the ``sent`` commit leaves the row
``sending``: it is never sent twice (at most once, by design: a duplicate reminder is worse
than a late one, and the admin list shows it).

Settings (environment): ``MICROCRED_SMTP_HOST`` (default ``localhost``), ``MICROCRED_SMTP_PORT``
(25), ``MICROCRED_SMTP_FROM`` (``Microcred <no-reply@localhost>``), ``MICROCRED_SMTP_USER`` and
``MICROCRED_SMTP_PASSWORD`` (login when set), ``MICROCRED_SMTP_SECURITY``: ``none``,
``starttls`` or ``ssl``.

The unsubscribe link carries a token signed (HMAC, itsdangerous) with a key generated once into
the instance folder (``reminder_key``): it names the holder and cannot be forged or altered.
Each message also has ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` headers (RFC 2369,
RFC 8058) so mail clients can offer one-click unsubscribe.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credentials import ce, recert
from credentials.config import CredentialConfig, current
from credentials.errors import CredentialError
from credentials.models import Credential
from credentials.renewal_models import Reminder, ReminderOptOut
from microcred.db import utcnow
from microcred.jobs import job
from microcred.keyfile import read_or_create
from microcred.records import records

log = logging.getLogger(__name__)

SEND = "credentials.reminders"
MAX_ATTEMPTS = 5
ERROR_LENGTH = 2000
TOKEN_SALT = "microcred.reminders.unsubscribe"


# --- settings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    sender: str = "Microcred <no-reply@localhost>"
    user: str | None = None
    password: str | None = None
    security: str = "none"  # none | starttls | ssl
    timeout: float = 10.0

    @classmethod
    def from_environment(cls) -> SmtpSettings:
        env = os.environ
        security = env.get("MICROCRED_SMTP_SECURITY", "none").strip().lower() or "none"
        if security not in ("none", "starttls", "ssl"):
            raise CredentialError("MICROCRED_SMTP_SECURITY must be none, starttls or ssl, not "
                                  f"{security!r}")
        try:
            port = int(env.get("MICROCRED_SMTP_PORT", "465" if security == "ssl" else "25"))
        except ValueError:
            raise CredentialError("MICROCRED_SMTP_PORT must be a port number") from None
        return cls(host=env.get("MICROCRED_SMTP_HOST", "localhost"), port=port,
                   sender=env.get("MICROCRED_SMTP_FROM", cls.sender),
                   user=env.get("MICROCRED_SMTP_USER") or None,
                   password=env.get("MICROCRED_SMTP_PASSWORD") or None, security=security)


# --- unsubscribe ------------------------------------------------------------------------------

def _serializer(cfg: CredentialConfig) -> URLSafeSerializer:
    key = read_or_create(cfg.instance_dir / "reminder_key", lambda: secrets.token_urlsafe(48))
    return URLSafeSerializer(key, salt=TOKEN_SALT)


def unsubscribe_token(cfg: CredentialConfig, user_id: int) -> str:
    return _serializer(cfg).dumps({"u": user_id})


def user_of_token(cfg: CredentialConfig, token: str) -> int:
    """The holder a token names; CredentialError when it is not one we signed."""
    try:
        data = _serializer(cfg).loads(token or "")
    except BadSignature:
        raise CredentialError("this unsubscribe link is not valid (it may have been cut short "
                              "when copied)") from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        raise CredentialError("this unsubscribe link is not valid")
    return data["u"]


def unsubscribe_url(cfg: CredentialConfig, user_id: int) -> str:
    return cfg.url(f"/reminders/unsubscribe/{unsubscribe_token(cfg, user_id)}")


def opted_out(session: Session, user_id: int) -> bool:
    row = session.scalar(select(ReminderOptOut).where(ReminderOptOut.user_id == user_id)
                         .order_by(ReminderOptOut.id.desc()).limit(1))
    return bool(row and row.opted_out)


def set_opt_out(session: Session, user_id: int, opted_out_now: bool) -> ReminderOptOut:
    row = ReminderOptOut(user_id=user_id, opted_out=opted_out_now, at=utcnow())
    session.add(row)
    session.flush()
    return row


# --- planning ---------------------------------------------------------------------------------

def _nearest_due(points: list[int], deadline: dt.datetime,
                 now: dt.datetime) -> tuple[int, dt.datetime] | None:
    """The due point closest to the deadline, if any is due and the deadline has not passed."""
    if now >= deadline:
        return None
    due = [(p, deadline - dt.timedelta(days=p)) for p in points
           if deadline - dt.timedelta(days=p) <= now]
    return min(due, key=lambda d: d[0]) if due else None


def _insert(session: Session, row: Reminder) -> bool:
    """Insert unless the (kind, credential, point) row exists; True when inserted."""
    exists = session.scalar(select(Reminder.id).where(
        Reminder.kind == row.kind, Reminder.credential_id == row.credential_id,
        Reminder.point_days == row.point_days))
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another planner inserted it between our look and our insert
        return False
    return True


def plan(session: Session, now: dt.datetime | None = None) -> list[Reminder]:
    """Write the reminders now due (expiry windows and CE cycle ends); the new rows."""
    now = now or utcnow()
    new: list[Reminder] = []
    for cred in recert.newest_with_expiry(session):
        st = recert.standing(session, cred, now)
        if st.state not in ("current", "window"):
            continue
        pol = recert.policy(session, cred.achievement_id)
        point = _nearest_due(pol.expiry_reminder_days, cred.valid_until, now)
        if point is None:
            continue
        row = Reminder(kind="expiry", credential_id=cred.id, holder_id=cred.holder_id,
                       point_days=point[0], due_at=point[1],
                       deadline=cred.valid_until.astimezone(dt.UTC).date(), state="pending",
                       attempts=0, created_at=now)
        if _insert(session, row):
            new.append(row)
    holders = set(session.scalars(select(Credential.holder_id).distinct()))
    for holder_id in sorted(holders):
        for cycle in ce.cycles(session, holder_id, now):
            if cycle.complete:
                continue
            pol = recert.policy(session, cycle.certification.achievement_id)
            point = _nearest_due(pol.cycle_reminder_days, cycle.ends_at, now)
            if point is None:
                continue
            row = Reminder(kind="ce_cycle", credential_id=cycle.certification.id,
                           holder_id=holder_id, point_days=point[0], due_at=point[1],
                           deadline=cycle.last_day, state="pending", attempts=0,
                           created_at=now)
            if _insert(session, row):
                new.append(row)
    session.commit()
    return new


# --- sending ----------------------------------------------------------------------------------

def _claim(session: Session, reminder_id: int) -> bool:
    claimed = session.execute(
        update(Reminder).where(Reminder.id == reminder_id, Reminder.state == "pending")
        .values(state="sending", attempts=Reminder.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount == 1
    session.commit()
    return claimed


def _finish(session: Session, reminder_id: int, state: str, error: str | None = None,
            now: dt.datetime | None = None) -> None:
    values: dict = {"state": state, "error": (error or None) and error[:ERROR_LENGTH]}
    if state == "sent":
        values["sent_at"] = now or utcnow()
    session.execute(update(Reminder).where(Reminder.id == reminder_id, Reminder.state == "sending")
                    .values(**values).execution_options(synchronize_session=False))
    session.commit()


def _still_owed(session: Session, reminder: Reminder, now: dt.datetime) -> str | None:
    """Why the reminder is no longer needed (renewed, cycle met, unsubscribed), or None."""
    if opted_out(session, reminder.holder_id):
        return "the holder unsubscribed"
    cred = session.get(Credential, reminder.credential_id)
    st = recert.standing(session, cred, now)
    if reminder.kind == "expiry" and st.state not in ("current", "window"):
        return f"the credential is {st.state}"
    if reminder.kind == "ce_cycle":
        cycle = ce.cycle_for(session, cred, now)
        if cycle is None or cycle.complete:
            return "the CE cycle is complete"
    return None


def compose(session: Session, cfg: CredentialConfig, smtp: SmtpSettings, reminder: Reminder,
            now: dt.datetime) -> EmailMessage:
    """The message for one reminder."""
    person = records().person(session, reminder.holder_id)
    if person is None:
        raise CredentialError(f"the holder (user {reminder.holder_id}) no longer exists")
    cred = session.get(Credential, reminder.credential_id)
    name = cred.achievement.name
    deadline = reminder.deadline.isoformat()
    renew_url = cfg.url("/wallet/renewals")
    if reminder.kind == "expiry":
        subject = f"Your {name} credential expires on {deadline}"
        lines = [f"Your {name} credential expires on {deadline}.",
                 ("You can renew it now: take the recertification exam, or meet the renewal "
                 "through continuing education if your cycle is complete."),
                 f"See what you need: {renew_url}"]
    else:
        cycle = ce.cycle_for(session, cred, now)
        missing = ", ".join(cycle.missing()) if cycle else ""
        subject = f"Your {name} continuing-education cycle ends on {deadline}"
        lines = [(f"Your continuing-education cycle for {name} ends on {deadline} (the last "
                 "day counts)."), f"Still missing: {missing}." if missing else "",
                 f"See your progress: {renew_url}"]
    unsubscribe = unsubscribe_url(cfg, reminder.holder_id)
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = f"{person.display_name} <{person.email}>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(idstring=f"reminder-{reminder.id}")
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    body = "\n\n".join(line for line in [f"Hello {person.display_name},", *lines] if line)
    body += ("\n\n-- \nYou receive this because you hold a credential that expires or requires "
             f"continuing education. Unsubscribe from these reminders: {unsubscribe}\n")
    msg.set_content(body)
    return msg


def _deliver(smtp: SmtpSettings, msg: EmailMessage) -> None:
    if smtp.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if smtp.user:
            client.login(smtp.user, smtp.password or "")
        client.send_message(msg)


def send_due(session: Session, cfg: CredentialConfig, smtp: SmtpSettings,
             now: dt.datetime | None = None) -> dict[str, int]:
    """Send every due pending reminder once; counts by outcome."""
    now = now or utcnow()
    counts = {"sent": 0, "skipped": 0, "retry": 0, "failed": 0}
    due = list(session.scalars(select(Reminder.id).where(
        Reminder.state == "pending", Reminder.due_at <= now).order_by(Reminder.due_at)))
    session.commit()
    for reminder_id in due:
        if not _claim(session, reminder_id):
            continue  # another job has it
        reminder = session.get(Reminder, reminder_id)
        session.refresh(reminder)
        why_not = _still_owed(session, reminder, now)
        if why_not:
            _finish(session, reminder_id, "skipped", why_not)
            counts["skipped"] += 1
            continue
        try:
            msg = compose(session, cfg, smtp, reminder, now)
            _deliver(smtp, msg)
        except (smtplib.SMTPException, OSError, CredentialError) as exc:
            final = reminder.attempts >= MAX_ATTEMPTS
            session.rollback()
            log.warning("reminder %s not sent (attempt %s): %s", reminder_id, reminder.attempts,
                        exc)
            session.execute(update(Reminder).where(Reminder.id == reminder_id).values(
                state="failed" if final else "pending",
                error=f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]))
            session.commit()
            counts["failed" if final else "retry"] += 1
            continue
        _finish(session, reminder_id, "sent", now=now)
        counts["sent"] += 1
    return counts


@job(SEND, retries=0)
def reminders_job(session: Session) -> dict[str, int]:
    """Plan what is due and send it. Safe to run twice, or twice at once."""
    plan(session)
    return send_due(session, current(), SmtpSettings.from_environment())
