"""Hand-computed bills: every line item asserted to the cent, with the computation written next to it.

Series are built interval by interval from local (Europe/Paris) wall-clock rules, independently of the
vectorised calendar under test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from cloud.tariffs.bill import Bill, Series, bill, round_cents
from cloud.tariffs.errors import BillingError
from cloud.tariffs.model import Tariff, load_tariff

PARIS = ZoneInfo("Europe/Paris")
DATA = Path(__file__).parent / "data" / "tariffs"
D = Decimal


def head(compensation: str = "net_billing", frequency: str = "monthly", extra: str = "") -> str:
    return f"""
[tariff]
name = "T"
distributor = "D"
country = "FR"
valid_from = 2026-01-01
billing_frequency = "{frequency}"
compensation = "{compensation}"
prices_include_tax = true
{extra}
"""


EXPORT_010 = '\n[[charges]]\ntype = "export"\nstructure = "flat"\nprice = "0.10"\n'


def tariff(tmp_path: Path, text: str) -> Tariff:
    p = tmp_path / "t.toml"
    p.write_text(text)
    return load_tariff(p)


def series(start: date, end: date, rule: Callable[[datetime], tuple[int, int]],
           production: Callable[[datetime], int] | None = None) -> Series:
    """Interval by interval: rule(local start) -> (import Wh, export Wh)."""
    t = int(datetime(start.year, start.month, start.day, tzinfo=PARIS).timestamp())
    stop = int(datetime(end.year, end.month, end.day, tzinfo=PARIS).timestamp())
    starts, imp, exp, prod = [], [], [], []
    while t < stop:
        local = datetime.fromtimestamp(t, timezone.utc).astimezone(PARIS)
        i, e = rule(local)
        starts.append(t)
        imp.append(i)
        exp.append(e)
        prod.append(production(local) if production else 0)
        t += 900
    a = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
    return Series(a(starts), a(imp), a(exp), a(prod) if production else None)


def amounts(b: Bill) -> dict[str, Decimal]:
    return {i.label: i.amount for i in b.items}


def test_round_cents_is_half_up_away_from_zero() -> None:
    assert round_cents(D("0.125")) == D("0.13") and round_cents(D("-0.125")) == D("-0.13")
    assert round_cents(D("0.135")) == D("0.14") and round_cents(D("0.1349999")) == D("0.13")


def test_flat_net_billing_nets_within_each_interval(tmp_path: Path) -> None:
    t = tariff(tmp_path, head() + '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.2516"\n' + EXPORT_010)

    # 2026-01-05 (Monday): 100 Wh import every quarter-hour; 12:00-14:00 (8 quarters) 300 Wh import and 500 Wh export
    def rule(d: datetime) -> tuple[int, int]:
        return (300, 500) if 12 <= d.hour < 14 else (100, 0)

    [b] = bill(t, series(date(2026, 1, 5), date(2026, 1, 6), rule), date(2026, 1, 5), date(2026, 1, 6))
    # netted per interval: 88 quarters x 100 Wh = 8.8 kWh billed; 8 x (500 - 300) = 1.6 kWh credited
    # usage 8.8 x 0.2516 = 2.21408 -> 2.21 ; export -1.6 x 0.10 = -0.16
    assert amounts(b) == {"usage": D("2.21"), "export": D("-0.16")}
    assert b.item("usage").quantity == D("8.8") and b.item("export").quantity == D("1.6")
    assert b.total == D("2.05") and b.tax == D("0")
    assert b.import_kwh == D("11.2") and b.export_kwh == D("4")  # measured, before netting
    assert (b.start, b.end, b.days) == (date(2026, 1, 5), date(2026, 1, 6), 1)


BLOCK = '\n[[charges]]\ntype = "usage"\nstructure = "block"\nblock_reset = "{reset}"\n' \
        'tiers = [{{price = "0.10", limit = 6}}, {{price = "0.20", limit = 8.5}}, {{price = "0.30"}}]\n'


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        # 2 days x 10 kWh (96 x 104.1666 would not be whole: 48 quarters x 200 Wh + 48 x 8.33.. -> use 250/ 166)
        # each day: 40 quarters x 250 Wh (00:00-10:00) = 10 kWh, then 0.
        # daily: per day 6 @0.10, 2.5 @0.20, 1.5 @0.30 -> 2 days: 12 kWh 1.20 ; 5 kWh 1.00 ; 3 kWh 0.90
        ("daily", {"usage tier 1": (D("12"), D("1.20")), "usage tier 2": (D("5"), D("1.00")),
                   "usage tier 3": (D("3"), D("0.90"))}),
        # per bill: 6 @0.10 = 0.60 ; 2.5 @0.20 = 0.50 ; 11.5 @0.30 = 3.45
        ("bill", {"usage tier 1": (D("6"), D("0.60")), "usage tier 2": (D("2.5"), D("0.50")),
                  "usage tier 3": (D("11.5"), D("3.45"))}),
    ],
)
def test_block_tiers_reset_daily_or_per_bill(tmp_path: Path, reset: str,
                                             expected: dict[str, tuple[Decimal, Decimal]]) -> None:
    t = tariff(tmp_path, head() + BLOCK.format(reset=reset) + EXPORT_010)
    s = series(date(2026, 2, 10), date(2026, 2, 12), lambda d: (250 if d.hour < 10 else 0, 0))
    [b] = bill(t, s, date(2026, 2, 10), date(2026, 2, 12))
    assert {i.label: (i.quantity, i.amount) for i in b.items} == expected


def test_block_tier_boundary_inside_an_interval_splits_it(tmp_path: Path) -> None:
    t = tariff(tmp_path, head() + BLOCK.format(reset="bill") + EXPORT_010)
    # one interval of 7000 Wh at 00:00 then nothing: 6 kWh tier 1, 1 kWh tier 2
    s = series(date(2026, 2, 10), date(2026, 2, 11), lambda d: (7000 if (d.hour, d.minute) == (0, 0) else 0, 0))
    [b] = bill(t, s, date(2026, 2, 10), date(2026, 2, 11))
    assert {i.label: (i.quantity, i.amount) for i in b.items} == {
        "usage tier 1": (D("6"), D("0.60")), "usage tier 2": (D("1"), D("0.20"))}


HPHC = """
[[seasons]]
name = "summer"
start = "04-01"
[[seasons]]
name = "winter"
start = "10-01"
[[charges]]
type = "usage"
structure = "tou"
rates = [{name = "HP", price = "0.30"}, {name = "HC", price = "0.20"}, {name = "PEAK", price = "0.50"}]
[charges.schedule.winter]
weekday = ["HC","HC","HC","HC","HC","HC","HP","HP","HP","HP","HP","HP",
  "HP","HP","HP","HP","HP","HP","PEAK","PEAK","HP","HP","HC","HC"]
