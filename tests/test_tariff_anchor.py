"""Bills anchored on a meter-reading day (``billing_anchor_day``): periods from the 15th to the 14th, local time,
with DST days inside, against hand-computed bills."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from cloud.tariffs.bill import bill, bill_period_bounds, fixed_share
from cloud.tariffs.errors import TariffFileError
from cloud.tariffs.model import FixedPer
from tests.test_tariff_bill import amounts, head, series, tariff

D = Decimal
ANCHORED = head(extra="billing_anchor_day = 15") + """
[[charges]]
type = "usage"
structure = "flat"
price = "0.20"
[[charges]]
type = "export"
structure = "flat"
price = "0"
[[fixed]]
name = "sub"
amount = "3.10"
per = "month"
"""


def _flat_100(d: datetime) -> tuple[int, int]:
    return 100, 0


def test_monthly_bills_run_from_the_15th_to_the_14th_across_spring_dst(tmp_path: Path) -> None:
    t = tariff(tmp_path, ANCHORED)
    assert t.billing_anchor_day == 15
    s = series(date(2026, 3, 1), date(2026, 4, 21), _flat_100)  # 100 Wh every quarter-hour
    first, march, last = bill(t, s, date(2026, 3, 1), date(2026, 4, 21))
    assert [(b.start, b.end, b.days) for b in (first, march, last)] == [
        (date(2026, 3, 1), date(2026, 3, 15), 14), (date(2026, 3, 15), date(2026, 4, 15), 31),
        (date(2026, 4, 15), date(2026, 4, 21), 6)]
    # 1-14 March, partial: 14 x 96 x 100 Wh = 134.4 kWh x 0.20 = 26.88 ; the month 15 Feb - 14 Mar has 28 days,
    # 14 covered: 3.10 x 14/28 = 1.55
    assert amounts(first) == {"usage": D("26.88"), "sub": D("1.55")} and first.total == D("28.43")
    # 15 March - 14 April: 31 days, 29 March (spring DST) has 92 quarter-hours: (31 x 96 - 4) x 100 Wh
    # = 297.2 kWh x 0.20 = 59.44 ; one full month: 3.10
    assert march.import_kwh == D("297.2")
    assert amounts(march) == {"usage": D("59.44"), "sub": D("3.10")} and march.total == D("62.54")
    # 15-20 April: 6 days = 57.6 kWh x 0.20 = 11.52 ; the month 15 Apr - 14 May has 30 days: 3.10 x 6/30 = 0.62
    assert amounts(last) == {"usage": D("11.52"), "sub": D("0.62")}


def test_autumn_dst_inside_an_anchored_period(tmp_path: Path) -> None:
    t = tariff(tmp_path, ANCHORED)
    s = series(date(2026, 10, 15), date(2026, 11, 15), _flat_100)
    [b] = bill(t, s, date(2026, 10, 15), date(2026, 11, 15))
    # 15 Oct - 14 Nov: 31 days, 25 October has 100 quarter-hours: (31 x 96 + 4) x 100 Wh = 298 kWh x 0.20 = 59.60
    assert amounts(b) == {"usage": D("59.60"), "sub": D("3.10")}


def test_anchored_period_bounds_and_fixed_shares() -> None:
    assert bill_period_bounds(date(2026, 1, 1), date(2026, 8, 1), 3, 15) == [
        (date(2026, 1, 1), date(2026, 1, 15)), (date(2026, 1, 15), date(2026, 4, 15)),
        (date(2026, 4, 15), date(2026, 7, 15)), (date(2026, 7, 15), date(2026, 8, 1))]
    assert bill_period_bounds(date(2026, 2, 20), date(2026, 5, 15), 2, 15) == [
        (date(2026, 2, 20), date(2026, 3, 15)), (date(2026, 3, 15), date(2026, 5, 15))]
    # 10 Jan - 20 Jan: in the month 15 Dec - 14 Jan (31 days) 5 days, in 15 Jan - 14 Feb (31 days) 6 days
    assert fixed_share(date(2026, 1, 10), date(2026, 1, 21), FixedPer.MONTH, 15) == Fraction(11, 31)
    assert fixed_share(date(2026, 1, 15), date(2026, 4, 15), FixedPer.QUARTER, 15) == 1
    assert fixed_share(date(2026, 1, 15), date(2026, 2, 15), FixedPer.YEAR, 15) == Fraction(31, 365)


@pytest.mark.parametrize("value", ["0", "29", '"15"'])
def test_anchor_day_is_validated(tmp_path: Path, value: str) -> None:
    with pytest.raises(TariffFileError, match="tariff.billing_anchor_day"):
        tariff(tmp_path, ANCHORED.replace("billing_anchor_day = 15", f"billing_anchor_day = {value}"))
