"""The foundation's security: sign-in throttling without account enumeration, cookie flags,
response headers (CSP without inline script), CSRF on forms and JSON, role checks, argon2.

Everything goes through the Flask test client, on SQLite and on PostgreSQL (``database_url``
in tests/conftest.py)."""
from __future__ import annotations

import dataclasses
import re
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from assessment.auth import GENERIC_FAILURE
from assessment.config import Settings
from assessment.users import SigninAttempt, User

PASSWORD = "correct horse battery staple"  # tests/conftest.py's make_user password
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
THROTTLED = "Too many failed sign-ins"
#: <script> types that are data blocks: the browser never executes them (CSP does not apply).
DATA_SCRIPT_TYPES = {"application/json", "application/ld+json"}


# ---------------------------------------------------------------- helpers


def _post_signin(client, email: str, password: str, token: str, **kw):
    return client.post("/signin", data={"email": email, "password": password, "csrf_token": token},
                       **kw)


def _count(db, model) -> int:
    db.rollback()  # a fresh snapshot: the app wrote through its own connections
    return int(db.scalar(select(func.count()).select_from(model)))


def _flash(html: str) -> list[str]:
    return re.findall(r'<p class="flash flash-\w+">(.*?)</p>', html, re.DOTALL)


def _signed_in(client) -> bool:
    resp = client.get("/", follow_redirects=False)
    return not (resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/signin")


def _csp(resp) -> dict[str, list[str]]:
    header = resp.headers.get("Content-Security-Policy")
    assert header, f"{resp.request.path}: no Content-Security-Policy"
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def _assert_security_headers(resp) -> None:
    path = resp.request.path
    csp = _csp(resp)
    default = csp.get("default-src")
    assert default in (["'self'"], ["'none'"]), f"{path}: default-src is {default}"
    script = csp.get("script-src", default)
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, f"{path}: {script}"
    assert "*" not in script and not any(s.startswith(("http:", "https:", "data:")) for s in script)
    assert csp.get("frame-ancestors") == ["'none'"], f"{path}: {csp.get('frame-ancestors')}"
    assert csp.get("object-src", default) == ["'none'"] or csp.get("object-src") is None
    assert resp.headers.get("X-Content-Type-Options") == "nosniff", path
    assert resp.headers.get("Referrer-Policy") in {
        "no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin",
    }, f"{path}: Referrer-Policy {resp.headers.get('Referrer-Policy')}"


_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
_TYPE_ATTR = re.compile(r"""\btype\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)


def _inline_scripts(html: str) -> list[str]:
    """Executable <script> elements without ``src``, inline event handlers, javascript: URLs."""
    found = []
    for match in _SCRIPT_TAG.finditer(html):
        attrs = match.group(1)
        if re.search(r"\bsrc\s*=", attrs, re.IGNORECASE):
            continue
        kind = _TYPE_ATTR.search(attrs)
        if kind and kind.group(1).lower() in DATA_SCRIPT_TYPES:
            continue
        found.append(match.group(0))
    found += re.findall(r"<[^>]+\son[a-z]+\s*=[^>]*>", html, re.IGNORECASE)
    found += re.findall(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", html, re.IGNORECASE)
    return found


SKIP_CRAWL = re.compile(r"^/(static/|signout)|\.(json|jwt|png|svg|pdf|jpg)$")


def _crawl(client, seeds: list[str], limit: int = 80) -> dict[str, str]:
    """GET every same-site page reachable from ``seeds`` through links and redirects."""
    pages: dict[str, str] = {}
    queue, seen = deque(seeds), set(seeds)
    while queue and len(pages) < limit:
        path = queue.popleft()
        resp = client.get(path)
        targets = []
        if resp.status_code in (301, 302, 303, 307, 308):
            targets.append(resp.headers["Location"])
        elif resp.status_code == 200 and resp.mimetype == "text/html":
            html = resp.get_data(as_text=True)
            _assert_security_headers(resp)
            pages[path] = html
            targets += re.findall(r'href="([^"#]+)', html)
        for target in targets:
            parts = urlsplit(target)
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                continue
            nxt = parts.path + (f"?{parts.query}" if parts.query else "")
            if nxt not in seen and not SKIP_CRAWL.search(parts.path):
                seen.add(nxt)
                queue.append(nxt)
    return pages


# ---------------------------------------------------------------- sign-in throttling

#: Lower thresholds than the defaults (5 per account, 30 per address, 15 minutes), set through
#: the configuration: every failed try costs an argon2 verification (~0.2 s here).
STRICT = {"signin_max_failures_per_account": 3, "signin_max_failures_per_address": 6,
          "signin_window_seconds": 600, "signin_backoff_base_seconds": 30.0,
          "signin_backoff_cap_seconds": 600.0}


@pytest.fixture
def strict_app(settings, db):
    from assessment.app import create_app

    application = create_app(dataclasses.replace(settings, **STRICT), TESTING=True)
    yield application
    application.extensions["microcred.database"].dispose()


def test_throttle_defaults_and_their_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROCRED_INSTANCE_DIR", str(tmp_path))
    for name in ("MICROCRED_SIGNIN_MAX_FAILURES", "MICROCRED_SIGNIN_MAX_FAILURES_PER_ADDRESS",
                 "MICROCRED_SIGNIN_WINDOW_SECONDS", "MICROCRED_SIGNIN_BACKOFF_BASE_SECONDS",
                 "MICROCRED_SIGNIN_BACKOFF_CAP_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings.from_env()
    assert (defaults.signin_max_failures_per_account, defaults.signin_max_failures_per_address,
            defaults.signin_window_seconds, defaults.signin_backoff_base_seconds,
            defaults.signin_backoff_cap_seconds) == (5, 30, 900, 2.0, 300.0)
    monkeypatch.setenv("MICROCRED_SIGNIN_MAX_FAILURES", "3")
    monkeypatch.setenv("MICROCRED_SIGNIN_MAX_FAILURES_PER_ADDRESS", "6")
    monkeypatch.setenv("MICROCRED_SIGNIN_WINDOW_SECONDS", "600")
    monkeypatch.setenv("MICROCRED_SIGNIN_BACKOFF_BASE_SECONDS", "30")
    monkeypatch.setenv("MICROCRED_SIGNIN_BACKOFF_CAP_SECONDS", "600")
    configured = Settings.from_env()
    assert {k: getattr(configured, k) for k in STRICT} == STRICT


def test_repeated_wrong_passwords_throttle_the_account(strict_app, make_user, db, csrf_token,
                                                      clock):
    app, settings = strict_app, strict_app.config["MICROCRED"]
    client = app.test_client()
    user = make_user("candidate")
    token = csrf_token(client)
    limit = settings.signin_max_failures_per_account
    for _ in range(limit):
        resp = _post_signin(client, user.email, "wrong password!", token)
        assert resp.status_code == 401
        assert _flash(resp.get_data(as_text=True)) == [GENERIC_FAILURE]
    rows = _count(db, SigninAttempt)
    assert rows == limit

    refused = _post_signin(client, user.email, "wrong password!", token)
    assert refused.status_code == 429
    message = _flash(refused.get_data(as_text=True))
    wait = settings.signin_backoff_base_seconds  # the first delay; it doubles from there
    left = int(refused.headers["Retry-After"])  # what remains of it (the tries took time)
    assert 1 <= left <= wait
    unit = "second" if left == 1 else "seconds"
    assert message == [f"Too many failed sign-ins. Wait {left} {unit} and try again."]
    # the right password from this address waits too, and the throttled tries write nothing
    right = _post_signin(client, user.email.upper(), PASSWORD, token)
    assert right.status_code == 429 and THROTTLED in right.get_data(as_text=True)
    assert not _signed_in(client)
    assert _count(db, SigninAttempt) == rows
    _assert_security_headers(right)

    # another account from the same address is not affected by this account's delay
    other = make_user("candidate")
    fresh = app.test_client()
    assert _post_signin(fresh, other.email, PASSWORD, csrf_token(fresh)).status_code == 302

    # once the delay has passed, the right password signs in
    clock.advance(wait + 0.5)
    assert _post_signin(client, user.email, PASSWORD, token).status_code == 302
    assert _signed_in(client)
    # a success clears the account's count: one more wrong password is a plain failure
    client.post("/signout", data={"csrf_token": csrf_token(client)})
    token = csrf_token(client)
    assert _post_signin(client, user.email, "wrong password!", token).status_code == 401


def test_many_accounts_from_one_address_are_throttled(strict_app, make_user, db, csrf_token):
    app, settings = strict_app, strict_app.config["MICROCRED"]
    client = app.test_client()
    user = make_user("proctor")
    token = csrf_token(client)
    limit = settings.signin_max_failures_per_address
    assert limit > settings.signin_max_failures_per_account
    for i in range(limit):
        resp = _post_signin(client, f"guess{i}@example.org", f"password-{i}-xyz", token)
        assert resp.status_code == 401, i
    written = _count(db, SigninAttempt)
    assert written == limit

    # a real account with its right password, from the same address: throttled, nothing written
    resp = _post_signin(client, user.email, PASSWORD, token)
    assert resp.status_code == 429 and THROTTLED in resp.get_data(as_text=True)
    assert not _signed_in(client)
    assert _count(db, SigninAttempt) == written

    # from another address the same account signs in at once
    elsewhere = app.test_client()
    env = {"REMOTE_ADDR": "198.51.100.7"}
    page = elsewhere.get("/signin", environ_base=env).get_data(as_text=True)
    other_token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    ok = _post_signin(elsewhere, user.email, PASSWORD, other_token, environ_base=env)
    assert ok.status_code == 302
    assert _count(db, SigninAttempt) == written + 1


def test_unknown_email_and_wrong_password_look_the_same(client, make_user, csrf_token, db,
                                                        monkeypatch):
    from assessment import users

    known = make_user("candidate", email="known@example.org")
    token = csrf_token(client)
    verified = []
    real = users._hasher

    class CountingHasher:
        def __getattr__(self, name: str):
            return getattr(real, name)

        def verify(self, hash_, password):
            verified.append(password)
            return real.verify(hash_, password)

    monkeypatch.setattr(users, "_hasher", CountingHasher())

    wrong = _post_signin(client, known.email, "not the password", token)
    unknown = _post_signin(client, "nobody@example.org", "not the password", token)
    assert wrong.status_code == unknown.status_code == 401
    assert _flash(wrong.get_data(as_text=True)) == _flash(unknown.get_data(as_text=True)) \
        == [GENERIC_FAILURE]
    # apart from the echoed email (and the CSRF token's signature), the pages are identical
    def page(resp, email: str) -> str:
        html = resp.get_data(as_text=True).replace(email, "E")
        return re.sub(r'name="csrf[-_]token" (content|value)="[^"]+"', "csrf", html)

    assert page(wrong, known.email) == page(unknown, "nobody@example.org")
    # and both cost one password hash verification (no timing oracle for existing accounts)
    assert verified == ["not the password", "not the password"]

    # a deactivated account answers like the others, even to its right password
    known.active = False
    db.commit()
    off = _post_signin(client, known.email, PASSWORD, token)
    assert off.status_code == 401 and _flash(off.get_data(as_text=True)) == [GENERIC_FAILURE]
    assert not _signed_in(client)


def test_unknown_emails_are_throttled_like_accounts(strict_app, csrf_token):
    client, settings = strict_app.test_client(), strict_app.config["MICROCRED"]
    token = csrf_token(client)
    codes = [_post_signin(client, "ghost@example.org", "whatever-pass", token).status_code
             for _ in range(settings.signin_max_failures_per_account + 1)]
    assert codes == [401] * settings.signin_max_failures_per_account + [429]


def test_empty_fields_are_refused_and_next_stays_on_site(client, make_user, csrf_token, db):
    token = csrf_token(client)
    resp = _post_signin(client, "", "", token)
    assert resp.status_code == 400
    assert _flash(resp.get_data(as_text=True)) == ["Enter your email and your password."]
    assert _count(db, SigninAttempt) == 0

    user = make_user("candidate")
    resp = client.post("/signin", data={"email": user.email, "password": PASSWORD,
                                        "csrf_token": token, "next": "//evil.example/x"})
    assert resp.status_code == 302 and "evil" not in resp.headers["Location"]


# ---------------------------------------------------------------- cookies


def _cookie_attrs(header: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in header.split(";")]
    name = parts[0].split("=", 1)[0]
    attrs = {}
    for p in parts[1:]:
        key, _, value = p.partition("=")
        attrs[key.lower()] = value
    return name, attrs


def _assert_strict_cookie(header: str) -> None:
    name, attrs = _cookie_attrs(header)
    if attrs.get("max-age") == "0":
        # A deletion (Flask-Login clears the remember cookie when a session without its marks
        # meets "strong" session protection): it carries no value, so its flags do not matter.
        assert header.startswith(f"{name}=;"), header
        return
    assert "secure" in attrs, f"{name} cookie is not Secure: {header}"
    assert "httponly" in attrs, f"{name} cookie is not HttpOnly: {header}"
    assert attrs.get("samesite", "").lower() in {"lax", "strict"}, f"{name}: {header}"


def test_cookies_are_secure_httponly_samesite(settings, db, make_user, csrf_token):
    from flask_login import login_user

    from assessment.app import create_app

    assert dataclasses.is_dataclass(Settings)
    secure = create_app(dataclasses.replace(settings, cookie_secure=True), TESTING=True)
    try:
        client = secure.test_client()
        user = make_user("candidate")
        page = client.get("/signin", base_url="https://localhost")
        for header in page.headers.getlist("Set-Cookie"):
            _assert_strict_cookie(header)
        token = csrf_token(client)
        resp = client.post("/signin", base_url="https://localhost",
                           data={"email": user.email, "password": PASSWORD, "csrf_token": token})
        assert resp.status_code == 302
        cookies = resp.headers.getlist("Set-Cookie")
        assert any(c.startswith(secure.config.get("SESSION_COOKIE_NAME", "session") + "=")
                   for c in cookies), cookies
        for header in cookies:
            _assert_strict_cookie(header)

        # the sign-in form sets no remember cookie; should one ever be set, it is as strict
        with secure.test_request_context("/", base_url="https://localhost"):
            login_user(db.get(User, user.id), remember=True)
            response = secure.process_response(secure.response_class("x"))
            remember = [c for c in response.headers.getlist("Set-Cookie")
                        if c.startswith(secure.config.get("REMEMBER_COOKIE_NAME",
                                                          "remember_token") + "=")]
            assert remember, response.headers.getlist("Set-Cookie")
            for header in remember:
                _assert_strict_cookie(header)
    finally:
        secure.extensions["microcred.database"].dispose()


# ---------------------------------------------------------------- headers and inline script


def test_security_headers_on_html_and_json(client, make_user, signin):
    for resp in (client.get("/signin"), client.get("/nowhere"), client.get("/healthz"),
                 client.get("/api/attempts/1/state")):
        _assert_security_headers(resp)
    assert client.get("/healthz").is_json
    api = client.get("/api/attempts/1/state")
    assert api.status_code == 401 and api.is_json
    assert api.headers["Cache-Control"] == "no-store"
    signin(client, make_user("candidate"))
    page = client.get("/exams")
    assert page.status_code == 200 and page.mimetype == "text/html"
    _assert_security_headers(page)
    missing = client.get("/api/attempts/999999/state")
    assert missing.is_json and missing.status_code == 404
    _assert_security_headers(missing)


def test_no_template_has_an_inline_script():
    offenders = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        found = _inline_scripts(path.read_text(encoding="utf-8"))
        if found:
            offenders[str(path.relative_to(TEMPLATES))] = found
    assert not offenders, offenders


def test_no_page_any_role_reaches_renders_inline_script(app, client, db, make_user, signin,
                                                        csrf_token, demo_exam, build_exam):
    from proctoring.assignments import assign
    from proctoring.models import ProctorSession

    candidate, proctor = make_user("candidate"), make_user("proctor")
    psychometrician, admin = make_user("psychometrician"), make_user("admin")
    proctored = build_exam(db, code="SEC-P", policy={"proctoring": {
        "identity": "proctor", "review": "flagged", "fullscreen": False}})
    assign(db, proctor, proctored, admin)
    db.commit()

    pages: dict[str, dict[str, str]] = {"anonymous": _crawl(client, ["/", "/signin", "/verify"])}

    signin(client, candidate)
    token = csrf_token(client)
    started = client.post(f"/exams/{demo_exam.code}/start", data={"agree": "yes",
                                                                  "csrf_token": token})
    runner = urlsplit(started.headers["Location"]).path
    gate = client.post(f"/exams/{proctored.code}/start", data={"agree": "yes",
                                                               "csrf_token": token})
    identity = urlsplit(gate.headers["Location"]).path
    assert identity.startswith("/proctoring/identity/")
    seeds = ["/", runner, identity, "/wallet"]
    pages["candidate"] = _crawl(client, seeds)
    attempt_id = int(runner.rsplit("/", 1)[1])
    done = client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True},
                       headers={"X-CSRFToken": token})
    assert done.status_code == 200, done.json
    pages["candidate"].update(_crawl(client, [f"/attempts/{attempt_id}/result"]))
    client.post("/signout", data={"csrf_token": token})

    db.rollback()
    sid = db.scalar(select(ProctorSession.id).where(ProctorSession.exam_id == proctored.id))
    for role, user, extra in (("proctor", proctor, [f"/proctor/sessions/{sid}"]),
                              ("psychometrician", psychometrician, []),
                              ("admin", admin, [f"/proctor/sessions/{sid}"])):
        c = app.test_client()
        signin(c, user)
        pages[role] = _crawl(c, ["/", *extra])

    expected = {
        "anonymous": {"/signin"},
        "candidate": {"/exams", f"/exams/{demo_exam.code}", runner, identity,
                      f"/attempts/{attempt_id}/result"},
        "proctor": {"/proctor", "/proctor/review", f"/proctor/sessions/{sid}"},
        "psychometrician": set(),
        "admin": {"/admin/", "/proctor", "/proctor/assignments", f"/proctor/sessions/{sid}"},
    }
    for role, paths in expected.items():
        assert paths <= set(pages[role]), (role, sorted(pages[role]))
        assert pages[role], role
    offenders = {(role, path): _inline_scripts(html)
                 for role, crawled in pages.items() for path, html in crawled.items()
                 if _inline_scripts(html)}
    assert not offenders, offenders
    # the pages that run code load it from files
    assert re.search(r'<script type="module" src="/static/[^"]+\.js"', pages["candidate"][runner])


# ---------------------------------------------------------------- CSRF


def test_form_post_without_csrf_token_is_refused(client, make_user, signin, db):
    user = make_user("candidate")
    resp = client.post("/signin", data={"email": user.email, "password": PASSWORD})
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    text = resp.get_data(as_text=True)
    assert "CSRF token is missing" in text and "reload the page" in text
    assert _count(db, SigninAttempt) == 0
    assert not _signed_in(client)

    signin(client, user)
    out = client.post("/signout")
    assert out.status_code == 400 and "CSRF token" in out.get_data(as_text=True)
    assert _signed_in(client)
    bad = client.post("/signout", data={"csrf_token": "forged"})
    assert bad.status_code == 400 and "CSRF token" in bad.get_data(as_text=True)
    assert _signed_in(client)


def test_json_post_without_csrf_header_is_refused_with_json(client, make_user, signin, csrf_token,
                                                            demo_exam):
    signin(client, make_user("candidate"))
    token = csrf_token(client)
    started = client.post(f"/exams/{demo_exam.code}/start", data={"agree": "yes",
                                                                  "csrf_token": token})
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[1])
    items = client.get(f"/api/attempts/{attempt_id}/state").json["items"]
    item = next(i for i in items if i["type"] == "single_choice")  # the order is shuffled
    body = {"saves": [{"seq": 1, "item": item["id"], "value": "B"}], "position": 0}
    for headers in ({}, {"X-CSRFToken": "forged"}):
        resp = client.post(f"/api/attempts/{attempt_id}/saves", json=body, headers=headers)
        assert resp.status_code == 400 and resp.is_json, resp.get_data(as_text=True)[:300]
        assert resp.json["error"] == "csrf" and "CSRF token" in resp.json["message"]
    assert client.get(f"/api/attempts/{attempt_id}/state").json["last_seq"] == 0
    ok = client.post(f"/api/attempts/{attempt_id}/saves", json=body, headers={"X-CSRFToken": token})
    assert ok.status_code == 200, ok.json
    anonymous = client.application.test_client()
    resp = anonymous.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True})
    assert resp.status_code == 400 and resp.json["error"] == "csrf"


# ---------------------------------------------------------------- roles


STAFF_PAGES = ["/admin/", "/admin/credentials", "/admin/achievements", "/proctor",
               "/proctor/review", "/proctor/assignments", "/proctor/sessions/1",
               "/proctor/images/1"]


def test_candidate_is_forbidden_staff_pages(client, make_user, signin, csrf_token, db):
    signin(client, make_user("candidate"))
    token = csrf_token(client)
    for path in STAFF_PAGES:
        resp = client.get(path)
        assert resp.status_code == 403, path
        assert "you may not see this page" in resp.get_data(as_text=True), path
    api = client.get("/api/proctoring/console")
    assert api.status_code == 403 and api.json["error"] == "forbidden"
    action = client.post("/api/proctoring/sessions/1/actions/admit", json={},
                         headers={"X-CSRFToken": token})
    assert action.status_code == 403 and action.json["error"] == "forbidden"
    users_before = _count(db, User)
    form = client.post("/admin/users", data={"csrf_token": token, "email": "new@example.org",
                                             "password": "long enough pass", "role": "admin",
                                             "display_name": "Intruder"})
    assert form.status_code == 403
    assert client.post("/proctor/sessions/1/actions/admit",
                       data={"csrf_token": token}).status_code == 403
    assert _count(db, User) == users_before


def test_other_roles_stay_in_their_lane(app, make_user, signin):
    proctor, psych = app.test_client(), app.test_client()
    signin(proctor, make_user("proctor"))
    signin(psych, make_user("psychometrician"))
    for path in ("/admin/", "/admin/credentials", "/proctor/assignments", "/exams"):
        assert proctor.get(path).status_code == 403, path
    for path in ("/admin/", "/proctor", "/proctor/review", "/exams"):
        assert psych.get(path).status_code == 403, path
    assert proctor.get("/proctor").status_code == 200


def test_anonymous_is_sent_to_signin_or_gets_401_json(client):
    for path in ["/", "/exams", "/exams/T-EXAM", "/attempts/1", "/wallet", *STAFF_PAGES]:
        resp = client.get(path)
        assert resp.status_code == 302, path
        location = urlsplit(resp.headers["Location"])
        assert location.path == "/signin", (path, resp.headers["Location"])
    for path in ["/api/attempts/1/state", "/api/attempts/1/heartbeat", "/api/proctoring/console",
                 "/api/proctoring/identity/1"]:
        resp = client.get(path)
        assert resp.status_code == 401 and resp.is_json, path
        assert resp.json == {"error": "not_signed_in", "message": "sign in first"}, path


@pytest.mark.production_hashes
def test_passwords_are_hashed_with_argon2id(client, make_user, signin, csrf_token, db):
    user = make_user("admin")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    params = dict(p.split("=") for p in user.password_hash.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2
    signin(client, user)
    resp = client.post("/admin/users", data={
        "csrf_token": csrf_token(client), "email": "Made.By.Admin@Example.org",
        "password": "another long password", "role": "proctor", "display_name": "Made"})
    assert resp.status_code == 303
    db.rollback()
    made = db.scalar(select(User).where(User.email == "made.by.admin@example.org"))
    assert made is not None and made.password_hash.startswith("$argon2id$")
    assert made.check_password("another long password")
    assert not made.check_password("another long passwore")
