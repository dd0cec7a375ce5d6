"""Quarterly index readings from stored 15-minute intervals (pure: arrays and records in, records out).

The reading of a charge point for a quarter is the ``index_end_wh`` of the
last *valid* interval (quality measured or interpolated, index known) ending
at or before the quarter boundary (first day of the next quarter, 00:00
Europe/Paris), with its real time: nothing is extrapolated. Estimated and
missing intervals never count.

The previous index is the last reading CarbuRe accepted, else the initial
index of the meter in place at the start of the quarter. When the meter was
replaced after the previous reading, the quarter's energy is the old meter's
part (its final valid index at or before the replacement minus the previous
index) plus the new meter's part (its index at the boundary minus its initial
index); the file's "previous" column then holds the new meter's initial index,
because column C is the new meter's own index (what an auditor reads on site).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from cloud.carbure.period import Quarter, paris_text
from cloud.carbure.registry import AcceptedReading, ChargePoint, MeterLink
from quartier.series import INTERVAL_S, Interval, Quality

VALID_QUALITIES = (Quality.MEASURED, Quality.INTERPOLATED)
"""Interval qualities whose ``index_end_wh`` may be reported to CarbuRe."""

LOAD_FACTOR_DIGITS = Decimal("0.0001")

MAX_AGE_S = 7 * 86400
"""Oldest a valid index may be, before the boundary, to stand as the quarter's reading. [s]"""


@dataclass(frozen=True)
class MeterSeries:
    """The valid boundary indexes of one meter, oldest first.

    ``ends``: interval ends (start + 900) [s since epoch, UTC], int64, increasing.
    ``index_wh``: import index at each end [Wh], int64.
    """

    ends: np.ndarray
    index_wh: np.ndarray

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, int | None, Quality | str]]) -> MeterSeries:
        """From (interval start [s UTC], index_end_wh [Wh] or None, quality); invalid rows are dropped."""
        valid = {q.value for q in VALID_QUALITIES}
        kept = [(s + INTERVAL_S, i) for s, i, q in rows if i is not None and Quality(q).value in valid]
        kept.sort()
        ends = np.array([e for e, _ in kept], dtype=np.int64)
        idx = np.array([i for _, i in kept], dtype=np.int64)
        return cls(ends, idx)

    @classmethod
    def from_intervals(cls, intervals: Iterable[Interval]) -> MeterSeries:
        return cls.from_rows((iv.start, iv.index_end_wh, iv.quality) for iv in intervals)

    def at(self, t: int, after: int | None = None) -> tuple[int, int] | None:
        """(time, index [Wh]) of the last valid index at or before ``t`` and strictly after ``after``; or None."""
        k = int(np.searchsorted(self.ends, t, side="right")) - 1
        if k < 0 or (after is not None and int(self.ends[k]) <= after):
            return None
        return int(self.ends[k]), int(self.index_wh[k])


