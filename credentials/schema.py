"""The ``credentialSchema`` check: validate a credential against the JSON Schemas it names,
for the schemas Microcred bundles. Nothing is fetched.

The only schema bundled is 1EdTech's own AchievementCredential schema, verbatim (see
``schemas/1edtech/README.md`` for its source and licence). Microcred writes no schema of its
own under 1EdTech's identifier: a report saying "matches 1EdTech's AchievementCredential
schema" means exactly that file accepted the credential.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from credentials.errors import CredentialError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_VALIDATOR_TYPE = "1EdTechJsonSchemaValidator2019"
#: The URL OB 3.0 publishes the AchievementCredential schema at (§ credentialSchema examples)
OB_ACHIEVEMENT_CREDENTIAL_SCHEMA = (
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"
)
#: The URL CLR 2.0 publishes the ClrCredential schema at (CLR 2.0 § credentialSchema examples)
CLR_CREDENTIAL_SCHEMA = (
    "https://purl.imsglobal.org/spec/clr/v2p0/schema/json/clr_v2p0_clrcredential_schema.json"
)


@dataclass(frozen=True)
class BundledSchema:
    file: str
    #: how a report names it
    title: str


BUNDLED: dict[str, BundledSchema] = {
    OB_ACHIEVEMENT_CREDENTIAL_SCHEMA: BundledSchema(
        "1edtech/achievementcredential.json", "1EdTech's AchievementCredential schema"),
    CLR_CREDENTIAL_SCHEMA: BundledSchema(
        "1edtech/clrcredential-draft4.json",
        "1EdTech's ClrCredential schema (CLR 2.0, as 1EdTech's validator bundles it)"),
}


class SchemaViolation(CredentialError):
    """The credential does not match a schema it declares."""


@cache
def validator(file: str) -> Validator:
    """A validator for a bundled schema, of the JSON Schema draft the file declares."""
    schema = json.loads((SCHEMA_DIR / file).read_text(encoding="utf-8"))
    cls = validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


#: Properties that OB 3.0 allows once (1EdTech's schema: an object) but VC Data Model 2.0
#: allows as a list, and that Microcred lists: ``credentialStatus`` carries a revocation and a
#: suspension entry so that every Bitstring Status List verifier sees a suspension (1EdTech
#: tracks allowing this for OB 3.1: openbadges-specification issue 623).
LISTED_BEYOND_OB = ("credentialStatus",)


def violations(credential: dict[str, Any], schema_id: str) -> list[str]:
    """Every violation of the bundled schema ``schema_id``, as ``path: message``."""
    errors = sorted(validator(BUNDLED[schema_id].file).iter_errors(credential),
                    key=lambda e: [str(p) for p in e.absolute_path])
    return [("/".join(str(p) for p in e.absolute_path) or "(root)") + ": " + e.message
            for e in errors]


def _as_ob_judges(credential: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """The credential in the form(s) 1EdTech's schema can judge: when a property of
    ``LISTED_BEYOND_OB`` is a list, one copy per entry with that entry in the list's place (so
    every entry, and everything else, is still checked against 1EdTech's schema)."""
    for prop in LISTED_BEYOND_OB:
        value = credential.get(prop)
        if isinstance(value, list) and value:
            return prop, [{**credential, prop: entry} for entry in value]
    return None, [credential]


def _vc11_dates(doc: dict[str, Any], *, embedded: bool = False) -> dict[str, Any]:
    """``doc`` with VC 1.1's names for its dates added (``issuanceDate``, ``expirationDate``);
    an embedded credential also without its ``credentialStatus`` (see :func:`_as_clr_judges`)."""
    out = dict(doc)
    if "validFrom" in doc:
        out["issuanceDate"] = doc["validFrom"]
    if "validUntil" in doc:
        out["expirationDate"] = doc["validUntil"]
    if embedded:
        out.pop("credentialStatus", None)
    return out


def _as_clr_judges(credential: dict[str, Any]) -> list[dict[str, Any]]:
    """The ClrCredential as the bundled CLR schema can judge it. That file is 1EdTech's CLR 2.0
    schema in the draft-04 form 1EdTech's own validator bundles, written when CLR 2.0 was on VC
    Data Model 1.1: it requires ``issuanceDate`` where VC 2.0 (which CLR 2.0 now uses, with the
    context-2.0.1 context) says ``validFrom``, and its ``CredentialStatus`` (``id`` and ``type``
    only) predates the Bitstring Status List entries badges carry. The judged copy carries both
    date names, on the CLR and on each embedded credential, and leaves out the embedded
    credentials' status entries: each embedded credential, status entries included, is checked
    in full against its own declared schema (1EdTech's AchievementCredential) by
    :func:`check_embedded`.
    """
    subject = credential.get("credentialSubject")
    judged = _vc11_dates(credential)
    if isinstance(subject, dict) and isinstance(subject.get("verifiableCredential"), list):
        judged["credentialSubject"] = {**subject, "verifiableCredential": [
            _vc11_dates(c, embedded=True) if isinstance(c, dict) else c
            for c in subject["verifiableCredential"]]}
    return [judged]


def check_embedded(credential: dict[str, Any]) -> int:
    """Check each credential a ClrCredential embeds against the schemas it declares; how many.
    Raises SchemaViolation naming the first one that fails."""
    subject = credential.get("credentialSubject")
    embedded = subject.get("verifiableCredential") if isinstance(subject, dict) else None
    for n, item in enumerate(embedded or []):
        if not isinstance(item, dict):
            raise SchemaViolation(f"credentialSubject/verifiableCredential/{n} is not an object")
        try:
            check(item)
        except SchemaViolation as exc:
            raise SchemaViolation(f"embedded credential {n + 1}: {exc}") from None
    return len(embedded or [])


def check(credential: dict[str, Any]) -> list[str]:
    """Validate against each declared, bundled schema; return the titles of those it matches.

    Raises SchemaViolation naming the first failing path, or when no declared schema is known.
    """
    declared = credential.get("credentialSchema")
    declared = declared if isinstance(declared, list) else [declared] if declared else []
    if not declared:
        raise SchemaViolation("the credential declares no credentialSchema")
    checked = []
    for item in declared:
        if not isinstance(item, dict):
            raise SchemaViolation("credentialSchema entries must be objects with id and type")
        bundled = BUNDLED.get(item.get("id", ""))
        if bundled is None or item.get("type") != SCHEMA_VALIDATOR_TYPE:
            continue
        if item["id"] == CLR_CREDENTIAL_SCHEMA:
            problems = next((p for p in (violations(f, item["id"])
                                         for f in _as_clr_judges(credential)) if p), [])
            if problems:
                raise SchemaViolation(f"does not match {bundled.title}: {problems[0]}")
            count = check_embedded(credential)
            checked.append(f"{bundled.title}, with VC 2.0's validFrom read as the schema's "
                           f"issuanceDate; and each of its {count} embedded credentials its own "
                           "schema")
            continue
        listed, forms = _as_ob_judges(credential)
        problems = next((p for p in (violations(f, item["id"]) for f in forms) if p), [])
        if problems:
            raise SchemaViolation(f"does not match {bundled.title}: {problems[0]}")
        checked.append(bundled.title + (
            f", with each of its {len(credential[listed])} {listed} entries checked in turn "
            f"(OB 3.0 allows one {listed}; VC Data Model 2.0 allows a list)" if listed else ""))
    if not checked:
        raise SchemaViolation("none of the declared schemas is one Microcred can check offline: "
                              + ", ".join(str(i.get("id")) for i in declared if isinstance(i, dict)))
    return checked
