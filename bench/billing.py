"""Billing speed: one site-year of 15-minute data under a TOU + block + demand tariff, against a plain loop.

Run from the repository root: ``python bench/billing.py`` (about 3 s).

What is measured (best of a few repeats, ``time.perf_counter``):

* result: :func:`cloud.tariffs.bill.bill` (numpy) on 35,040 intervals (2026, Europe/Paris; 92 and 100
  quarter-hours on the DST days), monthly bills, tariff: two seasons, HP/HC time of use with a daily-reset
  two-tier block on HP, a TOU demand charge, a flat export credit, a monthly subscription, net billing.
  "warm": the time zone's offset table is cached (as in a service billing many sites); "cold": cache cleared.
* baseline: a straightforward per-interval Python loop over the same data: local time by
  ``datetime.fromtimestamp(t, ZoneInfo)``, dict lookups for the schedule, running block totals, Decimal
  money, the same one-rounding-per-line rule.

Both must give the same line items to the cent on every bill (checked; the script fails otherwise).
Ratio = baseline time / result time (how many times faster). Target: under 20 ms per site-year and at least
100 times faster than the loop.

On a busy machine the numpy time moves by up to ~30 %: about half of it is the first touch of fresh pages for
full-length temporaries (glibc gives large freed blocks back to the system), which is why ``bill`` works in
place where it can. Compare ratios from the same run, and run it more than once.
"""

from __future__ import annotations

import platform
import sys
import time
import tomllib
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from cloud.tariffs import calendar  # noqa: E402
from cloud.tariffs.bill import Series, bill, bill_period_bounds, fixed_share, round_cents  # noqa: E402
from cloud.tariffs.model import BlockReset, ChargeType, Structure, Tariff, tariff_from_dict  # noqa: E402

HOURS = '["HC","HC","HC","HC","HC","HC","HP","HP","HP","HP","HP","HP","HP","HP","HP","HP","HP","HP","HP","HP",' \
        '"HP","HP","HC","HC"]'
TARIFF = f"""
[tariff]
name = "bench TOU + block + demand"
distributor = "bench"
country = "FR"
valid_from = 2026-01-01
billing_frequency = "monthly"
compensation = "net_billing"
prices_include_tax = true
[extra]
tax_percent = 20
[[seasons]]
name = "summer"
start = "04-01"
[[seasons]]
name = "winter"
start = "11-01"
[[charges]]
type = "usage"
structure = "tou"
block_reset = "daily"
[[charges.rates]]
name = "HP"
tiers = [{{price = "0.2700", limit = 6}}, {{price = "0.3300"}}]
[[charges.rates]]
name = "HC"
price = "0.2068"
[charges.schedule.summer]
weekday = {HOURS}
weekend = "HC"
[charges.schedule.winter]
weekday = {HOURS}
weekend = {HOURS}
[[charges]]
type = "demand"
structure = "tou"
rates = [{{name = "HP", price = "3.10"}}, {{name = "HC", price = "1.05"}}]
[charges.schedule.summer]
weekday = {HOURS}
weekend = "HC"
[charges.schedule.winter]
weekday = {HOURS}
weekend = {HOURS}
[[charges]]
type = "export"
structure = "flat"
price = "0.04"
[[fixed]]
name = "subscription"
amount = "15.65"
per = "month"
"""
START, END = date(2026, 1, 1), date(2027, 1, 1)
REPEATS = 50


def site_year() -> Series:
    """A reproducible household with 6 kWp of solar: import and export per quarter-hour. [Wh]"""
    starts = calendar.interval_starts(START, END)
    rng = np.random.default_rng(6)
    hour = (starts % 86_400) / 3600
    doy = (starts - starts[0]) / 86_400
    load = 120 + 180 * np.exp(-((hour - 18.5) ** 2) / 4) + rng.gamma(2.0, 40, starts.size)
    sun = np.clip(np.sin((hour - 5.5) / 13 * np.pi), 0, None) * (0.55 + 0.45 * np.sin((doy - 80) / 365 * 2 * np.pi))
    pv = 1500 * sun * rng.uniform(0.4, 1.0, starts.size)
    net = np.rint(load - pv).astype(np.int64)
    return Series(starts, np.maximum(net, 0), np.maximum(-net, 0))


