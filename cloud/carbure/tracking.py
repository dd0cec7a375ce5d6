"""Quarterly files' statuses and the readings they carry, in the registry's SQLite file.

When a quarter is prepared its readings are kept with the file; when CarbuRe
accepts the file they become the points' accepted readings (the next quarter's
previous index). Every status change is appended to a history.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cloud.carbure.period import Quarter
from cloud.carbure.readings import PointReading
from cloud.carbure.registry import AcceptedReading, Registry
from cloud.carbure.status import FileStatus, check_transition
from quartier.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarter_files (
    quarter TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    file_path TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quarter_history (
    id INTEGER PRIMARY KEY,
    quarter TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quarter_readings (
    quarter TEXT NOT NULL,
    point_id TEXT NOT NULL,
    reading_at INTEGER NOT NULL,
    index_wh INTEGER NOT NULL,
    gateway_id TEXT NOT NULL,
    meter_id TEXT NOT NULL,
    PRIMARY KEY (quarter, point_id)
);
"""


@dataclass(frozen=True)
class QuarterFile:
    quarter: str
    status: FileStatus
    reason: str
    file_path: str
    updated_at: float
    """[s since epoch, UTC]"""


class Tracker:
    """Statuses of quarterly files; thread-safe; shares the registry's SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = connect(path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, quarter: Quarter) -> QuarterFile | None:
        with self._lock:
            return self._get(quarter)

    def _get(self, quarter: Quarter) -> QuarterFile | None:
        row = self._db.execute("SELECT * FROM quarter_files WHERE quarter = ?", (str(quarter),)).fetchone()
        return None if row is None else QuarterFile(row[0], FileStatus(row[1]), row[2], row[3], row[4])

    def history(self, quarter: Quarter) -> list[tuple[FileStatus, str, float]]:
        """(status, reason, time [s UTC]) of every change, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT status, reason, at FROM quarter_history WHERE quarter = ? ORDER BY id",
                                    (str(quarter),)).fetchall()
        return [(FileStatus(s), r, a) for s, r, a in rows]

    def _set(self, quarter: Quarter, new: FileStatus, reason: str = "", file_path: str | None = None) -> None:
        """Change the status; the caller holds the lock."""
        cur = self._get(quarter)
        check_transition(quarter, None if cur is None else cur.status, new, reason)
        now = time.time()
        path = file_path if file_path is not None else ("" if cur is None else cur.file_path)
        self._db.execute("INSERT OR REPLACE INTO quarter_files VALUES (?,?,?,?,?)",
                         (str(quarter), new.value, reason, path, now))
        self._db.execute("INSERT INTO quarter_history (quarter, status, reason, at) VALUES (?,?,?,?)",
                         (str(quarter), new.value, reason, now))

    def prepared(self, quarter: Quarter, readings: Sequence[PointReading], ok: bool, file_path: str) -> FileStatus:
        """Record a (re)prepared file: ``ready`` when ``ok`` (no finding), else ``draft``; keeps its readings."""
        new = FileStatus.READY if ok else FileStatus.DRAFT
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._set(quarter, new, "" if ok else "some checks failed", file_path)
                self._db.execute("DELETE FROM quarter_readings WHERE quarter = ?", (str(quarter),))
                self._db.executemany(
                    "INSERT INTO quarter_readings VALUES (?,?,?,?,?,?)",
                    [(str(quarter), r.point.point_id, r.reading_at, r.index_wh, r.gateway_id, r.meter_id)
                     for r in readings if r.index_wh is not None and r.reading_at is not None and not r.point.article2],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return new

    def submitted(self, quarter: Quarter, receipt: str) -> None:
        with self._lock:
            self._set(quarter, FileStatus.SUBMITTED, receipt)

    def rejected(self, quarter: Quarter, reason: str) -> None:
        with self._lock:
            self._set(quarter, FileStatus.REJECTED, reason)

    def accepted(self, quarter: Quarter, registry: Registry) -> int:
        """Mark accepted and record its readings as the points' accepted readings; returns how many."""
        with self._lock:
            self._set(quarter, FileStatus.ACCEPTED)
            rows = self._db.execute("SELECT point_id, reading_at, index_wh, gateway_id, meter_id FROM quarter_readings"
                                    " WHERE quarter = ?", (str(quarter),)).fetchall()
        for p, at, wh, gw, m in rows:
            registry.record_accepted(AcceptedReading(p, str(quarter), at, wh, gw, m))
        return len(rows)
