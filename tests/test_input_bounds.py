"""Issue 9, findings 7, 8 and 9: every value from outside is bounded at the edge, the same bad
input gives the same clear 4xx on SQLite and PostgreSQL, and nothing of it is stored.

The fuzz tests (test_fuzz.py) look for 5xx everywhere; these pin each reported case down, on
both databases."""
from __future__ import annotations

import json
import logging
import re

import pytest
from sqlalchemy import func, select, update

from assessment.users import Accommodation
from credentials.models import Achievement, Credential
from microcred.inputs import IdConverter, InvalidInput, parse_json, parse_timestamp

HUGE_IDS = (2**31, 2**63, 2**64, -1)


class People(dict):
    """role -> (signed-in client, its CSRF token, the user), signed in on first use (each
    sign-in hashes a password: only the roles a test uses are made)."""

    def __init__(self, app, make_user, signin, csrf_token) -> None:
        super().__init__()
        self._make = (app, make_user, signin, csrf_token)

    def __missing__(self, role: str):
        app, make_user, signin, csrf_token = self._make
        client = app.test_client()
        user = None if role == "anonymous" else make_user(role)
        if user is not None:
            signin(client, user)
        self[role] = (client, csrf_token(client), user)
        return self[role]


ROLES = ("anonymous", "candidate", "proctor", "admin")


@pytest.fixture
def people(app, make_user, signin, csrf_token) -> People:
    return People(app, make_user, signin, csrf_token)


def _count(db, model, *where) -> int:
    db.commit()  # end the test session's snapshot: see what the app committed
    return db.scalar(select(func.count()).select_from(model).where(*where))


def _flashes(client) -> str:
    return client.get("/admin/achievements").get_data(as_text=True)


# --- finding 8: ids ------------------------------------------------------------------------------

def test_every_numeric_route_answers_404_for_ids_out_of_range(app, people):
    """Every ``<int:...>`` of every route, public ones included, uses the bounded converter:
    ids past the database's INTEGER range (2^31 on PostgreSQL), 2^63, 2^64 and negative ids
    are 404 (or 401/403/405 before the id is looked at), never a driver overflow."""
    walked = 0
    for rule in app.url_map.iter_rules():
        ints = [name for name, conv in rule._converters.items()
                if type(conv).__name__.endswith("Converter") and hasattr(conv, "num_convert")]
        if not ints:
            continue
        for name in ints:
            assert isinstance(rule._converters[name], IdConverter), rule.rule
        for bad in HUGE_IDS:
            path = re.sub(r"<int:\w+>", str(bad), rule.rule)
            path = re.sub(r"<(?:\w+:)?\w+>", "x", path)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for role in ROLES:
                    client, token, _ = people[role]
                    resp = client.open(path, method=method, headers={"X-CSRFToken": token},
                                       data={"csrf_token": token} if method == "POST" else None)
                    walked += 1
                    assert resp.status_code in (302, 401, 403, 404, 405), (
                        role, method, path, resp.status_code)
    assert walked > 100


def test_public_status_list_with_a_huge_id_is_404(client):
    for bad in (2**31, 2**63):
        assert client.get(f"/status/{bad}/revocation").status_code == 404


# --- finding 8: JSON bodies -----------------------------------------------------------------------

DEEP = "[" * 5000 + "]" * 5000


def test_deeply_nested_json_is_a_clear_400_on_every_json_endpoint(app, people, monkeypatch):
    posts = [rule for rule in app.url_map.iter_rules()
             if rule.rule.startswith("/api/") and "POST" in rule.methods
             and not rule.rule.endswith(("/snapshots", "/bank/media"))  # (file uploads)
             and "verify" not in rule.rule]
    assert len(posts) >= 4
    for rule in posts:
        path = re.sub(r"<int:\w+>", "1", rule.rule).replace("<action>", "note")
        role = ("proctor" if "/actions/" in path
                else "psychometrician" if path.startswith("/api/bank/") else "candidate")
        client, token, _ = people[role]
        headers = {"X-CSRFToken": token}
        if path == "/api/training-completions":  # an LMS's route: its token, no session
            monkeypatch.setenv("MICROCRED_LMS_API_TOKEN", "t" * 40)
            headers = {"Authorization": "Bearer " + "t" * 40}
        resp = client.post(path, data=DEEP, content_type="application/json", headers=headers)
        assert resp.status_code == 400, (path, resp.status_code)
        assert resp.get_json()["error"] == "malformed_json"
        assert "deeper than 32 levels" in resp.get_json()["message"]


