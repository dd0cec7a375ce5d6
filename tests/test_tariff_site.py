"""Site-dependent tariff parts: subscription by kVA, public holidays, incomplete tariffs, the virtual storage
pre-charge price and withdrawal price, the storage statement on a billing anchor day. Hand-computed to the cent."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from cloud.tariffs import report
from cloud.tariffs.bill import bill, storage_statement
from cloud.tariffs.calendar import day_number, easter_sunday, french_public_holidays, holiday_mask
from cloud.tariffs.compare import compare, with_mechanism
from cloud.tariffs.errors import BillingError, TariffFileError
from cloud.tariffs.mechanisms import Account
from cloud.tariffs.model import Compensation
from tests.test_tariff_bill import amounts, head, series, tariff

D = Decimal
FLAT_020 = '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.20"\n'
EXPORT_010 = '[[charges]]\ntype = "export"\nstructure = "flat"\nprice = "0.10"\n'
GRID = '[[fixed]]\nname = "Abonnement"\nby_kva = {"3" = "120.00", "6" = "182.50", "4.5" = "150"}\nper = "year"\n'


@pytest.mark.parametrize(("year", "easter"), [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)),
                                              (2026, date(2026, 4, 5)), (2027, date(2027, 3, 28)),
                                              (2038, date(2038, 4, 25)), (2285, date(2285, 3, 22))])
def test_easter_sunday(year: int, easter: date) -> None:
    # published dates; 2285 and 2038 are the earliest and latest possible (22 March, 25 April)
    assert easter_sunday(year) == easter


def test_french_public_holidays_2026() -> None:
    assert french_public_holidays(2026) == (
        date(2026, 1, 1), date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 8), date(2026, 5, 14),
        date(2026, 5, 25), date(2026, 7, 14), date(2026, 8, 15), date(2026, 11, 1), date(2026, 11, 11),
        date(2026, 12, 25))
    days = np.arange(day_number(date(2025, 12, 31)), day_number(date(2027, 1, 2)), dtype=np.int64)
    assert int(holiday_mask(days, "FR").sum()) == 12  # 11 in 2026, then 1 January 2027
    assert not holiday_mask(days, "FR")[0]  # 31 December 2025


def test_subscription_by_kva_picks_the_sites_line(tmp_path: Path) -> None:
    t = tariff(tmp_path, head() + FLAT_020 + EXPORT_010 + GRID)
    s = series(date(2026, 3, 1), date(2026, 4, 1), lambda d: (0, 0))
    # March 2026, 31 days: 182.50 x 31/365 = 15.50 ; 150 x 31/365 = 12.7397 -> 12.74
    [b] = bill(t, s, date(2026, 3, 1), date(2026, 4, 1), Account(subscribed_kva=D(6)))
    assert amounts(b) == {"Abonnement (6 kVA)": D("15.50")}
    [b] = bill(t, s, date(2026, 3, 1), date(2026, 4, 1), Account(subscribed_kva=D("4.5")))
    assert b.item("Abonnement (4.5 kVA)").amount == D("12.74")
    with pytest.raises(BillingError, match=r"'Abonnement' has no price for 9 kVA; the tariff lists 3, 4.5, 6 kVA"):
        bill(t, s, date(2026, 3, 1), date(2026, 4, 1), Account(subscribed_kva=D(9)))
    with pytest.raises(BillingError, match=r"is priced by subscribed power: give the site's kVA"):
        bill(t, s, date(2026, 3, 1), date(2026, 4, 1))
    with pytest.raises(BillingError, match="subscribed power must be a positive number of kVA"):
        bill(t, s, date(2026, 3, 1), date(2026, 4, 1), Account(subscribed_kva=D(0)))


@pytest.mark.parametrize(("fixed", "message"), [
    ('[[fixed]]\nname = "A"\namount = "1"\nby_kva = {"6" = "1"}\nper = "year"\n',
     "fixed[0].amount: give either amount, or by_kva"),
    ('[[fixed]]\nname = "A"\nper = "year"\n', "fixed[0].amount: missing: give amount, or by_kva"),
    ('[[fixed]]\nname = "A"\nby_kva = {}\nper = "year"\n', "fixed[0].by_kva: is empty"),
    ('[[fixed]]\nname = "A"\nby_kva = {"six" = "1"}\nper = "year"\n',
     "fixed[0].by_kva.six: the key must be a power in kVA"),
    ('[[fixed]]\nname = "A"\nby_kva = {"6" = "1", "6.0" = "2"}\nper = "year"\n',
     "fixed[0].by_kva.6.0: 6 kVA is given twice"),
    ('[[fixed]]\nname = "A"\nby_kva = {"-3" = "1"}\nper = "year"\n', "the key must be a positive power in kVA"),
])
def test_subscription_grid_errors_name_the_key(tmp_path: Path, fixed: str, message: str) -> None:
    with pytest.raises(TariffFileError) as e:
        tariff(tmp_path, head() + FLAT_020 + EXPORT_010 + fixed)
    assert message in str(e.value)


TOU_WEEKEND_CHEAP = """
[[charges]]
type = "usage"
structure = "tou"
rates = [{name = "peak", price = "0.30"}, {name = "off", price = "0.10"}]
[charges.schedule.all]
weekday = "peak"
weekend = "off"
"""


def test_public_holidays_bill_as_weekend_days(tmp_path: Path) -> None:
    t = tariff(tmp_path, head(extra='holidays = "FR"') + TOU_WEEKEND_CHEAP + EXPORT_010)
    plain = tariff(tmp_path, head() + TOU_WEEKEND_CHEAP + EXPORT_010)
    # Monday 25 May 2026 (Whit Monday) and Tuesday 26 May: 1 kWh per hour, 24 kWh a day
    s = series(date(2026, 5, 25), date(2026, 5, 27), lambda d: (250, 0))
    [b] = bill(t, s, date(2026, 5, 25), date(2026, 5, 27))
    # the holiday at the weekend rate 24 x 0.10 = 2.40 ; the Tuesday 24 x 0.30 = 7.20
    assert {i.label: (i.quantity, i.amount) for i in b.items if i.category == "usage"} == {
        "usage peak": (D(24), D("7.20")), "usage off": (D(24), D("2.40"))}
    [b] = bill(plain, s, date(2026, 5, 25), date(2026, 5, 27))
    assert b.item("usage peak").amount == D("14.40") and b.total == D("14.40")


def test_holidays_are_refused_with_a_day_calendar_or_an_unknown_code(tmp_path: Path) -> None:
    with pytest.raises(TariffFileError, match="tariff.holidays: must be one of"):
        tariff(tmp_path, head(extra='holidays = "XX"') + FLAT_020 + EXPORT_010)
    (tmp_path / "days.csv").write_text("date,day_type\n2026-01-01,a\n")
    text = head(extra='holidays = "FR"') + '[day_types]\nnames = ["a"]\ncalendar = "days.csv"\n' + \
        '[[charges]]\ntype = "usage"\nstructure = "tou"\nrates = [{name = "x", price = "1"}]\n' + \
        '[charges.schedule.all]\na = "x"\n' + EXPORT_010
    with pytest.raises(TariffFileError, match="tariff.holidays: a tariff with \\[day_types\\] gives every date"):
        tariff(tmp_path, text)


def test_an_incomplete_tariff_warns_on_every_output(tmp_path: Path) -> None:
    t = tariff(tmp_path, head(extra='incomplete = "no subscription line"') + FLAT_020 + EXPORT_010)
    assert t.warnings == ("incomplete tariff: no subscription line",)
    s = series(date(2026, 3, 2), date(2026, 3, 3), lambda d: (100, 0))
    bills = bill(t, s, date(2026, 3, 2), date(2026, 3, 3))
    assert "\nWARNING: incomplete tariff: no subscription line\n" in report.text(t, bills)
    assert '"warnings": [\n  "incomplete tariff: no subscription line"\n ]' in report.to_json(t, bills)
    assert report.to_csv(t, bills).splitlines()[1] == "T,,,warning,incomplete tariff: no subscription line,,,,,"
    with pytest.raises(TariffFileError, match="tariff.incomplete: must say what is missing"):
        tariff(tmp_path, head(extra='incomplete = " "') + FLAT_020 + EXPORT_010)


def test_virtual_storage_tariff_must_state_its_withdrawal_price(tmp_path: Path) -> None:
    with pytest.raises(TariffFileError, match="virtual_storage: missing: a virtual storage tariff needs"):
        tariff(tmp_path, head("virtual_storage") + FLAT_020)
    with pytest.raises(TariffFileError, match="virtual_storage.withdrawal_price: missing: the price of each kWh"):
        tariff(tmp_path, head("virtual_storage") + FLAT_020 + '[virtual_storage]\nprecharge_price = "0.1"\n')


def test_switching_to_virtual_storage_without_a_price_warns(tmp_path: Path) -> None:
    t = tariff(tmp_path, head() + FLAT_020 + EXPORT_010)
    assumed = with_mechanism(t, Compensation.VIRTUAL_STORAGE)
    assert assumed.virtual_storage is not None and assumed.virtual_storage.withdrawal_price == 0
    assert assumed.warnings == ("virtual storage withdrawal price not given: 0 EUR/kWh assumed for each kWh drawn "
                                "(give --withdrawal-price from the offer)",)
    assert with_mechanism(t, Compensation.VIRTUAL_STORAGE, D("0.05")).warnings == ()
    s = series(date(2026, 3, 2), date(2026, 3, 3), lambda d: (100, 0))
    _, rows = compare(t, [Compensation.NET_BILLING, Compensation.VIRTUAL_STORAGE], s, date(2026, 3, 2),
                      date(2026, 3, 3), Account(date(2026, 3, 2)))
    assert [len(r.warnings) for r in rows] == [0, 1]
    table = report.comparison(rows)
    assert table.splitlines()[2].endswith("EUR [1]") and table.splitlines()[3].startswith(
        "[1] WARNING: virtual storage withdrawal price not given")


VS_PRICED = head("virtual_storage") + FLAT_020 + \
    '[virtual_storage]\nwithdrawal_price = "0.10"\nprecharge_price = "0.02"\n'


def test_precharge_price_is_billed_once_in_the_commissioning_bill(tmp_path: Path) -> None:
    t = tariff(tmp_path, VS_PRICED)

    def rule(d: datetime) -> tuple[int, int]:  # 2.4 kWh at night, 4 kWh exported at noon
        return (100 if d.hour < 6 else 0, 500 if 12 <= d.hour < 14 else 0)

    s = series(date(2026, 6, 29), date(2026, 8, 2), rule)
    june, july, august = bill(t, s, date(2026, 6, 29), date(2026, 8, 2), Account(date(2026, 7, 1), 2000))
    # June, before commissioning: 4.8 kWh x 0.20 = 0.96 ; July: 2000 kWh pre-charged x 0.02 = 40.00, drawn
    # 31 x 2.4 = 74.4 kWh x 0.10 = 7.44 ; 1 August: drawn 2.4 x 0.10 = 0.24, no pre-charge line
    assert amounts(june) == {"usage": D("0.96")}
    assert amounts(july) == {"virtual storage pre-charge": D("40.00"), "virtual storage withdrawal": D("7.44")}
    assert amounts(august) == {"virtual storage withdrawal": D("0.24")}
    # commissioned before the range: the pre-charge was billed then
    [b] = bill(t, series(date(2026, 8, 1), date(2026, 8, 2), rule), date(2026, 8, 1), date(2026, 8, 2),
               Account(date(2026, 7, 1), opening_kwh=D(100)))
    assert amounts(b) == {"virtual storage withdrawal": D("0.24")}


def test_storage_statement_follows_the_billing_anchor_day(tmp_path: Path) -> None:
    t = tariff(tmp_path, head("virtual_storage", extra="billing_anchor_day = 15") + FLAT_020 +
               '[virtual_storage]\nwithdrawal_price = "0"\n')
    # 1 kWh exported every day at noon, from 10 June to 20 July; storage commissioned 10 June
    s = series(date(2026, 6, 10), date(2026, 7, 21), lambda d: (0, 1000 if (d.hour, d.minute) == (12, 0) else 0))
    rows = storage_statement(t, s, date(2026, 6, 10), date(2026, 7, 21), Account(date(2026, 6, 10)))
    # periods 10-14 June (5 days), 15 June-14 July (30 days), 15-20 July (6 days)
    assert [(r.start, r.end, r.stored, r.closing) for r in rows] == [
        (date(2026, 6, 10), date(2026, 6, 15), D(5), D(5)),
        (date(2026, 6, 15), date(2026, 7, 15), D(30), D(35)),
        (date(2026, 7, 15), date(2026, 7, 21), D(6), D(41))]
    bills = bill(t, s, date(2026, 6, 10), date(2026, 7, 21), Account(date(2026, 6, 10)))
    assert [(b.start, b.end) for b in bills] == [(r.start, r.end) for r in rows]
