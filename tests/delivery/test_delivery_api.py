"""The candidate's exam through the Flask test client, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import func, select, update

from assessment.delivery import reads, service
from assessment.delivery.models import Attempt, ItemScore, ResponseSave, Result, ResultRelease
from itembank.models import ItemVersion
from microcred.db import ImmutableRowError, utcnow


def _count(db, model, *where):
    """Count rows as they are now: end the test session's snapshot first."""
    db.commit()
    return db.scalar(select(func.count()).select_from(model).where(*where))


def _state(client, attempt_id):
    resp = client.get(f"/api/attempts/{attempt_id}/state")
    assert resp.status_code == 200, resp.json
    return resp.json


def _answer_for(item, correct_key):
    return correct_key if item["type"] == "single_choice" else ["A", "C"]


def _save(client, token, attempt_id, saves, **extra):
    return client.post(f"/api/attempts/{attempt_id}/saves", json={"saves": saves, **extra},
                       headers={"X-CSRFToken": token})


def test_start_needs_the_agreement_and_a_second_start_resumes(client, candidate, signin, csrf_token, demo_exam, db):
    signin(client, candidate)
    token = csrf_token(client)
    refused = client.post(f"/exams/{demo_exam.code}/start", data={"csrf_token": token})
    assert refused.status_code == 422
    assert "accept the candidate agreement" in refused.get_data(as_text=True)
    assert _count(db, Attempt) == 0
    first = client.post(f"/exams/{demo_exam.code}/start", data={"agree": "yes", "csrf_token": token})
    again = client.post(f"/exams/{demo_exam.code}/start", data={"csrf_token": token})
    assert first.headers["Location"] == again.headers["Location"]
    assert _count(db, Attempt) == 1


def test_the_browser_never_receives_keys_rationales_or_rules(client, started, db):
    attempt_id, _ = started
    page = client.get(f"/attempts/{attempt_id}").get_data(as_text=True)
    state = json.dumps(_state(client, attempt_id))
    for text in (page, state):
        assert "Because the key says so." not in text
        assert '"correct"' not in text and "all_or_nothing" not in text and '"key"' not in text
    assert len(_state(client, attempt_id)["items"]) == 5


def test_full_exam_scores_against_the_published_versions(client, started, db):
    attempt_id, token = started
    state = _state(client, attempt_id)
    saves = []
    for n, item in enumerate(state["items"], start=1):
        saves.append({"seq": n, "item": item["id"], "value": _answer_for(item, "B"), "flagged": n == 2})
    resp = _save(client, token, attempt_id, saves, position=4)
    assert resp.status_code == 200, resp.json
    assert [a["status"] for a in resp.json["acks"]] == ["saved"] * 5
    resumed = _state(client, attempt_id)
    assert resumed["position"] == 4 and resumed["last_seq"] == 5
    assert [i["answer"] for i in resumed["items"]] == [s["value"] for s in saves]
    assert [i["flagged"] for i in resumed["items"]] == [False, True, False, False, False]
    # Change one answer to a wrong one: the newest seq wins.
    wrong = next(i for i in state["items"] if i["type"] == "single_choice")
    _save(client, token, attempt_id, [{"seq": 6, "item": wrong["id"], "value": "D"}])
    resp = client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True}, headers={"X-CSRFToken": token})
    assert resp.status_code == 200, resp.json
    db.commit()
    result = db.scalar(select(Result).where(Result.attempt_id == attempt_id))
    assert (result.raw_score, result.max_score, result.percent, result.passed) == (4.0, 5.0, 80.0, True)
    domains = {d["code"]: (d["score"], d["max"]) for d in result.domain_scores}
    # The wrong answer costs its own domain a point; the shuffled order decides which item it was.
    wrong_domain = db.get(ItemVersion, wrong["id"]).domain_code
    expected = {"A": [3.0, 3.0], "B": [2.0, 2.0]}
    expected[wrong_domain][0] -= 1
    assert domains == {code: tuple(v) for code, v in expected.items()}
    assert _count(db, ItemScore, ItemScore.result_id == result.id) == 5
    page = client.get(f"/attempts/{attempt_id}/result").get_data(as_text=True)
    assert "Passed" in page and "80.0%" in page and "Domain A" in page


