"""Local-time attributes of UTC interval starts: DST days, weekends, seasons, billing periods."""

from __future__ import annotations

from datetime import date, datetime, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.tariffs.bill import bill_period_bounds, fixed_share
from cloud.tariffs.calendar import (
    bill_index,
    check_starts,
    interval_starts,
    local_calendar,
    local_midnight_utc,
    season_index,
)
from cloud.tariffs.errors import BillingError
from cloud.tariffs.model import FixedPer

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(("day", "quarters"), [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100),
                                               (date(2026, 3, 28), 96), (date(2026, 10, 26), 96)])
def test_dst_days_have_92_or_100_quarter_hours(day: date, quarters: int) -> None:
    starts = interval_starts(date(2026, 3, 20), date(2026, 11, 1))
    cal = local_calendar(starts)
    n = int(np.count_nonzero(cal.day == (day - date(1970, 1, 1)).days))
    assert n == quarters


def test_spring_day_skips_2h_and_autumn_day_repeats_it() -> None:
    spring = local_calendar(interval_starts(date(2026, 3, 29), date(2026, 3, 30)))
    hours = spring.minute // 60
    assert 2 not in hours.tolist() and np.count_nonzero(hours == 3) == 4
    autumn = local_calendar(interval_starts(date(2026, 10, 25), date(2026, 10, 26)))
    assert np.count_nonzero(autumn.minute // 60 == 2) == 8
    # 2026-10-25 01:00 UTC is 02:00 CET, the second 02:00 (the first was 00:00 UTC = 02:00 CEST)
    assert local_midnight_utc(date(2026, 10, 25)) == int(datetime(2026, 10, 24, 22, tzinfo=timezone.utc).timestamp())


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20 * 365 * 96), st.integers(1, 3000))
def test_matches_zoneinfo_interval_by_interval(offset: int, n: int) -> None:
    starts = 1_577_836_800 + 900 * (offset + np.arange(n, dtype=np.int64))  # from 2020-01-01
    cal = local_calendar(starts)
    for i in range(0, n, 97):
        d = datetime.fromtimestamp(int(starts[i]), PARIS)
        assert cal.minute[i] == d.hour * 60 + d.minute
        assert bool(cal.weekend[i]) == (d.weekday() >= 5)
        assert cal.month_day[i] == d.month * 100 + d.day
        assert cal.month_index[i] == (d.year - 1970) * 12 + d.month - 1
        assert cal.day[i] == (d.date() - date(1970, 1, 1)).days


def test_seasons_wrap_around_the_new_year() -> None:
    md = np.array([101, 331, 401, 930, 1001, 1231])
    assert season_index(md, [401, 1001]).tolist() == [1, 1, 0, 0, 1, 1]


def test_bill_grouping() -> None:
    months = np.arange(24 * 12, 24 * 12 + 12)  # 1994
    assert bill_index(months, 2).tolist() == [144, 144, 145, 145, 146, 146, 147, 147, 148, 148, 149, 149]
    assert bill_period_bounds(date(2026, 2, 10), date(2026, 7, 1), 2) == [
        (date(2026, 2, 10), date(2026, 3, 1)), (date(2026, 3, 1), date(2026, 5, 1)),
        (date(2026, 5, 1), date(2026, 7, 1))]
    assert bill_period_bounds(date(2026, 1, 1), date(2026, 5, 15), 3) == [
        (date(2026, 1, 1), date(2026, 4, 1)), (date(2026, 4, 1), date(2026, 5, 15))]


def test_fixed_shares_are_exact_pro_rata() -> None:
    assert fixed_share(date(2026, 1, 20), date(2026, 2, 1), FixedPer.MONTH) == Fraction(12, 31)
    assert fixed_share(date(2026, 1, 20), date(2026, 3, 1), FixedPer.MONTH) == Fraction(12, 31) + 1
    assert fixed_share(date(2026, 1, 1), date(2026, 4, 1), FixedPer.QUARTER) == 1
    assert fixed_share(date(2026, 3, 1), date(2026, 5, 1), FixedPer.QUARTER) == Fraction(31, 90) + Fraction(30, 91)
    assert fixed_share(date(2028, 2, 1), date(2028, 3, 1), FixedPer.YEAR) == Fraction(29, 366)


def test_misaligned_or_unsorted_starts_are_refused() -> None:
    with pytest.raises(BillingError, match="interval 1 starts at 1000 s, not a multiple of 900 s"):
        check_starts(np.array([900, 1000], dtype=np.int64))
    with pytest.raises(BillingError, match="must increase strictly: interval 2"):
        check_starts(np.array([900, 1800, 1800], dtype=np.int64))
