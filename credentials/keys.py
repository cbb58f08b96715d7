"""Ed25519 issuer keys: generation, Multikey encoding, did:key and did:web documents, and
encryption of private keys at rest.

- did:key (W3C CCG did:key v0.7 §3.1): ``did:key:`` + multibase base58btc of the multicodec
  header ``0xed01`` + the 32-byte public key; the verification method is ``<did>#<same value>``.
- Multikey (Controlled Identifiers v1.0 §2.2.2): ``publicKeyMultibase`` holds that same value.
- did:web (W3C CCG did:web §3.2): ``did:web:host[%3Aport][:path...]`` resolves to
  ``https://host[:port]/.well-known/did.json`` or ``https://host[:port]/path.../did.json``.

Private keys are stored encrypted with AES-256-GCM under a key-encryption key (KEK) that comes
from ``MICROCRED_CREDENTIAL_KEY`` or, by default, from a random key generated once into the
instance folder, never from the repository.
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credentials import multibase
from credentials.errors import CredentialError, KeyResolutionError
from microcred.keyfile import read_or_create

DID_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
KEK_ENV = "MICROCRED_CREDENTIAL_KEY"
KEK_FILE = "credential_key"


# --- Ed25519 and Multikey -------------------------------------------------------------------

def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def raw_public_key(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def raw_private_key(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def public_key_multibase(key: Ed25519PrivateKey | Ed25519PublicKey | bytes) -> str:
    """The Multikey ``publicKeyMultibase`` of an Ed25519 key: ``z6Mk...``."""
    raw = key if isinstance(key, bytes) else raw_public_key(key)
    if len(raw) != 32:
        raise CredentialError(f"an Ed25519 public key has 32 bytes, got {len(raw)}")
    return multibase.encode(multibase.ED25519_PUB_HEADER + raw, "z")


def public_key_from_multibase(value: str) -> Ed25519PublicKey:
    try:
        data = multibase.decode(value)
    except CredentialError as exc:
        raise KeyResolutionError(f"publicKeyMultibase {value!r}: {exc}") from None
    if not data.startswith(multibase.ED25519_PUB_HEADER) or len(data) != 34:
        raise KeyResolutionError(
            f"publicKeyMultibase {value!r} is not an Ed25519 Multikey (header 0xed01, 32 bytes)"
        )
    return Ed25519PublicKey.from_public_bytes(data[2:])


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


# --- did:key --------------------------------------------------------------------------------

def did_key(key: Ed25519PrivateKey | Ed25519PublicKey | bytes) -> str:
    return "did:key:" + public_key_multibase(key)


def did_key_verification_method(key: Ed25519PrivateKey | Ed25519PublicKey | bytes) -> str:
    mb = public_key_multibase(key)
    return f"did:key:{mb}#{mb}"


def multikey_method(vm_id: str, controller: str, public_multibase: str) -> dict:
    return {
        "id": vm_id,
        "type": "Multikey",
        "controller": controller,
        "publicKeyMultibase": public_multibase,
    }


def did_key_document(did: str) -> dict:
    """Resolve a did:key (Ed25519 only) to its DID document, offline, as did:key §3.1.1 says."""
    if not did.startswith("did:key:z6Mk"):
        raise KeyResolutionError(f"{did!r} is not an Ed25519 did:key (expected did:key:z6Mk...)")
    mb = did[len("did:key:"):]
    public_key_from_multibase(mb)  # validates
    vm_id = f"{did}#{mb}"
    return controller_document(did, [multikey_method(vm_id, did, mb)], assertion=[vm_id])


def controller_document(did: str, methods: list[dict], *, assertion: list[str]) -> dict:
    """A DID document listing ``methods``; those in ``assertion`` may sign credentials."""
    return {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": methods,
        "authentication": list(assertion),
        "assertionMethod": list(assertion),
    }


# --- did:web --------------------------------------------------------------------------------

def did_web_for(base_url: str, path: list[str] | None = None) -> str:
    """``did:web`` for the host of ``base_url`` (port percent-encoded), with optional path."""
    parts = urlsplit(base_url)
    if not parts.hostname:
        raise CredentialError(f"public base URL {base_url!r} has no host")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    segments = [quote(host, safe="")] + [quote(p, safe="") for p in (path or [])]
    return "did:web:" + ":".join(segments)


def did_web_url(did: str) -> str:
    """The HTTPS URL a did:web resolves to (did:web §3.2.2 Read)."""
    if not did.startswith("did:web:"):
        raise KeyResolutionError(f"{did!r} is not a did:web")
    segments = [unquote(s) for s in did[len("did:web:"):].split(":")]
    host, path = segments[0], segments[1:]
    return f"https://{host}/" + ("/".join(path) + "/did.json" if path else ".well-known/did.json")


# --- keys at rest ---------------------------------------------------------------------------

def key_encryption_key(instance_dir: Path | None) -> bytes:
    """The 32-byte KEK: SHA-256 of ``MICROCRED_CREDENTIAL_KEY``, else of a random secret that
    is created once (mode 0600) in the instance folder."""
    secret = os.environ.get(KEK_ENV)
    if not secret:
        if instance_dir is None:
            raise CredentialError(f"set {KEK_ENV} or give an instance folder for the key file")
        secret = read_or_create(Path(instance_dir) / KEK_FILE, lambda: secrets.token_urlsafe(48))
    return hashlib.sha256(b"microcred credential KEK\0" + secret.encode()).digest()


@dataclass(frozen=True)
class SealedKey:
    """An Ed25519 private key sealed with AES-256-GCM: ``nonce || ciphertext+tag``, base64."""

    blob: str

    @classmethod
    def seal(cls, key: Ed25519PrivateKey, kek: bytes, *, aad: str) -> SealedKey:
        nonce = secrets.token_bytes(12)
        ct = AESGCM(kek).encrypt(nonce, raw_private_key(key), aad.encode())
        return cls(base64.b64encode(nonce + ct).decode("ascii"))

    def open(self, kek: bytes, *, aad: str) -> Ed25519PrivateKey:
        data = base64.b64decode(self.blob)
        try:
            raw = AESGCM(kek).decrypt(data[:12], data[12:], aad.encode())
        except InvalidTag:
            raise CredentialError(
                f"cannot decrypt the issuer key: wrong {KEK_ENV} or instance key file"
            ) from None
        return Ed25519PrivateKey.from_private_bytes(raw)
