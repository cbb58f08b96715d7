"""Issuance on a released pass, revocation and suspension, expiry and recertification, stacks:
on the real database (SQLite and PostgreSQL), through delivery's real signal."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

import credentials.issuance  # noqa: F401  (connects the result_released receiver)
from credentials import issuance, issuers, revocation, stacks
from credentials.models import Credential, StatusEvent
from credentials.resolution import DatabaseResolver
from credentials.verify import verify
from microcred.db import ImmutableRowError


def _achievement(db, cfg, exam, code="PASS-1", **kw):
    a = issuance.create_achievement(db, cfg, code=code, name=f"Badge {code}",
                                    description="Can do the thing.", exam_id=exam.id, **kw)
    db.commit()
    return a


def test_a_pass_issues_a_verifiable_credential(db, cred_cfg, make_user, build_exam, take_exam):
    exam = build_exam(db, code="E1", pass_percent=60)
    achievement = _achievement(db, cred_cfg, exam, validity_days=365)
    ada = make_user("candidate", email="ada@example.org", name="Ada Lovelace")
    take_exam(db, ada, exam)
    cred = db.scalar(select(Credential).where(Credential.holder_id == ada.id))
    assert cred is not None and cred.kind == "exam" and cred.achievement_id == achievement.id
    doc = cred.json
    subject = doc["credentialSubject"]
    assert subject["achievement"]["alignment"][0]["targetCode"] == "A"
    assert subject["result"][0]["value"] == "100"
    assert subject["achievement"]["resultDescription"][0]["requiredValue"] == "60"
    assert subject["identifier"][0]["identityHash"].startswith("sha256$")
    assert "ada@example.org" not in cred.document
    assert doc["validUntil"] > doc["validFrom"]
    assert [(e["type"], e["statusPurpose"]) for e in doc["credentialStatus"]] == [
        ("BitstringStatusListEntry", "revocation"), ("BitstringStatusListEntry", "suspension")]
    assert len({e["statusListIndex"] for e in doc["credentialStatus"]}) == 1
    report = verify(cred.document, DatabaseResolver(db, cred_cfg))
    assert report.verified, report.to_dict()
    token = issuance.as_jwt(db, cred_cfg, cred)
    assert verify(token, DatabaseResolver(db, cred_cfg)).verified


def test_a_fail_issues_nothing(db, cred_cfg, make_user, build_exam, take_exam):
    exam = build_exam(db, code="E2")
    _achievement(db, cred_cfg, exam)
    bob = make_user("candidate")
    take_exam(db, bob, exam, correct=False)
    assert db.scalar(select(Credential.id)) is None


def test_revoke_suspend_restore_are_events_and_lists(db, cred_cfg, make_user, build_exam,
                                                     take_exam):
    exam = build_exam(db, code="E3")
    _achievement(db, cred_cfg, exam)
    admin = make_user("admin")
    cand = make_user("candidate")
    take_exam(db, cand, exam)
    cred = db.scalar(select(Credential))
    resolver = DatabaseResolver(db, cred_cfg)

    revocation.suspend(db, cred_cfg, cred, reason="misconduct investigation opened",
                       by_user_id=admin.id)
    db.commit()
    report = verify(cred.document, DatabaseResolver(db, cred_cfg))
    assert report.status == "suspended" and report.failed_step.name == "status"
    assert "misconduct investigation" in report.step("status").message
    revocation.restore(db, cred_cfg, cred, reason="cleared", by_user_id=admin.id)
    db.commit()
    assert verify(cred.document, resolver).verified

    with pytest.raises(revocation.StatusChangeError, match="needs a reason"):
        revocation.revoke(db, cred_cfg, cred, reason=" ", by_user_id=admin.id)
    revocation.revoke(db, cred_cfg, cred, reason="cheating confirmed", by_user_id=admin.id)
    db.commit()
    report = verify(cred.document, resolver)
    assert report.status == "revoked" and not report.verified
    assert report.step("proof").ok  # the signature is still fine; the verdict is not
    with pytest.raises(revocation.StatusChangeError, match="final"):
        revocation.restore(db, cred_cfg, cred, reason="oops", by_user_id=admin.id)
    events = db.scalars(select(StatusEvent).order_by(StatusEvent.id)).all()
    assert [e.action for e in events] == ["suspend", "restore", "revoke"]
    assert events[-1].by_user_id == admin.id
    # never edited in place
    cred.document = cred.document.replace("Badge", "Forged")
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()


def test_status_list_is_published_signed_and_fresh(db, cred_cfg, make_user, build_exam,
                                                   take_exam):
    exam = build_exam(db, code="E4")
    _achievement(db, cred_cfg, exam)
    cand = make_user("candidate")
    take_exam(db, cand, exam)
    cred = db.scalar(select(Credential))
    doc = revocation.published_list(db, cred_cfg, cred.status_list_id, "revocation")
    assert doc["credentialSubject"]["statusPurpose"] == "revocation"
    assert doc["proof"][0]["cryptosuite"] == "eddsa-rdfc-2022"
    revocation.revoke(db, cred_cfg, cred, reason="r", by_user_id=None)
    db.commit()
    fresh = revocation.published_list(db, cred_cfg, cred.status_list_id, "revocation")
    assert fresh["credentialSubject"]["encodedList"] != doc["credentialSubject"]["encodedList"]


def test_key_rotation_keeps_old_credentials_verifiable(db, cred_cfg, make_user, build_exam,
                                                       take_exam):
    exam = build_exam(db, code="E5")
    achievement = _achievement(db, cred_cfg, exam)
    first = make_user("candidate")
    take_exam(db, first, exam)
    old = db.scalar(select(Credential))
    issuers.rotate_key(db, cred_cfg, achievement.issuer)
    db.commit()
    second = make_user("candidate")
    take_exam(db, second, exam)
    new = db.scalar(select(Credential).where(Credential.holder_id == second.id))
    assert new.issuer_key_id != old.issuer_key_id
    resolver = DatabaseResolver(db, cred_cfg)
    assert verify(old.document, resolver).verified
    assert verify(new.document, resolver).verified


def test_expiry_listing_and_recertification_by_exam_and_evidence(
        db, cred_cfg, make_user, build_exam, take_exam):
    exam = build_exam(db, code="E6")
    recert_exam = build_exam(db, code="E6R")
    _achievement(db, cred_cfg, exam, validity_days=30, recertification_exam_id=recert_exam.id)
    cand = make_user("candidate")
    take_exam(db, cand, exam)
    old = db.scalar(select(Credential))
    assert [c.id for c in issuance.expiring(db, within_days=60)] == [old.id]
    later = old.valid_until + dt.timedelta(days=1)
    report = verify(old.document, DatabaseResolver(db, cred_cfg), now=later)
    assert report.status == "expired" and report.failed_step.name == "dates"

    take_exam(db, cand, recert_exam)
    renewed = db.scalar(select(Credential).where(Credential.id != old.id))
    assert renewed.kind == "recertification" and renewed.supersedes_id == old.id
    assert any(e.get("id") == old.json["id"] for e in renewed.json["evidence"])
    assert old.id not in [c.id for c in issuance.expiring(db, within_days=60)]

    again = issuance.recertify_with_evidence(
        db, cred_cfg, credential=renewed, narrative="40 hours of accredited CPD, 2026",
        by_user_id=None)
    db.commit()
    assert again.supersedes_id == renewed.id
    assert verify(again.document, DatabaseResolver(db, cred_cfg)).verified
    with pytest.raises(issuance.IssuanceError, match="already renewed"):
        issuance.recertify_with_evidence(db, cred_cfg, credential=renewed, narrative="x",
                                         by_user_id=None)


def test_stack_completes_automatically(db, cred_cfg, make_user, build_exam, take_exam):
    exams = [build_exam(db, code=f"S{i}") for i in range(3)]
    for i, e in enumerate(exams):
        _achievement(db, cred_cfg, e, code=f"COMP-{i}")
    stack = issuance.create_achievement(
        db, cred_cfg, code="PATH", name="Pathway", description="Two of three.",
        stack_components=["COMP-0", "COMP-1", "COMP-2"], stack_required=2)
    db.commit()
    cand = make_user("candidate")
    take_exam(db, cand, exams[0])
    [p] = stacks.progress(db, cand.id)
    assert [a.code for a in p.earned] == ["COMP-0"] and not p.complete and p.held is None
    take_exam(db, cand, exams[2])
    held = db.scalar(select(Credential).where(Credential.achievement_id == stack.id))
    assert held is not None and held.kind == "stack"
    names = {e["name"] for e in held.json["evidence"]}
    assert names == {"Badge COMP-0", "Badge COMP-2"}
    assert verify(held.document, DatabaseResolver(db, cred_cfg)).verified
    take_exam(db, cand, exams[1])  # a third component does not issue the stack twice
    assert len(db.scalars(select(Credential).where(
        Credential.achievement_id == stack.id)).all()) == 1
    [p] = stacks.progress(db, cand.id)
    assert p.complete and p.held is not None and [a.code for a in p.remaining] == []
    assert json.loads(held.document)["credentialSubject"]["achievement"]["achievementType"] == \
        "MicroCredential"
