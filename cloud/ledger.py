"""The cloud's ledger: which batches were accepted, and which messages were rejected.

Accepted batches are keyed by (gateway id, seq) with the SHA-256 of the
envelope, so a redelivered batch is recognised as a duplicate and a different
batch reusing a seq as a replay. Rejected messages are kept whole with their
reason for inspection.

Accepted envelopes are archived whole, with the span of interval starts they
carry, so that an auditor can later be given the signed batches behind any
figure (``archived``) and check them against the gateway's public key.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
CREATE TABLE IF NOT EXISTS archive (
    gateway_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    first_start INTEGER,
    last_start INTEGER,
    envelope BLOB NOT NULL,
    PRIMARY KEY (gateway_id, seq)
);
CREATE INDEX IF NOT EXISTS archive_span ON archive (gateway_id, last_start);
CREATE TABLE IF NOT EXISTS gateway_status (
    gateway_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    doc TEXT NOT NULL
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

    def record(
        self,
        gateway_id: str,
        seq: int,
        digest: bytes,
        n_intervals: int,
        envelope: bytes | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        """Record an accepted batch; with ``envelope``, also archive it with its (first, last) interval start. [s]"""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?)",
                (gateway_id, seq, digest, n_intervals, time.time()),
            )
            if envelope is not None:
                first, last = span if span is not None else (None, None)
                self._db.execute(
                    "INSERT OR IGNORE INTO archive VALUES (?, ?, ?, ?, ?)", (gateway_id, seq, first, last, envelope)
                )
            self._db.execute("COMMIT")

    def archived(self, gateway_id: str, start: int | None = None, end: int | None = None) -> list[tuple[int, bytes]]:
        """(seq, envelope) of the accepted batches of ``gateway_id`` carrying an interval starting in [start, end).

        Batches without intervals are never returned when a span is asked for. Oldest seq first. [s UTC]
        """
        query = "SELECT seq, envelope FROM archive WHERE gateway_id = ?"
        params: list[object] = [gateway_id]
        if start is not None:
            query += " AND last_start >= ?"
            params.append(start)
        if end is not None:
            query += " AND first_start < ?"
            params.append(end)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", params).fetchall()
        return [(int(q), bytes(e)) for q, e in rows]

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

    def record_status(self, gateway_id: str, doc: Mapping[str, object]) -> None:
        """Keep the latest status document of a gateway (see :func:`quartier.mqtt.parse_status`)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO gateway_status VALUES (?, ?, ?)",
                (gateway_id, time.time(), json.dumps(doc, sort_keys=True)),
            )

    def gateway_status(self, gateway_id: str) -> tuple[float, dict[str, Any]] | None:
        """(received at [s UTC], document) of a gateway's latest status, or None if it never sent one."""
        with self._lock:
            row = self._db.execute(
                "SELECT received_at, doc FROM gateway_status WHERE gateway_id = ?", (gateway_id,)
            ).fetchone()
        return None if row is None else (float(row[0]), json.loads(row[1]))

    def gateway_statuses(self) -> dict[str, tuple[float, dict[str, Any]]]:
        """Every gateway's latest status, by gateway id."""
        with self._lock:
            rows = self._db.execute("SELECT gateway_id, received_at, doc FROM gateway_status ORDER BY gateway_id")
            return {g: (float(t), json.loads(d)) for g, t, d in rows.fetchall()}
