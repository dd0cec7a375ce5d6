"""The gateway's durable outbox and aggregation state (SQLite, WAL).

A batch is sealed and stored in the same transaction that advances the
sequence number and saves every meter's aggregation state, so after a crash
the gateway resumes with no half-written batch, no reused sequence number and
no interval built twice. A batch leaves the outbox only when the cloud
acknowledges it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quartier.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    n_intervals INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'rejected')),
    reason TEXT
);
CREATE TABLE IF NOT EXISTS meter_state (
    meter_id TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxEntry:
    """One sealed batch waiting for its acknowledgement."""

    seq: int
    envelope: bytes
    n_intervals: int


class Outbox:
    """SQLite-backed outbox; safe to use from the poll loop and the MQTT thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path, _SCHEMA, synchronous="FULL")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def meter_states(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT meter_id, state FROM meter_state").fetchall()
        return {mid: json.loads(s) for mid, s in rows}

    def commit(
        self,
        states: Mapping[str, dict[str, Any]],
        seal: Callable[[int], tuple[bytes, int, int]] | None = None,
    ) -> int | None:
        """Save meter states and, if ``seal`` is given, one new batch, atomically.

        ``seal(seq)`` returns ``(envelope, created_ms, n_intervals)`` for the
        next sequence number; it runs inside the transaction, so a failure
        rolls everything back. Returns the new batch's seq, or None.
        """
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                seq = None
                if seal is not None:
                    row = db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
                    seq = (row[0] if row else 0) + 1
                    envelope, created_ms, n = seal(seq)
                    db.execute(
                        "INSERT INTO outbox (seq, created_ms, n_intervals, envelope) VALUES (?, ?, ?, ?)",
                        (seq, created_ms, n, envelope),
                    )
                    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_seq', ?)", (seq,))
                db.executemany(
                    "INSERT OR REPLACE INTO meter_state (meter_id, state) VALUES (?, ?)",
                    [(mid, json.dumps(s)) for mid, s in states.items()],
                )
                db.execute("COMMIT")
                return seq
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def pending(self, limit: int, exclude: set[int] | None = None) -> list[OutboxEntry]:
        """Oldest pending batches first, skipping the seqs in ``exclude``."""
        exclude = exclude or set()
        with self._lock:
            cur = self._db.execute(
                "SELECT seq, envelope, n_intervals FROM outbox WHERE status = 'pending' ORDER BY seq"
            )
            out: list[OutboxEntry] = []
            for seq, env, n in cur:
                if seq in exclude:
                    continue
                out.append(OutboxEntry(seq, bytes(env), n))
                if len(out) >= limit:
                    break
            return out

    def newest_pending(self) -> OutboxEntry | None:
        """The most recently sealed pending batch (the freshest data), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, envelope, n_intervals FROM outbox WHERE status = 'pending' ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return None if row is None else OutboxEntry(int(row[0]), bytes(row[1]), int(row[2]))

    def acknowledge(self, seq: int) -> bool:
        """The cloud stored batch ``seq``: drop it. Returns False if it was not here."""
        with self._lock:
            return self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,)).rowcount > 0

    def reject(self, seq: int, reason: str) -> None:
        """The cloud refused batch ``seq``: keep it aside, never resend, never delete."""
        with self._lock:
            self._db.execute("UPDATE outbox SET status = 'rejected', reason = ? WHERE seq = ?", (reason, seq))

    def size_bytes(self) -> int:
        """Disk space the outbox uses: the database file and its write-ahead log. [bytes]"""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += Path(str(self.path) + suffix).stat().st_size
            except OSError:
                pass
        return total

    def counts(self) -> dict[str, int]:
        """Batches and intervals per status, for status output."""
        with self._lock:
            rows = self._db.execute(
                "SELECT status, COUNT(*), COALESCE(SUM(n_intervals), 0) FROM outbox GROUP BY status"
            ).fetchall()
            last = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        out = {"pending_batches": 0, "pending_intervals": 0, "rejected_batches": 0, "rejected_intervals": 0}
        for status, n, ni in rows:
            out[f"{status}_batches"] = n
            out[f"{status}_intervals"] = ni
        out["last_seq"] = last[0] if last else 0
        return out
