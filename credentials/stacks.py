"""Stacks (micro-endorsements, pathways): an achievement whose criteria are N of M component
achievements. When a holder's valid component credentials complete a stack, the stack
credential is issued, listing the components it was earned with as evidence.

A component counts while its credential is valid: not revoked, not suspended, not expired.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials import openbadge, revocation
from credentials.config import CredentialConfig
from credentials.models import Achievement, Credential
from microcred.db import utcnow


def is_current(session: Session, credential: Credential, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    if credential.valid_until is not None and credential.valid_until <= now:
        return False
    return revocation.status_of(session, credential).label == "active"


def current_credentials(session: Session, holder_id: int) -> dict[int, Credential]:
    """Achievement id -> the holder's newest currently valid credential for it."""
    out: dict[int, Credential] = {}
    for c in session.scalars(select(Credential).where(Credential.holder_id == holder_id)
                             .order_by(Credential.id.desc())):
        if c.achievement_id not in out and is_current(session, c):
            out[c.achievement_id] = c
    return out


@dataclass
class StackProgress:
    stack: Achievement
    required: int
    earned: list[Achievement]
    remaining: list[Achievement]
    held: Credential | None

    @property
    def complete(self) -> bool:
        return len(self.earned) >= self.required


def progress(session: Session, holder_id: int) -> list[StackProgress]:
    """Every active stack with what the holder has and what remains."""
    held = current_credentials(session, holder_id)
    by_code = {a.code: a for a in session.scalars(select(Achievement))}
    out = []
    for stack in session.scalars(select(Achievement).where(
            Achievement.is_stack.is_(True), Achievement.active.is_(True))
            .order_by(Achievement.name)):
        components = [by_code[c] for c in stack.stack_components if c in by_code]
        earned = [a for a in components if a.id in held]
        remaining = [a for a in components if a.id not in held]
        out.append(StackProgress(stack, stack.stack_required or len(components), earned,
                                 remaining, held.get(stack.id)))
    return out


def award_completed_stacks(session: Session, cfg: CredentialConfig,
                           holder: Any) -> list[Credential]:
    """Issue each stack the holder has just completed and does not hold yet."""
    from credentials.issuance import issue

    issued: list[Credential] = []
    for _ in range(5):  # a stack can itself be a component of another stack
        held = current_credentials(session, holder.id)
        new = []
        for p in progress(session, holder.id):
            if p.held is not None or not p.complete or p.stack.id in held:
                continue
            components = [held[a.id] for a in p.earned]
            evidence = [
                openbadge.EvidenceInfo(
                    id=c.json["id"], name=c.achievement.name, genre="Component credential",
                    narrative=f"Earned {c.achievement.name} on "
                              f"{c.issued_at.date().isoformat()}.")
                for c in components
            ]
            new.append(issue(session, cfg, achievement=p.stack, holder=holder, kind="stack",
                             evidence=evidence))
        if not new:
            break
        issued += new
    return issued
