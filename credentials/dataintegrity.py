"""Data Integrity proofs with the ``eddsa-rdfc-2022`` cryptosuite.

Implements W3C "Data Integrity EdDSA Cryptosuites v1.0" §3.2 (eddsa-rdfc-2022):

- 3.2.1 Create Proof: proof options without ``proofValue``, their ``@context`` set to the
  document's; ``proofValue`` = multibase base58btc of the Ed25519 signature over hashData.
- 3.2.3 Transformation: RDF Dataset Canonicalization (RDFC-1.0, which pyld calls URDNA2015) of
  the unsecured document (without ``proof``) to N-Quads.
- 3.2.4 Hashing: ``hashData = SHA-256(canonical proof config) || SHA-256(canonical document)``.
- 3.2.5 Proof Configuration: ``type`` DataIntegrityProof, ``cryptosuite`` eddsa-rdfc-2022,
  ``created`` an XMLSchema dateTime, canonicalized with the same algorithm.
- 3.2.2 Verify Proof: recompute hashData and check the signature with the verification method's
  public key.

Canonicalization is "safe": a property or type that the contexts do not define would be
silently dropped by JSON-LD expansion (and so left unsigned); here it is an error instead, as
Digital Bazaar's implementations do in safe mode.
"""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyld import jsonld

from credentials import keys, multibase
from credentials.documents import document_loader
from credentials.errors import CredentialError, ProofError

CRYPTOSUITE = "eddsa-rdfc-2022"
PROOF_TYPE = "DataIntegrityProof"

#: resolve(verification_method_id, proof_purpose) -> Ed25519 public key, or raise
KeyResolver = Callable[[str, str], Ed25519PublicKey]


class UndefinedTerm(CredentialError):
    """A property or type in the document is not defined by its JSON-LD contexts."""


def _dropped(expanded: Any) -> None:
    raise UndefinedTerm(
        f"the term {expanded!r} is not defined by the document's JSON-LD contexts, so it would "
        "not be signed; define it in a context or remove it"
    )


def _check_types(node: Any) -> None:
    if isinstance(node, list):
        for n in node:
            _check_types(n)
    elif isinstance(node, dict):
        for t in node.get("@type", []) if isinstance(node.get("@type"), list) else []:
            if ":" not in t:
                raise UndefinedTerm(f"the type {t!r} is not defined by the document's contexts")
        for key, value in node.items():
            if key != "@type":
                _check_types(value)


def canonicalize(document: dict[str, Any]) -> str:
    """RDFC-1.0 canonical N-Quads of ``document`` with only bundled contexts (safe mode)."""
    opts = {"documentLoader": document_loader, "base": None}
    try:
        processor = jsonld.JsonLdProcessor(on_property_dropped=_dropped)
        expanded = processor.expand(copy.deepcopy(document), opts)
        _check_types(expanded)
        return jsonld.normalize(
            expanded,
            {"algorithm": "URDNA2015", "format": "application/n-quads",
             "documentLoader": document_loader},
        )
    except jsonld.JsonLdError as exc:
        cause = _root_cause(exc)
        if isinstance(cause, CredentialError):
            raise cause from None
        raise CredentialError(f"JSON-LD processing failed: {cause}") from None


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    while True:
        nxt = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            return seen
        if isinstance(nxt, CredentialError):
            return nxt
        seen = nxt


def _hash_data(document: dict[str, Any], proof_config: dict[str, Any]) -> bytes:
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config_hash = hashlib.sha256(canonicalize(proof_config).encode("utf-8")).digest()
    doc_hash = hashlib.sha256(canonicalize(unsecured).encode("utf-8")).digest()
    return config_hash + doc_hash


def xsd_datetime(moment: dt.datetime) -> str:
    """``2025-01-01T12:00:00Z``: an XMLSchema dateTime in UTC without fractional seconds."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass a UTC time")
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def proof_config(
    document: dict[str, Any], *, verification_method: str, created: dt.datetime,
    proof_purpose: str = "assertionMethod",
) -> dict[str, Any]:
    return {
        "@context": document["@context"],
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": xsd_datetime(created),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }


def add_proof(
    document: dict[str, Any], private_key: Ed25519PrivateKey, *, verification_method: str,
    created: dt.datetime, proof_purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """Return a copy of ``document`` secured with an eddsa-rdfc-2022 DataIntegrityProof.

    ``proof`` is a list of one proof: VC Data Model 2.0 allows a single object or a set, and
    1EdTech's AchievementCredential JSON Schema requires the set (an array)."""
    if "proof" in document:
        raise ProofError("the document already has a proof; sign the unsecured document")
    config = proof_config(document, verification_method=verification_method, created=created,
                          proof_purpose=proof_purpose)
    signature = private_key.sign(_hash_data(document, config))
    proof = {k: v for k, v in config.items() if k != "@context"}
    proof["proofValue"] = multibase.encode(signature, "z")
    secured = copy.deepcopy(document)
    secured["proof"] = [proof]
    return secured


def verify_proof(document: dict[str, Any], resolve_key: KeyResolver) -> dict[str, Any]:
    """Verify the document's eddsa-rdfc-2022 proof; return the proof, or raise ProofError."""
    proof = document.get("proof")
    if isinstance(proof, list):
        if len(proof) != 1:
            raise ProofError(f"expected one proof, found {len(proof)}")
        proof = proof[0]
    if not isinstance(proof, dict):
        raise ProofError("the credential has no Data Integrity proof")
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(
            f"unsupported proof {proof.get('type')!r}/{proof.get('cryptosuite')!r}; "
            f"expected {PROOF_TYPE}/{CRYPTOSUITE}"
        )
    for field in ("verificationMethod", "proofPurpose", "proofValue"):
        if not isinstance(proof.get(field), str):
            raise ProofError(f"the proof has no {field}")
    try:
        signature = multibase.decode(proof["proofValue"])
    except CredentialError as exc:
        raise ProofError(f"proofValue: {exc}") from None
    if not proof["proofValue"].startswith("z") or len(signature) != 64:
        raise ProofError("proofValue is not a base58btc multibase Ed25519 signature")
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    config["@context"] = document.get("@context")
    public_key = resolve_key(proof["verificationMethod"], proof["proofPurpose"])
    if not keys.verify_signature(public_key, signature, _hash_data(document, config)):
        raise ProofError(
            "the signature does not match: the credential was changed after signing, "
            "or signed with another key"
        )
    return proof
