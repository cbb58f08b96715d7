"""Step-by-step verification of an Open Badges 3.0 credential.

Input: a credential as JSON text or a dict, a compact VC-JWT, or a baked PNG/SVG. The steps
follow VC Data Model 2.0 §7.1 (verification) and OB 3.0 §9 (verification):

1. ``format``: it parses, and it is a VerifiableCredential / OpenBadgeCredential with the
   VC 2.0 context first.
2. ``issuer key``: the proof's verification method resolves (did:key from the identifier;
   did:web and status lists through the resolver: this module's own never uses the network,
   ``credentials.resolution`` has the database's and the guarded network one), is controlled
   by the issuer, and is listed for ``assertionMethod``.
3. ``proof``: the eddsa-rdfc-2022 Data Integrity proof (or the JWT's EdDSA signature) verifies.
4. ``status``: for each ``credentialStatus`` entry (revocation, suspension), its Bitstring
   Status List credential is signed by the same issuer and the credential's bit is not set.
5. ``dates``: now is within ``validFrom`` .. ``validUntil``.
6. ``schema``: it matches the JSON Schema it declares (1EdTech's file, bundled).

Every step is reported; the overall verdict is "verified" only when every step passed. A valid
signature on a revoked, suspended or expired credential is **not** verified. Nothing after a
failed (or unchecked) proof is checked: an unproven document's dates and status entry are the
forger's, so those steps say "not checked" and the verdict is "invalid", never "revoked".
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from credentials import baking, dataintegrity, keys, schema, statuslist
from credentials import jwt as vcjwt
from credentials.errors import (
    CredentialError,
    KeyResolutionError,
    MalformedInput,
    StatusListError,
)
from microcred.db import utcnow
from microcred.inputs import InvalidInput, parse_json

STEPS = ("format", "issuer key", "proof", "status", "dates", "schema")
MAX_INPUT_BYTES = 8 * 1024 * 1024


@dataclass
class Step:
    name: str
    ok: bool | None  # None: not run because an earlier step made it impossible
    message: str


@dataclass
class Report:
    steps: list[Step] = field(default_factory=list)
    credential: dict[str, Any] | None = None
    proof_format: str | None = None  # "data-integrity" | "jwt"
    status: str = "unknown"  # valid | revoked | suspended | expired | not yet valid | invalid

    @property
    def verified(self) -> bool:
        return len(self.steps) == len(STEPS) and all(s.ok for s in self.steps)

    @property
    def failed_step(self) -> Step | None:
        return next((s for s in self.steps if s.ok is False), None)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        failed = self.failed_step
        return {
            "verified": self.verified,
            "status": self.status,
            "failed_step": failed.name if failed else None,
            "proof_format": self.proof_format,
            "steps": [asdict(s) for s in self.steps],
            "credential_id": (self.credential or {}).get("id"),
        }


class Resolver:
    """Resolves verification methods and status lists without the network.

    did:key is resolved from the identifier itself. did:web documents and status list
    credentials must be given (``did_documents``, ``status_lists``) or supplied by a subclass
    (Microcred's database resolver). ``suspension_lists`` maps a revocation list URL to the
    issuer's matching suspension list credential, for credentials issued with a revocation
    entry only (before they carried a suspension entry).
    """

    def __init__(
        self, did_documents: dict[str, dict] | None = None,
        status_lists: dict[str, dict] | None = None,
        suspension_lists: dict[str, dict] | None = None,
    ) -> None:
        self.did_documents = dict(did_documents or {})
        self.status_lists = dict(status_lists or {})
        self.suspension_lists = dict(suspension_lists or {})

    def did_document(self, did: str) -> dict[str, Any]:
        if did.startswith("did:key:"):
            return keys.did_key_document(did)
        if did in self.did_documents:
            return self.did_documents[did]
        if did.startswith("did:web:"):
            raise KeyResolutionError(
                f"cannot resolve {did} offline: it is not one of this Microcred's issuers "
                f"(its document would be at {keys.did_web_url(did)})")
        raise KeyResolutionError(f"unsupported DID method in {did!r} (did:key and did:web are)")

    def status_list(self, url: str) -> dict[str, Any]:
        if url in self.status_lists:
            return self.status_lists[url]
        raise StatusListError(f"the status list {url} is not one this Microcred publishes, and "
                              "status lists are not fetched from the network")

    def suspension_list(self, revocation_list_url: str) -> dict[str, Any] | None:
        return self.suspension_lists.get(revocation_list_url)

    # -- derived ---------------------------------------------------------------------------

    def verification_method(self, vm_id: str, purpose: str) -> tuple[Ed25519PublicKey, str]:
        """The public key and controller of ``vm_id``, if its controller authorizes it for
        ``purpose`` (Controlled Identifiers §3.3 "Retrieve Verification Method")."""
        if "#" not in vm_id:
            raise KeyResolutionError(f"verification method {vm_id!r} has no fragment")
        did = vm_id.split("#", 1)[0]
        doc = self.did_document(did)
        method = next(
            (m for m in doc.get("verificationMethod", [])
             if isinstance(m, dict) and _abs(m.get("id", ""), did) == vm_id),
            None,
        )
        if method is None:
            raise KeyResolutionError(f"{did}'s DID document has no verification method {vm_id}")
        if method.get("controller") != did:
            raise KeyResolutionError(f"{vm_id} is not controlled by {did}")
        allowed = [_abs(m if isinstance(m, str) else m.get("id", ""), did)
                   for m in doc.get(purpose, [])]
        if vm_id not in allowed:
            raise KeyResolutionError(f"{vm_id} is not authorized for {purpose} by {did} "
                                     "(a retired or revoked key)")
        if method.get("type") != "Multikey" or "publicKeyMultibase" not in method:
            raise KeyResolutionError(f"{vm_id} is not an Ed25519 Multikey")
        return keys.public_key_from_multibase(method["publicKeyMultibase"]), did


def _abs(ref: str, did: str) -> str:
    return did + ref if ref.startswith("#") else ref


# --- input ------------------------------------------------------------------------------------

@dataclass
class Parsed:
    credential: dict[str, Any]
    jwt: str | None = None


def parse_input(data: bytes | str | dict) -> Parsed:
    """A credential dict, JSON text, a compact JWT, or a baked PNG/SVG."""
    if isinstance(data, dict):
        return Parsed(data)
    from_file = isinstance(data, bytes)  # an upload or a request body; pasted text is a str
    if isinstance(data, bytes):
        if len(data) > MAX_INPUT_BYTES:
            raise MalformedInput("the input is larger than 8 MB")
        if baking.image_kind(data) is not None:
            return parse_input(baking.unbake(data))
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInput("This is not a credential: the file is not a baked badge image "
                                 "(PNG or SVG), and not text either") from None
    text = data.strip()
    if not text:
        raise MalformedInput("the input is empty")
    if text.startswith("<"):
        return parse_input(text.encode("utf-8"))
    if vcjwt.looks_like_jwt(text):
        _, payload, _, _ = vcjwt.split(text)
        return Parsed(vcjwt.credential_from_payload(payload), jwt=text)
    try:
        doc = parse_json(text, where="the credential")
    except InvalidInput as exc:
        raise MalformedInput(_not_json(text, exc, from_file)) from None
    if not isinstance(doc, dict):
        raise MalformedInput("a credential is a JSON object, not a "
                             f"{type(doc).__name__}")
    return Parsed(doc)


def _not_json(text: str, exc: InvalidInput, from_file: bool) -> str:
    """Why text that should be a credential is not one, in people's words (the parser's own
    message, "Expecting value at line 1 column 1", means nothing to them)."""
    if "max_depth" in exc.extra:
        return (f"This is not a credential: its JSON nests deeper than {exc.extra['max_depth']} "
                "levels, and no credential does")
    if text[:1] in "{[" and "line" in exc.extra:
        return (f"This credential's JSON is broken at line {exc.extra['line']}, character "
                f"{exc.extra['column']}: look for a missing comma, quote or bracket there, or "
                "copy it again in full")
    if from_file:
        return ("This is not a credential: the file is not a baked badge image (PNG or SVG), "
                "not credential JSON and not a JWT")
    return "This is not a credential: the text is not JSON, and not a JWT either"


# --- steps ------------------------------------------------------------------------------------

def _format_problem(cred: dict[str, Any]) -> str | None:
    ctx = cred.get("@context")
    if not isinstance(ctx, list) or not ctx or ctx[0] != "https://www.w3.org/ns/credentials/v2":
        return "@context must be a list starting with https://www.w3.org/ns/credentials/v2"
    types = cred.get("type")
    types = types if isinstance(types, list) else [types]
    if "VerifiableCredential" not in types:
        return "type does not include VerifiableCredential: this is not a credential"
    if not {"OpenBadgeCredential", "AchievementCredential", "ClrCredential"} & set(types):
        return ("type does not include OpenBadgeCredential (or ClrCredential): this is not an "
                "Open Badge or a Comprehensive Learner Record")
    if not vcjwt.issuer_id(cred):
        return "the credential names no issuer"
    if not isinstance(cred.get("credentialSubject"), dict):
        return "credentialSubject must be an object"
    return None


def verify(
    data: bytes | str | dict, resolver: Resolver | None = None, *,
    now: dt.datetime | None = None,
) -> Report:
    """Verify a credential, a JWT or a baked image; never raises for bad input."""
    resolver = resolver or Resolver()
    now = now or utcnow()
    report = Report()
    try:
        parsed = parse_input(data)
    except CredentialError as exc:
        report.steps.append(Step("format", False, str(exc)))
        report.steps += [Step(n, None, "not checked: the input could not be read")
                         for n in STEPS[1:]]
        report.status = "invalid"
        return report
    cred = parsed.credential
    report.credential = cred
    report.proof_format = "jwt" if parsed.jwt else "data-integrity"
    problem = _format_problem(cred)
    kind = "a ClrCredential (CLR 2.0" if "ClrCredential" in (
        cred.get("type") if isinstance(cred.get("type"), list) else [cred.get("type")]) \
        else "an OpenBadgeCredential ("
    report.steps.append(Step("format", problem is None, problem or (
        f"{kind}, VC Data Model 2.0), secured as "
        + ("a VC-JWT" if parsed.jwt else "a Data Integrity proof"))))
    if problem:
        report.steps += [Step(n, None, "not checked: not an Open Badges credential")
                         for n in STEPS[1:]]
        report.status = "invalid"
        return report

    issuer = vcjwt.issuer_id(cred)
    key_ok = _step_issuer_key(report, cred, parsed, resolver, issuer)
    if not _step_proof(report, cred, parsed, resolver, key_ok):
        # Nothing an unproven document says can be trusted, its dates and status entry
        # included: a tampered copy of a revoked credential is "invalid", not "revoked".
        report.steps += [Step(n, None, "not checked: the proof did not verify")
                         for n in STEPS[STEPS.index("proof") + 1:]]
        report.status = "invalid"
        return report
    _step_status(report, cred, resolver, issuer)
    _step_dates(report, cred, now)
    _step_schema(report, cred)
    if report.status == "unknown":
        report.status = "valid" if report.verified else "invalid"
    return report


def _vm_of(cred: dict[str, Any], parsed: Parsed) -> str | None:
    if parsed.jwt:
        header, _, _, _ = vcjwt.split(parsed.jwt)
        return header.get("kid")
    proof = cred.get("proof")
    proof = proof[0] if isinstance(proof, list) and proof else proof
    return proof.get("verificationMethod") if isinstance(proof, dict) else None


def _step_issuer_key(report: Report, cred: dict, parsed: Parsed, resolver: Resolver,
                     issuer: str) -> bool:
    vm = _vm_of(cred, parsed)
    if not isinstance(vm, str):
        report.steps.append(Step("issuer key", False, "the proof names no verification method"))
        return False
    if vm.split("#", 1)[0] != issuer:
        report.steps.append(Step("issuer key", False,
                                 f"the signing key {vm} does not belong to the issuer {issuer}"))
        return False
    try:
        resolver.verification_method(vm, "assertionMethod")
    except CredentialError as exc:
        report.steps.append(Step("issuer key", False, str(exc)))
        return False
    report.steps.append(Step("issuer key", True, f"{vm} is an assertion key of {issuer}"))
    return True


def _step_proof(report: Report, cred: dict, parsed: Parsed, resolver: Resolver,
                key_ok: bool) -> bool:
    if not key_ok:
        report.steps.append(Step("proof", None, "not checked: the issuer's key is unknown"))
        return False

    def resolve(vm_id: str, purpose: str) -> Ed25519PublicKey:
        return resolver.verification_method(vm_id, purpose)[0]

    try:
        if parsed.jwt:
            vcjwt.verify(parsed.jwt, resolve)
            message = "the VC-JWT's EdDSA signature is valid"
        else:
            proof = dataintegrity.verify_proof(cred, resolve)
            if proof.get("proofPurpose") != "assertionMethod":
                raise CredentialError("the proof purpose is not assertionMethod")
            message = "the eddsa-rdfc-2022 Data Integrity proof is valid"
    except CredentialError as exc:
        report.steps.append(Step("proof", False, str(exc)))
        return False
    report.steps.append(Step("proof", True, message))
    return True


def _signed_list(resolver: Resolver, doc: dict[str, Any], issuer: str) -> None:
    if vcjwt.issuer_id(doc) != issuer:
        raise StatusListError("the status list is not issued by the credential's issuer")
    dataintegrity.verify_proof(doc, lambda vm, p: resolver.verification_method(vm, p)[0])


def _status_entries(cred: dict) -> list[dict[str, Any]]:
    """The credential's ``credentialStatus`` entries (VC Data Model 2.0 §4.10: one object or a
    list of them)."""
    value = cred.get("credentialStatus")
    entries = value if isinstance(value, list) else [value]
    if not entries or not all(isinstance(e, dict) for e in entries):
        raise StatusListError("credentialStatus must be a BitstringStatusListEntry or a list of "
                              "them")
    return entries


def _checked_bit(resolver: Resolver, entry: dict[str, Any], issuer: str,
                 doc: dict[str, Any] | None = None) -> bool:
    """The entry's bit, read from its signed status list (fetched unless given)."""
    url = entry.get("statusListCredential")
    if not isinstance(url, str):
        raise StatusListError("credentialStatus has no statusListCredential URL")
    doc = resolver.status_list(url) if doc is None else doc
    _signed_list(resolver, doc, issuer)
    return statuslist.status_bit(doc, entry)


