"""Proctoring's exceptions. Each carries the HTTP status and code the edge (view, CLI) uses."""
from __future__ import annotations

from microcred.errors import DomainError


class ProctoringError(DomainError):
    """A proctoring request that cannot be honoured."""


class NotFound(ProctoringError):
    """Also what a proctor gets for a session of an exam they are not assigned to: ids of other
    exams' sessions cannot be probed."""

    status, code = 404, "not_found"


class Forbidden(ProctoringError):
    status, code = 403, "forbidden"


class Conflict(ProctoringError):
    """The session is not in a state that allows this (e.g. pausing a submitted session)."""

    status, code = 409, "conflict"


class Invalid(ProctoringError):
    """The request is malformed; ``field`` names what was wrong."""

    status, code = 422, "invalid"


class TooManyRequests(ProctoringError):
    """A rate limit was reached; ``retry_after`` (seconds) says when the next try is allowed."""

    status, code = 429, "too_many_requests"
