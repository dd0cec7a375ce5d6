"""Compensation mechanisms with a kWh memory: net energy metering credits and virtual storage (pure, numpy).

Both start from the per-interval net of the site, ``net = import - export`` [Wh]: a positive net is drawn from
the grid, a negative one is a surplus given to the grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from cloud.tariffs.errors import BillingError

I64 = npt.NDArray[np.int64]

PRECHARGE_MIN_KWH = 1000
PRECHARGE_MAX_KWH = 5000


@dataclass(frozen=True)
class Account:
    """A site's contract data that are not part of the tariff.

    Attributes:
        commissioning: virtual storage start, the date of commissioning ("mise en service"); local date.
        precharge_kwh: virtual storage pre-charge added at commissioning: 0 or 1,000 to 5,000. [kWh]
        opening_kwh: virtual storage balance, or net metering credits, at the start of the billed range when
            the account started before it (from the previous bill's statement). [kWh]
        subscribed_kva: the site's subscribed power ("puissance souscrite"), which picks the line of a
            subscription priced by kVA; None when unknown. [kVA]
    """

    commissioning: date | None = None
    precharge_kwh: int = 0
    opening_kwh: Decimal = Decimal(0)
    subscribed_kva: Decimal | None = None

    def check(self) -> None:
        """BillingError if the pre-charge or the opening balance is out of range."""
        if self.precharge_kwh and not PRECHARGE_MIN_KWH <= self.precharge_kwh <= PRECHARGE_MAX_KWH:
            raise BillingError(f"virtual storage pre-charge must be 0 or {PRECHARGE_MIN_KWH} to {PRECHARGE_MAX_KWH} "
                               f"kWh, got {self.precharge_kwh}")
        if self.opening_kwh < 0 or (self.opening_kwh * 1000) % 1:
            raise BillingError(f"opening balance must be >= 0 with at most 3 decimals, got {self.opening_kwh} kWh")
        if self.subscribed_kva is not None and not (self.subscribed_kva.is_finite() and self.subscribed_kva > 0):
            raise BillingError(f"subscribed power must be a positive number of kVA, got {self.subscribed_kva}")

    @property
    def opening_wh(self) -> int:
        return int(self.opening_kwh * 1000)


@dataclass(frozen=True)
class NetMeteringBill:
    """kWh credits of one bill. [Wh]"""

    carried_in: int
    earned: int
    used: int
    expired: int
    carried_out: int


def net_metering(net: I64, bill_starts: I64, adjustment: list[bool],
                 carried_in: int) -> tuple[I64, list[NetMeteringBill]]:
    """Apply net energy metering credits.

    Args:
        net: import - export per interval. [Wh]
        bill_starts: index of each bill's first interval (ascending, the first is 0).
        adjustment: per bill, True when unused credits expire at its end (adjustment period).
        carried_in: credits available before the first bill. [Wh]

    Returns:
        (billed import per interval after credits [Wh], credits per bill). In each bill the credits
        available (carried in + the bill's surplus) offset the bill's import in time order.
    """
    imp = np.maximum(net, 0)
    surplus = np.maximum(-net, 0)
    billed = imp.copy()
    ends = np.r_[bill_starts[1:], net.size]
    out: list[NetMeteringBill] = []
    carry = carried_in
    for b, (a, z) in enumerate(zip(bill_starts.tolist(), ends.tolist())):
        earned = int(surplus[a:z].sum())
        credit = carry + earned
        seg = imp[a:z]
        before = np.cumsum(seg) - seg
        offset = np.clip(credit - before, 0, seg)
        billed[a:z] = seg - offset
        used = int(offset.sum())
        left = credit - used
        expired = left if adjustment[b] else 0
        out.append(NetMeteringBill(carry, earned, used, expired, left - expired))
        carry = left - expired
    return billed, out


@dataclass(frozen=True)
class StorageFlows:
    """Virtual storage flows per interval. [Wh]

    Attributes:
        grid: energy taken from the grid (billed at the usage rates).
        drawn: energy drawn from the storage.
        stored: surplus added to the storage.
        balance: storage balance at the end of each interval (0 before commissioning).
    """

    grid: I64
    drawn: I64
    stored: I64
    balance: I64


def virtual_storage(net: I64, first: int, opening: int) -> StorageFlows:
    """Bank surpluses and draw on them, from interval ``first`` (commissioning) with ``opening`` Wh in store.

    Before ``first`` nothing is stored or drawn. The balance follows b' = max(b - net, 0) each interval,
    computed without a loop: with S = opening + cumsum(-net), b = S - min(0, running minimum of S).
    """
    net = np.asarray(net, dtype=np.int64)
    stored = np.zeros_like(net)
    drawn = np.zeros_like(net)
    balance = np.zeros_like(net)
    if first < net.size:
        x = -net[first:]
        s = opening + np.cumsum(x)  # S after each interval
        low = np.minimum(np.minimum.accumulate(s), 0)
        after = s - low
        before = np.r_[opening, after[:-1]]
        surplus = np.maximum(x, 0)
        stored[first:] = surplus
        drawn[first:] = before + surplus - after
        balance[first:] = after
    grid = np.maximum(net, 0) - drawn
    return StorageFlows(grid, drawn, stored, balance)
