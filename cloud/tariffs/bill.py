"""Bills from 15-minute import/export series under a tariff (pure: numpy arrays and dataclasses in and out).

Energy is summed exactly in integer watt-hours per (bill, charge, rate, tier); money is computed exactly with
fractions and **rounded once, per line item, to the cent, half away from zero** (Decimal ``ROUND_HALF_UP``):
that is the rule of a spreadsheet's ROUND and of a pocket calculator, so a customer or installer checking a
line by hand gets the same cent, and a credit rounds like the matching charge. Discounts, the minimum-charge
top-up and the tax share are computed from the already rounded line items, then rounded the same way.

Definitions (docs/tariffs.md has the details):

* usage energy: net billing nets import and export within each 15-minute interval and bills the positive part
  (the negative part is credited at the export rate); gross metering bills all consumption
  (import + production - export) and credits all production.
* block tiers count the charge's energy from zero at each reset (local day, or bill), across TOU periods.
* demand: the highest 15-minute average power of billed import in the bill ([kW] = Wh * 4 / 1000); for a TOU
  demand charge, the highest within each TOU period. Demand tiers split that peak.
* fixed charges per day: times the bill's days; per month / quarter / year: pro rata of the days of each
  calendar month / quarter / year the bill covers (a full month costs exactly one month's amount).
* minimum daily charge: if the bill total is below minimum * days, a top-up line brings it to that minimum.
* tax share: prices are tax-included, so the tax inside the total is total * rate / (100 + rate); it is shown,
  not added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from cloud.tariffs.calendar import (
    DAY_S,
    INTERVAL_S,
    check_starts,
    date_of,
    day_attributes,
    day_number,
    holiday_mask,
    interval_starts,
    local_midnight_utc,
    local_seconds,
    season_index,
)
from cloud.tariffs.errors import BillingError
from cloud.tariffs.mechanisms import Account, StorageFlows, net_metering, virtual_storage
from cloud.tariffs.model import (
    BlockReset,
    Charge,
    ChargeType,
    Compensation,
    DayCalendar,
    FixedPer,
    Structure,
    Tariff,
    format_decimal,
)
from quartier.series import iso_utc

I64 = npt.NDArray[np.int64]
CENT = Decimal("0.01")
_NO_LIMIT = int(np.iinfo(np.int64).max)


def round_cents(x: Fraction | Decimal | int) -> Decimal:
    """The one rounding point: exact amount [EUR] to cents, half away from zero (ROUND_HALF_UP).

    Decimals are exact here (an energy in Wh times a price has far fewer than the context's 28 digits), so
    both branches round the exact value once.
    """
    if isinstance(x, Fraction):
        cents = (abs(x) * 100 + Fraction(1, 2)).__floor__()
        return (Decimal(cents if x >= 0 else -cents) * CENT).quantize(CENT)
    r = Decimal(x).quantize(CENT, ROUND_HALF_UP)
    return r if r else r.copy_abs()  # no "-0.00" on a bill


def round_ratio(num: int, den: int) -> Decimal:
    """``num / den`` [EUR] rounded once to the cent, half away from zero, in integer arithmetic (den > 0)."""
    cents = (200 * abs(num) + den) // (2 * den)
    return Decimal(cents if num >= 0 else -cents).scaleb(-2).quantize(CENT)


def _money(milli: int, price: Decimal) -> Decimal:
    """``milli`` thousandths of a unit (Wh of kWh, W of kW) at ``price`` [EUR/unit], rounded once. [EUR]"""
    return round_cents(Decimal(milli).scaleb(-3) * price)


def _kwh(wh: int) -> Decimal:
    return Decimal(wh) / 1000


@dataclass(frozen=True)
class LineItem:
    """One line of a bill.

    Attributes:
        category: usage, controlled_load, demand, export, fixed, discount or minimum.
        label: what a customer reads, e.g. ``usage HP tier 2``.
        quantity: energy [kWh], peak power [kW], days, or share of months/quarters/years, or the base [EUR] of
            a % discount.
        unit: ``kWh``, ``kW``, ``day``, ``month``, ``quarter``, ``year``, ``EUR`` or ``%``.
        unit_price: tax-included price per unit [EUR/unit] (for a discount: the percentage, negative).
        amount: rounded to the cent; negative for credits and discounts. [EUR]
    """

    category: str
    label: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Bill:
    """A bill over local dates ``start`` (included) to ``end`` (excluded).

    Attributes:
        days: local days billed.
        items: line items in bill order.
        total: sum of the items, tax-included. [EUR]
        tax: the tax share included in ``total`` (not added). [EUR]
        import_kwh, export_kwh: measured energy of the bill. [kWh]
        statement: kWh accounts of net metering credits or virtual storage, as (label, kWh) lines.
        bought_kwh: energy billed at the usage rates (after netting, credits or storage). [kWh]
        credited_kwh: energy credited at the export rate (net billing, gross metering), or banked in kWh
            (net metering credits earned, surplus stored in the virtual storage). [kWh]
    """

    start: date
    end: date
    days: int
    items: tuple[LineItem, ...]
    total: Decimal
    tax: Decimal
    import_kwh: Decimal
    export_kwh: Decimal
    statement: tuple[tuple[str, Decimal], ...] = ()
    bought_kwh: Decimal = Decimal(0)
    credited_kwh: Decimal = Decimal(0)

    def item(self, label: str) -> LineItem:
        """The line item with this label (KeyError listing the labels if none)."""
        for i in self.items:
            if i.label == label:
                return i
        raise KeyError(f"no line item {label!r}; the bill has {[i.label for i in self.items]}")


@dataclass(frozen=True)
class Series:
    """Aligned 15-minute series of one site.

    Attributes:
        starts: interval starts, UTC, multiples of 900, strictly increasing. [s]
        import_wh: energy taken from the grid per interval. [Wh]
        export_wh: energy given to the grid per interval. [Wh]
        production_wh: solar production per interval (needed by gross metering). [Wh]
        controlled_wh: separately metered controlled load per interval (needed by controlled-load charges). [Wh]
    """

    starts: I64
    import_wh: I64
    export_wh: I64
    production_wh: I64 | None = None
    controlled_wh: I64 | None = None


def _check_series(s: Series, expected: I64) -> None:
    if s.starts.shape != expected.shape or not np.array_equal(s.starts, expected):
        check_starts(s.starts)
        have = set(s.starts.tolist())
        missing = [t for t in expected.tolist() if t not in have]
        if missing:
            raise BillingError(f"no data for {len(missing)} interval(s) of the billed range, first at "
                               f"{iso_utc(missing[0])}; fill or estimate them before billing")
        extra = sorted(have - set(expected.tolist()))
        raise BillingError(f"interval at {iso_utc(extra[0])} is outside the billed range")
    for name in ("import_wh", "export_wh", "production_wh", "controlled_wh"):
        a = getattr(s, name)
        if a is None:
            continue
        if a.shape != s.starts.shape:
            raise BillingError(f"{name} has {a.size} values for {s.starts.size} intervals")
        if a.size and a.min() < 0:
            neg = np.flatnonzero(a < 0)
            raise BillingError(f"{name} is negative ({int(a[neg[0]])} Wh) at {iso_utc(int(s.starts[neg[0]]))}")


@lru_cache(maxsize=1024)
def _rate_table(charge: Charge, seasons: tuple[str, ...], day_types: tuple[str, ...]) -> npt.NDArray[np.int16]:
    """Rate index by slot (see :func:`_rate_index`), flattened: season x day type x 96 quarter-hours."""
    table = np.zeros((len(seasons), len(day_types), 96), dtype=np.int16)  # small: the gather is per interval
    for ds in charge.schedule:
        table[seasons.index(ds.season), day_types.index(ds.day_type)] = np.repeat(ds.slots, 96 // len(ds.slots))
    return table.ravel()


def _rate_index(charge: Charge, tariff: Tariff, slot: npt.NDArray[np.int32]) -> npt.NDArray[np.int16] | None:
    """TOU rate of each interval; None for flat and block charges (one rate).

    ``slot`` = (season * number of day types + day type) * 96 + local quarter-hour of the day.
    """
    if charge.structure is not Structure.TOU:
        return None
    return _rate_table(charge, tuple(s.name for s in tariff.seasons), tariff.day_types)[slot]


def _calendar_types(cal: DayCalendar, local: I64) -> I64:
    """Day type of each interval from a day calendar (a day begins at ``cal.day_start_hour``, local time)."""
    tday = (local - cal.day_start_hour * 3600) // DAY_S
    starts = np.flatnonzero(np.r_[True, tday[1:] != tday[:-1]])
    wanted = tday[starts]
    days = np.asarray(cal.days, dtype=np.int64)
    idx = np.minimum(np.searchsorted(days, wanted), max(days.size - 1, 0))
    bad = np.flatnonzero(days[idx] != wanted) if days.size else np.arange(wanted.size)
    if bad.size:
        raise BillingError(f"the day calendar {cal.path} has no day type for {date_of(int(wanted[bad[0]]))}; "
                           "add it (a Tempo colour is published the day before)")
    return np.repeat(np.asarray(cal.types, dtype=np.int64)[idx], np.diff(np.r_[starts, tday.size]))


def _window_cumsum(e: I64, first: I64) -> tuple[I64, I64]:
    """Cumulated energy before and after each interval, from zero at each window start (indexes ``first``,
    ascending, ``first[0] == 0``). [Wh]"""
    after = np.cumsum(e)
    base = after[first] - e[first]
    before = np.repeat(base, np.diff(np.r_[first, e.size]))
    after -= before
    np.subtract(after, e, out=before)
    return before, after


def _tier_bounds(limits: Sequence[int | None]) -> list[tuple[int, int]]:
    lo, out = 0, []
    for lim in limits:
        hi = _NO_LIMIT if lim is None else lim
        out.append((lo, hi))
        lo = hi
    return out


def _energy_items(charge: Charge, e: I64, rate: npt.NDArray[np.int16] | None, bill_starts: I64, day_starts: I64,
                  sign: int) -> list[list[LineItem]]:
    """Line items of an energy charge (usage, export, controlled load), per bill.

    ``bill_starts`` and ``day_starts``: index of the first interval of each bill and of each local day.
    """
    n_bills = bill_starts.size
    items: list[list[LineItem]] = [[] for _ in range(n_bills)]
    window = day_starts if charge.block_reset is BlockReset.DAILY else bill_starts
    before, after = _window_cumsum(e, window) if charge.tiered else (e, e)
    buf_a, buf_b = np.empty_like(e), np.empty_like(e)  # reused: fewer fresh pages than temporaries
    for r, rt in enumerate(charge.rates):
        mask = None if rate is None else rate == r
        bounds = _tier_bounds([t.limit_milli for t in rt.tiers])
        for k, (tier, (lo, hi)) in enumerate(zip(rt.tiers, bounds)):
            if len(rt.tiers) == 1:
                part = e
            elif k == 0:  # energies are >= 0: the first tier is min(after, hi) - min(before, hi)
                part = np.minimum(after, hi, out=buf_a)
                part -= np.minimum(before, hi, out=buf_b)
            elif k == len(rt.tiers) - 1:  # the last tier has no upper limit: max(after, lo) - max(before, lo)
                part = np.maximum(after, lo, out=buf_a)
                part -= np.maximum(before, lo, out=buf_b)
            else:
                part = np.clip(after, lo, hi, out=buf_a)
                part -= np.clip(before, lo, hi, out=buf_b)
            if mask is not None:
                part = np.multiply(part, mask, out=buf_a)
            wh_per_bill = np.add.reduceat(part, bill_starts)
            label = charge.name
            if charge.structure is Structure.TOU:
                label += f" {rt.name}"
            if len(rt.tiers) > 1:
                label += f" tier {k + 1}"
            price = -tier.price if sign < 0 and tier.price else tier.price
            for b in np.flatnonzero(wh_per_bill).tolist():
                wh = int(wh_per_bill[b])
                items[b].append(LineItem(charge.type.value, label, _kwh(wh), "kWh", price, _money(wh, price)))
    return items


def _demand_items(charge: Charge, e: I64, rate: npt.NDArray[np.int16] | None,
                  bill_starts: I64) -> list[list[LineItem]]:
    """Line items of a demand charge: peak 15-minute average power [W] = Wh * 4, per bill (and TOU rate)."""
    n_bills = bill_starts.size
    items: list[list[LineItem]] = [[] for _ in range(n_bills)]
    n_rates = len(charge.rates)
    buf = np.empty_like(e) if rate is not None else e
    # peak energy of a quarter-hour [Wh] x 4 = peak average power [W]
    peaks = [np.maximum.reduceat(e if rate is None else np.multiply(e, rate == r, out=buf), bill_starts)
             * (3600 // INTERVAL_S) for r in range(n_rates)]
    for b in range(n_bills):
        for r, rt in enumerate(charge.rates):
            p = int(peaks[r][b])
            if p == 0:
                continue
            for k, (tier, (lo, hi)) in enumerate(zip(rt.tiers, _tier_bounds([t.limit_milli for t in rt.tiers]))):
                w = min(max(p, lo), hi) - lo
                if w <= 0:
                    continue
                label = charge.name + (f" {rt.name}" if charge.structure is Structure.TOU else "")
                label += f" tier {k + 1}" if len(rt.tiers) > 1 else ""
                items[b].append(LineItem("demand", label, _kwh(w), "kW", tier.price, _money(w, tier.price)))
    return items


def _billing_month(d: date, anchor: int) -> int:
    """Months since year 0 (year * 12 + month - 1) of the month running from day ``anchor`` that holds ``d``."""
    m = d.year * 12 + d.month - 1
    return m if d.day >= anchor else m - 1


def _month_start(m: int, anchor: int) -> date:
    return date(m // 12, m % 12 + 1, anchor)


def _next_period_start(d: date, per: FixedPer, anchor: int = 1) -> date:
    """First day of the month / quarter (running from day ``anchor``) or calendar year after the one holding
    ``d``."""
    if per is FixedPer.YEAR:
        return date(d.year + 1, 1, 1)
    step = 1 if per is FixedPer.MONTH else 3
    return _month_start(_billing_month(d, anchor) // step * step + step, anchor)


def _period_start(d: date, per: FixedPer, anchor: int = 1) -> date:
    if per is FixedPer.YEAR:
        return date(d.year, 1, 1)
    step = 1 if per is FixedPer.MONTH else 3
    return _month_start(_billing_month(d, anchor) // step * step, anchor)


def fixed_share_ratio(start: date, end: date, per: FixedPer, anchor: int = 1) -> tuple[int, int]:
    """:func:`fixed_share` as (numerator, denominator), not reduced."""
    if per is FixedPer.DAY:
        return (end - start).days, 1
    num, den, a = 0, 1, start
    while a < end:
        nxt = _next_period_start(a, per, anchor)
        c, d = (min(nxt, end) - a).days, (nxt - _period_start(a, per, anchor)).days
        num, den = num * d + c * den, den * d
        a = nxt
    return num, den


def fixed_share(start: date, end: date, per: FixedPer, anchor: int = 1) -> Fraction:
    """How many ``per`` units the local dates [start, end) cover: days for DAY, else the sum over each month /
    quarter / year of (its days covered / its days). Months and quarters run from day ``anchor`` (1 = calendar
    months; 15 = the 15th to the 14th); years are calendar years."""
    return Fraction(*fixed_share_ratio(start, end, per, anchor))


def fixed_amount(amount: Decimal, start: date, end: date, per: FixedPer, anchor: int = 1,
                 since: date | None = None) -> Decimal:
    """A bill's part of a fixed charge of ``amount`` per ``per`` over local dates [start, end). [EUR]

    Rounded once per period, not once per bill: within each day / month / quarter / calendar year the bill
    covers, the amount accrued since that period began (or since ``since``, the first billed day, if later) is
    rounded to the cent at the bill's two ends and the bill gets the difference. So the bills of one whole period
    add up to ``amount`` to the cent (twelve monthly bills of a yearly subscription make exactly the year), and
    each bill is within a cent of its exact prorated share. A lone bill (``since`` its own start) is its share
    rounded once.
    """
    an, ad = amount.as_integer_ratio()

    def accrued(first: date, to: date) -> Decimal:
        num, den = fixed_share_ratio(first, to, per, anchor)
        return round_ratio(an * num, ad * den)

    if per is FixedPer.DAY:
        return accrued(start, end)
    since = start if since is None else since
    total, a = Decimal(0), start
    while a < end:
        first, b = max(_period_start(a, per, anchor), since), min(_next_period_start(a, per, anchor), end)
        total += accrued(first, b) - accrued(first, a)
        a = b
    return total


def _quantity(num: int, den: int) -> Decimal:
    """A share of months etc. for display, to 4 decimals (the amount uses the exact ratio)."""
    return round_ratio(num * 100, den).scaleb(-2).quantize(Decimal("0.0001"))


def _percent_line(label: str, base: Decimal, percent: Decimal) -> LineItem | None:
    if percent == 0 or base == 0:
        return None
    return LineItem("discount", label, base, "EUR", -percent, round_cents(-base * percent / 100))


def bill_period_bounds(start: date, end: date, months: int, anchor: int = 1) -> list[tuple[date, date]]:
    """Bills covering local dates [start, end): months running from day ``anchor`` (1-28; 1 = calendar months,
    15 = the 15th to the 14th) grouped by ``months`` (1, 2 or 3) from the one starting in January, the first
    and last bills cut to the range (a partial first period)."""
    out: list[tuple[date, date]] = []
    a = start
    while a < end:
        nxt = _month_start(_billing_month(a, anchor) // months * months + months, anchor)  # next bill's start
        b = min(nxt, end)
        out.append((a, b))
        a = b
    return out


def _kwh_line(label: str, wh: int) -> tuple[str, Decimal]:
    return label, _kwh(wh)


def _adjustment_bills(bounds: list[tuple[date, date]], month: int) -> list[bool]:
    """Per bill: does it contain the last day of ``month`` (the net metering adjustment period)?"""
    out = []
    for a, z in bounds:
        ends = [date(y + (month == 12), month % 12 + 1, 1) - timedelta(days=1) for y in range(a.year, z.year + 1)]
        out.append(any(a <= d < z for d in ends))
    return out


@dataclass(frozen=True)
class StorageStatement:
    """Virtual storage account over local dates [start, end), as the customer sees it. [kWh]

    Attributes:
        opening: balance at the start (0 when the storage starts inside the period).
        precharge: pre-charge added at commissioning (only in the period holding the commissioning date).
        stored: surplus banked. drawn: consumption taken from the storage.
        closing: balance at the end = opening + precharge + stored - drawn.
        grid: energy billed from the grid at the usage rates, including the days before commissioning.
    """

    start: date
    end: date
    opening: Decimal
    precharge: Decimal
    stored: Decimal
    drawn: Decimal
    closing: Decimal
    grid: Decimal = Decimal(0)

    def lines(self) -> list[tuple[str, Decimal]]:
        return [("storage opening balance", self.opening), ("storage pre-charge", self.precharge),
                ("stored", self.stored), ("drawn", self.drawn), ("storage closing balance", self.closing),
                ("billed from the grid", self.grid)]


def _storage_flows(series: Series, start: date, account: Account, tz: str) -> StorageFlows:
    if account.commissioning is None:
        raise BillingError("virtual storage needs the site's commissioning date (date de mise en service), "
                           "when the storage starts")
    first = int(np.searchsorted(series.starts, local_midnight_utc(account.commissioning, tz)))
    if account.commissioning < start:  # the pre-charge is history: it is in the opening balance
        opening = account.opening_wh
    elif account.opening_kwh:
        raise BillingError(f"an opening balance is for a storage commissioned before the billed range; "
                           f"this one starts on {account.commissioning}, with its pre-charge")
    else:
        opening = account.precharge_kwh * 1000
    net = np.asarray(series.import_wh, dtype=np.int64) - np.asarray(series.export_wh, dtype=np.int64)
    return virtual_storage(net, first, opening)


def _storage_rows(flows: StorageFlows, bounds: list[tuple[date, date]], first_index: I64, start: date,
                  account: Account) -> list[StorageStatement]:
    assert account.commissioning is not None
    drawn = np.add.reduceat(flows.drawn, first_index)
    stored = np.add.reduceat(flows.stored, first_index)
    grid = np.add.reduceat(flows.grid, first_index)
    closing = flows.balance[np.r_[first_index[1:], flows.balance.size] - 1]
    rows = []
    for b, (a, z) in enumerate(bounds):
        pre = account.precharge_kwh * 1000 if a <= account.commissioning < z else 0
        opening = int(closing[b - 1]) if b else (account.opening_wh if account.commissioning < start else 0)
        rows.append(StorageStatement(a, z, _kwh(opening), _kwh(pre), _kwh(int(stored[b])), _kwh(int(drawn[b])),
                                     _kwh(int(closing[b])), _kwh(int(grid[b]))))
    return rows


def storage_statement(tariff: Tariff, series: Series, start: date, end: date,
                      account: Account) -> list[StorageStatement]:
    """Monthly virtual storage statement over local dates [start, end): months from the tariff's billing anchor
    day (the 1st: calendar months), the first and last cut to the range; opening balance, pre-charge, stored,
    drawn, closing balance [kWh]. Same rules as :func:`bill`, whatever the tariff's billing frequency."""
    if end <= start:
        raise BillingError(f"the range is empty: end {end} is not after start {start}")
    account.check()
    _check_series(series, interval_starts(start, end, tariff.timezone))
    flows = _storage_flows(series, start, account, tariff.timezone)
    months = bill_period_bounds(start, end, 1, tariff.billing_anchor_day)
    first = np.searchsorted(series.starts, [local_midnight_utc(a, tariff.timezone) for a, _ in months])
    return _storage_rows(flows, months, np.asarray(first, dtype=np.int64), start, account)


@dataclass(frozen=True)
class _Energies:
    """What a compensation mechanism leaves to the charges, per interval [Wh], and its per-bill extras."""

    billed: I64  # energy billed at the usage rates
    credited: I64  # energy credited at the export rate
    demand: I64  # energy whose peak makes the demand charges
    banked: I64  # energy credited at the export rate, or banked as kWh credits / stored
    statements: list[list[tuple[str, Decimal]]]
    extra: list[list[LineItem]]


def _mechanism(tariff: Tariff, series: Series, imp: I64, exp: I64, start: date, bounds: list[tuple[date, date]],
               bill_starts: I64, account: Account) -> _Energies:
    """Apply the tariff's compensation mechanism (docs/tariffs.md, "How a bill is computed")."""
    n_bills = len(bounds)
    statements: list[list[tuple[str, Decimal]]] = [[] for _ in range(n_bills)]
    extra: list[list[LineItem]] = [[] for _ in range(n_bills)]
    mechanism = tariff.compensation
    if mechanism is Compensation.NET_BILLING:
        net = imp - exp
        billed = np.maximum(net, 0)
        credited = np.subtract(billed, net, out=net)  # max(-net, 0)
        banked = credited
    elif mechanism is Compensation.GROSS_METERING:
        if series.production_wh is None:
            raise BillingError("gross metering (buy all, sell all) needs the solar production series "
                               "(a production meter): all consumption is bought and all production sold")
        prod = np.asarray(series.production_wh, dtype=np.int64)
        billed = imp + prod - exp
        neg = np.flatnonzero(billed < 0)
        if neg.size:
            raise BillingError(f"export exceeds production + import at {iso_utc(int(series.starts[neg[0]]))}: "
                               "check the production meter")
        credited = banked = prod
    elif mechanism is Compensation.NET_METERING:
        nm = tariff.net_metering
        assert nm is not None
        billed, credits = net_metering(imp - exp, bill_starts, _adjustment_bills(bounds, nm.adjustment_month),
                                       account.opening_wh)
        credited = np.zeros_like(imp)
        banked = np.maximum(exp - imp, 0)
        for b, c in enumerate(credits):
            statements[b] += [_kwh_line("credits carried in", c.carried_in), _kwh_line("credits earned", c.earned),
                              _kwh_line("credits used", c.used), _kwh_line("credits expired", c.expired),
                              _kwh_line("credits carried out", c.carried_out)]
            if c.expired:
                price = -nm.expired_credit_rate if nm.expired_credit_rate else Decimal(0)  # a credit, or lost
                extra[b].append(LineItem("credit", "expired credits", _kwh(c.expired), "kWh", price,
                                         _money(c.expired, price)))
    else:
        vs = tariff.virtual_storage
        assert vs is not None
        storage = _storage_flows(series, start, account, tariff.timezone)
        billed, credited, banked = storage.grid, np.zeros_like(imp), storage.stored
        for b, row in enumerate(_storage_rows(storage, bounds, bill_starts, start, account)):
            statements[b] += row.lines()
        drawn = np.add.reduceat(storage.drawn, bill_starts)
        assert account.commissioning is not None
        for b, (a, z) in enumerate(bounds):
            pre = account.precharge_kwh * 1000
            if pre and vs.precharge_price is not None and a <= account.commissioning < z:
                extra[b].append(LineItem("storage", "virtual storage pre-charge", _kwh(pre), "kWh",
                                         vs.precharge_price, _money(pre, vs.precharge_price)))
            if drawn[b]:
                extra[b].append(LineItem("storage", "virtual storage withdrawal", _kwh(int(drawn[b])), "kWh",
                                         vs.withdrawal_price, _money(int(drawn[b]), vs.withdrawal_price)))
    # demand is physical: kWh credits and virtual storage do not lower the power drawn from the grid
    demand = np.maximum(imp - exp, 0) if mechanism in (Compensation.NET_METERING,
                                                       Compensation.VIRTUAL_STORAGE) else billed
    return _Energies(billed, credited, demand, banked, statements, extra)


def bill(tariff: Tariff, series: Series, start: date, end: date, account: Account | None = None) -> list[Bill]:
    """Bills of ``series`` under ``tariff`` over local dates [start, end), one per billing period.

    The series must hold every 15-minute interval from local midnight of ``start`` to local midnight of ``end``
    (BillingError names the first missing one). ``account`` holds the site's contract data: needed for
    virtual storage (commissioning date, pre-charge) and for an opening balance of net metering credits.
    """
    if end <= start:
        raise BillingError(f"the billed range is empty: end {end} is not after start {start}")
    account = account or Account()
    account.check()
    tz = tariff.timezone
    expected = interval_starts(start, end, tz)
    _check_series(series, expected)

    # Few full-length temporaries (in-place operations): fresh pages cost as much as the arithmetic here.
    local = local_seconds(series.starts, tz)
    quarter = local // INTERVAL_S  # local quarter-hours since 1970-01-01 00:00 local ...
    day = quarter // 96  # ... local days
    day_starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])  # the series is complete: every day is there
    days = day[day_starts]
    per_day = np.diff(np.r_[day_starts, day.size])
    quarter -= np.repeat(days * 96, per_day)  # ... quarter-hour of the local day (0-95; 02:00-03:00 twice in autumn)
    month_index, month_day, weekend = day_attributes(days)
    if tariff.holidays is not None:
        weekend |= holiday_mask(days, tariff.holidays)
    season = season_index(month_day, [s.start_month * 100 + s.start_day for s in tariff.seasons])
    n_types = len(tariff.day_types)
    if tariff.day_calendar is None:
        slot = np.repeat(((season * n_types + weekend) * 96).astype(np.int32), per_day)
    else:
        slot = np.repeat((season * n_types).astype(np.int32), per_day)
        slot += _calendar_types(tariff.day_calendar, local).astype(np.int32)
        slot *= 96
    np.add(slot, quarter, out=slot, casting="same_kind")
    del quarter
    bounds = bill_period_bounds(start, end, tariff.billing_frequency.months, tariff.billing_anchor_day)
    bill_starts = day_starts[np.searchsorted(days, [day_number(a) for a, _ in bounds])]
    n_bills = len(bounds)

    imp, exp = np.asarray(series.import_wh, dtype=np.int64), np.asarray(series.export_wh, dtype=np.int64)
    flows = _mechanism(tariff, series, imp, exp, start, bounds, bill_starts, account)
    billed, credited, demand_e = flows.billed, flows.credited, flows.demand
    statements, extra = flows.statements, flows.extra
    per_bill: list[list[LineItem]] = [[] for _ in range(n_bills)]
    order = (ChargeType.USAGE, ChargeType.CONTROLLED_LOAD, ChargeType.DEMAND, ChargeType.EXPORT)
    for kind in order:
        for charge in tariff.charges_of(kind):
            rate = _rate_index(charge, tariff, slot)
            if kind is ChargeType.DEMAND:
                new = _demand_items(charge, demand_e, rate, bill_starts)
            else:
                if kind is ChargeType.USAGE:
                    e, sign = billed, 1
                elif kind is ChargeType.EXPORT:
                    e, sign = credited, -1
                else:
                    if series.controlled_wh is None:
                        raise BillingError(f"charge {charge.name!r} bills a controlled load: give its series")
                    e, sign = np.asarray(series.controlled_wh, dtype=np.int64), 1
                new = _energy_items(charge, e, rate, bill_starts, day_starts, sign)
            for b in range(n_bills):
                per_bill[b].extend(new[b])
    for b in range(n_bills):
        per_bill[b].extend(extra[b])

    imp_sum = np.add.reduceat(imp, bill_starts)
    exp_sum = np.add.reduceat(exp, bill_starts)
    bought_sum = np.add.reduceat(billed, bill_starts)
    banked_sum = np.add.reduceat(flows.banked, bill_starts)
    kva = account.subscribed_kva
    fixed = [(f, f.amount_for(kva), f.name if kva is None or not f.by_kva else f"{f.name} ({format_decimal(kva)} kVA)")
             for f in tariff.fixed]
    bills: list[Bill] = []
    for b, (a, z) in enumerate(bounds):
        items = per_bill[b]
        n_days = (z - a).days
        for f, amount, label in fixed:
            num, den = fixed_share_ratio(a, z, f.per, tariff.billing_anchor_day)
            items.append(LineItem("fixed", label, _quantity(num, den), f.per.value, amount,
                                  fixed_amount(amount, a, z, f.per, tariff.billing_anchor_day, since=start)))
        for label, cats, pct in (
            ("usage discount", ("usage",), tariff.usage_discount_percent),
            ("supply discount", ("fixed+",), tariff.supply_discount_percent),
            ("demand discount", ("demand",), tariff.demand_discount_percent),
        ):
            if cats == ("fixed+",):
                base = sum((i.amount for i in items if i.category == "fixed" and i.amount > 0), Decimal(0))
            else:
                base = sum((i.amount for i in items if i.category in cats), Decimal(0))
            line = _percent_line(label, base, pct)
            if line is not None:
                items.append(line)
        subtotal = sum((i.amount for i in items), Decimal(0))
        minimum = round_cents(tariff.minimum_daily_charge * n_days)
        if subtotal < minimum:
            items.append(LineItem("minimum", "minimum charge top-up", Decimal(n_days), "day",
                                  tariff.minimum_daily_charge, minimum - subtotal))
        total = sum((i.amount for i in items), Decimal(0))
        rn, rd = tariff.tax_percent.as_integer_ratio()
        tn, td = total.as_integer_ratio()
        tax = round_ratio(tn * rn, td * (100 * rd + rn))  # total * r / (100 + r)
        bills.append(Bill(a, z, n_days, tuple(items), total, tax, _kwh(int(imp_sum[b])), _kwh(int(exp_sum[b])),
                          tuple(statements[b]), _kwh(int(bought_sum[b])), _kwh(int(banked_sum[b]))))
    return bills
