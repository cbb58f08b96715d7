"""The candidate's pages and the runner's JSON API. Thin: parse, call a service, render."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask import session as browser_session
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assessment.delivery import hotpath, reads, service, waiting_room
from assessment.delivery.eligibility import eligibility
from assessment.delivery.models import Attempt
from assessment.exams import Exam, exam_by_code, open_exams
from assessment.psych.cuts import CutAdoption, passing_standards
from itembank.rendering import item_parts
from microcred.db import utcnow
from microcred.environment import heartbeat_seconds
from microcred.inputs import json_body
from microcred.web import ApiError, db_session, role_required, runner_wiring

bp = Blueprint("delivery", __name__)


def _grace() -> float:
    """The save grace from the settings (``MICROCRED_SAVE_GRACE_SECONDS``): every "time ran
    out" question the views ask passes it to the one rule, ``Clock.time_up``."""
    return current_app.config["MICROCRED"].save_grace_seconds


def _extras(session: Any, attempt: Attempt) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    for contribute in runner_wiring().state_contributors:
        extras.update(contribute(session, attempt.id) or {})
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
    # a read: an attempt whose time ran out shows so; the sweeper (or its runner) finalizes it
    now = utcnow()
    time_up = {a.id for a in mine if a.status == "in_progress"
               and service.attempt_clock(session, a, now).time_up(_grace())}
    exams_by_id = {e.id: e for e in session.scalars(select(Exam))}
    return render_template(
        "delivery/exams.html",
        exams=(shown := open_exams(session)),
        standards=passing_standards(session, [e.id for e in shown]),
        attempts=mine,
        exams_by_id=exams_by_id,
        time_up=time_up,
        releases={a.id: reads.release_status(session, a.result.id) for a in mine if a.result},
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
                           standard=passing_standards(session, [exam.id]).get(exam.id),
                           retake=eligibility(session, current_user.id, exam, utcnow()))


@bp.post("/exams/<code>/start")
@role_required("candidate")
def start(code: str):
    """Start (or resume) the exam. On exam day the waiting room may answer first: 202 with the
    candidate's place and a ``Retry-After``; the waiting page's script then posts again (JSON,
    answered in JSON) until the line admits the start."""
    session = db_session()
    exam = exam_by_code(session, code)
    if exam is None or not exam.is_open:
        raise service.NotFound(f"no open exam {code}")
    polled = request.is_json  # the waiting page asking again
    admission = waiting_room.ADMITTED
    checked = False
    if service.in_progress_attempt(session, current_user, exam) is None:
        # retake rules first: no identity check for an attempt that could not start anyway
        service.check_may_start(session, current_user, exam)
        checked = True
        # the agreement comes first, before any start gate (the identity check), and once
        if request.form.get("agree") == "yes":
            _remember_agreement(exam)
        elif not _agreed(exam):
            if polled:
                raise service.Invalid("accept the candidate agreement to start", field="agree")
            flash("To start, confirm that you accept the candidate agreement.", "error")
            return render_template("delivery/exam.html", exam=exam, current=None,
                                   agreed=False, agree_error=True,
                                   standard=passing_standards(session, [exam.id]).get(exam.id),
                                   retake=eligibility(session, current_user.id, exam,
                                                      utcnow())), 422
        admission = waiting_room.turn(session, current_user.id, exam.id,
                                      rate=current_app.config["MICROCRED"].start_rate,
                                      now=utcnow())
        if not admission.admitted:
            session.commit()
            return _waiting(exam, admission, polled)
        for gate in runner_wiring().start_gates:
            target = gate(session, current_user, exam)
            if target:
                session.commit()
                return _go(target, polled)
    try:
        attempt = service.start_attempt(session, current_user, exam, grace_seconds=_grace(),
                                        may_start_checked=checked)
        waiting_room.started(session, admission, attempt.id)
        session.commit()
    except IntegrityError:  # a start of the same candidate won the race: that one stands
        session.rollback()
        attempt = service.in_progress_attempt(session, current_user, exam)
        if attempt is None:
            raise
    _forget_agreement(exam)  # one acceptance starts one attempt
    return _go(url_for("delivery.runner", attempt_id=attempt.id), polled)


def _go(target: str, polled: bool):
    """Where the start goes on: a redirect for the form, a URL for the waiting page's script."""
    return {"status": "admitted", "url": target} if polled else redirect(target)


def _waiting(exam: Exam, admission: waiting_room.Turn, polled: bool):
    """202: the candidate's place in line, and when to ask again (``Retry-After``)."""
    headers = {"Retry-After": str(admission.retry_after_s), "Cache-Control": "no-store"}
    if polled:
        return ({"status": "waiting", "place": admission.place,
                 "retry_after": admission.retry_after_s}, 202, headers)
    return render_template("delivery/waiting.html", exam=exam, place=admission.place,
                           retry_after=admission.retry_after_s), 202, headers


@bp.get("/attempts/<int:attempt_id>")
@role_required("candidate")
def runner(attempt_id: int):
    session = db_session()
    attempt = _my_attempt(attempt_id)
    if attempt.status != "in_progress":
        return redirect(url_for("delivery.result", attempt_id=attempt.id))
    # time ran out: the page opens in its time-up state and posts, which finalizes
    state = _with_item_html(service.runner_state(session, attempt, grace_seconds=_grace()))
    state["extras"] = _extras(session, attempt)
    exam = session.get(Exam, attempt.exam_id)
    return render_template(
        "delivery/runner.html", state=state, exam=exam, scripts=runner_wiring().runner_scripts,
        heartbeat_ms=heartbeat_seconds() * 1000)