def test_saves_are_idempotent_and_a_late_duplicate_never_wins(client, started, db):
    attempt_id, token = started
    item = next(i for i in _state(client, attempt_id)["items"] if i["type"] == "single_choice")
    assert _save(client, token, attempt_id, [{"seq": 2, "item": item["id"], "value": "B"}]).json["acks"][0]["status"] == "saved"
    # The retry of seq 2 and a slow seq 1 arrive after seq 2.
    again = _save(client, token, attempt_id, [{"seq": 2, "item": item["id"], "value": "B"},
                                              {"seq": 1, "item": item["id"], "value": "A"}])
    assert [a["status"] for a in again.json["acks"]] == ["duplicate", "saved"]
    assert _count(db, ResponseSave) == 2
    current = next(i for i in _state(client, attempt_id)["items"] if i["id"] == item["id"])
    assert current["answer"] == "B"
    # Same seq, other content (another browser): a conflict, nothing stored.
    conflict = _save(client, token, attempt_id, [{"seq": 2, "item": item["id"], "value": "C"}])
    assert conflict.json["acks"][0]["status"] == "conflict" and conflict.json["last_seq"] == 2
    assert _count(db, ResponseSave) == 2


@pytest.mark.parametrize("body,status,error,fragment", [
    ("{not json", 400, "malformed_json", "not valid JSON"),
    ([1, 2], 422, "invalid", "JSON object"),
    ({"saves": "x"}, 422, "invalid", "'saves' must be a list"),
    ({"saves": [{"seq": 0, "item": 1, "value": "A"}]}, 422, "invalid", "saves[0].seq"),
    ({"saves": [{"seq": 1, "item": "1", "value": "A"}]}, 422, "invalid", "saves[0].item"),
    ({"saves": [{"seq": 1, "item": 999999, "value": "A"}]}, 422, "invalid", "not in this attempt"),
    ({"saves": [{"seq": 1, "item": 1, "value": "A", "flagged": "yes"}]}, 422, "invalid", "flagged"),
    ({"saves": [], "position": 99}, 422, "invalid", "position"),
])
def test_bad_save_requests_get_a_clear_error_and_write_nothing(client, started, db, body, status, error, fragment):
    attempt_id, token = started
    raw = body if isinstance(body, str) else json.dumps(body)
    resp = client.post(f"/api/attempts/{attempt_id}/saves", data=raw, content_type="application/json",
                       headers={"X-CSRFToken": token})
    assert resp.status_code == status, resp.json
    assert resp.json["error"] == error and fragment in resp.json["message"]
    assert _count(db, ResponseSave) == 0


def test_a_wrong_shape_in_a_batch_rejects_the_whole_batch(client, started, db):
    attempt_id, token = started
    items = _state(client, attempt_id)["items"]
    single = next(i for i in items if i["type"] == "single_choice")
    multi = next(i for i in items if i["type"] == "multiple_response")
    resp = _save(client, token, attempt_id, [{"seq": 1, "item": single["id"], "value": "A"},
                                             {"seq": 2, "item": multi["id"], "value": "A"}])
    assert resp.status_code == 422
    assert "saves[1]" in resp.json["message"] and "list of option ids" in resp.json["message"]
    assert _count(db, ResponseSave) == 0


def test_an_item_of_another_exam_is_refused(client, started, db, build_exam):
    attempt_id, token = started
    other = build_exam(db, code="OTHER")
    foreign = db.scalar(select(ItemVersion.id).join(ItemVersion.item).where(ItemVersion.domain_code == "A")
                        .order_by(ItemVersion.id.desc()).limit(1))
    assert foreign not in [i["id"] for i in _state(client, attempt_id)["items"]] and other
    resp = _save(client, token, attempt_id, [{"seq": 1, "item": foreign, "value": "A"}])
    assert resp.status_code == 422 and "not in this attempt" in resp.json["message"]


def test_oversized_body_is_413_and_non_json_is_415(client, started):
    attempt_id, token = started
    big = json.dumps({"saves": [], "pad": "x" * 70_000})
    resp = client.post(f"/api/attempts/{attempt_id}/saves", data=big, content_type="application/json",
                       headers={"X-CSRFToken": token})
    assert resp.status_code == 413 and resp.json["error"] == "request_entity_too_large"
    resp = client.post(f"/api/attempts/{attempt_id}/saves", data="saves=1", headers={"X-CSRFToken": token},
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415


def test_json_posts_need_the_csrf_token(client, started, db):
    attempt_id, _ = started
    resp = client.post(f"/api/attempts/{attempt_id}/saves", json={"saves": []})
    assert resp.status_code == 400 and resp.json["error"] == "csrf"
    resp = client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True})
    assert resp.status_code == 400
    assert db.get(Attempt, attempt_id).status == "in_progress"


