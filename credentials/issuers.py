"""Issuer profiles and their keys: the default issuer, key rotation, the issuer's DID and its
DID document (did:web) — all over a SQLAlchemy session.

Rotation appends a new ``IssuerKey``; the newest signs. With did:web every key stays listed in
the DID document's ``assertionMethod``, so credentials signed by an older key keep verifying.
With did:key the DID *is* the key, so a rotated issuer gets a new DID and old credentials keep
resolving from their own identifier.
"""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials import keys
from credentials.config import CredentialConfig
from credentials.errors import CredentialError
from credentials.models import Issuer, IssuerKey
from credentials.openbadge import IssuerInfo
from microcred.inputs import InvalidInput, http_url


def default_issuer(session: Session, cfg: CredentialConfig) -> Issuer:
    """The default issuer, created with a first key on first use."""
    issuer = session.scalar(select(Issuer).where(Issuer.is_default.is_(True)).limit(1))
    if issuer is None:
        issuer = create_issuer(session, cfg, slug="default", name=cfg.issuer_name,
                               url=cfg.issuer_url or cfg.base_url, email=cfg.issuer_email,
                               is_default=True)
    return issuer


def create_issuer(session: Session, cfg: CredentialConfig, *, slug: str, name: str, url: str,
                  email: str | None = None, description: str = "",
                  is_default: bool = False) -> Issuer:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", slug):
        raise CredentialError(f"issuer slug {slug!r}: use lowercase letters, digits and dashes")
    if not name.strip():
        raise CredentialError("an issuer needs a name")
    try:
        url = http_url(url, "the issuer's url") or ""
    except InvalidInput as exc:
        raise CredentialError(exc.message) from None
    if not url:
        raise CredentialError("an issuer needs an http(s) url")
    issuer = Issuer(slug=slug, name=name.strip(), url=url, email=email, description=description,
                    is_default=is_default)
    session.add(issuer)
    session.flush()
    rotate_key(session, cfg, issuer)
    return issuer


def rotate_key(session: Session, cfg: CredentialConfig, issuer: Issuer) -> IssuerKey:
    """Generate a new Ed25519 key for ``issuer``; it signs from now on."""
    private = keys.generate_private_key()
    n = len(list_keys(session, issuer)) + 1
    ref = f"key-{n}"
    row = IssuerKey(
        issuer_id=issuer.id,
        key_ref=ref,
        public_key_multibase=keys.public_key_multibase(private),
        sealed_private_key=keys.SealedKey.seal(
            private, keys.key_encryption_key(cfg.instance_dir), aad=_aad(issuer, ref)).blob,
    )
    session.add(row)
    session.flush()
    return row


def _aad(issuer: Issuer, key_ref: str) -> str:
    # binds the sealed key to its issuer and slot, so rows cannot be swapped
    return f"microcred-issuer:{issuer.id}:{key_ref}"


def list_keys(session: Session, issuer: Issuer) -> list[IssuerKey]:
    return list(session.scalars(
        select(IssuerKey).where(IssuerKey.issuer_id == issuer.id).order_by(IssuerKey.id)))


def current_key(session: Session, issuer: Issuer) -> IssuerKey:
    found = list_keys(session, issuer)
    if not found:
        raise CredentialError(f"issuer {issuer.slug} has no key")
    return found[-1]


def private_key(cfg: CredentialConfig, issuer: Issuer, key: IssuerKey):
    return keys.SealedKey(key.sealed_private_key).open(
        keys.key_encryption_key(cfg.instance_dir), aad=_aad(issuer, key.key_ref))


def issuer_did(cfg: CredentialConfig, issuer: Issuer, key: IssuerKey) -> str:
    if cfg.did_web:
        path = None if issuer.is_default else ["issuers", issuer.slug]
        return keys.did_web_for(cfg.base_url, path)
    return "did:key:" + key.public_key_multibase


def verification_method(cfg: CredentialConfig, issuer: Issuer, key: IssuerKey) -> str:
    did = issuer_did(cfg, issuer, key)
    if did.startswith("did:key:"):
        return f"{did}#{key.public_key_multibase}"
    return f"{did}#{key.key_ref}"


def did_web_document(session: Session, cfg: CredentialConfig, issuer: Issuer) -> dict:
    """The did:web DID document: every key of the issuer, all valid for assertionMethod."""
    rows = list_keys(session, issuer)
    did = issuer_did(cfg, issuer, rows[-1]) if rows else None
    if did is None or not did.startswith("did:web:"):
        raise CredentialError("did:web is not enabled (set MICROCRED_DID_WEB=1)")
    methods = [keys.multikey_method(f"{did}#{k.key_ref}", did, k.public_key_multibase)
               for k in rows]
    return keys.controller_document(did, methods, assertion=[m["id"] for m in methods])


def issuer_info(cfg: CredentialConfig, issuer: Issuer, key: IssuerKey) -> IssuerInfo:
    return IssuerInfo(id=issuer_did(cfg, issuer, key), name=issuer.name, url=issuer.url,
                      email=issuer.email, description=issuer.description or None)


def issuer_for_did(session: Session, cfg: CredentialConfig, did: str) -> Issuer | None:
    """Which of our issuers a did:web names (None for others)."""
    if not cfg.did_web or not did.startswith("did:web:"):
        return None
    for issuer in session.scalars(select(Issuer)):
        path = None if issuer.is_default else ["issuers", issuer.slug]
        if keys.did_web_for(cfg.base_url, path) == did:
            return issuer
    return None
