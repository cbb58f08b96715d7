"""Issue 9's sign-in findings, each against the real app on SQLite and PostgreSQL:

- 4: every ``next`` (sign-in, proctor actions) and the proctoring error's way back stay on
  this site, whatever is sent (tab, CR/LF, ``//x``, backslashes, schemes, percent-encoding,
  look-alike Unicode), and none gives a 500;
- 5: sign-out, a password change and an admin's deactivation end sessions on the server: a
  replayed copy of an old session (or remember) cookie signs nobody in;
- 10: sign-in tries are counted exactly under concurrency (threads against a live server; the
  database counter and real Redis), with growing delays per account-and-address and per address,
  so a stranger cannot lock a candidate out;
- 11: passwords follow NIST SP 800-63B (length, no common or guessable password, none built on
  the user's own words) wherever one is set, with a message that says why;
- 12: the SQLite database and its -wal/-shm files are created owner-only (0600).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import stat
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from assessment.signin_throttle import (
    Backoff,
    DatabaseCounters,
    RedisCounters,
    SigninCounter,
    SigninThrottle,
)
from assessment.users import SigninAttempt, User, password_problem
from microcred.web import safe_next

PASSWORD = "correct horse battery staple"  # tests/conftest.py's make_user password
REDIS_URL = os.environ.get("MICROCRED_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
THROTTLED = "Too many failed sign-ins"


def _flash(html: str) -> list[str]:
    return re.findall(r'<p class="flash flash-\w+">(.*?)</p>', html, re.DOTALL)


def _token(client, **kw) -> str:
    page = client.get("/signin", follow_redirects=True, **kw).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def _count(db, model) -> int:
    db.rollback()
    return int(db.scalar(select(func.count()).select_from(model)))


# ================================================================ 4: where ``next`` may lead

#: Values an attacker puts in ``next``. The first is the reported one (a tab the header writer
#: drops, leaving ``//evil.example``); CR/LF used to raise in the header writer (500).
HOSTILE_NEXT = [
    "/\t/evil.example/phish",
    "/%09/evil.example/phish",
    "/x\r\nSet-Cookie: pwned=1",
    "/x\rLocation: https://evil.example",
    "/\n/evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%5Cevil.example",
    "https://evil.example/x",
    "HTTPS:evil.example",
    "http:/evil.example",
    "/%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "%2F%2Fevil.example",
    "javascript:alert(1)",
    " //evil.example",
    "/\u00a0/evil.example",
    "/\u200b/evil.example",
    "/\u2028/evil.example",
    "/\uff0f\uff0fevil.example",
    "/\uff3cevil.example",
    "evil.example",
    "?next=//evil.example",
    "/" + "a" * 5000,
]
#: Paths that are this site's own: followed, so the helper is not simply "always the default".
SAME_SITE_NEXT = ["/exams", "/exams?code=A%20B", "/attempts/3/result", "/caf\u00e9"]


def _browser_target(location: str, base: str = "http://localhost/") -> tuple[str, str]:
    """Where a browser goes for ``location``: it drops tab/CR/LF and reads ``\\`` as ``/``."""
    cleaned = re.sub(r"[\t\r\n]", "", location).replace("\\", "/")
    target = urlsplit(urljoin(base, cleaned))
    return target.scheme, target.netloc


def _assert_same_site(resp, default_path: str | None = None) -> None:
    assert resp.status_code in (302, 303), (resp.status_code, resp.get_data(as_text=True)[:300])
    location = resp.headers["Location"]
    assert not re.search(r"[\x00-\x20\x7f\\]", location), repr(location)
    assert _browser_target(location) == ("http", "localhost"), repr(location)
    if default_path is not None:
        assert urlsplit(location).path == default_path, repr(location)


@pytest.mark.parametrize("value", HOSTILE_NEXT + [None, ""])
def test_safe_next_refuses_every_off_site_value(value):
    assert safe_next(value, "/home") == "/home"


@pytest.mark.parametrize("value", SAME_SITE_NEXT)
def test_safe_next_keeps_same_site_paths(value):
    kept = safe_next(value, "/home")
    assert kept != "/home" and kept.isascii()
    assert urllib.parse.unquote(kept) == urllib.parse.unquote(value)


def test_signin_next_never_leaves_the_site(app, make_user, signin):
    """The reported flow (GET /signin?next=..., then the form) and a forged form field alike."""
    user = make_user("candidate")
    for value in HOSTILE_NEXT:
        client = app.test_client()
        page = client.get("/signin?next=" + urllib.parse.quote(value, safe=""))
        assert page.status_code == 200, value
        carried = re.search(r'name="next" value="([^"]*)"', page.get_data(as_text=True)).group(1)
        assert carried == "", (value, carried)
        for next_value in (carried, value):
            resp = client.post("/signin", data={"email": user.email, "password": PASSWORD,
                                                "csrf_token": _token(client), "next": next_value})
            _assert_same_site(resp, "/")
            client.post("/signout", data={"csrf_token": _token(client)})
    for value in SAME_SITE_NEXT:
        client = app.test_client()
        resp = client.post("/signin", data={"email": user.email, "password": PASSWORD,
                                            "csrf_token": _token(client), "next": value})
        _assert_same_site(resp)
        assert urllib.parse.unquote(resp.headers["Location"]) == urllib.parse.unquote(value)


def _proctored_session(db, make_user, build_exam, app, signin):
    from proctoring.assignments import assign
    from proctoring.models import ProctorSession

    proctor, admin, candidate = make_user("proctor"), make_user("admin"), make_user("candidate")
    exam = build_exam(db, code="NEXT-P", policy={"proctoring": {
        "identity": "proctor", "review": "flagged", "fullscreen": False}})
    assign(db, proctor, exam, admin)
    db.commit()
    cand = signin(app.test_client(), candidate)
    gate = cand.post(f"/exams/{exam.code}/start", data={"agree": "yes", "csrf_token": _token(cand)})
    assert gate.status_code == 302
    db.rollback()
    sid = db.scalar(select(ProctorSession.id).where(ProctorSession.exam_id == exam.id))
    return signin(app.test_client(), proctor), sid


def test_proctor_actions_follow_only_same_site_next(app, db, make_user, build_exam,
                                                     signin):
    staff, sid = _proctored_session(db, make_user, build_exam, app, signin)
    token = _token(staff)
    back = f"/proctor/sessions/{sid}"
    for value in HOSTILE_NEXT:
        resp = staff.post(f"/proctor/sessions/{sid}/actions/note",
                          data={"csrf_token": token, "text": "checked the room", "next": value})
        _assert_same_site(resp, back)
    for value in ("/proctor", "/proctor/review?state=open"):
        resp = staff.post(f"/proctor/sessions/{sid}/actions/note",
                          data={"csrf_token": token, "text": "checked", "next": value})
        _assert_same_site(resp)
        assert resp.headers["Location"] == value

    # a refused action goes back to the page it came from only when that page is on this site
    refused = {"csrf_token": token, "reason": "not yet"}
    url = f"/proctor/sessions/{sid}/actions/resume"  # the session is not paused
    for referrer in ("https://evil.example/proctor", "http://localhost.evil.example/x",
                     "http://localhost/\t/evil.example", "http://localhost//evil.example"):
        resp = staff.post(url, data=refused, headers={"Referer": referrer})
        assert resp.status_code < 500, referrer
        if resp.status_code in (302, 303):
            _assert_same_site(resp)
    resp = staff.post(url, data=refused, headers={"Referer": f"http://localhost{back}"})
    _assert_same_site(resp, back)


# ================================================================ 5: sessions end on the server


def _cookie(client, name: str = "session") -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


def _replay(app, value: str, name: str = "session") -> int:
    """GET /exams in a new browser that has only a copy of the cookie: 200 if it signs in."""
    thief = app.test_client()
    thief.set_cookie(name, value, domain="localhost")
    resp = thief.get("/exams")
    if resp.status_code == 302:
        assert urlsplit(resp.headers["Location"]).path == "/signin"
    return resp.status_code


def test_signout_ends_the_session_for_replayed_cookies(app, make_user, signin):
    user = make_user("candidate")
    client = signin(app.test_client(), user)
    copied = _cookie(client)
    assert _replay(app, copied) == 200  # the copy works while the session lasts
    client.post("/signout", data={"csrf_token": _token(client)})
    assert _replay(app, copied) == 302
    assert client.get("/exams").status_code == 302
    # a browser holding the ended cookie can sign in again (on SQLite loading it opens the
    # request's write transaction: the throttle must not wait on it)
    holder = app.test_client()
    holder.set_cookie("session", copied, domain="localhost")
    again = holder.post("/signin", data={"email": user.email, "password": PASSWORD,
                                         "csrf_token": _token(holder)})
    assert again.status_code == 302 and holder.get("/exams").status_code == 200
    holder.post("/signout", data={"csrf_token": _token(holder)})
    # signing in again gives a working session; the old copy stays dead
    client = signin(app.test_client(), user)
    assert client.get("/exams").status_code == 200
    assert _replay(app, copied) == 302


def test_signout_ends_the_remember_cookie_too(app, db, make_user, signin):
    from flask_login import login_user

    user = make_user("candidate")
    with app.test_request_context("/"):
        login_user(db.get(User, user.id), remember=True)
        response = app.process_response(app.response_class("x"))
    name = app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "="))
    remember = header.split(";", 1)[0].split("=", 1)[1]
    assert _replay(app, remember, name) == 200  # a remember cookie alone signs in

    other = signin(app.test_client(), user)
    other.post("/signout", data={"csrf_token": _token(other)})
    assert _replay(app, remember, name) == 302


NEW_PASSWORD = "quartz lantern orbit 47 meadow"


def _change_password(client, current: str, new: str, confirm: str | None = None):
    return client.post("/account/password", data={
        "csrf_token": _token(client), "current_password": current, "new_password": new,
        "confirm_password": new if confirm is None else confirm})


def test_password_change_ends_every_other_session(app, db, make_user, signin):
    user = make_user("candidate")
    here, elsewhere = signin(app.test_client(), user), signin(app.test_client(), user)
    copied = _cookie(here)
    page = here.get("/account/password")
    assert page.status_code == 200 and 'autocomplete="new-password"' in page.get_data(as_text=True)

    # refusals say why and change nothing: no session ends
    for current, new, confirm, why in (
        ("wrong password here", NEW_PASSWORD, None, "your current password is not the one"),
        (PASSWORD, NEW_PASSWORD, "something else", "confirmation are different"),
        (PASSWORD, "aaaaaaaaaa", None, "too easy to guess"),
        (PASSWORD, "short", None, "at least 8 characters"),
        (PASSWORD, PASSWORD, None, "same as the current one"),
    ):
        resp = _change_password(here, current, new, confirm)
        assert resp.status_code == 400, why
        (message,) = _flash(resp.get_data(as_text=True))
        assert message.startswith("Password not changed: ") and why in message, message
        assert elsewhere.get("/exams").status_code == 200
    db.rollback()
    assert db.get(User, user.id).check_password(PASSWORD)

    done = _change_password(here, PASSWORD, NEW_PASSWORD)
    assert done.status_code == 303
    assert here.get("/exams").status_code == 200  # this browser carries on
    assert elsewhere.get("/exams").status_code == 302  # every other one is signed out
    assert _replay(app, copied) == 302
    fresh = app.test_client()
    old = fresh.post("/signin", data={"email": user.email, "password": PASSWORD,
                                      "csrf_token": _token(fresh)})
    assert old.status_code == 401
    signin(app.test_client(), user, NEW_PASSWORD)


def test_deactivation_ends_sessions_and_reactivation_does_not_revive_them(app, db, make_user, signin):
    admin, user = make_user("admin"), make_user("candidate")
    staff, candidate = signin(app.test_client(), admin), signin(app.test_client(), user)
    copied = _cookie(candidate)
    assert candidate.get("/exams").status_code == 200
    assert 'action="/admin/users/status"' in staff.get("/admin/").get_data(as_text=True)

    def status(email: str, action: str) -> str:
        resp = staff.post("/admin/users/status", data={"csrf_token": _token(staff),
                                                       "email": email, "action": action})
        assert resp.status_code == 303
        return " ".join(_flash(staff.get("/admin/").get_data(as_text=True)))

    assert "deactivated" in status(user.email.upper(), "deactivate")
    assert candidate.get("/exams").status_code == 302
    assert _replay(app, copied) == 302
    assert "reactivated" in status(user.email, "reactivate")
    assert _replay(app, copied) == 302 and candidate.get("/exams").status_code == 302
    assert signin(app.test_client(), user).get("/exams").status_code == 200

    assert "cannot deactivate your own account" in status(admin.email, "deactivate")
    assert "no user with email" in status("nobody@example.org", "deactivate")
    assert "unknown action" in status(user.email, "delete")
    assert staff.get("/admin/").status_code == 200


# ================================================================ 10: exact counts, growing delays


def _redis_or_skip():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} did not answer ({exc.__class__.__name__}: {exc}); "
                    "the Redis half of the throttling tests is skipped")
    return client


@pytest.fixture(params=["database", "redis"])
def counters(request, app):
    """The app's counter store of each kind (Redis under a prefix of its own, removed after)."""
    database = app.extensions["microcred.database"]
    if request.param == "database":
        yield DatabaseCounters(database)
        return
    client = _redis_or_skip()
    prefix = f"microcred-test:{uuid.uuid4().hex}:"
    yield RedisCounters(REDIS_URL, fallback=DatabaseCounters(database), prefix=prefix)
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


