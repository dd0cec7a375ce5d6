"""Turn a meter's cumulative index into 15-minute intervals (pure, no I/O).

Readings come in time order. Each quarter-hour boundary (:00/:15/:30/:45 UTC)
gets an index: the reading taken exactly at the boundary (``measured``), or
the linear interpolation between the readings just before and just after it
when they are at most ``max_gap_s`` apart (``interpolated``), or nothing
(``missing``). An interval is emitted once both of its boundaries are known.
Interpolated indexes are rounded half up to whole Wh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from quartier.series import INTERVAL_S, Direction, Interval, Quality, ceil_quarter, floor_quarter, worst_quality


@dataclass(frozen=True)
class Boundary:
    """The index at one quarter-hour boundary."""

    t: int
    index_wh: int | None
    quality: Quality


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
    """

    def __init__(
        self,
        meter_id: str,
        max_gap_s: float = 1800,
        state: dict[str, Any] | None = None,
        direction: Direction = Direction.IMPORT,
    ) -> None:
        self.meter_id = meter_id
        self.direction = direction
        self.max_gap_s = max_gap_s
        self.last_t: float | None = None
        self.last_index: int | None = None
        self.boundary: Boundary | None = None
        self.rejected_readings = 0
        if state:
            self.last_t = state["last_t"]
            self.last_index = state["last_index"]
            b = state.get("boundary")
            if b is not None:
                self.boundary = Boundary(b["t"], b["index_wh"], Quality(b["quality"]))

    def state(self) -> dict[str, Any]:
        """JSON-ready state; feeding it back to the constructor resumes exactly."""
        b = self.boundary
        return {
            "last_t": self.last_t,
            "last_index": self.last_index,
            "boundary": None if b is None else {"t": b.t, "index_wh": b.index_wh, "quality": b.quality.value},
        }

    def add(self, t: float, index_wh: int) -> list[Interval]:
        """Feed one reading; returns the intervals it completes, oldest first.

        A reading not later than the previous one is ignored (counted in
        ``rejected_readings``): time must move forward.
        """
        if self.last_t is not None and t <= self.last_t:
            self.rejected_readings += 1
            return []
        out: list[Interval] = []
        first = ceil_quarter(t) if self.last_t is None else floor_quarter(self.last_t) + INTERVAL_S
        b_t = first
        while b_t <= t:
            out.extend(self._close_boundary(self._boundary_at(b_t, t, index_wh)))
            b_t += INTERVAL_S
        self.last_t, self.last_index = t, index_wh
        return out

    def _boundary_at(self, b_t: int, t: float, index_wh: int) -> Boundary:
        if b_t == t:
            return Boundary(b_t, index_wh, Quality.MEASURED)
        if self.last_t is None or self.last_index is None:
            return Boundary(b_t, None, Quality.MISSING)
        if t - self.last_t > self.max_gap_s:
            return Boundary(b_t, None, Quality.MISSING)
        return Boundary(b_t, interpolate_index(self.last_t, self.last_index, t, index_wh, b_t), Quality.INTERPOLATED)

    def _close_boundary(self, b: Boundary) -> list[Interval]:
        prev, self.boundary = self.boundary, b
        if prev is None or prev.t != b.t - INTERVAL_S:
            return []
        quality = worst_quality(prev.quality, b.quality)
        energy: int | None = None
        if prev.index_wh is not None and b.index_wh is not None:
            energy = b.index_wh - prev.index_wh
            if energy < 0:
                # A decreasing index (meter replaced or reset) gives no trustworthy energy.
                energy, quality = None, Quality.MISSING
        else:
            quality = Quality.MISSING
        return [Interval(self.meter_id, prev.t, energy, prev.index_wh, b.index_wh, quality, self.direction)]
