"""The series store interface and its registry of backends.

A store keeps :class:`~quartier.series.Interval` rows keyed by
(gateway id, meter id, direction, interval start). Writing the same key again replaces
the row, so a replayed batch changes nothing: writes are idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from quartier.registry import Factory, Registry
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


BACKENDS: Registry[SeriesStore] = Registry("store backend")


def register_backend(name: str, factory: Factory[SeriesStore]) -> None:
    """Register a store backend under ``name``; refuses duplicates."""
    BACKENDS.register(name, factory)


def open_store(options: Mapping[str, Any], config_path: str = "<config>") -> SeriesStore:
    """Open the backend named by ``options['backend']`` (default ``sqlite``)."""
    # Importing the backends registers them.
    from cloud import store_influx, store_sqlite  # noqa: F401

    return BACKENDS.create(options.get("backend", "sqlite"), options, config_path, "store.backend")
