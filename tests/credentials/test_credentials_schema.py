"""1EdTech's own JSON Schema and JSON-LD context, not reconstructions: every credential
Microcred issues matches 1EdTech's AchievementCredential schema, and its assessment terms expand
to the IRIs of 1EdTech's Assessment Extension context."""
from __future__ import annotations

import copy
import hashlib
import json
import re

import pytest
from pyld import jsonld

from credentials import documents, schema
from credentials.documents import document_loader
from credentials.verify import verify

OB_SCHEMA = schema.OB_ACHIEVEMENT_CREDENTIAL_SCHEMA
ONE_EDTECH = schema.SCHEMA_DIR / "1edtech"


def test_the_bundled_schema_is_1edtechs_file_as_the_readme_names_it():
    readme = (ONE_EDTECH / "README.md").read_text()
    data = (ONE_EDTECH / "achievementcredential.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() in readme
    assert "1EdTech/openbadges-specification" in readme
    assert "docs/schema/achievementcredential.json" in readme
    assert re.search(r"commit `[0-9a-f]{40}`", readme) and "speclicense" in readme
    assert json.loads(data)["$schema"].startswith("https://json-schema.org/draft/2019-09")


def test_no_schema_of_ours_carries_1edtechs_identifier():
    """Only 1EdTech's files (under schemas/1edtech/) may have a 1EdTech $id."""
    for path in schema.SCHEMA_DIR.rglob("*.json"):
        doc = json.loads(path.read_text())
        if "imsglobal.org" in str(doc.get("$id", "")):
            assert path.parent == ONE_EDTECH, path
    assert all(b.file.startswith("1edtech/") for b in schema.BUNDLED.values())


def test_every_credential_matches_1edtechs_schema(issued):
    doc = issued.credential
    assert isinstance(doc["proof"], list) and len(doc["proof"]) == 1
    # 1EdTech's schema takes one credentialStatus; each of ours, in its place, passes
    assert [e["statusPurpose"] for e in doc["credentialStatus"]] == ["revocation", "suspension"]
    for entry in doc["credentialStatus"]:
        assert schema.violations({**doc, "credentialStatus": entry}, OB_SCHEMA) == []


def test_1edtechs_schema_refuses_what_eefc1b4_issued(issued):
    """The form Microcred signed before (proof as one object) is what 1EdTech's file rejects:
    this is the real schema, not a lenient copy."""
    old = {**issued.credential, "proof": issued.credential["proof"][0],
           "credentialStatus": issued.credential["credentialStatus"][0]}
    assert [v.split(":")[0] for v in schema.violations(old, OB_SCHEMA)] == ["proof"]


def test_verify_says_it_matches_1edtechs_schema_only_when_it_does(issued, now):
    step = verify(issued.credential, issued.resolver(), now=now).step("schema")
    assert step.ok and step.message.startswith("matches 1EdTech's AchievementCredential schema")
    assert "ob_v3p0_achievementcredential_schema.json" not in step.message
    # a status entry that 1EdTech's CredentialStatus refuses is not let through by the list form
    bad = copy.deepcopy(issued.credential)
    del bad["credentialStatus"][1]["id"]
    with pytest.raises(schema.SchemaViolation, match=r"does not match 1EdTech's "
                       r"AchievementCredential schema: credentialStatus: 'id' is a required"):
        schema.check(bad)


def test_an_undeclared_or_unknown_schema_is_not_claimed(issued):
    doc = copy.deepcopy(issued.credential)
    doc["credentialSchema"] = [{"id": "https://example.org/our-own.json",
                                "type": schema.SCHEMA_VALIDATOR_TYPE}]
    with pytest.raises(schema.SchemaViolation, match="none of the declared schemas"):
        schema.check(doc)


# --- the Assessment Extension context ------------------------------------------------------

ASSESSMENT_IRI = "https://purl.imsglobal.org/spec/vc/ob/vocab.html#AssessmentResultDescription"


def test_assessment_context_is_1edtechs_file_served_offline():
    assert documents.OB_ASSESSMENT_V2P0 in documents.CREDENTIAL_CONTEXTS
    doc = document_loader(documents.OB_ASSESSMENT_V2P0)["document"]
    term = doc["@context"]["AssessmentResultDescription"]
    assert term["@id"] == ASSESSMENT_IRI
    data = (documents.CONTEXT_DIR / documents.BUNDLED[documents.OB_ASSESSMENT_V2P0]).read_bytes()
    # 1EdTech/openbadges-specification extensions/assessmentExtension/v2p0/context.json at
    # 9ebe155ddcf8ae670c793294ae6e4c72917eec36, byte for byte
    assert hashlib.sha256(data).hexdigest() == (
        "5e0df1382d4e4914f10245dcda4f654649c3118b2fdb34b00155cadbe2910b59")


def test_expansion_yields_1edtechs_iris(issued):
    assert all(isinstance(c, str) for c in issued.credential["@context"]), \
        "no inline context: every term comes from a published context"
    expanded = jsonld.expand(copy.deepcopy(issued.unsigned), {"documentLoader": document_loader})
    text = json.dumps(expanded)
    assert "w3id.org/openbadges/extensions#AssessmentResultDescription" not in text
    subject = expanded[0]["https://www.w3.org/2018/credentials#credentialSubject"][0]
    achievement = subject["https://purl.imsglobal.org/spec/vc/ob/vocab.html#achievement"][0]
    [description] = achievement[
        "https://purl.imsglobal.org/spec/vc/ob/vocab.html#resultDescription"]
    assert ASSESSMENT_IRI in description["@type"]
    # the properties as 1EdTech's context maps them (its "extensions:" prefix)
    assert description["https://w3id.org/openbadges/extensions#assessmentType"] == [
        {"@value": "Exam"}]
