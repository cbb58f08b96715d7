"""A badge's evidence says only what the proctoring record shows (issue 9, finding 16): who
admitted the identity and when, the review's verdict, the camera; nothing from the exam's
policy alone, and no proctoring claim without a proctoring session. Real delivery, proctoring
and issuance on SQLite and PostgreSQL."""
from __future__ import annotations

import secrets

import cv2
import numpy as np
from sqlalchemy import select

import credentials.issuance  # noqa: F401  (connects the result_released receiver)
import proctoring.wiring  # noqa: F401  (connects proctoring's receivers)
from credentials import evidence, issuance
from credentials.models import Credential
from proctoring import events, identity, review
from proctoring.images import ImageVault
from proctoring.sessions import attempt_summary, open_session, session_for_attempt


def _exam(db, cfg, build_exam, code, proctoring):
    exam = build_exam(db, code=code, policy={"proctoring": proctoring} if proctoring else None)
    issuance.create_achievement(db, cfg, code=f"B-{code}", name=f"Badge {code}",
                                description="Can do it.", exam_id=exam.id)
    db.commit()
    return exam


def _evidence(db, candidate):
    cred = db.scalar(select(Credential).where(Credential.holder_id == candidate.id))
    assert cred is not None, "no credential was issued"
    return cred.json["evidence"][0]


def test_identity_admitted_by_a_named_proctor_and_a_cleared_review(
        db, cred_cfg, make_user, build_exam, take_exam):
    from proctoring import wiring

    exam = _exam(db, cred_cfg, build_exam, "EV1", {"identity": "proctor", "review": "always",
                                                    "snapshot_interval_s": 0})
    candidate = make_user("candidate")
    proctor = make_user("proctor", name="Grace Proctor")
    wiring.identity_gate(db, candidate, exam, url_for=lambda *a, **k: "/identity")
    ps = open_session(db, candidate.id, exam.id)
    identity.decide(db, ps, admit=True, reason="checked in person", by=proctor)
    db.commit()
    take_exam(db, candidate, exam)
    assert db.scalar(select(Credential)) is None  # held for review: no badge yet
    db.refresh(ps)
    review.decide(db, ps, verdict="cleared", reason="nothing unusual", by=proctor)
    db.commit()
    item = _evidence(db, candidate)
    summary = attempt_summary(db, ps.attempt_id)
    admitted_on = summary["identity"]["admitted_at"][:10]
    assert summary["identity"]["admitted_by_id"] == proctor.id
    assert summary["review"]["verdict"] == "cleared"
    assert f"Identity admitted by the proctor Grace Proctor on {admitted_on}." \
        in item["narrative"]
    assert f"A proctoring review cleared the session on {summary['review']['at'][:10]}." \
        in item["narrative"]
    assert "Identity verified" not in item["narrative"]
    assert item["genre"] == "Proctored exam"


def _jpeg() -> bytes:
    _ok, buf = cv2.imencode(".jpg", np.full((240, 320, 3), 200, np.uint8))
    return buf.tobytes()


def test_no_identity_check_but_camera_snapshots(db, cred_cfg, make_user, build_exam,
                                                take_exam):
    exam = _exam(db, cred_cfg, build_exam, "EV2", {"identity": "none", "review": "never",
                                                    "snapshot_interval_s": 30})
    candidate = make_user("candidate")
    vault = ImageVault(secrets.token_bytes(32))

    def snapshots(attempt):
        ps = session_for_attempt(db, attempt.id)
        for seq in (1, 2):
            events.record_snapshot(db, ps, vault, seq=seq, image=_jpeg())

    take_exam(db, candidate, exam, during=snapshots)
    item = _evidence(db, candidate)
    assert "Identity" not in item["narrative"] and "identity" not in item["narrative"]
    assert "Proctored by camera: 2 snapshots recorded during the exam." in item["narrative"]
    assert "without proctoring" not in item["narrative"]
    assert item["genre"] == "Proctored exam"


def test_an_unproctored_exam_makes_no_proctoring_claim(db, cred_cfg, make_user, build_exam,
                                                       take_exam):
    exam = _exam(db, cred_cfg, build_exam, "EV3", None)
    candidate = make_user("candidate")
    take_exam(db, candidate, exam)
    item = _evidence(db, candidate)
    assert "proctor" not in item["narrative"].lower()
    assert "identity" not in item["narrative"].lower()
    assert item["genre"] == "Exam"
    assert item["narrative"].startswith("Passed on ")
    # nor does the achievement's result description claim what no record shows
    description = db.scalar(select(Credential)).json["credentialSubject"]["achievement"][
        "resultDescription"][0]["description"]
    assert "proctored" not in description and "identity" not in description


def test_the_narrative_names_automated_checks_for_what_they_are():
    summary = {"identity": {"admitted_at": "2026-03-01T10:00:00", "admitted_by_id": None,
                            "verifiers": ["face_count"]},
               "snapshots": 0, "review": {"verdict": "cleared", "reviewer_id": 3,
                                          "at": "2026-03-02T09:00:00"}}
    text = evidence.proctoring_narrative(summary, lambda _id: "Never Asked")
    assert text.startswith("Identity photos passed the automated face check on 2026-03-01; "
                           "no proctor reviewed them.")
    assert "no camera snapshots were recorded" in text
    assert "cleared the session on 2026-03-02" in text and "Never Asked" not in text
    assert evidence.proctoring_narrative(None, lambda _id: None) == ""
