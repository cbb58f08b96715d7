"""The bank's side of QTI: items written through ``itembank.authoring`` are exported, and an
import writes them back through the same services with their metadata, statistics and
enemies; the command line and the CSV import."""
from __future__ import annotations

import io
import zipfile

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from assessment.cli import main
from itembank import authoring
from itembank.enemies import add_enemy, enemies_of
from itembank.models import Item, ItemParameter, ItemVersion
from itembank.qti.csv_import import import_csv, read_csv
from itembank.qti.package import (
    export_package,
    newest_versions,
    read_package,
    record_of,
    write_plan,
)
from tests.itembank.qti.samples import samples
from tests.itembank.qti.test_qti_roundtrip import PNG


def _image_src(db) -> str:
    try:
        from itembank.media import media_url, store_media
    except ImportError:
        return "/media/" + "0" * 64
    return media_url(store_media(db, PNG, filename="map.png").sha256)


def _bank(db, author=None) -> list[ItemVersion]:
    from itembank.stimuli import create_stimulus

    case = create_stimulus(db, code="CASE-1", kind="case", title="A patient",
                           content="<p>A 54-year-old man presents with chest pain.</p>")
    import inspect

    accepted = inspect.signature(authoring.create_item).parameters
    blueprint_metadata = {"subdomain_code": "D1.2", "cognitive_level": "apply",
                          "reference": "Guide, ch. 3", "keywords": ["ecg", "rhythm"]}
    versions = []
    for s in samples(_image_src(db)):
        s = dict(s)
        if s["code"].startswith("MR-"):  # an item set of two
            s["stimulus_id"] = case.id
        s.update({k: v for k, v in blueprint_metadata.items() if k in accepted})
        if author is not None and "actor" in accepted:
            s["actor"] = author
        version = authoring.create_item(db, code=s.pop("code"), item_type_name=s.pop("item_type"),
                                        domain_code="D1", **s)
        versions.append(version)
    first, second = (db.get(Item, v.item_id) for v in versions[:2])
    add_enemy(db, first, second, reason="same fact")
    authoring.publish_version(db, versions[0])
    db.add(ItemParameter(item_version_id=versions[0].id, model="3PL", a=1.2, b=-0.4, c=0.18,
                         thresholds=None, standard_errors={"a": 0.11, "b": 0.07, "c": 0.03},
                         source="calibration"))
    db.flush()
    return versions


def _content(v: ItemVersion) -> dict:
    return {**{name: getattr(v, name) for name in ("subdomain_code", "cognitive_level",
                                                   "reference", "keywords") if hasattr(v, name)},
            "item_type": v.item_type, "stem": v.stem, "interaction": v.interaction,
            "key": v.key, "scoring": v.scoring, "max_score": v.max_score,
            "domain_code": v.domain_code, "status": v.status, "version": v.version,
            "stimulus": v.stimulus and (v.stimulus.code, v.stimulus.kind, v.stimulus.title,
                                        v.stimulus.content)}


@pytest.mark.parametrize("dialect", ["qti3", "qti21"])
def test_bank_round_trip_keeps_items_metadata_statistics_and_enemies(db, dialect, make_user):
    author = make_user("psychometrician", name="Ada Author")
    originals = _bank(db, author)
    data = export_package(db, newest_versions(db), dialect)
    plan = read_package(data, "bank.zip")
    for planned in plan.items:  # import beside the originals, under new codes
        planned.record.code += "-B"
        for enemy in planned.record.metadata.get("enemies", []):
            enemy["code"] += "-B"
    report = write_plan(db, plan)
    db.commit()
    assert len(report.imported) == len(originals), report.lines()
    for original in originals:
        code = db.get(Item, original.item_id).code
        copy = db.scalar(select(ItemVersion).join(Item).where(Item.code == f"{code}-B"))
        assert _content(copy) == _content(original), code
        before, after = record_of(db, original), record_of(db, copy)
        for enemy in after.metadata.get("enemies", []):
            enemy["code"] = enemy["code"].removesuffix("-B")
        assert after.metadata == before.metadata, code
        if hasattr(original, "author_id"):
            assert before.metadata["author"] == {"name": "Ada Author", "email": author.email}
        assert after.statistics == before.statistics, code
    first = db.scalar(select(Item).where(Item.code == "SC-1-B"))
    assert [db.get(Item, i).code for i in enemies_of(db, first.id)] == ["SC-2-B"]
    params = db.scalar(select(ItemParameter).join(ItemVersion).where(
        ItemVersion.item_id == first.id))
    assert (params.a, params.b, params.c) == (1.2, -0.4, 0.18)
    assert params.standard_errors == {"a": 0.11, "b": 0.07, "c": 0.03}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_preview_writes_nothing_and_a_second_import_skips_existing_codes(db):
    _bank(db)
    db.commit()
    count = db.scalar(select(func.count()).select_from(Item))
    data = export_package(db, newest_versions(db, status="draft"), "qti3")
    plan = read_package(data, "bank.zip")
    for p in plan.items:
        p.record.code += "-N"
    preview = write_plan(db, plan, commit=False)
    db.commit()
    assert len(preview.imported) == count - 1 and not preview.committed
    assert db.scalar(select(func.count()).select_from(Item)) == count
    again = write_plan(db, read_package(data, "bank.zip"))
    assert not again.imported
    assert all("already in the bank" in i.reason for i in again.skipped)


