"""Load profiles for simulated meters: a daily schedule of constant power steps.

The energy index is computed in closed form with exact rational arithmetic,
so a simulated meter read years after its epoch returns the same index as if
it had been integrated second by second, and two simulators given the same
profile agree to the Wh.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from quartier.errors import ConfigError

DAY_S = 86400
_HHMM_RE = re.compile(r"^(\d\d):(\d\d)$")
_PROFILE_KEYS = {"initial_index_wh", "epoch", "profile"}
_STEP_KEYS = {"at", "power_w"}


class LoadProfile:
    """Power that repeats every UTC day, and the energy index it produces.

    Args:
        steps: ``(start, power)`` pairs: start in seconds since UTC midnight
            [s, integer, 0 <= start < 86400], power from then until the next
            step's start (or midnight) [W, >= 0]. Sorted by start, strictly
            increasing, the first at 0.
        initial_index_wh: the meter's energy index at ``epoch``. [Wh, >= 0]
        epoch: the time the index is counted from. [s since Unix epoch, UTC, integer]

    Raises:
        ValueError: steps empty, unsorted, not starting at 0, out of the day,
            or with a negative or non-finite power; negative initial index.
    """

    def __init__(self, steps: Sequence[tuple[int, float]], initial_index_wh: int, epoch: int) -> None:
        if not steps:
            raise ValueError("a profile needs at least one step")
        starts: list[int] = []
        powers: list[Fraction] = []
        for index, (start, power) in enumerate(steps):
            if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < DAY_S:
                raise ValueError(f"step {index}: start {start!r} must be an integer in 0..{DAY_S - 1} [s]")
            if starts and start <= starts[-1]:
                raise ValueError(f"step {index}: start {start} s is not after the previous step's {starts[-1]} s")
            if isinstance(power, bool) or not isinstance(power, int | float) or not math.isfinite(power) or power < 0:
                raise ValueError(f"step {index}: power {power!r} must be a finite number >= 0 [W]")
            starts.append(start)
            powers.append(Fraction(power))
        if starts[0] != 0:
            raise ValueError(f"the first step must start at 0 s (midnight UTC), not {starts[0]} s")
        if isinstance(initial_index_wh, bool) or not isinstance(initial_index_wh, int) or initial_index_wh < 0:
            raise ValueError(f"initial_index_wh {initial_index_wh!r} must be an integer >= 0 [Wh]")
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise ValueError(f"epoch {epoch!r} must be an integer [s since Unix epoch]")
        self.steps: tuple[tuple[int, float], ...] = tuple((s, float(p)) for s, p in steps)
        self.initial_index_wh = initial_index_wh
        self.epoch = epoch
        self._starts = starts
        self._powers = powers
        # _before[i] = energy from midnight to starts[i]; the last entry is one whole day. [W*s]
        self._before: list[Fraction] = [Fraction(0)]
        ends = starts[1:] + [DAY_S]
        for start, end, step_power in zip(starts, ends, powers):
            self._before.append(self._before[-1] + step_power * (end - start))

    @classmethod
    def constant(cls, power_w: float, initial_index_wh: int, epoch: int) -> LoadProfile:
        """A profile drawing ``power_w`` [W] around the clock, index ``initial_index_wh`` [Wh] at ``epoch`` [s]."""
        return cls([(0, power_w)], initial_index_wh, epoch)

    @classmethod
    def from_config(cls, table: Mapping[str, Any], path: str = "<config>", key: str = "") -> LoadProfile:
        """Build a profile from a config table.

        The table holds ``initial_index_wh`` [Wh, integer >= 0, default 0],
        ``epoch`` (an ISO 8601 time with a UTC offset such as
        ``"2026-01-19T00:00:00Z"``, a TOML offset date-time, or an integer
        [s since Unix epoch]) and ``profile``, a list of
        ``{at = "HH:MM", power_w = 7400}`` steps in UTC, the first at ``"00:00"``.

        ``path`` and ``key`` (the table's own key, e.g. ``meters[cp1]``) only
        locate errors.

        Raises:
            ConfigError: naming the offending key, e.g. ``profile[2].at``.
        """
        prefix = f"{key}." if key else ""
        unknown = sorted(set(table) - _PROFILE_KEYS)
        if unknown:
            raise ConfigError(path, prefix + unknown[0], f"unknown key; allowed: {sorted(_PROFILE_KEYS)}")
        initial = table.get("initial_index_wh", 0)
        if isinstance(initial, bool) or not isinstance(initial, int) or initial < 0:
            raise ConfigError(path, prefix + "initial_index_wh", f"{initial!r} must be an integer >= 0 [Wh]")
        if "epoch" not in table:
            raise ConfigError(path, prefix + "epoch", 'missing; e.g. epoch = "2026-01-19T00:00:00Z"')
        try:
            epoch = parse_epoch(table["epoch"])
        except ValueError as exc:
            raise ConfigError(path, prefix + "epoch", str(exc)) from None
        entries = table.get("profile")
        if not isinstance(entries, list) or not entries:
            raise ConfigError(
                path, prefix + "profile", 'missing or empty; e.g. profile = [{at = "00:00", power_w = 0}]'
            )
        steps: list[tuple[int, float]] = []
        for index, entry in enumerate(entries):
            where = f"{prefix}profile[{index}]"
            if not isinstance(entry, Mapping):
                raise ConfigError(path, where, 'must be a table like {at = "08:00", power_w = 7400}')
            unknown = sorted(set(entry) - _STEP_KEYS)
            if unknown:
                raise ConfigError(path, f"{where}.{unknown[0]}", f"unknown key; allowed: {sorted(_STEP_KEYS)}")
            try:
                start = parse_hhmm(entry.get("at"))
            except ValueError as exc:
                raise ConfigError(path, f"{where}.at", str(exc)) from None
            power = entry.get("power_w")
            if isinstance(power, bool) or not isinstance(power, int | float) or not math.isfinite(power) or power < 0:
                raise ConfigError(path, f"{where}.power_w", f"{power!r} must be a number >= 0 [W]")
            if index == 0 and start != 0:
                raise ConfigError(path, f"{where}.at", 'the first step must be at "00:00"')
            if steps and start <= steps[-1][0]:
                raise ConfigError(path, f"{where}.at", f"{entry['at']!r} is not after the previous step")
            steps.append((start, float(power)))
        return cls(steps, initial, epoch)

    def power_w(self, t: float) -> float:
        """Power drawn at time ``t`` [s since Unix epoch, UTC]. [W]

        A step starting exactly at ``t`` already applies.
        """
        second_of_day = Fraction(t) % DAY_S
        return float(self._powers[bisect_right(self._starts, second_of_day) - 1])

    def energy_wh(self, t0: float, t1: float) -> Fraction:
        """Exact energy drawn from ``t0`` to ``t1`` [s since Unix epoch, UTC]. [Wh]

        Negative when ``t1 < t0``; additive: ``energy_wh(a, c) == energy_wh(a, b) + energy_wh(b, c)``.
        """
        return (self._energy_since_1970(Fraction(t1)) - self._energy_since_1970(Fraction(t0))) / 3600

    def index_wh(self, t: float) -> int:
        """The meter's energy index at ``t`` [s since Unix epoch, UTC]: whole Wh counted so far. [Wh]

        ``initial_index_wh + floor(energy from epoch to t)``; exact for any
        float ``t`` however far from the epoch.

        Raises:
            ValueError: ``t`` is before the epoch (the index is not defined there).
        """
        if t < self.epoch:
            raise ValueError(f"t = {t} s is before the profile's epoch {self.epoch} s")
        return self.initial_index_wh + math.floor(self.energy_wh(self.epoch, t))

    def _energy_since_1970(self, t: Fraction) -> Fraction:
        """Energy drawn from 1970-01-01T00:00Z to ``t`` had the profile run since then. [W*s]"""
        days, second_of_day = divmod(t, DAY_S)
        i = bisect_right(self._starts, second_of_day) - 1
        within_day = self._before[i] + self._powers[i] * (second_of_day - self._starts[i])
        return days * self._before[-1] + within_day

    def __repr__(self) -> str:
        return f"LoadProfile(steps={list(self.steps)!r}, initial_index_wh={self.initial_index_wh}, epoch={self.epoch})"


def parse_hhmm(text: object) -> int:
    """``"HH:MM"`` (UTC, 00:00..23:59) -> seconds since midnight. [s]

    Raises:
        ValueError: not a string of that form.
    """
    match = _HHMM_RE.match(text) if isinstance(text, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f'{text!r} must be a time of day "HH:MM" between "00:00" and "23:59" (UTC)')
    return int(match[1]) * 3600 + int(match[2]) * 60


def parse_epoch(value: object) -> int:
    """An epoch given as integer seconds, an ISO 8601 string or an aware datetime -> s since Unix epoch.

    Strings and datetimes must carry a UTC offset (``Z`` or ``+00:00``; other
    offsets are converted) and whole seconds.

    Raises:
        ValueError: anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f'{value!r} is not an ISO 8601 time like "2026-01-19T00:00:00Z"') from None
    if not isinstance(value, datetime):
        raise ValueError(f'{value!r} must be an ISO 8601 UTC time like "2026-01-19T00:00:00Z" or integer seconds')
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value.isoformat()} has no UTC offset; append Z for UTC")
    if value.microsecond:
        raise ValueError(f"{value.isoformat()} must be whole seconds")
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return delta // timedelta(seconds=1)
