"""CarbuRe's checks on a quarterly readings file, run by Quartier before it submits (pure).

Each failure is a :class:`Finding` naming the point (and the file row when
known). The checks, as CarbuRe runs them:

* ``registered``: the point is registered and has a meter;
* ``decreasing-index``: the index is not below the previous one;
* ``duplicate``: a point appears once;
* ``date-window``: the reading date is not before the last stored reading and
  falls between the quarter's first day and 15 days after its last day;
* ``load-factor``: kWh used / (nominal kW x days x 24) is at most 1, days
  counted between the previous reading's date and this reading's date.

A row without an index (no reading available) gets a ``missing`` finding and
no other check.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from cloud.carbure.period import Quarter


class Check(str, enum.Enum):
    REGISTERED = "registered"
    DECREASING_INDEX = "decreasing-index"
    DUPLICATE = "duplicate"
    DATE_WINDOW = "date-window"
    LOAD_FACTOR = "load-factor"
    MISSING = "missing"


@dataclass(frozen=True)
class Finding:
    """One failed check of one point."""

    check: Check
    point_id: str
    message: str
    row: int | None = None

    def __str__(self) -> str:
        where = f"row {self.row}, " if self.row is not None else ""
        return f"{where}{self.point_id}: {self.check.value}: {self.message}"


@dataclass(frozen=True)
class FileReading:
    """One row of a quarterly readings file: B, C and D. [Wh]; ``row`` is the file row, if any."""

    point_id: str
    previous_wh: int | None
    index_wh: int | None
    reading_date: date | None
    row: int | None = None


@dataclass(frozen=True)
class PointContext:
    """What the registry knows of a point for the checks.

    ``previous_date``: date of the last stored reading (or of the meter's initial index).
    ``nominal_power_kw``: [kW].
    """

    has_meter: bool
    nominal_power_kw: Decimal
    previous_date: date | None


MAX_LOAD_FACTOR = Decimal(1)


def check_readings(
    rows: Sequence[FileReading], context: Mapping[str, PointContext], quarter: Quarter
) -> list[Finding]:
    """Every finding of the file's rows, in row order then check order."""
    out: list[Finding] = []
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        row_no = r.row if r.row is not None else i + 1
        if r.point_id in first:
            out.append(Finding(Check.DUPLICATE, r.point_id, f"already listed on row {first[r.point_id]}", r.row))
            continue
        first[r.point_id] = row_no
        ctx = context.get(r.point_id)
        if ctx is None:
            out.append(Finding(Check.REGISTERED, r.point_id, "not a registered charge point", r.row))
            continue
        if not ctx.has_meter:
            out.append(Finding(Check.REGISTERED, r.point_id, "registered without a meter", r.row))
            continue
        if r.index_wh is None or r.reading_date is None:
            out.append(Finding(Check.MISSING, r.point_id, "no index or no reading date", r.row))
            continue
        d = r.reading_date
        if ctx.previous_date is not None and d < ctx.previous_date:
            out.append(Finding(Check.DATE_WINDOW, r.point_id,
                               f"reading date {d:%d/%m/%Y} is before the last stored reading "
                               f"{ctx.previous_date:%d/%m/%Y}", r.row))
        elif not quarter.first_day <= d <= quarter.deadline:
            out.append(Finding(Check.DATE_WINDOW, r.point_id,
                               f"reading date {d:%d/%m/%Y} is outside {quarter.first_day:%d/%m/%Y} to "
                               f"{quarter.deadline:%d/%m/%Y}", r.row))
        if r.previous_wh is None:
            continue
        if r.index_wh < r.previous_wh:
            out.append(Finding(Check.DECREASING_INDEX, r.point_id,
                               f"index {r.index_wh / 1000:.3f} kWh is below the previous "
                               f"{r.previous_wh / 1000:.3f} kWh", r.row))
            continue
        if ctx.previous_date is not None and ctx.nominal_power_kw > 0:
            days = max((d - ctx.previous_date).days, 1)
            used = Decimal(r.index_wh - r.previous_wh) / 1000
            lf = used / (ctx.nominal_power_kw * days * 24)
            if lf > MAX_LOAD_FACTOR:
                out.append(Finding(Check.LOAD_FACTOR, r.point_id,
                                   f"load factor {lf:.3f} > 1: {used:.3f} kWh in {days} days at "
                                   f"{ctx.nominal_power_kw} kW", r.row))
    return out