def test_another_candidate_cannot_read_or_write_an_attempt(app, started, make_user, signin, csrf_token, db):
    attempt_id, _ = started
    intruder = app.test_client()
    signin(intruder, make_user("candidate"))
    token = csrf_token(intruder)
    for guess in (attempt_id, attempt_id + 1, 0, -1):
        assert intruder.get(f"/api/attempts/{guess}/state").status_code in (404,)
        assert intruder.get(f"/api/attempts/{guess}/heartbeat").status_code == 404
        assert intruder.get(f"/attempts/{guess}").status_code == 404
        assert intruder.get(f"/attempts/{guess}/result").status_code == 404
        assert intruder.post(f"/api/attempts/{guess}/saves", json={"saves": []},
                             headers={"X-CSRFToken": token}).status_code == 404
        assert intruder.post(f"/api/attempts/{guess}/submit", json={"confirm": True},
                             headers={"X-CSRFToken": token}).status_code == 404
    assert db.get(Attempt, attempt_id).status == "in_progress"
    staff = app.test_client()
    signin(staff, make_user("proctor"))
    assert staff.get(f"/api/attempts/{attempt_id}/state").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get(f"/api/attempts/{attempt_id}/state").status_code == 401
    assert anonymous.get(f"/attempts/{attempt_id}").status_code == 302


def test_actions_on_a_finalized_attempt_are_refused(client, started, db):
    attempt_id, token = started
    item = _state(client, attempt_id)["items"][0]
    assert client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True},
                       headers={"X-CSRFToken": token}).status_code == 200
    again = client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True}, headers={"X-CSRFToken": token})
    assert again.status_code == 409 and again.json["error"] == "attempt_finalized"
    late = _save(client, token, attempt_id, [{"seq": 1, "item": item["id"], "value": None}])
    assert late.status_code == 409 and "submitted" in late.json["message"]
    assert client.post(f"/api/attempts/{attempt_id}/submit", json={}, headers={"X-CSRFToken": token}).status_code == 422
    assert _count(db, Result) == 1


def _backdate(db, attempt_id, seconds):
    """The attempt started ``seconds`` earlier: its start and its stored deadline
    (``timing.StoredClock``, what a clock event would write) move together."""
    attempt = db.get(Attempt, attempt_id)
    back = dt.timedelta(seconds=seconds)
    db.execute(update(Attempt).where(Attempt.id == attempt_id)
               .values(started_at=attempt.started_at - back,
                       deadline_at=attempt.deadline_at - back))
    db.commit()
    db.expire_all()


def test_a_save_within_the_grace_counts_and_a_later_one_is_refused(clock, client, started, db):
    """The clock stands still, so "1 s past the deadline" is exactly that when the save lands
    (moving the stored deadline back instead left the request's own time in the margin, and a
    loaded CI host once spent the whole second before the save arrived)."""
    attempt_id, token = started
    item = next(i for i in _state(client, attempt_id)["items"] if i["type"] == "single_choice")
    _save(client, token, attempt_id, [{"seq": 1, "item": item["id"], "value": "B"}])
    clock.advance(600 + 1)  # one second past the deadline, inside the 2 s grace
    assert _save(client, token, attempt_id, [{"seq": 2, "item": item["id"], "value": "C"}]).status_code == 200
    clock.advance(5)  # now 6 s past the deadline
    late = _save(client, token, attempt_id, [{"seq": 3, "item": item["id"], "value": "A"}])
    assert late.status_code == 409 and late.json["error"] == "time_up"
    assert "was not accepted" in late.json["message"]
    attempt = db.get(Attempt, attempt_id)
    db.refresh(attempt)
    assert attempt.status == "finalized" and attempt.finalize_reason == "time_expired"
    score = db.scalar(select(ItemScore).where(ItemScore.item_version_id == item["id"]))
    assert score.response == "C"  # the in-grace save counted, the late one did not


def test_closed_browser_is_finalized_by_the_sweep_with_saved_answers(client, started, db):
    attempt_id, token = started
    item = next(i for i in _state(client, attempt_id)["items"] if i["type"] == "single_choice")
    _save(client, token, attempt_id, [{"seq": 1, "item": item["id"], "value": "B"}])
    assert service.sweep(db, grace_seconds=5) == []
    _backdate(db, attempt_id, 600 + 10)
    assert service.sweep(db, grace_seconds=2) == [attempt_id]
    db.commit()
    result = db.scalar(select(Result).where(Result.attempt_id == attempt_id))
    assert result.raw_score == 1.0 and result.answered == 1
    assert client.get(f"/attempts/{attempt_id}").status_code == 302  # to the result page


