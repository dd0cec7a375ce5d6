"""The 15-minute interval: the unit of data that flows from meter to store.

An interval is identified by its meter and its start, a UTC time aligned to
:00/:15/:30/:45. Energy comes from a meter's cumulative index, so it is an
integer number of watt-hours.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

INTERVAL_S = 900
"""Length of one interval. [s]"""

PARIS = ZoneInfo("Europe/Paris")
"""French legal time. Series are UTC; local time appears only at the edges (TIC horodates, tariffs, reports)."""

_UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class Quality(str, enum.Enum):
    """How an interval's boundary indexes were obtained.

    ``measured``: both boundary indexes were read at the boundary itself.
    ``interpolated``: at least one boundary index was interpolated linearly
    between the two polls around it, at most ``max_gap_s`` apart (30 min by
    default): the meter was read on both sides of the quarter-hour.
    ``estimated``: at least one boundary lies in a longer gap without
    readings (meter silent, gateway down) of at most ``max_estimate_gap_s``;
    its index is spread linearly over the gap. The energy of the whole gap
    is the meter's (conserved); only its split between quarter-hours is
    estimated.
    ``missing``: at least one boundary could not be determined (no poll on one
    side, a gap longer than ``max_estimate_gap_s``, or the index went back or
    was replaced); energy is unknown.
    """

    MEASURED = "measured"
    INTERPOLATED = "interpolated"
    ESTIMATED = "estimated"
    MISSING = "missing"


class Direction(str, enum.Enum):
    """Which cumulative index an interval comes from.

    ``import``: energy taken from the grid by the metered point (consumption,
    a charge point's delivered energy). ``export``: energy the point gave to
    the grid (a producer's injection). Both are positive numbers; a
    bidirectional meter yields one series of each.
    """

    IMPORT = "import"
    EXPORT = "export"


class Method(str, enum.Enum):
    """How an interval's energy was worked out, or why it could not be.

    Measured, interpolated and estimated intervals: ``index-difference`` (both
    boundary indexes read at the boundary), ``linear-interpolation``,
    ``linear-estimate`` (the worst of the two boundaries decides, as for
    :class:`Quality`). Missing intervals say why: ``no-reading`` (no poll on one
    side of a boundary yet: the gateway's first reading, or nothing since),
    ``gap-too-long`` (readings further apart than ``max_estimate_gap_s``),
    ``index-decreased`` (the index went back: meter replaced or reset),
    ``index-jump`` (the index rose faster than the meter's ``max_power_w``
    allows). An index that wrapped around is unwrapped and keeps its method.
    """

    INDEX_DIFFERENCE = "index-difference"
    LINEAR_INTERPOLATION = "linear-interpolation"
    LINEAR_ESTIMATE = "linear-estimate"
    NO_READING = "no-reading"
    GAP_TOO_LONG = "gap-too-long"
    INDEX_DECREASED = "index-decreased"
    INDEX_JUMP = "index-jump"


#: The method implied by a quality, for intervals whose energy is known.
METHOD_OF_QUALITY = {
    "measured": Method.INDEX_DIFFERENCE,
    "interpolated": Method.LINEAR_INTERPOLATION,
    "estimated": Method.LINEAR_ESTIMATE,
}


_QUALITY_RANK = {Quality.MEASURED: 0, Quality.INTERPOLATED: 1, Quality.ESTIMATED: 2, Quality.MISSING: 3}


def worst_quality(a: Quality, b: Quality) -> Quality:
    """The worse of two qualities (missing > estimated > interpolated > measured)."""
    return a if _QUALITY_RANK[a] >= _QUALITY_RANK[b] else b


@dataclass(frozen=True)
class Interval:
    """Energy of one meter over one 15-minute interval.

    Attributes:
        meter_id: the meter's id, unique within its gateway.
        start: interval start, UTC, a multiple of 900. [s since epoch]
        energy_wh: ``index_end_wh - index_start_wh``; None when missing. [Wh]
        index_start_wh: cumulative index (of ``direction``) at ``start``. [Wh]
        index_end_wh: cumulative index at ``start + 900``. [Wh]
        quality: see :class:`Quality`.
        direction: import or export index, see :class:`Direction`.
        method: see :class:`Method`; None when the producer did not say (older
            gateways). Descriptive: not part of equality, so a test compares it
            explicitly.
    """

    meter_id: str
    start: int
    energy_wh: int | None
    index_start_wh: int | None
    index_end_wh: int | None
    quality: Quality
    direction: Direction = Direction.IMPORT
    method: Method | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.start % INTERVAL_S:
            raise ValueError(f"interval start {self.start} is not aligned to 15 minutes")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used in the batch payload (see docs/protocol.md)."""
        return {
            "meter": self.meter_id,
            "start": self.start,
            "wh": self.energy_wh,
            "index_start_wh": self.index_start_wh,
            "index_end_wh": self.index_end_wh,
            "quality": self.quality.value,
            "direction": self.direction.value,
            **({"method": self.method.value} if self.method is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Interval:
        """Inverse of :meth:`to_dict`; raises ValueError/KeyError/TypeError on bad input."""
        def opt_int(key: str) -> int | None:
            v = d[key]
            if v is None:
                return None
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"field {key!r} must be an integer or null, got {v!r}")
            return v

        meter = d["meter"]
        start = d["start"]
        if not isinstance(meter, str) or not meter:
            raise TypeError(f"field 'meter' must be a non-empty string, got {meter!r}")
        if not isinstance(start, int) or isinstance(start, bool):
            raise TypeError(f"field 'start' must be an integer, got {start!r}")
        return cls(
            meter_id=meter,
            start=start,
            energy_wh=opt_int("wh"),
            index_start_wh=opt_int("index_start_wh"),
            index_end_wh=opt_int("index_end_wh"),
            quality=Quality(d["quality"]),
            direction=Direction(d.get("direction", Direction.IMPORT.value)),
            method=Method(d["method"]) if d.get("method") is not None else None,
        )


def floor_quarter(t: float) -> int:
    """Start of the 15-minute interval that contains ``t``. [s since epoch, UTC]"""
    return int(t // INTERVAL_S) * INTERVAL_S


def ceil_quarter(t: float) -> int:
    """First quarter-hour boundary at or after ``t``. [s since epoch, UTC]"""
    q = floor_quarter(t)
    return q if q == t else q + INTERVAL_S


def iso_utc(t: float) -> str:
    """``2026-01-19T15:15:00Z`` form of a UTC epoch time."""
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime(_UTC_FORMAT)


def parse_utc(text: str) -> int:
    """Parse an ISO 8601 UTC time (``Z`` or ``+00:00``) to epoch seconds.

    Raises ValueError for a time without a UTC offset: Quartier never guesses a
    time zone.
    """
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset; write it like 2026-01-19T15:15:00Z")
    return int(dt.timestamp())


def format_utc(t: datetime) -> str:
    """``2026-01-19T15:15:00Z`` form of an aware datetime, to the second."""
    return t.astimezone(timezone.utc).strftime(_UTC_FORMAT)


def utc_now() -> datetime:
    """Current UTC time, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def parse_utc_datetime(value: object, where: str) -> datetime:
    """An aware UTC datetime from a string like ``2026-01-19T08:00:00Z``.

    Raises ValueError naming ``where`` for a non-string, a malformed time, or a time without a zone.
    """
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a UTC time string like 2026-01-19T08:00:00Z")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where} {value!r} is not a time like 2026-01-19T08:00:00Z") from None
    if t.tzinfo is None:
        raise ValueError(f"{where} {value!r} has no time zone; write UTC with a final Z")
    return t.astimezone(timezone.utc)
