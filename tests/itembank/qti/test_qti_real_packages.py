"""Packages written by others (1EdTech/qti-examples; see tests/itembank/data/qti/README.md)
import, or are refused item by item with the interaction or rule named."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from itembank.qti import read_package

DATA = Path(__file__).resolve().parent.parent / "data" / "qti"


def _zip(folder: Path, manifest: bool = True) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and (manifest or path.name != "imsmanifest.xml"):
                z.write(path, path.relative_to(folder).as_posix())
    return out.getvalue()


def _by_file(report) -> dict[str, object]:
    return {Path(i.where).name: i for i in report.items}


def test_qti22_examples_of_1edtech():
    """1EdTech qti-examples, qtiv2p2-examples/items (no manifest: every item file is read)."""
    report = read_package(_zip(DATA / "qtiv2p2"), "qtiv2p2-examples.zip").report
    items = _by_file(report)
    assert report.format == "QTI 2.2"
    expected = {"choice.xml": "single_choice", "order.xml": "ordering",
                "text_entry.xml": "text_entry", "inline_choice.xml": "inline_choice",
                "select_point.xml": "hotspot", "hotspot.xml": "hotspot",
                "choice_multiple.xml": "multiple_response", "match.xml": "matching"}
    for name, kind in expected.items():
        assert (items[name].status, items[name].item_type) == ("imported", kind), items[name]
    assert "unsupported interaction associateInteraction" in items["associate.xml"].reason
    assert "unsupported interaction extendedTextInteraction" in items["extended_text.xml"].reason
    assert "no response processing" in items["likert.xml"].reason


def test_qti22_choice_reads_its_key_prompt_and_image():
    plan = read_package(_zip(DATA / "qtiv2p2"), "x.zip")
    rec = next(p.record for p in plan.items if p.outcome.where == "choice.xml")
    assert rec.key == {"correct": ["ChoiceA"]}
    assert [o["id"] for o in rec.interaction["options"]] == ["ChoiceA", "ChoiceB", "ChoiceC"]
    assert rec.interaction["fixed_order"] is True  # shuffle="false"
    assert "What does it say?" in rec.stem
    assert 'alt="NEVER LEAVE LUGGAGE UNATTENDED"' in rec.stem and "/media/" in rec.stem
    # alone, without its image, the item is refused, naming the missing file
    alone = read_package((DATA / "qtiv2p2" / "choice.xml").read_bytes(), "choice.xml")
    assert "images/sign.png, which is not in the package" in alone.items[0].outcome.reason


def test_qti22_text_entry_and_hotspot_keys():
    report_plan = read_package(_zip(DATA / "qtiv2p2"), "x.zip")
    recs = {Path(p.outcome.where).name: p.record for p in report_plan.items if p.record}
    text = recs["text_entry.xml"]
    assert {"value": "York", "match": "exact"} in text.key["answers"]
    assert any(a["value"] == "york" and a["credit"] == 0.5 for a in text.key["answers"])
    spot = recs["hotspot.xml"]
    assert spot.interaction["image"]["alt"] == "UK Map"
    assert spot.interaction["image"]["src"].startswith("/media/")
    assert len(spot.key["regions"]) == 1


class _Version:
    def __init__(self, rec) -> None:
        self.interaction, self.key, self.scoring = rec.interaction, rec.key, rec.scoring
        self.max_score, self.item_type = rec.max_score, rec.item_type


def test_qti22_weighted_examples_score_as_their_map_response():
    """1EdTech's choice_multiple.xml and match.xml: map_response with a mapping (defaultValue,
    bounds). Each expected score is worked by hand from the package's own mapping (QTI 2.2,
    mapResponse: the sum over distinct values, the default for an unmapped one, then the
    bounds), and checked against the package's rule too."""
    from lxml import etree

    from itembank.qti import processing as rp
    from itembank.qti.dialect import canonical_tree
    from itembank.qti.reading import _declarations
    from itembank.types import item_type

    plan = read_package(_zip(DATA / "qtiv2p2"), "x.zip")
    recs = {Path(p.outcome.where).name: p.record for p in plan.items if p.record}
    water = recs["choice_multiple.xml"]
    assert water.key == {"correct": ["H", "O"]}
    assert water.scoring == {"method": "mapped", "map": {"H": 1.0, "O": 1.0, "Cl": -1.0},
                             "default": -2.0, "lower": 0.0, "upper": 2.0}
    assert water.max_score == 2.0
    plays = recs["match.xml"]
    assert plays.key == {"pairs": {"C": "R", "D": "M", "L": "M", "P": "T"}}
    assert plays.scoring == {"method": "mapped", "default": 0.0, "map": {
        "C": {"R": 1.0}, "D": {"M": 0.5}, "L": {"M": 0.5}, "P": {"T": 1.0}}}
    assert plays.max_score == 3.0
    cases = [
        ("choice_multiple.xml", water, ["H", "O"], 2.0),
        ("choice_multiple.xml", water, ["H"], 1.0),
        ("choice_multiple.xml", water, ["Cl", "H", "O"], 1.0),   # 1 + 1 - 1
        ("choice_multiple.xml", water, ["Cl", "H"], 0.0),        # 1 - 1
        ("choice_multiple.xml", water, ["H", "N", "O"], 0.0),    # 1 + 1 - 2 (default)
        ("choice_multiple.xml", water, ["He"], 0.0),             # -2, lower bound 0
        ("choice_multiple.xml", water, None, 0.0),
        ("match.xml", plays, {"C": "R", "D": "M", "L": "M", "P": "T"}, 3.0),
        ("match.xml", plays, {"C": "R", "D": "M"}, 1.5),
        ("match.xml", plays, {"C": "M", "D": "M", "L": "M", "P": "T"}, 2.0),  # .5 + .5 + 1
        ("match.xml", plays, {"C": "T", "P": "R"}, 0.0),
        ("match.xml", plays, None, 0.0),
    ]
    for name, rec, value, expected in cases:
        assert item_type(rec.item_type).score(_Version(rec), value) == expected, (name, value)
        tree = canonical_tree(etree.fromstring((DATA / "qtiv2p2" / name).read_bytes()))
        qti = None if value is None else (list(value.items()) if isinstance(value, dict)
                                          else value)
        assert rp.score(rp.resolve(tree.find("response-processing")), _declarations(tree),
                        {"RESPONSE": qti}) == expected, (name, value)


