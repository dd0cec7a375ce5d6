"""SQLite series store: one file, no server; the default backend.

Rows live in one table keyed by (gateway id, meter id, direction, interval start). The
database runs in WAL mode, so readers in other processes (backups, ad-hoc
``sqlite3`` sessions) do not block the cloud's writes. One connection is
shared by all threads and guarded by a lock, because the cloud writes from the
MQTT client's network thread while the HTTP API reads from its own threads.

Config (``[store]`` table)::

    backend = "sqlite"
    path = "/var/lib/quartier/series.sqlite"   # required; ":memory:" for tests
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from quartier.errors import ConfigError, StoreError
from quartier.series import Direction, Interval, Method, Quality
from quartier.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intervals (
    gateway_id TEXT NOT NULL,
    meter_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    start INTEGER NOT NULL,
    energy_wh INTEGER NULL,
    index_start_wh INTEGER NULL,
    index_end_wh INTEGER NULL,
    quality TEXT NOT NULL,
    method TEXT NULL,
    PRIMARY KEY (gateway_id, meter_id, direction, start)
)
"""

_UPSERT = """
INSERT INTO intervals (gateway_id, meter_id, direction, start, energy_wh, index_start_wh, index_end_wh, quality,
                       method)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (gateway_id, meter_id, direction, start) DO UPDATE SET
    energy_wh = excluded.energy_wh,
    index_start_wh = excluded.index_start_wh,
    index_end_wh = excluded.index_end_wh,
    quality = excluded.quality,
    method = excluded.method
"""


class SqliteStore:
    """A :class:`~cloud.stores.SeriesStore` in one SQLite file.

    Times are interval starts [s since epoch UTC]; energies and indexes are
    integers [Wh] and must fit in a signed 64-bit integer. NULL stands for an
    unknown energy or index (``missing`` intervals).

    Raises :class:`StoreError` (naming the file and the operation) when the
    file cannot be opened or a statement fails. Thread-safe.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._conn = connect(path, _SCHEMA, autocommit=False)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {path}: cannot open: {exc}") from exc
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(intervals)")}
        if "method" not in columns:  # a store made before intervals said how they were worked out
            with self._conn:
                self._conn.execute("ALTER TABLE intervals ADD COLUMN method TEXT NULL")

    def write_intervals(self, gateway_id: str, intervals: Sequence[Interval]) -> None:
        """Upsert ``intervals`` in one transaction; all or nothing.

        A row with the same (gateway, meter, direction, start) is replaced, so writing
        the same batch twice leaves the table unchanged. Within one batch, a
        later interval with the same key wins.
        """
        rows = [
            (
                gateway_id,
                iv.meter_id,
                iv.direction.value,
                iv.start,
                iv.energy_wh,
                iv.index_start_wh,
                iv.index_end_wh,
                iv.quality.value,
                None if iv.method is None else iv.method.value,
            )
            for iv in intervals
        ]
        with self._lock:
            try:
                with self._conn:
                    self._conn.executemany(_UPSERT, rows)
            except (sqlite3.Error, OverflowError) as exc:
                raise StoreError(f"SQLite store {self.path}: writing {len(rows)} intervals failed: {exc}") from exc

    def read_intervals(
        self,
        gateway_id: str,
        meter_id: str,
        start: int | None = None,
        end: int | None = None,
        direction: Direction = Direction.IMPORT,
    ) -> list[Interval]:
        """Intervals of one meter and direction with ``start <= interval.start < end``, oldest first.

        ``start``/``end`` [s since epoch UTC]; None means unbounded. An unknown
        meter, or ``end <= start``, gives an empty list.
        """
        sql = (
            "SELECT meter_id, start, energy_wh, index_start_wh, index_end_wh, quality, method FROM intervals"
            " WHERE gateway_id = ? AND meter_id = ? AND direction = ?"
        )
        params: list[Any] = [gateway_id, meter_id, Direction(direction).value]
        if start is not None:
            sql += " AND start >= ?"
            params.append(start)
        if end is not None:
            sql += " AND start < ?"
            params.append(end)
        sql += " ORDER BY start"
        with self._lock:
            try:
                rows = self._conn.execute(sql, params).fetchall()
            except (sqlite3.Error, OverflowError) as exc:
                raise StoreError(f"SQLite store {self.path}: reading {gateway_id}/{meter_id} failed: {exc}") from exc
        d = Direction(direction)
        return [
            Interval(m, s, e, i0, i1, Quality(q), d, Method(how) if how else None) for m, s, e, i0, i1, q, how in rows
        ]

    def meters(self) -> list[tuple[str, str]]:
        """Every (gateway id, meter id) pair with at least one interval, sorted."""
        with self._lock:
            try:
                rows = self._conn.execute("SELECT DISTINCT gateway_id, meter_id FROM intervals").fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path}: listing meters failed: {exc}") from exc
        return sorted((g, m) for g, m in rows)

    def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        with self._lock:
            self._conn.close()


def open_sqlite_store(options: Mapping[str, Any], config_path: str, create: bool = True) -> SqliteStore:
    """Build a :class:`SqliteStore` from ``[store]``; ``path`` is required, and must exist unless ``create``."""
    path = options.get("path")
    if path is None:
        raise ConfigError(config_path, "store.path", "missing: the SQLite backend needs the database file path")
    if not isinstance(path, str) or not path:
        raise ConfigError(config_path, "store.path", f"must be a non-empty string, got {path!r}")
    if not create and path != ":memory:" and not Path(path).is_file():
        raise ConfigError(config_path, "store.path", f"{path} does not exist: nothing was stored there (check the "
                                                      "path; the cloud creates it when it stores its first batch)")
    return SqliteStore(path)
