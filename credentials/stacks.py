"""Stacks (micro-endorsements): the N-of-M view of a stack, kept for the callers that read it
that way. The rules and their evaluation are :mod:`credentials.pathways` (required and elective
components, clusters, trainings); this module only reads its answers.

A component counts while its credential is valid: not revoked, not suspended, not expired.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from credentials import pathways, revocation
from credentials.config import CredentialConfig
from credentials.models import Achievement, Credential
from microcred.db import utcnow


def is_current(session: Session, credential: Credential, now: dt.datetime | None = None) -> bool:
    """Valid now: not expired, not revoked, not suspended (what makes a component count)."""
    now = now or utcnow()
    if credential.valid_until is not None and credential.valid_until <= now:
        return False
    return revocation.status_of(session, credential).label == "active"


def current_credentials(session: Session, holder_id: int) -> dict[int, Credential]:
    """Achievement id -> the holder's newest currently valid credential for it."""
    return {a: s.credential for a, s in pathways.holdings(session, holder_id).credentials.items()
            if s.valid}


@dataclass
class StackProgress:
    stack: Achievement
    required: int
    earned: list[Achievement]
    remaining: list[Achievement]
    held: Credential | None
    progress: pathways.PathwayProgress

    @property
    def complete(self) -> bool:
        return self.progress.complete


def progress(session: Session, holder_id: int) -> list[StackProgress]:
    """Every active stack with what the holder has and what remains."""
    catalog = pathways.Catalog.load(session)
    out = []
    for p in pathways.holder_pathways(session, holder_id, catalog=catalog):
        comps = [c for g in p.groups for c in g.components if c.ref.kind == "credential"
                 and c.ref.code in catalog.achievements]
        out.append(StackProgress(
            p.achievement, p.total_needed,
            [catalog.achievements[c.ref.code] for c in comps if c.met],
            [catalog.achievements[c.ref.code] for c in comps if not c.met], p.held, p))
    return out


def award_completed_stacks(session: Session, cfg: CredentialConfig,
                           holder: Any) -> list[Credential]:
    """Issue each stack the holder has just completed and does not hold yet."""
    return pathways.award_completed(session, cfg, holder)
