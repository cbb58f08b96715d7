"""Exams through their service (issue 11): every field checked with an error naming it and
nothing written on a refusal; the availability window and linear-on-the-fly delivery enforced
when an attempt starts (a pooled form first, else one assembled then, unique per candidate);
pretest items ride along unscored; the achievement an exam leads to is set through credentials'
public function."""
from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import func, select

from assessment.delivery.models import ItemScore
from assessment.delivery.service import Conflict, finalize_attempt, start_attempt
from assessment.exams import Exam, ExamError, fill_exam_pool, save_exam
from itembank.authoring import create_item, publish_version
from itembank.blueprints import save_blueprint
from itembank.exposure import exposure_counts
from itembank.forms import build_form
from itembank.models import Form, FormDelivery
from itembank.parameters import ParameterValues, supersede_parameters
from itembank.pool import pool_status
from microcred.db import utcnow
from microcred.policy import PolicyError

#: the database-independent tests run on SQLite only; pool claims and LOFT starts run on both
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

OPTIONS = {"options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]}


def _bank(db, per_domain=5):
    bp = save_blueprint(db, code="EA-BP", name="EA", domains=[
        {"code": "A", "name": "Domain A", "items_on_form": 2},
        {"code": "B", "name": "Domain B", "items_on_form": 1}])
    rng = random.Random(3)
    versions = []
    for d in "AB":
        for k in range(per_domain):
            v = create_item(db, code=f"EA-{d}{k}", item_type_name="single_choice",
                            domain_code=d, stem=f"{d}{k}?", interaction=OPTIONS,
                            key={"correct": ["A"]})
            publish_version(db, v)
            supersede_parameters(db, [ParameterValues(v.id, "2pl", rng.uniform(0.8, 1.8),
                                                      rng.gauss(0, 1))], source="test")
            versions.append(v)
    return bp, versions


def _fields(bp, forms, **over):
    return {"code": "EA-1", "title": "Exam EA", "blueprint": bp, "forms": forms,
            "time_limit_seconds": 600, "pass_percent": 60.0, **over}


BAD_FIELDS = [
    ({"code": "bad code"}, "code", "letters, digits"),
    ({"title": " "}, "title", "title is required"),
    ({"time_limit_seconds": 0}, "time_limit", "time limit must be positive"),
    ({"pass_percent": 120}, "pass_percent", r"pass percent must be in \(0, 100\]"),
    ({"delivery_mode": "adaptive"}, "delivery_mode", "delivery must be one of forms, loft"),
    ({"forms": []}, "forms", "needs at least one form"),
    ({"opens_at": dt.datetime(2027, 1, 2, tzinfo=dt.UTC),
      "closes_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC)}, "closes_at", "closes before it opens"),
    ({"delivery_mode": "loft", "assembly": {"cut_theta": 9}}, "assembly.cut_theta",
     "cut_theta must be a number from -6 to 6"),
]


@SQLITE_ONLY
def test_exam_fields_are_checked_and_named(db):
    _, versions = _bank(db, per_domain=1)
    a = [v for v in versions if v.domain_code == "A"]
    b = [v for v in versions if v.domain_code == "B"]
    bp1 = save_blueprint(db, code="EA-BP1", name="one", domains=[
        {"code": "A", "name": "A", "items_on_form": 1},
        {"code": "B", "name": "B", "items_on_form": 1}])
    form = build_form(db, code="EA-F", blueprint=bp1, versions=[a[0], b[0]])
    for over, field, message in BAD_FIELDS:
        with pytest.raises(ExamError, match=message) as caught:
            save_exam(db, **{**_fields(bp1, [form]), **over})
        assert caught.value.field == field
    assert db.scalar(select(func.count()).select_from(Exam)) == 0


@SQLITE_ONLY
def test_policy_and_form_blueprint_are_checked(db):
    bp, versions = _bank(db, per_domain=2)
    form = build_form(db, code="EA-F", blueprint=bp,
                      versions=[versions[0], versions[1], versions[2]])
    other = save_blueprint(db, code="EA-OTHER", name="Other", domains=[
        {"code": "A", "name": "A", "items_on_form": 3}])
    with pytest.raises(ExamError, match="form EA-F was built to another blueprint"):
        save_exam(db, **_fields(other, [form]))
    with pytest.raises(PolicyError, match="retake"):
        save_exam(db, **_fields(bp, [form], policy={"retake": {"max_attempts": 0}}))
    exam = save_exam(db, **_fields(bp, [form], policy={"retake": {"max_attempts": 2,
                                                                  "wait_hours": 24}}))
    # an update keeps the exam and retires a form no longer listed
    second = build_form(db, code="EA-F2", blueprint=bp,
                        versions=[versions[0], versions[1], versions[3]])
    save_exam(db, exam=exam, **_fields(bp, [second], title="Exam EA, revised"))
    db.commit()
    assert exam.title == "Exam EA, revised"
    assert [(ef.form_id, ef.active) for ef in exam.forms] == [(form.id, False),
                                                              (second.id, True)]


@SQLITE_ONLY
def test_the_window_is_enforced_at_start(db, make_user, clock):
    _, versions = _bank(db, per_domain=1)
    form = build_form(db, code="EA-F", blueprint=save_blueprint(
        db, code="EA-W", name="W", domains=[{"code": "A", "name": "A", "items_on_form": 1}]),
        versions=[versions[0]])
    now = utcnow()
    exam = save_exam(db, **_fields(form.blueprint, [form], opens_at=now + dt.timedelta(hours=1),
                                   closes_at=now + dt.timedelta(hours=2)))
    db.commit()
    candidate = make_user("candidate")
    with pytest.raises(Conflict, match="opens at"):
        start_attempt(db, candidate, exam, grace_seconds=2.0)
    clock.advance(3 * 3600)
    with pytest.raises(Conflict, match="closed at"):
        start_attempt(db, candidate, exam, grace_seconds=2.0)
    clock.set(now + dt.timedelta(hours=1, minutes=5))
    attempt = start_attempt(db, candidate, exam, grace_seconds=2.0)
    assert attempt.form_id == form.id
    db.commit()
    assert exposure_counts(db) == {versions[0].id: 1}


def test_loft_candidates_get_unique_forms_from_the_pool_then_assembled(db, make_user):
    bp, _ = _bank(db)
    exam = save_exam(db, **_fields(bp, [], delivery_mode="loft",
                                   assembly={"cut_theta": 0.0, "exposure_ceiling": 50}))
    made = fill_exam_pool(db, exam, 2, seed=1)
    db.commit()
    forms = []
    for _ in range(4):  # two from the pool, two assembled at start
        attempt = start_attempt(db, make_user("candidate"), exam, grace_seconds=2.0)
        db.commit()
        forms.append(attempt.form_id)
    assert forms[:2] == made
    assert len(set(forms)) == 4
    item_sets = {frozenset(fi.item_version_id for fi in db.get(Form, f).items) for f in forms}
    assert len(item_sets) == 4
    assert pool_status(db, exam.code).waiting == 0
    assert db.scalar(select(func.count()).select_from(FormDelivery)) == 4
    with pytest.raises(ExamError, match="only a linear-on-the-fly exam has a pool"):
        fixed = build_form(db, code="EA-FIX", blueprint=bp, versions=[
            db.get(Form, forms[0]).items[i].item_version for i in range(3)])
        fill_exam_pool(db, save_exam(db, **_fields(bp, [fixed], code="EA-FIXED")), 1)


@SQLITE_ONLY
def test_pretest_items_are_recorded_but_not_scored(db, make_user):
    _, versions = _bank(db, per_domain=2)
    a = [v for v in versions if v.domain_code == "A"]
    b = [v for v in versions if v.domain_code == "B"]
    bp = save_blueprint(db, code="EA-BP-PRE", name="With a pretest slot", domains=[
        {"code": "A", "name": "Domain A", "items_on_form": 2},
        {"code": "B", "name": "Domain B", "items_on_form": 1, "pretest_items": 1}])
    form = build_form(db, code="EA-PRE", blueprint=bp, versions=[a[0], a[1], b[0]],
                      pretest=[b[1]])
    exam = save_exam(db, **_fields(bp, [form], pass_percent=50.0))
    db.commit()
    attempt = start_attempt(db, make_user("candidate"), exam, grace_seconds=2.0)
    from assessment.delivery.models import ResponseSave

    for seq, vid in enumerate(attempt.item_order, 1):
        db.add(ResponseSave(attempt_id=attempt.id, item_version_id=vid, seq=seq,
                            value="A" if vid == b[1].id else "B", saved_at=utcnow()))
    db.flush()
    result = finalize_attempt(db, attempt, reason="submitted")
    db.commit()
    # three scored items, all wrong; the right answer to the pretest item does not count
    assert (result.raw_score, result.max_score, result.n_items) == (0.0, 3.0, 3)
    rows = {s.item_version_id: s for s in db.scalars(
        select(ItemScore).where(ItemScore.result_id == result.id))}
    assert rows[b[1].id].scored is False and rows[b[1].id].score == 1.0
    assert sum(s.scored for s in rows.values()) == 3


@SQLITE_ONLY
def test_the_achievement_is_linked_through_credentials(db):
    from credentials.config import current
    from credentials.errors import CredentialError
    from credentials.issuance import create_achievement, exam_achievement, link_exam_achievement

    _, versions = _bank(db, per_domain=1)
    bp1 = save_blueprint(db, code="EA-BP1", name="one", domains=[
        {"code": "A", "name": "A", "items_on_form": 1}])
    form = build_form(db, code="EA-F", blueprint=bp1, versions=[versions[0]])
    exam = save_exam(db, **_fields(bp1, [form]))
    other = save_exam(db, **_fields(bp1, [form], code="EA-2"))
    cfg = current()
    create_achievement(db, cfg, code="BADGE-1", name="Badge one", description="d")
    create_achievement(db, cfg, code="BADGE-2", name="Badge two", description="d",
                       exam_id=other.id)
    link_exam_achievement(db, exam.id, "BADGE-1")
    assert exam_achievement(db, exam.id).code == "BADGE-1"
    with pytest.raises(CredentialError, match="already earned by another exam"):
        link_exam_achievement(db, exam.id, "BADGE-2")
    link_exam_achievement(db, exam.id, None)
    assert exam_achievement(db, exam.id) is None