EMPTY = MeterSeries(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Replacement:
    """A meter change between the previous reading and the boundary.

    old_final_wh/old_final_at: the old meter's last valid index at or before the
    change, and its time [Wh, s UTC]; None when it has none after the previous reading.
    """

    old_gateway_id: str
    old_meter_id: str
    old_final_wh: int | None
    old_final_at: int | None
    new_gateway_id: str
    new_meter_id: str
    new_initial_wh: int
    installed_at: int

    def describe(self) -> str:
        old = (f"final index {self.old_final_wh / 1000:.3f} kWh at {paris_text(self.old_final_at)}"
               if self.old_final_wh is not None and self.old_final_at is not None else "no final index")
        return (f"meter {self.old_gateway_id}/{self.old_meter_id} replaced by {self.new_gateway_id}/{self.new_meter_id}"
                f" at {paris_text(self.installed_at)}: old meter {old}, new meter initial index"
                f" {self.new_initial_wh / 1000:.3f} kWh")


@dataclass(frozen=True)
class PointReading:
    """One charge point's reading for a quarter, with everything the summary and the checks need.

    Attributes:
        point: the registered charge point.
        previous_wh/previous_at: the previous index and its time [Wh, s UTC].
        previous_source: where the previous index comes from (accepted reading or meter initial index).
        file_previous_wh: column B of the file: the previous index of the meter read at the boundary. [Wh]
        index_wh/reading_at: the index at the boundary and its real time [Wh, s UTC]; None when missing.
        gateway_id/meter_id: the meter read ("" when the point has no meter).
        energy_wh: energy since the previous reading, across meter changes; None when unknown. [Wh]
        load_factor: energy / (nominal power x elapsed hours); None when unknown. [-]
        replacements: meter changes since the previous reading.
        missing_since: when no index could be read: the time of the last valid index of the meter
            (None: never). [s UTC]
        warnings: human-readable notes (late index, unknown old-meter final index ...).
    """

    point: ChargePoint
    previous_wh: int | None
    previous_at: int | None
    previous_source: str
    file_previous_wh: int | None
    index_wh: int | None
    reading_at: int | None
    gateway_id: str
    meter_id: str
    energy_wh: int | None
    load_factor: Decimal | None
    replacements: tuple[Replacement, ...] = ()
    missing_since: int | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.index_wh is not None


def load_factor(energy_wh: int, nominal_power_kw: Decimal, seconds: int) -> Decimal | None:
    """energy / (nominal power x hours), 4 decimals; None for a zero power or duration. [-]"""
    if seconds <= 0 or nominal_power_kw <= 0:
        return None
    return (Decimal(energy_wh) * 3600 / (nominal_power_kw * 1000 * seconds)).quantize(LOAD_FACTOR_DIGITS)


def _base_link(links: Sequence[MeterLink], t: int) -> int:
    """Index of the link in place at time ``t`` (the first link if none was installed yet)."""
    k = 0
    for i, link in enumerate(links):
        if link.installed_at <= t:
            k = i
    return k


def point_reading(
    point: ChargePoint,
    links: Sequence[MeterLink],
    series: Mapping[tuple[str, str], MeterSeries],
    quarter: Quarter,
    previous: AcceptedReading | None = None,
    max_age_s: int = MAX_AGE_S,
) -> PointReading:
    """The reading of ``point`` for ``quarter``.

    ``links``: the point's meters (any order); ``series``: valid indexes by
    (gateway id, meter id), an absent meter having none; ``previous``: the
    latest reading CarbuRe accepted before the quarter's boundary, if any.
    A point without a meter, or whose latest valid index is older than
    ``max_age_s`` [s] before the boundary (or before the quarter, or not after
    its previous reading), gets no index (``ok`` False) and says since when in
    ``warnings``: a stale index is never passed off as the quarter's.
    """
    boundary = quarter.boundary_utc
    links = sorted((x for x in links if x.installed_at < boundary), key=lambda x: x.installed_at)
    if not links:
        return PointReading(point, None, None, "", None, None, None, "", "", None, None,
                            warnings=("no meter linked to this charge point (see the meter mapping)",))
    if previous is not None:
        k = _base_link(links, previous.reading_at)
        prev_wh, prev_at, source = previous.index_wh, previous.reading_at, f"accepted reading {previous.quarter}"
    else:
        k = _base_link(links, quarter.start_utc)
        prev_wh, prev_at = links[k].initial_index_wh, links[k].installed_at
        source = f"initial index of meter {links[k].gateway_id}/{links[k].meter_id}"
    chain = links[k:]
    warnings: list[str] = []
    replacements: list[Replacement] = []
    energy: int | None = 0
    seg_start_wh, seg_start_at = prev_wh, prev_at
    for old, new in zip(chain, chain[1:]):
        final = series.get((old.gateway_id, old.meter_id), EMPTY).at(new.installed_at, after=seg_start_at - 1)
        replacements.append(Replacement(old.gateway_id, old.meter_id, None if final is None else final[1],
                                        None if final is None else final[0], new.gateway_id, new.meter_id,
                                        new.initial_index_wh, new.installed_at))
        if final is None:
            energy = None
            warnings.append(f"old meter {old.gateway_id}/{old.meter_id} has no valid index between "
                            f"{paris_text(seg_start_at)} and its replacement: the quarter's energy is unknown")
        elif energy is not None:
            energy += final[1] - seg_start_wh
        seg_start_wh, seg_start_at = new.initial_index_wh, new.installed_at
    last = chain[-1]
    s = series.get((last.gateway_id, last.meter_id), EMPTY)
    file_prev = seg_start_wh
    got = s.at(boundary, after=max(seg_start_at - 1, quarter.start_utc - 1, boundary - max_age_s - 1))
    if got is None:
        before = s.at(boundary)
        since = None if before is None else before[0]
        when = "never" if since is None else f"since {paris_text(since)}"
        warnings.append(f"no reading: no valid index of meter {last.gateway_id}/{last.meter_id} {when}"
                        f" (an index older than {max_age_s // 86400} days before the boundary is not reported)")
        return PointReading(point, prev_wh, prev_at, source, file_prev, None, None, last.gateway_id, last.meter_id,
                            None, None, tuple(replacements), since, tuple(warnings))
    at, index = got
    if at < boundary:
        warnings.append(f"latest valid index at {paris_text(at)}, before the quarter boundary "
                        f"{paris_text(boundary)}: reported with its real date")
    if energy is not None:
        energy += index - seg_start_wh
    lf = None if energy is None else load_factor(energy, point.nominal_power_kw, at - prev_at)
    return PointReading(point, prev_wh, prev_at, source, file_prev, index, at, last.gateway_id, last.meter_id,
                        energy, lf, tuple(replacements), None, tuple(warnings))
