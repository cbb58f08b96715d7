"""``result_released`` carries what its receivers need (issue 10, item 2): the candidate, the
exam, the score and times, and whether the attempt was proctored as proctoring's own policy
decided; an exam without an identity check but with camera snapshots is proctored. Real
delivery and proctoring on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from microcred import signals
from microcred.records import ReleasedResult


@pytest.fixture
def released():
    heard: list[ReleasedResult] = []

    def receiver(sender, *, session, released, **_):
        heard.append(released)

    signals.result_released.connect(receiver)
    yield heard
    signals.result_released.disconnect(receiver)


@pytest.mark.parametrize("policy, proctored", [
    (None, False),
    ({"proctoring": {"identity": "none", "review": "never", "snapshot_interval_s": 30}}, True),
])
def test_the_release_carries_the_summary(db, make_user, build_exam, take_exam, released,
                                         policy, proctored):
    exam = build_exam(db, code="REL", policy=policy)
    candidate = make_user("candidate", name="Ada Lovelace")
    result = take_exam(db, candidate, exam)
    (summary,) = released
    assert summary.result_id == result.id and summary.attempt_id == result.attempt_id
    assert (summary.candidate.id, summary.candidate.display_name, summary.candidate.email) == \
        (candidate.id, "Ada Lovelace", candidate.email)
    assert (summary.exam.id, summary.exam.code, summary.exam.title) == (exam.id, "REL", exam.title)
    assert summary.exam.domains and summary.exam.pass_percent == exam.pass_percent
    assert (summary.percent, summary.pass_percent, summary.passed) == \
        (result.percent, result.pass_percent, True)
    assert summary.scored_at == result.created_at
    assert summary.released_at >= summary.scored_at
    assert summary.proctored is proctored
    assert (summary.proctoring is not None) is proctored
