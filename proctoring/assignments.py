"""Which proctor watches which exam. Admins may act on every exam; a proctor only on the exams
they are assigned to, and a session of any other exam is "not found" to them."""
from __future__ import annotations

from typing import Protocol

from sqlalchemy import Select, delete, false, select
from sqlalchemy.orm import Session

from microcred.errors import Forbidden, Invalid, NotFound
from proctoring import audit
from proctoring.models import ProctorAssignment, ProctorSession
from proctoring.sessions import Actor


class ExamLike(Protocol):
    id: int
    code: str


def assign(session: Session, proctor: Actor, exam: ExamLike, by: Actor | None) -> ProctorAssignment:
    """Assign ``proctor`` to ``exam`` (idempotent). ``by`` is the admin (None: the system, e.g.
    the demo loader or the CLI without ``--by``)."""
    if proctor.role != "proctor":
        raise Invalid(f"{proctor.email} is a {proctor.role}, not a proctor", field="proctor")
    if by is not None and by.role != "admin":
        raise Forbidden("only an admin assigns proctors")
    existing = session.scalar(select(ProctorAssignment).where(
        ProctorAssignment.proctor_id == proctor.id, ProctorAssignment.exam_id == exam.id))
    if existing is not None:
        return existing
    row = ProctorAssignment(proctor_id=proctor.id, exam_id=exam.id,
                            assigned_by_id=by.id if by else None)
    session.add(row)
    session.flush()
    audit.record(session, "proctor.assigned", actor=by, subject_type="exam", subject_id=exam.id,
                 data={"proctor_id": proctor.id, "proctor": proctor.email, "exam": exam.code})
    return row


def unassign(session: Session, proctor: Actor, exam: ExamLike, by: Actor | None) -> bool:
    if by is not None and by.role != "admin":
        raise Forbidden("only an admin unassigns proctors")
    gone = session.execute(delete(ProctorAssignment).where(
        ProctorAssignment.proctor_id == proctor.id, ProctorAssignment.exam_id == exam.id)).rowcount
    if gone:
        audit.record(session, "proctor.unassigned", actor=by, subject_type="exam",
                     subject_id=exam.id, data={"proctor_id": proctor.id, "proctor": proctor.email,
                                               "exam": exam.code})
    return bool(gone)


def assignments(session: Session) -> list[ProctorAssignment]:
    return list(session.scalars(select(ProctorAssignment).order_by(ProctorAssignment.exam_id,
                                                                   ProctorAssignment.proctor_id)))


def exam_ids_for(session: Session, user: Actor) -> set[int] | None:
    """The exams ``user`` may proctor: None means all (admins), else a set (maybe empty)."""
    if user.role == "admin":
        return None
    if user.role != "proctor":
        return set()
    return set(session.scalars(
        select(ProctorAssignment.exam_id).where(ProctorAssignment.proctor_id == user.id)))


def exam_ids_query(user: Actor) -> Select | None:
    """:func:`exam_ids_for` as a subquery, for a statement that reads the exams' rows in the
    same round trip: None means all (admins)."""
    if user.role == "admin":
        return None
    q = select(ProctorAssignment.exam_id).where(ProctorAssignment.proctor_id == user.id)
    return q if user.role == "proctor" else q.where(false())


def may_proctor(session: Session, user: Actor, exam_id: int) -> bool:
    allowed = exam_ids_for(session, user)
    return allowed is None or exam_id in allowed


def require_access(session: Session, user: Actor, ps: ProctorSession) -> ProctorSession:
    """``ps`` if ``user`` may act on it; otherwise :class:`NotFound`, as if it did not exist."""
    if not may_proctor(session, user, ps.exam_id):
        raise NotFound(f"no proctoring session {ps.id}")
    return ps
