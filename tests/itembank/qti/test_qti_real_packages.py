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
                "select_point.xml": "hotspot", "hotspot.xml": "hotspot"}
    for name, kind in expected.items():
        assert (items[name].status, items[name].item_type) == ("imported", kind), items[name]
    assert "unsupported interaction associateInteraction" in items["associate.xml"].reason
    assert "unsupported interaction extendedTextInteraction" in items["extended_text.xml"].reason
    assert "scores in a way Microcred cannot" in items["choice_multiple.xml"].reason
    assert "scores in a way Microcred cannot" in items["match.xml"].reason
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
