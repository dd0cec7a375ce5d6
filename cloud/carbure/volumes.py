"""Renewable energy volumes and transfers ("cessions") to obligated parties (pure rules).

Each quarter the operator is credited ``kWh used x the year's renewable share``.
It may transfer volumes to obligated parties: a transfer is ``pending`` until the
party ``accepted`` it (its volume is then debited from the available volume) or
``refused`` it (with a comment); the operator may ``cancelled`` it while pending.

Volumes are whole Wh; the credit is rounded half up to the Wh (the one rounding
point of this module). A new transfer may not exceed the available volume less
the pending transfers (pending volumes are reserved, so the sum of what may
still be accepted never exceeds what is available).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cloud.carbure.errors import CarbureError


class TransferStatus(str, enum.Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    CANCELLED = "cancelled"


class TransferError(CarbureError):
    """A transfer was refused: above the available balance, or not pending any more."""


def credited_wh(energy_wh: int, renewable_share: Decimal) -> int:
    """Renewable volume credited for ``energy_wh`` [Wh] at ``renewable_share`` [0..1]. [Wh]"""
    if not Decimal(0) <= renewable_share <= Decimal(1):
        raise ValueError(f"renewable share must be between 0 and 1, got {renewable_share}")
    if energy_wh < 0:
        raise ValueError(f"energy must not be negative, got {energy_wh} Wh")
    return int((Decimal(energy_wh) * renewable_share).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Transfer:
    id: int
    obligated: str
    volume_wh: int
    status: TransferStatus
    comment: str = ""


@dataclass(frozen=True)
class Balance:
    """Volumes [Wh]: credited in total, debited by accepted transfers, reserved by pending ones."""

    credited_wh: int
    accepted_wh: int
    pending_wh: int

    @property
    def available_wh(self) -> int:
        """Credited less accepted transfers (what CarbuRe shows as available)."""
        return self.credited_wh - self.accepted_wh

    @property
    def free_wh(self) -> int:
        """Available less pending transfers: the most a new transfer may move."""
        return self.available_wh - self.pending_wh


def balance(credits_wh: Iterable[int], transfers: Iterable[Transfer]) -> Balance:
    ts = list(transfers)
    return Balance(
        sum(credits_wh),
        sum(t.volume_wh for t in ts if t.status is TransferStatus.ACCEPTED),
        sum(t.volume_wh for t in ts if t.status is TransferStatus.PENDING),
    )


def check_new_transfer(b: Balance, obligated: str, volume_wh: int) -> None:
    """Raise TransferError unless a transfer of ``volume_wh`` [Wh] to ``obligated`` may be created."""
    if not obligated.strip():
        raise TransferError("a transfer needs the obligated party's name")
    if volume_wh <= 0:
        raise TransferError(f"a transfer must move a positive volume, got {volume_wh / 1000:.3f} kWh")
    if volume_wh > b.free_wh:
        raise TransferError(
            f"transfer of {volume_wh / 1000:.3f} kWh to {obligated} refused: only {b.free_wh / 1000:.3f} kWh free "
            f"({b.available_wh / 1000:.3f} kWh available, {b.pending_wh / 1000:.3f} kWh in pending transfers)")


def decide(t: Transfer, new: TransferStatus, comment: str = "") -> Transfer:
    """The transfer after ``new`` (accepted, refused with a comment, or cancelled); only a pending one changes."""
    if t.status is not TransferStatus.PENDING:
        raise TransferError(f"transfer {t.id} is {t.status.value}; only a pending transfer can be {new.value}")
    if new is TransferStatus.PENDING:
        raise TransferError(f"transfer {t.id} is already pending")
    if new is TransferStatus.REFUSED and not comment.strip():
        raise TransferError(f"transfer {t.id}: a refusal needs the obligated party's comment")
    return Transfer(t.id, t.obligated, t.volume_wh, new, comment)
