"""Net energy metering credits and virtual storage: hand-computed bills and statements, to the cent and the Wh."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.tariffs.bill import bill
from cloud.tariffs.errors import BillingError
from cloud.tariffs.mechanisms import Account, virtual_storage
from tests.test_tariff_bill import amounts, head, series, tariff

D = Decimal
FLAT_020 = '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.20"\n'
SUB_3 = '[[fixed]]\nname = "sub"\namount = "3.00"\nper = "month"\n'


def statement(b) -> dict[str, Decimal]:  # type: ignore[no-untyped-def]
    return dict(b.statement)


def test_net_metering_carries_credits_and_expires_them_at_the_adjustment_period(tmp_path: Path) -> None:
    t = tariff(tmp_path, head("net_metering") + FLAT_020 + SUB_3 +
               '[net_metering]\nadjustment_month = 6\nexpired_credit_rate = "0.05"\n')

    # every day: import 100 Wh x 24 quarter-hours (00:00-06:00) = 2.4 kWh; until June, export 500 Wh x 8
    # quarter-hours (12:00-14:00) = 4 kWh
    def rule(d: datetime) -> tuple[int, int]:
        return (100 if d.hour < 6 else 0, 500 if d.month < 7 and 12 <= d.hour < 14 else 0)

    may, june, july = bill(t, series(date(2026, 5, 30), date(2026, 7, 3), rule), date(2026, 5, 30), date(2026, 7, 3))
    # 30-31 May: earned 8 kWh, import 4.8 kWh all offset, 3.2 kWh carried; sub 3 x 2/31 = 0.1935 -> 0.19
    assert amounts(may) == {"sub": D("0.19")}
    assert statement(may) == {"credits carried in": D(0), "credits earned": D(8), "credits used": D("4.8"),
                              "credits expired": D(0), "credits carried out": D("3.2")}
    # June (adjustment month): 3.2 + 120 = 123.2 kWh available, 72 used, 51.2 expire, paid 51.2 x 0.05 = 2.56
    assert amounts(june) == {"expired credits": D("-2.56"), "sub": D("3.00")}
    assert june.total == D("0.44")
    assert statement(june) == {"credits carried in": D("3.2"), "credits earned": D(120), "credits used": D(72),
                               "credits expired": D("51.2"), "credits carried out": D(0)}
    # 1-2 July: no credits left, 4.8 kWh x 0.20 = 0.96 ; sub 3 x 2/31 = 0.19
    assert amounts(july) == {"usage": D("0.96"), "sub": D("0.19")}
    assert statement(july)["credits carried out"] == D(0)


def test_net_metering_credits_offset_the_earliest_kwh_first(tmp_path: Path) -> None:
    text = head("net_metering") + """
[[charges]]
type = "usage"
structure = "tou"
rates = [{name = "HP", price = "0.30"}, {name = "HC", price = "0.20"}]
[charges.schedule.all]
weekday = ["HC","HC","HC","HC","HC","HC","HP","HP","HP","HP","HP","HP",
  "HP","HP","HP","HP","HP","HP","HP","HP","HP","HP","HC","HC"]