def test_public_verify_api_reports_deep_json_as_malformed(client):
    for body, kind in ((DEEP, "application/json"), (DEEP, "text/plain")):
        resp = client.post("/api/credentials/verify", data=body, content_type=kind)
        assert resp.status_code == 200
        report = resp.get_json()
        assert report["failed_step"] == "format"
        assert "deeper than 32 levels" in report["steps"][0]["message"]


def test_one_json_reader():
    """The runner's and proctoring's ``_json_body`` twins are gone: one reader for all."""
    from assessment.delivery import views
    from proctoring import candidate

    assert not hasattr(views, "_json_body") and not hasattr(candidate, "_json_body")
    assert parse_json('{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    with pytest.raises(InvalidInput, match="deeper than 3 levels"):
        parse_json("[[[[1]]]]", max_depth=3)
    assert parse_json('["[[[[[[[[["]', max_depth=1) == ["[[[[[[[[["]  # brackets in strings


# --- finding 8: timestamps ------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                   "0001-01-01T00:00:00Z", 5, "yesterday", "2026-01-01T09:00:00"])
def test_timestamps_out_of_range_or_of_the_wrong_kind_are_refused_naming_the_field(value):
    with pytest.raises(InvalidInput) as err:
        parse_timestamp(value, "events[0].at")
    assert err.value.field == "events[0].at" and err.value.status == 400
    assert "events[0].at" in err.value.message


@pytest.fixture
def proctored_attempt(people, build_exam, db):
    """The candidate's running attempt on an exam proctored without an identity check:
    (proctoring session id, candidate client, token)."""
    from proctoring.models import ProctorSession

    exam = build_exam(db, code="B-PROC", policy={"proctoring": {
        "identity": "none", "review": "flagged", "snapshot_interval_s": 30}})
    client, token, _ = people["candidate"]
    started = client.post(f"/exams/{exam.code}/start", data={"agree": "yes", "csrf_token": token})
    assert started.status_code == 302
    db.commit()
    return db.scalar(select(ProctorSession.id)), client, token


def test_event_and_snapshot_times_out_of_range_are_4xx_naming_the_field(proctored_attempt,
                                                                         face_jpeg_small):
    sid, client, token = proctored_attempt
    ancient = "0001-01-01T00:00:00+14:00"
    events = client.post(f"/api/proctoring/sessions/{sid}/events",
                         json={"events": [{"seq": 1, "kind": "copy", "at": ancient}]},
                         headers={"X-CSRFToken": token})
    assert events.status_code == 422 and events.get_json()["field"] == "events[0].at"
    snap = client.post(f"/api/proctoring/sessions/{sid}/snapshots", data=face_jpeg_small,
                       content_type="image/jpeg",
                       headers={"X-CSRFToken": token, "X-Snapshot-Seq": "1",
                                "X-Client-Time": ancient})
    assert snap.status_code == 422 and snap.get_json()["field"] == "X-Client-Time"


def test_a_snapshot_seq_that_int_would_refuse_is_a_422_naming_it(proctored_attempt,
                                                                  face_jpeg_small):
    """"²" is a digit to ``str.isdigit`` and not to ``int``; 5,000 digits are past ``int``'s
    limit: each was a ValueError, a 500."""
    sid, client, token = proctored_attempt
    for seq in ("\xb2", "9" * 5000):
        snap = client.post(f"/api/proctoring/sessions/{sid}/snapshots", data=face_jpeg_small,
                           content_type="image/jpeg",
                           headers={"X-CSRFToken": token, "X-Snapshot-Seq": seq})
        assert snap.status_code == 422 and snap.get_json()["field"] == "X-Snapshot-Seq"


def test_is_whole_says_what_int_takes():
    from microcred.inputs import is_whole

    assert is_whole("0") and is_whole("123") and is_whole("9" * 18)
    for text in ("", "²", "①", "-1", " 1", "1.0", "9" * 19, "9" * 5000):
        assert not is_whole(text), text
    assert is_whole("٣") and int("٣") == 3  # a decimal digit of another script: int takes it


@pytest.fixture
def face_jpeg_small() -> bytes:
    import cv2
    import numpy as np

    _ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
    return buf.tobytes()


def test_wrong_typed_dates_in_the_verify_api_fail_the_dates_step(client):
    from credentials import jwt as vcjwt
    from credentials.errors import MalformedInput

    for value in (5, ["2026-01-01T00:00:00Z"], {"a": 1}, "0001-01-01T00:00:00+14:00"):
        with pytest.raises(MalformedInput):
            vcjwt.parse_datetime(value)
    doc = {"@context": ["https://www.w3.org/ns/credentials/v2"],
           "type": ["VerifiableCredential", "OpenBadgeCredential"], "issuer": "did:web:x",
           "validFrom": 5, "validUntil": ["x"], "credentialSubject": {}}
    resp = client.post("/api/credentials/verify", data=json.dumps(doc),
                       content_type="application/json")
    assert resp.status_code == 200 and resp.get_json()["verified"] is False


# --- finding 8: forms -----------------------------------------------------------------------------

def test_a_form_missing_a_field_is_400_in_debug_mode_too(app):
    """Flask traps BadRequestKeyError in debug mode by default and answers 500."""
    from werkzeug.exceptions import BadRequestKeyError

    app.debug = True
    try:
        assert app.trap_http_exception(BadRequestKeyError("reason")) is False
    finally:
        app.debug = False


def test_a_huge_days_value_is_a_400_naming_days(people):
    client, _, _ = people["admin"]
    for days in ("999999999999", "-5", "2.5"):
        resp = client.get(f"/admin/credentials?days={days}")
        assert resp.status_code == 400
        assert "days must be a whole number from 1 to 36500" in resp.get_data(as_text=True)
    assert client.get("/admin/credentials?days=90").status_code == 200


def test_numeric_admin_fields_out_of_range_are_refused(people, db, build_exam):
    client, token, _ = people["admin"]
    exam = build_exam(db, code="B-NUM")
    for field, value in (("exam_id", str(2**70)), ("exam_id", "999999"),
                         ("validity_days", "999999999"), ("validity_days", "0"),
                         ("stack_required", str(2**64))):
        resp = client.post("/admin/achievements", data={
            "csrf_token": token, "code": "NUM", "name": "Numbers", "exam_id": str(exam.id),
            field: value})
        assert resp.status_code == 302, (field, value)
        assert field in _flashes(client)
    assert _count(db, Achievement) == 0
    cand_email = people["candidate"][2].email
    resp = client.post("/admin/accommodations", data={
        "csrf_token": token, "candidate_email": cand_email, "time_multiplier": "1.5",
        "reason": "approved", "exam_id": str(2**70)}, follow_redirects=True)
    assert "exam_id must be a whole number" in resp.get_data(as_text=True)
    assert _count(db, Accommodation) == 0


# --- finding 7: a badge that cannot be issued -----------------------------------------------------

def _pass_exam(client, token, exam) -> int:
    started = client.post(f"/exams/{exam.code}/start", data={"agree": "yes", "csrf_token": token})
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[1])
    state = client.get(f"/api/attempts/{attempt_id}/state").get_json()
    saves = [{"seq": n, "item": item["id"],
              "value": "B" if item["type"] == "single_choice" else ["A", "C"]}
             for n, item in enumerate(state["items"], start=1)]
    saved = client.post(f"/api/attempts/{attempt_id}/saves", json={"saves": saves},
                        headers={"X-CSRFToken": token})
    assert saved.status_code == 200, saved.get_json()
    return attempt_id


