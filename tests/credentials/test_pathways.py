"""The pathway evaluator (``credentials.pathways``) against a table of cases: required and
elective components, revoked, suspended, expired and renewed components, nested stacks
(clusters), exam prerequisites and training completions; and the issuing of completed stacks
and clusters, whose evidence names what completed them. Real database (SQLite and PostgreSQL),
real signed credentials, real status events.

The expected answers are worked by hand from the rule "A and B, plus 2 of C, D, E, F": a holder
needs A, B and any two of C-F, each valid at the moment of evaluation (not revoked, not
suspended, not expired; the newest valid credential of an achievement counts).
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from credentials import issuance, pathway_rules, pathways, revocation, trainings
from credentials.models import Credential
from credentials.pathways import Elective, Ref, Rule
from microcred.records import records

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
LONG_AGO = NOW - dt.timedelta(days=400)


def _a(db, cfg, code, validity_days=None):
    return issuance.create_achievement(db, cfg, code=code, name=f"Badge {code}",
                                       description=f"{code}.", validity_days=validity_days)


def _rule(required="", electives=""):
    return pathway_rules.parse(required, electives)


@pytest.fixture
def program(db, cred_cfg):
    """Achievements A-F (C expires after 30 days), the stack P = "A and B, plus 2 of C-F"."""
    ach = {c: _a(db, cred_cfg, c, validity_days=30 if c == "C" else None) for c in "ABCDEF"}
    p = _a(db, cred_cfg, "P")
    pathway_rules.save(db, _rule("A, B", "2 of C, D, E, F"), achievement=p)
    db.commit()
    return ach, p


def _give(db, cfg, holder, achievement, *, at=NOW - dt.timedelta(days=1)):
    return issuance.issue(db, cfg, achievement=achievement, holder=holder, kind="exam",
                          evidence=[], now=at)


# (holds, then what happens to them, expected complete, expected still_needed, missing codes)
CASES = [
    ("A B C D", {}, True, 0, []),
    ("A B C D E F", {}, True, 0, []),
    ("A C D E", {}, False, 1, ["B"]),
    ("A B C", {}, False, 1, ["D", "E", "F"]),
    ("", {}, False, 4, ["A", "B", "C", "D", "E", "F"]),
    ("A B C D", {"D": "revoke"}, False, 1, ["D", "E", "F"]),
    ("A B C D", {"D": "suspend"}, False, 1, ["D", "E", "F"]),
    ("A B C D", {"D": "suspend-restore"}, True, 0, []),
    ("A B C D", {"C": "expired"}, False, 1, ["C", "E", "F"]),
    ("A B C D", {"C": "expired-renewed"}, True, 0, []),
    ("A B D E", {"A": "revoke"}, False, 1, ["A"]),
]


def test_evaluator_table(db, cred_cfg, program, make_user):
    ach, stack = program
    for n, (holds, events, complete, needed, missing) in enumerate(CASES):
        user = make_user("candidate", email=f"case{n}@example.org")
        holder = records().person(db, user.id)
        for code in holds.split():
            what = events.get(code, "")
            at = LONG_AGO if what.startswith("expired") else NOW - dt.timedelta(days=1)
            cred = _give(db, cred_cfg, holder, ach[code], at=at)
            if what == "expired-renewed":
                _give(db, cred_cfg, holder, ach[code], at=NOW - dt.timedelta(days=2))
            for action in what.split("-"):
                if action in ("revoke", "suspend", "restore"):
                    getattr(revocation, action)(db, cred_cfg, cred, reason="test",
                                                by_user_id=None)
        db.commit()
        p = pathways.evaluate(db, user.id, stack, now=NOW)
        case = f"case {n}: holds {holds!r} {events}"
        assert p.complete is complete, case
        assert p.still_needed == needed, case
        assert sorted(c.ref.code for c in p.missing) == missing, case
        assert p.total_needed == 4, case
        # the counted components are what a stack credential would name as evidence
        if complete:
            assert len(p.counted) == 4 and all(c.met for c in p.counted), case


def test_states_and_expiry_of_components(db, cred_cfg, program, make_user):
    ach, stack = program
    user = make_user("candidate")
    holder = records().person(db, user.id)
    _give(db, cred_cfg, holder, ach["A"])
    c = _give(db, cred_cfg, holder, ach["C"], at=NOW - dt.timedelta(days=10))
    old = _give(db, cred_cfg, holder, ach["D"], at=LONG_AGO)
    revocation.revoke(db, cred_cfg, old, reason="fraud", by_user_id=None)
    db.commit()
    p = pathways.evaluate(db, user.id, stack, now=NOW)
    states = {comp.ref.code: comp.state for g in p.groups for comp in g.components}
    assert states == {"A": "valid", "B": "missing", "C": "valid", "D": "revoked",
                      "E": "missing", "F": "missing"}
    # C (30 days from 10 days ago) is the first counted component to stop counting
    assert p.expires_at == c.valid_until == NOW - dt.timedelta(days=10) + dt.timedelta(days=30)
    # twenty-one days on, C has expired: the same rule, evaluated then, counts one fewer
    later = pathways.evaluate(db, user.id, stack, now=NOW + dt.timedelta(days=21))
    assert later.still_needed == p.still_needed + 1
    assert p.rule.describe() == "A and B, plus 2 of C, D, E, F"


def test_cluster_of_stacks_is_issued_with_its_stacks_as_evidence(db, cred_cfg, make_user):
    ach = {c: _a(db, cred_cfg, c) for c in "ABCD"}
    s1, s2 = _a(db, cred_cfg, "S1"), _a(db, cred_cfg, "S2")
    cluster = _a(db, cred_cfg, "CL")
    pathway_rules.save(db, _rule("A, B"), achievement=s1)
    pathway_rules.save(db, _rule("", "1 of C, D"), achievement=s2)
    pathway_rules.save(db, _rule("S1, S2"), achievement=cluster)
    db.commit()
    user = make_user("candidate")
    holder = records().person(db, user.id)
    for code in "AB":
        _give(db, cred_cfg, holder, ach[code])
    db.commit()
    catalog = pathways.Catalog.load(db)
    assert catalog.is_cluster(cluster) and not catalog.is_cluster(s1)
    p = pathways.evaluate(db, user.id, cluster)
    s1_part = next(c for c in p.required.components if c.ref.code == "S1")
    # S1 is not held yet; its own progress says it is complete, S2's says what it needs
    assert not s1_part.met and s1_part.stack is not None and s1_part.stack.complete
    assert [s.ref.code for s in p.next_steps] == ["C", "D"]
    issued = pathways.award_completed(db, cred_cfg, holder)
    assert [c.achievement.code for c in issued] == ["S1"]
    _give(db, cred_cfg, holder, ach["D"])
    issued = pathways.award_completed(db, cred_cfg, holder)
    # S2 completes, and with it the cluster, in one call
    assert [c.achievement.code for c in issued] == ["S2", "CL"]
    cl = issued[-1]
    evidence = cl.json["evidence"]
    assert [(e["name"], e["genre"]) for e in evidence] == [
        ("Badge S1", "Stack credential"), ("Badge S2", "Stack credential")]
    held = {c.achievement.code: c for c in db.scalars(select(Credential).where(
        Credential.holder_id == user.id))}
    assert {e["id"] for e in evidence} == {held["S1"].json["id"], held["S2"].json["id"]}
    assert pathways.award_completed(db, cred_cfg, holder) == []  # never twice


def test_exam_prerequisites_with_a_training(db, cred_cfg, build_exam, make_user):
    gated = build_exam(db, code="ADV")
    basic_exam = build_exam(db, code="BASIC")
    basic = issuance.create_achievement(db, cred_cfg, code="BAS", name="Basics",
                                        description="b", exam_id=basic_exam.id)
    trainings.create_training(db, code="SAFE", name="Safety workshop", validity_days=365)
    pathway_rules.save(db, _rule("BAS, training:SAFE"), exam_id=gated.id)
    db.commit()
    user = make_user("candidate", email="pre@example.org")
    holder = records().person(db, user.id)

    gate = pathways.eligible_for_exam(db, user.id, gated.id, now=NOW)
    assert not gate.open
    assert gate.refusal == (
        "This exam is open to holders of Basics and training Safety workshop. Next step: earn "
        f"Basics by passing the exam {basic_exam.title} (BASIC); complete the training Safety "
        "workshop.")
    assert pathways.eligible_for_exam(db, user.id, basic_exam.id, now=NOW).open  # no rule

    _give(db, cred_cfg, holder, basic)
    rows = trainings.validate_completions(db, [("api", {
        "email": "PRE@example.org", "training": "SAFE", "completed_on": "2025-01-01"})],
        now=NOW)
    trainings.record(db, rows, source="admin")
    db.commit()
    # completed 2025-01-01, counts 365 days: expired on 2026-01-01, before NOW
    gate = pathways.eligible_for_exam(db, user.id, gated.id, now=NOW)
    assert not gate.open and "again (your completion has expired)" in gate.refusal
    assert pathways.eligible_for_exam(db, user.id, gated.id,
                                      now=dt.datetime(2025, 12, 31, tzinfo=dt.UTC)).open
    trainings.record(db, trainings.validate_completions(db, [("api", {
        "email": "pre@example.org", "training": "SAFE", "completed_on": "2026-05-01"})],
        now=NOW), source="lms")
    db.commit()
    assert pathways.eligible_for_exam(db, user.id, gated.id, now=NOW).open
    # an empty rule removes the prerequisites
    pathway_rules.save(db, Rule(), exam_id=gated.id)
    assert pathways.exam_rule(db, gated.id) is None


def test_existing_n_of_m_stacks_read_the_same(db, cred_cfg):
    for c in "XYZ":
        _a(db, cred_cfg, c)
    two_of_three = issuance.create_achievement(
        db, cred_cfg, code="N2", name="Two", description="d", stack_components=list("XYZ"),
        stack_required=2)
    all_three = issuance.create_achievement(
        db, cred_cfg, code="N3", name="All", description="d", stack_components=list("XYZ"))
    assert pathways.rule_for(db, two_of_three) == Rule(electives=(
        Elective(2, (Ref("credential", "X"), Ref("credential", "Y"), Ref("credential", "Z"))),))
    assert pathways.rule_for(db, all_three).describe() == "X, Y and Z"
