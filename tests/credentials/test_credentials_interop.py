"""Interoperability: a credential Microcred signs is verified by independent implementations,
offline with the same bundled contexts: Digital Bazaar's Node packages (tools/ob3-verify/
verify.js, status through @digitalbazaar/vc-bitstring-status-list) and the Digital Credentials
Consortium's verifier-core (tools/ob3-verify/dcc-verify.js, its network answered from files).

``npm ci`` runs once when tools/ob3-verify/node_modules is missing (the npm registry must be
reachable then); the test skips loudly only when Node or npm is not installed at all.
"""
from __future__ import annotations

import copy
import fcntl
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from credentials import dataintegrity, keys, schema

TOOL = Path(__file__).resolve().parents[2] / "tools" / "ob3-verify"


@pytest.fixture(scope="session")
def node_verifier() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("INTEROP NOT TESTED: node/npm are not installed on this machine "
                    "(apt-get install nodejs npm)")
    needed = ("@digitalbazaar/vc", "@digitalbazaar/vc-bitstring-status-list",
              "@digitalcredentials/verifier-core")
    # Two pytest workers may both get here on a fresh clone: `npm ci` empties node_modules first,
    # so one installs while the other waits on the lock, then finds the packages there.
    with open(TOOL / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all((TOOL / "node_modules" / name).is_dir() for name in needed):
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TOOL, check=True,
                           capture_output=True, timeout=300)
    return TOOL / "verify.js"


