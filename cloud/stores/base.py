"""The series store interface every backend implements.

A store keeps :class:`~quartier.series.Interval` rows keyed by
(gateway id, meter id, direction, interval start). Writing the same key again replaces
the row, so a replayed batch changes nothing: writes are idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from quartier.series import Direction, Interval


class SeriesStore(Protocol):
    """Where the cloud keeps 15-minute intervals."""

    def write_intervals(self, gateway_id: str, intervals: Sequence[Interval]) -> None:
        """Store ``intervals`` of ``gateway_id``; idempotent per (gateway, meter, direction, start)."""
        ...

    def read_intervals(
        self,
        gateway_id: str,
        meter_id: str,
        start: int | None = None,
        end: int | None = None,
        direction: Direction = Direction.IMPORT,
    ) -> list[Interval]:
        """Intervals of one meter and direction with ``start <= interval.start < end``, oldest first. [s]"""
        ...

    def meters(self) -> list[tuple[str, str]]:
        """Every (gateway id, meter id) pair that has at least one interval, sorted."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
