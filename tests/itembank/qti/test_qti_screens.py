"""The import page (upload, the report before anything is written, then commit) and the
export, in the browser's terms: roles, CSRF, ownership and expiry of the held upload, and a
hostile upload refused with nothing written."""
from __future__ import annotations

import io
import re
import zipfile

import pytest
from sqlalchemy import func, select

from itembank.models import Item
from itembank.qti.package import package_records
from itembank.qti.record import ItemRecord
from itembank.qti.uploads import PendingImport
from tests.conftest import csrf_token, signin
from tests.itembank.qti.samples import samples

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _package() -> bytes:
    return package_records([ItemRecord(**s) for s in samples()[:5]], "qti3")


def _upload(client, data: bytes, name: str = "bank.zip"):
    return client.post("/bank/import", data={
        "csrf_token": csrf_token(client), "package": (io.BytesIO(data), name)},
        content_type="multipart/form-data")


def _count(db) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Item))


def test_upload_shows_the_report_then_commit_imports(client, db, make_user):
    signin(client, make_user("psychometrician"))
    resp = _upload(client, _package())
    assert resp.status_code == 303
    page = client.get(resp.location).get_data(as_text=True)
    assert "5 item(s) will be imported, 0 skipped" in page
    assert "SC-1" in page and "Nothing is imported until you confirm" in page
    assert _count(db) == 0
    key = resp.location.rsplit("/", 1)[-1]
    done = client.post(f"/bank/import/{key}", data={"csrf_token": csrf_token(client),
                                                     "action": "commit"})
    assert done.status_code == 200
    assert "5 item(s) imported, 0 skipped" in done.get_data(as_text=True)
    assert _count(db) == 5
    assert client.get(f"/bank/import/{key}").status_code == 404  # used up


def test_commit_needs_the_csrf_token(client, db, make_user):
    signin(client, make_user("admin"))
    key = _upload(client, _package()).location.rsplit("/", 1)[-1]
    resp = client.post(f"/bank/import/{key}", data={"action": "commit"})
    assert resp.status_code in (400, 403)
    assert _count(db) == 0


def test_an_upload_is_its_owners_and_expires(app, client, db, make_user, clock):
    signin(client, make_user("admin"))
    key = _upload(client, _package()).location.rsplit("/", 1)[-1]
    other = app.test_client()
    signin(other, make_user("psychometrician"))
    assert other.get(f"/bank/import/{key}").status_code == 404
    assert other.post(f"/bank/import/{key}", data={"csrf_token": csrf_token(other),
                                                   "action": "commit"}).status_code == 404
    clock.advance(2 * 3600)
    assert client.get(f"/bank/import/{key}").status_code == 404
    assert _count(db) == 0


def test_a_hostile_upload_is_refused_and_nothing_is_held(client, db, make_user):
    signin(client, make_user("admin"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("../../etc/evil.xml", "<x/>")
    resp = _upload(client, out.getvalue(), "evil.zip")
    assert resp.status_code == 422
    assert "Refused, nothing imported: zip member" in resp.get_data(as_text=True)
    db.rollback()
    assert db.scalar(select(func.count()).select_from(PendingImport)) == 0
    assert _count(db) == 0


@pytest.mark.parametrize("role", ["candidate", "proctor"])
def test_proctors_and_candidates_may_not(client, make_user, role):
    signin(client, make_user(role))
    assert client.get("/bank/import").status_code == 403
    assert client.get("/bank/export").status_code == 403
    assert client.get("/bank/export.zip").status_code == 403


def test_export_downloads_the_filtered_bank(client, db, make_user):
    signin(client, make_user("admin"))
    key = _upload(client, _package()).location.rsplit("/", 1)[-1]
    client.post(f"/bank/import/{key}", data={"csrf_token": csrf_token(client),
                                             "action": "commit"})
    page = client.get("/bank/export?type=multiple_response").get_data(as_text=True)
    assert re.search(r"2 item\(s\) match", page)
    resp = client.get("/bank/export.zip?type=multiple_response&format=qti21")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(resp.data)).namelist()
    assert sorted(n for n in names if n.startswith("items/")) == ["items/MR-1.xml",
                                                                   "items/MR-2.xml"]


def test_a_csv_bank_goes_through_the_same_page(client, db, make_user):
    from tests.itembank.qti.test_qti_bank import CSV

    signin(client, make_user("admin"))
    resp = _upload(client, CSV, "bank.csv")
    page = client.get(resp.location).get_data(as_text=True)
    assert "3 item(s) will be imported, 3 skipped" in page
    assert "column key: D names no option (options A-B)" in page


def test_an_item_author_imports_drafts_without_statistics(client, db, make_user):
    pytest.importorskip("itembank.workflow")
    from itembank.models import ItemParameter, ItemVersion

    rec = ItemRecord(**samples()[0])
    rec.metadata = {"status": "approved", "version": 2}
    rec.statistics = [{"name": "irt_a", "value": 1.1, "version": 2},
                      {"name": "irt_b", "value": 0.2, "version": 2}]
    data = package_records([rec], "qti3")
    signin(client, make_user("item_author"))
    assert client.get("/bank/export").status_code == 403
    key = _upload(client, data).location.rsplit("/", 1)[-1]
    client.post(f"/bank/import/{key}", data={"csrf_token": csrf_token(client),
                                             "action": "commit"})
    db.rollback()
    version = db.scalar(select(ItemVersion))
    assert version.status == "draft"
    assert db.scalar(select(func.count()).select_from(ItemParameter)) == 0


def test_the_item_list_links_its_filter_to_the_export(client, db, make_user):
    signin(client, make_user("admin"))
    key = _upload(client, _package()).location.rsplit("/", 1)[-1]
    client.post(f"/bank/import/{key}", data={"csrf_token": csrf_token(client),
                                             "action": "commit"})
    page = client.get("/bank/items?type=multiple_response&q=select").get_data(as_text=True)
    link = re.search(r'href="(/bank/export\?[^"]+)">Export these items', page)
    assert link, page[:2000]
    export = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "1 item(s) match." in export  # MR-1 ("Select TWO.") of the two multiple responses