def _run(script: Path, tmp_path: Path, credential: dict, *documents: dict) -> tuple[int, dict]:
    """Run a verifier script on ``credential`` and the given JSON documents (one file each)."""
    paths = [tmp_path / "credential.json"]
    paths[0].write_text(json.dumps(credential))
    for n, doc in enumerate(documents):
        paths.append(tmp_path / f"documents-{n}.json")
        paths[-1].write_text(json.dumps(doc))
    proc = subprocess.run(["node", str(script), *map(str, paths)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _status_lists(issued) -> dict:
    return {issued.list_url: issued.signed_list("revocation"),
            issued.suspension_url: issued.signed_list("suspension")}


def _web(status_lists: dict) -> dict:
    """What the DCC verifier may fetch: the status lists and 1EdTech's schema."""
    return {**status_lists, schema.OB_ACHIEVEMENT_CREDENTIAL_SCHEMA: json.loads(
        (schema.SCHEMA_DIR / schema.BUNDLED[schema.OB_ACHIEVEMENT_CREDENTIAL_SCHEMA].file)
        .read_text())}


def test_digital_bazaar_verifies_our_did_key_credential(node_verifier, tmp_path, issued):
    dids = {issued.did: keys.did_key_document(issued.did)}
    code, out = _run(node_verifier, tmp_path, issued.credential, dids)
    assert code == 0 and out["verified"], out
    tampered = copy.deepcopy(issued.credential)
    tampered["credentialSubject"]["achievement"]["name"] = "Python Grandmaster"
    code, out = _run(node_verifier, tmp_path, tampered, dids)
    assert code == 1 and not out["verified"]
    assert any("signature" in e.lower() for e in out["errors"]), out


def test_digital_bazaar_verifies_a_did_web_issuer_after_rotation(node_verifier, tmp_path,
                                                                 issued, now):
    did = "did:web:badges.example.test"
    old, new = keys.generate_private_key(), keys.generate_private_key()
    methods = [keys.multikey_method(f"{did}#key-{n}", did, keys.public_key_multibase(k))
               for n, k in ((1, old), (2, new))]
    doc = keys.controller_document(did, methods, assertion=[m["id"] for m in methods])
    unsigned = copy.deepcopy(issued.unsigned)
    unsigned["issuer"]["id"] = did
    signed_old = dataintegrity.add_proof(unsigned, old, verification_method=f"{did}#key-1",
                                         created=now)
    code, out = _run(node_verifier, tmp_path, signed_old, {did: doc})
    assert code == 0, out
    # a key that the DID document does not list for assertionMethod is refused
    retired = keys.controller_document(did, methods, assertion=[f"{did}#key-2"])
    code, out = _run(node_verifier, tmp_path, signed_old, {did: retired})
    assert code == 1, out


@pytest.mark.parametrize("held", [None, "suspension", "revocation"])
def test_digital_bazaar_reads_both_status_entries(node_verifier, tmp_path, issued, held):
    if held:
        getattr(issued, held).set(issued.index)
    dids = {issued.did: keys.did_key_document(issued.did)}
    code, out = _run(node_verifier, tmp_path, issued.credential, dids, _status_lists(issued))
    assert out["errors"] == [], out
    assert {s["statusPurpose"]: s["set"] for s in out["status"]} == {
        "revocation": held == "revocation", "suspension": held == "suspension"}
    assert (code == 0) is (held is None) and out["verified"] is (held is None)


@pytest.fixture(scope="session")
def dcc_verifier(node_verifier) -> Path:
    return node_verifier.parent / "dcc-verify.js"


@pytest.mark.parametrize("held", [None, "suspension", "revocation"])
def test_dcc_verifier_reports_suspension_and_revocation(dcc_verifier, tmp_path, issued, held):
    if held:
        getattr(issued, held).set(issued.index)
    code, out = _run(dcc_verifier, tmp_path, issued.credential, _web(_status_lists(issued)))
    assert out["errors"] == [], out
    assert {"id": "valid_signature", "valid": True} in out["log"]
    assert out["status"] == {"revocation": held != "revocation",
                             "suspension": held != "suspension"}, out
    assert (code == 0) is (held is None), out


def test_dcc_runs_1edtechs_schema_and_objects_only_to_the_status_list(dcc_verifier, tmp_path,
                                                                       issued, now):
    """The DCC verifier validates against 1EdTech's schema with its own validator (ajv). OB 3.0
    allows one credentialStatus; Microcred lists two (revocation and suspension) so that
    suspension is visible. This pins that this is the one and only objection."""
    _, out = _run(dcc_verifier, tmp_path, issued.credential, _web(_status_lists(issued)))
    [result] = out["schema"]["results"]
    assert result["schema"] == schema.OB_ACHIEVEMENT_CREDENTIAL_SCHEMA
    assert {(e["instancePath"], e["keyword"]) for e in result["result"]["errors"]} == {
        ("/credentialStatus", "type")}, result
    single = copy.deepcopy(issued.unsigned)
    single["credentialStatus"] = single["credentialStatus"][0]
    signed = dataintegrity.add_proof(single, issued.private_key,
                                     verification_method=issued.vm, created=now)
    _, out = _run(dcc_verifier, tmp_path, signed, _web(_status_lists(issued)))
    assert out["schema"]["results"][0]["result"]["valid"] is True, out["schema"]


def test_a_credential_suspended_in_microcred_is_suspended_for_both_verifiers(
        node_verifier, dcc_verifier, tmp_path, db, cred_cfg, make_user, build_exam, take_exam):
    """End to end: issued on a pass, suspended by an admin, the published status lists read by
    Digital Bazaar and by the DCC verifier."""
    from sqlalchemy import select

    from credentials import issuance, revocation
    from credentials.models import Credential

    exam = build_exam(db, code="INTEROP")
    issuance.create_achievement(db, cred_cfg, code="INTEROP-1", name="Interop badge",
                                description="Interoperates.", exam_id=exam.id)
    db.commit()
    take_exam(db, make_user("candidate"), exam)
    cred = db.scalar(select(Credential))
    revocation.suspend(db, cred_cfg, cred, reason="misconduct review", by_user_id=None)
    db.commit()
    lists = {e["statusListCredential"]: revocation.published_list(
        db, cred_cfg, cred.status_list_id, e["statusPurpose"])
        for e in cred.json["credentialStatus"]}
    issuer_did = cred.json["issuer"]["id"]
    assert issuer_did.startswith("did:key:")
    dids = {issuer_did: keys.did_key_document(issuer_did)}
    code, out = _run(node_verifier, tmp_path, cred.json, dids, lists)
    assert code == 1 and {s["statusPurpose"]: s["set"] for s in out["status"]} == {
        "revocation": False, "suspension": True}, out
    code, out = _run(dcc_verifier, tmp_path, cred.json, _web(lists))
    assert code == 1 and out["status"] == {"revocation": True, "suspension": False}, out


def test_a_holders_clr_record_is_verified_by_both_verifiers(
        node_verifier, dcc_verifier, tmp_path, db, cred_cfg, make_user):
    """A holder's record exported as a CLR 2.0 ClrCredential (their badges, a stack's
    components associated with it) matches the bundled CLR schema, verifies in Microcred, and
    is verified by Digital Bazaar and by the DCC verifier; one changed letter in an embedded
    badge and both refuse it."""
    from credentials import clr, issuance, revocation
    from credentials.resolution import DatabaseResolver
    from credentials.verify import verify
    from microcred.records import records

    parts = [issuance.create_achievement(db, cred_cfg, code=f"PART-{n}", name=f"Part {n}",
                                         description="A component.") for n in (1, 2)]
    stack = issuance.create_achievement(db, cred_cfg, code="WHOLE", name="Whole",
                                        description="The stack.",
                                        stack_components=["PART-1", "PART-2"])
    holder = make_user("candidate", email="clr@example.org")
    held = [issuance.issue(db, cred_cfg, achievement=a, holder=holder, kind=kind, evidence=[])
            for a, kind in ((parts[0], "exam"), (parts[1], "exam"), (stack, "stack"))]
    gone = issuance.issue(db, cred_cfg, achievement=parts[0], holder=holder, kind="exam",
                          evidence=[])
    revocation.revoke(db, cred_cfg, gone, reason="issued twice", by_user_id=None)
    db.commit()

    doc = clr.export(db, cred_cfg, records().person(db, holder.id))
    subject = doc["credentialSubject"]
    assert doc["type"] == ["VerifiableCredential", "ClrCredential"]
    assert [c["id"] for c in subject["verifiableCredential"]] == [c.json["id"] for c in held]
    assert subject["association"] == [
        {"type": "Association", "associationType": "isPartOf",
         "sourceId": held[n].json["credentialSubject"]["achievement"]["id"],
         "targetId": held[2].json["credentialSubject"]["achievement"]["id"]} for n in (0, 1)]
    assert schema.check(doc)[0].startswith("1EdTech's ClrCredential schema")
    report = verify(doc, DatabaseResolver(db, cred_cfg))
    assert report.verified, report.to_dict()

    did = doc["issuer"]["id"]
    code, out = _run(node_verifier, tmp_path, doc, {did: keys.did_key_document(did)})
    assert code == 0 and out["verified"], out
    web = {schema.CLR_CREDENTIAL_SCHEMA: json.loads(
        (schema.SCHEMA_DIR / schema.BUNDLED[schema.CLR_CREDENTIAL_SCHEMA].file).read_text())}
    code, out = _run(dcc_verifier, tmp_path, doc, web)
    assert code == 0 and out["verified"] and out["errors"] == [], out
    assert {"id": "valid_signature", "valid": True} in out["log"]
    # the DCC library's ajv (strict mode) cannot compile 1EdTech's draft-04 CLR schema file (it
    # carries an "error" keyword), so it reports the schema, not the record, as unusable;
    # Microcred's own check above ran that schema with jsonschema
    assert out["schema"]["results"].startswith("INVALID_SCHEMA"), out["schema"]

    tampered = copy.deepcopy(doc)
    tampered["credentialSubject"]["verifiableCredential"][0]["name"] = "Part 9"
    code, out = _run(node_verifier, tmp_path, tampered, {did: keys.did_key_document(did)})
    assert code == 1 and not out["verified"], out
    code, out = _run(dcc_verifier, tmp_path, tampered, web)
    assert code == 1 and any("signature is not valid" in e for e in out["errors"]), out
    assert not verify(tampered, DatabaseResolver(db, cred_cfg)).verified
