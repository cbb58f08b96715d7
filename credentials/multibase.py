"""Multibase and multicodec, the encodings did:key and Data Integrity proofs use.

- base58btc with the ``z`` prefix (Multibase, draft-multiformats-multibase §2) for proof values
  and Multikey public keys;
- base64url without padding with the ``u`` prefix for Bitstring Status List ``encodedList``;
- the multicodec varint header ``0xed 0x01`` marks an Ed25519 public key.
"""
from __future__ import annotations

import base64

from credentials.errors import MalformedInput

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}

ED25519_PUB_HEADER = b"\xed\x01"


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    leading = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        if ch not in _B58_INDEX:
            raise MalformedInput(f"not base58btc: character {ch!r}")
        n = n * 58 + _B58_INDEX[ch]
    leading = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * leading + body


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise MalformedInput(f"not base64url: {exc}") from None


def encode(data: bytes, base: str = "z") -> str:
    """Multibase-encode ``data`` with ``z`` (base58btc) or ``u`` (base64url, no padding)."""
    if base == "z":
        return "z" + b58encode(data)
    if base == "u":
        return "u" + b64url_encode(data)
    raise ValueError(f"unsupported multibase prefix {base!r}")


def decode(text: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise MalformedInput("empty multibase value")
    if text[0] == "z":
        return b58decode(text[1:])
    if text[0] == "u":
        return b64url_decode(text[1:])
    raise MalformedInput(f"unsupported multibase prefix {text[0]!r} (expected 'z' or 'u')")