CSV = (b"code,stem,option_a,option_b,option_c,key,domain\n"
       b"C-1,What is 2+2?,3,4,5,B,ARITH\n"
       b"C-2,Pick primes,2,4,3,A;C,ARITH\n"
       b"C-3,No key,x,y,,,ARITH\n"
       b"C-4,Bad key,x,y,,D,ARITH\n"
       b"C-1,Duplicate,x,y,,A,ARITH\n"
       b"C-6,<script>alert(1)</script>,a,b,,A,X\n")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_csv_rows_are_checked_and_named_by_row_and_column(db):
    plan = read_csv(CSV, "bank.csv")
    outcomes = {o.where: o for o in plan.report.items}
    assert outcomes["row 2"].status == "imported"
    assert outcomes["row 3"].item_type == "multiple_response"
    assert outcomes["row 4"].reason.startswith("column key: empty")
    assert outcomes["row 5"].reason == "column key: D names no option (options A-B)"
    assert outcomes["row 6"].reason == "column code: C-1 appears twice in the file"
    report = import_csv(db, CSV, "bank.csv")
    db.commit()
    assert len(report.imported) == 3
    c6 = db.scalar(select(ItemVersion).join(Item).where(Item.code == "C-6"))
    assert "<script>" not in c6.stem and "&lt;script&gt;" in c6.stem


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_import_prints_the_report_and_export_writes_a_package(db, database_url, tmp_path):
    _bank(db)
    db.commit()
    env = {"MICROCRED_DATABASE_URL": database_url, "MICROCRED_INSTANCE_DIR": str(tmp_path)}
    out = tmp_path / "bank.zip"
    result = CliRunner().invoke(main, ["items", "export", "--format", "qti21", "--out",
                                       str(out), "--status", "draft"], env=env)
    assert result.exit_code == 0, result.output
    names = zipfile.ZipFile(io.BytesIO(out.read_bytes())).namelist()
    assert "imsmanifest.xml" in names and "items/SC-1.xml" not in names  # SC-1 is approved
    csv_path = tmp_path / "bank.csv"
    csv_path.write_bytes(CSV)
    result = CliRunner().invoke(main, ["items", "import", str(csv_path)], env=env)
    assert result.exit_code == 0, result.output
    assert "imported 3 item(s), skipped 3" in result.output
    assert "skipped  C-4 (row 5): column key: D names no option" in result.output
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 broken")
    result = CliRunner().invoke(main, ["items", "import", str(bad)], env=env)
    assert result.exit_code != 0
    assert "refused, nothing imported: bad.zip is not a zip archive" in result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_p_and_rpb_come_from_the_versions_scored_responses(db, monkeypatch):
    """Four results: item scores 1, 0, 1, 0 with totals 5, 3, 4, 2, so rest scores 4, 3, 3, 2:
    p = 0.5 and the item-rest correlation is 0.25 / sqrt(0.25 * 0.5) = 1/sqrt(2) (by hand)."""
    from assessment.delivery import reads

    version = _bank(db)[0]
    monkeypatch.setattr(reads, "item_score_rows",
                        lambda session, vid: [(1, 1, 5), (0, 1, 3), (1, 1, 4), (0, 1, 2)])
    stats = {s["name"]: s for s in record_of(db, version).statistics}
    assert stats["p"]["value"] == pytest.approx(0.5)
    assert stats["rpb"]["value"] == pytest.approx(2 ** -0.5)
    assert stats["p"]["case_count"] == 4 and stats["p"]["version"] == version.version
    assert stats["irt_a"]["std_error"] == 0.11
