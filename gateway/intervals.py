"""Turn a meter's cumulative index into 15-minute intervals (pure, no I/O).

Readings come in time order. Each quarter-hour boundary (:00/:15/:30/:45 UTC)
gets an index: the reading taken exactly at the boundary (``measured``), or
the linear interpolation between the readings just before and just after it:
``interpolated`` when they are at most ``max_gap_s`` apart, ``estimated``
when they are further apart but at most ``max_estimate_gap_s`` (the meter or
the gateway was silent: the gap's energy is known, its split is not), or
nothing (``missing``). An interval is emitted once both of its boundaries are
known. Interpolated and estimated indexes are rounded half up to whole Wh.

Meter faults:

- **Counter wrap-around**: a meter whose index register rolls over at
  ``wrap_wh`` (a uint32 of Wh at 2^32 Wh, a 9-digit TIC index at 10^9 Wh)
  goes from near ``wrap_wh`` to near 0. An index that falls from the top
  tenth of the range to the bottom tenth is taken as a wrap: the builder
  adds ``wrap_wh`` from then on, so its indexes (and the intervals'
  ``index_*_wh``) keep increasing and energy is conserved.
- **Index going back** (meter replaced or reset) or rising faster than
  ``max_power_w`` allows: no boundary is interpolated across it (those are
  ``missing``); intervals resume, measured, from the new index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from quartier.series import (
    INTERVAL_S,
    METHOD_OF_QUALITY,
    Direction,
    Interval,
    Method,
    Quality,
    ceil_quarter,
    floor_quarter,
    worst_quality,
)

#: Default longest gap across which a boundary is estimated (a day without readings). [s]
MAX_ESTIMATE_GAP_S = 86_400


@dataclass(frozen=True)
class Boundary:
    """The index at one quarter-hour boundary."""

    t: int
    index_wh: int | None
    quality: Quality
    cause: Method | None = None
    """Why the index is unknown (``missing`` boundaries only)."""


def interpolate_index(t0: float, i0: int, t1: float, i1: int, t: float) -> int:
    """Index at ``t`` on the line through (t0, i0) and (t1, i1), rounded half up. [Wh]

    Requires ``t0 < t < t1``.
    """
    return i0 + math.floor((i1 - i0) * (t - t0) / (t1 - t0) + 0.5)


class IntervalBuilder:
    """Streaming aggregator for one meter.

    Args:
        meter_id: the meter's id, copied into every interval.
        max_gap_s: longest gap between two readings across which a boundary is
            interpolated; beyond it the boundary is ``missing``. [s]
        state: a previous :meth:`state` to resume from after a restart.
        direction: which index this builder follows, copied into every interval.
        max_estimate_gap_s: longest gap across which a boundary is estimated;
            at most ``max_gap_s`` disables estimation. [s]
        wrap_wh: the value at which the meter's index rolls over to 0, if it
            does (None: never). [Wh]
        max_power_w: a rise faster than this between two readings is a
            discontinuity, not energy (None: no limit). [W]
    """

    def __init__(
        self,
        meter_id: str,
        max_gap_s: float = 1800,
        state: dict[str, Any] | None = None,
        direction: Direction = Direction.IMPORT,
        max_estimate_gap_s: float = MAX_ESTIMATE_GAP_S,
        wrap_wh: int | None = None,
        max_power_w: float | None = None,
    ) -> None:
        self.meter_id = meter_id
        self.direction = direction
        self.max_estimate_gap_s = max_estimate_gap_s
        self.wrap_wh = wrap_wh
        self.max_power_w = max_power_w
        self.wrap_offset = 0  # Wh added to raw indexes after the counter wrapped
        self.wraps = 0
        self.discontinuities = 0
        self.max_gap_s = max_gap_s
        self.last_t: float | None = None
        self.last_index: int | None = None
        self.boundary: Boundary | None = None
        self.rejected_readings = 0
        if state:
            self.last_t = state["last_t"]
            self.last_index = state["last_index"]
            self.wrap_offset = state.get("wrap_offset", 0)
            b = state.get("boundary")
            if b is not None:
                cause = b.get("cause")
                self.boundary = Boundary(b["t"], b["index_wh"], Quality(b["quality"]), Method(cause) if cause else None)

    def state(self) -> dict[str, Any]:
        """JSON-ready state; feeding it back to the constructor resumes exactly."""
        b = self.boundary
        return {
            "last_t": self.last_t,
            "last_index": self.last_index,
            "wrap_offset": self.wrap_offset,
            "boundary": None if b is None else {
                "t": b.t, "index_wh": b.index_wh, "quality": b.quality.value,
                "cause": None if b.cause is None else b.cause.value,
            },
        }

    def add(self, t: float, index_wh: int) -> list[Interval]:
        """Feed one reading (the meter's raw index); returns the intervals it completes, oldest first.

        A reading not later than the previous one is ignored (counted in
        ``rejected_readings``): time must move forward.
        """
        if self.last_t is not None and t <= self.last_t:
            self.rejected_readings += 1
            return []
        index_wh = self._unwrap(index_wh)
        broken = self._discontinuity(t, index_wh)
        out: list[Interval] = []
        first = ceil_quarter(t) if self.last_t is None else floor_quarter(self.last_t) + INTERVAL_S
        b_t = first
        while b_t <= t:
            out.extend(self._close_boundary(self._boundary_at(b_t, t, index_wh, broken)))
            b_t += INTERVAL_S
        self.last_t, self.last_index = t, index_wh
        return out

    def _unwrap(self, raw_wh: int) -> int:
        """The raw index plus the wrap offset, updating the offset when the counter has just rolled over."""
        index = raw_wh + self.wrap_offset
        wrap = self.wrap_wh
        if wrap and self.last_index is not None and index < self.last_index:
            last_raw = self.last_index - self.wrap_offset
            if last_raw >= 0.9 * wrap and raw_wh <= 0.1 * wrap:
                self.wrap_offset += wrap
                self.wraps += 1
                index += wrap
        return index

    def _discontinuity(self, t: float, index_wh: int) -> Method | None:
        """Why the index may not be interpolated from the previous reading to this one, or None if it may."""
        if self.last_t is None or self.last_index is None:
            return None
        rise = index_wh - self.last_index
        if rise < 0:
            self.discontinuities += 1
            return Method.INDEX_DECREASED
        if self.max_power_w is not None and rise > self.max_power_w * (t - self.last_t) / 3600 + 1:
            self.discontinuities += 1
            return Method.INDEX_JUMP
        return None

    def _boundary_at(self, b_t: int, t: float, index_wh: int, broken: Method | None) -> Boundary:
        if b_t == t:
            return Boundary(b_t, index_wh, Quality.MEASURED)
        if self.last_t is None or self.last_index is None:
            return Boundary(b_t, None, Quality.MISSING, Method.NO_READING)
        if broken is not None:
            return Boundary(b_t, None, Quality.MISSING, broken)
        gap = t - self.last_t
        if gap > max(self.max_gap_s, self.max_estimate_gap_s):
            return Boundary(b_t, None, Quality.MISSING, Method.GAP_TOO_LONG)
        quality = Quality.INTERPOLATED if gap <= self.max_gap_s else Quality.ESTIMATED
        return Boundary(b_t, interpolate_index(self.last_t, self.last_index, t, index_wh, b_t), quality)

    def _close_boundary(self, b: Boundary) -> list[Interval]:
        prev, self.boundary = self.boundary, b
        if prev is None or prev.t != b.t - INTERVAL_S:
            return []
        quality = worst_quality(prev.quality, b.quality)
        energy: int | None = None
        method: Method
        if prev.index_wh is not None and b.index_wh is not None:
            energy = b.index_wh - prev.index_wh
            method = METHOD_OF_QUALITY[quality.value]
            if energy < 0:
                # A decreasing index (meter replaced or reset) gives no trustworthy energy.
                energy, quality, method = None, Quality.MISSING, Method.INDEX_DECREASED
        else:
            quality = Quality.MISSING
            method = prev.cause or b.cause or Method.NO_READING
        return [Interval(self.meter_id, prev.t, energy, prev.index_wh, b.index_wh, quality, self.direction, method)]
