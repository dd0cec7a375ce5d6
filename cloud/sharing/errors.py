"""Errors of the energy-sharing part; every message says what and where."""

from __future__ import annotations

from quartier.errors import QuartierError


class SharingError(QuartierError):
    """Base class of the energy-sharing errors."""


class AllocationInputError(SharingError, ValueError):
    """The arrays given to the allocation engine are inconsistent (shape, sign, range)."""


class SharingFileError(SharingError):
    """A representative's CSV file (or a custom-key file) cannot be read.

    The message names the file, the row (1 = header line) and the column.
    """

    def __init__(self, path: object, row: int | None, column: str | None, problem: str) -> None:
        self.path = str(path)
        self.row = row
        self.column = column
        self.problem = problem
        where = self.path
        if row is not None:
            where += f": row {row}"
        if column is not None:
            where += f": column {column!r}"
        super().__init__(f"{where}: {problem}")


class PriceError(SharingError):
    """No price (or two prices) of the agreement apply to a participant on a day."""


class MissingDataError(SharingError):
    """Participants' series have missing intervals in the month (listed per participant)."""

    def __init__(self, missing: dict[str, list[tuple[int, int]]], message: str) -> None:
        self.missing = missing
        super().__init__(message)
