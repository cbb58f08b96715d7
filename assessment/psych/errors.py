"""The workspace's one refusal: the exam's results cannot be analysed as asked."""

from microcred.errors import DomainError


class AnalysisError(DomainError):
    """The exam's results cannot be analysed as asked; the message says why."""

    status, code = 409, "no_data"
