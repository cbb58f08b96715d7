"""A holder's record as a 1EdTech Comprehensive Learner Record 2.0 ``ClrCredential``.

The ``ClrSubject`` (CLR 2.0 §B.1.2) carries the holder's Open Badges credentials verbatim, each
still signed by its own proof (``verifiableCredential``), the achievements they recognise
(``achievement``), and the associations between those achievements (``association``, CLR 2.0
§B.1.1 ``Association``) from the pathway rules: a stack's or cluster's components are
``isPartOf`` it, an exam's prerequisite credentials ``precedes`` what the exam earns. The ClrCredential
itself is signed like the badges: eddsa-rdfc-2022 Data Integrity proof by the default issuer's
current key (``credentials.issuance`` signs badges the same way), so the verifiers that check
the badges check it too.

Revoked credentials are left out; expired ones stay (the record is a history); a credential
whose status is suspended is left out until it is restored.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials import dataintegrity, issuers, openbadge, revocation
from credentials.config import CredentialConfig
from credentials.documents import CLR_V2P0, OB_ASSESSMENT_V2P0, OB_EXTENSIONS, OB_V3P0, VC_V2
from credentials.errors import CredentialError
from credentials.issuance import holder_choice
from credentials.models import Achievement, Credential
from credentials.schema import CLR_CREDENTIAL_SCHEMA, SCHEMA_VALIDATOR_TYPE
from microcred.db import utcnow
from microcred.records import Person

#: CLR 2.0 §5.1: the VC 2.0 context, then CLR's, then Open Badges'
CONTEXTS = [VC_V2, CLR_V2P0, OB_V3P0, OB_EXTENSIONS, OB_ASSESSMENT_V2P0]


def record_credentials(session: Session, holder_id: int) -> list[Credential]:
    """The holder's credentials the record carries, oldest first."""
    return [c for c in session.scalars(select(Credential).where(
        Credential.holder_id == holder_id).order_by(Credential.valid_from, Credential.id))
        if revocation.status_of(session, c).label == "active"]


def associations(session: Session, credentials: list[Credential]) -> list[dict[str, Any]]:
    """The associations between the achievements of ``credentials``, read from the pathway
    rules (``credentials.pathways``, the one model of stacks, clusters and prerequisites):

    - a component of a stack or cluster that the record holds ``isPartOf`` it (when the record
      holds the stack too);
    - a credential an exam requires ``precedes`` the achievement that exam earns.
    """
    from credentials.pathways import Catalog

    catalog = Catalog.load(session)
    held = {c.achievement_id: c for c in credentials}
    by_code = {a.code: a for a in catalog.achievements.values() if a.id in held}

    def achievement_id(achievement: Achievement) -> str:
        return held[achievement.id].json["credentialSubject"]["achievement"]["id"]

    out: list[dict[str, Any]] = []

    def link(kind: str, source: Achievement, target: Achievement) -> None:
        entry = {"type": "Association", "associationType": kind,
                 "sourceId": achievement_id(source), "targetId": achievement_id(target)}
        if entry not in out:
            out.append(entry)

    for target in sorted(by_code.values(), key=lambda a: a.code):
        rule = catalog.stack_rules.get(target.id)
        for ref in rule.refs() if rule else []:
            if ref.kind == "credential" and ref.code in by_code:
                link("isPartOf", by_code[ref.code], target)
        prerequisites = catalog.exam_rules.get(target.exam_id) if target.exam_id else None
        for ref in prerequisites.refs() if prerequisites else []:
            if ref.kind == "credential" and ref.code in by_code:
                link("precedes", by_code[ref.code], target)
    return out


def build(session: Session, cfg: CredentialConfig, holder: Person, *,
          now: dt.datetime | None = None) -> dict[str, Any]:
    """The unsigned ClrCredential of ``holder``'s record."""
    now = (now or utcnow()).replace(microsecond=0)
    creds = record_credentials(session, holder.id)
    if not creds:
        raise CredentialError("there is nothing to export yet: the record holds no credential")
    docs = [c.json for c in creds]
    achievements: dict[str, dict[str, Any]] = {}
    for doc in docs:
        achievement = doc["credentialSubject"]["achievement"]
        achievements.setdefault(achievement["id"], achievement)
    issuer = issuers.default_issuer(session, cfg)
    key = issuers.current_key(session, issuer)
    subject: dict[str, Any] = {"type": ["ClrSubject"]}
    choice = holder_choice(session, holder.id)
    if choice and choice.did:
        subject["id"] = choice.did
    subject["identifier"] = [openbadge.identity_object(holder.email, openbadge.new_salt())]
    subject["verifiableCredential"] = docs
    subject["achievement"] = list(achievements.values())
    links = associations(session, creds)
    if links:
        subject["association"] = links
    return {
        "@context": list(CONTEXTS),
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", "ClrCredential"],
        "issuer": issuers.issuer_info(cfg, issuer, key).profile(),
        "name": f"Comprehensive Learner Record from {issuer.name}",
        "description": f"{len(docs)} credential(s) issued by {issuer.name}, as of "
                       f"{now.date().isoformat()}.",
        "validFrom": dataintegrity.xsd_datetime(now),
        "credentialSubject": subject,
        "credentialSchema": [{"id": CLR_CREDENTIAL_SCHEMA, "type": SCHEMA_VALIDATOR_TYPE}],
    }


def export(session: Session, cfg: CredentialConfig, holder: Person, *,
           now: dt.datetime | None = None) -> dict[str, Any]:
    """The signed ClrCredential (eddsa-rdfc-2022, the default issuer's current key)."""
    now = (now or utcnow()).replace(microsecond=0)
    unsigned = build(session, cfg, holder, now=now)
    issuer = issuers.default_issuer(session, cfg)
    key = issuers.current_key(session, issuer)
    return dataintegrity.add_proof(
        unsigned, issuers.private_key(cfg, issuer, key),
        verification_method=issuers.verification_method(cfg, issuer, key), created=now)
