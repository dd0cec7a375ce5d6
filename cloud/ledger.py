"""The cloud's ledger: which batches were accepted, and which messages were rejected.

Accepted batches are keyed by (gateway id, seq) with the SHA-256 of the
envelope, so a redelivered batch is recognised as a duplicate and a different
batch reusing a seq as a replay. Rejected messages are kept whole with their
reason for inspection.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from quartier.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    gateway_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    digest BLOB NOT NULL,
    n_intervals INTEGER NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (gateway_id, seq)
);
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload BLOB NOT NULL
);
"""


class Ledger:
    """SQLite ledger (WAL); thread-safe."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def digest_of(self, gateway_id: str, seq: int) -> bytes | None:
        """The digest recorded for an accepted batch, or None if never accepted."""
        with self._lock:
            row = self._db.execute(
                "SELECT digest FROM batches WHERE gateway_id = ? AND seq = ?", (gateway_id, seq)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def record(self, gateway_id: str, seq: int, digest: bytes, n_intervals: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?)",
                (gateway_id, seq, digest, n_intervals, time.time()),
            )

    def reject(self, topic: str, reason: str, detail: str, payload: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO rejections (received_at, topic, reason, detail, payload) VALUES (?, ?, ?, ?, ?)",
                (time.time(), topic, reason, detail, payload),
            )

    def rejection_counts(self) -> dict[str, int]:
        """Rejected messages per reason, over the ledger's whole life."""
        with self._lock:
            rows = self._db.execute("SELECT reason, COUNT(*) FROM rejections GROUP BY reason").fetchall()
        return dict(rows)

    def rejections(self) -> list[tuple[str, str, str, bytes]]:
        """(topic, reason, detail, payload) of every rejection, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT topic, reason, detail, payload FROM rejections ORDER BY id").fetchall()
        return [(t, r, d, bytes(p)) for t, r, d, p in rows]

    def accepted_count(self, gateway_id: str | None = None) -> int:
        with self._lock:
            if gateway_id is None:
                return self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM batches WHERE gateway_id = ?", (gateway_id,)).fetchone()[0]