weekend = "HC"
"""
    t = tariff(tmp_path, text)
    # Monday 2 March 2026: 500 Wh at 01:00 (HC), 1000 Wh at 10:00 (HP); 1 kWh of credits carried in
    s = series(date(2026, 3, 2), date(2026, 3, 3),
               lambda d: ({(1, 0): 500, (10, 0): 1000}.get((d.hour, d.minute), 0), 0))
    [b] = bill(t, s, date(2026, 3, 2), date(2026, 3, 3), Account(opening_kwh=D(1)))
    # the credit offsets 0.5 kWh HC (earliest), then 0.5 of the 1 kWh HP: HP 0.5 x 0.30 = 0.15
    assert {i.label: (i.quantity, i.amount) for i in b.items} == {"usage HP": (D("0.5"), D("0.15"))}
    assert statement(b)["credits used"] == D(1) and statement(b)["credits carried out"] == D(0)


VS = head("virtual_storage") + '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.25"\n' + \
    '[[fixed]]\nname = "sub"\namount = "10.00"\nper = "month"\n[virtual_storage]\nwithdrawal_price = "0.10"\n'


def test_virtual_storage_with_precharge_starts_at_commissioning(tmp_path: Path) -> None:
    t = tariff(tmp_path, VS)

    # each day: import 100 Wh x 24 (00:00-06:00) = 2.4 kWh, export 500 Wh x 8 (12:00-14:00) = 4 kWh
    def rule(d: datetime) -> tuple[int, int]:
        return (100 if d.hour < 6 else 0, 500 if 12 <= d.hour < 14 else 0)

    s = series(date(2026, 6, 29), date(2026, 7, 3), rule)
    june, july = bill(t, s, date(2026, 6, 29), date(2026, 7, 3), Account(date(2026, 7, 1), precharge_kwh=1000))
    # before commissioning (29-30 June): 4.8 kWh from the grid x 0.25 = 1.20, exports not compensated
    # sub 10 x 2/30 = 0.6667 -> 0.67
    assert amounts(june) == {"usage": D("1.20"), "sub": D("0.67")}
    assert statement(june) == {"storage opening balance": D(0), "storage pre-charge": D(0), "stored": D(0),
                               "drawn": D(0), "storage closing balance": D(0), "billed from the grid": D("4.8")}
    # 1 July: 1000 kWh pre-charged; each day 2.4 kWh drawn at night, 4 kWh stored at noon:
    # 1000 - 2.4 + 4 - 2.4 + 4 = 1003.2 ; drawn 4.8 x 0.10 = 0.48 ; nothing from the grid ; sub 10 x 2/31 -> 0.65
    assert amounts(july) == {"virtual storage withdrawal": D("0.48"), "sub": D("0.65")}
    assert statement(july) == {"storage opening balance": D(0), "storage pre-charge": D(1000), "stored": D(8),
                               "drawn": D("4.8"), "storage closing balance": D("1003.2"),
                               "billed from the grid": D(0)}


def test_virtual_storage_draws_only_on_later_consumption(tmp_path: Path) -> None:
    t = tariff(tmp_path, VS)
    # Monday 2 March 2026, storage commissioned earlier with 1 kWh left: 500 Wh imported at 01:00, 1000 Wh at
    # 10:00, 1000 Wh exported at 12:00, 1000 Wh imported at 20:00
    day = {(1, 0): (500, 0), (10, 0): (1000, 0), (12, 0): (0, 1000), (20, 0): (1000, 0)}
    s = series(date(2026, 3, 2), date(2026, 3, 3), lambda d: day.get((d.hour, d.minute), (0, 0)))
    [b] = bill(t, s, date(2026, 3, 2), date(2026, 3, 3), Account(date(2026, 1, 1), opening_kwh=D(1)))
    # 01:00 draws 0.5 (balance 0.5); 10:00 draws 0.5, 0.5 from the grid (balance 0); 12:00 stores 1;
    # 20:00 draws 1 (balance 0). The noon surplus cannot serve 10:00.
    # grid 0.5 x 0.25 = 0.125 -> 0.13 (half up) ; drawn 2 x 0.10 = 0.20 ; sub 10 x 1/31 = 0.3226 -> 0.32
    assert {i.label: (i.quantity, i.amount) for i in b.items} == {
        "usage": (D("0.5"), D("0.13")), "virtual storage withdrawal": (D("2"), D("0.20")),
        "sub": (D("0.0323"), D("0.32"))}
    assert b.total == D("0.65")
    assert statement(b) == {"storage opening balance": D(1), "storage pre-charge": D(0), "stored": D(1),
                            "drawn": D(2), "storage closing balance": D(0), "billed from the grid": D("0.5")}


def test_virtual_storage_account_errors(tmp_path: Path) -> None:
    t = tariff(tmp_path, VS)
    s = series(date(2026, 3, 2), date(2026, 3, 3), lambda d: (0, 0))
    with pytest.raises(BillingError, match="needs the site's commissioning date"):
        bill(t, s, date(2026, 3, 2), date(2026, 3, 3))
    with pytest.raises(BillingError, match="pre-charge must be 0 or 1000 to 5000 kWh, got 500"):
        bill(t, s, date(2026, 3, 2), date(2026, 3, 3), Account(date(2026, 3, 2), precharge_kwh=500))
    with pytest.raises(BillingError, match="pre-charge must be 0 or 1000 to 5000 kWh, got 6000"):
        bill(t, s, date(2026, 3, 2), date(2026, 3, 3), Account(date(2026, 3, 2), precharge_kwh=6000))


def test_export_rate_is_refused_with_kwh_mechanisms(tmp_path: Path) -> None:
    from cloud.tariffs.errors import TariffFileError

    with pytest.raises(TariffFileError, match="compensates exports in kWh, not at an export rate"):
        tariff(tmp_path, head("virtual_storage") + FLAT_020 + '[[charges]]\ntype = "export"\nstructure = "flat"\n'
               'price = 0.1\n[virtual_storage]\nwithdrawal_price = "0"\n')


def _storage_loop(net: list[int], first: int, opening: int) -> tuple[list[int], list[int]]:
    balance, grid, drawn = opening, [], []
    for i, n in enumerate(net):
        if i < first:
            grid.append(max(n, 0))
            drawn.append(0)
            continue
        if n <= 0:
            balance -= n
            grid.append(0)
            drawn.append(0)
        else:
            d = min(n, balance)
            balance -= d
            drawn.append(d)
            grid.append(n - d)
    return grid, drawn


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-3000, 3000), min_size=1, max_size=300), st.integers(0, 310), st.integers(0, 5000))
def test_vectorised_storage_matches_a_running_balance(net: list[int], first: int, opening: int) -> None:
    flows = virtual_storage(np.asarray(net, dtype=np.int64), first, opening)
    grid, drawn = _storage_loop(net, first, opening)
    assert flows.grid.tolist() == grid and flows.drawn.tolist() == drawn
    assert (flows.balance >= 0).all()


def test_monthly_storage_statement_whatever_the_billing_frequency(tmp_path: Path) -> None:
    from cloud.tariffs.bill import storage_statement

    t = tariff(tmp_path, VS.replace('billing_frequency = "monthly"', 'billing_frequency = "quarterly"'))
    # 30 June - 2 July 2026, commissioned 30 June with 2000 kWh: each day 2.4 kWh drawn, 4 kWh stored
    s = series(date(2026, 6, 30), date(2026, 7, 3), lambda d: (100 if d.hour < 6 else 0, 500 if 12 <= d.hour < 14
                                                               else 0))
    account = Account(date(2026, 6, 30), precharge_kwh=2000)
    june, july = storage_statement(t, s, date(2026, 6, 30), date(2026, 7, 3), account)
    # June: 2000 - 2.4 + 4 = 2001.6 ; July (2 days): 2001.6 - 2.4 + 4 - 2.4 + 4 = 2004.8
    assert june.lines() == [("storage opening balance", D(0)), ("storage pre-charge", D(2000)), ("stored", D(4)),
                            ("drawn", D("2.4")), ("storage closing balance", D("2001.6")),
                            ("billed from the grid", D(0))]
    assert (july.start, july.end, july.opening, july.stored, july.drawn, july.closing) == (
        date(2026, 7, 1), date(2026, 7, 3), D("2001.6"), D(8), D("4.8"), D("2004.8"))
    # the quarterly bills (Apr-Jun cut to 30 June, Jul-Sep cut to 2 July) agree
    q2, q3 = bill(t, s, date(2026, 6, 30), date(2026, 7, 3), account)
    assert dict(q3.statement)["storage closing balance"] == D("2004.8")
    assert dict(q2.statement)["drawn"] == D("2.4")


@pytest.mark.parametrize("mechanism", ["net_metering", "virtual_storage"])
def test_credits_and_storage_do_not_lower_demand(tmp_path: Path, mechanism: str) -> None:
    own = '[virtual_storage]\nwithdrawal_price = "0"\n' if mechanism == "virtual_storage" else ""
    t = tariff(tmp_path, head(mechanism) + FLAT_020 + '[[charges]]\ntype = "demand"\nstructure = "flat"\n'
               'price = "5.00"\n' + own)
    # Monday 2 March 2026: 1000 Wh imported at 10:00 (4 kW), 2 kWh of credits / storage at the start
    s = series(date(2026, 3, 2), date(2026, 3, 3), lambda d: (1000 if (d.hour, d.minute) == (10, 0) else 0, 0))
    [b] = bill(t, s, date(2026, 3, 2), date(2026, 3, 3), Account(date(2026, 1, 1), opening_kwh=D(2)))
    # the 1 kWh is covered (no usage line) but the grid still delivered 4 kW: 4 x 5.00 = 20.00
    assert {i.label: i.amount for i in b.items if i.category != "storage"} == {"demand": D("20.00")}


def test_expired_credits_without_a_rate_are_lost(tmp_path: Path) -> None:
    t = tariff(tmp_path, head("net_metering") + FLAT_020 + "[net_metering]\nadjustment_month = 6\n")
    # 29-30 June 2026: per day 2.4 kWh imported at night, 4 kWh exported at noon -> 3.2 kWh left on 30 June
    s = series(date(2026, 6, 29), date(2026, 7, 1),
               lambda d: (100 if d.hour < 6 else 0, 500 if 12 <= d.hour < 14 else 0))
    [b] = bill(t, s, date(2026, 6, 29), date(2026, 7, 1))
    assert {i.label: (i.quantity, i.unit_price, i.amount) for i in b.items} == {
        "expired credits": (D("3.2"), D(0), D("0.00"))}
    assert statement(b)["credits expired"] == D("3.2") and b.total == D("0.00")
