"""Re-keying a published item and rescoring every affected attempt (issue 11): the re-key is
its own append-only row (who, when, why), the published version stays as it was, each affected
result is superseded by a new one (never edited), the flips between pass and fail are listed and
sent on: a new pass earns its badge; a pass turned fail revokes nothing, it is reported.

The exam (tests/conftest.py ``build_exam``): five one-point items, pass mark 60 %: A1-A3 and B2
single choice keyed B, B1 multiple response keyed A+C. Every percent below is counted by hand.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from assessment.delivery import reads, service
from assessment.delivery.models import Result, ResultRelease
from assessment.psych.results import exam_summaries
from credentials.config import current
from credentials.issuance import create_achievement
from credentials.models import Credential, StatusEvent
from itembank import rekeys
from itembank.models import Item, ItemEvent, ItemRekey, ItemVersion
from itembank.types import ItemDefinitionError
from itembank.workflow import BankForbidden, ReviewInputError
from microcred import signals

RIGHT = {"A1": "B", "A2": "B", "A3": "B", "B1": ["A", "C"], "B2": "B"}


def _sit(db, make_user, exam, answers):
    candidate = make_user("candidate")
    attempt = service.start_attempt(db, candidate, exam, grace_seconds=5)
    codes = {v.id: db.get(Item, v.item_id).code.split("-")[-1]
             for v in db.scalars(select(ItemVersion).where(ItemVersion.id.in_(attempt.item_order)))}
    saves = [service.SaveRequest(n, vid, answers[codes[vid]], False)
             for n, vid in enumerate(attempt.item_order, start=1)]
    service.save_responses(db, attempt, saves, grace_seconds=5)
    result = service.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    return candidate, result


def _version(db, code):
    return db.scalar(select(ItemVersion).join(Item).where(Item.code == code))


@pytest.fixture
def heard():
    """What ``result_rescored`` said (the credential review hears it)."""
    calls = []

    def receiver(sender, **kw):
        calls.append((kw["attempt_id"], kw["passed"]))

    signals.result_rescored.connect(receiver)
    yield calls
    signals.result_rescored.disconnect(receiver)


def test_a_rekey_rescores_and_flips_results_both_ways(db, make_user, build_exam, heard):
    exam = build_exam(db, code="RS", pass_percent=60)
    create_achievement(db, current(), code="RS-BADGE", name="RS badge", description="Passed.",
                       exam_id=exam.id)
    db.commit()
    _, p_result = _sit(db, make_user, exam, {**RIGHT, "B1": ["B", "D"], "B2": "D"})
    _, f_result = _sit(db, make_user, exam, {**RIGHT, "A1": "C", "B1": ["B", "D"],
                                                  "B2": "D"})
    _, s_result = _sit(db, make_user, exam, {**RIGHT, "A1": "D"})
    assert [(r.percent, r.passed) for r in (p_result, f_result, s_result)] == [
        (60.0, True), (40.0, False), (80.0, True)]
    badge_of_old_pass = db.scalar(select(Credential.id).where(Credential.result_id == p_result.id))
    assert badge_of_old_pass is not None

    psych = make_user("psychometrician")
    a1 = _version(db, "RS-A1")
    outcome = rekeys.rekey(db, psych, a1, key={"correct": ["C"]},
                           reason="Option C is the right code since the 2026 guideline update.")
    db.commit()
    [report] = outcome.reports
    assert (report.affected, report.rescored) == (3, 2)  # the steady candidate's score holds
    flips = {f.attempt_id: (f.old_percent, f.new_percent, f.direction, f.credentials_to_review)
             for f in report.flips}
    assert flips == {p_result.attempt_id: (60.0, 40.0, "pass -> fail", (badge_of_old_pass,)),
                     f_result.attempt_id: (40.0, 60.0, "fail -> pass", ())}
    assert sorted(heard) == sorted([(p_result.attempt_id, False), (f_result.attempt_id, True)])

    # the published version is as it was; the re-key is its own row: who, when, why
    assert db.get(ItemVersion, a1.id).key == {"correct": ["B"]}
    row = db.scalar(select(ItemRekey).where(ItemRekey.item_version_id == a1.id))
    assert (row.key, row.by_id, row.dropped) == ({"correct": ["C"]}, psych.id, False)
    assert row.reason.startswith("Option C")
    event = db.scalar(select(ItemEvent).where(ItemEvent.action == "rekeyed"))
    assert (event.actor_id, event.changes["key"]["to"]) == (psych.id, {"correct": ["C"]})

    # results are superseded, never edited: the old rows stand unchanged, the newest wins
    assert db.get(Result, p_result.id).percent == 60.0
    new_p = reads.current_result(db, p_result.attempt_id)
    assert (new_p.supersedes_id, new_p.rekey_id, new_p.percent, new_p.passed) == (
        p_result.id, row.id, 40.0, False)
    assert reads.current_result(db, s_result.attempt_id).id == s_result.id
    assert reads.release_status(db, new_p.id).status == "released"
    # the new pass earned its badge; the old pass's badge is not revoked (it is reported)
    new_f = reads.current_result(db, f_result.attempt_id)
    assert db.scalar(select(Credential.id).where(Credential.result_id == new_f.id)) is not None
    assert db.scalars(select(StatusEvent).where(
        StatusEvent.credential_id == badge_of_old_pass)).all() == []
    # the workspace counts each attempt once, by its standing result
    [summary] = [s for s in exam_summaries(db) if s.exam.id == exam.id]
    assert (summary.n_results, summary.pass_rate) == (3, pytest.approx(2 / 3))

    # dropping A3 from scoring: four items count. passer 1/4, failer 2/4, steady 3/4
    rekeys.rekey(db, psych, _version(db, "RS-A3"), dropped=True,
                 reason="Two options are defensible.")
    db.commit()
    now = {a: reads.current_result(db, a) for a in
           (p_result.attempt_id, f_result.attempt_id, s_result.attempt_id)}
    assert [(r.percent, r.passed, r.max_score) for r in now.values()] == [
        (25.0, False, 4.0), (50.0, False, 4.0), (75.0, True, 4.0)]
    # a delivered attempt after the drop is scored the same way: the drop is the standing key
    _, later = _sit(db, make_user, exam, RIGHT)
    assert (later.raw_score, later.max_score, later.percent) == (3.0, 4.0, 75.0)


def test_a_rekey_is_the_psychometricians_and_needs_a_reason(db, make_user, build_exam):
    exam = build_exam(db, code="RK", pass_percent=60)
    _sit(db, make_user, exam, RIGHT)
    a1 = _version(db, "RK-A1")
    for role in ("admin", "item_author", "proctor"):
        with pytest.raises(BankForbidden, match="only psychometrician may re-key"):
            rekeys.rekey(db, make_user(role), a1, key={"correct": ["C"]}, reason="x")
    psych = make_user("psychometrician")
    with pytest.raises(ReviewInputError, match="needs a reason"):
        rekeys.rekey(db, psych, a1, key={"correct": ["C"]}, reason="  ")
    with pytest.raises(ItemDefinitionError, match="key names unknown options"):
        rekeys.rekey(db, psych, a1, key={"correct": ["Z"]}, reason="typo")
    with pytest.raises(ReviewInputError, match="changes nothing"):
        rekeys.rekey(db, psych, a1, key={"correct": ["B"]}, reason="same")
    db.rollback()
    assert db.scalars(select(ItemRekey)).all() == []
    assert db.scalar(select(Result.id).where(Result.supersedes_id.is_not(None))) is None


def test_a_held_result_stays_held_when_rescored(db, make_user, build_exam):
    exam = build_exam(db, code="RH", pass_percent=60)
    _, result = _sit(db, make_user, exam, {**RIGHT, "A1": "C"})
    db.add(ResultRelease(result_id=result.id, status="held", reason="awaiting review"))
    db.commit()
    rekeys.rekey(db, make_user("psychometrician"), _version(db, "RH-A1"),
                 key={"correct": ["C"]}, reason="Key error.")
    db.commit()
    new = reads.current_result(db, result.attempt_id)
    assert new.id != result.id and new.percent == 100.0
    assert reads.release_status(db, new.id).status == "held"
    # no badge before the proctor's verdict: the new pass was not announced as released
    assert db.scalar(select(Credential.id).where(Credential.result_id == new.id)) is None


def test_a_numeric_item_is_rekeyed_from_the_item_page_and_rescored(db, make_user, signin, client,
                                                                   csrf_token):
    """The page's re-key form is the type's editor fields: a numeric entry item keyed 1500
    exactly gets a tolerance of 20, and the candidate who typed 1510 now earns the point
    (0 of 1 -> 1 of 1: 0 % fail -> 100 % pass at a 60 % pass mark)."""
    from assessment.exams import create_exam
    from itembank.authoring import create_blueprint, create_form, create_item, publish_version

    bp = create_blueprint(db, code="NR-BP", name="NR", domains=[
        {"code": "A", "name": "A", "weight": 1, "items_on_form": 1}])
    version = publish_version(db, create_item(
        db, code="NR-A1", item_type_name="numeric_entry", domain_code="A",
        stem="How many mg?", interaction={"unit": "mg"}, key={"value": 1500},
        scoring={"tolerance": 0}))
    form = create_form(db, code="NR-F1", blueprint=bp, versions=[version])
    exam = create_exam(db, code="NR", title="Exam NR", blueprint=bp, forms=[form],
                       time_limit_seconds=600, pass_percent=60, instructions=["Answer."],
                       agreement="Alone.", policy={}, shuffle_items=False, shuffle_options=False)
    db.commit()
    candidate = make_user("candidate")
    attempt = service.start_attempt(db, candidate, exam, grace_seconds=5)
    service.save_responses(db, attempt, [service.SaveRequest(1, version.id, "1510", False)],
                           grace_seconds=5)
    result = service.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    assert (result.raw_score, result.passed) == (0.0, False)

    psych = make_user("psychometrician")
    signin(client, psych)
    page = client.get("/bank/items/NR-A1").get_data(as_text=True)
    assert 'id="f-value"' in page and 'value="1500"' in page and 'id="f-tolerance"' in page
    url = "/bank/items/NR-A1/versions/1/rekeys"
    # a bad tolerance is refused beside its field, and nothing is written
    bad = client.post(url, data={"csrf_token": csrf_token(client), "value": "1500",
                                 "tolerance": "-3", "tolerance_mode": "absolute",
                                 "reason": "Rounding in the source table."})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="f-tolerance-error"' in html
    assert "at least 0" in html and 'aria-invalid="true"' in html
    assert db.scalars(select(ItemRekey)).all() == []
    # nor is a re-key without a reason
    no_reason = client.post(url, data={"csrf_token": csrf_token(client), "value": "1500",
                                       "tolerance": "20", "tolerance_mode": "absolute"})
    assert no_reason.status_code == 422 and 'id="rk-reason-error"' in no_reason.get_data(
        as_text=True)
    ok = client.post(url, data={"csrf_token": csrf_token(client), "value": "1500",
                                "tolerance": "20", "tolerance_mode": "absolute",
                                "unit": "ignored: content is not re-keyed",
                                "reason": "Rounding in the source table."})
    assert ok.status_code == 200, ok.get_data(as_text=True)[:800]
    db.rollback()
    db.expire_all()
    row = db.scalar(select(ItemRekey))
    assert (row.key, row.scoring, row.by_id) == ({"value": 1500.0}, {"tolerance": 20.0}, psych.id)
    assert db.get(ItemVersion, version.id).interaction == {"unit": "mg"}
    now = reads.current_result(db, attempt.id)
    assert (now.raw_score, now.percent, now.passed, now.supersedes_id) == (
        1.0, 100.0, True, result.id)
