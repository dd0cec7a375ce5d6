"""bill() against a plain per-interval reference on random data (TOU + daily block + TOU demand + export)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.tariffs.bill import Series, bill
from cloud.tariffs.calendar import interval_starts
from cloud.tariffs.model import load_tariff

TARIFF = load_tariff(Path(__file__).parent / "data" / "tariffs" / "tou_block_demand.toml")
PARIS = ZoneInfo("Europe/Paris")
HP_HOURS = range(6, 22)


def reference(starts: list[int], imp: list[int], exp: list[int]) -> dict[tuple[int, str], tuple[Decimal, Decimal]]:
    """(month, label) -> (quantity, amount), written from the tariff file's text, interval by interval."""
    energy: dict[tuple[int, str], int] = {}
    peak: dict[tuple[int, str], int] = {}
    day_total: dict[date, int] = {}
    for t, i, e in zip(starts, imp, exp):
        d = datetime.fromtimestamp(t, timezone.utc).astimezone(PARIS)
        winter = (d.month, d.day) >= (10, 1) or (d.month, d.day) < (4, 1)
        weekend = d.weekday() >= 5
        # HP on weekdays 06-22; on weekends all day in winter, never in summer
        hp = (d.hour in HP_HOURS and not weekend) or (weekend and winter)
        peak_period = d.hour in HP_HOURS and not weekend
        billed, credited = max(i - e, 0), max(e - i, 0)
        m = d.month
        before = day_total.get(d.date(), 0)  # tiers count all the charge's energy of the local day, HP and HC
        day_total[d.date()] = before + billed
        if hp:
            t1 = max(0, min(before + billed, 5000) - min(before, 5000))  # tier 1 up to 5 kWh a day
            energy[(m, "usage HP tier 1")] = energy.get((m, "usage HP tier 1"), 0) + t1
            energy[(m, "usage HP tier 2")] = energy.get((m, "usage HP tier 2"), 0) + billed - t1
        else:
            energy[(m, "usage HC")] = energy.get((m, "usage HC"), 0) + billed
        energy[(m, "export")] = energy.get((m, "export"), 0) + credited
        key = (m, "demand peak" if peak_period else "demand offpeak")
        peak[key] = max(peak.get(key, 0), billed * 4)
    prices = {"usage HP tier 1": Decimal("0.30"), "usage HP tier 2": Decimal("0.40"), "usage HC": Decimal("0.20"),
              "export": Decimal("-0.10"), "demand peak": Decimal("8.00"), "demand offpeak": Decimal("2.00")}
    out = {}
    for (m, label), wh in list(energy.items()) + list(peak.items()):
        if wh:
            q = Decimal(wh) / 1000
            out[(m, label)] = (q, (q * prices[label]).quantize(Decimal("0.01"), ROUND_HALF_UP))
    return out


@settings(max_examples=25, deadline=None)
@given(st.dates(date(2026, 1, 1), date(2026, 12, 20)), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_bill_matches_the_reference(start: date, days: int, seed: int) -> None:
    end = start + timedelta(days=days)
    starts = interval_starts(start, end)
    rng = np.random.default_rng(seed)
    imp = rng.integers(0, 700, starts.size) * (rng.random(starts.size) < 0.8)
    exp = rng.integers(0, 900, starts.size) * (rng.random(starts.size) < 0.3)
    bills = bill(TARIFF, Series(starts, imp, exp), start, end)
    got = {(b.start.month, i.label): (i.quantity, i.amount) for b in bills for i in b.items
           if i.category in ("usage", "export", "demand")}
    assert got == reference(starts.tolist(), imp.tolist(), exp.tolist())
