"""Badge activity counted for program reports: credentials issued and revoked in a period, and
those expiring soon, per achievement. A public read for other packages (the workspace's program
report): counted in the database, plain rows back; callers never read credentials' tables."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from credentials.models import Achievement, Credential, StatusEvent
from microcred.db import utcnow


@dataclass(frozen=True)
class BadgeActivity:
    achievement_code: str
    achievement_name: str
    exam_id: int | None
    issued: int
    revoked: int
    #: valid now, not revoked, not renewed, and ending within the window asked for
    expiring: int


def badge_activity(session: Session, *, exam_ids: list[int] | None = None,
                   since: dt.datetime | None = None, until: dt.datetime | None = None,
                   expiring_within_days: int = 60,
                   now: dt.datetime | None = None) -> list[BadgeActivity]:
    """Per achievement (of ``exam_ids``' exams, or all): credentials issued in
    ``[since, until)``, credentials revoked in it, and credentials expiring within
    ``expiring_within_days`` of ``now``. Three grouped queries."""
    now = now or utcnow()

    def window(column, query):
        if since is not None:
            query = query.where(column >= since)
        if until is not None:
            query = query.where(column < until)
        return query

    issued = dict(session.execute(window(Credential.issued_at, select(
        Credential.achievement_id, func.count()).group_by(Credential.achievement_id))).all())
    revoked = dict(session.execute(window(StatusEvent.at, select(
        Credential.achievement_id, func.count(func.distinct(StatusEvent.credential_id)))
        .join(Credential, Credential.id == StatusEvent.credential_id)
        .where(StatusEvent.action == "revoke").group_by(Credential.achievement_id))).all())
    renewal = aliased(Credential)
    ever_revoked = select(StatusEvent.credential_id).where(StatusEvent.action == "revoke")
    expiring = dict(session.execute(
        select(Credential.achievement_id, func.count())
        .where(Credential.valid_until.is_not(None), Credential.valid_until > now,
               Credential.valid_until <= now + dt.timedelta(days=expiring_within_days),
               Credential.id.not_in(ever_revoked),
               ~select(renewal.id).where(renewal.supersedes_id == Credential.id).exists())
        .group_by(Credential.achievement_id)).all())
    query = select(Achievement).order_by(Achievement.code)
    if exam_ids is not None:
        query = query.where(Achievement.exam_id.in_(exam_ids))
    return [BadgeActivity(a.code, a.name, a.exam_id, int(issued.get(a.id, 0)),
                          int(revoked.get(a.id, 0)), int(expiring.get(a.id, 0)))
            for a in session.scalars(query)]
