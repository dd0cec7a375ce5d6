"""Opening the SQLite files Quartier keeps (outbox, ledger, embedded store)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(
    path: str | Path, schema: str, *, autocommit: bool = True, synchronous: str = "NORMAL"
) -> sqlite3.Connection:
    """Open (creating folders and tables) a WAL-mode database usable from several threads.

    The caller serialises access with its own lock. ``synchronous="FULL"``
    makes each commit durable across power loss, at the cost of an fsync.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None if autocommit else "DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(schema)
    return db
