"""Badge issuance as a background job (``docs/jobs.md``, "Badge issuance").

The ``result_released`` receiver (:func:`credentials.issuance.on_result_released`) writes an
:class:`~credentials.models.Issuance` ``pending`` in the release's own transaction and asks for
:data:`ISSUE` to be queued *when that transaction commits* (``microcred.jobs.
enqueue_after_commit``): a release that rolls back leaves neither a row nor a queued job, and a
job never looks for a result that was not written. The cost of queueing after the commit is a
crash between the commit and the enqueue (or a queue that is down): the row is then left
``pending`` with no job, and :func:`requeue_stale_issuances` (run by the sweeper) queues it again
after :data:`REQUEUE_AFTER`. The row is the outbox; the queue only carries the wake-up.

The job is idempotent: ``issue_for_result`` issues nothing a result already earned (its early
return), and two copies running at once are held to one credential by the unique constraint on
(result, achievement): the loser's insert fails, it rolls back, and finds the winner's.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credentials.config import current
from credentials.models import Issuance
from microcred.db import utcnow
from microcred.jobs import job
from microcred.records import records

log = logging.getLogger(__name__)

ISSUE = "credentials.issue"
#: A pending or failed issuance with no job queued for this long is queued again by the sweeper
#: (its job was lost with a worker or a Redis, or the queue could not be reached; or huey's
#: retries ran out).
REQUEUE_AFTER = dt.timedelta(minutes=10)
ERROR_LENGTH = 2000


@job(ISSUE, retries=4, retry_delay=10, retry_backoff=3)  # 10 s, 30 s, 90 s, 270 s
def issue_job(session: Session, result_id: int) -> str:
    """Issue what the released result ``result_id`` earned; the issuance's state after it
    (``issued``; ``missing`` when the result is not released or there is no issuance). A
    failure is recorded on the issuance (``failed``, the reason) and raised: huey retries."""
    from credentials.issuance import issue_for_result

    row = session.scalar(select(Issuance).where(Issuance.result_id == result_id))
    if row is None:
        log.warning("badge job for result %s: no issuance is owed", result_id)
        return "missing"
    if row.state == "issued":  # a retried or duplicated job: the work is done
        session.rollback()
        return "issued"
    try:
        released = records().released_result(session, result_id)
        if released is None:  # withdrawn since: nothing is owed
            session.rollback()
            log.warning("badge job for result %s: the result is no longer released", result_id)
            return "missing"
        try:
            issue_for_result(session, current(), released)
            session.flush()
        except IntegrityError:
            # another copy of this job issued it first (unique result+achievement): its
            # credential is the one; issue_for_result now finds it and issues nothing
            session.rollback()
            released = records().released_result(session, result_id)
            issue_for_result(session, current(), released)
        row = session.scalar(select(Issuance).where(Issuance.result_id == result_id))
        row.state, row.error, row.updated_at = "issued", None, utcnow()
        row.attempts += 1
        session.commit()
        return "issued"
    except Exception as exc:
        session.rollback()
        _fail(session, result_id, f"{type(exc).__name__}: {exc}")
        raise


def _fail(session: Session, result_id: int, message: str) -> None:
    log.warning("badge for result %s not issued: %s", result_id, message)
    row = session.scalar(select(Issuance).where(Issuance.result_id == result_id))
    if row is None or row.state == "issued":
        session.rollback()
        return
    row.state, row.error, row.updated_at = "failed", message[:ERROR_LENGTH], utcnow()
    row.attempts += 1
    session.commit()


def requeue_stale_issuances(session: Session, enqueue: Callable[..., object], *,
                            now: dt.datetime | None = None) -> list[int]:
    """Queue again the badge job of every issuance still pending or failed
    :data:`REQUEUE_AFTER` after its job was last queued; the result ids queued. Each re-queue is
    committed (``queued_at``) before it is enqueued, so a sweep every 30 s queues once per wait;
    a copy that runs anyway finds the badge issued and does nothing."""
    now = now or utcnow()
    stale = session.scalars(
        select(Issuance).where(Issuance.state.in_(("pending", "failed")),
                               Issuance.queued_at <= now - REQUEUE_AFTER)
        .order_by(Issuance.id)).all()
    requeued = []
    for row in stale:
        row.queued_at = now
        session.commit()
        log.warning("badge for result %s still %s with no job since the last queueing: queued "
                    "again", row.result_id, row.state)
        enqueue(ISSUE, row.result_id)
        requeued.append(row.result_id)
    session.commit()
    return requeued
