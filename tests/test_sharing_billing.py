"""Billing of the sharing: the guide's example, prices by role, participant and date;
file -> bills == arrays -> bills."""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.sharing.allocation import COEF_SCALE, FULL, KeyKind, allocate
from cloud.sharing.billing import Price, Role, Statement, amount, format_statement, statements
from cloud.sharing.errors import PriceError
from cloud.sharing.files import read_consumption, read_production, write_files

T = int(datetime(2023, 1, 19, 15, 15, tzinfo=timezone.utc).timestamp())
PRICES = [Price(Role.PRODUCER, Decimal("0.25")), Price(Role.CONSUMER, Decimal("0.50"))]


def _bills(starts, producers, self_consumed, consumers, covered, prices=PRICES) -> list[Statement]:
    return (statements(starts, producers, Role.PRODUCER, self_consumed, prices)
            + statements(starts, consumers, Role.CONSUMER, covered, prices))


def test_guide_billing_example_from_the_files(tmp_path: Path) -> None:
    # Four quarter-hours of 100 kWh shared; consumers need 25 and 75 kWh each: 400 kWh sold, 100 + 300 bought.
    starts = [T + 900 * i for i in range(4)]
    a = allocate([[100_000]] * 4, [FULL], [[25_000, 75_000]] * 4, KeyKind.DYNAMIC, iterations=2)
    write_files(tmp_path / "p.csv", tmp_path / "c.csv", starts, ["5414490000001"],
                ["5414490000001", "5414490000002"], a)
    p, c = read_production(tmp_path / "p.csv"), read_consumption(tmp_path / "c.csv")
    bills = _bills(p.period_starts, p.eans, p.self_consumed_wh, c.eans, c.covered_total_wh())
    assert [(b.ean, b.role, b.energy_kwh, b.amount_eur) for b in bills] == [
        ("5414490000001", Role.PRODUCER, Decimal("400"), Decimal("100.00")),
        ("5414490000001", Role.CONSUMER, Decimal("100"), Decimal("50.00")),
        ("5414490000002", Role.CONSUMER, Decimal("300"), Decimal("150.00")),
    ]
    assert [line.eur_per_kwh for b in bills for line in b.lines] == [Decimal("0.25"), Decimal("0.50"),
                                                                     Decimal("0.50")]
    assert "400 kWh x 0.25 EUR/kWh = 100.00 EUR" in format_statement(bills[0])


def test_amount_rounds_half_up_to_the_cent_once_per_line() -> None:
    assert amount(1234, Decimal("0.305")) == Decimal("0.38")  # 0.37637
    assert amount(100, Decimal("0.125")) == Decimal("0.01")  # 0.0125 -> half up
    assert amount(10, Decimal("0.25")) == Decimal("0.00")  # 0.0025
    # Three periods of 10 Wh at 0.50: one line of 30 Wh = 0.015 -> 0.02, not 3 x round(0.005) = 0.03.
    bills = statements([T, T + 900, T + 1800], ["E"], Role.CONSUMER, [[10], [10], [10]], PRICES)
    assert bills[0].amount_eur == Decimal("0.02")


def test_prices_by_participant_and_validity_dates() -> None:
    # 31 Jan 2023 22:45 UTC is 23:45 in Paris (still January); 23:00 UTC is 00:00 on 1 February.
    t1 = int(datetime(2023, 1, 31, 22, 45, tzinfo=timezone.utc).timestamp())
    starts = [t1, t1 + 900]
    prices = [
        Price(Role.CONSUMER, Decimal("0.50"), valid_to=date(2023, 2, 1)),
        Price(Role.CONSUMER, Decimal("0.40"), valid_from=date(2023, 2, 1)),
        Price(Role.CONSUMER, Decimal("0.10"), ean="B"),
    ]
    a, b = statements(starts, ["A", "B"], Role.CONSUMER, [[1000, 1000], [3000, 2000]], prices)
    assert [(x.first_day, x.energy_wh, x.eur_per_kwh, x.amount_eur) for x in a.lines] == [
        (date(2023, 1, 31), 1000, Decimal("0.50"), Decimal("0.50")),
        (date(2023, 2, 1), 3000, Decimal("0.40"), Decimal("1.20")),
    ]
    assert a.amount_eur == Decimal("1.70")
    assert [(x.energy_wh, x.eur_per_kwh) for x in b.lines] == [(3000, Decimal("0.10"))]
    assert b.amount_eur == Decimal("0.30")


def test_missing_or_overlapping_prices_are_errors() -> None:
    with pytest.raises(PriceError, match="producer P: no price of the agreement applies on 2023-01-19"):
        statements([T], ["P"], Role.PRODUCER, [[5]], [Price(Role.CONSUMER, Decimal("1"))])
    overlap = [Price(Role.CONSUMER, Decimal("1")), Price(Role.CONSUMER, Decimal("2"), valid_from=date(2023, 1, 1))]
    with pytest.raises(PriceError, match="2 prices .* overlap"):
        statements([T], ["C"], Role.CONSUMER, [[5]], overlap)
    # No energy, no price needed: an empty statement.
    (s,) = statements([T], ["P"], Role.PRODUCER, [[0]], [])
    assert s.lines == () and s.amount_eur == Decimal("0.00")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(list(KeyKind)), st.integers(1, 3))
def test_bills_from_files_equal_bills_from_arrays(seed: int, key: KeyKind, iterations: int) -> None:
    rng = np.random.default_rng(seed)
    periods, n_p, n_c = int(rng.integers(1, 12)), int(rng.integers(1, 3)), int(rng.integers(1, 4))
    starts = [T + 900 * i for i in range(periods)]
    active = rng.random((periods, n_c)) < 0.8
    a = allocate(rng.integers(0, 4000, (periods, n_p)), rng.integers(0, FULL + 1, n_p),
                 rng.integers(0, 3000, (periods, n_c)), key, iterations=iterations,
                 static_keys=rng.integers(0, 100, n_c) * COEF_SCALE,
                 custom_keys=rng.integers(0, 100, (periods, n_c)) * COEF_SCALE, consumer_active=active)
    producers = [f"P{i}" for i in range(n_p)]
    consumers = [f"C{i}" for i in range(n_c)]
    prices = [Price(Role.PRODUCER, Decimal("0.0837")), Price(Role.CONSUMER, Decimal("0.1234")),
              Price(Role.CONSUMER, Decimal("0.0999"), ean="C0")]
    expected = _bills(starts, producers, a.self_consumed_wh, consumers, a.covered_total_wh(), prices)
    with tempfile.TemporaryDirectory() as d:
        write_files(Path(d) / "p.csv", Path(d) / "c.csv", starts, producers, consumers, a, separator="\t")
        p, c = read_production(Path(d) / "p.csv", "\t"), read_consumption(Path(d) / "c.csv", "\t")
    # A consumer never active has no row: bill it as zero, like the engine's arrays do.
    covered = np.zeros((len(p.period_starts), n_c), np.int64)
    for j, ean in enumerate(c.eans):
        covered[np.searchsorted(p.period_starts, c.period_starts), consumers.index(ean)] = c.covered_total_wh()[:, j]
    got = _bills(p.period_starts, list(p.eans), p.self_consumed_wh, consumers, covered, prices)
    assert got == expected
