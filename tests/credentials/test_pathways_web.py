"""Pathway screens and APIs through the real app: the rule editor refusing bad rules (cycles,
electives counts, unknown components) with nothing stored, its preview of who would qualify,
the LMS completions API (tokens from the environment and admin-issued; bad payloads get clear
4xx; all or nothing), CSV import with per-line errors, the exam refused to a candidate without
the prerequisite (with the next step), the holder's pathway page and the program view with its
CSV export."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from credentials import issuance, pathway_rules, pathways
from credentials.models import Credential, PathwayRule, TrainingCompletion
from microcred.records import records

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ENV_TOKEN = "lms-env-token-0123456789-abcdefghijklmnop"


@pytest.fixture
def program(app, db, make_user):
    """A-D earned by no exam (given directly); S1 = "A and B"; S2 = "1 of C, D"; CL = S1, S2;
    the training SAFE. Ada holds A and B, Bob holds A."""
    from credentials.config import current

    with app.app_context():
        cfg = current()
        ach = {c: issuance.create_achievement(db, cfg, code=c, name=f"Badge {c}",
                                              description=c) for c in "ABCD"}
        for code in ("S1", "S2", "CL"):
            ach[code] = issuance.create_achievement(db, cfg, code=code, name=f"Stack {code}",
                                                    description=code)
        pathway_rules.save(db, pathway_rules.parse("A, B", ""), achievement=ach["S1"])
        pathway_rules.save(db, pathway_rules.parse("", "1 of C, D"), achievement=ach["S2"])
        from credentials import trainings

        trainings.create_training(db, code="SAFE", name="Safety workshop")
        db.commit()
        ada = make_user("candidate", email="ada@example.org", name="Ada Lovelace")
        bob = make_user("candidate", email="bob@example.org", name="Bob Babbage")
        for user, codes in ((ada, "AB"), (bob, "A")):
            holder = records().person(db, user.id)
            for code in codes:
                issuance.issue(db, cfg, achievement=ach[code], holder=holder, kind="exam",
                               evidence=[])
        db.commit()
    return ach, ada, bob


@pytest.fixture
def admin(client, make_user, signin):
    signin(client, make_user("admin"))
    return client


def _post(client, csrf_token, url, **data):
    return client.post(url, data={"csrf_token": csrf_token(client), **data})


def _rules(db) -> int:
    return db.scalar(select(func.count(PathwayRule.id)))


@pytest.mark.parametrize("required, electives, message, field", [
    ("S1", "", "a stack cannot contain itself: S2 → S1 → S2", "required"),
    ("", "3 of C, D", "electives line 1: choose between 1 and 2 of its 2 option(s), not 3",
     "electives"),
    ("A, NOPE", "", "unknown credential NOPE (use an achievement code, or training:&lt;code&gt;)",
     "required"),
    ("", "1 of C, training:NOPE", "unknown training NOPE", "electives"),
    ("", "two of C, D", "electives line 1: write it as &#39;2 of C, D, E&#39;", "electives"),
    ("C", "1 of C, D", "C is named twice", "electives"),
    ("", "", "a stack needs at least one component", "required"),
])
def test_rule_editor_refuses_bad_rules(admin, db, program, csrf_token, required, electives,
                                       message, field):
    ach = program[0]
    # S1 is "A and B"; make S1 contain S2 so that S2 containing S1 would be a cycle
    pathway_rules.save(db, pathway_rules.parse("A, B, S2", ""), achievement=ach["S1"])
    db.commit()
    before = _rules(db)
    resp = _post(admin, csrf_token, "/admin/pathways/stacks/S2", required=required,
                 electives=electives, action="save")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422, html[:300]
    assert message in html
    assert f'id="{field}" name="{field}"' in html and 'aria-invalid="true"' in html
    # what was typed stays in the form, nothing was stored
    assert electives.split("\n")[0].replace("'", "&#39;") in html
    assert _rules(db) == before
    assert pathways.rule_for(db, ach["S2"]).describe() == "1 of C, D"


def test_a_stack_earned_by_an_exam_takes_no_rule(admin, db, app, build_exam, csrf_token):
    from credentials.config import current

    exam = build_exam(db, code="EX1")
    with app.app_context():
        issuance.create_achievement(db, current(), code="BYEXAM", name="By exam",
                                    description="d", exam_id=exam.id)
    db.commit()
    resp = _post(admin, csrf_token, "/admin/pathways/stacks/BYEXAM", required="BYEXAM",
                 action="save")
    assert resp.status_code == 422
    assert "BYEXAM is earned by passing an exam; give the exam prerequisites instead" in \
        resp.get_data(as_text=True)


def test_preview_then_save_issues_to_those_who_qualify(admin, db, program, csrf_token):
    ach, ada, _bob = program
    before = _rules(db)
    resp = _post(admin, csrf_token, "/admin/pathways/stacks/CL", required="A",
                 electives="1 of B, C", action="preview")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Preview: 1 would qualify" in html and "1 would be one short" in html
    assert "Ada Lovelace" in html and "Bob Babbage" in html
    assert _rules(db) == before  # a preview stores nothing
    assert db.scalar(select(Credential.id).where(
        Credential.achievement_id == ach["CL"].id)) is None
    resp = _post(admin, csrf_token, "/admin/pathways/stacks/CL", required="A",
                 electives="1 of B, C", action="save")
    assert resp.status_code == 302
    db.rollback()  # end the test session's read snapshot: see what the app committed
    # saving issued the cluster to Ada (the one who qualified) and S1 too (A and B)
    held = {(c.holder_id, c.achievement.code) for c in db.scalars(
        select(Credential).where(Credential.kind == "stack"))}
    assert held == {(ada.id, "CL"), (ada.id, "S1")}


def test_lms_api_auth_and_payloads(admin, app, db, program, monkeypatch, csrf_token):
    url = "/api/training-completions"
    good = {"completions": [{"email": "ada@example.org", "training": "SAFE",
                             "completed_on": "2026-01-15", "reference": "run-7"}]}
    api = app.test_client()
    resp = api.post(url, json=good)
    assert resp.status_code == 401 and "Bearer" in resp.get_json()["message"]
    resp = api.post(url, json=good, headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401 and resp.get_json()["error"] == "not_authenticated"
    monkeypatch.setenv("MICROCRED_LMS_API_TOKEN", ENV_TOKEN)
    auth = {"Authorization": f"Bearer {ENV_TOKEN}"}
    assert api.post(url, data="{", headers=auth,
                    content_type="application/json").status_code == 400
    assert api.post(url, data="email=x", headers=auth,
                    content_type="application/x-www-form-urlencoded").status_code == 415
    resp = api.post(url, json={"completions": "ada"}, headers=auth)
    assert resp.status_code == 422 and "'completions' must be a list" in resp.get_json()["message"]
    resp = api.post(url, json={"completions": []}, headers=auth)
    assert resp.status_code == 422 and "no completions" in resp.get_json()["message"]
    bad = {"completions": [
        good["completions"][0],
        {"email": "nobody@example.org", "training": "SAFE", "completed_on": "2026-01-15"},
        {"email": "bob@example.org", "training": "NOPE", "completed_on": "15/01/2026"},
        {"email": "bob@example.org", "training": "SAFE", "completed_on": "2999-01-01"},
    ]}
    resp = api.post(url, json=bad, headers=auth)
    body = resp.get_json()
    assert resp.status_code == 422
    assert [e["where"] for e in body["errors"]] == ["completions[1]", "completions[2]",
                                                     "completions[3]"]
    assert body["errors"][0]["message"] == "no user with email nobody@example.org"
    assert "unknown training NOPE" in body["errors"][1]["message"]
    assert "'15/01/2026' is not a date" in body["errors"][1]["message"]
    assert "in the future" in body["errors"][2]["message"]
    assert db.scalar(select(func.count(TrainingCompletion.id))) == 0  # all or nothing
    resp = api.post(url, json=good, headers=auth)
    assert resp.status_code == 201 and resp.get_json()["recorded"] == 1
    resp = api.post(url, json=good, headers=auth)  # a retry records nothing twice
    assert resp.status_code == 200 and resp.get_json()["already_recorded"] == 1
    # an admin-issued token works until revoked
    monkeypatch.delenv("MICROCRED_LMS_API_TOKEN")
    page = _post(admin, csrf_token, "/admin/pathways/tokens", name="Moodle")
    import re

    token = re.search(r'id="token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    from credentials.models import LmsToken

    db.rollback()
    assert db.scalar(select(LmsToken.token_hash)) != token  # only the hash is kept
    bob_done = {"completions": [{"email": "BOB@example.org", "training": "SAFE",
                                 "completed_on": "2026-02-01T10:00:00+02:00"}]}
    resp = api.post(url, json=bob_done, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["token"] == "Moodle"
    token_id = db.scalar(select(LmsToken.id))
    _post(admin, csrf_token, f"/admin/pathways/tokens/{token_id}/revoke")
    resp = api.post(url, json=bob_done, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def test_csv_import_lists_each_bad_line_and_stores_nothing(admin, db, program, csrf_token):
    bad = ("email,training,completed_on\n"
           "ada@example.org,SAFE,2026-01-10\n"
           "ghost@example.org,SAFE,2026-01-10\n"
           "bob@example.org,SAFE,yesterday\n"
           "bob@example.org,SAFE,2026-01-10,extra,columns\n")
    resp = admin.post("/admin/pathways/completions.csv", data={
        "csrf_token": csrf_token(admin), "file": (io.BytesIO(bad.encode()), "c.csv")},
        follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "3 of 4 completion(s) refused, nothing was recorded" in html
    assert "line 3: no user with email ghost@example.org" in html
    assert "line 4: completed_on: &#39;yesterday&#39; is not a date" in html
    assert "line 5: 5 columns, the header has 3" in html
    assert db.scalar(select(func.count(TrainingCompletion.id))) == 0
    resp = admin.post("/admin/pathways/completions.csv", data={
        "csrf_token": csrf_token(admin),
        "file": (io.BytesIO(b"Email,Training,Completed_on\nbob@example.org,SAFE,2026-01-10\n"),
                 "c.csv")}, follow_redirects=True)
    assert "Imported 1 new completion(s) for 1 holder(s)." in resp.get_data(as_text=True)
    no_header = admin.post("/admin/pathways/completions.csv", data={
        "csrf_token": csrf_token(admin), "file": (io.BytesIO(b"bob@example.org,SAFE\n"), "c.csv")},
        follow_redirects=True)
    assert "line 1: the header needs the columns email, training, completed_on" in \
        no_header.get_data(as_text=True)


def csrf_token(client):
    from tests.conftest import csrf_token

    return csrf_token(client)


def test_exam_refused_without_the_prerequisite(app, client, db, program, build_exam,
                                               make_user, signin, csrf_token):
    from credentials.config import current

    _ach, _ada, bob = program
    basics = build_exam(db, code="BASICS")
    advanced = build_exam(db, code="ADV")
    with app.app_context():
        issuance.create_achievement(db, current(), code="BAS", name="Basics badge",
                                    description="b", exam_id=basics.id)
    pathway_rules.save(db, pathway_rules.parse("BAS, training:SAFE", ""), exam_id=advanced.id)
    db.commit()
    signin(client, bob)
    page = client.get("/exams/ADV").get_data(as_text=True)
    assert ("This exam is open to holders of Basics badge and training Safety workshop. "
            "Next step: earn Basics badge by passing the exam Exam BASICS (BASICS)") in page
    assert 'href="/exams/BASICS">Take Exam BASICS</a>' in page
    resp = client.post("/exams/ADV/start", data={"csrf_token": csrf_token(client), "agree": "yes"})
    assert resp.status_code in (302, 409)
    follow = client.get(resp.headers["Location"]) if resp.status_code == 302 else resp
    assert "This exam is open to holders of" in follow.get_data(as_text=True)
    from assessment.delivery.models import Attempt

    assert db.scalar(select(Attempt.id).where(Attempt.exam_id == advanced.id)) is None


def test_holder_page_and_program_view(admin, app, client, db, program, make_user, signin):
    ach, ada, _bob = program
    pathway_rules.save(db, pathway_rules.parse("S1, S2", ""), achievement=ach["CL"])
    db.commit()
    with app.app_context():
        from credentials.config import current

        pathways.award_completed(db, current(), records().person(db, ada.id))
        db.commit()
    resp = admin.get("/admin/pathways/program")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Close to completing a stack: 2" in html
    rows = list(csv.DictReader(io.StringIO(
        admin.get("/admin/pathways/program?format=csv").get_data(as_text=True))))
    got = {(r["email"], r["pathway_code"], r["status"], r["still_needed"]) for r in rows}
    assert got == {("ada@example.org", "S1", "holds", "0"),
                   ("ada@example.org", "CL", "in progress", "1"),
                   ("bob@example.org", "S1", "in progress", "1")}
    assert admin.get("/admin/pathways").status_code == 200
    candidate = app.test_client()
    signin(candidate, ada)
    page = candidate.get("/pathways").get_data(as_text=True)
    assert "My pathways" in page and "Stack CL" in page
    assert "1 of 2 done: 1 more needed." in page