@bp.get("/attempts/<int:attempt_id>/result")
@role_required("candidate")
def result(attempt_id: int):
    session = db_session()
    attempt = _my_attempt(attempt_id)
    if attempt.status != "finalized":  # the runner finalizes one whose time ran out
        return redirect(url_for("delivery.runner", attempt_id=attempt.id))
    res = reads.current_result(session, attempt.id)
    release = reads.release_status(session, res.id)
    exam = session.get(Exam, attempt.exam_id)
    links = [link for contribute in runner_wiring().result_links
             for link in contribute(session, res.id) or []]
    return render_template(
        "delivery/result.html", attempt=attempt, result=res, release=release, exam=exam,
        links=links,
        cut=session.get(CutAdoption, res.cut_adoption_id) if res.cut_adoption_id else None,
    )


# ---------------------------------------------------------------- the runner's API


@bp.get("/api/attempts/<int:attempt_id>/state")
@role_required("candidate")
def api_state(attempt_id: int):
    session = db_session()
    attempt = _my_attempt(attempt_id)
    state = _with_item_html(service.runner_state(session, attempt, grace_seconds=_grace()))
    state["extras"] = _extras(session, attempt)
    return state


def _with_item_html(state: dict[str, Any]) -> dict[str, Any]:
    """Each item's stimulus, stem and interaction as HTML, from the same templates as every
    other view of an item (``itembank.rendering``); the runner places them."""
    for item in state["items"]:
        item["html"] = item_parts(item, prefix=f"q{item['id']}")
    return state


@bp.get("/api/attempts/<int:attempt_id>/heartbeat")
def api_heartbeat(attempt_id: int):
    """The runner's heartbeat, every 30 s: the clock (the countdown is corrected by each one),
    the status, what other packages add (proctoring: its state, the proctor's messages), and
    the page's sign of life. One SELECT on the hot path (``hotpath.heartbeat``)."""
    fast = hotpath.heartbeat(db_session(), attempt_id)
    return fast if fast is not None else _full_heartbeat(attempt_id)


@role_required("candidate")
def _full_heartbeat(attempt_id: int):
    session = db_session()
    # A read, at the deadline too (when every candidate is connected): it reports ``expired``
    # and the runner posts to ``api_time_up``, which finalizes. A GET that wrote would upgrade
    # to a write lock on SQLite ("database is locked").
    return _heartbeat(session, _my_attempt(attempt_id))


@bp.post("/api/attempts/<int:attempt_id>/time-up")
@role_required("candidate")
def api_time_up(attempt_id: int):
    """The runner's "time is up": finalize the attempt, with the answers saved in time, if the
    server's clock agrees (grace included); else answer the clock as it stands (an extension
    may have come). A 200 either way: the heartbeat's body. Its body is optional and unused,
    but a body sent is read like every JSON endpoint's, so a malformed one is a clear 400."""
    if request.content_length:
        json_body()
    session = db_session()
    attempt = _my_attempt(attempt_id, lock=True)
    if service.finalize_if_expired(session, attempt, grace_seconds=_grace()):
        session.commit()
    return _heartbeat(session, attempt)


def _heartbeat(session: Any, attempt: Attempt) -> dict[str, Any]:
    now = utcnow()
    clock = service.attempt_clock(session, attempt, now)
    body: dict[str, Any] = {
        "status": attempt.status,
        "expired": attempt.status == "in_progress" and clock.time_up(_grace()),
        "clock": service.clock_payload(clock, now, grace_seconds=_grace()),
        "last_seq": attempt.last_seq,
        "extras": _extras(session, attempt),
    }
    if attempt.status != "in_progress":
        body["result_url"] = url_for("delivery.result", attempt_id=attempt.id)
        body["finalize_reason"] = attempt.finalize_reason  # submitted | time_expired | terminated
    return body


@bp.post("/api/attempts/<int:attempt_id>/saves")
def api_saves(attempt_id: int):
    """Autosave: two statements on the hot path (``hotpath.save``), else the full path."""
    saves, position = service.parse_saves(json_body())
    fast = hotpath.save(db_session(), attempt_id, saves, position)
    return fast if fast is not None else _full_saves(attempt_id, saves, position)


@role_required("candidate")
def _full_saves(attempt_id: int, saves: list[service.SaveRequest], position: int | None):
    session = db_session()
    attempt = _my_attempt(attempt_id, lock=True)
    try:
        out = service.save_responses(
            session, attempt, saves, position=position, grace_seconds=_grace()
        )
    except service.TimeUp as exc:
        session.commit()  # keep the finalization the late save triggered
        raise _with_result_url(exc, attempt) from None
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
    try:
        service.submit_attempt(session, attempt, grace_seconds=_grace())
    except service.TimeUp as exc:
        session.commit()  # keep the finalization: time ran out, the saved answers count
        raise _with_result_url(exc, attempt) from None
    session.commit()
    return {"status": "finalized", "result_url": url_for("delivery.result", attempt_id=attempt.id)}


def _with_result_url(exc: service.TimeUp, attempt: Attempt) -> service.TimeUp:
    """The one "time ran out" answer of a save and a submit: 409 ``time_up``, where to go."""
    return service.TimeUp(exc.message, **exc.extra,
                          result_url=url_for("delivery.result", attempt_id=attempt.id))