def _use(app, counters, **backoff) -> SigninThrottle:
    settings = dataclasses.replace(app.config["MICROCRED"], **backoff)
    throttle = SigninThrottle.from_settings(settings, app.extensions["microcred.database"])
    throttle.counters = counters
    app.extensions["microcred.signin_throttle"] = throttle
    return throttle


def _burst(url: str, forms: list[dict[str, str]]) -> list[int]:
    """POST every form to the live server at the same moment, one thread each."""
    codes: list[int] = [0] * len(forms)
    start = threading.Barrier(len(forms))

    def post(i: int) -> None:
        body = urllib.parse.urlencode(forms[i]).encode()
        start.wait()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=60) as r:
                codes[i] = r.status
        except urllib.error.HTTPError as exc:
            codes[i] = exc.code

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(forms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return codes


@pytest.fixture
def live_app(app, live_server):
    """The app served by a threaded server, CSRF off (the burst comes from scripts)."""
    app.config["WTF_CSRF_ENABLED"] = False
    return live_server


def test_concurrent_wrong_passwords_never_pass_the_limit(app, live_app, counters, db, make_user):
    throttle = _use(app, counters, signin_max_failures_per_account=5,
                    signin_max_failures_per_address=9, signin_backoff_base_seconds=120)
    user = make_user("candidate")
    wrong = {"email": user.email, "password": "not the password at all"}
    codes = _burst(f"{live_app.url}/signin", [wrong] * 20)
    assert sorted(codes) == [401] * 5 + [429] * 15, codes
    assert _count(db, SigninAttempt) == 5  # exactly five passwords were checked

    # per address: 4 tries are left of the address's 9; twelve accounts at once get exactly 4
    forms = [{"email": f"guess{i}@example.org", "password": "guessing-away"} for i in range(12)]
    codes = _burst(f"{live_app.url}/signin", forms)
    assert sorted(codes) == [401] * 4 + [429] * 8, codes
    assert _count(db, SigninAttempt) == 9
    if isinstance(throttle.counters, RedisCounters):
        # Redis really held the counts: the database fallback was never used
        assert _count(db, SigninCounter) == 0
        assert list(throttle.counters.client.scan_iter(throttle.counters.prefix + "*"))
    else:
        assert _count(db, SigninCounter) >= 2


def test_delays_grow_to_the_cap_per_account_and_address(app, counters, clock):
    clock.set(dt.datetime.fromtimestamp(1_900_000_000, dt.UTC))
    throttle = _use(app, counters, signin_max_failures_per_account=3,
                    signin_max_failures_per_address=100, signin_backoff_base_seconds=2,
                    signin_backoff_cap_seconds=20)
    email, here, there = "cand@example.org", "192.0.2.1", "198.51.100.2"
    assert [throttle.reserve(email, here) for _ in range(3)] == [0, 0, 0]
    waits = []
    for _ in range(6):  # each try is allowed once the last wait is over, and doubles it
        wait = throttle.reserve(email, here)
        waits.append(wait)
        assert throttle.reserve(email, here) == wait  # refused tries do not add to it
        clock.advance(wait)
        assert throttle.reserve(email, here) == 0
    assert waits == [2, 4, 8, 16, 20, 20]
    assert Backoff(3, 2, 20, 60).wait_after(3) == 2 and Backoff(3, 2, 20, 60).wait_after(9) == 20
    # the same account from another address is not slowed at all
    assert throttle.reserve(email, there) == 0
    # a success clears the account-and-address count: three free tries again
    throttle.succeeded(email, here)
    assert [throttle.reserve(email, here) for _ in range(3)] == [0, 0, 0]
    assert throttle.reserve(email, here) == 2


def test_database_counters_are_forgotten_after_the_window(app, db, clock):
    clock.set(dt.datetime.fromtimestamp(1_900_000_000, dt.UTC))
    throttle = _use(app, DatabaseCounters(app.extensions["microcred.database"]),
                    signin_max_failures_per_account=2, signin_window_seconds=600)
    assert [throttle.reserve("a@example.org", "192.0.2.9") for _ in range(3)] == [0, 0, 2]
    clock.advance(2 + 600 + 1)
    assert [throttle.reserve("a@example.org", "192.0.2.9") for _ in range(3)] == [0, 0, 2]


def test_redis_down_falls_back_to_the_database(app, db):
    counters = RedisCounters("redis://127.0.0.1:1/0",
                             fallback=DatabaseCounters(app.extensions["microcred.database"]))
    throttle = _use(app, counters, signin_max_failures_per_account=2)
    assert [throttle.reserve("b@example.org", "192.0.2.3") for _ in range(3)] == [0, 0, 2]
    assert _count(db, SigninCounter) == 2
    throttle.succeeded("b@example.org", "192.0.2.3")
    assert throttle.reserve("b@example.org", "192.0.2.3") == 0


def test_a_stranger_cannot_lock_a_candidate_out(app, make_user, db):
    """The reported abuse: five wrong tries used to lock the account for 15 minutes."""
    user = make_user("candidate")
    stranger, candidate = {"REMOTE_ADDR": "203.0.113.66"}, {"REMOTE_ADDR": "198.51.100.7"}
    attacker = app.test_client()
    token = _token(attacker, environ_base=stranger)
    codes = [attacker.post("/signin", environ_base=stranger, data={
        "email": user.email, "password": f"guess number {i}", "csrf_token": token}).status_code
        for i in range(8)]
    assert codes == [401] * 5 + [429] * 3
    wait = attacker.post("/signin", environ_base=stranger, data={
        "email": user.email, "password": PASSWORD, "csrf_token": token})
    assert wait.status_code == 429 and THROTTLED in wait.get_data(as_text=True)
    assert int(wait.headers["Retry-After"]) >= 1

    own = app.test_client()
    resp = own.post("/signin", environ_base=candidate, data={
        "email": user.email, "password": PASSWORD, "csrf_token": _token(own, environ_base=candidate)})
    assert resp.status_code == 302
    assert own.get("/exams", environ_base=candidate).status_code == 200


# ================================================================ 11: passwords


@pytest.mark.parametrize(("password", "why"), [
    ("aaaaaaaaaa", "repeats"),
    ("password1", "common password"),
    ("Password123!", "commonly used password"),
    ("qwertyuiop", "common password"),
    ("1234567890", "common password"),
    ("short", "at least 8 characters"),
    ("x" * 257, "at most 256 characters"),
    ("microcred2026!", "built on your email, your name or the site's name"),
    ("jane.doe@example.org", "built on your email, your name or the site's name"),
    ("janedoe1985", "built on your email, your name or the site's name"),
    ("doe-jane-2026", "built on your email, your name or the site's name"),
])
def test_guessable_passwords_are_refused_with_the_reason(password, why):
    problem = password_problem(password, ("jane.doe@example.org", "Jane Doe"))
    assert problem is not None and why in problem, problem


#: 256 characters, the most a password may have (NIST asks for at least 64).
LONGEST = ("velvet harbor quince 19 anvil meadow sprocket lumen " * 5 + "x" * 256)[:256]


@pytest.mark.parametrize("password", [
    PASSWORD, NEW_PASSWORD, "Tr0ub4dor&3 sails east", "8392057163829147",
    "Kasia Wójcik ąęść żółw", LONGEST,
])
def test_strong_passwords_of_any_form_are_accepted(password):
    assert len(password) <= 256
    assert password_problem(password, ("jane.doe@example.org", "Jane Doe")) is None


def test_admin_form_refuses_a_guessable_password_and_says_why(app, db, make_user, signin):
    staff = signin(app.test_client(), make_user("admin"))
    before = _count(db, User)
    for password, why in (("aaaaaaaaaa", "too easy to guess"), ("Pat Lee 2026", "your name")):
        resp = staff.post("/admin/users", data={
            "csrf_token": _token(staff), "email": "pat.lee@example.org", "password": password,
            "role": "candidate", "display_name": "Pat Lee"})
        assert resp.status_code == 303
        (message,) = _flash(staff.get("/admin/").get_data(as_text=True))
        assert message.startswith("User not created: ") and why in message, message
    assert _count(db, User) == before


def test_cli_user_add_refuses_a_guessable_password(database_url, db, tmp_path):
    from assessment.cli import main

    env = {"MICROCRED_DATABASE_URL": database_url, "MICROCRED_INSTANCE_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["user", "add", "--email", "sam@example.org", "--name",
                                       "Sam", "--role", "admin", "--password", "aaaaaaaaaa"],
                                env=env)
    assert result.exit_code == 1 and "too easy to guess" in result.output, result.output
    assert _count(db, User) == 0