weekend = ["HC","HC","HC","HC","HC","HC","HP","HP","HP","HP","HP","HP",
  "HP","HP","HP","HP","HP","HP","HP","HP","HP","HP","HC","HC"]
[charges.schedule.summer]
weekday = ["HC","HC","HC","HC","HC","HC","HP","HP","HP","HP","HP","HP",
  "HP","HP","HP","HP","HP","HP","HP","HP","HP","HP","HC","HC"]
weekend = "HC"
"""


def test_tou_with_seasons_and_weekends(tmp_path: Path) -> None:
    t = tariff(tmp_path, head() + HPHC + EXPORT_010)
    # 100 Wh every quarter-hour (0.4 kWh per hour), 2026-03-27 (Fri) to 2026-04-04 (Sat), exported 0
    # winter (1 Jan - 31 Mar): Fri 27, Mon 30, Tue 31 weekdays; Sat 28, Sun 29 (DST: 23 h, hour 2 missing)
    #   weekday: HC 8 h, HP 14 h, PEAK 2 h -> 3 days: HC 24 h, HP 42 h, PEAK 6 h
    #   Sat 28: HC 8 h, HP 16 h ; Sun 29: HC 7 h (00-06 without 02 + 22-24), HP 16 h
    #   winter: HC 39 h = 15.6 kWh, HP 74 h = 29.6 kWh, PEAK 6 h = 2.4 kWh
    # summer (1 Apr - ): Wed 1, Thu 2, Fri 3 weekdays: HC 8 h, HP 16 h each; Sat 4 weekend: HC 24 h
    #   summer: HC 48 h = 19.2 kWh, HP 48 h = 19.2 kWh
    # March bill: HC 15.6 x 0.20 = 3.12 ; HP 29.6 x 0.30 = 8.88 ; PEAK 2.4 x 0.50 = 1.20
    # April bill: HC 19.2 x 0.20 = 3.84 ; HP 19.2 x 0.30 = 5.76
    s = series(date(2026, 3, 27), date(2026, 4, 5), lambda d: (100, 0))
    march, april = bill(t, s, date(2026, 3, 27), date(2026, 4, 5))
    assert {i.label: (i.quantity, i.amount) for i in march.items} == {
        "usage HP": (D("29.6"), D("8.88")), "usage HC": (D("15.6"), D("3.12")), "usage PEAK": (D("2.4"), D("1.20"))}
    assert {i.label: (i.quantity, i.amount) for i in april.items} == {
        "usage HP": (D("19.2"), D("5.76")), "usage HC": (D("19.2"), D("3.84"))}
    assert (march.start, march.end, march.days, april.start, april.end, april.days) == (
        date(2026, 3, 27), date(2026, 4, 1), 5, date(2026, 4, 1), date(2026, 4, 5), 4)


DST_TOU = """
[[charges]]
type = "usage"
structure = "tou"
rates = [{name = "HP", price = "0.25"}, {name = "HC", price = "0.20"}]
[charges.schedule.all]
weekday = "HP"
weekend = ["HC","HC","HC","HC","HC","HC","HP","HP","HP","HP","HP","HP",
  "HP","HP","HP","HP","HP","HP","HP","HP","HP","HP","HP","HP"]
