"""Interval aggregation against hand-computed answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.intervals import Boundary, IntervalBuilder, interpolate_index
from quartier.series import Interval, Method, Quality

T0 = 1_768_780_800  # 2026-01-19T00:00:00Z, a quarter-hour boundary


def test_polls_on_boundaries_are_measured() -> None:
    b = IntervalBuilder("cp1")
    assert b.add(T0, 5_000_000) == []
    assert b.add(T0 + 300, 5_000_600) == []
    assert b.add(T0 + 600, 5_001_200) == []
    out = b.add(T0 + 900, 5_001_850)
    assert out == [Interval("cp1", T0, 1850, 5_000_000, 5_001_850, Quality.MEASURED)]
    assert out[0].method is Method.INDEX_DIFFERENCE


def test_boundary_between_polls_is_interpolated_half_up() -> None:
    b = IntervalBuilder("cp1")
    b.add(T0 - 10, 1000)  # 10 s before the boundary
    b.add(T0 + 20, 1003)  # index at T0 = 1000 + 3*10/30 = 1001
    out = b.add(T0 + 905, 2000)  # boundary T0+900: 1003 + 997*880/885 = 1994.36 -> 1994
    assert out == [Interval("cp1", T0, 993, 1001, 1994, Quality.INTERPOLATED)]
    assert out[0].method is Method.LINEAR_INTERPOLATION
    assert interpolate_index(0, 0, 2, 1, 1) == 1  # 0.5 rounds up


def test_first_reading_off_boundary_waits_for_next_boundary() -> None:
    b = IntervalBuilder("cp1")
    assert b.add(T0 + 1, 10) == []
    assert b.add(T0 + 900, 20) == []  # first known boundary, no interval yet
    assert b.add(T0 + 1800, 30) == [Interval("cp1", T0 + 900, 10, 20, 30, Quality.MEASURED)]


def test_gap_longer_than_max_gap_is_estimated_and_conserves_energy() -> None:
    b = IntervalBuilder("cp1", max_gap_s=1800)
    b.add(T0 + 60, 0)
    # The meter is silent for 1 h 10 min: 4,200 Wh over 4,200 s, spread linearly (1 Wh/s).
    out = b.add(T0 + 4260, 4200)
    assert [i.start for i in out] == [T0 + 900, T0 + 1800, T0 + 2700]  # +3600 waits for a reading after it
    assert [(i.energy_wh, i.quality, i.method) for i in out] == [(900, Quality.ESTIMATED, Method.LINEAR_ESTIMATE)] * 3
    assert out[0].index_start_wh == 840  # (900 - 60) s at 1 Wh/s


def test_gap_longer_than_max_estimate_gap_is_missing() -> None:
    b = IntervalBuilder("cp1", max_gap_s=1800, max_estimate_gap_s=3000)
    b.add(T0, 0)
    out = b.add(T0 + 3600, 4000)  # 1 h gap: boundaries +900, +1800, +2700 missing, +3600 measured
    assert [i.start for i in out] == [T0, T0 + 900, T0 + 1800, T0 + 2700]
    assert all(i.quality is Quality.MISSING and i.energy_wh is None for i in out)
    assert {i.method for i in out} == {Method.GAP_TOO_LONG}
    assert out[0].index_start_wh == 0 and out[0].index_end_wh is None
    assert out[-1].index_end_wh == 4000


def test_counter_wrap_keeps_indexes_increasing_and_energy_right() -> None:
    wrap = 10**9  # a 9-digit TIC index [Wh]
    b = IntervalBuilder("linky", wrap_wh=wrap)
    b.add(T0, wrap - 300)
    out = b.add(T0 + 900, 500)  # rolled over: 300 Wh to the top, then 500 Wh
    assert out == [Interval("linky", T0, 800, wrap - 300, wrap + 500, Quality.MEASURED)]
    assert out[0].method is Method.INDEX_DIFFERENCE  # unwrapped: an ordinary difference
    resumed = IntervalBuilder("linky", wrap_wh=wrap, state=b.state())
    assert resumed.add(T0 + 1800, 1500) == [
        Interval("linky", T0 + 900, 1000, wrap + 500, wrap + 1500, Quality.MEASURED)
    ]
    assert b.wraps == 1


def test_meter_replaced_mid_interval_is_missing_then_measured_again() -> None:
    """The old meter read 1,000,000 Wh; the new one starts at 12 Wh: no interval is invented across the swap."""
    b = IntervalBuilder("cp1", wrap_wh=2**32)
    b.add(T0, 1_000_000)
    b.add(T0 + 600, 1_001_000)
    out = b.add(T0 + 1200, 12)  # replaced between the two readings: the boundary at +900 is unknown
    out += b.add(T0 + 1800, 412)
    assert out == [
        Interval("cp1", T0, None, 1_000_000, None, Quality.MISSING),
        Interval("cp1", T0 + 900, None, None, 412, Quality.MISSING),
    ]
    assert [i.method for i in out] == [Method.INDEX_DECREASED, Method.INDEX_DECREASED]
    (after,) = b.add(T0 + 2700, 912)
    assert after == Interval("cp1", T0 + 1800, 500, 412, 912, Quality.MEASURED)
    assert after.method is Method.INDEX_DIFFERENCE
    assert b.discontinuities == 1 and b.wraps == 0  # a fall from the bottom of the range is no wrap


def test_index_rising_faster_than_the_meter_can_is_a_discontinuity() -> None:
    b = IntervalBuilder("cp1", max_power_w=22_000)
    b.add(T0 - 60, 0)
    out = b.add(T0 + 60, 50_000)  # 50 kWh in 2 min = 1.5 MW: a replaced meter, not energy
    assert out == [] and b.boundary == Boundary(T0, None, Quality.MISSING, Method.INDEX_JUMP)
    assert b.discontinuities == 1


def test_decreasing_index_is_missing_not_negative() -> None:
    b = IntervalBuilder("cp1")
    b.add(T0, 1000)
    out = b.add(T0 + 900, 10)
    assert out == [Interval("cp1", T0, None, 1000, 10, Quality.MISSING)]
    assert out[0].method is Method.INDEX_DECREASED


def test_time_going_backwards_is_ignored_and_counted() -> None:
    b = IntervalBuilder("cp1")
    b.add(T0, 0)
    assert b.add(T0, 5) == [] and b.add(T0 - 5, 5) == []
    assert b.rejected_readings == 2


def test_state_round_trip_resumes_exactly() -> None:
    a = IntervalBuilder("cp1")
    a.add(T0 - 7, 100)
    a.add(T0 + 13, 120)
    resumed = IntervalBuilder("cp1", state=a.state())
    assert resumed.add(T0 + 903, 400) == a.add(T0 + 903, 400)


def test_state_keeps_why_a_boundary_is_missing() -> None:
    """A jump leaves the boundary unknown; after a restart the interval still says it was the jump."""
    a = IntervalBuilder("cp1", max_power_w=22_000)
    a.add(T0 - 60, 0)
    a.add(T0 + 60, 50_000)
    resumed = IntervalBuilder("cp1", max_power_w=22_000, state=a.state())
    (out,) = resumed.add(T0 + 900, 51_000)
    assert (out.quality, out.method, out.index_end_wh) == (Quality.MISSING, Method.INDEX_JUMP, 51_000)



@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(1, 700), st.integers(0, 5000)), min_size=1, max_size=60),
)
def test_energy_is_conserved_across_contiguous_intervals(steps: list[tuple[int, int]]) -> None:
    """Sum of interval energies == index difference between first and last known boundary."""
    b = IntervalBuilder("m", max_gap_s=10**9)
    t, idx = T0, 0
    out = b.add(t, idx)
    for dt, de in steps:
        t, idx = t + dt, idx + de
        out += b.add(t, idx)
    assert all(i.quality is not Quality.MISSING for i in out)
    if out:
        assert sum(i.energy_wh or 0 for i in out) == out[-1].index_end_wh - out[0].index_start_wh
        assert [i.start for i in out] == list(range(T0, T0 + 900 * len(out), 900))
        assert all(i.energy_wh is not None and i.energy_wh >= 0 for i in out)


def test_export_builder_stamps_its_direction_and_payload_keeps_it() -> None:
    from quartier import batch
    from quartier.errors import EnvelopeError
    from quartier.series import Direction

    b = IntervalBuilder("pv1", direction=Direction.EXPORT)
    b.add(T0, 4321)
    (out,) = b.add(T0 + 900, 4821)
    assert out == Interval("pv1", T0, 500, 4321, 4821, Quality.MEASURED, Direction.EXPORT)
    assert batch.decode(batch.encode("gw", 1, [out]), "gw", 1) == [out]
    # A payload from before the field existed means import; an unknown direction is refused with its place.
    legacy = b'{"v":1,"gateway":"gw","seq":1,"intervals":[{"meter":"m","start":0,"wh":1,' \
        b'"index_start_wh":0,"index_end_wh":1,"quality":"measured"}]}'
    assert batch.decode(legacy, "gw", 1)[0].direction == Direction.IMPORT
    with pytest.raises(EnvelopeError, match=r"intervals\[0\].*'sideways'"):
        batch.decode(legacy.replace(b'"measured"', b'"measured","direction":"sideways"'), "gw", 1)
