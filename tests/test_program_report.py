"""The program report (assessment.psych.program_report) and candidate attributes
(assessment.candidate_attributes): numbers checked against a dataset built here whose counts,
pass rates, medians and suppressed cells are worked out by hand in the comments; filters; CSV
contents; who may see it; bad CSV imports. The numbers are checked on SQLite and PostgreSQL
(months are grouped in each database's own SQL)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import pytest
from sqlalchemy import func, select

from assessment.candidate_attributes import (
    CandidateAttribute,
    current_of,
    history_of,
    import_csv,
    record,
)
from assessment.delivery.models import Attempt, Result, ResultRelease
from assessment.psych.program_report import ProgramScope, Suppressed, build_program_report
from assessment.users import User
from proctoring.models import Flag, ProctorSession

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

UTC = dt.UTC
S5 = Suppressed(5)

#: Exam P1, September: ten candidates, percent scores and minutes taken (pass mark 60).
SEPT = [20, 40, 50, 55, 60, 65, 70, 80, 90, 100]
#: Exam P1, October: eight more candidates; the first is terminated, the last invalidated.
OCT = [30, 45, 60, 61, 62, 75, 85, 95]
#: Exam P2, October: three candidates (fewer than 5: every count of theirs is withheld).
P2_OCT = [50, 70, 90]
#: region of the P1 candidates: Sept 0-6 north, 7-9 south; Oct 0-4 north, 5-6 south, 7 none.
REGION = ["north"] * 7 + ["south"] * 3 + ["north"] * 5 + ["south"] * 2 + [None]


def _candidate(db, email: str) -> User:
    user = User(email=email, display_name=email.split("@")[0], role="candidate",
                password_hash="!", active=True)
    db.add(user)
    db.flush()
    return user


def _sit(db, exam, user, percent, *, finalized, minutes, reason="submitted", invalidated=False):
    form = exam.forms[0].form
    start = finalized - dt.timedelta(minutes=minutes)
    attempt = Attempt(candidate_id=user.id, exam_id=exam.id, form_id=form.id, status="finalized",
                      seed=1, item_order=[], option_orders={}, started_at=start,
                      time_limit_seconds=3600, agreement_accepted_at=start, finalized_at=finalized,
                      finalize_reason=reason)
    db.add(attempt)
    db.flush()
    result = Result(attempt_id=attempt.id, raw_score=percent / 10, max_score=10.0, percent=percent,
                    pass_percent=60.0, passed=percent >= 60, answered=10, n_items=10,
                    domain_scores=[], theta=None, theta_se=None)
    db.add(result)
    db.flush()
    db.add(ResultRelease(result_id=result.id,
                         status="invalidated" if invalidated else "released"))
    return attempt


@pytest.fixture
def program(db, build_exam, make_user):
    """The dataset of the module docstring; returns (P1, P2, admin)."""
    p1 = build_exam(db, code="P1")
    p2 = build_exam(db, code="P2")
    admin = make_user("admin")
    attempts = []
    for i, pct in enumerate(SEPT):
        user = _candidate(db, f"sept{i}@example.org")
        attempts.append(_sit(db, p1, user, pct, minutes=10 + i,
                             finalized=dt.datetime(2026, 9, 10 + i, 12, tzinfo=UTC)))
    for i, pct in enumerate(OCT):
        user = _candidate(db, f"oct{i}@example.org")
        attempts.append(_sit(db, p1, user, pct, minutes=20 + i,
                             finalized=dt.datetime(2026, 10, 5 + i, 12, tzinfo=UTC),
                             reason="terminated" if i == 0 else "submitted",
                             invalidated=i == len(OCT) - 1))
    for i, pct in enumerate(P2_OCT):
        user = _candidate(db, f"p2-{i}@example.org")
        _sit(db, p2, user, pct, minutes=30, finalized=dt.datetime(2026, 10, 20, tzinfo=UTC))
    db.flush()
    lines = ["email,region"] + [
        f"{email},{region}" for email, region in zip(
            [f"sept{i}@example.org" for i in range(10)] + [f"oct{i}@example.org" for i in range(8)],
            REGION) if region]
    report = import_csv(db, "\n".join(lines), by=admin)
    assert report.ok and report.recorded == 17, report.errors
    # five proctored sittings of P1: one with a high and a low flag, one terminated, one
    # invalidated on review, two cleared
    states = ["cleared", "terminated", "invalidated", "cleared", "in_review"]
    for attempt, state in zip(attempts, states):
        ps = ProctorSession(candidate_id=attempt.candidate_id, exam_id=p1.id,
                            attempt_id=attempt.id, state=state, policy={},
                            created_at=attempt.started_at)
        db.add(ps)
        db.flush()
        if state == "cleared" and not db.scalar(select(func.count()).select_from(Flag)):
            db.add_all([Flag(session_id=ps.id, rule="focus", key="1", severity="high", points=6,
                             message="left the exam"),
                        Flag(session_id=ps.id, rule="copy", key="1", severity="low", points=1,
                             message="copied")])
            db.flush()
    db.commit()
    return p1, p2, admin


def _table(report, name):
    t = report.tables[name]
    return [dict(zip(t.columns, row)) for row in t.rows]


def test_counts_pass_rates_and_medians_by_exam_month_and_form(program, db):
    p1, _p2, _ = program
    report = build_program_report(db, ProgramScope(), with_charts=False)
    exams = {r["exam"]: r for r in _table(report, "exams")}
    # P1: 18 candidates and attempts; 17 counted (the 95 is invalidated); passed: 6 in
    # September (60..100) + 5 in October (60, 61, 62, 75, 85) = 11; 11/17 = 0.6471.
    # Median of the 17 counted percents (sorted 20 30 40 45 50 55 60 60 [61] 62 ...): 61.
    # Minutes of the counted results are 10..26: median 18.
    assert exams["P1"] == {
        "exam": "P1", "title": p1.title, "candidates": 18, "attempts": 18, "results_counted": 17,
        "passed": 11, "pass_rate": 0.6471, "median_percent": 61.0, "median_minutes": 18.0,
        "invalidated": 1, "terminated": 1}
    # P2 has 3 candidates: every number withheld
    assert exams["P2"]["candidates"] == S5 and exams["P2"]["pass_rate"] == S5
    assert exams["P2"]["median_percent"] == S5

    months = {(r["month"], r["exam"]): r for r in _table(report, "months")}
    assert months[("2026-09", "P1")]["passed"] == 6 and months[("2026-09", "P1")]["pass_rate"] == 0.6
    assert months[("2026-10", "P1")]["results_counted"] == 7
    assert months[("2026-10", "P1")]["pass_rate"] == pytest.approx(5 / 7, abs=1e-4)
    assert months[("2026-10", "P2")]["attempts"] == S5

    forms = {(r["exam"], r["form"]): r for r in _table(report, "forms")}
    assert forms[("P1", "P1-F1")]["passed"] == 11

    # time taken: minutes 10..26 -> quartiles by linear interpolation (numpy's default)
    times = {r["exam"]: r for r in _table(report, "time_taken")}
    assert times["P1"]["results"] == 17
    assert times["P1"]["p25_minutes"] == 14.0 and times["P1"]["median_minutes"] == 18.0
    assert times["P1"]["p90_minutes"] == pytest.approx(24.4)
    assert times["P2"]["median_minutes"] == S5


@sqlite_only
def test_score_bands_withhold_small_cells(program, db):
    report = build_program_report(db, ProgramScope(), with_charts=False)
    bands = {r["band"]: r["results"] for r in _table(report, "score_bands") if r["exam"] == "P1"}
    # counted P1 percents: 20 30 40 45 50 55 60 60 61 62 65 70 75 80 85 90 100
    assert bands["0-9%"] == 0 and bands["10-19%"] == 0  # nothing there: nothing to hide
    assert bands["20-29%"] == S5  # one result (20)
    assert bands["60-69%"] == 5  # 60 60 61 62 65
    assert bands["90-100%"] == S5  # 90, 100


def test_groups_suppress_small_cells_and_their_complement(program, db):
    p1, _, _ = program
    report = build_program_report(db, ProgramScope(exam=p1, group_attribute="region"),
                                  with_charts=False)
    groups = {r["region"]: r for r in _table(report, "groups")}
    # north: Sept 0-6 (20 40 50 55 60 65 70) + Oct 0-4 (30 45 60 61 62): 12 candidates,
    # 6 passed, median of the 12 = (55 + 60) / 2 = 57.5
    assert groups["north"]["candidates"] == 12 and groups["north"]["passed"] == 6
    assert groups["north"]["pass_rate"] == 0.5 and groups["north"]["median_percent"] == 57.5
    # "(no value)" has one candidate (withheld), so south (5, the next smallest) is withheld
    # too: otherwise P1's total less north would give it away
    assert groups["(no value)"]["candidates"] == S5
    assert groups["south"]["candidates"] == S5 and groups["south"]["pass_rate"] == S5

    # with a minimum of 1 nothing is withheld: south is 5 of 5 passed, median 85
    loose = build_program_report(db, ProgramScope(exam=p1, group_attribute="region", min_group=1),
                                 with_charts=False)
    south = {r["region"]: r for r in _table(loose, "groups")}["south"]
    assert (south["candidates"], south["passed"], south["median_percent"]) == (5, 5, 85.0)


def test_filters_narrow_every_table(program, db):
    _p1, p2, _ = program
    october = build_program_report(db, ProgramScope(since=dt.date(2026, 10, 1)), with_charts=False)
    exams = {r["exam"]: r for r in _table(october, "exams")}
    assert exams["P1"]["candidates"] == 8 and exams["P1"]["passed"] == 5
    assert {r["month"] for r in _table(october, "months")} == {"2026-10"}

    september = build_program_report(db, ProgramScope(until=dt.date(2026, 9, 30)),
                                     with_charts=False)
    assert [r["exam"] for r in _table(september, "exams")] == ["P1"]
    assert _table(september, "exams")[0]["attempts"] == 10

    south = build_program_report(
        db, ProgramScope(group_attribute="region", group_value="south"), with_charts=False)
    rows = _table(south, "exams")
    assert [(r["exam"], r["candidates"], r["passed"]) for r in rows] == [("P1", 5, 5)]

    only_p2 = build_program_report(db, ProgramScope(exam=p2, form=p2.forms[0].form),
                                   with_charts=False)
    assert [r["exam"] for r in _table(only_p2, "exams")] == ["P2"]


def test_proctoring_outcomes_come_through_proctorings_read(program, db):
    report = build_program_report(db, ProgramScope(), with_charts=False)
    (p1,) = _table(report, "proctoring")
    assert p1 == {"exam": "P1", "sessions": 5, "flagged_sessions": 1, "high_severity_sessions": 1,
                  "flags": 2, "terminated": 1, "in_review": 1, "cleared": 2, "invalidated": 1}
    # October has none of the five sittings (all in September): nothing to show
    october = build_program_report(db, ProgramScope(since=dt.date(2026, 10, 1)), with_charts=False)
    assert _table(october, "proctoring") == []


@sqlite_only
def test_page_csv_zip_and_json(program, client, db, make_user, signin):
    signin(client, make_user("psychometrician"))
    page = client.get("/psych/program?group=region")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "fewer than 5 candidates is shown as &lt;5" in html
    for name in ("exams", "months", "forms", "groups", "score_bands", "time_taken", "proctoring",
                 "badges"):
        assert f'id="table-{name}"' in html or name in ("badges", "proctoring"), name
        assert f"/psych/program/{name}.csv?group=region" in html
    # charts are SVG images with their text alternative
    assert html.count('src="data:image/svg+xml;base64,') >= 4
    assert 'alt="Pass rate by month. P1: 2026-09 60.0%, 2026-10 71.4%' in html

    body = client.get("/psych/program/exams.csv?exam=P1").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows == [{"exam": "P1", "title": "Exam P1", "candidates": "18", "attempts": "18",
                     "results_counted": "17", "passed": "11", "pass_rate": "0.6471",
                     "median_percent": "61.0", "median_minutes": "18.0", "invalidated": "1",
                     "terminated": "1"}]
    body = client.get("/psych/program/groups.csv?exam=P1&group=region").get_data(as_text=True)
    assert "P1,south,<5,<5,<5,<5,<5,<5" in body
    archive = zipfile.ZipFile(io.BytesIO(client.get("/psych/program.zip?group=region").data))
    assert {"exams.csv", "groups.csv", "score_bands.csv", "report.json"} <= set(archive.namelist())
    doc = client.get("/psych/program.json?exam=P2").get_json()
    assert doc["tables"]["exams"][0]["candidates"] == "<5" and doc["min_group"] == 5
    assert client.get("/psych/program/nothing.csv").status_code == 404


@sqlite_only
@pytest.mark.parametrize("query, message", [
    ("since=2026-13-01", "since must be a date"),
    ("since=2026-10-02&until=2026-10-01", "the date range is empty"),
    ("exam=NOPE", "there is no exam with code"),
    ("exam=P1&form=P2-F1", "is not a form of exam P1"),
    ("value=south", "a group value needs its attribute"),
    ("group=" + "x" * 65, "keep it to 64"),
])
def test_bad_filters_say_what_is_wrong(program, client, make_user, signin, query, message):
    signin(client, make_user("admin"))
    page = client.get(f"/psych/program?{query}")
    assert page.status_code == 422
    assert message in page.get_data(as_text=True)


@sqlite_only
@pytest.mark.parametrize("role", ["candidate", "proctor", "item_author"])
def test_candidates_and_proctors_get_403(program, client, make_user, signin, role):
    signin(client, make_user(role))
    for path in ("/psych/program", "/psych/program.json", "/psych/program/exams.csv",
                 "/psych/program.zip", "/psych/attributes", "/psych/attributes?email=sept0@example.org"):
        assert client.get(path).status_code == 403, path


@sqlite_only
def test_only_admins_record_attributes(program, client, db, make_user, signin, csrf_token):
    signin(client, make_user("psychometrician"))
    page = client.get("/psych/attributes?email=sept0@example.org")
    assert page.status_code == 200 and "north" in page.get_data(as_text=True)
    token = csrf_token(client)
    refused = client.post("/psych/attributes/record", data={
        "email": "sept0@example.org", "name": "region", "value": "west", "csrf_token": token})
    assert refused.status_code == 403


@sqlite_only
def test_a_changed_value_is_a_new_row_and_the_history_keeps_the_old(program, client, db,
                                                                    make_user, signin, csrf_token):
    _, _, admin = program
    signin(client, admin)
    token = csrf_token(client)
    sent = client.post("/psych/attributes/record", data={
        "email": "sept0@example.org", "name": "Region", "value": "west", "csrf_token": token})
    assert sent.status_code == 303
    again = client.post("/psych/attributes/record", data={
        "email": "sept0@example.org", "name": "region", "value": "", "csrf_token": token})
    assert again.status_code == 303
    db.rollback()
    user = db.scalar(select(User).where(User.email == "sept0@example.org"))
    assert [(h.value, h.source) for h in history_of(db, user.id)] == [
        (None, "admin"), ("west", "admin"), ("north", "import")]
    assert current_of(db, user.id) == {}
    page = client.get("/psych/attributes?email=sept0@example.org").get_data(as_text=True)
    assert "withdrawn" in page and "west" in page
    bad = client.post("/psych/attributes/record", data={
        "email": "sept0@example.org", "name": "region", "value": "x" * 201, "csrf_token": token})
    assert bad.status_code == 422 and "keep it to 200" in bad.get_data(as_text=True)
    nobody = client.post("/psych/attributes/record", data={
        "email": "nobody@example.org", "name": "region", "value": "x", "csrf_token": token})
    assert nobody.status_code == 422 and "no candidate has the email" in nobody.get_data(as_text=True)


def test_bad_csv_imports_name_every_line_and_store_nothing(program, db):
    _, _, admin = program
    before = db.scalar(select(func.count()).select_from(CandidateAttribute))
    text = "\n".join([
        "email,attribute,value",
        "sept0@example.org,language,en",          # 2: fine
        "ghost@example.org,language,en",          # 3: unknown candidate
        "sept1@example.org,,en",                  # 4: empty attribute name
        "sept2@example.org,language," + "y" * 201,  # 5: value too long
        "sept3@example.org,language",             # 6: a cell short
        f"{admin.email},language,en",             # 7: not a candidate
        "sept0@example.org,language,fr",          # 8: contradicts line 2
    ])
    report = import_csv(db, text, by=admin)
    assert not report.ok
    got = dict(report.errors)
    assert "no candidate has the email 'ghost@example.org'" in got[3]
    assert "the attribute name is empty" in got[4]
    assert "201 characters long; keep it to 200" in got[5]
    assert "has 2 cells; the header has 3" in got[6]
    assert "is not a candidate (role admin)" in got[7]
    assert "on line 2" in got[8]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(CandidateAttribute)) == before
    assert import_csv(db, "name,region\nx,y", by=admin).errors[0][1].startswith(
        "the header has no 'email' column")
    assert import_csv(db, "", by=admin).errors[0][1].startswith("the file is empty")


@sqlite_only
def test_the_import_page_lists_errors_and_a_good_file_records(program, client, db, signin,
                                                              csrf_token):
    _, _, admin = program
    signin(client, admin)
    token = csrf_token(client)
    bad = client.post("/psych/attributes/import", data={
        "csrf_token": token,
        "file": (io.BytesIO(b"email,language\nghost@example.org,en\n"), "a.csv")},
        content_type="multipart/form-data")
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Nothing was imported" in html and "Line 2: no candidate has the email" in html
    good = client.post("/psych/attributes/import", data={
        "csrf_token": token,
        "file": (io.BytesIO(b"email,language,accommodation\nsept0@example.org,en,extra time\n"
                            b"sept1@example.org,fr,\n"), "b.csv")},
        content_type="multipart/form-data")
    assert good.status_code == 200
    assert "3 values recorded" in good.get_data(as_text=True)
    db.rollback()
    user = db.scalar(select(User).where(User.email == "sept0@example.org"))
    assert current_of(db, user.id) == {"accommodation": "extra time", "language": "en",
                                       "region": "north"}
    # the same file again changes nothing
    assert import_csv(db, "email,language\nsept0@example.org,en", by=admin).recorded == 0


def test_record_refuses_a_non_candidate(db, make_user):
    from assessment.candidate_attributes import BadAttribute

    proctor = make_user("proctor")
    with pytest.raises(BadAttribute, match="not a candidate"):
        record(db, proctor, "region", "north", by=None)


@sqlite_only
def test_badges_issued_revoked_and_expiring_come_through_credentials_read(db, build_exam,
                                                                         make_user):
    from credentials import issuance, revocation
    from credentials.config import current
    from credentials.models import Credential
    from tests.credentials.conftest import take_exam

    cfg = current()
    exam = build_exam(db, code="B1")
    issuance.create_achievement(db, cfg, code="B1-BADGE", name="Badge B1", exam_id=exam.id,
                                description="Passed B1.", validity_days=30)
    db.commit()
    for _ in range(3):  # three passes through delivery: three badges, each valid 30 days
        take_exam(db, make_user("candidate"), exam)
    first = db.scalar(select(Credential).order_by(Credential.id))
    revocation.revoke(db, cfg, first, reason="result invalidated", by_user_id=None)
    db.commit()
    report = build_program_report(db, ProgramScope(min_group=1), with_charts=False)
    assert _table(report, "badges") == [{
        "achievement": "B1-BADGE", "name": "Badge B1", "exam": "B1", "issued": 3, "revoked": 1,
        "expiring_60_days": 2}]  # the revoked one is not "expiring"
    later = build_program_report(db, ProgramScope(since=dt.date.today() + dt.timedelta(days=2)),
                                 with_charts=False)
    assert [(r["issued"], r["revoked"]) for r in _table(later, "badges")] == [(0, 0)]
