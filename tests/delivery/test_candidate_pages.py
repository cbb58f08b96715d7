"""The candidate's side of issue 9, through the web app on SQLite and PostgreSQL: a "Select TWO."
item refuses a third choice (finding 22); the heartbeat tells the runner about an extension and
the result page tells a terminated candidate why (21); the agreement comes first and once, and
the result page links to the badge the pass earned (23)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from assessment.delivery import service
from assessment.delivery.models import Attempt, ResponseSave
from itembank.types import ItemDefinitionError, item_type

# ---------------------------------------------------------------- helpers


def _start(client, exam, csrf_token) -> int:
    token = csrf_token(client)
    resp = client.post(f"/exams/{exam.code}/start", data={"agree": "yes", "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def _item_ids(db, attempt_id: int) -> dict[str, int]:
    """Item type -> the first item version of that type in the attempt."""
    from itembank.models import ItemVersion

    db.commit()
    attempt = db.get(Attempt, attempt_id)
    out: dict[str, int] = {}
    for vid in attempt.item_order:
        out.setdefault(db.get(ItemVersion, vid).item_type, vid)
    return out


def _save(client, attempt_id: int, token: str, saves: list[dict]):
    return client.post(f"/api/attempts/{attempt_id}/saves", json={"saves": saves},
                       headers={"X-CSRFToken": token})


# ---------------------------------------------------------------- 22. "Select TWO."


def test_a_save_with_more_choices_than_the_item_asks_for_is_refused(client, db, make_user,
                                                                     signin, csrf_token,
                                                                     demo_exam):
    candidate = make_user("candidate")
    signin(client, candidate)
    attempt_id = _start(client, demo_exam, csrf_token)
    token = csrf_token(client)
    mr = _item_ids(db, attempt_id)["multiple_response"]

    state = client.get(f"/api/attempts/{attempt_id}/state").get_json()
    shown = next(i for i in state["items"] if i["id"] == mr)
    assert shown["select"] == 2, "the runner is told how many options to select"

    four = _save(client, attempt_id, token, [{"seq": 1, "item": mr, "value": ["A", "B", "C", "D"]}])
    assert four.status_code == 422
    body = four.get_json()
    assert body["error"] == "invalid"
    assert f"item {mr}" in body["message"] and "asks for 2 options; 4 were selected" in \
        body["message"], body
    three_in_a_batch = _save(client, attempt_id, token, [
        {"seq": 1, "item": mr, "value": ["A"]},
        {"seq": 2, "item": mr, "value": ["A", "B", "C"]}])
    assert three_in_a_batch.status_code == 422, "one bad save refuses the whole batch"
    db.commit()
    assert db.scalar(select(func.count()).select_from(ResponseSave)) == 0, "nothing was stored"

    # one (on the way to two) and two are answers
    for seq, value in ((1, ["A"]), (2, ["C", "A"])):
        ok = _save(client, attempt_id, token, [{"seq": seq, "item": mr, "value": value}])
        assert ok.status_code == 200, ok.get_json()
    db.commit()
    latest = service.current_saves(db, db.get(Attempt, attempt_id))
    assert latest[mr].value == ["A", "C"]


@pytest.mark.parametrize("select_, message", [
    (1, "between the 2 keyed options and the 4 options, got 1"),
    (5, "between the 2 keyed options and the 4 options, got 5"),
    (True, "whole number of options, got True"),
    ("2", "whole number of options, got '2'"),
])
def test_an_item_cannot_state_a_number_its_key_or_options_contradict(select_, message):
    interaction = {"select": select_,
                   "options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]}
    with pytest.raises(ItemDefinitionError, match=re.escape(message)):
        item_type("multiple_response").validate_definition(
            interaction, {"correct": ["A", "C"]}, {})
    with pytest.raises(ItemDefinitionError, match="multiple response only"):
        item_type("single_choice").validate_definition(
            {**interaction, "select": 1}, {"correct": ["A"]}, {})


def test_the_demo_items_state_their_number(db):
    """Every "Select TWO." item of the demo carries select = 2 (and THREE, 3) once loaded."""
    from assessment.demo_program import load_content, load_demo
    from itembank.models import Item, ItemVersion

    content = load_content()
    load_demo(db, history=0)
    db.commit()
    words = {"TWO": 2, "THREE": 3}
    rows = db.execute(select(Item.code, ItemVersion.interaction, ItemVersion.stem)
                      .join(ItemVersion, ItemVersion.item_id == Item.id)
                      .where(ItemVersion.item_type == "multiple_response")).all()
    assert len(rows) == sum(1 for i in content["items"] if i["type"] == "multiple_response")
    for code, interaction, stem in rows:
        asked = re.search(r"Select (TWO|THREE)\.", stem).group(1)
        assert interaction.get("select") == words[asked], code


# ---------------------------------------------------------------- 21. extension, termination


def test_the_heartbeat_carries_extensions_and_a_terminated_candidate_sees_why(
        client, db, make_user, signin, csrf_token, demo_exam):
    candidate = make_user("candidate")
    proctor = make_user("proctor")
    signin(client, candidate)
    attempt_id = _start(client, demo_exam, csrf_token)
    beat = client.get(f"/api/attempts/{attempt_id}/heartbeat").get_json()
    assert beat["clock"]["extension_seconds"] == 0
    db.commit()
    attempt = service.get_attempt(db, attempt_id)
    service.extend_attempt(db, attempt, seconds=600, by_user_id=proctor.id,
                           reason="camera trouble")
    db.commit()
    beat = client.get(f"/api/attempts/{attempt_id}/heartbeat").get_json()
    assert beat["clock"]["extension_seconds"] == 600
    assert beat["clock"]["remaining_ms"] > 10 * 60 * 1000 + 9 * 60 * 1000

    reason = "A second person was seen helping the candidate."
    service.terminate_attempt(db, service.get_attempt(db, attempt_id), by_user_id=proctor.id,
                              reason=reason)
    db.commit()
    beat = client.get(f"/api/attempts/{attempt_id}/heartbeat").get_json()
    assert beat["status"] == "finalized" and beat["result_url"].endswith("/result")
    page = client.get(beat["result_url"]).get_data(as_text=True)
    assert "Your exam was ended by the proctor" in page
    assert f'<strong id="termination-reason">{reason}</strong>' in page


# ---------------------------------------------------------------- 23. agreement, badge link


@pytest.fixture
def proctored_exam(db, make_user, build_exam):
    from proctoring.assignments import assign

    exam = build_exam(db, code="AGREE", policy={"proctoring": {
        "identity": "proctor", "review": "never", "fullscreen": False,
        "snapshot_interval_s": 0}})
    proctor, admin = make_user("proctor"), make_user("admin")
    assign(db, proctor, exam, admin)
    db.commit()
    return exam, proctor


def test_the_agreement_comes_before_the_identity_check_and_is_asked_once(
        client, db, make_user, signin, csrf_token, proctored_exam):
    from proctoring.identity import decide
    from proctoring.models import ProctorSession

    exam, proctor = proctored_exam
    candidate = make_user("candidate")
    signin(client, candidate)
    page = client.get(f"/exams/{exam.code}").get_data(as_text=True)
    assert 'id="agree"' in page

    # without accepting, nothing starts, not even the identity check
    refused = client.post(f"/exams/{exam.code}/start", data={"csrf_token": csrf_token(client)})
    assert refused.status_code == 422
    assert "You must accept the agreement to start." in refused.get_data(as_text=True)
    db.commit()
    assert db.scalar(select(func.count()).select_from(ProctorSession)) == 0

    # accepting leads to the identity check
    resp = client.post(f"/exams/{exam.code}/start",
                       data={"agree": "yes", "csrf_token": csrf_token(client)})
    assert resp.status_code == 302 and "/identity" in resp.headers["Location"], resp.headers
    db.commit()
    ps = db.scalar(select(ProctorSession))
    decide(db, ps, admit=True, reason="checked in person", by=proctor)
    db.commit()

    # back on the exam page after admission: accepted already, no second checkbox
    page = client.get(f"/exams/{exam.code}").get_data(as_text=True)
    assert 'id="agree"' not in page
    assert "You have accepted the candidate agreement." in page
    started = client.post(f"/exams/{exam.code}/start", data={"csrf_token": csrf_token(client)})
    assert started.status_code == 302 and re.search(r"/attempts/\d+$", started.headers["Location"])
    db.commit()
    attempt = db.scalar(select(Attempt))
    assert attempt.status == "in_progress" and attempt.agreement_accepted_at is not None


def test_the_result_page_links_to_the_badge_the_pass_earned(client, app, db, make_user, signin,
                                                            csrf_token, build_exam):
    from credentials import issuance
    from credentials.config import current
    from credentials.models import Credential

    exam = build_exam(db, code="BADGE", shuffle=False)
    with app.app_context():
        issuance.create_achievement(db, current(), code="BADGE-1", name="Badge One",
                                    description="Passed the badge exam.", exam_id=exam.id)
    db.commit()
    candidate = make_user("candidate")
    signin(client, candidate)
    attempt_id = _start(client, exam, csrf_token)
    token = csrf_token(client)
    state = client.get(f"/api/attempts/{attempt_id}/state").get_json()
    saves = [{"seq": n, "item": it["id"],
              "value": ["A", "C"] if it["type"] == "multiple_response" else "B"}
             for n, it in enumerate(state["items"], start=1)]
    assert _save(client, attempt_id, token, saves).status_code == 200
    done = client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True},
                       headers={"X-CSRFToken": token})
    assert done.status_code == 200, done.get_json()
    db.commit()
    cred = db.scalar(select(Credential))
    assert cred is not None, "the pass earned a badge"
    page = client.get(done.get_json()["result_url"]).get_data(as_text=True)
    assert f'<a href="/badges/{cred.public_id}">View your badge: Badge One</a>' in page
    # the badge page it leads to is public
    assert client.get(f"/badges/{cred.public_id}").status_code == 200
