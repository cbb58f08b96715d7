"""Signals by which packages tell each other what happened, without importing each other.

Every receiver gets the SQLAlchemy ``session`` the sender works in, so its writes commit (or roll
back) with the sender's. Receivers must not commit.
"""
import logging
from typing import Any

from blinker import Namespace

_log = logging.getLogger(__name__)

_signals = Namespace()

#: Sent by delivery when an attempt starts. kwargs: session, attempt_id, candidate_id, exam_id
attempt_started = _signals.signal("attempt-started")

#: Sent by delivery right after an attempt is finalized and its Result row written, before the
#: result's release is decided. kwargs: session, attempt_id, exam_id, result_id, reason
#: ("submitted" | "time_expired" | "terminated"). A receiver that returns a non-empty string
#: *holds* the result (e.g. proctoring: "awaiting proctor review"); if no receiver holds it,
#: delivery releases it and sends ``result_released``.
result_finalized = _signals.signal("result-finalized")

#: Sent by proctoring when a reviewer decides a held result. kwargs: session, attempt_id,
#: verdict ("cleared" | "invalidated"), reason, decided_by_id. Delivery listens, writes the
#: release row, and sends ``result_released`` (cleared) or nothing more (invalidated).
review_decided = _signals.signal("review-decided")

#: Sent by delivery when a result becomes final and visible (released). Credentials listen
#: and issue a badge when it is a pass. kwargs: session, released (a
#: ``microcred.records.ReleasedResult``: the candidate, the exam, the score, when, and
#: whether proctoring proctored the attempt, so a receiver reads nothing of delivery's)
result_released = _signals.signal("result-released")

#: Asked by delivery when it releases a result (``ReleasedResult.proctoring``: what the
#: proctoring record shows, for a badge's evidence), so that nobody reads proctoring's tables
#: or re-reads its policy. kwargs: session, attempt_id.
#: Proctoring answers with ``proctoring.sessions.attempt_summary``: plain data, or None when the
#: attempt had no proctoring session. The asker takes the first answer that is not None.
attempt_proctoring = _signals.signal("attempt-proctoring")

#: Sent by the item bank when a psychometrician re-keys a published item version (or drops it
#: from scoring). kwargs: session, item_version_id, rekey_id, reason, by_id. Delivery rescores
#: every affected attempt and returns its report (``assessment.delivery.rescore``).
item_rekeyed = _signals.signal("item-rekeyed")

#: Sent by delivery when a rescoring changes a result from a pass to a fail (or back).
#: kwargs: session, attempt_id, candidate_id, exam_id, old_result_id, new_result_id, passed,
#: rekey_id. A credential issued on the old pass is *not* revoked by this: credentials answers
#: with the ids of the credentials issued on the old result, which the rescoring report lists
#: for a person's review. A new pass that is released is also sent as ``result_released`` (its
#: badge is issued the usual way).
result_rescored = _signals.signal("result-rescored")


def send_isolated(signal: Any, sender: str, *, session: Any, **kwargs: Any) -> list[Any]:
    """Send ``signal`` for something already decided (a released result), each receiver in its
    own SAVEPOINT: a receiver that fails (e.g. a badge that cannot be issued) is rolled back and
    logged, and neither the sender's work nor the other receivers' is lost with it. An attempt
    is never left half-finalized by what listens to it. Returns the answers of the receivers
    that succeeded."""
    answers = []
    for receiver in signal.receivers_for(sender):
        savepoint = session.begin_nested()
        try:
            answers.append(receiver(sender, session=session, **kwargs))
        except Exception:  # noqa: BLE001 - whatever it was, it must not undo the sender's write
            savepoint.rollback()
            _log.exception("receiver %s of %s failed; its writes were rolled back (%r)",
                           getattr(receiver, "__qualname__", receiver), signal.name, kwargs)
        else:
            savepoint.commit()
    return answers