def loop_bill(tariff: Tariff, s: Series) -> list[list[tuple[str, Decimal, Decimal]]]:
    """The per-interval reference: (label, quantity, amount) per bill. Handles flat/block/TOU energy charges,
    flat/TOU demand and fixed monthly charges: what the bench tariff uses."""
    tz = ZoneInfo(tariff.timezone)
    bounds = bill_period_bounds(START, END, tariff.billing_frequency.months)
    season_starts = [(se.start_month, se.start_day, se.name) for se in tariff.seasons]
    energy: dict[tuple[int, str, str, int], int] = {}
    peak: dict[tuple[int, str, str], int] = {}
    running: dict[str, int] = {}
    window: dict[str, Any] = {}
    for t, imp, exp in zip(s.starts.tolist(), s.import_wh.tolist(), s.export_wh.tolist()):
        d = datetime.fromtimestamp(t, timezone.utc).astimezone(tz)
        b = next(i for i, (a, z) in enumerate(bounds) if a <= d.date() < z)
        season = season_starts[-1][2]
        for m, dd, name in season_starts:
            if (d.month, d.day) >= (m, dd):
                season = name
        day_type = "weekend" if d.weekday() >= 5 else "weekday"
        billed, credited = max(imp - exp, 0), max(exp - imp, 0)
        for charge in tariff.charges:
            if charge.structure is Structure.TOU:
                sched = next(x for x in charge.schedule if x.season == season and x.day_type == day_type)
                rate = charge.rates[sched.slots[(d.hour * 60 + d.minute) * len(sched.slots) // 1440]]
            else:
                rate = charge.rates[0]
            if charge.type is ChargeType.DEMAND:
                key3 = (b, charge.name, rate.name)
                peak[key3] = max(peak.get(key3, 0), billed * 4)
                continue
            e = billed if charge.type is ChargeType.USAGE else credited
            w = d.date() if charge.block_reset is BlockReset.DAILY else b
            if window.get(charge.name) != w:
                window[charge.name], running[charge.name] = w, 0
            before = running[charge.name]
            running[charge.name] = before + e
            lo = 0
            for k, tier in enumerate(rate.tiers):
                hi = tier.limit_milli if tier.limit_milli is not None else 1 << 62
                part = max(0, min(before + e, hi) - max(before, lo))
                key = (b, charge.name, rate.name, k)
                energy[key] = energy.get(key, 0) + part
                lo = hi
    out: list[list[tuple[str, Decimal, Decimal]]] = []
    for b, (a, z) in enumerate(bounds):
        items: list[tuple[str, Decimal, Decimal]] = []
        for kind in (ChargeType.USAGE, ChargeType.DEMAND, ChargeType.EXPORT):
            for charge in tariff.charges_of(kind):
                sign = -1 if kind is ChargeType.EXPORT else 1
                for rate in charge.rates:
                    for k, tier in enumerate(rate.tiers):
                        if kind is ChargeType.DEMAND:
                            p = peak.get((b, charge.name, rate.name), 0)
                            lo = 0 if k == 0 else rate.tiers[k - 1].limit_milli or 0
                            hi = tier.limit_milli if tier.limit_milli is not None else 1 << 62
                            q = max(0, min(p, hi) - lo)
                        else:
                            q = energy.get((b, charge.name, rate.name, k), 0)
                        if q == 0:
                            continue
                        label = charge.name + (f" {rate.name}" if charge.structure is Structure.TOU else "")
                        label += f" tier {k + 1}" if len(rate.tiers) > 1 else ""
                        amount = round_cents(Decimal(q) / 1000 * tier.price * sign)
                        items.append((label, Decimal(q) / 1000, amount))
        for f in tariff.fixed:
            items.append((f.name, Decimal(0), round_cents(Fraction(f.amount) * fixed_share(a, z, f.per))))
        out.append(items)
    return out


def best(fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(repeats):
        if setup:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    tariff = tariff_from_dict(tomllib.loads(TARIFF), "<bench tariff>")
    s = site_year()
    assert s.starts.size == 35_040
    bills = bill(tariff, s, START, END)
    reference = loop_bill(tariff, s)
    for b, ref in zip(bills, reference):
        got = [(i.label, i.quantity if i.category != "fixed" else Decimal(0), i.amount) for i in b.items]
        if got != ref:
            print(f"MISMATCH in the bill from {b.start}:\n  numpy {got}\n  loop  {ref}", file=sys.stderr)
            return 1
    warm = best(lambda: bill(tariff, s, START, END), REPEATS)
    cold = best(lambda: bill(tariff, s, START, END), 20, setup=calendar.offset_changes.cache_clear)
    loop = best(lambda: loop_bill(tariff, s), 3)
    total = sum((b.total for b in bills), Decimal(0))
    print(f"billing bench: {s.starts.size} intervals, {len(bills)} monthly bills, {sum(len(b.items) for b in bills)} "
          f"line items, year total {total} EUR (numpy and loop agree to the cent)")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{'row':<34}{'result ms':>11}{'baseline ms':>13}{'ratio':>9}")
    for name, t in (("bill() warm tz cache vs loop", warm), ("bill() cold tz cache vs loop", cold)):
        print(f"{name:<34}{t * 1e3:>11.2f}{loop * 1e3:>13.1f}{loop / t:>8.0f}x")
    print("target: result under 20 ms per site-year, ratio at least 100x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
