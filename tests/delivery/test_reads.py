"""Delivery's read API (``assessment.delivery.reads``): which release decision stands, and the
console's progress, on both databases."""
from __future__ import annotations

from assessment.delivery import reads, service
from assessment.delivery.eligibility import outcome
from assessment.delivery.models import Attempt, ResponseSave, Result, ResultRelease
from assessment.psych.results import counted_results
from itembank.models import ItemVersion
from itembank.types import ITEM_TYPES
from microcred.db import utcnow


def _keyed(db, version_id: int):
    v = db.get(ItemVersion, version_id)
    return ["A", "C"] if v.item_type == "multiple_response" else "B"


def _passed_result(db, make_user, exam) -> Result:
    attempt = service.start_attempt(db, make_user("candidate"), exam, grace_seconds=5)
    saves = [service.SaveRequest(i + 1, vid, _keyed(db, vid), False)
             for i, vid in enumerate(attempt.item_order)]
    service.save_responses(db, attempt, saves, grace_seconds=5)
    result = service.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    assert result.passed
    return result


def test_the_newest_release_row_wins_for_every_reader(db, make_user, demo_exam):
    """Release rows of two results interleaved (so "newest of all" and "newest of this result"
    differ): the result page, the retake rule, the badge backfill and the statistics agree."""
    a, b = _passed_result(db, make_user, demo_exam), _passed_result(db, make_user, demo_exam)

    def decide(result: Result, status: str) -> None:
        db.add(ResultRelease(result_id=result.id, status=status, reason="review", by_user_id=None))
        db.commit()

    def readers(result: Result) -> tuple:
        attempt_id = result.attempt_id
        return (reads.release_status(db, result.id).status,
                outcome(db, attempt_id, "submitted"),
                result.id in {p.result_id for p in reads.released_passes(db, demo_exam.id)},
                result.id in {r.result_id for r in db.execute(counted_results(demo_exam.id))})

    decide(a, "held")
    decide(b, "held")
    decide(a, "invalidated")
    assert readers(a) == ("invalidated", "invalidated", False, False)
    assert readers(b) == ("held", "held", False, True)
    decide(b, "released")
    decide(a, "released")
    assert readers(a) == ("released", "passed", True, True)
    assert readers(b) == ("released", "passed", True, True)
    decide(b, "invalidated")
    assert readers(a)[0] == "released" and readers(b)[0] == "invalidated"


def test_is_answered_per_item_type():
    for name in ("single_choice", "multiple_response"):
        t = ITEM_TYPES[name]
        assert not t.is_answered(None) and not t.is_answered([]) and not t.is_answered("")
    assert ITEM_TYPES["single_choice"].is_answered("B")
    assert ITEM_TYPES["multiple_response"].is_answered(["A"])


def test_progress_counts_what_the_item_type_calls_answered(db, make_user, demo_exam):
    """The newest save of each item decides; a cleared answer is not one; empty values saved
    by an older runner are not either; the console's count equals the result's."""
    attempt = service.start_attempt(db, make_user("candidate"), demo_exam, grace_seconds=5)
    first, second, third = attempt.item_order[:3]
    service.save_responses(db, attempt, [
        service.SaveRequest(1, first, _keyed(db, first), False),
        service.SaveRequest(2, second, _keyed(db, second), False),
        service.SaveRequest(3, third, _keyed(db, third), False),
        service.SaveRequest(4, second, None, True),  # cleared (and flagged): not answered
    ], position=2, grace_seconds=5)
    # an empty answer stored as such (not normalized to None), as older saves were
    empty = [] if db.get(ItemVersion, third).item_type == "multiple_response" else ""
    db.add(ResponseSave(attempt_id=attempt.id, item_version_id=third, seq=5, value=empty,
                        flagged=False, saved_at=utcnow()))
    attempt.last_seq = 5
    db.commit()

    got = reads.progress(db, [attempt.id], utcnow())[attempt.id]
    assert (got.answered, got.items, got.position, got.paused) == (1, len(attempt.item_order), 2,
                                                                   False)
    assert 0 < got.remaining_s <= attempt.time_limit_seconds
    assert reads.progress(db, [], utcnow()) == {}

    result = service.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    assert result.answered == got.answered  # one definition of "answered" (the item type's)


def test_item_score_rows_count_what_the_statistics_count(db, make_user, demo_exam):
    """An item's scored responses in counted results: an invalidated result drops out."""
    a, b = _passed_result(db, make_user, demo_exam), _passed_result(db, make_user, demo_exam)
    shared = set(db.get(Attempt, a.attempt_id).item_order) & set(db.get(Attempt, b.attempt_id).item_order)
    version_id = min(shared)
    rows = reads.item_score_rows(db, version_id)
    assert len(rows) == 2 and all(score == maximum > 0 for score, maximum, _ in rows)
    assert sorted(raw for _, _, raw in rows) == sorted([a.raw_score, b.raw_score])
    db.add(ResultRelease(result_id=a.id, status="invalidated", reason="review", by_user_id=None))
    db.commit()
    assert [raw for _, _, raw in reads.item_score_rows(db, version_id)] == [b.raw_score]
