"""The one base of domain errors, and the one set of the common ones: each carries the HTTP
status and code that the edge (the app's one error handler, a CLI command) turns into a 4xx
response, a flashed message on the form's page, or an exit message.

A package raises these (``NotFound``, ``Conflict``, ...) for the common conditions and derives
its own only for a condition with a code of its own (delivery's ``TimeUp``)."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFound(DomainError):
    """No such thing, or one the caller may not know of (another candidate's attempt, a session
    of an exam the proctor is not assigned to): ids cannot be probed."""

    status, code = 404, "not_found"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class Conflict(DomainError):
    """The thing is not in a state that allows this (e.g. pausing a submitted attempt)."""

    status, code = 409, "conflict"


class Invalid(DomainError):
    """The request is malformed; ``field`` (in ``extra``) names what was wrong."""

    status, code = 422, "invalid"


class TooManyRequests(DomainError):
    """A rate limit was reached; ``retry_after`` (seconds) says when the next try is allowed."""

    status, code = 429, "too_many_requests"
