"""Credits and transfers of renewable volumes in the registry's SQLite file (rules in :mod:`volumes`)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

from cloud.carbure.period import Quarter
from cloud.carbure.volumes import (
    Balance,
    Transfer,
    TransferError,
    TransferStatus,
    balance,
    check_new_transfer,
    credited_wh,
    decide,
)
from quartier.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS volume_credits (
    quarter TEXT PRIMARY KEY,
    energy_wh INTEGER NOT NULL,
    renewable_share TEXT NOT NULL,
    credited_wh INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transfers (
    id INTEGER PRIMARY KEY,
    obligated TEXT NOT NULL,
    volume_wh INTEGER NOT NULL,
    status TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at REAL NOT NULL,
    decided_at REAL NULL
);
"""


class VolumeStore:
    """Thread-safe; every change checks the rules under one lock, so two transfers cannot overdraw."""

    def __init__(self, path: str | Path) -> None:
        self._db = connect(path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def credit(self, quarter: Quarter, energy_wh: int, renewable_share: Decimal) -> int:
        """Credit (or re-credit) a quarter: ``energy_wh`` [Wh] used x ``renewable_share``; the volume [Wh]."""
        vol = credited_wh(energy_wh, renewable_share)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO volume_credits VALUES (?,?,?,?)",
                             (str(quarter), energy_wh, str(renewable_share), vol))
        return vol

    def _transfers(self) -> list[Transfer]:
        rows = self._db.execute("SELECT id, obligated, volume_wh, status, comment FROM transfers ORDER BY id")
        return [Transfer(i, o, v, TransferStatus(s), c) for i, o, v, s, c in rows]

    def transfers(self) -> list[Transfer]:
        with self._lock:
            return self._transfers()

    def balance(self) -> Balance:
        with self._lock:
            return self._balance()

    def _balance(self) -> Balance:
        credits = [r[0] for r in self._db.execute("SELECT credited_wh FROM volume_credits")]
        return balance(credits, self._transfers())

    def create(self, obligated: str, volume_wh: int) -> Transfer:
        """A new pending transfer; TransferError if it exceeds the free volume."""
        with self._lock:
            check_new_transfer(self._balance(), obligated, volume_wh)
            cur = self._db.execute(
                "INSERT INTO transfers (obligated, volume_wh, status, comment, created_at) VALUES (?,?,?,?,?)",
                (obligated.strip(), volume_wh, TransferStatus.PENDING.value, "", time.time()))
            return Transfer(int(cur.lastrowid or 0), obligated.strip(), volume_wh, TransferStatus.PENDING)

    def decide(self, transfer_id: int, new: TransferStatus, comment: str = "") -> Transfer:
        """Accept, refuse (with a comment) or cancel a pending transfer."""
        with self._lock:
            found = [t for t in self._transfers() if t.id == transfer_id]
            if not found:
                raise TransferError(f"no transfer {transfer_id}")
            t = decide(found[0], new, comment)
            self._db.execute("UPDATE transfers SET status = ?, comment = ?, decided_at = ? WHERE id = ?",
                             (t.status.value, t.comment, time.time(), t.id))
            return t