def test_validity_days_is_bounded_where_achievements_are_made(people, db, build_exam, app):
    from credentials import issuance
    from credentials.config import current

    exam = build_exam(db, code="B-VAL")
    client, token, _ = people["admin"]
    resp = client.post("/admin/achievements", data={
        "csrf_token": token, "code": "VAL", "name": "Validity", "exam_id": str(exam.id),
        "validity_days": "999999999"})
    assert resp.status_code == 302
    assert "validity_days must be a whole number from 1 to 36500" in _flashes(client)
    with app.test_request_context(), pytest.raises(issuance.IssuanceError, match="36500"):
        issuance.create_achievement(db, current(), code="VAL", name="Validity",
                                    description="", exam_id=exam.id, validity_days=999999999)
    db.rollback()
    assert _count(db, Achievement) == 0


def test_a_pass_whose_badge_cannot_be_issued_still_finalizes(people, db, build_exam, app,
                                                              caplog):
    """An achievement stored before the bound (validity_days=999999999) makes issuing fail: the
    submit still finalizes and releases the result, the failure is logged, no credential is
    half-written, and the candidate is not left with an attempt stuck in progress."""
    from assessment.delivery.models import Attempt, Result, ResultRelease
    from credentials import issuance
    from credentials.config import current

    exam = build_exam(db, code="B-OVF")
    with app.test_request_context():
        a = issuance.create_achievement(db, current(), code="OVF", name="Overflow",
                                        description="", exam_id=exam.id, validity_days=365)
        db.commit()
    db.execute(update(Achievement).where(Achievement.id == a.id).values(validity_days=999999999))
    db.commit()
    client, token, _ = people["candidate"]
    attempt_id = _pass_exam(client, token, exam)
    with caplog.at_level(logging.ERROR):
        resp = client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True},
                           headers={"X-CSRFToken": token})
    assert resp.status_code == 200, resp.get_json()
    db.commit()
    assert db.get(Attempt, attempt_id).status == "finalized"
    result = db.scalar(select(Result).where(Result.attempt_id == attempt_id))
    assert result.passed
    assert db.scalar(select(ResultRelease.status).where(
        ResultRelease.result_id == result.id)) == "released"
    assert _count(db, Credential) == 0
    assert any("validity_days" in r.getMessage() or "validity_days" in str(r.exc_info)
               for r in caplog.records)


