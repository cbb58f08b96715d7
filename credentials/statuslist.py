"""Bitstring Status List v1.0 (W3C): the bitstring, its encoding, the entry a credential
carries and the status list credential Microcred publishes.

- §2.1 BitstringStatusListEntry: ``type``, ``statusPurpose``, ``statusListIndex`` (a string of
  a non-negative integer), ``statusListCredential`` (URL of the list credential).
- §2.2 BitstringStatusListCredential: ``credentialSubject`` of type ``BitstringStatusList``
  with ``statusPurpose`` and ``encodedList``.
- §3.1 Generation: the uncompressed bitstring is at least 16 KB (131,072 entries); it is
  GZIP-compressed and multibase-encoded as base64url without padding (prefix ``u``).
- §3.2 Expansion, and bit order: index 0 is the left-most bit of the first byte.
- §3.3 Validation: the list's ``statusPurpose`` must match the entry's, else an error.
"""
from __future__ import annotations

import gzip
from typing import Any

from credentials import multibase
from credentials.documents import VC_V2
from credentials.errors import CredentialError, StatusListError

MIN_BITS = 131_072
PURPOSES = ("revocation", "suspension")


class Bitstring:
    """A mutable bitstring of ``size`` bits (at least 131,072), all zero at first."""

    def __init__(self, size: int = MIN_BITS, data: bytes | None = None) -> None:
        if size < MIN_BITS:
            raise StatusListError(f"a status list has at least {MIN_BITS} entries, not {size}")
        if size % 8:
            raise StatusListError("the status list size must be a multiple of 8")
        self.size = size
        self.bits = bytearray(data if data is not None else bytes(size // 8))
        if len(self.bits) * 8 != size:
            raise StatusListError("bitstring length does not match its size")

    def _check(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise StatusListError(f"status list index {index} is outside 0..{self.size - 1}")

    def get(self, index: int) -> bool:
        self._check(index)
        return bool(self.bits[index // 8] & (0x80 >> (index % 8)))

    def set(self, index: int, value: bool = True) -> None:
        self._check(index)
        mask = 0x80 >> (index % 8)
        if value:
            self.bits[index // 8] |= mask
        else:
            self.bits[index // 8] &= ~mask & 0xFF

    def encode(self) -> str:
        """``encodedList``: multibase base64url of the GZIP-compressed bitstring (§3.1)."""
        return multibase.encode(gzip.compress(bytes(self.bits), mtime=0), "u")

    @classmethod
    def decode(cls, encoded: str) -> Bitstring:
        """Expand an ``encodedList`` (§3.2); errors name what was wrong."""
        if not isinstance(encoded, str) or not encoded.startswith("u"):
            raise StatusListError("encodedList must be a multibase base64url string ('u' prefix)")
        try:
            raw = gzip.decompress(multibase.decode(encoded))
        except (OSError, EOFError, CredentialError) as exc:
            raise StatusListError(f"encodedList does not decompress: {exc}") from None
        if len(raw) * 8 < MIN_BITS:
            raise StatusListError(
                f"the status list has {len(raw) * 8} entries, fewer than the {MIN_BITS} the "
                "specification requires for group privacy")
        return cls(len(raw) * 8, raw)


def entry(list_url: str, index: int, purpose: str) -> dict[str, Any]:
    """The ``credentialStatus`` a credential carries (§2.1)."""
    if purpose not in PURPOSES:
        raise ValueError(f"status purpose must be one of {PURPOSES}")
    return {
        "id": f"{list_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


def list_credential(
    *, list_url: str, issuer: str, purpose: str, bitstring: Bitstring, valid_from: str,
    ttl_ms: int | None = None,
) -> dict[str, Any]:
    """An unsigned BitstringStatusListCredential (§2.2)."""
    subject: dict[str, Any] = {
        "id": f"{list_url}#list",
        "type": "BitstringStatusList",
        "statusPurpose": purpose,
        "encodedList": bitstring.encode(),
    }
    if ttl_ms is not None:
        subject["ttl"] = ttl_ms
    return {
        "@context": [VC_V2],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": valid_from,
        "credentialSubject": subject,
    }


def status_bit(list_credential_doc: dict[str, Any], status_entry: dict[str, Any]) -> bool:
    """The bit an entry points at, after the checks of §3.3 (the proof is checked apart)."""
    if not isinstance(status_entry, dict):
        raise StatusListError("a credentialStatus entry must be an object")
    if status_entry.get("type") != "BitstringStatusListEntry":
        raise StatusListError(f"unsupported credentialStatus type {status_entry.get('type')!r}")
    try:
        index = int(status_entry.get("statusListIndex"))
    except (TypeError, ValueError):
        raise StatusListError("statusListIndex must be a string holding an integer") from None
    types = list_credential_doc.get("type") or []
    if "BitstringStatusListCredential" not in types:
        raise StatusListError("the status list is not a BitstringStatusListCredential")
    if list_credential_doc.get("id") != status_entry.get("statusListCredential"):
        raise StatusListError("the status list credential id does not match statusListCredential")
    subject = list_credential_doc.get("credentialSubject")
    if not isinstance(subject, dict) or subject.get("type") != "BitstringStatusList":
        raise StatusListError("the status list credentialSubject is not a BitstringStatusList")
    purposes = subject.get("statusPurpose")
    purposes = purposes if isinstance(purposes, list) else [purposes]
    if status_entry.get("statusPurpose") not in purposes:
        raise StatusListError(
            f"status purpose mismatch: the entry says {status_entry.get('statusPurpose')!r}, "
            f"the list says {subject.get('statusPurpose')!r}")
    return Bitstring.decode(subject.get("encodedList")).get(index)
