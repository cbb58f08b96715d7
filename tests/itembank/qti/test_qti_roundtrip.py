"""QTI 3.0 and 2.1 export then import gives the same items, for every type and scoring method,
and the package scores every response the way the bank does (its own response processing run
by ``itembank.qti.processing``), before and after the round trip."""
from __future__ import annotations

import hashlib
import io
import itertools
import random
import zipfile

import pytest
from lxml import etree

from itembank.qti import processing as rp
from itembank.qti.dialect import canonical_tree
from itembank.qti.package import package_records, read_package
from itembank.qti.reading import _declarations
from itembank.qti.record import ItemRecord
from itembank.types import item_type
from tests.itembank.qti.samples import samples

PNG = bytes.fromhex(  # a 1 x 1 PNG (a valid one: the bank refuses an image that will not decode)
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f00050001ff89993d1d0000000049454e44ae426082")
SHA = hashlib.sha256(PNG).hexdigest()


def _records() -> list[ItemRecord]:
    return [ItemRecord(**s) for s in samples(f"/media/{SHA}")]


def _package(dialect: str) -> bytes:
    return package_records(_records(), dialect, lambda sha: ("image/png", PNG))


@pytest.mark.parametrize("dialect", ["qti3", "qti21"])
def test_every_type_comes_back_unchanged(dialect):
    originals = {r.code: r for r in _records()}
    assert {r.item_type for r in originals.values()} == set(
        __import__("itembank.types", fromlist=["ITEM_TYPES"]).ITEM_TYPES)
    plan = read_package(_package(dialect), "bank.zip")
    assert [p.outcome.status for p in plan.items] == ["imported"] * len(originals), \
        [p.outcome for p in plan.items if p.record is None]
    for planned in plan.items:
        assert planned.record.definition() == originals[planned.outcome.identifier].definition()
    assert SHA in plan.media  # the hotspot's image travelled in the package


def test_the_two_versions_are_spelled_as_their_standards_say():
    v3 = zipfile.ZipFile(io.BytesIO(_package("qti3")))
    v2 = zipfile.ZipFile(io.BytesIO(_package("qti21")))
    item3 = v3.read("items/MR-1.xml").decode()
    item2 = v2.read("items/MR-1.xml").decode()
    assert "<qti-assessment-item" in item3 and 'max-choices="2"' in item3
    assert "imsqtiasi_v3p0" in item3
    assert "<assessmentItem" in item2 and 'maxChoices="2"' in item2
    assert "imsqti_v2p1" in item2
    assert "rptemplates/match_correct" in item2
    manifest = v3.read("imsmanifest.xml").decode()
    assert 'type="imsqti_item_xmlv3p0"' in manifest
    assert 'type="imsqti_item_xmlv2p1"' in v2.read("imsmanifest.xml").decode()
    assert f"items/media/{SHA}.png" in v3.namelist()


def _responses(rec: ItemRecord, rng: random.Random) -> list:
    """A table of responses of ``rec``'s type: right, wrong, partly right and empty."""
    i, t = rec.interaction, rec.item_type
    if t in ("single_choice",):
        return [o["id"] for o in i["options"]] + [None]
    if t == "true_false":
        return ["true", "false", None]
    if t == "multiple_response":
        ids = [o["id"] for o in i["options"]]
        limit = i.get("select") or len(ids)
        return [sorted(c) for k in range(1, limit + 1) for c in itertools.combinations(ids, k)] \
            + [None]
    if t == "text_entry":
        return ["Au", "au", "GOLD", "gold", "Ag", "1995", "1899", "Nineties", "", None]
    if t == "numeric_entry":
        v = float(rec.key["value"])
        return [str(v), str(v + 0.04), str(v - 0.06), str(v * 1.009), str(v * 1.02), "x", None]
    if t == "ordering":
        return [list(p) for p in itertools.permutations(rec.key["order"])] + [None]
    if t == "matching":
        targets = [x["id"] for x in i["targets"]]
        out = []
        for combo in itertools.product(targets, repeat=len(i["sources"])):
            pairs = dict(zip([s["id"] for s in i["sources"]], combo, strict=True))
            if i.get("reuse_targets") or len(set(combo)) == len(combo):
                out.append(pairs)
        return [*out, None]
    if t == "inline_choice":
        gaps = i["gaps"]
        return [dict(zip([g["id"] for g in gaps], c, strict=True))
                for c in itertools.product(*[[o["id"] for o in g["options"]] for g in gaps])] \
            + [None]
    if t == "hotspot":
        return [{"x": 30, "y": 25}, {"x": 200, "y": 160}, {"x": 345, "y": 40},
                {"x": 100, "y": 200}, {"x": 0, "y": 0}, None] + [
            {"x": rng.uniform(0, 400), "y": rng.uniform(0, 300)} for _ in range(30)]
    raise AssertionError(t)


def _qti_value(rec: ItemRecord, value):
    """The bank's response as the package's response variables."""
    t = rec.item_type
    if t == "inline_choice":
        return {g["id"]: (value or {}).get(g["id"]) for g in rec.interaction["gaps"]}
    if value is None:
        return {"RESPONSE": None}
    if t == "matching":
        return {"RESPONSE": list(value.items()) or None}
    if t == "numeric_entry":
        from itembank.types import parse_number
        try:
            return {"RESPONSE": float(parse_number(value))}
        except ValueError:
            return {"RESPONSE": None}
    if t == "hotspot":
        return {"RESPONSE": (value["x"], value["y"])}
    if t == "text_entry" and value == "":
        return {"RESPONSE": None}
    return {"RESPONSE": value}


class _Version:
    def __init__(self, rec: ItemRecord) -> None:
        self.interaction, self.key, self.scoring = rec.interaction, rec.key, rec.scoring
        self.max_score, self.item_type = rec.max_score, rec.item_type


@pytest.mark.parametrize("dialect", ["qti3", "qti21"])
def test_scoring_after_import_equals_the_original_for_a_table_of_responses(dialect):
    rng = random.Random(12)
    archive = zipfile.ZipFile(io.BytesIO(_package(dialect)))
    imported = {p.record.code: p.record for p in read_package(_package(dialect)).items}
    checked = 0
    for rec in _records():
        kind = item_type(rec.item_type)
        tree = canonical_tree(etree.fromstring(archive.read(f"items/{rec.code}.xml")))
        rules = rp.resolve(tree.find("response-processing"))
        declarations = _declarations(tree)
        for value in _responses(rec, rng):
            bank = kind.score(_Version(rec), value)
            after = kind.score(_Version(imported[rec.code]), value)
            assert after == pytest.approx(bank), (rec.code, value)
            if rec.item_type == "ordering" and rec.scoring.get("method"):
                continue  # pairwise/position: QTI has no operator; Microcred's extension keeps it
            if rec.item_type == "text_entry" and value and value != value.strip():
                continue
            package = rp.score(rules, declarations, _qti_value(rec, value))
            assert package == pytest.approx(bank), (rec.code, value, package, bank)
            checked += 1
    assert checked > 140


def test_templates_are_recognised_by_name_whatever_the_uri():
    for uri in ("http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct",
                "http://www.imsglobal.org/question/qti_v2p2/rptemplates/match_correct.xml",
                "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct",
                "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct.xml",
                "match_correct"):
        assert rp.template_name(uri) == "match_correct"
    assert rp.template_name(".../rptemplates/map_response.XML") == "map_response"
    with pytest.raises(rp.UnsupportedProcessing, match="map_response_cc2"):
        rp.template_rules("map_response_cc2")


@pytest.mark.parametrize("dialect", ["qti3", "qti21"])
def test_an_item_set_keeps_its_shared_stimulus(dialect):
    """QTI 3.0 writes the stimulus once (``qti-assessment-stimulus``) and refers to it from each
    member; QTI 2.1 has no stimulus, so it goes into each member's body and comes back out."""
    from itembank.qti.record import StimulusRecord

    passage = StimulusRecord(code="CASE-1", kind="case", title="A patient",
                             content="<p>A 54-year-old man presents with chest pain.</p>")
    members = [ItemRecord(**s) for s in samples()[:2]]
    for m in members:
        m.stimulus = passage
    data = package_records(members, dialect)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert ("items/stimuli/CASE-1.xml" in names) == (dialect == "qti3")
    plan = read_package(data, "set.zip")
    for planned, member in zip(plan.items, members, strict=True):
        assert planned.record.definition() == member.definition()
        assert planned.record.stimulus == passage


METADATA = {"domain_code": "D2", "subdomain_code": "D2.1", "cognitive_level": "apply",
            "keywords": ["cardiology", "ecg"], "status": "approved", "version": 3,
            "author": {"name": "Ada Author", "email": "ada@example.org"},
            "reviewers": [{"name": "Rex Reviewer", "email": "rex@example.org"}],
            "enemies": [{"code": "SC-2", "reason": "same fact"}],
            "reference": "Harrison's, 21st ed., ch. 12"}
STATISTICS = [{"name": "p", "value": 0.62, "case_count": 410, "version": 3},
              {"name": "rpb", "value": 0.41, "case_count": 410, "version": 3},
              {"name": "irt_a", "value": 1.2, "std_error": 0.11, "version": 3},
              {"name": "irt_b", "value": -0.4, "std_error": 0.07, "version": 3},
              {"name": "irt_c", "value": 0.18, "std_error": 0.03, "version": 3}]


@pytest.mark.parametrize("dialect", ["qti3", "qti21"])
def test_metadata_and_statistics_come_back_unchanged(dialect):
    rec = ItemRecord(**samples()[0])
    rec.metadata = dict(METADATA)
    rec.statistics = [dict(s) for s in STATISTICS]
    data = package_records([rec], dialect)
    manifest = zipfile.ZipFile(io.BytesIO(data)).read("imsmanifest.xml").decode()
    assert "<imsmd:taxonPath>" in manifest and "<imsmd:lifeCycle>" in manifest
    assert "qtiMetadata" in manifest and "usagedata.xml" in manifest
    back = read_package(data).items[0].record
    assert back.metadata == METADATA
    assert back.domain_code == "D2"
    assert back.statistics == STATISTICS
    usage = zipfile.ZipFile(io.BytesIO(data)).read("usagedata.xml").decode()
    assert "urn:microcred:item:SC-1:version:3" in usage


_INLINE_MAP = """<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
  identifier="inline-map" title="Inline map" adaptive="false" time-dependent="false">
 <qti-response-declaration identifier="RESPONSE" cardinality="multiple" base-type="identifier">
  <qti-correct-response><qti-value>A</qti-value><qti-value>B</qti-value></qti-correct-response>
  <qti-mapping default-value="-1" lower-bound="0">
   <qti-map-entry map-key="A" mapped-value="2"/>
   <qti-map-entry map-key="B" mapped-value="1"/>
   <qti-map-entry map-key="A" mapped-value="9"/>
  </qti-mapping>
 </qti-response-declaration>
 <qti-outcome-declaration identifier="SCORE" cardinality="single" base-type="float"/>
 <qti-item-body><qti-choice-interaction response-identifier="RESPONSE" max-choices="0">
  <qti-simple-choice identifier="A">a</qti-simple-choice>
  <qti-simple-choice identifier="B">b</qti-simple-choice>
  <qti-simple-choice identifier="C">c</qti-simple-choice>
 </qti-choice-interaction></qti-item-body>
 <qti-response-processing><qti-response-condition>
  <qti-response-if><qti-is-null><qti-variable identifier="RESPONSE"/></qti-is-null>
   <qti-set-outcome-value identifier="SCORE"><qti-base-value base-type="float">0</qti-base-value>
   </qti-set-outcome-value></qti-response-if>
  <qti-response-else><qti-set-outcome-value identifier="SCORE">
   <qti-map-response identifier="RESPONSE"/></qti-set-outcome-value></qti-response-else>
 </qti-response-condition></qti-response-processing>
</qti-assessment-item>"""


def test_inline_map_response_with_a_repeated_key_imports_as_mapped():
    """Inline mapResponse (not the template); a repeated mapKey counts its first entry, as
    ``processing.map_response`` looks it up; no upper bound, so the max is the best sum (3).
    A lower bound below 0 lets the package score below 0, which a Microcred score never does:
    refused, naming the response."""
    plan = read_package(_INLINE_MAP.encode(), "inline-map.xml")
    rec = plan.items[0].record
    assert rec is not None, plan.items[0].outcome
    assert rec.scoring == {"method": "mapped", "map": {"A": 2.0, "B": 1.0}, "default": -1.0,
                           "lower": 0.0}
    assert rec.max_score == 3.0
    kind = item_type("multiple_response")
    assert [kind.score(_Version(rec), v) for v in (["A", "B"], ["A", "C"], ["C"], None)] == \
        [3.0, 1.0, 0.0, 0.0]  # 2+1; 2-1; -1 raised to the lower bound 0; nothing: 0
    negative = _INLINE_MAP.replace('lower-bound="0"', 'lower-bound="-3"')
    outcome = read_package(negative.encode(), "negative.xml").items[0].outcome
    assert outcome.status == "skipped" and "scores in a way Microcred cannot" in outcome.reason
    assert "['C'] earns -1 in the package, and 0" in outcome.reason, outcome.reason


def test_a_mapping_with_lower_above_upper_is_refused_naming_the_bound():
    bad = _INLINE_MAP.replace('lower-bound="0"', 'lower-bound="2" upper-bound="1"')
    outcome = read_package(bad.encode(), "bad-map.xml").items[0].outcome
    assert outcome.status == "skipped"
    assert "scoring.lower (2) is above scoring.upper (1)" in outcome.reason, outcome
