"""Keys, did:key, the eddsa-rdfc-2022 proof and the VC-JWT: sign, verify, tamper, wrong key."""
from __future__ import annotations

import copy

import pytest

from credentials import dataintegrity, keys, multibase
from credentials import jwt as vcjwt
from credentials.documents import document_loader
from credentials.errors import ContextNotBundled, CredentialError, ProofError


def _resolve(vm: str, purpose: str):
    return keys.public_key_from_multibase(vm.split("#")[1])


def test_did_key_round_trip_and_known_vector():
    # did:key spec test vector (Ed25519, §B.1): raw key bytes -> z6Mk... identifier
    raw = bytes.fromhex("2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6")
    assert multibase.encode(multibase.ED25519_PUB_HEADER + raw).startswith("z6Mk")
    k = keys.generate_private_key()
    did = keys.did_key(k)
    doc = keys.did_key_document(did)
    assert doc["verificationMethod"][0]["publicKeyMultibase"] == did.split(":")[2]
    assert keys.raw_public_key(keys.public_key_from_multibase(did.split(":")[2])) == \
        keys.raw_public_key(k)


def test_base58_leading_zeros():
    for data in (b"", b"\0", b"\0\0abc", bytes(range(40))):
        assert multibase.b58decode(multibase.b58encode(data)) == data


def test_did_web_mapping():
    assert keys.did_web_for("https://example.org:8443/x") == "did:web:example.org%3A8443"
    assert keys.did_web_for("https://example.org", ["issuers", "board"]) == \
        "did:web:example.org:issuers:board"
    assert keys.did_web_url("did:web:example.org") == "https://example.org/.well-known/did.json"
    assert keys.did_web_url("did:web:example.org%3A8443:issuers:board") == \
        "https://example.org:8443/issuers/board/did.json"


def test_private_key_sealed_at_rest(tmp_path, monkeypatch):
    monkeypatch.delenv(keys.KEK_ENV, raising=False)
    kek = keys.key_encryption_key(tmp_path)
    assert (tmp_path / keys.KEK_FILE).stat().st_mode & 0o777 == 0o600
    assert keys.key_encryption_key(tmp_path) == kek  # generated once
    k = keys.generate_private_key()
    sealed = keys.SealedKey.seal(k, kek, aad="issuer-1/key-1")
    assert keys.raw_private_key(k).hex() not in sealed.blob
    assert keys.raw_private_key(sealed.open(kek, aad="issuer-1/key-1")) == keys.raw_private_key(k)
    with pytest.raises(CredentialError, match="cannot decrypt"):
        sealed.open(kek, aad="issuer-2/key-1")
    monkeypatch.setenv(keys.KEK_ENV, "from-the-environment")
    with pytest.raises(CredentialError, match="MICROCRED_CREDENTIAL_KEY"):
        sealed.open(keys.key_encryption_key(tmp_path), aad="issuer-1/key-1")


def test_loader_serves_only_bundled_contexts():
    assert "@context" in document_loader("https://www.w3.org/ns/credentials/v2")["document"]
    with pytest.raises(ContextNotBundled, match="never fetched"):
        document_loader("https://example.com/evil-context.json")


def test_contexts_in_order(issued):
    ctx = issued.credential["@context"]
    assert ctx[:3] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json",
    ]
    rd = issued.credential["credentialSubject"]["achievement"]["resultDescription"][0]
    assert rd["assessmentType"] == "Exam"


def test_data_integrity_sign_then_verify(issued):
    proof = dataintegrity.verify_proof(issued.credential, _resolve)
    assert proof["cryptosuite"] == "eddsa-rdfc-2022"
    assert proof["proofValue"].startswith("z")


def test_canonical_form_covers_extension_terms(issued):
    nquads = dataintegrity.canonicalize(issued.unsigned)
    # the terms as 1EdTech's Assessment Extension 2.0 context maps them
    assert "<https://purl.imsglobal.org/spec/vc/ob/vocab.html#AssessmentResultDescription>" \
        in nquads
    assert "<https://w3id.org/openbadges/extensions#assessmentType> \"Exam\"" in nquads
    assert "#1EdTechJsonSchemaValidator2019" in nquads


@pytest.mark.parametrize("path,value", [
    (("credentialSubject", "result", 0, "value"), "99"),
    (("credentialSubject", "achievement", "name"), "Python Expert"),
    (("validUntil",), "2099-01-01T00:00:00Z"),
    (("credentialSubject", "achievement", "resultDescription", 0, "assessmentType"),
     "Performance"),
])
def test_tampered_field_fails_proof(issued, path, value):
    doc = copy.deepcopy(issued.credential)
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ProofError, match="does not match"):
        dataintegrity.verify_proof(doc, _resolve)


def test_undefined_term_is_refused_not_silently_unsigned(issued, now):
    doc = copy.deepcopy(issued.unsigned)
    doc["credentialSubject"]["favouriteColour"] = "blue"
    with pytest.raises(dataintegrity.UndefinedTerm, match="favouriteColour"):
        dataintegrity.add_proof(doc, issued.private_key, verification_method=issued.vm,
                                created=now)


def test_wrong_key_fails(issued, now):
    other = keys.generate_private_key()
    forged = dataintegrity.add_proof(issued.unsigned, other, verification_method=issued.vm,
                                     created=now)
    with pytest.raises(ProofError):
        dataintegrity.verify_proof(forged, _resolve)


def test_jwt_sign_then_verify_and_tamper(issued, now):
    token = vcjwt.encode(issued.unsigned, issued.private_key, kid=issued.vm, issued_at=now)
    header, payload, _, _ = vcjwt.split(token)
    assert header == {"alg": "EdDSA", "typ": "vc+jwt", "cty": "vc", "kid": issued.vm}
    assert payload["iss"] == issued.did and payload["exp"] > payload["nbf"]
    cred = vcjwt.verify(token, _resolve)
    assert cred["credentialSubject"] == issued.unsigned["credentialSubject"]
    h, p, s = token.split(".")
    bad_payload = vcjwt.b64url_encode(vcjwt.b64url_decode(p).replace(b"81.5", b"99.5"))
    with pytest.raises(ProofError, match="does not match"):
        vcjwt.verify(f"{h}.{bad_payload}.{s}", _resolve)
    other = keys.generate_private_key()
    forged = vcjwt.encode(issued.unsigned, other, kid=issued.vm)
    with pytest.raises(ProofError):
        vcjwt.verify(forged, _resolve)
