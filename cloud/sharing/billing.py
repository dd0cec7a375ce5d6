"""Billing of the sharing (section 3 of the guide): one statement per participant and role.

Producers are paid for the sum of their "Production allouée autoconsommée par le partage",
consumers billed for the sum of their "Prélèvement couvert par le partage" (all iterations), at
the prices of the community's agreement. Pure functions; money is ``decimal.Decimal`` [EUR].

Prices apply per role, or to one participant (which wins over its role's price), from a first day
to a first day no longer valid, in local time (Europe/Paris): a period is priced by the local date
of its start. A statement has one line per price applied; the single rounding point is each
line's amount, ``kWh * price`` rounded to the cent, half up; the statement total is the sum of its
lines.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from cloud.sharing.errors import PriceError
from quartier.series import PARIS

CENT = Decimal("0.01")


class Role(str, enum.Enum):
    """A participant's side in a statement."""

    PRODUCER = "producer"
    CONSUMER = "consumer"


@dataclass(frozen=True)
class Price:
    """One price of the agreement.

    Attributes:
        role: who it applies to.
        eur_per_kwh: the price. [EUR/kWh]
        ean: one participant's EAN (or PDL/PRM), or None for every participant of ``role``.
        valid_from: first local day it applies, None for always before. [date, Europe/Paris]
        valid_to: first local day it no longer applies, None for open-ended. [date, Europe/Paris]
    """

    role: Role
    eur_per_kwh: Decimal
    ean: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None

    def applies(self, role: Role, ean: str, day: date) -> bool:
        return (self.role is role and (self.ean is None or self.ean == ean)
                and (self.valid_from is None or self.valid_from <= day)
                and (self.valid_to is None or day < self.valid_to))


@dataclass(frozen=True)
class StatementLine:
    """Energy billed at one price.

    Attributes:
        first_day, last_day: local dates of the first and last priced period with this price.
        energy_wh: energy. [Wh]
        eur_per_kwh: price. [EUR/kWh]
        amount_eur: ``kWh * price`` rounded to the cent, half up. [EUR]
    """

    first_day: date
    last_day: date
    energy_wh: int
    eur_per_kwh: Decimal
    amount_eur: Decimal

    @property
    def energy_kwh(self) -> Decimal:
        """Energy, exact. [kWh]"""
        return Decimal(self.energy_wh) / 1000


@dataclass(frozen=True)
class Statement:
    """What one participant receives (producer) or pays (consumer) for the sharing."""

    ean: str
    role: Role
    lines: tuple[StatementLine, ...]

    @property
    def energy_wh(self) -> int:
        return sum(line.energy_wh for line in self.lines)

    @property
    def energy_kwh(self) -> Decimal:
        return Decimal(self.energy_wh) / 1000

    @property
    def amount_eur(self) -> Decimal:
        """Sum of the lines' rounded amounts. [EUR]"""
        return sum((line.amount_eur for line in self.lines), Decimal("0.00"))


def amount(energy_wh: int, eur_per_kwh: Decimal) -> Decimal:
    """``energy * price`` rounded to the cent, half up. [Wh], [EUR/kWh] -> [EUR]"""
    return (Decimal(int(energy_wh)) * eur_per_kwh / 1000).quantize(CENT, rounding=ROUND_HALF_UP)


def local_days(period_starts: Sequence[int] | npt.NDArray[np.int64], tz: ZoneInfo = PARIS) -> list[date]:
    """Local date of each period start. [s since epoch, UTC] -> [date]"""
    return [datetime.fromtimestamp(int(t), tz=timezone.utc).astimezone(tz).date() for t in period_starts]


def _price_for(prices: Sequence[Price], role: Role, ean: str, day: date) -> int | None:
    for specific in (True, False):
        found = [i for i, p in enumerate(prices) if (p.ean is not None) == specific and p.applies(role, ean, day)]
        if len(found) > 1:
            raise PriceError(f"{role.value} {ean}: {len(found)} prices of the agreement apply on {day} "
                             f"({', '.join(str(prices[i].eur_per_kwh) for i in found)}); validity dates overlap")
        if found:
            return found[0]
    return None


def statements(
    period_starts: Sequence[int] | npt.NDArray[np.int64],
    eans: Sequence[str],
    role: Role,
    energy_wh: npt.ArrayLike,
    prices: Sequence[Price],
    tz: ZoneInfo = PARIS,
) -> list[Statement]:
    """One statement per EAN, in ``eans`` order.

    Args:
        period_starts: (periods,) period starts. [s since epoch, UTC]
        eans: the participants, one per column of ``energy_wh``.
        role: producer (``energy_wh`` = self-consumed allocated production) or consumer
            (``energy_wh`` = consumption covered by the sharing, summed over iterations).
        energy_wh: (periods, participants) integers. [Wh]
        prices: the agreement's prices.

    A participant with no energy at all gets a statement without lines (amount 0). Raises
    PriceError when a period with energy has no price, or two prices of the same kind overlap.
    """
    e = np.asarray(energy_wh, dtype=np.int64)
    days = local_days(period_starts, tz)
    uniq = sorted(set(days))
    position = {d: i for i, d in enumerate(uniq)}
    day_index = np.array([position[d] for d in days], np.int64).reshape(-1)
    out: list[Statement] = []
    for j, ean in enumerate(eans):
        col = e[:, j]
        energy_per_day = np.zeros(len(uniq), np.int64)
        np.add.at(energy_per_day, day_index, col)
        lines: dict[int, list[Any]] = {}
        for di, day in enumerate(uniq):
            if energy_per_day[di] == 0:
                continue
            pi = _price_for(prices, role, ean, day)
            if pi is None:
                raise PriceError(f"{role.value} {ean}: no price of the agreement applies on {day} "
                                 f"({energy_per_day[di]} Wh to bill that day)")
            acc = lines.setdefault(pi, [day, day, 0])
            acc[1] = day
            acc[2] += int(energy_per_day[di])
        out.append(Statement(ean, role, tuple(
            StatementLine(first, last, wh, prices[pi].eur_per_kwh, amount(wh, prices[pi].eur_per_kwh))
            for pi, (first, last, wh) in sorted(lines.items(), key=lambda kv: kv[1][0])
        )))
    return out


def format_statement(s: Statement) -> str:
    """Plain-text statement: one line per price, then the total (kWh exact, EUR to the cent)."""
    verb = "paid to producer" if s.role is Role.PRODUCER else "billed to consumer"
    rows = [f"{s.ean} ({verb})"]
    for line in s.lines:
        rows.append(f"  {line.first_day} .. {line.last_day}: {line.energy_kwh} kWh x {line.eur_per_kwh} EUR/kWh"
                    f" = {line.amount_eur} EUR")
    rows.append(f"  total: {s.energy_kwh} kWh, {s.amount_eur} EUR")
    return "\n".join(rows)
