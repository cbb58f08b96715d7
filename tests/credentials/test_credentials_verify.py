"""The step-by-step verifier: each failure is reported at the right step, and a revoked,
suspended or expired credential is never "verified" even when its signature is valid."""
from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from credentials import dataintegrity, keys
from credentials import jwt as vcjwt
from credentials.verify import STEPS, Resolver, verify


def _failed(report):
    return report.failed_step.name if report.failed_step else None


def test_valid_credential_passes_every_step(issued, now):
    report = verify(json.dumps(issued.credential), issued.resolver(), now=now)
    assert [s.name for s in report.steps] == list(STEPS)
    assert report.verified and report.status == "valid", report.to_dict()
    assert all(s.ok for s in report.steps)


def test_jwt_passes_every_step(issued, now):
    token = vcjwt.encode(issued.unsigned, issued.private_key, kid=issued.vm, issued_at=now)
    report = verify(token, issued.resolver(), now=now)
    assert report.verified, report.to_dict()
    assert report.proof_format == "jwt"


def test_tampered_field_fails_at_proof(issued, now):
    doc = copy.deepcopy(issued.credential)
    doc["credentialSubject"]["result"][0]["value"] = "100"
    report = verify(doc, issued.resolver(), now=now)
    assert not report.verified and _failed(report) == "proof"
    assert "changed after signing" in report.step("proof").message


def test_wrong_key_fails(issued, now):
    attacker = keys.generate_private_key()
    # same verification method claimed, another key signs: the signature fails
    forged = dataintegrity.add_proof(issued.unsigned, attacker, verification_method=issued.vm,
                                     created=now)
    report = verify(forged, issued.resolver(), now=now)
    assert _failed(report) == "proof"
    # the attacker's own key named: it does not belong to the issuer
    forged2 = dataintegrity.add_proof(
        issued.unsigned, attacker, verification_method=keys.did_key_verification_method(attacker),
        created=now)
    report2 = verify(forged2, issued.resolver(), now=now)
    assert _failed(report2) == "issuer key"
    assert "does not belong to the issuer" in report2.step("issuer key").message


def test_revoked_fails_at_status_even_with_a_valid_signature(issued, now):
    issued.revocation.set(issued.index)
    report = verify(issued.credential, issued.resolver(), now=now)
    assert report.step("proof").ok is True
    assert not report.verified and _failed(report) == "status"
    assert report.status == "revoked"


def test_suspended_fails_and_restores(issued, now):
    issued.suspension.set(issued.index)
    report = verify(issued.credential, issued.resolver(), now=now)
    assert _failed(report) == "status" and report.status == "suspended"
    issued.suspension.set(issued.index, False)
    assert verify(issued.credential, issued.resolver(), now=now).verified


def test_expired_fails_at_dates(issued):
    later = dt.datetime(2028, 3, 2, tzinfo=dt.UTC)
    report = verify(issued.credential, issued.resolver(), now=later)
    assert report.step("proof").ok is True
    assert _failed(report) == "dates" and report.status == "expired"
    assert "expired on 2028-03-01" in report.step("dates").message


def test_forged_status_list_is_rejected(issued, now):
    resolver = issued.resolver()
    url = issued.list_url
    doc = copy.deepcopy(resolver.status_lists[url])
    doc["credentialSubject"]["encodedList"] = doc["credentialSubject"]["encodedList"]  # same
    doc["validFrom"] = "2026-01-02T00:00:00Z"  # altered after signing
    resolver.status_lists[url] = doc
    report = verify(issued.credential, resolver, now=now)
    assert _failed(report) == "status" and "could not be checked" in report.step("status").message


def test_unknown_status_list_fails_closed(issued, now):
    report = verify(issued.credential, Resolver(), now=now)
    assert _failed(report) == "status" and "not fetched" in report.step("status").message


def test_schema_violation_is_named(make_issued_credential, now):
    bad = make_issued_credential(extra={"name": 5})
    report = verify(bad.credential, bad.resolver(), now=now)
    assert report.step("proof").ok is True
    assert _failed(report) == "schema"
    assert "AchievementCredential schema: name: 5 is not of type" in report.step("schema").message


@pytest.mark.parametrize("data,message", [
    ("{not json", "JSON is broken at line 1, character 2"),
    ("not json", "the text is not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["Thing"]}',
     "not a credential"),
    ("", "empty"),
    (b"\xff\xfe\x00garbage", "the file is not a baked badge image"),
])
def test_bad_input_fails_at_format_with_a_clear_message(data, message):
    report = verify(data)
    assert _failed(report) == "format" and message in report.step("format").message
    assert not report.verified


def test_did_web_issuer_unknown_offline(issued, now):
    doc = copy.deepcopy(issued.unsigned)
    doc["issuer"]["id"] = "did:web:elsewhere.example"
    report = verify(doc, Resolver(), now=now)
    assert _failed(report) in ("issuer key",)


# --- nothing after a failed proof is trusted (issue 9, finding 17) --------------------------

@pytest.mark.parametrize("field,value", [
    ("validUntil", "2099-01-01T00:00:00Z"),
    ("validFrom", "2020-01-01T00:00:00Z"),
])
def test_tampered_dates_are_not_checked_let_alone_ok(issued, field, value):
    doc = copy.deepcopy(issued.credential)
    doc[field] = value
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)  # past the signed validUntil
    report = verify(doc, issued.resolver(), now=later)
    assert _failed(report) == "proof" and report.status == "invalid"
    after = report.steps[STEPS.index("proof") + 1:]
    assert [s.name for s in after] == ["status", "dates", "schema"]
    assert all(s.ok is None and s.message.startswith("not checked") for s in after)


def test_a_tampered_copy_of_a_revoked_credential_is_invalid_not_revoked(issued, now):
    issued.revocation.set(issued.index)
    doc = copy.deepcopy(issued.credential)
    doc["credentialSubject"]["achievement"]["name"] = "Python Grandmaster"
    report = verify(doc, issued.resolver(), now=now)
    assert report.status == "invalid" and _failed(report) == "proof"
    assert report.to_dict()["status"] == "invalid"
    # the genuine copy is, of course, revoked
    assert verify(issued.credential, issued.resolver(), now=now).status == "revoked"


def test_unknown_issuer_key_leaves_the_rest_unchecked(issued, now):
    doc = copy.deepcopy(issued.unsigned)
    doc["issuer"]["id"] = "did:web:elsewhere.example"
    report = verify(doc, Resolver(), now=now)
    assert report.status == "invalid"
    assert [s.ok for s in report.steps[1:]] == [False, None, None, None, None]


def test_both_status_entries_are_read_and_a_legacy_single_entry_still_finds_suspension(
        make_issued_credential, now):
    issued = make_issued_credential()
    issued.suspension.set(issued.index)
    report = verify(issued.credential, issued.resolver(), now=now)
    assert report.status == "suspended" and _failed(report) == "status"
    # credentials issued before the suspension entry existed: one revocation entry, the
    # suspension list found by the resolver at the same index
    legacy = make_issued_credential(extra={
        "credentialStatus": issued.unsigned["credentialStatus"][0]})
    legacy.suspension.set(legacy.index)
    resolver = Resolver(status_lists={legacy.list_url: legacy.signed_list("revocation")},
                        suspension_lists={legacy.list_url: legacy.signed_list("suspension")})
    assert verify(legacy.credential, resolver, now=now).status == "suspended"
