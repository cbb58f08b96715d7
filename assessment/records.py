"""The records other packages read of people, exams and results (a
:class:`microcred.records.Records`, declared as ``Package.records``): credentials name a badge's
holder, align an achievement to its exam and issue what released passes earned through these,
and never query ``assessment``'s tables themselves. Results come from delivery's read API
(``assessment.delivery.reads``), where the rule "the newest release row wins" lives."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from assessment.delivery import reads
from assessment.exams import Exam
from assessment.users import User
from itembank.models import Blueprint
from microcred.records import ExamInfo, Person, ReleasedPass, ReleasedResult


class AssessmentRecords:
    def person(self, session: Session, user_id: int) -> Person | None:
        user = session.get(User, user_id)
        return reads.person_of(user) if user is not None else None

    def people(self, session: Session, ids: set[int]) -> dict[int, Person]:
        if not ids:
            return {}
        return {u.id: reads.person_of(u)
                for u in session.scalars(select(User).where(User.id.in_(ids)))}

    def people_by_email(self, session: Session, emails: set[str]) -> dict[str, Person]:
        wanted = {e.strip().lower() for e in emails if e and e.strip()}
        if not wanted:
            return {}
        return {u.email.lower(): reads.person_of(u) for u in session.scalars(
            select(User).where(func.lower(User.email).in_(wanted)))}

    def exam(self, session: Session, exam_id: int) -> ExamInfo | None:
        exam = session.get(Exam, exam_id)
        return reads.exam_info(exam) if exam is not None else None

    def exams(self, session: Session) -> list[ExamInfo]:
        exams = session.scalars(select(Exam).order_by(Exam.code).options(
            selectinload(Exam.blueprint).selectinload(Blueprint.domains)))
        return [reads.exam_info(e) for e in exams]

    def released_passes(self, session: Session, exam_id: int) -> list[ReleasedPass]:
        return reads.released_passes(session, exam_id)

    def released_result(self, session: Session, result_id: int) -> ReleasedResult | None:
        return reads.released_result(session, result_id)


RECORDS = AssessmentRecords()