"""


@pytest.mark.parametrize(
    ("day", "hc_kwh", "hc_eur", "hp_kwh", "hp_eur", "days_quarters"),
    [
        # Sunday 29 March 2026: 23 h. HC 00-06 minus the missing 02:00 hour = 5 h x 1 kWh = 5 kWh -> 1.00
        # HP 06-24 = 18 h x 1 kWh = 18 kWh x 0.25 = 4.50 ; 92 quarter-hours
        (date(2026, 3, 29), D("5"), D("1.00"), D("18"), D("4.50"), 92),
        # Sunday 25 October 2026: 25 h. HC 00-06 with 02:00 twice = 7 h = 7 kWh -> 1.40 ; HP 18 kWh -> 4.50 ; 100
        (date(2026, 10, 25), D("7"), D("1.40"), D("18"), D("4.50"), 100),
    ],
)
def test_dst_days_bill_every_local_hour(tmp_path: Path, day: date, hc_kwh: Decimal, hc_eur: Decimal,
                                        hp_kwh: Decimal, hp_eur: Decimal, days_quarters: int) -> None:
    t = tariff(tmp_path, head() + DST_TOU + EXPORT_010 + '[[fixed]]\nname = "standing"\namount = "0.50"\nper = "day"\n')
    s = series(day, day + timedelta(days=1), lambda d: (250, 0))
    assert s.starts.size == days_quarters
    [b] = bill(t, s, day, day + timedelta(days=1))
    # one local day: standing charge 1 x 0.50
    assert {i.label: (i.quantity, i.amount) for i in b.items} == {
        "usage HP": (hp_kwh, hp_eur), "usage HC": (hc_kwh, hc_eur), "standing": (D("1.0000"), D("0.50"))}
    assert b.days == 1


DEMAND = """
[[charges]]
type = "usage"
structure = "flat"
price = "0.20"
[[charges]]
type = "demand"
structure = "flat"
price = "9.50"
[[charges]]
type = "demand"
structure = "tou"
name = "tou demand"
[[charges.rates]]
name = "day"
tiers = [{price = "4.00", limit = 2}, {price = "6.00"}]
[[charges.rates]]
name = "night"
price = "1.00"
[charges.schedule.all]
weekday = ["night","night","night","night","night","night","day","day","day","day","day","day",
  "day","day","day","day","day","day","day","day","day","day","night","night"]
