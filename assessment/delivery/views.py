"""The candidate's pages and the runner's JSON API. Thin: parse, call a service, render."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask import session as browser_session
from flask_login import current_user
from sqlalchemy import select

from assessment.delivery import service
from assessment.delivery.eligibility import eligibility
from assessment.delivery.models import Attempt, Result
from assessment.exams import Exam, exam_by_code, open_exams
from microcred.db import utcnow
from microcred.inputs import json_body
from microcred.web import ApiError, db_session, role_required, runner_wiring

bp = Blueprint("delivery", __name__)


def _grace() -> float:
    return current_app.config["MICROCRED"].save_grace_seconds


def _extras(session: Any, attempt: Attempt) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    for contribute in runner_wiring().state_contributors:
        extras.update(contribute(session, attempt) or {})
    return extras


#: The candidate agreement is accepted once, before anything else (the identity check too):
#: the acceptance is kept in the browser's signed session until the attempt starts.
_AGREEMENTS = "microcred.agreements"


def _agreed(exam: Exam) -> bool:
    return exam.code in browser_session.get(_AGREEMENTS, {})


def _remember_agreement(exam: Exam) -> None:
    browser_session[_AGREEMENTS] = {**browser_session.get(_AGREEMENTS, {}),
                                    exam.code: utcnow().isoformat()}


def _forget_agreement(exam: Exam) -> None:
    kept = {k: v for k, v in browser_session.get(_AGREEMENTS, {}).items() if k != exam.code}
    browser_session[_AGREEMENTS] = kept


def _my_attempt(attempt_id: int, *, lock: bool = False) -> Attempt:
    return service.attempt_for_candidate(db_session(), attempt_id, current_user, lock=lock)


# ---------------------------------------------------------------- pages


@bp.get("/exams")
@role_required("candidate")
def exams():
    session = db_session()
    mine = list(
        session.scalars(
            select(Attempt).where(Attempt.candidate_id == current_user.id).order_by(Attempt.id.desc())
        )
    )
    changed = False
    for attempt in mine:
        changed |= service.finalize_if_expired(session, attempt, grace_seconds=_grace()) is not None
    if changed:
        session.commit()
    exams_by_id = {e.id: e for e in session.scalars(select(Exam))}
    return render_template(
        "delivery/exams.html",
        exams=open_exams(session),
        attempts=mine,
        exams_by_id=exams_by_id,
        releases={a.id: service.release_status(session, a.result.id) for a in mine if a.result},
    )


@bp.get("/exams/<code>")
@role_required("candidate")
def exam(code: str):
    session = db_session()
    exam = exam_by_code(session, code)
    if exam is None or not exam.is_open:
        raise service.NotFound(f"no open exam {code}")
    current = service.in_progress_attempt(session, current_user, exam)
    return render_template("delivery/exam.html", exam=exam, current=current,
                           agreed=_agreed(exam),
                           retake=eligibility(session, current_user.id, exam, utcnow()))


@bp.post("/exams/<code>/start")
@role_required("candidate")
def start(code: str):
    session = db_session()
    exam = exam_by_code(session, code)
    if exam is None or not exam.is_open:
        raise service.NotFound(f"no open exam {code}")
    if service.in_progress_attempt(session, current_user, exam) is None:
        # retake rules first: no identity check for an attempt that could not start anyway
        service.check_may_start(session, current_user, exam)
        # the agreement comes first, before any start gate (the identity check), and once
        if request.form.get("agree") == "yes":
            _remember_agreement(exam)
        elif not _agreed(exam):
            flash("To start, confirm that you accept the candidate agreement.", "error")
            return render_template("delivery/exam.html", exam=exam, current=None,
                                   agreed=False, agree_error=True,
                                   retake=eligibility(session, current_user.id, exam,
                                                      utcnow())), 422
        for gate in runner_wiring().start_gates:
            target = gate(session, current_user, exam)
            if target:
                session.commit()
                return redirect(target)
    attempt = service.start_attempt(session, current_user, exam, agreed=True)
    session.commit()
    _forget_agreement(exam)  # one acceptance starts one attempt
    return redirect(url_for("delivery.runner", attempt_id=attempt.id))


@bp.get("/attempts/<int:attempt_id>")
@role_required("candidate")
def runner(attempt_id: int):
    session = db_session()
    attempt = _my_attempt(attempt_id)
    if service.finalize_if_expired(session, attempt, grace_seconds=_grace()):
        session.commit()
    if attempt.status != "in_progress":
        return redirect(url_for("delivery.result", attempt_id=attempt.id))
    state = service.runner_state(session, attempt)
    state["extras"] = _extras(session, attempt)
    exam = session.get(Exam, attempt.exam_id)
    return render_template(
        "delivery/runner.html", state=state, exam=exam, scripts=runner_wiring().runner_scripts
    )


@bp.get("/attempts/<int:attempt_id>/result")
@role_required("candidate")
def result(attempt_id: int):
    session = db_session()
    attempt = _my_attempt(attempt_id)
    if service.finalize_if_expired(session, attempt, grace_seconds=_grace()):
        session.commit()
    if attempt.status != "finalized":
        return redirect(url_for("delivery.runner", attempt_id=attempt.id))
    res = session.scalar(select(Result).where(Result.attempt_id == attempt.id))
    release = service.release_status(session, res.id)
    exam = session.get(Exam, attempt.exam_id)
    links = [link for contribute in runner_wiring().result_links
             for link in contribute(session, res.id) or []]
    return render_template(
        "delivery/result.html", attempt=attempt, result=res, release=release, exam=exam,
        links=links,
    )


# ---------------------------------------------------------------- the runner's API


@bp.get("/api/attempts/<int:attempt_id>/state")
@role_required("candidate")
def api_state(attempt_id: int):
    session = db_session()
    attempt = _my_attempt(attempt_id)
    if service.finalize_if_expired(session, attempt, grace_seconds=_grace()):
        session.commit()
    state = service.runner_state(session, attempt)
    state["extras"] = _extras(session, attempt)
    return state


@bp.get("/api/attempts/<int:attempt_id>/heartbeat")
@role_required("candidate")
def api_heartbeat(attempt_id: int):
    session = db_session()
    attempt = _my_attempt(attempt_id)
    now = utcnow()
    # the clock is read once: the expiry check and the payload share it
    c = service.attempt_clock(session, attempt, now)
    if service.finalize_if_expired(session, attempt, now, grace_seconds=_grace(), clock_now=c):
        session.commit()
        c = service.attempt_clock(session, attempt, now)  # stopped at the finalization
    body: dict[str, Any] = {
        "status": attempt.status,
        "clock": service.clock_payload(c, now),
        "last_seq": attempt.last_seq,
        "extras": _extras(session, attempt),
    }
    if attempt.status != "in_progress":
        body["result_url"] = url_for("delivery.result", attempt_id=attempt.id)
        body["finalize_reason"] = attempt.finalize_reason  # submitted | time_expired | terminated
    return body


@bp.post("/api/attempts/<int:attempt_id>/saves")
@role_required("candidate")
def api_saves(attempt_id: int):
    saves, position = service.parse_saves(json_body())
    session = db_session()
    attempt = _my_attempt(attempt_id, lock=True)
    try:
        out = service.save_responses(
            session, attempt, saves, position=position, grace_seconds=_grace()
        )
    except service.TimeUp:
        session.commit()  # keep the finalization the late save triggered
        raise
    session.commit()
    return out


@bp.post("/api/attempts/<int:attempt_id>/submit")
@role_required("candidate")
def api_submit(attempt_id: int):
    body = json_body()
    if not isinstance(body, dict) or body.get("confirm") is not True:
        raise ApiError(422, "not_confirmed", "submitting needs {\"confirm\": true}")
    session = db_session()
    attempt = _my_attempt(attempt_id, lock=True)
    if service.finalize_if_expired(session, attempt, grace_seconds=_grace()):
        session.commit()
        raise service.Finalized("time ran out; your saved answers were submitted",
                                result_url=url_for("delivery.result", attempt_id=attempt.id))
    service.submit_attempt(session, attempt)
    session.commit()
    return {"status": "finalized", "result_url": url_for("delivery.result", attempt_id=attempt.id)}
