"""The one base of domain errors: each carries the HTTP status and code that the edge (a view's
error handler, a CLI command) turns into a 4xx response or an exit message."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra
