"""Load profiles: hand-computed indexes, closed form vs. brute force, config parsing."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quartier.errors import ConfigError
from simulators.profile import DAY_S, LoadProfile, parse_epoch, parse_hhmm

EPOCH = 1_768_780_800  # 2026-01-19T00:00:00Z
H = 3600
INITIAL = 5_000_000


def evening_charge() -> LoadProfile:
    """0 W 00:00-08:00, 7400 W 08:00-10:00, 0 W after."""
    return LoadProfile([(0, 0.0), (8 * H, 7400.0), (10 * H, 0.0)], INITIAL, EPOCH)


def test_epoch_constant_is_midnight_utc() -> None:
    assert datetime.fromtimestamp(EPOCH, timezone.utc) == datetime(2026, 1, 19, tzinfo=timezone.utc)


def test_constant_7400_w_for_15_minutes_is_1850_wh() -> None:
    profile = LoadProfile.constant(7400, INITIAL, EPOCH)
    assert profile.index_wh(EPOCH) == INITIAL
    assert profile.index_wh(EPOCH + 900) == INITIAL + 1850
    assert profile.power_w(EPOCH + 900) == 7400.0


def test_schedule_hand_computed() -> None:
    profile = evening_charge()
    assert profile.index_wh(EPOCH + 8 * H) == INITIAL
    assert profile.index_wh(EPOCH + 9 * H) == INITIAL + 7400
    assert profile.index_wh(EPOCH + 10 * H) == INITIAL + 14800
    assert profile.index_wh(EPOCH + 23 * H) == INITIAL + 14800
    assert profile.index_wh(EPOCH + DAY_S + 8 * H) == INITIAL + 14800
    assert profile.index_wh(EPOCH + DAY_S + 10 * H) == INITIAL + 29600


def test_power_steps_apply_from_their_start() -> None:
    profile = evening_charge()
    assert profile.power_w(EPOCH + 8 * H - 0.001) == 0.0
    assert profile.power_w(EPOCH + 8 * H) == 7400.0
    assert profile.power_w(EPOCH + 10 * H - 1) == 7400.0
    assert profile.power_w(EPOCH + 10 * H) == 0.0
    assert profile.power_w(EPOCH + 5 * DAY_S + 9 * H) == 7400.0


def test_non_integer_seconds() -> None:
    profile = evening_charge()
    # At 7400 W one Wh takes 3600 / 7400 = 0.486486... s.
    assert profile.index_wh(EPOCH + 8 * H + 0.486) == INITIAL
    assert profile.index_wh(EPOCH + 8 * H + 0.4865) == INITIAL + 1
    assert profile.index_wh(EPOCH + 8 * H + 0.5) == INITIAL + 1
    assert profile.energy_wh(EPOCH + 8 * H, EPOCH + 8 * H + 0.5) == Fraction(7400) * Fraction(0.5) / 3600


def test_fractional_power_is_exact() -> None:
    profile = LoadProfile.constant(0.1, 0, EPOCH)
    # 0.1 W is the binary double nearest 0.1, slightly above it: 36000 s give just over 1 Wh.
    assert Fraction(0.1) > Fraction(1, 10)
    assert profile.index_wh(EPOCH + 36_000) == 1
    assert profile.index_wh(EPOCH + 35_999) == 0


def test_exact_years_after_the_epoch() -> None:
    three_years = 3 * 365 * DAY_S
    assert LoadProfile.constant(7400, INITIAL, EPOCH).index_wh(EPOCH + three_years) == INITIAL + 7400 * 3 * 365 * 24
    assert evening_charge().index_wh(EPOCH + 1000 * DAY_S + 10 * H) == INITIAL + 14800 * 1001
    # One second before the end of the charge, 1000 days on: 7400 * 7199 / 3600 = 14797.94 Wh that day.
    assert evening_charge().index_wh(EPOCH + 1000 * DAY_S + 10 * H - 1) == INITIAL + 14800 * 1000 + 14797


def test_epoch_need_not_be_midnight() -> None:
    profile = LoadProfile([(0, 0.0), (8 * H, 7400.0), (10 * H, 0.0)], 0, EPOCH + 9 * H)
    assert profile.index_wh(EPOCH + 10 * H) == 7400
    assert profile.index_wh(EPOCH + DAY_S + 9 * H) == 14800


def test_before_the_epoch_is_refused() -> None:
    with pytest.raises(ValueError, match="before the profile's epoch"):
        evening_charge().index_wh(EPOCH - 0.5)


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([], "at least one step"),
        ([(60, 1.0)], "first step must start at 0"),
        ([(0, 1.0), (0, 2.0)], "not after"),
        ([(0, 1.0), (7200, 2.0), (3600, 3.0)], "not after"),
        ([(0, -1.0)], "power"),
        ([(0, float("nan"))], "power"),
        ([(0, True)], "power"),
        ([(0, 1.0), (DAY_S, 1.0)], "start"),
        ([(0.5, 1.0)], "start"),
    ],
)
def test_bad_steps(steps: list[tuple[Any, Any]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        LoadProfile(steps, 0, EPOCH)


def test_bad_index_and_epoch() -> None:
    with pytest.raises(ValueError, match="initial_index_wh"):
        LoadProfile.constant(1.0, -1, EPOCH)
    with pytest.raises(ValueError, match="epoch"):
        LoadProfile.constant(1.0, 0, 1.5)  # type: ignore[arg-type]


# --- properties ----------------------------------------------------------------

steps_strategy = st.lists(
    st.tuples(st.integers(1, DAY_S - 1), st.integers(0, 22_000)), max_size=6, unique_by=lambda step: step[0]
).map(lambda rest: [(0, 0.0)] + sorted((start, float(power)) for start, power in rest))
times = st.floats(0, 3 * DAY_S, allow_nan=False).map(lambda offset: EPOCH + offset)


@given(steps_strategy, st.integers(0, 10**9), times, times)
def test_index_is_non_decreasing(steps: list[tuple[int, float]], initial: int, t1: float, t2: float) -> None:
    profile = LoadProfile(steps, initial, EPOCH)
    low, high = sorted((t1, t2))
    assert initial <= profile.index_wh(low) <= profile.index_wh(high)


@given(steps_strategy, times, times, times)
def test_energy_is_additive(steps: list[tuple[int, float]], a: float, b: float, c: float) -> None:
    profile = LoadProfile(steps, 0, EPOCH)
    assert profile.energy_wh(a, c) == profile.energy_wh(a, b) + profile.energy_wh(b, c)
    assert profile.index_wh(c) == math.floor(profile.energy_wh(EPOCH, c))


@settings(max_examples=30, deadline=None)
@given(steps_strategy, st.integers(0, 2 * DAY_S))
def test_closed_form_matches_second_by_second_sum(steps: list[tuple[int, float]], seconds: int) -> None:
    profile = LoadProfile(steps, 0, EPOCH)
    # Step starts are whole seconds, so the power is constant over each second of the day.
    day = [0] * DAY_S
    for (start, power), end in zip(steps, [s for s, _ in steps[1:]] + [DAY_S]):
        day[start:end] = [int(power)] * (end - start)
    energy_ws = sum(day[s % DAY_S] for s in range(seconds))
    assert profile.energy_wh(EPOCH, EPOCH + seconds) == Fraction(energy_ws, 3600)
    assert profile.index_wh(EPOCH + seconds) == energy_ws // 3600


def test_closed_form_matches_brute_force_over_two_days() -> None:
    steps = [(0, 120.0), (6 * H + 17, 3700.5), (8 * H, 7400.0), (10 * H + 59, 0.0), (22 * H, 11_000.0)]
    profile = LoadProfile(steps, 0, EPOCH)
    energy_ws = Fraction(0)
    for s in range(2 * DAY_S):
        energy_ws += Fraction(profile.power_w(EPOCH + s))
        if s % 3637 == 0 or s == 2 * DAY_S - 1:
            assert profile.energy_wh(EPOCH, EPOCH + s + 1) * 3600 == energy_ws
            assert profile.index_wh(EPOCH + s + 1) == math.floor(energy_ws / 3600)


# --- from_config ----------------------------------------------------------------


def config(**overrides: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "initial_index_wh": INITIAL,
        "epoch": "2026-01-19T00:00:00Z",
        "profile": [{"at": "00:00", "power_w": 0}, {"at": "08:00", "power_w": 7400}, {"at": "10:00", "power_w": 0}],
    }
    table.update(overrides)
    return table


def test_from_config() -> None:
    profile = LoadProfile.from_config(config())
    assert profile.epoch == EPOCH
    assert profile.initial_index_wh == INITIAL
    assert profile.steps == ((0, 0.0), (8 * H, 7400.0), (10 * H, 0.0))
    assert profile.index_wh(EPOCH + DAY_S + 10 * H) == INITIAL + 29600


def test_from_config_epoch_forms() -> None:
    assert LoadProfile.from_config(config(epoch=EPOCH)).epoch == EPOCH
    assert LoadProfile.from_config(config(epoch=datetime(2026, 1, 19, tzinfo=timezone.utc))).epoch == EPOCH
    assert LoadProfile.from_config(config(epoch="2026-01-19T01:00:00+01:00")).epoch == EPOCH
    assert LoadProfile.from_config(config(initial_index_wh=0)).initial_index_wh == 0
    del_initial = config()
    del del_initial["initial_index_wh"]
    assert LoadProfile.from_config(del_initial).initial_index_wh == 0


@pytest.mark.parametrize(
    ("overrides", "key", "problem"),
    [
        ({"epoch": "2026-01-19T00:00:00"}, "meters[cp1].epoch", "no UTC offset"),
        ({"epoch": "yesterday"}, "meters[cp1].epoch", "ISO 8601"),
        ({"epoch": "2026-01-19T00:00:00.5Z"}, "meters[cp1].epoch", "whole seconds"),
        ({"epoch": 1.5}, "meters[cp1].epoch", "ISO 8601"),
        ({"initial_index_wh": -1}, "meters[cp1].initial_index_wh", ">= 0"),
        ({"initial_index_wh": 1.5}, "meters[cp1].initial_index_wh", "integer"),
        ({"profile": []}, "meters[cp1].profile", "missing or empty"),
        ({"profile": [{"at": "08:00", "power_w": 1}]}, "meters[cp1].profile[0].at", '"00:00"'),
        ({"profile": [{"at": "00:00", "power_w": 1}, {"at": "25:00", "power_w": 1}]}, "meters[cp1].profile[1].at", "HH:MM"),  # noqa: E501
        ({"profile": [{"at": "00:00", "power_w": 1}, {"at": "8:00", "power_w": 1}]}, "meters[cp1].profile[1].at", "HH:MM"),  # noqa: E501
        ({"profile": [{"at": "00:00", "power_w": 1}, {"at": "07:60", "power_w": 1}]}, "meters[cp1].profile[1].at", "HH:MM"),  # noqa: E501
        ({"profile": [{"at": "00:00", "power_w": 1}, {"at": "00:00", "power_w": 1}]}, "meters[cp1].profile[1].at", "not after"),  # noqa: E501
        ({"profile": [{"at": "00:00", "power_w": -5}]}, "meters[cp1].profile[0].power_w", ">= 0"),
        ({"profile": [{"at": "00:00", "power_w": "7400"}]}, "meters[cp1].profile[0].power_w", ">= 0"),
        ({"profile": [{"at": "00:00"}]}, "meters[cp1].profile[0].power_w", ">= 0"),
        ({"profile": [{"at": "00:00", "power_w": 1, "kw": 2}]}, "meters[cp1].profile[0].kw", "unknown key"),
        ({"profile": ["00:00"]}, "meters[cp1].profile[0]", "must be a table"),
        ({"profile_w": 1}, "meters[cp1].profile_w", "unknown key"),
    ],
)
def test_from_config_errors_name_the_key(overrides: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LoadProfile.from_config(config(**overrides), "sim.toml", "meters[cp1]")
    assert caught.value.path == "sim.toml"
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_missing_epoch() -> None:
    table = config()
    del table["epoch"]
    with pytest.raises(ConfigError, match="epoch: missing"):
        LoadProfile.from_config(table)


def test_parsers() -> None:
    assert parse_hhmm("00:00") == 0
    assert parse_hhmm("23:59") == 86_340
    assert parse_epoch("1970-01-01T00:00:00Z") == 0
    assert parse_epoch(EPOCH) == EPOCH
    with pytest.raises(ValueError):
        parse_hhmm(800)
    with pytest.raises(ValueError):
        parse_epoch(True)
