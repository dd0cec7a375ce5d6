"""Calendar quarters in French legal time (Europe/Paris), converted to UTC only here.

A quarter's *reading date* is its boundary: the first day of the next quarter
at 00:00 Europe/Paris (``01/04/2025`` for 2025Q1), the instant at which its
cumulative index is read. CarbuRe accepts a reading dated from the first day
of the quarter up to 15 days after its last day (``deadline``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cloud.carbure.errors import QuarterError
from quartier.series import PARIS

WINDOW_DAYS = 15
"""Days after a quarter's last day within which its readings are due. [d]"""

_QUARTER_RE = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)


def paris_midnight_utc(d: date) -> int:
    """00:00 Europe/Paris on day ``d``. [s since epoch, UTC]"""
    return int(datetime(d.year, d.month, d.day, tzinfo=PARIS).timestamp())


def paris_date(t: int) -> date:
    """Local (Europe/Paris) calendar date of the UTC time ``t`` [s since epoch]."""
    return datetime.fromtimestamp(t, tz=PARIS).date()


def paris_text(t: int) -> str:
    """``31/03/2025 23:45`` local (Europe/Paris) form of ``t`` [s since epoch, UTC], for reports."""
    return datetime.fromtimestamp(t, tz=PARIS).strftime("%d/%m/%Y %H:%M")


def ddmmyyyy(d: date) -> str:
    """``JJ/MM/AAAA`` form of a date, as CarbuRe's files write it."""
    return d.strftime("%d/%m/%Y")


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter, e.g. ``Quarter(2025, 1)`` = January to March 2025."""

    year: int
    q: int

    def __post_init__(self) -> None:
        if not 1 <= self.q <= 4:
            raise QuarterError(f"quarter number must be 1 to 4, got {self.q}")

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """``2025Q1`` (also ``2025-Q1``, case-insensitive)."""
        m = _QUARTER_RE.match(text.strip())
        if not m:
            raise QuarterError(f"quarter {text!r} is not valid; write it like 2025Q1 (quarters 1 to 4)")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def containing(cls, d: date) -> Quarter:
        """The quarter that contains the local date ``d``."""
        return cls(d.year, (d.month - 1) // 3 + 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"

    @property
    def first_day(self) -> date:
        return date(self.year, 3 * self.q - 2, 1)

    @property
    def boundary_day(self) -> date:
        """First day of the next quarter: the reading date (``01/04/2025`` for 2025Q1)."""
        return date(self.year + 1, 1, 1) if self.q == 4 else date(self.year, 3 * self.q + 1, 1)

    @property
    def last_day(self) -> date:
        return self.boundary_day - timedelta(days=1)

    @property
    def deadline(self) -> date:
        """Last local day on which a reading of this quarter may be dated and filed (last day + 15 days)."""
        return self.last_day + timedelta(days=WINDOW_DAYS)

    @property
    def start_utc(self) -> int:
        """00:00 Europe/Paris on the first day. [s since epoch, UTC]"""
        return paris_midnight_utc(self.first_day)

    @property
    def boundary_utc(self) -> int:
        """00:00 Europe/Paris on the first day of the next quarter. [s since epoch, UTC]"""
        return paris_midnight_utc(self.boundary_day)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.q == 1 else Quarter(self.year, self.q - 1)
