"""Exceptions and warnings raised by the psychometrics library.

Errors are raised for input the library cannot use (the message names the bad argument, or the
row and column of a bad CSV cell); warnings are issued when a result is still usable but deserves
a psychometrician's attention (an item nobody failed, a calibration that hit its iteration cap).
"""

from __future__ import annotations


class PsychometricsError(ValueError):
    """Base class for input errors in :mod:`psychometrics`."""


class ResponseDataError(PsychometricsError):
    """A response matrix or CSV file that cannot be analysed.

    ``row`` and ``column`` are 1-based positions in the CSV file (the header is row 1) when the
    data came from a file, or 0-based array indices when it came from an array; either may be
    ``None`` when the fault is not a single cell.
    """

    def __init__(self, message: str, row: int | None = None, column: int | str | None = None):
        self.row = row
        self.column = column
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)


class CalibrationWarning(UserWarning):
    """A calibration finished but one of its results needs care (see the message)."""


class ConvergenceWarning(CalibrationWarning):
    """An iterative estimate stopped at its iteration cap before meeting its tolerance."""
