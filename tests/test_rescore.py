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
