"""The item bank's review workflow (issue 11): the lifecycle's moves are checked in one place,
who may do what, review stages signed off per round, the history of every change, and that
nothing submitted or published is ever edited. On SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from itembank import lifecycle, workflow
from itembank.models import (
    APPROVED,
    DRAFT,
    IN_REVIEW,
    PRETEST,
    RETIRED,
    STATUSES,
    ItemEvent,
    ItemVersion,
)
from itembank.types import ItemDefinitionError
from microcred.db import ImmutableRowError

OPTIONS = {"options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]}


def _draft(db, author, code="WF-1", **extra):
    return workflow.create_draft(
        db, author, code=code, item_type_name="single_choice", domain_code="A",
        stem="Which option?", interaction=OPTIONS, key={"correct": ["B"]}, **extra)


@pytest.mark.parametrize(("from_status", "to_status", "allowed"), [
    (DRAFT, IN_REVIEW, True), (IN_REVIEW, DRAFT, True), (IN_REVIEW, APPROVED, True),
    (IN_REVIEW, PRETEST, True), (PRETEST, APPROVED, True), (PRETEST, RETIRED, True),
    (APPROVED, RETIRED, True),
    (DRAFT, APPROVED, False), (DRAFT, RETIRED, False), (APPROVED, DRAFT, False),
    (APPROVED, IN_REVIEW, False), (RETIRED, APPROVED, False), (RETIRED, DRAFT, False),
    (APPROVED, PRETEST, False), (IN_REVIEW, RETIRED, False),
])
def test_the_lifecycle_table(from_status, to_status, allowed):
    assert lifecycle.can_transition(from_status, to_status) is allowed
    if not allowed:
        with pytest.raises(lifecycle.TransitionRefused) as refused:
            lifecycle.check_transition(from_status, to_status)
        assert refused.value.status == 409
    # content reviewed elsewhere (the demo, imports) may skip review: draft -> approved/pretest
    assert lifecycle.can_transition(DRAFT, APPROVED, without_review=True)
    assert not lifecycle.can_transition(RETIRED, DRAFT, without_review=True)
    assert set(lifecycle.TRANSITIONS) == set(STATUSES)


def test_refusals_say_what_can_happen_instead():
    assert lifecycle.refusal(APPROVED, DRAFT) == (
        "This version is approved, so it cannot become draft (it can become: retired).")
    assert lifecycle.refusal(RETIRED, APPROVED) == (
        "This version is retired: it cannot change any more.")
    assert "not an item status" in lifecycle.refusal(DRAFT, "published")


def test_author_drafts_reviewer_signs_off_and_approves_with_history(db, make_user):
    author = make_user("item_author")
    psych = make_user("psychometrician")
    admin = make_user("admin")
    workflow.set_review_stages(db, admin, [("content", "Content review"),
                                           ("bias", "Bias review")])
    v = _draft(db, author, keywords="Coding, ICD-10, coding", subdomain_code="A.1",
               cognitive_level="apply", reference="ICD-10-CM guidelines I.A")
    assert (v.status, v.author_id, v.keywords) == (DRAFT, author.id, ["coding", "icd-10"])
    workflow.edit_draft(db, author, v, stem="Which option is right?", key={"correct": ["C"]})
    workflow.submit_for_review(db, author, v, note="Ready for a look.")
    assert (v.status, v.review_round) == (IN_REVIEW, 1)

    # an author neither approves nor signs off a stage they were not assigned
    with pytest.raises(workflow.BankForbidden, match="only admin, psychometrician may move"):
        workflow.approve(db, author, v)
    with pytest.raises(workflow.BankForbidden, match="not assigned to the Content review"):
        workflow.sign_off(db, author, v, "content")
    # every active stage must be signed off before approval
    with pytest.raises(workflow.ReviewError, match="Content review, Bias review are not signed"):
        workflow.approve(db, psych, v)
    workflow.assign_reviewer(db, psych, v, author, stage_code="content")
    workflow.sign_off(db, author, v, "content", body="Clinically right.")
    with pytest.raises(workflow.ReviewError, match="Bias review are not signed"):
        workflow.approve(db, psych, v)
    workflow.sign_off(db, psych, v, "bias")
    workflow.approve(db, psych, v, note="Good item.")
    db.commit()
    assert (v.status, v.is_published) == (APPROVED, True)
    assert v.published_at is not None

    events = workflow.history(db, v.item_id)
    assert [e.action for e in reversed(events)] == [
        "created", "revised", "submitted", "reviewer_assigned", "signed_off", "signed_off",
        "approved"]
    by_action = {e.action: e for e in events}
    assert by_action["revised"].actor_id == author.id
    assert by_action["revised"].summary == "changed stem, key"
    assert by_action["revised"].changes["key"] == {"from": {"correct": ["B"]},
                                                   "to": {"correct": ["C"]}}
    assert by_action["approved"].actor_id == psych.id
    assert by_action["approved"].summary == "in review -> approved: Good item."
    assert by_action["approved"].changes == {"status": {"from": IN_REVIEW, "to": APPROVED}}


def test_changes_requested_start_a_new_round(db, make_user):
    author, psych, admin = (make_user(r) for r in ("item_author", "psychometrician", "admin"))
    workflow.set_review_stages(db, admin, [("content", "Content review")])
    v = _draft(db, author)
    workflow.submit_for_review(db, author, v)
    workflow.sign_off(db, psych, v, "content")
    with pytest.raises(workflow.ReviewInputError, match="say what should change"):
        workflow.request_changes(db, psych, v, "  ")
    workflow.request_changes(db, psych, v, "Option D is also defensible; reword it.")
    assert v.status == DRAFT
    workflow.edit_draft(db, author, v, interaction={"options": [
        {"id": x, "text": f"Choice {x}"} for x in "ABCD"]})
    workflow.submit_for_review(db, author, v)
    assert v.review_round == 2
    # the first round's sign-off does not carry over to the reworded item
    assert [s.code for s in workflow.pending_stages(db, v)] == ["content"]
    workflow.sign_off(db, psych, v, "content", verdict="changes", body="Still ambiguous.")
    assert v.status == DRAFT
    db.commit()
    assert [e.action for e in workflow.history(db, v.item_id)][:2] == [
        "changes_requested", "signed_off"]


def test_nothing_out_of_draft_is_edited(db, make_user):
    author, psych = make_user("item_author"), make_user("psychometrician")
    v = _draft(db, author)
    workflow.submit_for_review(db, author, v)
    db.commit()
    with pytest.raises(workflow.authoring.PublishedVersionError, match="is in_review"):
        workflow.edit_draft(db, author, v, stem="Sneaky change")
    db.rollback()
    # nor through the ORM directly: the row's content is frozen once submitted
    v = db.get(ItemVersion, v.id)
    v.stem = "Sneaky change"
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()
    # and a status may only move as the lifecycle says, whoever writes it
    v = db.get(ItemVersion, v.id)
    v.status = RETIRED
    with pytest.raises(lifecycle.TransitionRefused):
        db.flush()
    db.rollback()
    v = db.get(ItemVersion, v.id)
    workflow.approve(db, psych, v)
    db.commit()
    # editing a published item opens a new draft; asking again gives the same draft
    draft = workflow.open_draft(db, author, v.item)
    assert (draft.version, draft.status, draft.stem) == (2, DRAFT, "Which option?")
    assert workflow.open_draft(db, author, v.item).id == draft.id
    db.commit()
    assert db.get(ItemVersion, v.id).status == APPROVED
    assert db.scalar(select(ItemEvent.action).where(ItemEvent.item_version_id == draft.id)) \
        == "new_version"


def test_roles_outside_the_bank_are_refused_and_nothing_is_written(db, make_user):
    author = make_user("item_author")
    v = _draft(db, author)
    db.commit()
    before = db.scalar(select(ItemEvent.id).order_by(ItemEvent.id.desc()).limit(1))
    for role in ("proctor", "candidate"):
        outsider = make_user(role)
        with pytest.raises(workflow.BankForbidden) as refused:
            _draft(db, outsider, code=f"WF-{role}")
        assert refused.value.status == 403
        with pytest.raises(workflow.BankForbidden):
            workflow.comment(db, outsider, v, "hello")
        with pytest.raises(workflow.BankForbidden):
            workflow.submit_for_review(db, outsider, v)
        db.rollback()
    with pytest.raises(workflow.BankForbidden, match="only admin may configure"):
        workflow.set_review_stages(db, make_user("psychometrician"), [("x", "X")])
    assert db.scalar(select(ItemEvent.id).order_by(ItemEvent.id.desc()).limit(1)) == before
    assert db.get(ItemVersion, v.id).status == DRAFT


def test_bad_inputs_name_the_field(db, make_user):
    author, psych, admin = (make_user(r) for r in ("item_author", "psychometrician", "admin"))
    with pytest.raises(ItemDefinitionError, match="key names unknown options"):
        workflow.create_draft(db, author, code="WF-BAD", item_type_name="single_choice",
                              domain_code="A", stem="S?", interaction=OPTIONS,
                              key={"correct": ["Z"]})
    db.rollback()
    assert workflow.history(db, 0) == []
    with pytest.raises(workflow.ReviewInputError) as bad:
        workflow.set_review_stages(db, admin, [("content", "C"), ("content", "D")])
    assert bad.value.extra["field"] == "code"
    with pytest.raises(workflow.ReviewInputError, match="needs a name"):
        workflow.set_review_stages(db, admin, [("bias", " ")])
    v = _draft(db, author, code="WF-2")
    workflow.submit_for_review(db, author, v)
    with pytest.raises(workflow.ReviewInputError, match="no active review stage 'legal'"):
        workflow.sign_off(db, psych, v, "legal")
    with pytest.raises(workflow.ReviewInputError, match="cannot review items"):
        workflow.assign_reviewer(db, psych, v, make_user("proctor"))
    workflow.approve(db, psych, v)
    with pytest.raises(workflow.ReviewInputError, match="needs a reason") as bad:
        workflow.retire(db, psych, v, "")
    assert bad.value.extra["field"] == "note"
    workflow.retire(db, psych, v, "Superseded by the 2027 guidelines.")
    assert v.status == RETIRED


def test_review_queue_lists_reviews_and_pretest_items_ready_for_calibration(db, make_user):
    author, psych, admin = (make_user(r) for r in ("item_author", "psychometrician", "admin"))
    workflow.set_review_stages(db, admin, [("content", "Content review")])
    waiting = _draft(db, author, code="Q-1")
    workflow.submit_for_review(db, author, waiting)
    workflow.assign_reviewer(db, psych, waiting, psych)
    other = _draft(db, author, code="Q-2")
    workflow.submit_for_review(db, author, other)
    pretest = _draft(db, author, code="Q-3")
    workflow.submit_for_review(db, author, pretest)
    workflow.sign_off(db, psych, pretest, "content")
    workflow.approve(db, psych, pretest, pretest=True)
    few = _draft(db, author, code="Q-4")
    workflow.submit_for_review(db, author, few)
    workflow.sign_off(db, psych, few, "content")
    workflow.approve(db, psych, few, pretest=True)
    db.commit()
    queue = workflow.review_queue(db, response_counts={pretest.id: 250, few.id: 12},
                                  min_responses=200)
    assert [(e.code, e.version.status, e.pending, e.ready_for_calibration) for e in queue] == [
        ("Q-1", IN_REVIEW, ("content",), False), ("Q-2", IN_REVIEW, ("content",), False),
        ("Q-3", PRETEST, (), True)]
    mine = workflow.review_queue(db, min_responses=200, reviewer_id=psych.id)
    assert [e.code for e in mine] == ["Q-1"]

