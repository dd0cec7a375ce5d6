"""Errors of the CarbuRe part; every one is a :class:`~quartier.errors.QuartierError`."""

from __future__ import annotations

from collections.abc import Sequence

from quartier.errors import QuartierError


class CarbureError(QuartierError):
    """Base class of the CarbuRe part's errors."""


class FileProblemsError(CarbureError):
    """A file (registration xlsx, meter mapping, IRVE CSV, quarterly xlsx) has one or more problems.

    ``problems`` holds every problem found in the file, each already in the
    form ``FILE: row R, column C (header): problem``; the message lists them all,
    so a user can fix the whole file in one pass.
    """

    def __init__(self, path: object, problems: Sequence[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{self.path}: {n} problem{'s' if n != 1 else ''}"
        super().__init__(head + "\n  " + "\n  ".join(self.problems))


class RegistryError(CarbureError):
    """The charge-point registry refused an operation (unknown point, conflicting meter ...)."""


class QuarterError(CarbureError):
    """A quarter name or reading date is invalid (e.g. ``2025Q5``)."""


class EvidenceError(CarbureError):
    """The evidence bundle cannot be written or read (missing ledger, unreadable manifest ...)."""