def test_a_get_after_time_ran_out_writes_nothing_and_reports_it(clock, client, started, db,
                                                                   writes_during):
    """GET never writes, at the deadline least of all (every candidate's heartbeat arrives then,
    and on SQLite a read that upgrades to a write gets "database is locked"): the runner's
    GETs report the time-up state; the runner's POST finalizes."""
    attempt_id, token = started
    clock.advance(600 + 30)  # past the deadline and the 2 s grace

    def read_everything():
        return {url: client.get(url) for url in (
            f"/api/attempts/{attempt_id}/heartbeat", f"/api/attempts/{attempt_id}/state",
            f"/attempts/{attempt_id}", f"/attempts/{attempt_id}/result", "/exams")}

    pages, writes = writes_during(read_everything)
    assert writes == []
    beat = pages[f"/api/attempts/{attempt_id}/heartbeat"]
    assert beat.json["status"] == "in_progress" and beat.json["expired"] is True
    assert beat.json["clock"]["expired"] is True and beat.json["clock"]["remaining_ms"] == 0
    assert pages[f"/api/attempts/{attempt_id}/state"].json["clock"]["expired"] is True
    assert pages[f"/attempts/{attempt_id}"].status_code == 200  # the runner, in its time-up state
    assert pages[f"/attempts/{attempt_id}/result"].headers["Location"].endswith(
        f"/attempts/{attempt_id}")
    assert "Time is up" in pages["/exams"].get_data(as_text=True)
    db.commit()  # a fresh snapshot
    db.expire_all()
    assert db.get(Attempt, attempt_id).status == "in_progress" and _count(db, Result) == 0

    done = client.post(f"/api/attempts/{attempt_id}/time-up", headers={"X-CSRFToken": token})
    assert done.status_code == 200 and done.json["status"] == "finalized"
    assert done.json["result_url"].endswith("/result")
    assert done.json["finalize_reason"] == "time_expired"
    db.commit()  # a fresh snapshot
    db.expire_all()
    assert db.get(Attempt, attempt_id).finalize_reason == "time_expired"


def test_a_time_up_post_before_time_ran_out_finalizes_nothing(app, clock, client, started, db):
    """Inside the grace (or after an extension) the runner's time-up POST only answers the
    clock: the one rule decides, not the browser."""
    attempt_id, token = started
    clock.advance(600 + 1)  # past the deadline, inside the 2 s grace
    beat = client.get(f"/api/attempts/{attempt_id}/heartbeat")
    assert beat.json["expired"] is False
    early = client.post(f"/api/attempts/{attempt_id}/time-up", headers={"X-CSRFToken": token})
    assert early.status_code == 200 and early.json["status"] == "in_progress"
    assert early.json["expired"] is False
    assert _count(db, Result) == 0


def test_a_submit_after_time_ran_out_gets_the_one_time_up_answer(clock, client, started, db):
    """A late submit and a late save meet the same rule and the same answer: 409 ``time_up``,
    the attempt finalized as timed out with the answers saved in time."""
    attempt_id, token = started
    item = next(i for i in _state(client, attempt_id)["items"] if i["type"] == "single_choice")
    _save(client, token, attempt_id, [{"seq": 1, "item": item["id"], "value": "B"}])
    clock.advance(600 + 3)  # past the deadline and the 2 s grace
    late = client.post(f"/api/attempts/{attempt_id}/submit", json={"confirm": True},
                       headers={"X-CSRFToken": token})
    assert late.status_code == 409 and late.json["error"] == "time_up"
    assert "was not accepted" in late.json["message"]
    assert late.json["result_url"].endswith(f"/attempts/{attempt_id}/result")
    db.commit()  # a fresh snapshot
    db.expire_all()
    attempt = db.get(Attempt, attempt_id)
    assert attempt.status == "finalized" and attempt.finalize_reason == "time_expired"
    result = db.scalar(select(Result).where(Result.attempt_id == attempt_id))
    assert result.answered == 1


def test_the_sweeper_finalizes_with_the_grace_it_is_given(clock, client, started, db):
    attempt_id, _ = started
    clock.advance(600 + 3)
    assert service.sweep(db, grace_seconds=5) == []  # still inside a 5 s grace
    assert service.sweep(db, grace_seconds=2) == [attempt_id]
    db.commit()  # a fresh snapshot
    db.expire_all()
    assert db.get(Attempt, attempt_id).finalize_reason == "time_expired"


