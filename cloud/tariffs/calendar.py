"""Local-time attributes of UTC interval starts, vectorised (pure: numpy arrays in, numpy arrays out).

Series are stored in UTC; tariff schedules are in local time (Europe/Paris by default). An interval belongs to
the local day, hour and billing period of its start. On DST days a local day has 92 (spring) or 100 (autumn)
quarter-hours; on the autumn day the hour 02:00-03:00 occurs twice and both are billed at that hour's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from cloud.tariffs.errors import BillingError
from quartier.series import INTERVAL_S, PARIS

DAY_S = 86_400
_SAMPLE_DAYS = 7
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

I64 = npt.NDArray[np.int64]


def _offset(tz: ZoneInfo, t: int) -> int:
    """UTC offset of ``tz`` at UTC time ``t``. [s]"""
    off = datetime.fromtimestamp(t, timezone.utc).astimezone(tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


@lru_cache(maxsize=256)
def offset_changes(tz_name: str, day0: int, day1: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """UTC offset changes of ``tz_name`` between UTC days ``day0`` and ``day1`` (days since epoch).

    Returns (times, offsets): ``offsets[i]`` applies from UTC ``times[i]`` [s] on; ``times[0]`` is the start of
    day0. The offset is sampled every 7 days and a change is located by bisection to the quarter-hour (every
    real zone changes on a quarter-hour); a zone changing twice within 7 days (none does today: DST changes
    are months apart) is not supported.
    """
    tz = ZoneInfo(tz_name)
    times = [day0 * DAY_S]
    offsets = [_offset(tz, day0 * DAY_S)]
    day = day0
    while day <= day1:
        day = min(day + _SAMPLE_DAYS, day1 + 1)
        t = day * DAY_S
        off = _offset(tz, t)
        if off != offsets[-1]:
            lo = max((t - _SAMPLE_DAYS * DAY_S) // INTERVAL_S, times[-1] // INTERVAL_S)
            hi = t // INTERVAL_S
            while hi - lo > 1:  # offset(lo) == old, offset(hi) == new
                mid = (lo + hi) // 2
                if _offset(tz, mid * INTERVAL_S) == offsets[-1]:
                    lo = mid
                else:
                    hi = mid
            times.append(hi * INTERVAL_S)
            offsets.append(off)
    return tuple(times), tuple(offsets)


def local_seconds(starts: I64, tz_name: str) -> I64:
    """Local wall-clock time of each UTC start, as seconds since 1970-01-01 00:00 local. [s]"""
    if starts.size == 0:
        return starts.astype(np.int64)
    times, offsets = offset_changes(tz_name, int(starts.min()) // DAY_S, int(starts.max()) // DAY_S)
    if len(times) == 1:
        return starts + offsets[0]
    if np.all(starts[1:] > starts[:-1]):  # sorted: spread each offset over its run (no per-interval search)
        cut = np.searchsorted(starts, np.asarray(times[1:], dtype=np.int64))
        run = np.diff(np.r_[0, cut, starts.size])
        out = np.repeat(np.asarray(offsets, dtype=np.int64), run)
        out += starts
        return out
    idx = np.searchsorted(np.asarray(times, dtype=np.int64), starts, side="right") - 1
    return starts + np.asarray(offsets, dtype=np.int64)[idx]


@dataclass(frozen=True)
class LocalCalendar:
    """Local attributes of each interval (arrays of the series' length).

    Attributes:
        day: local date as days since 1970-01-01.
        weekend: True on Saturday and Sunday.
        minute: local minute of the day (0-1439; 120-179 twice on the autumn DST day).
        month: 1-12. month_index: (year - 1970) * 12 + month - 1.
        month_day: month * 100 + day of month (e.g. 1101 for 1 November), for seasons.
    """

    day: I64
    weekend: npt.NDArray[np.bool_]
    minute: I64
    month: I64
    month_index: I64
    month_day: I64


def check_starts(starts: I64) -> None:
    """Refuse starts that are not multiples of 900 s or not strictly increasing (BillingError names the first)."""
    bad = np.flatnonzero(starts % INTERVAL_S)
    if bad.size:
        raise BillingError(f"interval {int(bad[0])} starts at {int(starts[bad[0]])} s, not a multiple of 900 s")
    back = np.flatnonzero(np.diff(starts) <= 0)
    if back.size:
        raise BillingError(f"interval starts must increase strictly: interval {int(back[0]) + 1} "
                           f"({int(starts[back[0] + 1])} s) follows {int(starts[back[0]])} s")


def day_attributes(days: I64) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
    """For local dates as days since 1970-01-01: (month_index, month_day, weekend), see :class:`LocalCalendar`."""
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    month_index = m.astype(np.int64)
    month_day = (month_index % 12 + 1) * 100 + (d - m).astype(np.int64) + 1
    return month_index, month_day, ((days + 3) % 7) >= 5  # 1970-01-01 was a Thursday; Monday = 0


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday of ``year`` (the anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    month, day = divmod(h + ll - 7 * m + 114, 31)
    return date(year, month, day + 1)


def french_public_holidays(year: int) -> tuple[date, ...]:
    """The 11 public holidays of mainland France (Code du travail, art. L3133-1), in date order: 1 January,
    Easter Monday, 1 May, 8 May, Ascension (Easter + 39 days), Whit Monday (Easter + 50), 14 July, 15 August,
    1 November, 11 November, 25 December. Alsace-Moselle's Good Friday and 26 December are not included."""
    easter = easter_sunday(year).toordinal()
    days = [date(year, 1, 1), date.fromordinal(easter + 1), date(year, 5, 1), date(year, 5, 8),
            date.fromordinal(easter + 39), date.fromordinal(easter + 50), date(year, 7, 14), date(year, 8, 15),
            date(year, 11, 1), date(year, 11, 11), date(year, 12, 25)]
    return tuple(sorted(days))


HOLIDAY_CALENDARS = {"FR": french_public_holidays}
"""Public holiday calendars a tariff can name (``holidays = "FR"``): code -> year -> dates."""


def holiday_mask(days: I64, calendar: str) -> npt.NDArray[np.bool_]:
    """True for each local date (days since 1970-01-01) that is a public holiday of ``calendar``."""
    if days.size == 0:
        return np.zeros(0, dtype=bool)
    rule = HOLIDAY_CALENDARS[calendar]
    y0, y1 = date_of(int(days.min())).year, date_of(int(days.max())).year
    holidays = np.asarray([day_number(d) for y in range(y0, y1 + 1) for d in rule(y)], dtype=np.int64)
    return np.isin(days, holidays)


def local_calendar(starts: I64, tz_name: str = PARIS.key) -> LocalCalendar:
    """Local day, weekday/weekend, minute of day and month of each interval start (UTC, [s], multiples of 900).

    Date attributes are computed once per local day and spread to the day's intervals.
    """
    local = local_seconds(np.asarray(starts, dtype=np.int64), tz_name)
    day = local // DAY_S
    if day.size == 0:
        return LocalCalendar(day, day.astype(bool), day, day, day, day)
    day0 = int(day.min())
    month_index, month_day, weekend = day_attributes(np.arange(day0, int(day.max()) + 1, dtype=np.int64))
    i = day - day0
    return LocalCalendar(
        day=day,
        weekend=weekend[i],
        minute=(local - day * DAY_S) // 60,
        month=month_index[i] % 12 + 1,
        month_index=month_index[i],
        month_day=month_day[i],
    )


def season_index(month_day: I64, starts_md: list[int]) -> I64:
    """Index of the season of each local date, seasons given by their sorted start ``month*100+day``.

    A date before the first start belongs to the last season (seasons wrap around the new year).
    """
    idx = np.searchsorted(np.asarray(starts_md, dtype=np.int64), month_day, side="right") - 1
    return np.where(idx < 0, len(starts_md) - 1, idx)


def bill_index(month_index: I64, months_per_bill: int) -> I64:
    """Billing period of each interval: calendar months grouped by 1, 2 (Jan-Feb ...) or 3 (quarters)."""
    return month_index // months_per_bill


def day_number(d: date) -> int:
    """A date as days since 1970-01-01."""
    return d.toordinal() - _EPOCH_ORDINAL


def date_of(day: int) -> date:
    """Inverse of :func:`day_number`."""
    return date.fromordinal(day + _EPOCH_ORDINAL)


def local_midnight_utc(d: date, tz_name: str = PARIS.key) -> int:
    """UTC time of local midnight starting date ``d``. [s]"""
    return int(datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz_name)).timestamp())


def interval_starts(start: date, end: date, tz_name: str = PARIS.key) -> I64:
    """Every interval start from local midnight of ``start`` to (excluding) local midnight of ``end``. [s]"""
    a, b = local_midnight_utc(start, tz_name), local_midnight_utc(end, tz_name)
    return np.arange(a, b, INTERVAL_S, dtype=np.int64)
