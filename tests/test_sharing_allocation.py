"""Allocation engine: the guide's worked example, hand-computed cases, and properties on random communities."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.sharing.allocation import (
    COEF_SCALE,
    FULL,
    Allocation,
    KeyKind,
    allocate,
    allocate_loop,
    split_running_total,
)
from cloud.sharing.errors import AllocationInputError

PCT = COEF_SCALE


def guide_example() -> Allocation:
    """19/01/2023 15:15: one producer, 1 kWh at 100 %; consumers 0.7 and 0.4 kWh, static 50/50, 2 iterations."""
    return allocate([[1000]], [FULL], [[700, 400]], KeyKind.STATIC, iterations=2, static_keys=[50 * PCT, 50 * PCT])


def test_guide_worked_example_every_cell() -> None:
    a = guide_example()
    # Production file columns C..H: 1, 100, 1, 1, 0, 0.
    assert a.production_wh.tolist() == [[1000]]
    assert a.producer_coefficient_pct.tolist() == [[100.0]]
    assert a.shared_wh.tolist() == [[1000]]
    assert a.self_consumed_wh.tolist() == [[1000]]
    assert a.unallocated_wh.tolist() == [[0]]
    assert a.residual_wh.tolist() == [[0]]
    # Consumption file columns D..I, iteration 1 then 2, EAN ...01 then ...02.
    assert a.coefficient_pct.tolist() == [[[50.0, 50.0]], [[100.0, 0.0]]]
    assert a.demand_wh.tolist() == [[[700, 400]], [[200, 0]]]
    assert a.offered_wh.tolist() == [[[500, 500]], [[100, 0]]]
    assert a.covered_wh.tolist() == [[[500, 400]], [[100, 0]]]
    assert a.surplus_wh.tolist() == [[[0, 100]], [[0, 0]]]
    assert a.from_supplier_wh.tolist() == [[[200, 0]], [[100, 0]]]
    # The guide's summary: ...01 receives 0.6 kWh, ...02 0.4 kWh.
    assert a.covered_total_wh().tolist() == [[600, 400]]


def test_one_iteration_leaves_the_surplus_unallocated() -> None:
    a = allocate([[1000]], [FULL], [[700, 400]], KeyKind.STATIC, iterations=1, static_keys=[50 * PCT, 50 * PCT])
    assert a.covered_wh.tolist() == [[[500, 400]]]
    assert a.self_consumed_wh.tolist() == [[900]]
    assert a.unallocated_wh.tolist() == [[100]]
    assert a.residual_wh.tolist() == [[100]]


def test_producer_coefficient_withholds_part_of_the_injection() -> None:
    # 60 % of 1001 Wh = 600.6 -> 600 Wh shared (rounded down); consumption 1000 takes it all.
    a = allocate([[1001]], [60 * PCT], [[1000]], KeyKind.DYNAMIC, iterations=1)
    assert a.shared_wh.tolist() == [[600]]
    assert a.self_consumed_wh.tolist() == [[600]]
    assert a.unallocated_wh.tolist() == [[0]]
    assert a.residual_wh.tolist() == [[401]]
    assert a.from_supplier_wh.tolist() == [[[400]]]


def test_dynamic_key_is_pro_rata_of_consumption() -> None:
    # 1000 Wh for 300 + 900 Wh of demand: 250 and 750 exactly, coefficients 25 % and 75 %.
    a = allocate([[1000]], [FULL], [[300, 900]], KeyKind.DYNAMIC, iterations=2)
    assert a.coefficient_pct[0].tolist() == [[25.0, 75.0]]
    assert a.covered_wh.sum(axis=0).tolist() == [[250, 750]]
    # Iteration 2 has nothing left to offer.
    assert a.offered_wh[1].tolist() == [[0, 0]]


def test_rounding_by_running_totals() -> None:
    # 100 Wh among three equal keys: running totals 33.3, 66.7, 100 -> 33, 66, 100 -> shares 33, 33, 34.
    assert split_running_total(np.array([100]), np.array([[1, 1, 1]])).tolist() == [[33, 33, 34]]
    # 10 Wh, weights 1:2:7 -> exact; 11 Wh -> running 1.1, 3.3, 11 -> 1, 3, 11 -> shares 1, 2, 8.
    assert split_running_total(np.array([10, 11]), np.array([[1, 2, 7], [1, 2, 7]])).tolist() == [
        [1, 2, 7], [1, 2, 8]]
    # 7 Wh, weights 1:0:1 -> 3, 0, 4 (a zero weight never gets a Wh); all weights zero: nothing divided.
    assert split_running_total(np.array([7, 5]), np.array([[1, 0, 1], [0, 0, 0]])).tolist() == [
        [3, 0, 4], [0, 0, 0]]


def test_self_consumed_split_between_producers_pro_rata() -> None:
    # Producers share 300 and 100 Wh; consumption 200 Wh -> 150 and 50.
    a = allocate([[300, 100]], [FULL, FULL], [[200]], KeyKind.DYNAMIC, iterations=1)
    assert a.self_consumed_wh.tolist() == [[150, 50]]
    assert a.unallocated_wh.tolist() == [[150, 50]]


def test_zero_production_and_zero_consumption() -> None:
    a = allocate([[0], [500]], [FULL], [[400, 300], [0, 0]], KeyKind.STATIC, iterations=2,
                 static_keys=[50 * PCT, 50 * PCT])
    assert a.covered_wh.sum(axis=0).tolist() == [[0, 0], [0, 0]]
    assert a.from_supplier_wh[-1].tolist() == [[400, 300], [0, 0]]
    assert a.unallocated_wh.tolist() == [[0], [500]]
    # No demand in period 2: iteration 2 coefficients are 0 (nobody left in demand).
    assert a.coefficient_pct[1, 1].tolist() == [0.0, 0.0]


def test_dynamic_key_without_consumption_has_zero_coefficients() -> None:
    a = allocate([[500]], [FULL], [[0, 0]], KeyKind.DYNAMIC, iterations=1)
    assert a.coefficient_pct.tolist() == [[[0.0, 0.0]]]
    assert a.unallocated_wh.tolist() == [[500]]


def test_participant_joining_mid_month_is_out_of_the_allocation_before() -> None:
    # Consumer B joins in period 2; producer P leaves after period 1 (a second producer Q stays).
    a = allocate(
        [[400, 600], [400, 600]], [FULL, FULL], [[1000, 1000], [1000, 1000]], KeyKind.STATIC, iterations=1,
        static_keys=[50 * PCT, 50 * PCT],
        consumer_active=[[True, False], [True, True]],
        producer_active=[[True, True], [False, True]],
    )
    assert a.coefficient_pct[0].tolist() == [[100.0, 0.0], [50.0, 50.0]]
    assert a.covered_wh[0].tolist() == [[1000, 0], [300, 300]]
    assert a.consumption_wh.tolist() == [[1000, 0], [1000, 1000]]
    assert a.production_wh.tolist() == [[400, 600], [0, 600]]
    assert a.self_consumed_wh.tolist() == [[400, 600], [0, 600]]


def test_custom_keys_per_period() -> None:
    a = allocate([[1000], [1000]], [FULL], [[1000, 1000], [1000, 1000]], KeyKind.CUSTOM, iterations=1,
                 custom_keys=[[20 * PCT, 80 * PCT], [100 * PCT, 0]])
    assert a.covered_wh[0].tolist() == [[200, 800], [1000, 0]]


def test_bad_inputs_are_refused_with_the_reason() -> None:
    with pytest.raises(AllocationInputError, match="negative value -1"):
        allocate([[-1]], [FULL], [[1]], KeyKind.DYNAMIC, iterations=1)
    with pytest.raises(AllocationInputError, match="static_keys"):
        allocate([[1]], [FULL], [[1]], KeyKind.STATIC, iterations=1)
    with pytest.raises(AllocationInputError, match="same number of periods"):
        allocate([[1], [2]], [FULL], [[1]], KeyKind.DYNAMIC, iterations=1)
    with pytest.raises(AllocationInputError, match="integers"):
        allocate([[1.5]], [FULL], [[1]], KeyKind.DYNAMIC, iterations=1)
    with pytest.raises(AllocationInputError, match="above 100 %"):
        allocate([[1]], [FULL + 1], [[1]], KeyKind.DYNAMIC, iterations=1)


# --- properties ----------------------------------------------------------------------------------------------

energy = st.one_of(st.just(0), st.integers(0, 50), st.integers(0, 5000))


@st.composite
def communities(draw: st.DrawFn) -> dict:
    periods = draw(st.integers(1, 5))
    n_prod = draw(st.integers(1, 3))
    n_cons = draw(st.integers(1, 5))
    key = draw(st.sampled_from(list(KeyKind)))
    zero_prod = draw(st.booleans())
    prod = [[0 if zero_prod else draw(energy) for _ in range(n_prod)] for _ in range(periods)]
    cons = [[draw(energy) for _ in range(n_cons)] for _ in range(periods)]
    coef = [draw(st.sampled_from([0, FULL, 50 * PCT, draw(st.integers(0, FULL))])) for _ in range(n_prod)]
    # Entry (first active period) and exit (first inactive period) per participant.
    def mask(n: int) -> list[list[bool]]:
        spans = [(draw(st.integers(0, periods)), draw(st.integers(0, periods))) for _ in range(n)]
        return [[lo <= p < max(lo, hi) or (lo == 0 and hi == 0) for lo, hi in spans] for p in range(periods)]
    return dict(
        production_wh=prod, producer_coefficient=coef, consumption_wh=cons, key=key,
        iterations=draw(st.integers(1, 4)),
        static_keys=[draw(st.integers(0, FULL)) for _ in range(n_cons)],
        custom_keys=[[draw(st.integers(0, FULL)) for _ in range(n_cons)] for _ in range(periods)],
        producer_active=mask(n_prod), consumer_active=mask(n_cons),
    )


@settings(max_examples=200, deadline=None)
@given(communities())
def test_identities_hold_on_random_communities(c: dict) -> None:
    a = allocate(**c)
    pa, ca = np.array(c["producer_active"]), np.array(c["consumer_active"])
    raw_p, raw_c = np.array(c["production_wh"]), np.array(c["consumption_wh"])
    # Inactive participants are out of the allocation.
    assert (a.production_wh == np.where(pa, raw_p, 0)).all()
    assert (a.consumption_wh == np.where(ca, raw_c, 0)).all()
    assert (a.coefficient_pct[:, ~ca] == 0).all() and (a.producer_coefficient_pct[~pa] == 0).all()
    # Producer side.
    assert (a.shared_wh <= a.production_wh).all()
    assert (a.self_consumed_wh + a.unallocated_wh == a.shared_wh).all()
    assert (a.residual_wh == a.production_wh - a.self_consumed_wh).all()
    assert (a.self_consumed_wh >= 0).all() and (a.unallocated_wh >= 0).all()
    # Consumer side, per iteration.
    assert (a.covered_wh + a.from_supplier_wh == a.demand_wh).all()
    assert (a.covered_wh + a.surplus_wh == a.offered_wh).all()
    assert (a.covered_wh <= a.demand_wh).all() and (a.surplus_wh >= 0).all()
    assert (a.demand_wh[0] == a.consumption_wh).all()
    assert (a.demand_wh[1:] == a.demand_wh[:-1] - a.covered_wh[:-1]).all()
    # The pool offered in iteration k is what iterations before it left.
    pool = a.shared_wh.sum(axis=1)
    for k in range(a.iterations):
        left = pool - a.covered_wh[:k].sum(axis=(0, 2))
        offered = a.offered_wh[k].sum(axis=1)
        assert ((offered == left) | (offered == 0)).all()
    # Nobody receives more than it consumes; what producers sell to the sharing is what consumers got.
    total = a.covered_total_wh()
    assert (total <= a.consumption_wh).all()
    assert (total + a.final_from_supplier_wh() == a.consumption_wh).all()
    assert (total.sum(axis=1) == a.self_consumed_wh.sum(axis=1)).all()
    # Coefficients of an iteration add up to 100 % or are all 0.
    sums = a.coefficient_pct.sum(axis=2)
    assert (np.isclose(sums, 100.0) | (sums == 0)).all()


@settings(max_examples=100, deadline=None)
@given(communities())
def test_dynamic_key_shares_everything_it_can_in_one_iteration(c: dict) -> None:
    c["key"] = KeyKind.DYNAMIC
    a = allocate(**c)
    leftover = a.unallocated_wh.sum(axis=1)
    demand = a.final_from_supplier_wh().sum(axis=1)
    assert ((leftover == 0) | (demand == 0)).all()


@settings(max_examples=100, deadline=None)
@given(communities())
def test_enough_iterations_exhaust_pool_or_keyed_demand(c: dict) -> None:
    # Each iteration fills at least one consumer or empties the pool; iteration 1 may go to idle consumers.
    c["key"] = KeyKind.STATIC
    n_cons = len(c["static_keys"])
    c["iterations"] = n_cons + 1
    a = allocate(**c)
    leftover = a.unallocated_wh.sum(axis=1)
    keyed = np.array(c["static_keys"]) > 0
    demand = (a.final_from_supplier_wh() * keyed).sum(axis=1)
    assert ((leftover == 0) | (demand == 0)).all()


@settings(max_examples=100, deadline=None)
@given(communities())
def test_vectorised_engine_matches_the_per_period_loop(c: dict) -> None:
    coef = c["producer_coefficient"]
    a = allocate(c["production_wh"], coef, c["consumption_wh"], KeyKind.STATIC, iterations=c["iterations"],
                 static_keys=c["static_keys"])
    self_consumed, covered = allocate_loop(c["production_wh"], coef, c["consumption_wh"], c["static_keys"],
                                           c["iterations"])
    assert a.self_consumed_wh.tolist() == self_consumed
    assert a.covered_wh.tolist() == covered


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=1, max_size=6)),
                min_size=1, max_size=4).filter(lambda rows: len({len(w) for _, w in rows}) == 1))
def test_split_shares_are_exact_shares_rounded_down_or_up(rows: list[tuple[int, list[int]]]) -> None:
    amount = np.array([a for a, _ in rows], np.int64)
    weights = np.array([w for _, w in rows], np.int64)
    shares = split_running_total(amount, weights)
    for (a, w), got in zip(rows, shares.tolist()):
        total = sum(w)
        if total == 0:
            assert got == [0] * len(w)
            continue
        assert sum(got) == a
        for wj, sj in zip(w, got):
            # a * wj / total rounded down or up, compared exactly in integers.
            assert (a * wj) // total <= sj <= -(-(a * wj) // total)
            assert wj > 0 or sj == 0


# --- the fast paths: float division, blocks of periods, periods skipped ---------------------------------------


def _exact_split(amount: int, weights: list[int]) -> list[int]:
    total = sum(weights)
    if total == 0:
        return [0] * len(weights)
    bounds = [amount * sum(weights[: j + 1]) // total for j in range(len(weights))]
    return [b - a for a, b in zip([0] + bounds, bounds)]


def test_split_beyond_exact_floats_uses_integers() -> None:
    # Row 1: 2^31-1 Wh among weights adding up to ~2^32: the products pass 2^53, the int64 path divides.
    # Row 2: small numbers, the float path. Both rows in one call must give the exact Python answer.
    amount = np.array([2**31 - 1, 1000])
    weights = np.array([[2**31 - 1, 3, 2**31 - 5], [1, 1, 1]])
    assert (2**31 - 1) * int(weights[0].sum()) >= 2**53
    assert split_running_total(amount, weights).tolist() == [
        _exact_split(2**31 - 1, [2**31 - 1, 3, 2**31 - 5]), [333, 333, 334]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**31 - 1), st.lists(st.integers(0, 2**31 - 1), min_size=3, max_size=3)),
                min_size=1, max_size=4).filter(lambda rows: all(a * sum(w) < 2**63 for a, w in rows)))
def test_split_with_large_numbers_is_exact(rows: list[tuple[int, list[int]]]) -> None:
    amount = np.array([a for a, _ in rows], np.int64)
    weights = np.array([w for _, w in rows], np.int64)
    assert split_running_total(amount, weights).tolist() == [_exact_split(a, w) for a, w in rows]


@settings(max_examples=100, deadline=None)
@given(communities(), st.lists(st.integers(2**28, 2**31 - 1), min_size=5, max_size=5), st.integers(1, 2**23))
def test_engine_matches_the_loop_with_large_keys_and_pools(c: dict, big_keys: list[int], scale: int) -> None:
    # Keys near MAX_WH and pools up to 3 x 2^27: some periods pass 2^53 (integer path), others not (float path).
    n_cons = len(c["static_keys"])
    keys = big_keys[:n_cons]
    prod = [[min(e * scale, 2**27) for e in row] for row in c["production_wh"]]  # pool * keys < 2**63
    a = allocate(prod, c["producer_coefficient"], c["consumption_wh"], KeyKind.STATIC, iterations=c["iterations"],
                 static_keys=keys)
    self_consumed, covered = allocate_loop(prod, c["producer_coefficient"], c["consumption_wh"], keys,
                                           c["iterations"])
    assert a.self_consumed_wh.tolist() == self_consumed
    assert a.covered_wh.tolist() == covered


def test_many_periods_in_blocks_match_the_loop() -> None:
    # 700 consumers: blocks of 93 periods; nights without production split the live periods into runs.
    rng = np.random.default_rng(3)
    periods, n_cons = 400, 700
    prod = rng.integers(0, 5000, (periods, 4))
    prod[(np.arange(periods) % 96) < 30] = 0
    cons = rng.integers(0, 100, (periods, n_cons))
    cons[rng.random((periods, n_cons)) < 0.3] = 0
    cons[250] = 0  # a sunny period nobody consumes in: nothing offered
    keys = rng.integers(0, 50, n_cons) * COEF_SCALE
    coef = [FULL, 80 * PCT, FULL, 0]
    a = allocate(prod, coef, cons, KeyKind.STATIC, iterations=3, static_keys=keys)
    self_consumed, covered = allocate_loop(prod.tolist(), coef, cons.tolist(), keys.tolist(), 3)
    assert a.self_consumed_wh.tolist() == self_consumed
    assert a.covered_wh.tolist() == covered
    assert a.offered_wh[:, 250].sum() == 0 and a.unallocated_wh[250].sum() == a.shared_wh[250].sum() > 0


def test_no_offer_in_a_period_without_demand_whatever_the_other_periods() -> None:
    # Period 2 has 500 Wh to share but no consumption: nothing is offered in it, in any iteration, even though
    # period 1 (computed in the same block) has consumption to cover.
    a = allocate([[1000], [500]], [FULL], [[700, 400], [0, 0]], KeyKind.STATIC, iterations=2,
                 static_keys=[50 * PCT, 50 * PCT])
    assert a.offered_wh.tolist() == [[[500, 500], [0, 0]], [[100, 0], [0, 0]]]
    assert a.unallocated_wh.tolist() == [[0], [500]]


def test_inputs_without_masks_are_kept_read_only() -> None:
    cons = np.array([[700, 400]], np.int64)
    a = allocate([[1000]], [FULL], cons, KeyKind.DYNAMIC, iterations=2)
    assert not a.consumption_wh.flags.writeable and not a.production_wh.flags.writeable
    assert a.consumption_wh.tolist() == [[700, 400]]
    # 1000 Wh for 1100 Wh of demand: 636 and 364 covered (running totals 636.36 -> 636, 1000).
    assert a.demand_wh.tolist() == [[[700, 400]], [[64, 36]]]


@pytest.mark.parametrize("key", [KeyKind.DYNAMIC, KeyKind.CUSTOM, KeyKind.STATIC])
def test_blocks_of_periods_equal_periods_one_by_one(key: KeyKind) -> None:
    # Periods are independent: the month at once (in blocks, some periods skipped) equals each period alone.
    rng = np.random.default_rng(7)
    periods, n_cons = 150, 1000
    prod = rng.integers(0, 3000, (periods, 2))
    prod[40:60] = 0
    cons = rng.integers(0, 40, (periods, n_cons))
    cons[rng.random((periods, n_cons)) < 0.4] = 0
    cons[70] = 0
    active = rng.random((periods, n_cons)) < 0.9
    custom = rng.integers(0, 100, (periods, n_cons)) * PCT
    static = rng.integers(0, 100, n_cons) * PCT
    kw = dict(iterations=3, static_keys=static, consumer_active=active)
    a = allocate(prod, [FULL, 60 * PCT], cons, key, custom_keys=custom, **kw)
    for p in range(periods):
        one = allocate(prod[p:p + 1], [FULL, 60 * PCT], cons[p:p + 1], key, custom_keys=custom[p:p + 1],
                       iterations=3, static_keys=static, consumer_active=active[p:p + 1])
        assert (one.offered_wh[:, 0] == a.offered_wh[:, p]).all(), p
        assert (one.covered_wh[:, 0] == a.covered_wh[:, p]).all(), p
        assert (one.self_consumed_wh[0] == a.self_consumed_wh[p]).all(), p