def _step_status(report: Report, cred: dict, resolver: Resolver, issuer: str) -> None:
    if cred.get("credentialStatus") is None:
        report.steps.append(Step("status", True, "the credential has no status entry "
                                                 "(it cannot be revoked)"))
        return
    try:
        entries = _status_entries(cred)
        unknown = [e.get("statusPurpose") for e in entries
                   if e.get("statusPurpose") not in statuslist.PURPOSES]
        if unknown:
            raise StatusListError(f"unsupported status purpose {unknown[0]!r} (revocation and "
                                  "suspension are)")
        found: dict[str, bool] = {}
        for e in entries:  # every entry is checked; any set bit of a purpose counts
            bit = _checked_bit(resolver, e, issuer)
            found[e["statusPurpose"]] = found.get(e["statusPurpose"], False) or bit
        revocation = next((e for e in entries if e.get("statusPurpose") == "revocation"), None)
        if "suspension" not in found and revocation is not None:
            # credentials issued before they carried a suspension entry: the issuer's
            # suspension list at the same index, if the resolver knows it
            suspension = resolver.suspension_list(revocation["statusListCredential"])
            if suspension is not None:
                found["suspension"] = _checked_bit(
                    resolver, dict(revocation, statusPurpose="suspension",
                                   statusListCredential=suspension.get("id")),
                    issuer, suspension)
    except CredentialError as exc:
        report.steps.append(Step("status", False, f"status could not be checked: {exc}"))
        return
    for purpose, label in (("revocation", "revoked"), ("suspension", "suspended")):
        if found.get(purpose):
            report.status = label
            reason = getattr(resolver, "status_reason", lambda *_: None)(cred.get("id"))
            report.steps.append(Step("status", False, f"the credential is {label}"
                                     + (f": {reason}" if reason else "")))
            return
    checked = " or ".join(
        label for purpose, label in (("revocation", "revoked"), ("suspension", "suspended"))
        if purpose in found)
    report.steps.append(Step("status", True, f"not {checked}"))


def _step_dates(report: Report, cred: dict, now: dt.datetime) -> None:
    try:
        start = vcjwt.parse_datetime(cred["validFrom"]) if cred.get("validFrom") else None
        end = vcjwt.parse_datetime(cred["validUntil"]) if cred.get("validUntil") else None
    except CredentialError as exc:
        report.steps.append(Step("dates", False, str(exc)))
        return
    if start is None:
        report.steps.append(Step("dates", False, "the credential has no validFrom"))
        return
    if now < start:
        report.steps.append(Step("dates", False, f"not valid before {cred['validFrom']}"))
        if report.status == "unknown":
            report.status = "not yet valid"
        return
    if end is not None and now >= end:
        report.steps.append(Step("dates", False, f"expired on {cred['validUntil']}"))
        if report.status == "unknown":
            report.status = "expired"
        return
    report.steps.append(Step("dates", True, f"valid from {cred['validFrom']}" + (
        f" until {cred['validUntil']}" if end else ", no expiry")))


def _step_schema(report: Report, cred: dict) -> None:
    try:
        checked = schema.check(cred)
    except CredentialError as exc:
        report.steps.append(Step("schema", False, str(exc)))
        return
    report.steps.append(Step("schema", True, "matches " + " and ".join(checked)))