# --- finding 9: stored input ----------------------------------------------------------------------

def test_an_achievement_needs_a_code_and_a_name(people, db):
    client, token, _ = people["admin"]
    for code, name in (("", ""), ("", "Name"), ("CODE", ""), ("CODE", "   "),
                       ("bad code/with slash", "Name")):
        resp = client.post("/admin/achievements",
                           data={"csrf_token": token, "code": code, "name": name})
        assert resp.status_code == 302
        page = _flashes(client)
        assert "an achievement needs a" in page, (code, name)
    assert _count(db, Achievement) == 0


def test_too_long_text_is_the_same_422_on_every_database(people, db):
    """PostgreSQL refuses a 5,000-character value in a VARCHAR(200) with a DataError (500);
    SQLite stores it. Both now refuse it before any SQL, naming the column and its limit."""
    client, token, _ = people["admin"]
    resp = client.post("/admin/achievements",
                       data={"csrf_token": token, "code": "LONG", "name": "n" * 5000})
    # a form post goes back to its form with the message, as for every refusal of that form
    # (the one domain-error handler and microcred.web.form_page); the JSON answer below is 422
    assert resp.status_code == 302
    text = _flashes(client)
    assert "name (credential_achievements.name) must be at most 200 characters; 5000 were given" in text
    assert _count(db, Achievement) == 0

    resp = client.post("/admin/accommodations", data={
        "csrf_token": token, "candidate_email": people["candidate"][2].email,
        "time_multiplier": "1.5", "reason": "r" * 60000},
        headers={"Accept": "application/json"})
    assert resp.status_code == 422
    assert "reason (accommodations.reason) must be at most 500 characters" in \
        resp.get_data(as_text=True)
    assert _count(db, Accommodation) == 0


