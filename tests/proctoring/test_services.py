"""Integration: identity check, start, integrity events, flags, proctor actions, review, hooks
and the audit chain, through the real delivery services on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from assessment.delivery import service as delivery
from assessment.delivery.models import ResultRelease
from microcred.errors import Conflict, Invalid, NotFound
from proctoring import actions, audit, events, hooks, identity, review, wiring
from proctoring.assignments import require_access
from proctoring.models import Flag, IdentityCheck, StoredImage, Transition

CONTROL = wiring.DeliveryControl()


def _gate(db, ns):
    target = wiring.identity_gate(db, ns.candidate, ns.exam, url_for=lambda *a, **k: "/identity")
    db.commit()
    return target


def _session(db, ns):
    from proctoring.sessions import open_session

    return open_session(db, ns.candidate.id, ns.exam.id)


def _admitted_and_started(db, ns, vault, face_jpeg):
    _gate(db, ns)
    ps = _session(db, ns)
    identity.submit(db, ps, vault, selfie=face_jpeg, id_document=face_jpeg, by=ns.candidate)
    identity.decide(db, ps, admit=True, reason="", by=ns.proctor)
    db.commit()
    attempt = delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    db.refresh(ps)
    return ps, attempt


def _release(db, attempt):
    return db.scalar(select(ResultRelease).join_from(ResultRelease, delivery.Result,
                     ResultRelease.result_id == delivery.Result.id)
                     .where(delivery.Result.attempt_id == attempt.id).order_by(ResultRelease.id.desc()))


def test_proctor_admits_then_the_attempt_starts(db, proctored, vault, face_jpeg, test_plugin):
    hooks.set_plugin_manager(hooks.make_plugin_manager())
    ns = proctored({"identity": "proctor"})
    assert _gate(db, ns) == "/identity"
    ps = _session(db, ns)
    assert ps.state == "created"
    with pytest.raises(Conflict, match="identity check must admit"):
        delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.rollback()
    checks = identity.submit(db, ps, vault, selfie=face_jpeg, id_document=face_jpeg, by=ns.candidate)
    assert ps.state == "identity_pending"
    assert {c.verifier: c.outcome for c in checks} == {"proctor": "pending", "face_count": "passed",
                                                        "acme_live": "passed"}
    identity.decide(db, ps, admit=True, reason="", by=ns.proctor)
    db.commit()
    assert _gate(db, ns) is None
    attempt = delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    db.refresh(ps)
    assert ps.state == "in_progress" and ps.attempt_id == attempt.id
    names = [c[0] for c in test_plugin.CALLS]
    assert "verify_identity" in names and "session_started" in names
    assert ("state_changed", {"from": "admitted", "to": "in_progress"}) in test_plugin.CALLS
    assert [t.to_state for t in db.scalars(select(Transition).where(Transition.session_id == ps.id)
                                          .order_by(Transition.id))] == [
        "identity_pending", "admitted", "in_progress"]
    assert audit.verify(db).ok


def test_automated_check_admits_one_face_and_refers_the_rest(db, proctored, vault, face_jpeg,
                                                             blank_jpeg, two_faces_jpeg):
    ns = proctored({"identity": "automated"})
    _gate(db, ns)
    ps = _session(db, ns)
    identity.submit(db, ps, vault, selfie=face_jpeg, id_document=face_jpeg, by=ns.candidate)
    assert ps.state == "admitted"

    ns2 = proctored({"identity": "automated"}, code="P-EXAM-2")
    _gate(db, ns2)
    ps2 = _session(db, ns2)
    identity.submit(db, ps2, vault, selfie=two_faces_jpeg, id_document=blank_jpeg, by=ns2.candidate)
    assert ps2.state == "identity_pending"
    flag = db.scalar(select(Flag).where(Flag.session_id == ps2.id))
    assert flag.rule == "identity_check" and "2 faces" in flag.message and "no face" in flag.message
    assert identity.status(db, ps2)["summary"] == (
        "to check: Automatic check: 2 faces found in the selfie; no face found in the photo ID")


def test_reject_needs_a_reason_and_the_candidate_may_resubmit(db, proctored, vault, face_jpeg):
    ns = proctored()
    _gate(db, ns)
    ps = _session(db, ns)
    identity.submit(db, ps, vault, selfie=face_jpeg, id_document=face_jpeg, by=ns.candidate)
    with pytest.raises(Invalid, match="reason"):
        identity.decide(db, ps, admit=False, reason=" ", by=ns.proctor)
    identity.decide(db, ps, admit=False, reason="the ID photo is unreadable", by=ns.proctor)
    assert ps.state == "identity_rejected"
    assert identity.status(db, ps)["decision_reason"] == "the ID photo is unreadable"
    with pytest.raises(Conflict):
        identity.decide(db, ps, admit=True, reason="", by=ns.proctor)
    identity.submit(db, ps, vault, selfie=face_jpeg, id_document=face_jpeg, by=ns.candidate)
    assert ps.state == "identity_pending"
    assert identity.latest_submission(db, ps).number == 2


def test_junk_images_are_refused_naming_which(db, proctored, vault, face_jpeg):
    ns = proctored()
    _gate(db, ns)
    ps = _session(db, ns)
    with pytest.raises(Invalid, match="photo of you is not an image") as err:
        identity.submit(db, ps, vault, selfie=b"junk", id_document=face_jpeg, by=ns.candidate)
    assert err.value.extra["field"] == "selfie"
    with pytest.raises(Invalid) as err:
        identity.submit(db, ps, vault, selfie=face_jpeg, id_document=b"", by=ns.candidate)
    assert err.value.extra["field"] == "id_document"


def test_no_identity_policy_admits_at_once(db, proctored):
    ns = proctored({"identity": "none"})
    assert _gate(db, ns) is None
    attempt = delivery.start_attempt(db, ns.candidate, ns.exam, grace_seconds=5)
    db.commit()
    from proctoring.sessions import session_for_attempt

    assert session_for_attempt(db, attempt.id).state == "in_progress"


def test_unproctored_exam_is_left_alone(db, make_user, build_exam):
    exam = build_exam(db, code="FREE")
    cand = make_user("candidate")
    assert wiring.identity_gate(db, cand, exam, url_for=lambda *a, **k: "/x") is None
    attempt = delivery.start_attempt(db, cand, exam, grace_seconds=5)
    delivery.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    assert _release(db, attempt).status == "released"


def test_events_are_stored_once_and_raise_flags(db, proctored, vault, face_jpeg, blank_jpeg):
    ns = proctored({"max_focus_losses": 1})
    ps, _attempt = _admitted_and_started(db, ns, vault, face_jpeg)
    now = dt.datetime.now(dt.UTC)
    batch = events.parse_events({"events": [
        {"seq": 1, "kind": "window_blur", "at": now.isoformat()},
        {"seq": 2, "kind": "window_focus", "at": now.isoformat()},
        {"seq": 3, "kind": "tab_hidden", "at": now.isoformat()},
        {"seq": 4, "kind": "paste", "at": now.isoformat(), "detail": {"length": 40}},
    ]})
    out = events.ingest_events(db, ps, batch)
    assert [a["status"] for a in out["acks"]] == ["stored"] * 4
    assert any("left the exam window 2 times" in m for m in out["flags"])
    again = events.ingest_events(db, ps, batch)  # a retry after a lost response
    assert [a["status"] for a in again["acks"]] == ["duplicate"] * 4 and again["flags"] == []
    assert ps.risk_score == 3 + 3 and ps.last_seen_at is not None
    snap, created = events.record_snapshot(db, ps, vault, seq=1, image=blank_jpeg)
    assert created and snap.faces == 0
    same, created = events.record_snapshot(db, ps, vault, seq=1, image=blank_jpeg)
    assert not created and same.id == snap.id
    good, _ = events.record_snapshot(db, ps, vault, seq=2, image=face_jpeg)
    assert good.faces == 1
    # a late retry of frame 1, after a newer frame: still the stored one, no second row
    late, created = events.record_snapshot(db, ps, vault, seq=1, image=face_jpeg)
    assert not created and (late.id, late.faces) == (snap.id, 0)
    assert [(s.seq, s.faces) for s in events.snapshots_of(db, ps)] == [(1, 0), (2, 1)]
    assert db.scalar(select(func.count()).select_from(StoredImage)
                     .where(StoredImage.session_id == ps.id, StoredImage.kind == "snapshot")) == 2
    rules = sorted(f.rule for f in events.flags_of(db, ps))
    assert rules == ["focus_loss", "no_face", "paste"]
    db.commit()


@pytest.mark.parametrize("body, field", [
    ({"events": "x"}, "events"),
    ({"events": [{"seq": 0, "kind": "copy"}]}, "events[0].seq"),
    ({"events": [{"seq": 1, "kind": "teleport"}]}, "events[0].kind"),
    ({"events": [{"seq": 1, "kind": "copy", "at": "yesterday"}]}, "events[0].at"),
    ({"events": [{"seq": 1, "kind": "copy", "at": "2026-01-01T09:00:00"}]}, "events[0].at"),
    ({"events": [{"seq": 1, "kind": "copy", "detail": {"x": "y" * 2000}}]}, "events[0].detail"),
    ({"events": [{"seq": 1, "kind": "copy"}, {"seq": 1, "kind": "paste"}]}, "events"),
])
def test_bad_event_batches_name_the_field(body, field):
    with pytest.raises(Invalid) as err:
        events.parse_events(body)
    assert err.value.extra.get("field") == field


def test_pause_resume_extend_message_note(db, proctored, vault, face_jpeg, test_plugin):
    hooks.set_plugin_manager(hooks.make_plugin_manager())
    ns = proctored()
    ps, attempt = _admitted_and_started(db, ns, vault, face_jpeg)
    before = delivery.attempt_clock(db, attempt)
    actions.pause(db, ps, CONTROL, by=ns.proctor, reason="candidate asked for a break")
    db.commit()
    assert ps.state == "paused" and delivery.attempt_clock(db, attempt).paused
    with pytest.raises(Conflict, match="paused"):
        actions.pause(db, ps, CONTROL, by=ns.proctor)
    actions.resume(db, ps, CONTROL, by=ns.proctor)
    assert ps.state == "in_progress" and not delivery.attempt_clock(db, attempt).paused
    with pytest.raises(Invalid, match="minutes"):
        actions.extend(db, ps, CONTROL, by=ns.proctor, minutes=0, reason="x")
    with pytest.raises(Invalid, match="reason"):
        actions.extend(db, ps, CONTROL, by=ns.proctor, minutes=5, reason="")
    actions.extend(db, ps, CONTROL, by=ns.proctor, minutes=5, reason="network trouble")
    after = delivery.attempt_clock(db, attempt)
    assert (after.deadline - before.deadline).total_seconds() >= 300
    msg = actions.message(db, ps, by=ns.proctor, text="Please face the camera.")
    actions.note(db, ps, by=ns.proctor, text="Candidate looked away twice.")
    db.commit()
    extras = _extras(db, attempt)
    assert extras["proctoring"]["messages"][-1] == {"id": msg.id, "text": "Please face the camera.",
                                                    "at": msg.at.isoformat()}
    names = [c[0] for c in test_plugin.CALLS]
    assert "paused" in names and "resumed" in names
    actions_logged = [r.action for r in db.scalars(select(audit.AuditRecord).order_by(audit.AuditRecord.seq))]
    for a in ("session.paused", "session.in_progress", "session.extended", "session.message_sent",
              "session.note_added"):
        assert a in actions_logged
    assert audit.verify(db).ok


def _extras(db, attempt):
    from flask import Flask

    app = Flask("t")
    app.add_url_rule("/e/<int:session_id>", "proctoring.api_events")
    app.add_url_rule("/s/<int:session_id>", "proctoring.api_snapshots")
    with app.test_request_context():
        return wiring.runner_extras(db, attempt.id)


def test_terminate_invalidates_the_result(db, proctored, vault, face_jpeg):
    ns = proctored()
    ps, attempt = _admitted_and_started(db, ns, vault, face_jpeg)
    with pytest.raises(Invalid, match="reason"):
        actions.terminate(db, ps, CONTROL, by=ns.proctor, reason="")
    actions.terminate(db, ps, CONTROL, by=ns.proctor, reason="a second person in the room")
    db.commit()
    db.refresh(attempt)
    assert ps.state == "terminated" and attempt.status == "finalized"
    assert attempt.finalize_reason == "terminated"
    assert _release(db, attempt).status == "invalidated"
    with pytest.raises(Conflict):
        actions.resume(db, ps, CONTROL, by=ns.proctor)
    with pytest.raises(Conflict):
        events.ingest_events(db, ps, [])


def test_flagged_session_is_held_until_cleared(db, proctored, vault, face_jpeg, test_plugin):
    hooks.set_plugin_manager(hooks.make_plugin_manager())
    ns = proctored({"review": "flagged"})
    ps, attempt = _admitted_and_started(db, ns, vault, face_jpeg)
    events.ingest_events(db, ps, events.parse_events({"events": [{"seq": 1, "kind": "print"}]}))
    delivery.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    assert ps.state == "in_review"
    held = _release(db, attempt)
    assert held.status == "held" and "risk score 6" in held.reason
    assert [p.id for p in review.queue(db, None)] == [ps.id]
    assert review.queue(db, {ns.exam.id + 999}) == []
    with pytest.raises(Invalid, match="verdict"):
        review.decide(db, ps, verdict="maybe", reason="x", by=ns.proctor)
    with pytest.raises(Invalid, match="reason"):
        review.decide(db, ps, verdict="cleared", reason="", by=ns.proctor)
    review.decide(db, ps, verdict="cleared", reason="printing was the accessibility reader",
                  by=ns.proctor)
    db.commit()
    assert ps.state == "cleared" and _release(db, attempt).status == "released"
    with pytest.raises(Conflict):
        review.decide(db, ps, verdict="invalidated", reason="changed my mind", by=ns.proctor)
    assert "submitted" in [c[0] for c in test_plugin.CALLS]
    assert ("review_decided", {"verdict": "cleared"}) in test_plugin.CALLS


def test_invalidated_result_never_passes(db, proctored, vault, face_jpeg):
    ns = proctored({"review": "always"})
    ps, attempt = _admitted_and_started(db, ns, vault, face_jpeg)
    delivery.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    assert ps.state == "in_review" and _release(db, attempt).status == "held"
    review.decide(db, ps, verdict="invalidated", reason="notes found on the desk", by=ns.admin)
    db.commit()
    assert ps.state == "invalidated" and _release(db, attempt).status == "invalidated"


def test_clean_session_is_cleared_without_review(db, proctored, vault, face_jpeg):
    ns = proctored({"review": "flagged"})
    ps, attempt = _admitted_and_started(db, ns, vault, face_jpeg)
    delivery.submit_attempt(db, attempt, grace_seconds=5)
    db.commit()
    assert ps.state == "cleared" and _release(db, attempt).status == "released"


def test_time_expiry_while_out_of_fullscreen_is_flagged_at_submission(db, proctored, vault, face_jpeg):
    ns = proctored({"fullscreen": True, "fullscreen_grace_s": 10})
    ps, _attempt = _admitted_and_started(db, ns, vault, face_jpeg)
    events.ingest_events(db, ps, events.parse_events({"events": [{"seq": 1, "kind": "fullscreen_exit"}]}))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    review.on_finalized(db, ps, reason="submitted", now=later)
    assert ps.state == "in_review"
    assert [f.rule for f in events.flags_of(db, ps)] == ["fullscreen_left"]


def test_actions_are_checked_against_the_assignment(db, proctored, vault, face_jpeg):
    ns = proctored()
    ps, _ = _admitted_and_started(db, ns, vault, face_jpeg)
    assert require_access(db, ns.proctor, ps) is ps
    assert require_access(db, ns.admin, ps) is ps
    with pytest.raises(NotFound):
        require_access(db, ns.other_proctor, ps)
    with pytest.raises(NotFound):
        require_access(db, ns.candidate, ps)


def test_identity_checks_are_append_only(db, proctored, vault, face_jpeg):
    from microcred.db import ImmutableRowError

    ns = proctored()
    _gate(db, ns)
    ps = _session(db, ns)
    identity.submit(db, ps, vault, selfie=face_jpeg, id_document=face_jpeg, by=ns.candidate)
    db.commit()
    check = db.scalar(select(IdentityCheck))
    check.outcome = "passed"
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()


def test_one_extension_cap_set_by_the_clock_owner(db, proctored, vault, face_jpeg):
    """The proctor's cap is delivery's (issue 10, item 9): a longer extension delivery would
    refuse is refused in the proctor's words, and the longest it allows goes through."""
    most = delivery.MAX_EXTENSION_SECONDS // 60
    assert CONTROL.max_extension_seconds == delivery.MAX_EXTENSION_SECONDS
    ns = proctored()
    ps, attempt = _admitted_and_started(db, ns, vault, face_jpeg)
    with pytest.raises(Invalid, match=f"from 1 to {most}$"):
        actions.extend(db, ps, CONTROL, by=ns.proctor, minutes=most + 1, reason="x")
    before = delivery.attempt_clock(db, attempt)
    actions.extend(db, ps, CONTROL, by=ns.proctor, minutes=most, reason="power cut")
    assert delivery.attempt_clock(db, attempt).deadline - before.deadline \
        == dt.timedelta(minutes=most)
