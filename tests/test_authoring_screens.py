"""The blueprint editor, the form builder and the exam editor (issue 11): a refusal is shown
next to the field it names with status 422 and nothing stored; the form builder shows coverage
and the test information curve (SVG with its text alternative); candidates and proctors never
see these pages."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from assessment.exams import Exam
from itembank.authoring import create_item, publish_version
from itembank.models import Blueprint, Form
from itembank.parameters import ParameterValues, supersede_parameters

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _post(client, csrf_token, url, data):
    return client.post(url, data={"csrf_token": csrf_token(client), **data})


def _domain_rows(rows):
    data = {"rows": str(len(rows))}
    for i, row in enumerate(rows):
        data.update({f"domain-{i}-{k}": str(v) for k, v in row.items()})
    return data


def _items(db, domain, n, prefix):
    out = []
    for k in range(n):
        v = create_item(db, code=f"{prefix}-{domain}{k}", item_type_name="single_choice",
                        domain_code=domain, stem=f"Question {domain}{k}?",
                        interaction={"options": [{"id": x, "text": x} for x in "ABCD"]},
                        key={"correct": ["A"]})
        publish_version(db, v)
        supersede_parameters(db, [ParameterValues(v.id, "2pl", 1.2, 0.1 * k)], source="t")
        out.append(v)
    db.commit()
    return out


def test_other_roles_never_see_the_authoring_pages(app, make_user, signin):
    for role in ("candidate", "proctor"):
        client = signin(app.test_client(), make_user(role))
        for url in ("/bank/blueprints", "/bank/forms", "/admin/exams/"):
            assert client.get(url).status_code == 403, (role, url)
    client = signin(app.test_client(), make_user("psychometrician"))
    assert client.get("/bank/forms").status_code == 200
    assert client.get("/admin/exams/").status_code == 403  # exams are the admin's


def test_blueprint_editor_saves_weights_and_names_a_bad_field(client, db, make_user, signin,
                                                              csrf_token):
    signin(client, make_user("admin"))
    bad = _post(client, csrf_token, "/bank/blueprints/new", {
        "code": "SCR-BP", "name": "Screens", "by": "weights", "total_items": "10",
        **_domain_rows([{"code": "A", "name": "Alpha", "weight": "60"},
                        {"code": "B", "name": "Beta", "weight": "30"}])})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert "the domains&#39; weights sum to 90" in page
    assert db.scalar(select(func.count()).select_from(Blueprint)) == 0
    db.rollback()  # (a fresh snapshot for the reads below)
    ok = _post(client, csrf_token, "/bank/blueprints/new", {
        "code": "SCR-BP", "name": "Screens", "by": "weights", "total_items": "10",
        **_domain_rows([{"code": "A", "name": "Alpha", "weight": "60"},
                        {"code": "B", "name": "Beta", "weight": "40"},
                        {"code": "", "name": ""}])})
    assert ok.status_code == 302
    bp = db.scalar(select(Blueprint).where(Blueprint.code == "SCR-BP"))
    assert [(d.code, d.items_on_form) for d in bp.domains] == [("A", 6), ("B", 4)]
    dup = _post(client, csrf_token, "/bank/blueprints/new", {
        "code": "SCR-BP2", "name": "Dup", "by": "counts",
        **_domain_rows([{"code": "A", "name": "A", "items_on_form": "1"},
                        {"code": "A", "name": "A2", "items_on_form": "1"}])})
    assert dup.status_code == 422
    assert re.search(r'name="domain-1-code"[^>]*aria-invalid="true"', dup.get_data(as_text=True))


def test_form_builder_shows_coverage_and_the_information_curve(client, db, make_user, signin,
                                                               csrf_token):
    from itembank.blueprints import save_blueprint

    save_blueprint(db, code="SCR-FB", name="FB", domains=[
        {"code": "A", "name": "Alpha", "items_on_form": 2},
        {"code": "B", "name": "Beta", "items_on_form": 1}])
    a = _items(db, "A", 3, "SCR")
    b = _items(db, "B", 1, "SCR")
    signin(client, make_user("psychometrician"))
    made = _post(client, csrf_token, "/bank/forms", {"code": "SCR-F1", "blueprint": "SCR-FB",
                                                     "action": "draft"})
    assert made.status_code == 302
    for v in (a[0], b[0]):
        assert _post(client, csrf_token, "/bank/forms/SCR-F1/items",
                     {"action": "add", "version_id": str(v.id), "slot": "scored"}).status_code == 302
    page = client.get("/bank/forms/SCR-F1").get_data(as_text=True)
    assert "1 of 2" in page and "Needs more" in page
    assert "domain A needs 2 scored items, has 1" in page
    assert "<svg" in page and "<title id=" in page and "Test information curve" in page
    early = _post(client, csrf_token, "/bank/forms/SCR-F1/items", {"action": "publish"})
    assert early.status_code == 422
    assert "does not meet its blueprint" in early.get_data(as_text=True)
    _post(client, csrf_token, "/bank/forms/SCR-F1/items",
          {"action": "add", "version_id": str(a[1].id), "slot": "scored"})
    assert _post(client, csrf_token, "/bank/forms/SCR-F1/items",
                 {"action": "publish"}).status_code == 302
    db.rollback()
    assert db.scalar(select(Form).where(Form.code == "SCR-F1")).is_published
    # assembly that cannot be done names the constraint
    short = _post(client, csrf_token, "/bank/forms", {
        "code": "SCR-F2", "blueprint": "SCR-FB", "action": "assemble", "cut_theta": "0",
        "exposure_ceiling": "1"})
    assert short.status_code == 200 or short.status_code == 302
    again = _post(client, csrf_token, "/bank/forms", {
        "code": "SCR-F3", "blueprint": "SCR-FB", "action": "assemble", "cut_theta": "9"})
    assert again.status_code == 422
    assert "assembly.cut_theta must be a number from -6 to 6" in again.get_data(as_text=True)


def test_exam_editor_creates_and_refuses_with_named_fields(client, db, make_user, signin,
                                                           csrf_token, build_exam):
    build_exam(db, code="SCR-EX")  # a blueprint and a published form
    form = db.scalar(select(Form).where(Form.code == "SCR-EX-F1"))
    db.rollback()
    signin(client, make_user("admin"))
    fields = {"code": "SCR-NEW", "title": "A new exam", "blueprint": "SCR-EX-BP",
              "delivery_mode": "forms", "forms": form.code, "time_limit_minutes": "30",
              "pass_percent": "70", "max_attempts": "3", "wait_hours": "24", "proctored": "1",
              "identity": "proctor", "review": "flagged", "snapshot_interval_s": "60",
              "is_open": "1", "opens_at": "2026-01-01T09:00", "closes_at": "2030-01-01T09:00"}
    bad = _post(client, csrf_token, "/admin/exams/new", {**fields, "pass_percent": "150"})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert "pass percent must be in (0, 100], got 150" in page
    assert re.search(r'id="ex-pass"[^>]*aria-invalid="true"', page)
    bad_policy = _post(client, csrf_token, "/admin/exams/new", {**fields,
                                                                 "snapshot_interval_s": "3"})
    assert bad_policy.status_code == 422
    assert "snapshot_interval_s must be 0 (off) or at least 5" in bad_policy.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Exam).where(Exam.code == "SCR-NEW")) == 0
    db.rollback()
    ok = _post(client, csrf_token, "/admin/exams/new", fields)
    assert ok.status_code == 302, ok.get_data(as_text=True)[:2000]
    exam = db.scalar(select(Exam).where(Exam.code == "SCR-NEW"))
    assert exam.policy["retake"] == {"max_attempts": 3, "wait_hours": 24}
    assert exam.policy["proctoring"]["identity"] == "proctor"
    assert exam.time_limit_seconds == 1800 and exam.opens_at.year == 2026
    loft = _post(client, csrf_token, "/admin/exams/SCR-NEW", {
        **fields, "delivery_mode": "loft", "forms": "", "cut_theta": "0.5"})
    assert loft.status_code == 302
    db.rollback()
    exam = db.scalar(select(Exam).where(Exam.code == "SCR-NEW"))
    assert (exam.delivery_mode, exam.assembly) == ("loft", {"cut_theta": 0.5})
    curve = _post(client, csrf_token, "/admin/exams/SCR-NEW", {
        **fields, "delivery_mode": "loft", "forms": "", "target_curve": "-1:2, 0:3 1:2"})
    assert curve.status_code == 422
    assert "assembly.target.information[1] must be a number" in curve.get_data(as_text=True)
    no_tolerance = _post(client, csrf_token, "/admin/exams/SCR-NEW", {
        **fields, "delivery_mode": "loft", "forms": "", "target_curve": "-1:2, 0:3"})
    assert "assembly.target.tolerance must be a number" in no_tolerance.get_data(as_text=True)
    assert _post(client, csrf_token, "/admin/exams/SCR-NEW", {
        **fields, "delivery_mode": "loft", "forms": "", "target_curve": "-1:2, 0:3, 1:2",
        "tolerance": "0.5"}).status_code == 302
    db.rollback()
    assert db.scalar(select(Exam.assembly).where(Exam.code == "SCR-NEW"))["target"] == {
        "thetas": [-1.0, 0.0, 1.0], "information": [2.0, 3.0, 2.0], "tolerance": 0.5}
    assert 'value="-1:2, 0:3, 1:2"' in client.get("/admin/exams/SCR-NEW").get_data(as_text=True)
    assert "SCR-NEW" in client.get("/admin/exams/").get_data(as_text=True)
    editor = client.get("/admin/exams/SCR-NEW").get_data(as_text=True)
    assert 'value="loft" checked' in editor
    assert client.get("/bank/blueprints/SCR-EX-BP").status_code == 200