def test_every_string_column_is_checked_before_flush(db):
    """The check is on the shared base: any model, any String(length) column."""
    from assessment.users import User
    from microcred.db import ValueTooLong

    limit = User.__table__.c.display_name.type.length
    db.add(User(email="long@example.org", password_hash="x", role="candidate",
                display_name="d" * (limit + 1)))
    with pytest.raises(ValueTooLong) as err:
        db.flush()
    assert err.value.extra == {"field": "users.display_name", "limit": limit}
    db.rollback()
    assert _count(db, User) == 0


@pytest.fixture
def issued(people, db, app):
    from credentials import issuance
    from credentials.config import current

    holder = people["candidate"][2]  # signs in first: the app writes, so not inside our write
    with app.test_request_context():
        cfg = current()
        a = issuance.create_achievement(db, cfg, code="EVI", name="Evidence", description="",
                                        validity_days=30)
        cred = issuance.issue(db, cfg, achievement=a, holder=holder,
                              kind="exam", evidence=[])
        db.commit()
    return cred.public_id


def test_evidence_urls_must_be_http_or_https(people, db, issued):
    client, token, _ = people["admin"]
    for url in ("javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<script>x</script>",
                "//evil.example/x", "/relative", "http://", "ftp://x.org/a",
                "https://ok.example/\x00"):
        resp = client.post(f"/admin/credentials/{issued}/recertify", data={
            "csrf_token": token, "narrative": "Completed 20 hours of CE", "evidence_url": url},
            follow_redirects=True)
        assert "evidence_url must be an http:// or https:// address" in \
            resp.get_data(as_text=True), url
    assert _count(db, Credential) == 1
    assert "javascript:" not in db.scalar(select(Credential.document)).lower()


def test_an_https_evidence_url_is_signed_into_the_renewal(people, db, issued):
    client, token, _ = people["admin"]
    resp = client.post(f"/admin/credentials/{issued}/recertify", data={
        "csrf_token": token, "narrative": "Completed 20 hours of CE",
        "evidence_url": "https://ce.example.org/certificates/42"})
    assert resp.status_code == 302
    assert _count(db, Credential) == 2
    newest = db.scalar(select(Credential).order_by(Credential.id.desc()).limit(1))
    assert "https://ce.example.org/certificates/42" in newest.document


def test_a_nul_character_is_the_same_422_on_every_database(people, db):
    """PostgreSQL cannot store NUL in text (the driver raises, a 500); SQLite stores it."""
    from assessment.users import User

    client, token, _ = people["admin"]
    before = _count(db, User)
    resp = client.post("/admin/users", data={
        "csrf_token": token, "email": "nul@example.org", "password": "q8#Lm2!vXz7@Rt4pWn-k3",
        "role": "candidate", "display_name": "Nul\x00Name"})
    assert resp.status_code == 422
    assert "display_name (users.display_name) must not contain a NUL character" in \
        resp.get_data(as_text=True)
    assert _count(db, User) == before


@pytest.mark.parametrize("args", [["credentials", "expiring", "--days", "99999999999"],
                                  ["proctoring", "purge", "--days", "99999999999"]])
def test_cli_day_counts_are_bounded(args):
    """The same bound on the command line: a usage error, not an OverflowError traceback."""
    from click.testing import CliRunner

    from assessment.cli import main

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "99999999999 is not in the range 1<=x<=36500" in result.output
