"""An exam's policy is typed by the packages that own its sections (issue 10, item 8): each
package registers a validator for its section (``microcred.policy``), run whenever the policy is
written, on create and on update, so a malformed proctoring policy is refused with a message
naming the key instead of surfacing as a 409 when a candidate presses Start. On SQLite and
PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from assessment.exams import Exam
from assessment.retakes import parse_retake_policy
from microcred.packages import Package, packages
from microcred.policy import PolicyError, check_policy, register_policy_section, sections
from proctoring.policy import PolicyError as ProctoringPolicyError
from proctoring.policy import parse_policy

BAD_PROCTORING = [
    ({"identity": "camera"}, "identity"),
    ({"identity": [""]}, "identity"),
    ({"review": "sometimes"}, "review"),
    ({"fullscreen": "yes"}, "fullscreen"),
    ({"snapshot_interval_s": 2}, "snapshot_interval_s"),
    ({"max_focus_losses": -1}, "max_focus_losses"),
    ({"offline_grace_s": "30"}, "offline_grace_s"),
    # a misspelt field used to be ignored silently: the exam ran with the default
    ({"snapshot_interval": 30}, "snapshot_interval"),
    ("proctor", "object"),
]


@pytest.mark.parametrize("raw, key", BAD_PROCTORING)
def test_a_bad_proctoring_policy_is_refused_at_creation_naming_the_key(db, build_exam, raw, key):
    with pytest.raises(ProctoringPolicyError, match=key) as refused:
        build_exam(db, code="POL-NEW", policy={"proctoring": raw})
    assert str(refused.value).startswith("proctoring policy")
    assert refused.value.status == 400
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Exam)) == 0


@pytest.mark.parametrize("raw, key", BAD_PROCTORING)
def test_a_bad_proctoring_policy_is_refused_on_update_and_nothing_is_stored(db, build_exam, raw,
                                                                            key):
    good = {"proctoring": {"identity": "none", "review": "never"},
            "retake": {"max_attempts": 2, "wait_hours": 0}}
    exam = build_exam(db, code="POL-UPD", policy=good)
    db.commit()
    with pytest.raises(ProctoringPolicyError, match=key):
        exam.policy = {**exam.policy, "proctoring": raw}
    db.rollback()
    assert db.get(Exam, exam.id).policy == good


def test_a_section_nobody_owns_is_refused_naming_it(db, build_exam):
    # a misspelt section would leave the exam unproctored without a word
    with pytest.raises(PolicyError, match="unknown section 'proctorng'") as refused:
        build_exam(db, code="POL-TYPO", policy={"proctorng": {"identity": "proctor"}})
    assert refused.value.extra == {"field": "proctorng"}
    assert "proctoring" in str(refused.value) and "retake" in str(refused.value)
    db.rollback()
    with pytest.raises(PolicyError, match="must be an object"):
        check_policy(["proctoring"])


def test_each_section_is_registered_by_its_package():
    declared = {name: package.name for package in packages() for name in package.policy}
    assert declared == {"retake": "assessment", "proctoring": "proctoring"}
    assert sections()["retake"] is parse_retake_policy
    assert sections()["proctoring"] is parse_policy
    # every section's error is a policy error, which the edge answers with a 400
    assert issubclass(ProctoringPolicyError, PolicyError)
    assert Package(name="x", order=99).policy == {}


def test_a_plugin_section_is_checked_and_a_section_has_one_owner():
    def badge_section(raw):
        if not isinstance(raw, str):
            raise TypeError("must be an achievement code")
        return raw

    register_policy_section("test_badge", badge_section)
    try:
        check_policy({"test_badge": "CODING-101"})
        # a validator's own TypeError or ValueError still says which section it came from
        with pytest.raises(PolicyError, match="test_badge: must be an achievement code"):
            check_policy({"test_badge": 7})
        with pytest.raises(RuntimeError, match="already registered"):
            register_policy_section("proctoring", badge_section)
    finally:
        from microcred import policy

        policy._sections.pop("test_badge")