def test_racing_submits_finalize_exactly_once(app, started, db, database):
    attempt_id, _ = started
    barrier = threading.Barrier(4)
    outcomes = []

    def submit():
        session = database.session()
        try:
            barrier.wait()  # all four start together, each in its own write transaction
            attempt = service.get_attempt(session, attempt_id, lock=True)
            service.submit_attempt(session, attempt, grace_seconds=5)
            session.commit()
            outcomes.append("ok")
        except service.Finalized:
            session.rollback()
            outcomes.append("refused")
        finally:
            session.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]
    assert _count(db, Result) == 1
    assert _count(db, ResultRelease) == 1


def test_accommodation_multiplies_the_time(client, candidate, make_user, signin, csrf_token, demo_exam, db):
    admin = make_user("admin")
    admin_client = client.application.test_client()
    signin(admin_client, admin)
    token = csrf_token(admin_client)
    resp = admin_client.post("/admin/accommodations", data={
        "candidate_email": candidate.email, "time_multiplier": "1.5", "reason": "Approved request 42",
        "exam_id": str(demo_exam.id), "csrf_token": token})
    assert resp.status_code == 303
    bad = admin_client.post("/admin/accommodations", data={
        "candidate_email": candidate.email, "time_multiplier": "9", "reason": "x", "csrf_token": token},
        follow_redirects=True)
    assert "between 1.0 and 4.0" in bad.get_data(as_text=True)
    signin(client, candidate)
    token = csrf_token(client)
    loc = client.post(f"/exams/{demo_exam.code}/start", data={"agree": "yes", "csrf_token": token}).headers["Location"]
    clock = _state(client, int(loc.rsplit("/", 1)[1]))["clock"]
    assert 899_000 <= clock["remaining_ms"] <= 900_000  # 10 minutes x 1.5


def test_shuffle_is_reproducible_from_the_seed(db, candidate, demo_exam):
    a1 = service.start_attempt(db, candidate, demo_exam, seed=1234, grace_seconds=5)
    db.commit()
    service.submit_attempt(db, a1, grace_seconds=5)
    a2 = service.start_attempt(db, candidate, demo_exam, seed=1234, grace_seconds=5)
    db.commit()
    assert a1.id != a2.id
    assert (a1.item_order, a1.option_orders) == (a2.item_order, a2.option_orders)
    service.submit_attempt(db, a2, grace_seconds=5)
    a3 = service.start_attempt(db, candidate, demo_exam, seed=7, grace_seconds=5)
    db.commit()
    assert sorted(a3.item_order) == sorted(a1.item_order)  # the same items, another order
    assert (a3.item_order, a3.option_orders) != (a1.item_order, a1.option_orders)


def test_published_versions_and_saves_are_never_edited(db, demo_exam, candidate):
    version = db.scalar(select(ItemVersion).limit(1))
    version.stem = "changed"
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()
    attempt = service.start_attempt(db, candidate, demo_exam, grace_seconds=5)
    service.save_responses(db, attempt, [service.SaveRequest(1, attempt.item_order[0], None, False)], grace_seconds=5)
    db.commit()
    save = db.scalar(select(ResponseSave))
    save.flagged = True
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()


def test_paused_attempt_refuses_answers_and_keeps_its_time(db, demo_exam, candidate, make_user):
    proctor = make_user("proctor")
    attempt = service.start_attempt(db, candidate, demo_exam, grace_seconds=5)
    service.pause_attempt(db, attempt, by_user_id=proctor.id)
    db.commit()
    with pytest.raises(service.Conflict, match="paused"):
        service.save_responses(db, attempt, [service.SaveRequest(1, attempt.item_order[0], None, False)], grace_seconds=5)
    later = utcnow() + dt.timedelta(hours=3)
    assert service.finalize_if_expired(db, attempt, later, grace_seconds=5) is None
    service.resume_attempt(db, attempt, by_user_id=proctor.id)
    service.extend_attempt(db, attempt, seconds=120, by_user_id=proctor.id, reason="technical issue")
    c = service.attempt_clock(db, attempt)
    assert c.extension_seconds == 120 and not c.paused
    with pytest.raises(service.Invalid):
        service.extend_attempt(db, attempt, seconds=0, by_user_id=proctor.id, reason="x")
    result = service.terminate_attempt(db, attempt, by_user_id=proctor.id, reason="second person in room")
    assert reads.release_status(db, result.id).status == "invalidated"
