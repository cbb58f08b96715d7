"""The proctor's clock controls as delivery offers them: ``proctoring.actions.AttemptControl``
by attempt id (pause, resume, extend, terminate), each through delivery's one checked service.
Proctoring drives the clock through this, never through delivery's rows or services."""
from __future__ import annotations

from sqlalchemy.orm import Session

from assessment.delivery import service
from assessment.delivery.models import Attempt
from microcred.errors import Conflict


class DeliveryControl:
    """:class:`proctoring.actions.AttemptControl` over delivery's services."""

    max_extension_seconds = service.MAX_EXTENSION_SECONDS

    def _attempt(self, session: Session, attempt_id: int | None) -> Attempt:
        if attempt_id is None:
            raise Conflict("the candidate has not started the exam yet")
        return service.get_attempt(session, attempt_id, lock=True)

    def pause(self, session: Session, attempt_id: int | None, *, by_user_id: int, reason: str) -> None:
        service.pause_attempt(session, self._attempt(session, attempt_id), by_user_id=by_user_id,
                              reason=reason)

    def resume(self, session: Session, attempt_id: int | None, *, by_user_id: int, reason: str) -> None:
        service.resume_attempt(session, self._attempt(session, attempt_id), by_user_id=by_user_id,
                               reason=reason)

    def extend(self, session: Session, attempt_id: int | None, *, seconds: int, by_user_id: int,
               reason: str) -> None:
        service.extend_attempt(session, self._attempt(session, attempt_id), seconds=seconds,
                               by_user_id=by_user_id, reason=reason)

    def terminate(self, session: Session, attempt_id: int | None, *, by_user_id: int, reason: str) -> None:
        service.terminate_attempt(session, self._attempt(session, attempt_id),
                                  by_user_id=by_user_id, reason=reason)