def test_cli_sets_passwords_and_deactivates_ending_sessions(app, database_url, db, tmp_path,
                                                            make_user, signin):
    from assessment.cli import main

    env = {"MICROCRED_DATABASE_URL": database_url, "MICROCRED_INSTANCE_DIR": str(tmp_path)}
    user = make_user("admin")
    client = signin(app.test_client(), user)

    def cli(*args: str):
        return CliRunner().invoke(main, ["user", *args], env=env)

    weak = cli("password", "--email", user.email, "--password", "aaaaaaaaaa")
    assert weak.exit_code == 1 and "too easy to guess" in weak.output
    assert client.get("/admin/").status_code == 200
    done = cli("password", "--email", user.email.upper(), "--password", NEW_PASSWORD)
    assert done.exit_code == 0, done.output
    assert client.get("/admin/").status_code == 302
    client = signin(app.test_client(), user, NEW_PASSWORD)

    off = cli("deactivate", user.email)
    assert off.exit_code == 0 and "deactivated" in off.output, off.output
    assert client.get("/admin/").status_code == 302
    assert cli("deactivate", user.email, "--reactivate").exit_code == 0
    assert client.get("/admin/").status_code == 302  # reactivation revives no old session
    signin(app.test_client(), user, NEW_PASSWORD)
    missing = cli("deactivate", "nobody@example.org")
    assert missing.exit_code == 1 and "no user with email" in missing.output


