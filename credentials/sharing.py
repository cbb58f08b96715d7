"""The public holder page: a page the holder chooses to share, showing only the credentials
they picked (and their CE progress if they chose), at ``/holders/<token>``.

The token is 32 random bytes (``secrets.token_urlsafe``): the address cannot be guessed or
enumerated, and it says nothing about the holder. Nothing is public until the holder creates a
share; ending it makes the address answer 404 at once. A holder may keep several shares (one
for an employer, one for a registry) and end each on its own.
"""
from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials.errors import CredentialError
from credentials.models import Credential
from credentials.renewal_models import HolderShare
from microcred.db import utcnow

MAX_SHARES = 20


def create(session: Session, user_id: int, public_ids: list[str], *,
           show_ce: bool = False) -> HolderShare:
    """A new share of the holder's credentials ``public_ids`` (each must be theirs)."""
    chosen = list(dict.fromkeys(p for p in public_ids if p))
    if not chosen:
        raise CredentialError("choose at least one credential to show", field="credentials")
    owned = set(session.scalars(select(Credential.public_id).where(
        Credential.holder_id == user_id, Credential.public_id.in_(chosen))))
    strangers = [p for p in chosen if p not in owned]
    if strangers:
        raise CredentialError("you can share only your own credentials", field="credentials")
    if len(active(session, user_id)) >= MAX_SHARES:
        raise CredentialError(f"at most {MAX_SHARES} shared pages at once: end one first")
    row = HolderShare(user_id=user_id, token=secrets.token_urlsafe(32), credential_ids=chosen,
                      show_ce=bool(show_ce), created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def active(session: Session, user_id: int) -> list[HolderShare]:
    return list(session.scalars(select(HolderShare).where(
        HolderShare.user_id == user_id, HolderShare.ended_at.is_(None))
        .order_by(HolderShare.id)))


def end(session: Session, user_id: int, share_id: int) -> HolderShare:
    row = session.get(HolderShare, share_id)
    if row is None or row.user_id != user_id:
        raise CredentialError("there is no such shared page of yours")
    if row.ended_at is None:
        row.ended_at = utcnow()
        session.flush()
    return row


def by_token(session: Session, token: str) -> HolderShare | None:
    """The live share at ``token`` (None when unknown or ended)."""
    if not token or len(token) > 64:
        return None
    return session.scalar(select(HolderShare).where(HolderShare.token == token,
                                                    HolderShare.ended_at.is_(None)))


def shown_credentials(session: Session, share: HolderShare) -> list[Credential]:
    """The chosen credentials that are still the holder's, in the order chosen."""
    rows = {c.public_id: c for c in session.scalars(select(Credential).where(
        Credential.holder_id == share.user_id, Credential.public_id.in_(share.credential_ids)))}
    return [rows[p] for p in share.credential_ids if p in rows]
