"""The workspace's one refusal: the exam's results cannot be analysed as asked."""


class AnalysisError(ValueError):
    """The exam's results cannot be analysed as asked; the message says why."""
