"""Hostile and broken packages are refused with a message naming what and where, and nothing
of the package is written (a good item next to the bad part is not imported either)."""
from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import func, select

from itembank.models import Item
from itembank.qti import PackageRefused, import_package, safety
from itembank.qti.package import package_records
from itembank.qti.record import ItemRecord
from tests.itembank.qti.samples import samples

# refusals happen before the database is touched; one test (a good item beside bad XML) also
# runs on PostgreSQL, the rest on SQLite only, to keep the suite fast
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _good_files() -> dict[str, bytes]:
    data = package_records([ItemRecord(**samples()[0])], "qti3")
    z = zipfile.ZipFile(io.BytesIO(data))
    return {n: z.read(n) for n in z.namelist()}


def _zip(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, body in files.items():
            z.writestr(name, body)
    return out.getvalue()


def _with_item(xml: bytes) -> bytes:
    """The good package plus a second item resource holding ``xml``."""
    files = _good_files()
    manifest = files["imsmanifest.xml"].decode().replace(
        "</resources>", '<resource identifier="bad" type="imsqti_item_xmlv3p0" '
        'href="items/bad.xml"><file href="items/bad.xml"/></resource></resources>')
    files["imsmanifest.xml"] = manifest.encode()
    files["items/bad.xml"] = xml
    return _zip(files)


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE qti-assessment-item [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0" identifier="x"
 title="&xxe;"/>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0" identifier="&lol3;"/>"""


def _count(db) -> int:
    return db.scalar(select(func.count()).select_from(Item))


def _refused(db, data: bytes, match: str) -> None:
    with pytest.raises(PackageRefused, match=match):
        import_package(db, data, "hostile.zip")
    db.commit()
    assert _count(db) == 0


@SQLITE
def test_a_good_package_imports(db):
    report = import_package(db, _zip(_good_files()), "good.zip")
    db.commit()
    assert [i.status for i in report.items] == ["imported"]
    assert _count(db) == 1


@pytest.mark.parametrize("xml, match", [
    (b"<qti-assessment-item xmlns='http://www.imsglobal.org/xsd/imsqtiasi_v3p0'><oops>",
     r"items/bad.xml: not well-formed XML"),
    (XXE, r"items/bad.xml: declares a DTD or entities"),
    (LAUGHS, r"items/bad.xml: declares a DTD or entities"),
])
def test_bad_xml_refuses_the_whole_package(db, xml, match):
    _refused(db, _with_item(xml), match)


def test_external_entity_is_never_read_even_without_the_doctype_wall(monkeypatch):
    # the parser itself resolves nothing (the DTD refusal is a first wall, this the second)
    monkeypatch.setattr(safety, "_DOCTYPE", __import__("re").compile(rb"(?!)"))
    with pytest.raises(PackageRefused, match="external entity 'xxe'"):
        safety.parse_xml(XXE, "x.xml")
    in_text = XXE.replace(b'title="&xxe;"/>', b'title="t"><p>&xxe;</p></qti-assessment-item>')
    with pytest.raises(PackageRefused, match="uses an entity reference &xxe;"):
        safety.parse_xml(in_text, "x.xml")


@SQLITE
def test_a_path_escaping_the_package_is_refused(db):
    for name in ["../evil.xml", "items/../../evil.xml", "/etc/evil.xml", "C:/evil.xml",
                 "..\\evil.xml"]:
        files = _good_files()
        files[name] = b"<x/>"
        _refused(db, _zip(files), r"points outside the package")


@SQLITE
def test_a_zip_bomb_is_refused(db):
    files = _good_files()
    files["items/zeros.bin"] = b"\0" * (3 * 1024 * 1024)  # compresses about 1000 times
    _refused(db, _zip(files), r"items/zeros.bin expands more than 200 times")


@SQLITE
def test_size_limits_per_file_in_total_and_compressed(db, monkeypatch):
    files = _good_files()
    files["items/noise.bin"] = bytes(range(256)) * 400  # 100 KB, barely compressible
    data = _zip(files)
    monkeypatch.setattr(safety, "MAX_MEMBER_BYTES", 50_000)
    _refused(db, data, r"items/noise.bin is 102,400 bytes uncompressed; at most 50,000")
    monkeypatch.setattr(safety, "MAX_MEMBER_BYTES", 10**9)
    monkeypatch.setattr(safety, "MAX_TOTAL_BYTES", 60_000)
    _refused(db, data, r"goes past the package's uncompressed total limit")
    monkeypatch.setattr(safety, "MAX_PACKAGE_BYTES", 1000)
    _refused(db, data, r"hostile.zip is [\d,]+ bytes; a package may be at most 1,000")


@SQLITE
def test_a_file_that_is_no_package_is_refused(db):
    _refused(db, b"\x00\x01 not a zip", r"neither a zip package nor an XML item")
    _refused(db, b"PK\x03\x04 broken", r"not a zip archive")