weekend = "night"
"""


def test_demand_is_the_peak_quarter_hour_per_bill_and_tou_period(tmp_path: Path) -> None:
    t = tariff(tmp_path, head() + DEMAND + EXPORT_010)

    # Wed 2026-01-14 .. Sat 2026-01-17. Base 100 Wh; Thu 15 at 18:15 local: 800 Wh (3.2 kW);
    # Fri 16 at 03:00: 600 Wh (2.4 kW); Sat 17 at 12:00 (weekend = night): 1000 Wh (4 kW)
    def rule(d: datetime) -> tuple[int, int]:
        special = {(15, 18, 15): 800, (16, 3, 0): 600, (17, 12, 0): 1000}
        return special.get((d.day, d.hour, d.minute), 100), 0

    [b] = bill(t, series(date(2026, 1, 14), date(2026, 1, 18), rule), date(2026, 1, 14), date(2026, 1, 18))
    # usage: 4 days x 96 x 100 Wh = 38.4 kWh + (700 + 500 + 900) Wh = 40.5 kWh x 0.20 = 8.10
    # flat demand: peak 1000 Wh in 15 min = 4 kW x 9.50 = 38.00
    # tou demand: day peak 3.2 kW: tier 1 2 kW x 4 = 8.00, tier 2 1.2 kW x 6 = 7.20; night peak 4 kW x 1 = 4.00
    assert {i.label: (i.quantity, i.amount) for i in b.items} == {
        "usage": (D("40.5"), D("8.10")),
        "demand": (D("4"), D("38.00")),
        "tou demand day tier 1": (D("2"), D("8.00")),
        "tou demand day tier 2": (D("1.2"), D("7.20")),
        "tou demand night": (D("4"), D("4.00")),
    }
    assert b.total == D("65.30")


FIXED = """
[[charges]]
type = "usage"
structure = "flat"
price = "0.20"
[[fixed]]
name = "daily"
amount = "0.10"
per = "day"
[[fixed]]
name = "subscription"
amount = "15.00"
per = "month"
[[fixed]]
name = "network"
amount = "30.00"
per = "quarter"
[[fixed]]
name = "membership"
amount = "120.00"
per = "year"
[[fixed]]
name = "loyalty"
amount = "-2.00"
per = "month"
"""


def test_partial_first_period_prorates_fixed_charges(tmp_path: Path) -> None:
    t = tariff(tmp_path, head() + FIXED + EXPORT_010)
    # service starts 2026-01-20; bills: 20-31 Jan (12 days), February (28 days). 50 Wh per quarter-hour.
    s = series(date(2026, 1, 20), date(2026, 3, 1), lambda d: (50, 0))
    jan, feb = bill(t, s, date(2026, 1, 20), date(2026, 3, 1))
    # January: usage 12 x 96 x 50 Wh = 57.6 kWh x 0.20 = 11.52 ; daily 12 x 0.10 = 1.20
    #   subscription 15 x 12/31 = 5.8064.. -> 5.81 ; network 30 x 12/90 = 4.00 ;
    #   membership 120 x 12/365 = 3.9452 -> 3.95
    #   loyalty -2 x 12/31 = -0.7741.. -> -0.77 ; total 25.71
    assert {i.label: (i.quantity, i.amount) for i in jan.items} == {
        "usage": (D("57.6"), D("11.52")),
        "daily": (D("12.0000"), D("1.20")),
        "subscription": (D("0.3871"), D("5.81")),
        "network": (D("0.1333"), D("4.00")),
        "membership": (D("0.0329"), D("3.95")),
        "loyalty": (D("0.3871"), D("-0.77")),
    }
    assert jan.total == D("25.71") and jan.days == 12
    # February: usage 28 x 4.8 kWh = 134.4 kWh x 0.20 = 26.88 ; daily 2.80 ; subscription 15.00 ; network: accrued
    #   since 20 Jan 30 x 40/90 = 13.333.. -> 13.33, less January's 4.00 = 9.33 ; membership (yearly, rounded once a
    #   year): 120 x 40/365 = 13.1506.. -> 13.15, less January's 3.95 = 9.20 (not 120 x 28/365 = 9.2054.. -> 9.21:
    #   the two bills make 13.15, the year's share to the cent) ; loyalty -2.00 ; total 61.21
    assert amounts(feb) == {"usage": D("26.88"), "daily": D("2.80"), "subscription": D("15.00"), "network": D("9.33"),
                            "membership": D("9.20"), "loyalty": D("-2.00")}
    assert feb.total == D("61.21") and feb.days == 28


def test_discounts_minimum_and_tax_share(tmp_path: Path) -> None:
    extra = 'minimum_daily_charge = "1.25"'
    text = head(extra=extra) + DEMAND + EXPORT_010 + """
