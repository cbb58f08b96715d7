"""Signals by which packages tell each other what happened, without importing each other.

Senders and receivers are plain functions; every receiver gets the SQLAlchemy ``session`` in
which the sender is working, so its writes commit (or roll back) with the sender's.
"""
from blinker import Namespace

_signals = Namespace()

#: Sent by delivery when an attempt is finalized and its Result row written.
#: kwargs: session, attempt_id, result_id
result_finalized = _signals.signal("result-finalized")

#: Sent when a result's release status changes (e.g. proctoring review cleared or invalidated).
#: kwargs: session, result_id, status ("released", "held", "invalidated"), reason
result_status_changed = _signals.signal("result-status-changed")

#: Sent by delivery when an attempt starts. kwargs: session, attempt_id
attempt_started = _signals.signal("attempt-started")
