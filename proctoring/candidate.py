"""The candidate's side: the identity check page, and the runner script's API for integrity
events and camera snapshots. Thin: parse, call a service, render."""
from __future__ import annotations

from collections.abc import Callable

from flask import redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session

from microcred.db import utcnow
from microcred.errors import Invalid, NotFound
from microcred.inputs import is_whole, json_body
from microcred.records import ExamInfo, records
from microcred.web import (
    ApiError,
    body_limit,
    db_session,
    reading,
    role_required,
    write_statements,
    write_together,
)
from proctoring import events, hotwrites, identity
from proctoring.models import ProctorSession
from proctoring.sessions import get_session, policy
from proctoring.states import State
from proctoring.web import bp, config

#: The two views that take photos, and the most each takes (declared on the view with
#: ``body_limit``; every other view keeps the app's small MAX_CONTENT_LENGTH). Identity photos
#: from a phone can be large (two of them per request); they are shrunk before storage.
IDENTITY_MAX_BYTES = 16 * 1024 * 1024
SNAPSHOT_MAX_BYTES = 1024 * 1024


def _mine(session_id: int, *, lock: bool = False) -> ProctorSession:
    ps = get_session(db_session(), session_id, lock=lock)
    if ps.candidate_id != current_user.id:
        raise NotFound(f"no proctoring session {session_id}")
    return ps


def _exam(ps: ProctorSession) -> ExamInfo:
    exam = records().exam(db_session(), ps.exam_id)
    if exam is None:
        raise NotFound(f"no exam {ps.exam_id}")
    return exam


@bp.get("/proctoring/identity/<int:session_id>", endpoint="identity_page")
@role_required("candidate")
def identity_page(session_id: int):
    ps = _mine(session_id)
    exam = _exam(ps)
    return render_template("proctor/identity.html", ps=ps, exam=exam,
                           status=identity.status(db_session(), ps), policy=policy(ps),
                           can_submit=ps.state in (State.CREATED, State.IDENTITY_REJECTED))


@bp.post("/proctoring/identity/<int:session_id>", endpoint="identity_submit")
@body_limit(IDENTITY_MAX_BYTES)
@role_required("candidate")
def identity_submit(session_id: int):
    files = {name: request.files.get(name) for name in ("selfie", "id_document")}
    for name, label in (("selfie", "a photo of yourself"), ("id_document", "a photo of your ID")):
        if files[name] is None or not files[name].filename:
            raise Invalid(f"add {label} (take it with the camera or choose a file)", field=name)
    session = db_session()
    ps = _mine(session_id, lock=True)
    identity.count_attempt(session, ps, config().identity_attempts)
    submission = identity.next_submission(session, ps)
    session.commit()  # counted even if the photos are refused below
    # the slow part (decoding, encryption, the verifiers: a remote one may take seconds) with
    # no transaction open: no lock on the session, the audit chain or SQLite's writers
    prepared = identity.prepare(ps, config().vault, submission=submission,
                                selfie=files["selfie"].read(),
                                id_document=files["id_document"].read())
    ps = _mine(session_id, lock=True)
    identity.submit(session, ps, config().vault, prepared=prepared, by=current_user)
    session.commit()
    return redirect(url_for("proctoring.identity_page", session_id=ps.id), code=303)


@bp.get("/api/proctoring/identity/<int:session_id>", endpoint="api_identity")
@role_required("candidate")
def api_identity(session_id: int):
    ps = _mine(session_id)
    status = identity.status(db_session(), ps)
    body = {"state": ps.state, "summary": status["summary"],
            "decision_reason": status["decision_reason"]}
    if ps.state == State.ADMITTED:
        body["continue_url"] = url_for("delivery.exam", code=_exam(ps).code)
    return body


@bp.post("/api/proctoring/sessions/<int:session_id>/events", endpoint="api_events")
@role_required("candidate")
def api_events(session_id: int):
    batch = events.parse_events(json_body())
    look = None
    if batch:  # (an empty batch, the page's ping, judges the camera's silence: the full path)
        # looked at before the write lock; in the usual case a few plain statements under it
        with reading() as read:
            look = hotwrites.look_at_batch(read, session_id=session_id,
                                           candidate_id=current_user.id, batch=batch,
                                           now=utcnow())
    return _answer(look) or write_together(
        lambda session: events.ingest_events(session, _mine(session_id, lock=True), batch))


def _answer(look: dict | Callable | None) -> dict | None:
    """A look's answer (a retry, answered from it), or its write's once committed; None: the
    full path (nothing of the write was kept)."""
    if look is None or isinstance(look, dict):
        return look
    # with the saves arriving at the same moment: one transaction, one write lock
    return write_statements(look)


@bp.post("/api/proctoring/sessions/<int:session_id>/snapshots", endpoint="api_snapshots")
@body_limit(SNAPSHOT_MAX_BYTES)
@role_required("candidate")
def api_snapshots(session_id: int):
    if request.mimetype not in ("image/jpeg", "image/png", "image/webp"):
        raise ApiError(415, "unsupported_media_type", "send the snapshot as image/jpeg")
    seq = request.headers.get("X-Snapshot-Seq", "")
    if not is_whole(seq):  # "²" is a digit to str.isdigit, not to int
        raise Invalid("the X-Snapshot-Seq header must be a positive integer", field="X-Snapshot-Seq")
    seq_n = events.parse_seq(int(seq), "X-Snapshot-Seq")
    client_at = events.parse_client_time(request.headers.get("X-Client-Time"), "X-Client-Time")
    # decoded, shrunk and encrypted before the session row is locked (on SQLite, before the
    # write lock); its faces are counted by the face checker, off the request (face_checks)
    prepared = events.prepare_snapshot(config().vault, session_id=session_id,
                                       image=request.get_data(cache=False), count=False)

    with reading() as read:
        look = hotwrites.look_at_frame(read, session_id=session_id, candidate_id=current_user.id,
                                       seq=seq_n, image=prepared, vault=config().vault,
                                       client_at=client_at, now=utcnow())
    answer = _answer(look)
    if answer is not None:
        return answer

    def store(session: Session) -> dict:
        snap, created = events.record_snapshot(session, _mine(session_id, lock=True),
                                               config().vault, seq=seq_n, image=prepared,
                                               client_at=client_at)
        return {"seq": snap.seq, "status": "stored" if created else "duplicate",
                "faces": snap.faces}

    # the full path (a flag to raise): with the saves arriving at the same moment, one
    # transaction and one write lock
    return write_together(store)