def test_qti3_bbqs_package_of_1edtech():
    """1EdTech qti-examples, qtiv3-examples/packaging/BBQsTest (a Mathqurate/Spectatus export)."""
    report = read_package(_zip(DATA / "qtiv3-bbqs"), "BBQsTest.zip").report
    items = _by_file(report)
    assert report.format == "QTI 3.0"
    assert items["TF-choice.xml"].status == "imported"
    assert items["MultipleChoice-choice-polynomials.xml"].status == "imported"
    assert items["text_entry-calculus.xml"].status == "imported"
    assert "qti-extended-text-interaction" in items["essay-vacation.xml"].reason
    assert "qti-upload-interaction" in items["upload-file.xml"].reason
    assert "template item" in items["SineRule-001.xml"].reason
    assert any("assessment test" in n for n in report.notes)
    assert any("not in the package" in n for n in report.notes)


@pytest.mark.parametrize("name", ["TF-choice.xml"])
def test_feedback_is_dropped_with_a_note(name):
    path = next((DATA / "qtiv3-bbqs").rglob(name))
    plan = read_package(path.read_bytes(), name)
    assert plan.items[0].record.key == {"correct": ["ChoiceB"]}
    assert any("feedback" in n for n in plan.items[0].outcome.notes)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_qti22_examples_are_written_to_the_bank_with_their_images(db):
    """The 1EdTech QTI 2.2 examples through the bank's authoring (sanitizer, media store)."""
    from sqlalchemy import select

    from itembank.media import media_bytes
    from itembank.models import Item, ItemVersion
    from itembank.qti import import_package

    report = import_package(db, _zip(DATA / "qtiv2p2"), "qtiv2p2-examples.zip")
    db.commit()
    imported = {i.identifier for i in report.imported}
    assert {"choice", "order", "textEntry", "inlineChoice", "selectPoint", "hotspot"} <= imported
    choice = db.scalar(select(ItemVersion).join(Item).where(Item.code == "choice"))
    sha = (DATA / "qtiv2p2" / "images" / "sign.png").read_bytes()
    import hashlib

    digest = hashlib.sha256(sha).hexdigest()
    assert f'src="/media/{digest}"' in choice.stem
    assert media_bytes(db, digest)[1] == sha
    spot = db.scalar(select(ItemVersion).join(Item).where(Item.code == "hotspot"))
    assert spot.interaction["image"]["src"].startswith("/media/")
    assert spot.status == "draft"  # no lifecycle state in the package: a draft for review


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_qti3_item_set_shares_its_passage_in_the_bank(db):
    """1EdTech QTI 3.0 BPIG examples: two items referring to one assessment stimulus."""
    from sqlalchemy import select

    from itembank.models import Item, ItemVersion, Stimulus
    from itembank.qti import import_package

    report = import_package(db, _zip(DATA / "qti3-bpig-itemset"), "bpig.zip")
    db.commit()
    items = _by_file(report)
    assert "qti-extended-text-interaction" in items["unbelievable_night_item1.xml"].reason
    versions = db.scalars(select(ItemVersion).join(Item).where(
        Item.code.in_(["unbelievable-night-item2", "unbelievable-night-item3"]))).all()
    assert len(versions) == 2
    assert versions[0].stimulus_id is not None
    assert versions[0].stimulus_id == versions[1].stimulus_id
    passage = db.get(Stimulus, versions[0].stimulus_id)
    assert passage.code == "Stimulus1" and passage.title == "An Unbelievable Night"
    assert 'src="/media/' in passage.content
