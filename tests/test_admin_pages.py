"""Admin and public pages a new user met (issue 9, finding 23, admin and public parts): the user
list is searchable and paged, admin tables name people and exams instead of showing ids,
revoking a credential asks first (also without JavaScript), the favicon exists, and /verify says
in people's words what was wrong with junk."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from assessment.users import User
from credentials import issuance, revocation
from credentials.models import Credential
from tests.credentials.conftest import take_exam
from tests.test_axe import _audit

PASSWORD = "correct horse battery staple"


def _rows(html: str, caption_start: str) -> list[str]:
    table = re.search(rf"<caption[^>]*>{re.escape(caption_start)}.*?</caption>(.*?)</table>", html, re.DOTALL)
    assert table, f"no table captioned {caption_start!r}"
    return re.findall(r"<tr><td>(.*?)</td>", table.group(1).split("<tbody>")[1])


@pytest.fixture
def crowd(db):
    """129 candidates (written directly: hashing 129 passwords would only slow the test)."""
    for n in range(129):
        db.add(User(email=f"cand{n:03d}@example.org", display_name=f"Candidate {n:03d}",
                    role="candidate", password_hash="!", active=False))
    db.add(User(email="odd_100%@example.org", display_name="Percy Literal", role="candidate",
                password_hash="!", active=False))
    db.commit()


def test_user_list_is_searchable_and_paged(client, make_user, signin, crowd, db):
    admin = make_user("admin", name="Ada Admin")
    signin(client, admin)
    first = client.get("/admin/").get_data(as_text=True)
    assert len(_rows(first, "Users")) == 50
    assert "Users 1–50 of 131" in first
    nav = re.search(r'<nav aria-label="Pages of users" class="pagination">(.*?)</nav>', first, re.DOTALL).group(1)
    assert 'aria-current="page"><span class="visually-hidden">Page </span>1</a>' in nav
    assert 'href="/admin/?page=2" rel="next"' in nav and 'href="/admin/?page=3"' in nav
    assert "Previous" not in nav

    third = client.get("/admin/?page=3").get_data(as_text=True)
    assert len(_rows(third, "Users")) == 31 and "Users 101–131 of 131" in third
    assert 'rel="prev"' in third and 'rel="next"' not in third

    found = client.get("/admin/?q=CAND12").get_data(as_text=True)  # email, any case
    assert _rows(found, "Users") == [f"Candidate 12{n}" for n in range(9)]  # 120-128
    assert "Users 1–9 of 9 matching “CAND12”" in found and "Pages of users" not in found
    assert _rows(client.get("/admin/?q=ada adm").get_data(as_text=True), "Users") == ["Ada Admin"]
    # % and _ are searched for as themselves, not as wildcards
    assert _rows(client.get("/admin/?q=100%25").get_data(as_text=True), "Users") == ["Percy Literal"]
    assert _rows(client.get("/admin/?q=_1").get_data(as_text=True), "Users") == ["Percy Literal"]
    assert "No user matches “nobody”" in client.get("/admin/?q=nobody").get_data(as_text=True)
    paged = client.get("/admin/?q=cand&page=2").get_data(as_text=True)
    assert 'href="/admin/?page=1&amp;q=cand"' in paged or 'href="/admin/?q=cand&amp;page=1"' in paged

    for url, message in (("/admin/?page=abc", "the page number must be a whole number from 1, not &#39;abc&#39;"),
                         ("/admin/?page=0", "whole number from 1"),
                         ("/admin/?page=99999999999999999999", "whole number from 1"),
                         ("/admin/?page=4", "there is no page 4: 131 users make 3 pages"),
                         ("/admin/?q=" + "x" * 300, "keep it to 254")):
        resp = client.get(url)
        assert resp.status_code == 400, url
        assert message in resp.get_data(as_text=True), url


@pytest.fixture
def earned(db, app, make_user, build_exam):
    with app.app_context():
        from credentials.config import current

        exam = build_exam(db, code="ADM-1")
        issuance.create_achievement(db, current(), code="ADM-BADGE", name="Admin Badge",
                                    description="Shows the admin pages.", exam_id=exam.id,
                                    recertification_exam_id=exam.id, validity_days=20)
        db.commit()
        cand = make_user("candidate", email="grace@example.org", name="Grace Hopper")
        take_exam(db, cand, exam)
    return db.scalar(select(Credential)), cand, exam


def test_admin_tables_name_people_and_exams(client, earned, make_user, signin):
    _, cand, exam = earned
    signin(client, make_user("admin"))
    html = client.get("/admin/credentials").get_data(as_text=True)
    issued = html.split("<h2>Issued</h2>")[1]
    assert "Grace Hopper" in issued and "grace@example.org" in issued
    assert f"<td>{cand.id}</td>" not in issued
    expiring = html.split("<h2>Issued</h2>")[0]
    assert "Grace Hopper" in expiring  # valid for 20 days: on the 60-day expiring list
    achievements = client.get("/admin/achievements").get_data(as_text=True)
    assert f"passing {exam.title}" in achievements and "renewed by passing" in achievements
    assert "exam #" not in achievements


def test_revoking_asks_first_and_needs_a_reason(client, earned, make_user, signin, csrf_token, db, app):
    cred, _, _ = earned
    signin(client, make_user("admin"))
    token = csrf_token(client)
    url = f"/admin/credentials/{cred.public_id}/status"

    def state():
        db.commit()
        with app.app_context():
            return revocation.status_of(db, db.get(Credential, cred.id)).label

    ask = client.post(url, data={"action": "revoke", "reason": "leaked", "csrf_token": token})
    assert ask.status_code == 200
    page = ask.get_data(as_text=True)
    assert "Revoke this credential?" in page and "Revocation is permanent" in page
    assert "Grace Hopper" in page and 'name="confirmed" value="yes"' in page
    assert re.search(r'<label for="revoke-reason">[^<]+</label>\s*<textarea id="revoke-reason"[^>]*>leaked</textarea>', page)
    assert state() == "active"

    blank = client.post(url, data={"action": "revoke", "reason": "  ", "confirmed": "yes", "csrf_token": token})
    assert blank.status_code == 422 and "Give the reason for revoking" in blank.get_data(as_text=True)
    assert state() == "active"

    done = client.post(url, data={"action": "revoke", "reason": "leaked", "confirmed": "yes", "csrf_token": token})
    assert done.status_code == 302 and state() == "revoked"


@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_revoke_confirmation_by_keyboard_without_javascript(earned, make_user, live_server, browser, db, app,
                                                            page):
    from playwright.sync_api import expect

    cred, _, _ = earned
    admin = make_user("admin")
    # axe needs JavaScript: audit the pages first in an ordinary context, backing out of the revocation
    page.goto(live_server.url + "/signin")
    page.fill("#email", admin.email)
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    for path in ("/admin/", "/admin/achievements", "/admin/credentials"):
        page.goto(live_server.url + path)
        assert _audit(page, path) == []
    page.locator(f'tr[data-credential="{cred.public_id}"]').get_by_label("Reason").fill("checking")
    page.get_by_role("button", name="Revoke…").click()
    expect(page.get_by_role("heading", name="Revoke this credential?")).to_be_visible()
    assert _audit(page, "revoke confirmation") == []
    page.get_by_role("link", name="No, keep it").click()
    expect(page.get_by_role("heading", name="Credentials")).to_be_visible()

    context = browser.new_context(java_script_enabled=False)
    try:
        nojs = context.new_page()
        nojs.goto(live_server.url + "/signin")
        nojs.fill("#email", admin.email)
        nojs.fill("#password", PASSWORD)
        nojs.press("#password", "Enter")
        nojs.goto(live_server.url + "/admin/credentials")
        row = nojs.locator(f'tr[data-credential="{cred.public_id}"]')
        row.get_by_label("Reason").fill("the exam content leaked")
        row.get_by_role("button", name="Revoke…").focus()
        nojs.keyboard.press("Enter")
        expect(nojs.get_by_role("heading", name="Revoke this credential?")).to_be_visible()
        expect(nojs.get_by_label("Reason for revoking")).to_have_value("the exam content leaked")
        nojs.get_by_label("Reason for revoking").focus()
        nojs.keyboard.press("Tab")
        expect(nojs.get_by_role("button", name="Yes, revoke permanently")).to_be_focused()
        nojs.keyboard.press("Tab")
        expect(nojs.get_by_role("link", name="No, keep it")).to_be_focused()
        nojs.keyboard.press("Shift+Tab")
        nojs.keyboard.press("Enter")
        expect(nojs.locator(".flash-success")).to_contain_text("revoke recorded")
    finally:
        context.close()
    db.commit()
    with app.app_context():
        assert revocation.status_of(db, db.get(Credential, cred.id)).label == "revoked"


def test_favicon(client):
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.mimetype == "image/vnd.microsoft.icon"
    assert ico.data[:4] == b"\x00\x00\x01\x00"  # the ICO header
    page = client.get("/verify").get_data(as_text=True)
    svg_link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page).group(1)
    svg = client.get(svg_link)
    assert svg.status_code == 200 and svg.data.startswith(b"<svg")
    assert '<link rel="icon" href="/favicon.ico"' in page


def test_verify_says_what_was_wrong_with_junk(client, csrf_token):
    token = csrf_token(client)
    cases = [
        ({"credential": "hello there"}, "This is not a credential: the text is not JSON"),
        ({"credential": '{"type": ["VerifiableCredential"], }'},
         "This credential&#39;s JSON is broken at line 1, character"),
        ({"file": (io.BytesIO(b"\x89\xff\xfe not an image"), "badge.png")},
         "This is not a credential: the file is not a baked badge image"),
        ({"file": (io.BytesIO(b"just some notes"), "notes.txt")},
         "This is not a credential: the file is not a baked badge image"),
    ]
    for data, message in cases:
        resp = client.post("/verify", data={**data, "csrf_token": token}, content_type="multipart/form-data")
        html = resp.get_data(as_text=True)
        assert message in html, data
        assert "Expecting" not in html and "column" not in html, data
    api = client.post("/api/credentials/verify", data=b"not a badge", content_type="application/octet-stream")
    message = api.get_json()["steps"][0]["message"]
    assert "the file is not a baked badge image" in message and "Expecting" not in message
