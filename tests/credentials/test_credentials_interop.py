"""Interoperability: a credential Microcred signs is verified by an independent implementation,
Digital Bazaar's Node packages (tools/ob3-verify), offline with the same bundled contexts.

``npm ci`` runs once when tools/ob3-verify/node_modules is missing (the npm registry must be
reachable then); the test skips loudly only when Node or npm is not installed at all.
"""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from credentials import dataintegrity, keys

TOOL = Path(__file__).resolve().parents[2] / "tools" / "ob3-verify"


@pytest.fixture(scope="session")
def node_verifier() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("INTEROP NOT TESTED: node/npm are not installed on this machine "
                    "(apt-get install nodejs npm)")
    if not (TOOL / "node_modules" / "@digitalbazaar" / "vc").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TOOL, check=True,
                       capture_output=True, timeout=300)
    return TOOL / "verify.js"


def _run(script: Path, tmp_path: Path, credential: dict, dids: dict) -> tuple[int, dict]:
    (tmp_path / "credential.json").write_text(json.dumps(credential))
    (tmp_path / "dids.json").write_text(json.dumps(dids))
    proc = subprocess.run(["node", str(script), str(tmp_path / "credential.json"),
                           str(tmp_path / "dids.json")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


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
