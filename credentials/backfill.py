"""Badges for passes released before their achievement existed.

A pass earns its badge when its result is released (``issuance.on_result_released``); a pass
released while no achievement was linked to its exam earned nothing then. An admin lists those
passes (the achievement's admin page, ``microcred credentials issue-missing``) and issues what
they have earned, through the same ``issue_for_result``: never twice (one credential per
result and achievement, checked here and held by a unique constraint).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials.config import CredentialConfig
from credentials.issuance import IssuanceError, issue_for_result
from credentials.models import Achievement, Credential
from microcred.records import ReleasedPass, records

#: Passes badged per transaction (per click on the admin page): signing is not free, and a
#: request must end well within the server's timeout.
BATCH = 100


def missing_badges(session: Session, achievement: Achievement) -> list[ReleasedPass]:
    """The released passes of the achievement's exam by active accounts that hold no
    credential of it for that result."""
    if achievement.exam_id is None or not achievement.active:
        return []
    have = set(session.scalars(select(Credential.result_id).where(
        Credential.achievement_id == achievement.id, Credential.result_id.is_not(None))))
    return [p for p in records().released_passes(session, achievement.exam_id)
            if p.result_id not in have]


def issue_missing(session: Session, cfg: CredentialConfig, achievement: Achievement, *,
                  limit: int | None = None) -> list[Credential]:
    """Issue the badges of :func:`missing_badges` (at most ``limit`` passes), with any renewal
    and stack they complete; returns every credential issued. Never commits."""
    if achievement.is_stack:
        raise IssuanceError(f"{achievement.code} is a stack: it is issued with its components")
    if achievement.exam_id is None:
        raise IssuanceError(f"{achievement.code} is not earned by an exam")
    # one backfill of an achievement at a time (a second admin's waits, then finds nothing)
    session.execute(select(Achievement.id).where(Achievement.id == achievement.id)
                    .with_for_update())
    issued: list[Credential] = []
    for p in missing_badges(session, achievement)[:limit]:
        released = records().released_result(session, p.result_id)
        if released is not None:
            issued += issue_for_result(session, cfg, released)
    return issued
