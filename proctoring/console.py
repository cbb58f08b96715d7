"""The proctor's views: the live console, a session's page, actions, images, the review queue
and the admins' assignment page. Every view checks the proctor's assignment to the session's
exam (``require_access``); a session of another exam is "not found".

This is a wiring module: proctor actions on the candidate's clock go to delivery through
``proctoring.wiring.CONTROL`` (delivery's ``DeliveryControl``).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from assessment.exams import Exam, exam_by_code
from assessment.users import User, find_user_by_email
from microcred.db import utcnow
from microcred.errors import Invalid, NotFound
from microcred.inputs import is_whole, json_body
from microcred.web import ApiError, db_session, role_required, safe_next, wants_json
from microcred.words import plural
from proctoring import actions, console_feed, face_checks, identity, review
from proctoring.assignments import assign, assignments, exam_ids_for, require_access, unassign
from proctoring.events import flags_of, snapshots_of
from proctoring.images import ImageGone
from proctoring.models import ProctorSession, StoredImage
from proctoring.sessions import get_session, policy
from proctoring.states import LABELS, State
from proctoring.verifiers import label as verifier_label
from proctoring.web import bp, config
from proctoring.wiring import (
    CONTROL,
    RECENTLY_ENDED_S,
    console_marks,
    live_sessions,
    time_extensions,
)

log = logging.getLogger(__name__)
STAFF = ("proctor", "admin")
POLL_MS = 3000


def _session_for_staff(session_id: int, *, lock: bool = False) -> ProctorSession:
    ps = get_session(db_session(), session_id, lock=lock)
    return require_access(db_session(), current_user, ps)


# ---------------------------------------------------------------- the live console


@bp.get("/proctor", endpoint="console")
@role_required(*STAFF)
def console():
    now = utcnow()
    marks = console_marks(db_session(), current_user, now)
    rows = live_sessions(db_session(), current_user, now)
    return render_template("proctor/console.html", rows=rows, poll_ms=POLL_MS,
                           server_now=now.isoformat(),
                           feed=console_feed.feed(marks, lambda _ids: rows, None, now.timestamp()),
                           recent_minutes=RECENTLY_ENDED_S // 60,
                           max_extension_minutes=CONTROL.max_extension_seconds // 60)


@bp.get("/api/proctoring/console", endpoint="api_console")
@role_required(*STAFF)
def api_console():
    """Every row (no ``cursor``), or only what changed since ``?cursor=`` (``changed`` rows and
    ``removed`` ids; ``proctoring.console_feed``); ``304`` when ``If-None-Match`` names the view
    as it stands. A cursor that is not one this server issued, or from the future, is a 400.
    With a cursor, the sessions' marks are read first (one statement) and only the rows that
    changed are built: an unchanged view costs the sign-in check and that one read."""
    now = utcnow()
    cursor = request.args.get("cursor")
    if cursor is not None and not cursor.strip():
        raise ApiError(400, "bad_cursor", "cursor: empty; leave it out for a full snapshot")
    session = db_session()
    marks = console_marks(session, current_user, now)
    try:
        out = console_feed.feed(marks, lambda ids: live_sessions(session, current_user, now, ids),
                                cursor, now.timestamp())
    except console_feed.BadCursor as exc:
        raise ApiError(400, "bad_cursor", f"{exc}; leave it out for a full snapshot") from None
    out["server_now"] = now.isoformat()
    if cursor and not out["full"] and request.if_none_match.contains_weak(out["etag"][3:-1]):
        resp = make_response("", 304)
    else:
        resp = make_response(out)
    resp.headers["ETag"] = out["etag"]
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


# ---------------------------------------------------------------- one session


def _names(ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {u.id: u.display_name for u in db_session().scalars(select(User).where(User.id.in_(ids)))}


@bp.get("/proctor/sessions/<int:session_id>", endpoint="session_page")
@role_required(*STAFF)
def session_page(session_id: int):
    session = db_session()
    ps = _session_for_staff(session_id)
    items = review.timeline(session, ps, extra=time_extensions(session, ps))
    notes = actions.notes(session, ps)
    names = _names({i["by"] for i in items} | {ps.candidate_id})
    snapshots = snapshots_of(session, ps)[-24:]
    pending = face_checks.counting(session, ps.id)
    return render_template(
        "proctor/session.html", ps=ps, exam=session.get(Exam, ps.exam_id),
        candidate=session.get(User, ps.candidate_id), state_label=LABELS[State(ps.state)],
        identity=identity.status(session, ps), policy=policy(ps), timeline=items, names=names,
        flags=flags_of(session, ps), notes=notes,
        snapshots=[(s, face_checks.faces_label(s.faces, s.id in pending)) for s in snapshots],
        messages=actions.messages(session, ps), decisions=review.decisions(session, ps),
        allowed=actions.allowed(ps.state),
        max_extension_minutes=CONTROL.max_extension_seconds // 60,
        verifiers=" + ".join(verifier_label(v) for v in policy(ps).identity) or "none",
    )


def _params() -> dict[str, Any]:
    if request.is_json:
        body = json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "malformed_json", "the body must be a JSON object")
        return body
    params: dict[str, Any] = request.form.to_dict()
    minutes = params.get("minutes")
    if isinstance(minutes, str) and is_whole(minutes.strip()):
        params["minutes"] = int(minutes.strip())
    return params


ACTIONS = actions.NAMES


def _run(action: str, ps: ProctorSession, p: dict[str, Any]) -> str:
    """Do one action; returns what to tell the proctor."""
    session, me = db_session(), current_user
    actions.check_allowed(action, ps)  # refused in words, before any other check
    if action == "admit":
        identity.decide(session, ps, admit=True, reason=p.get("reason") or "", by=me)
        return "Candidate admitted."
    if action == "reject":
        identity.decide(session, ps, admit=False, reason=p.get("reason") or "", by=me)
        return "Identity rejected; the candidate sees your reason."
    if action == "pause":
        actions.pause(session, ps, CONTROL, by=me, reason=p.get("reason") or "")
        return "Exam paused: the candidate's clock is stopped."
    if action == "resume":
        actions.resume(session, ps, CONTROL, by=me, reason=p.get("reason") or "")
        return "Exam resumed."
    if action == "extend":
        actions.extend(session, ps, CONTROL, by=me, minutes=p.get("minutes"),
                       reason=p.get("reason") or "")
        return f"Added {plural(p['minutes'], 'minute')}."
    if action == "message":
        actions.message(session, ps, by=me, text=p.get("text"))
        return "Message sent."
    if action == "note":
        actions.note(session, ps, by=me, text=p.get("text"))
        return "Note added."
    if action == "terminate":
        actions.terminate(session, ps, CONTROL, by=me, reason=p.get("reason"))
        return "Session terminated."
    review.decide(session, ps, verdict=p.get("verdict"), reason=p.get("reason"), by=me)
    return f"Result {p.get('verdict')}."


@bp.post("/api/proctoring/sessions/<int:session_id>/actions/<action>", endpoint="api_action")
@bp.post("/proctor/sessions/<int:session_id>/actions/<action>", endpoint="action")
@role_required(*STAFF)
def action(session_id: int, action: str):
    if action not in ACTIONS:
        raise NotFound(f"no action {action!r}; use one of {', '.join(ACTIONS)}")
    params = _params()
    ps = _session_for_staff(session_id, lock=True)
    said = _run(action, ps, params)
    db_session().commit()
    if wants_json():
        return {"ok": True, "message": said, "state": ps.state}
    flash(said, "info")
    back = url_for("proctoring.session_page", session_id=ps.id)
    return redirect(safe_next(request.form.get("next"), back), code=303)


@bp.get("/proctor/images/<int:image_id>", endpoint="image")
@role_required(*STAFF)
def image(image_id: int):
    session = db_session()
    row = session.get(StoredImage, image_id)
    if row is None:
        raise NotFound(f"no image {image_id}")
    ps = _session_for_staff(row.session_id)
    try:
        data = config().vault.open(row)
    except ImageGone as exc:
        raise NotFound(str(exc)) from None
    if row.kind != "snapshot":
        session.close()
        write = _write_session()
        identity.record_view(write, ps, row, current_user)
        write.commit()
        write.close()
    resp = make_response(data)
    resp.headers["Content-Type"] = "image/jpeg"
    resp.headers["Cache-Control"] = ("private, no-store" if row.kind != "snapshot"
                                     else "private, max-age=600")
    return resp


def _write_session() -> Any:
    from flask import current_app

    return current_app.extensions["microcred.database"].session(write=True)


# ---------------------------------------------------------------- review queue


@bp.get("/proctor/review", endpoint="review_queue")
@role_required(*STAFF)
def review_queue():
    session = db_session()
    queue = review.queue(session, exam_ids_for(session, current_user))
    names = _names({ps.candidate_id for ps in queue})
    exams = {e.id: e for e in session.scalars(select(Exam).where(
        Exam.id.in_({ps.exam_id for ps in queue} or {0})))}
    counts = {ps.id: len(flags_of(session, ps)) for ps in queue}
    return render_template("proctor/review.html", queue=queue, names=names, exams=exams,
                           counts=counts)


# ---------------------------------------------------------------- assignments (admins)


@bp.get("/proctor/assignments", endpoint="assignments")
@role_required("admin")
def assignments_page():
    session = db_session()
    rows = assignments(session)
    users = {u.id: u for u in session.scalars(select(User).where(User.role == "proctor"))}
    exams = {e.id: e for e in session.scalars(select(Exam).order_by(Exam.code))}
    return render_template("proctor/assignments.html", rows=rows, proctors=users, exams=exams)


@bp.post("/proctor/assignments", endpoint="assignments_change")
@role_required("admin")
def assignments_change():
    session = db_session()
    proctor = find_user_by_email(session, request.form.get("proctor", ""))
    exam = exam_by_code(session, request.form.get("exam", ""))
    if proctor is None:
        raise Invalid("choose a proctor", field="proctor")
    if exam is None:
        raise Invalid("choose an exam", field="exam")
    if request.form.get("remove") == "yes":
        unassign(session, proctor, exam, current_user)
        said = f"{proctor.display_name} no longer proctors {exam.code}."
    else:
        assign(session, proctor, exam, current_user)
        said = f"{proctor.display_name} now proctors {exam.code}."
    session.commit()
    flash(said, "info")
    return redirect(url_for("proctoring.assignments"), code=303)
