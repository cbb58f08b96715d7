"""The same credential as a VC-JWT signed with EdDSA (Ed25519).

Follows W3C "Securing Verifiable Credentials using JOSE and COSE" (VC-JOSE-COSE) §3.1.1: the
JWS payload is the unsecured credential itself (VC Data Model 2.0 JSON-LD, no ``vc`` wrapper),
the protected header carries ``alg: EdDSA`` (RFC 8037 §3.1), ``typ: vc+jwt``, ``cty: vc`` and
``kid`` (the issuer's verification method). JWT registered claims (RFC 7519 §4.1) ``iss``,
``jti``, ``sub``, ``iat``, ``nbf``, ``exp`` are added so that JWT-only libraries can check
issuer and dates; they repeat ``issuer.id``, ``id``, ``credentialSubject.id``, ``validFrom``
and ``validUntil`` (§3.1.3 says they must agree with them, and :func:`decode` checks that).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from credentials import keys
from credentials.errors import MalformedInput, ProofError
from credentials.multibase import b64url_decode, b64url_encode
from microcred.inputs import InvalidInput, parse_json, parse_timestamp

JWT_CLAIMS = ("iss", "jti", "sub", "iat", "nbf", "exp")


def _epoch(value: str) -> int:
    return int(parse_datetime(value).timestamp())


def parse_datetime(value: Any) -> dt.datetime:
    """Parse an XMLSchema dateTime with a zone (``Z`` or an offset), as UTC; anything else
    (another type, no zone, a year out of range) is MalformedInput."""
    try:
        moment = parse_timestamp(value, "the date-time")
    except InvalidInput as exc:
        raise MalformedInput(f"{exc.message}: {str(value)[:40]!r}") from None
    if moment is None:
        raise MalformedInput("not a date-time: None")
    return moment


def issuer_id(credential: dict[str, Any]) -> str | None:
    issuer = credential.get("issuer")
    return issuer.get("id") if isinstance(issuer, dict) else issuer


def encode(
    credential: dict[str, Any], private_key: Ed25519PrivateKey, *, kid: str,
    issued_at: dt.datetime | None = None,
) -> str:
    """Sign ``credential`` (without a Data Integrity proof) as a compact JWS."""
    payload = {k: v for k, v in credential.items() if k != "proof"}
    claims: dict[str, Any] = {"iss": issuer_id(payload), "jti": payload.get("id")}
    subject = payload.get("credentialSubject")
    if isinstance(subject, dict) and subject.get("id"):
        claims["sub"] = subject["id"]
    if issued_at is not None:
        claims["iat"] = int(issued_at.timestamp())
    if payload.get("validFrom"):
        claims["nbf"] = _epoch(payload["validFrom"])
    if payload.get("validUntil"):
        claims["exp"] = _epoch(payload["validUntil"])
    payload.update({k: v for k, v in claims.items() if v is not None})
    header = {"alg": "EdDSA", "typ": "vc+jwt", "cty": "vc", "kid": kid}
    signing_input = (
        b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url_encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    )
    signature = private_key.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(signature)


def looks_like_jwt(text: str) -> bool:
    parts = text.strip().split(".")
    return len(parts) == 3 and all(parts[:2]) and text.strip().startswith("eyJ")


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, payload, signature and signing input of a compact JWS (not yet verified)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise MalformedInput("a JWT has three dot-separated parts")
    try:
        header = parse_json(b64url_decode(parts[0]), where="the JWT header")
        payload = parse_json(b64url_decode(parts[1]), where="the JWT payload")
    except InvalidInput as exc:
        raise MalformedInput(exc.message) from None
    except ValueError as exc:
        raise MalformedInput(f"the JWT header or payload is not base64url JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise MalformedInput("the JWT header and payload must be JSON objects")
    return header, payload, b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii")


def credential_from_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The credential inside a VC-JWT payload (a VC 1.1 ``vc`` claim is also accepted)."""
    if "vc" in payload and isinstance(payload["vc"], dict):
        return payload["vc"]
    return {k: v for k, v in payload.items() if k not in JWT_CLAIMS}


def verify(
    token: str, resolve_key: Callable[[str, str], Ed25519PublicKey]
) -> dict[str, Any]:
    """Check the EdDSA signature and the claims' agreement; return the credential."""
    header, payload, signature, signing_input = split(token)
    if header.get("alg") != "EdDSA":
        raise ProofError(f"unsupported JWT alg {header.get('alg')!r}; expected EdDSA")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise ProofError("the JWT header has no kid naming the issuer's key")
    credential = credential_from_payload(payload)
    iss = payload.get("iss")
    if iss is not None and iss != issuer_id(credential):
        raise ProofError(f"JWT iss {iss!r} does not match the credential issuer")
    if not kid.split("#")[0] == (iss or issuer_id(credential)):
        raise ProofError(f"the key {kid!r} does not belong to the issuer {issuer_id(credential)!r}")
    public_key = resolve_key(kid, "assertionMethod")
    if len(signature) != 64 or not keys.verify_signature(public_key, signature, signing_input):
        raise ProofError("the JWT signature does not match: the token was changed or another "
                         "key signed it")
    return credential
