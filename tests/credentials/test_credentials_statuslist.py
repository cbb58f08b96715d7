"""Bitstring Status List v1.0: bit order, encoding, size, and the validation checks."""
from __future__ import annotations

import gzip

import pytest

from credentials import multibase, statuslist
from credentials.errors import StatusListError


def test_bit_order_and_round_trip():
    bits = statuslist.Bitstring()
    bits.set(0)
    bits.set(9)
    bits.set(131_071)
    assert bits.bits[0] == 0x80 and bits.bits[1] == 0x40 and bits.bits[-1] == 0x01
    encoded = bits.encode()
    assert encoded.startswith("u") and "=" not in encoded
    back = statuslist.Bitstring.decode(encoded)
    assert [back.get(i) for i in (0, 1, 9, 131_071)] == [True, False, True, True]
    bits.set(9, False)
    assert not bits.get(9)


def test_minimum_size_enforced():
    with pytest.raises(StatusListError, match="131072"):
        statuslist.Bitstring(1024)
    short = multibase.encode(gzip.compress(bytes(1024)), "u")
    with pytest.raises(StatusListError, match="fewer than"):
        statuslist.Bitstring.decode(short)
    with pytest.raises(StatusListError, match="'u' prefix"):
        statuslist.Bitstring.decode("zabc")
    with pytest.raises(StatusListError, match="decompress"):
        statuslist.Bitstring.decode("u" + multibase.b64url_encode(b"not gzip"))


def test_status_bit_checks_purpose_and_id():
    bits = statuslist.Bitstring()
    bits.set(7)
    url = "https://x.test/status/1/revocation"
    doc = statuslist.list_credential(list_url=url, issuer="did:key:z6Mkx", purpose="revocation",
                                     bitstring=bits, valid_from="2026-01-01T00:00:00Z")
    assert statuslist.status_bit(doc, statuslist.entry(url, 7, "revocation"))
    assert not statuslist.status_bit(doc, statuslist.entry(url, 8, "revocation"))
    with pytest.raises(StatusListError, match="purpose mismatch"):
        statuslist.status_bit(doc, statuslist.entry(url, 7, "suspension"))
    with pytest.raises(StatusListError, match="does not match"):
        statuslist.status_bit(doc, statuslist.entry(url + "x", 7, "revocation"))
