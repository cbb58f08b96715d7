"""The OpenBadgeCredential document (Open Badges 3.0, 1EdTech; VC Data Model 2.0).

Pure functions that build the JSON: issuer ``Profile`` (OB 3.0 §B.1.15), ``Achievement``
(§B.1.1) with ``Criteria``, ``Image``, ``Alignment`` and a ``ResultDescription``,
``AchievementSubject`` (§B.1.2) identified by a salted SHA-256 ``IdentityObject`` (§B.1.13),
``Result`` (§B.1.18), ``Evidence`` (§B.1.11), and the credential itself (§B.1.3
AchievementCredential) with ``validFrom``, ``validUntil``, ``credentialStatus`` and
``credentialSchema``. Nothing here signs or stores.

The result description uses 1EdTech's Assessment Extension 2.0 ``AssessmentResultDescription``
with ``assessmentType: "Exam"``, defined by 1EdTech's own context for the extension (bundled in
``contexts/``, after the VC, OB and OB extensions contexts): the class maps to
``https://purl.imsglobal.org/spec/vc/ob/vocab.html#AssessmentResultDescription`` and its
properties to the IRIs that context gives them.
"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from credentials.documents import CREDENTIAL_CONTEXTS
from credentials.schema import OB_ACHIEVEMENT_CREDENTIAL_SCHEMA as OB_SCHEMA

CONTEXTS: list[Any] = list(CREDENTIAL_CONTEXTS)


def identity_hash(identity: str, salt: str) -> str:
    """``sha256$`` + hex SHA-256 of identity+salt (OB 3.0 §B.3.x IdentityHash)."""
    return "sha256$" + hashlib.sha256((identity + salt).encode("utf-8")).hexdigest()


def new_salt() -> str:
    return secrets.token_hex(16)


def identity_object(email: str, salt: str) -> dict[str, Any]:
    """The holder as a salted, hashed email address: an employer who is told the address can
    check it, nobody else learns it."""
    return {
        "type": "IdentityObject",
        "identityHash": identity_hash(email.strip().lower(), salt),
        "identityType": "emailAddress",
        "hashed": True,
        "salt": salt,
    }


def email_matches(identifier: dict[str, Any], email: str) -> bool:
    if identifier.get("identityType") != "emailAddress" or not identifier.get("hashed"):
        return False
    return identifier.get("identityHash") == identity_hash(
        email.strip().lower(), identifier.get("salt", ""))


@dataclass
class IssuerInfo:
    id: str
    name: str
    url: str
    email: str | None = None
    description: str | None = None
    image: str | None = None

    def profile(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "type": ["Profile"], "name": self.name,
                               "url": self.url}
        if self.email:
            doc["email"] = self.email
        if self.description:
            doc["description"] = self.description
        if self.image:
            doc["image"] = {"id": self.image, "type": "Image", "caption": self.name}
        return doc


@dataclass
class Domain:
    code: str
    name: str
    description: str = ""
    url: str = ""


@dataclass
class AchievementInfo:
    id: str
    name: str
    description: str
    criteria: str
    image: str
    achievement_type: str = "Certification"
    criteria_url: str | None = None
    domains: list[Domain] = field(default_factory=list)
    #: the score a pass needs, for exam achievements, on ``score_min``..``score_max``:
    #: ``score_kind`` "scale" (a scale score from the exam's adopted cut) or "percent"
    #: (percent correct, an exam without a cut)
    required_score: float | None = None
    exam_title: str | None = None
    tags: list[str] = field(default_factory=list)
    score_min: float = 0.0
    score_max: float = 100.0
    score_kind: str = "percent"

    @property
    def result_description_id(self) -> str:
        return self.id + ("#result-scale-score" if self.score_kind == "scale"
                          else "#result-percent")

    def document(self) -> dict[str, Any]:
        criteria: dict[str, Any] = {"narrative": self.criteria}
        if self.criteria_url:
            criteria["id"] = self.criteria_url
        doc: dict[str, Any] = {
            "id": self.id,
            "type": ["Achievement"],
            "achievementType": self.achievement_type,
            "name": self.name,
            "description": self.description,
            "criteria": criteria,
            "image": {"id": self.image, "type": "Image", "caption": self.name},
        }
        if self.domains:
            doc["alignment"] = [
                {
                    "type": ["Alignment"],
                    "targetType": "ext:BlueprintDomain",
                    "targetCode": d.code,
                    "targetName": d.name,
                    **({"targetDescription": d.description} if d.description else {}),
                    "targetUrl": d.url or f"{self.id}#domain-{d.code}",
                }
                for d in self.domains
            ]
        if self.tags:
            doc["tag"] = list(self.tags)
        if self.required_score is not None:
            doc["resultDescription"] = [self._result_description()]
        return doc

    def _result_description(self) -> dict[str, Any]:
        exam = self.exam_title or self.name
        if self.score_kind == "scale":
            name, kind = "Scale score", "ScaledScore"
            description = (f"The exam {exam}, reported on a {_number(self.score_min)} to "
                           f"{_number(self.score_max)} scale; a scale score of at least "
                           f"{_number(self.required_score)} passes.")
            method = ("Scored automatically by the exam platform against the answer key and "
                      "judged against a cut score on the IRT ability scale adopted after "
                      "standard setting; the scale score is a linear transform of ability.")
        else:
            name, kind = "Percent correct", "Percent"
            description = (f"The exam {exam}, scored as the percent of its items answered "
                           f"right; at least {_number(self.required_score)} percent passes.")
            method = ("Scored automatically by the exam platform against the answer key; the "
                      "pass mark is a percent of the items.")
        return {
            "id": self.result_description_id,
            "type": ["ResultDescription", "AssessmentResultDescription"],
            "name": name,
            "resultType": kind,
            "valueMin": _number(self.score_min),
            "valueMax": _number(self.score_max),
            "requiredValue": _number(self.required_score),
            "assessmentType": "Exam",
            "description": description,
            "assessmentOutput": "Scored responses to timed exam items",
            "evaluationMethod": method,
            "hasGroupParticipation": False,
            "hasGroupEvaluation": False,
        }


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if float(value) != int(value) else str(int(value))


@dataclass
class EvidenceInfo:
    name: str
    narrative: str
    id: str | None = None
    description: str | None = None
    genre: str | None = None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": ["Evidence"], "name": self.name,
                               "narrative": self.narrative}
        for key in ("id", "description", "genre"):
            if getattr(self, key):
                doc[key] = getattr(self, key)
        return doc


def new_credential_id(base_url: str) -> tuple[str, str]:
    """A fresh public id: (uuid, ``{base}/badges/{uuid}``)."""
    key = str(uuid.uuid4())
    return key, f"{base_url.rstrip('/')}/badges/{key}"


def build_credential(
    *,
    credential_id: str,
    issuer: IssuerInfo,
    achievement: AchievementInfo,
    valid_from: str,
    identifier: dict[str, Any] | None = None,
    subject_did: str | None = None,
    score: float | None = None,
    evidence: list[EvidenceInfo] | None = None,
    valid_until: str | None = None,
    credential_status: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The unsigned OpenBadgeCredential."""
    subject: dict[str, Any] = {"type": ["AchievementSubject"]}
    if subject_did:
        subject["id"] = subject_did
    if identifier:
        subject["identifier"] = [identifier]
    subject["achievement"] = achievement.document()
    if score is not None and achievement.required_score is not None:
        subject["result"] = [{
            "type": ["Result"],
            "resultDescription": achievement.result_description_id,
            "value": _number(round(score, 1)),
            "status": "Completed",
        }]
    doc: dict[str, Any] = {
        "@context": CONTEXTS,
        "id": credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": achievement.name,
        "issuer": issuer.profile(),
        "validFrom": valid_from,
    }
    if valid_until:
        doc["validUntil"] = valid_until
    doc["credentialSubject"] = subject
    if evidence:
        doc["evidence"] = [e.document() for e in evidence]
    if credential_status:
        doc["credentialStatus"] = credential_status
    doc["credentialSchema"] = [{"id": OB_SCHEMA, "type": "1EdTechJsonSchemaValidator2019"}]
    return doc