[[fixed]]
name = "supply"
amount = "10.00"
per = "month"
[[fixed]]
name = "rebate"
amount = "-1.00"
per = "month"
[extra]
usage_discount_percent = 10
supply_discount_percent = 5
demand_discount_percent = "2.5"
tax_percent = 20
"""
    t = tariff(tmp_path, text)
    # February 2026 (28 days), 10 Wh per quarter-hour except Mon 2 Feb 10:00 local: 410 Wh (1.64 kW), exports 0
    s = series(date(2026, 2, 1), date(2026, 3, 1),
               lambda d: (410 if (d.day, d.hour, d.minute) == (2, 10, 0) else 10, 0))
    [b] = bill(t, s, date(2026, 2, 1), date(2026, 3, 1))
    # usage: 28 x 96 x 10 Wh = 26.88 kWh + 0.4 = 27.28 kWh x 0.20 = 5.456 -> 5.46
    # demand flat: 1.64 kW x 9.50 = 15.58 ; tou day: 1.64 kW tier 1 x 4 = 6.56 ; night: 0.04 kW x 1 = 0.04
    # supply 10.00 ; rebate -1.00
    # usage discount 10 % of 5.46 = 0.546 -> -0.55 ; supply discount 5 % of the surcharges (10.00) = -0.50
    # demand discount 2.5 % of (15.58 + 6.56 + 0.04 = 22.18) = 0.5545 -> -0.55
    # subtotal 5.46 + 22.18 + 10.00 - 1.00 - 0.55 - 0.50 - 0.55 = 35.04 ; minimum 28 x 1.25 = 35.00: no top-up
    assert amounts(b) == {
        "usage": D("5.46"), "demand": D("15.58"), "tou demand day tier 1": D("6.56"),
        "tou demand night": D("0.04"),
        "supply": D("10.00"), "rebate": D("-1.00"), "usage discount": D("-0.55"), "supply discount": D("-0.50"),
        "demand discount": D("-0.55"),
    }
    assert b.total == D("35.04")
    # tax share of 35.04 TTC at 20 %: 35.04 x 20 / 120 = 5.84
    assert b.tax == D("5.84")


def test_minimum_daily_charge_tops_up_the_bill(tmp_path: Path) -> None:
    text = head(extra='minimum_daily_charge = "0.8333"') + \
        '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.20"\n' + EXPORT_010 + \
        "[extra]\ntax_percent = 5.5\n"
    t = tariff(tmp_path, text)
    # 3 days (2026-06-01..03), import 20 Wh per quarter-hour 00:00-06:00, export 200 Wh per quarter-hour 10:00-16:00
    s = series(date(2026, 6, 1), date(2026, 6, 4),
               lambda d: (20 if d.hour < 6 else 0, 200 if 10 <= d.hour < 16 else 0))
    [b] = bill(t, s, date(2026, 6, 1), date(2026, 6, 4))
    # usage 3 x 24 x 20 Wh = 1.44 kWh x 0.20 = 0.288 -> 0.29 ; export 3 x 24 x 200 = 14.4 kWh x 0.10 = -1.44
    # subtotal -1.15 ; minimum 3 x 0.8333 = 2.4999 -> 2.50 ; top-up 2.50 - (-1.15) = 3.65 ; total 2.50
    assert amounts(b) == {"usage": D("0.29"), "export": D("-1.44"), "minimum charge top-up": D("3.65")}
    assert b.total == D("2.50")
    # tax 2.50 x 5.5 / 105.5 = 0.13033 -> 0.13
    assert b.tax == D("0.13")


def test_gross_metering_buys_all_consumption_and_sells_all_production(tmp_path: Path) -> None:
    t = tariff(tmp_path, head("gross_metering") + '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.25"\n'
               + EXPORT_010)

    # 2026-06-10: consumption 200 Wh every quarter-hour; production 500 Wh per quarter-hour 10:00-14:00 (16 quarters)
    # so import = 200 outside, 0 during; export 300 during
    def rule(d: datetime) -> tuple[int, int]:
        return (0, 300) if 10 <= d.hour < 14 else (200, 0)

    s = series(date(2026, 6, 10), date(2026, 6, 11), rule, production=lambda d: 500 if 10 <= d.hour < 14 else 0)
    [b] = bill(t, s, date(2026, 6, 10), date(2026, 6, 11))
    # consumption 96 x 200 = 19.2 kWh x 0.25 = 4.80 ; production 16 x 500 = 8 kWh x 0.10 = -0.80
    assert {i.label: (i.quantity, i.amount) for i in b.items} == {
        "usage": (D("19.2"), D("4.80")), "export": (D("8"), D("-0.80"))}
    # the same day under net billing: import 80 x 200 = 16 kWh -> 4.00 ; export 16 x 300 = 4.8 kWh -> -0.48
    nb = tariff(tmp_path, head() + '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.25"\n' + EXPORT_010)
    [b2] = bill(nb, s, date(2026, 6, 10), date(2026, 6, 11))
    assert amounts(b2) == {"usage": D("4.00"), "export": D("-0.48")}
    with pytest.raises(BillingError, match="gross metering .* needs the solar production series"):
        bill(t, Series(s.starts, s.import_wh, s.export_wh), date(2026, 6, 10), date(2026, 6, 11))


def test_controlled_load_is_billed_from_its_own_series(tmp_path: Path) -> None:
    text = head() + '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.25"\n' + EXPORT_010 + \
        '[[charges]]\ntype = "controlled_load"\nstructure = "flat"\nprice = "0.15"\n'
    t = tariff(tmp_path, text)
    s = series(date(2026, 6, 10), date(2026, 6, 11), lambda d: (100, 0))
    with pytest.raises(BillingError, match="bills a controlled load"):
        bill(t, s, date(2026, 6, 10), date(2026, 6, 11))
    cl = np.where(np.arange(96) < 8, 1000, 0).astype(np.int64)  # 00:00-02:00 local: 8 kWh
    [b] = bill(t, Series(s.starts, s.import_wh, s.export_wh, controlled_wh=cl), date(2026, 6, 10), date(2026, 6, 11))
    # usage 9.6 kWh x 0.25 = 2.40 ; controlled load 8 kWh x 0.15 = 1.20
    assert amounts(b) == {"usage": D("2.40"), "controlled load": D("1.20")}


def test_bimonthly_bills_follow_calendar_pairs(tmp_path: Path) -> None:
    t = tariff(tmp_path, head(frequency="bimonthly") + '[[charges]]\ntype = "usage"\nstructure = "flat"\n'
               'price = "0.20"\n' + EXPORT_010 + '[[fixed]]\nname = "sub"\namount = "12.00"\nper = "month"\n')
    s = series(date(2026, 2, 15), date(2026, 5, 1), lambda d: (0, 0))
    bills = bill(t, s, date(2026, 2, 15), date(2026, 5, 1))
    # Jan-Feb bill from 15 Feb: 14/28 month -> 6.00 ; Mar-Apr: 2 months -> 24.00 ; no energy, no lines for it
    assert [(b.start, b.end, amounts(b)) for b in bills] == [
        (date(2026, 2, 15), date(2026, 3, 1), {"sub": D("6.00")}),
        (date(2026, 3, 1), date(2026, 5, 1), {"sub": D("24.00")}),
    ]


def test_missing_interval_is_refused_with_its_time(tmp_path: Path) -> None:
    t = tariff(tmp_path, head() + '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.20"\n' + EXPORT_010)
    s = series(date(2026, 6, 10), date(2026, 6, 11), lambda d: (100, 0))
    keep = np.arange(96) != 40
    gap = Series(s.starts[keep], s.import_wh[keep], s.export_wh[keep])
    with pytest.raises(BillingError, match=r"no data for 1 interval\(s\) .* first at 2026-06-10T08:00:00Z"):
        bill(t, gap, date(2026, 6, 10), date(2026, 6, 11))
    neg = Series(s.starts, s.import_wh - 101 * (~keep), s.export_wh)
    with pytest.raises(BillingError, match="import_wh is negative"):
        bill(t, neg, date(2026, 6, 10), date(2026, 6, 11))
    with pytest.raises(BillingError, match="the billed range is empty"):
        bill(t, s, date(2026, 6, 10), date(2026, 6, 10))


YEARLY = """
[[charges]]
type = "usage"
structure = "flat"
price = "0.20"
[[fixed]]
name = "abonnement"
amount = "185.64"
per = "year"
"""


@pytest.mark.parametrize("year", [2026, 2028])  # 2028 is a leap year
@pytest.mark.parametrize(("frequency", "n_bills"), [("monthly", 12), ("bimonthly", 6), ("quarterly", 4)])
def test_a_years_bills_add_up_to_the_yearly_subscription_to_the_cent(
    tmp_path: Path, year: int, frequency: str, n_bills: int
) -> None:
    """Base 6 kVA, 185.64 EUR a year: the year's bills make 185.64 exactly, each within a cent of its share.

    Rounding each bill's share on its own gives 185.67 (2026, monthly), 185.62 (bimonthly), 185.63 (quarterly) and
    185.63 (2028, monthly): the cents the rule exists for.
    """
    t = tariff(tmp_path, head(frequency=frequency) + YEARLY + EXPORT_010)
    bills = bill(t, series(date(year, 1, 1), date(year + 1, 1, 1), lambda d: (0, 0)), date(year, 1, 1),
                 date(year + 1, 1, 1))
    assert len(bills) == n_bills
    shares = [amounts(b)["abonnement"] for b in bills]
    assert sum(shares) == D("185.64")
    days_in_year = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    for b, share in zip(bills, shares):
        exact = D("185.64") * b.days / days_in_year
        assert abs(share - exact) < D("0.01"), (b.start, share, exact)
