"""Revocation and suspension over the database: status list slots, status events, and the
signed, cached Bitstring Status List credentials Microcred publishes.

A credential's ``credentialStatus`` holds two ``BitstringStatusListEntry`` objects at the same
index: purpose ``revocation`` pointing at ``/status/<list>/revocation`` and purpose
``suspension`` (a reversible hold during a misconduct investigation) pointing at
``/status/<list>/suspension``, so any Bitstring Status List verifier sees both. (Credentials
issued before carried only the revocation entry; Microcred's own verifier still finds their
suspension list by the same index.) Revocation is final (Bitstring Status List §2.1: "not
reversible"); suspension can be restored.

Status is derived from append-only ``StatusEvent`` rows; a published list records the newest
event it reflects (``through_event_id``) so a stale cached list is never served.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credentials import dataintegrity, issuers, statuslist
from credentials.config import CredentialConfig
from credentials.errors import CredentialError
from credentials.models import (
    Credential,
    Issuer,
    IssuerKey,
    StatusEvent,
    StatusList,
    StatusListPublication,
)
from microcred.db import utcnow

log = logging.getLogger(__name__)

LIST_FILL_LIMIT = 0.5  # open a new list before random slots get hard to find
TTL_MS = 5 * 60 * 1000


class StatusChangeError(CredentialError):
    """A revoke, suspend or restore that is not allowed; the message says why."""


def list_url(cfg: CredentialConfig, list_id: int, purpose: str) -> str:
    return cfg.url(f"/status/{list_id}/{purpose}")


def allocate_slot(session: Session, issuer: Issuer, key: IssuerKey) -> tuple[StatusList, int]:
    """A random free index on the newest list of the issuer's signing key (random, so that
    neighbouring bits do not reveal issuance order: Bitstring Status List §6 Privacy)."""
    current = session.scalar(select(StatusList).where(StatusList.issuer_key_id == key.id)
                             .order_by(StatusList.id.desc()).limit(1))
    if current is not None:
        used = session.scalar(select(func.count()).select_from(Credential)
                              .where(Credential.status_list_id == current.id)) or 0
        if used >= current.size * LIST_FILL_LIMIT:
            current = None
    if current is None:
        current = StatusList(issuer_id=issuer.id, issuer_key_id=key.id, size=statuslist.MIN_BITS)
        session.add(current)
        session.flush()
    for _ in range(64):
        index = secrets.randbelow(current.size)
        taken = session.scalar(select(Credential.id).where(
            Credential.status_list_id == current.id, Credential.status_index == index))
        if taken is None:
            return current, index
    raise CredentialError("could not find a free status list slot")  # pragma: no cover


@dataclass
class CredentialStatus:
    revoked: StatusEvent | None
    suspended: StatusEvent | None
    events: list[StatusEvent]

    @property
    def label(self) -> str:
        return "revoked" if self.revoked else "suspended" if self.suspended else "active"

    @property
    def reason(self) -> str | None:
        event = self.revoked or self.suspended
        return event.reason if event else None


def status_of(session: Session, credential: Credential) -> CredentialStatus:
    events = list(session.scalars(select(StatusEvent).where(
        StatusEvent.credential_id == credential.id).order_by(StatusEvent.id)))
    revoked = next((e for e in events if e.action == "revoke"), None)
    suspended = None
    for e in events:
        if e.action == "suspend":
            suspended = e
        elif e.action == "restore":
            suspended = None
    return CredentialStatus(revoked, None if revoked else suspended, events)


def _record(session: Session, cfg: CredentialConfig, credential: Credential, action: str,
            reason: str, by_user_id: int | None) -> StatusEvent:
    if not reason or not reason.strip():
        raise StatusChangeError(f"say why: a {action} needs a reason")
    event = StatusEvent(credential_id=credential.id, status_list_id=credential.status_list_id,
                        action=action, reason=reason.strip(), by_user_id=by_user_id)
    session.add(event)
    session.flush()
    purpose = "suspension" if action in ("suspend", "restore") else "revocation"
    publish(session, cfg, session.get(StatusList, credential.status_list_id), purpose)
    return event


def revoke(session: Session, cfg: CredentialConfig, credential: Credential, *, reason: str,
           by_user_id: int | None) -> StatusEvent:
    state = status_of(session, credential)
    if state.revoked:
        raise StatusChangeError(f"credential {credential.public_id} is already revoked")
    event = _record(session, cfg, credential, "revoke", reason, by_user_id)
    if state.suspended:  # a revoked credential is no longer merely held
        _record(session, cfg, credential, "restore", "superseded by revocation", by_user_id)
    return event


def suspend(session: Session, cfg: CredentialConfig, credential: Credential, *, reason: str,
            by_user_id: int | None) -> StatusEvent:
    state = status_of(session, credential)
    if state.revoked:
        raise StatusChangeError("a revoked credential cannot be suspended")
    if state.suspended:
        raise StatusChangeError(f"credential {credential.public_id} is already suspended")
    return _record(session, cfg, credential, "suspend", reason, by_user_id)


def restore(session: Session, cfg: CredentialConfig, credential: Credential, *, reason: str,
            by_user_id: int | None) -> StatusEvent:
    state = status_of(session, credential)
    if state.revoked:
        raise StatusChangeError("revocation is final: a revoked credential cannot be restored")
    if not state.suspended:
        raise StatusChangeError(f"credential {credential.public_id} is not suspended")
    return _record(session, cfg, credential, "restore", reason, by_user_id)


# --- published lists --------------------------------------------------------------------------

def _bitstring(session: Session, status: StatusList, purpose: str) -> tuple[
        statuslist.Bitstring, int]:
    bits = statuslist.Bitstring(status.size)
    rows = session.execute(
        select(StatusEvent.action, Credential.status_index, StatusEvent.id)
        .join(Credential, Credential.id == StatusEvent.credential_id)
        .where(StatusEvent.status_list_id == status.id).order_by(StatusEvent.id)).all()
    through = 0
    for action, index, event_id in rows:
        through = max(through, event_id)
        if purpose == "revocation" and action == "revoke":
            bits.set(index)
        elif purpose == "suspension" and action in ("suspend", "restore"):
            bits.set(index, action == "suspend")
    return bits, through


def _latest_event_id(session: Session, status: StatusList) -> int:
    return session.scalar(select(func.max(StatusEvent.id))
                          .where(StatusEvent.status_list_id == status.id)) or 0


def _signed(session: Session, cfg: CredentialConfig, status: StatusList, purpose: str,
            now: dt.datetime) -> tuple[dict, int]:
    """The list as it stands, signed, and the newest status event it includes."""
    if purpose not in statuslist.PURPOSES:
        raise CredentialError(f"unknown status purpose {purpose!r}")
    issuer = session.get(Issuer, status.issuer_id)
    key = session.get(IssuerKey, status.issuer_key_id)
    bits, through = _bitstring(session, status, purpose)
    doc = statuslist.list_credential(
        list_url=list_url(cfg, status.id, purpose), issuer=issuers.issuer_did(cfg, issuer, key),
        purpose=purpose, bitstring=bits, valid_from=dataintegrity.xsd_datetime(now),
        ttl_ms=TTL_MS)
    signed = dataintegrity.add_proof(
        doc, issuers.private_key(cfg, issuer, key),
        verification_method=issuers.verification_method(cfg, issuer, key), created=now)
    return signed, through


def publish(session: Session, cfg: CredentialConfig, status: StatusList,
            purpose: str, *, now: dt.datetime | None = None) -> StatusListPublication:
    """Sign the list as it stands and store it (the caller commits). Called where the list
    changes (a new list, a revoke, suspend or restore) and by the sweeper, never by a GET."""
    signed, through = _signed(session, cfg, status, purpose, now or utcnow())
    row = StatusListPublication(status_list_id=status.id, purpose=purpose,
                                through_event_id=through, document=json.dumps(signed))
    session.add(row)
    session.flush()
    return row


def _latest_publication(session: Session, list_id: int,
                        purpose: str) -> StatusListPublication | None:
    return session.scalar(
        select(StatusListPublication)
        .where(StatusListPublication.status_list_id == list_id,
               StatusListPublication.purpose == purpose)
        .order_by(StatusListPublication.id.desc()).limit(1))


def publish_stale(session: Session, cfg: CredentialConfig) -> int:
    """Sign and store every list whose stored publication is missing (a new list) or older
    than its newest status event; for the sweeper, so the public GET never has to. Returns how
    many were published (the caller commits). A list that cannot be signed (its key cannot be
    opened) is logged and skipped: the rest of the sweep goes on."""
    published = 0
    for status in session.scalars(select(StatusList).order_by(StatusList.id)):
        newest = _latest_event_id(session, status)
        for purpose in statuslist.PURPOSES:
            latest = _latest_publication(session, status.id, purpose)
            if latest is None or latest.through_event_id < newest:
                try:
                    publish(session, cfg, status, purpose)
                except CredentialError:
                    log.exception("status list %s (%s) could not be signed", status.id, purpose)
                    continue
                published += 1
    return published


def published_list(session: Session, cfg: CredentialConfig, list_id: int,
                   purpose: str) -> dict | None:
    """The signed status list credential, fresh: the stored one unless events came since. A
    read (the public GET serves it): a missing or stale one is signed for this answer and not
    stored; the write paths and the sweeper store them."""
    status = session.get(StatusList, list_id)
    if status is None or purpose not in statuslist.PURPOSES:
        return None
    latest = _latest_publication(session, list_id, purpose)
    if latest is None or latest.through_event_id < _latest_event_id(session, status):
        return _signed(session, cfg, status, purpose, utcnow())[0]
    return json.loads(latest.document)