def test_demo_passwords_pass_the_checks():
    """The demo's users are made with ``create_user``, which refuses a weak password; the
    passwords it draws pass (tests/test_cli.py signs in with each of them)."""
    from assessment.demo_program import DEMO_USERS, _demo_password

    drawn = [(email, name, _demo_password(email, name)) for _ in range(25)
             for _role, email, name in DEMO_USERS]
    assert len({password for _, _, password in drawn}) == len(drawn)
    for email, name, password in drawn:
        assert password_problem(password, (email, name)) is None


# ================================================================ 12: the database file's mode


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_database_and_its_wal_are_created_owner_only(tmp_path):
    from sqlalchemy import text

    from assessment.cli import main
    from assessment.database import Database

    old_umask = os.umask(0o022)  # the usual umask, under which files come out 0644
    try:
        instance = tmp_path / "instance"
        env = {"MICROCRED_INSTANCE_DIR": str(instance)}
        env_without_url = {**env, "MICROCRED_DATABASE_URL": None}  # the default: instance/
        result = CliRunner().invoke(main, ["init"], env=env_without_url)
        assert result.exit_code == 0, result.output
        path = instance / "microcred.db"
        database = Database(f"sqlite:///{path}")
        with database.session() as session:
            session.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
            session.commit()
            files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
            assert all(f.exists() for f in files), files
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        database.dispose()

        # a database left world-readable by an older version is closed to others when opened
        loose = tmp_path / "loose.db"
        loose.touch()
        loose.chmod(0o644)
        Database(f"sqlite:///{loose}").dispose()
        assert _mode(loose) == 0o600
    finally:
        os.umask(old_umask)


def test_a_try_that_imposes_no_wait_does_not_refuse_a_concurrent_one(app, counters, clock):
    """Two workers read the clock, then reserve in the other order: while tries are free, the
    later reservation with the slightly older reading is not refused (CI refused it on
    PostgreSQL when "no wait" was stored as "blocked until now")."""
    clock.set(dt.datetime.fromtimestamp(1_900_000_000, dt.UTC))
    throttle = _use(app, counters, signin_max_failures_per_account=5,
                    signin_max_failures_per_address=9, signin_backoff_base_seconds=120)
    assert throttle.reserve("cand@example.org", "192.0.2.1") == 0
    clock.advance(-0.25)  # the next reservation's clock reading was taken a moment earlier
    assert throttle.reserve("cand@example.org", "192.0.2.1") == 0
    assert throttle.reserve("other@example.org", "192.0.2.1") == 0
