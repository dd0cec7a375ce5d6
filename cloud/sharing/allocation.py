"""Allocation of the producers' injection to the consumers, per 15-minute period, by successive iterations.

Pure functions over numpy arrays shaped (periods x participants); no I/O. The model follows the
DSO representative's guide (docs/sharing.md has the worked example):

* every producer makes ``coefficient`` % of its raw injection available to the sharing; the
  available energy of all producers is pooled per period;
* in each iteration, each consumer is offered its share of what remains in the pool, according to
  its coefficient; it takes what it needs (at most its remaining consumption), the rest is surplus
  that goes back to the pool for the next iteration;
* iteration 1 uses the allocation key: ``static`` (a fixed weight per consumer), ``dynamic``
  (pro rata of each consumer's consumption in the period) or ``custom`` (a weight per consumer per
  period); from iteration 2 on, the same weights are renormalised among the consumers that still
  have consumption to cover (``dynamic``: pro rata of the consumption still to cover);
* after the last iteration, what remains in the pool is "not allocated"; the consumption covered
  in all iterations is attributed back to the producers pro rata of what each made available.

Units and rounding: energies are integers [Wh] (the meters' own resolution), so every identity is
exact. Whenever an integer amount is divided between several parties (the pool among consumers,
the covered total among producers), the parties are taken in their listed order and each share is
the difference of the rounded-down running totals (:func:`split_running_total`): every share is
its exact pro-rata value rounded down or up, and the shares add up to the amount divided. The
energy a producer makes available, ``raw * coefficient``, is rounded down; the Wh withheld by
rounding is sold to the supplier like the part of the injection the coefficient keeps out of the
sharing.

Weights (keys and producer coefficients) are integers in :data:`COEF_SCALE` units per percent
(``100 %`` = ``100 * COEF_SCALE``) so that shares are computed exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from cloud.sharing.errors import AllocationInputError

COEF_SCALE = 1_000_000
"""Integer units of a coefficient or key per percent: 1 unit = 1e-6 %."""

FULL = 100 * COEF_SCALE
"""A coefficient of 100 % in :data:`COEF_SCALE` units."""

_BLOCK_CELLS = 64 * 1024
"""Periods x consumers computed at a time (a few 512 kB work arrays, so they stay in cache)."""

MAX_WH = 2**31 - 1
"""Largest raw energy and largest per-period total accepted [Wh]; keeps every product within int64."""

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


class KeyKind(str, enum.Enum):
    """How consumers' coefficients are set in iteration 1 (see the module docstring)."""

    STATIC = "static"
    DYNAMIC = "dynamic"
    CUSTOM = "custom"


@dataclass(frozen=True)
class Allocation:
    """Result of :func:`allocate`; every energy is an integer array [Wh].

    The (iterations, periods, consumers) arrays are int32 views (every value is at most
    :data:`MAX_WH`); sum them with numpy, which accumulates in int64.

    Producer side, shape (periods, producers), the guide's production file columns C..H:
        production_wh: raw injection ("Production brute").
        producer_coefficient_pct: % made available ("Coefficient"), 0 where the producer is inactive. [%]
        shared_wh: made available to the sharing ("Production allouée au partage").
        self_consumed_wh: consumed by the participants ("Production allouée autoconsommée par le partage").
        unallocated_wh: made available but not consumed, ``shared - self_consumed``
            ("Production non allouée au partage").
        residual_wh: sold to the producer's supplier, ``production - self_consumed`` ("Allo Production").

    Consumer side, shape (iterations, periods, consumers), the consumption file columns D..I:
        coefficient_pct: the consumer's coefficient in the iteration ("Coefficient"). [%]
        demand_wh: consumption still to cover at the start of the iteration ("Prélèvement brut"; in
            iteration 1 the raw consumption).
        offered_wh: share of the pool offered ("Production mise à disposition par le partage").
        covered_wh: ``min(offered, demand)`` ("Prélèvement couvert par le partage").
        surplus_wh: ``offered - covered``, back to the pool ("Surplus de production").
        from_supplier_wh: ``demand - covered`` ("Allo Consommation").

    Also: consumption_wh (periods, consumers), the raw consumption; producer_active and
    consumer_active, the masks given to :func:`allocate`.
    """

    production_wh: IntArray
    producer_coefficient_pct: FloatArray
    shared_wh: IntArray
    self_consumed_wh: IntArray
    unallocated_wh: IntArray
    residual_wh: IntArray
    consumption_wh: IntArray
    demand_wh: IntArray
    offered_wh: IntArray
    covered_wh: IntArray
    producer_active: BoolArray
    consumer_active: BoolArray
    key: KeyKind
    key_weights: IntArray
    """(periods, consumers) iteration-1 weights of ``static``/``custom`` keys, 0 where inactive."""

    @cached_property
    def coefficient_pct(self) -> FloatArray:
        """(iterations, periods, consumers) coefficients, computed on first use. [%]"""
        out = np.zeros(self.demand_wh.shape)
        for k in range(self.iterations):
            if self.key is KeyKind.DYNAMIC:
                w = self.demand_wh[k]
            elif k == 0:
                w = self.key_weights
            else:
                w = np.where(self.demand_wh[k] > 0, self.key_weights, 0)
            total = w.sum(axis=1, keepdims=True)
            np.divide(100.0 * w, total, out=out[k], where=total > 0)
        return out

    @cached_property
    def surplus_wh(self) -> IntArray:
        """``offered - covered``, computed on first use. [Wh]"""
        return self.offered_wh - self.covered_wh

    @cached_property
    def from_supplier_wh(self) -> IntArray:
        """``demand - covered``, computed on first use. [Wh]"""
        return self.demand_wh - self.covered_wh

    @property
    def iterations(self) -> int:
        return int(self.demand_wh.shape[0])

    def covered_total_wh(self) -> IntArray:
        """Consumption covered by the sharing over all iterations, (periods, consumers). [Wh]"""
        return self.covered_wh.sum(axis=0)

    def final_from_supplier_wh(self) -> IntArray:
        """Consumption left to the supplier after the last iteration, (periods, consumers). [Wh]"""
        return self.from_supplier_wh[-1]


def split_running_total(amount: IntArray, weights: IntArray) -> IntArray:
    """Divide ``amount[p]`` among the columns of ``weights[p]`` pro rata, in whole units.

    Args:
        amount: (periods,) non-negative integers to divide. [Wh]
        weights: (periods, n) non-negative integer weights; ``amount * sum(weights)`` must fit in int64.

    Returns (periods, n) shares: the differences of the rounded-down running totals,
    ``floor(amount * C[j] / C[n]) - floor(amount * C[j-1] / C[n])`` where ``C[j]`` is the sum of the
    first ``j`` weights. Each share is the exact pro-rata share rounded down or up (less than 1 Wh
    away), a zero weight gets 0, and each row sums to ``amount`` exactly. A row whose weights are
    all zero gets nothing (its amount is not divided).
    """
    w = np.asarray(weights, np.int64)
    out = np.empty(w.shape, np.int64)
    _split_into(np.asarray(amount, np.int64), w, out, np.empty(w.shape, np.int64))
    return out


def _split_into(amount: IntArray, weights: npt.NDArray[np.integer], out: npt.NDArray[np.integer],
                scratch: IntArray) -> None:
    """:func:`split_running_total` writing into ``out``, with ``scratch`` (same shape, int64) as work space."""
    if weights.shape[1] == 0:
        return
    np.cumsum(weights, axis=1, out=scratch)
    total = scratch[:, -1].copy()
    total[total == 0] = 1
    scratch *= amount[:, None]
    scratch //= total[:, None]
    out[:, 0] = scratch[:, 0]
    np.subtract(scratch[:, 1:], scratch[:, :-1], out=out[:, 1:], casting="same_kind")


def _as_int(name: str, a: npt.ArrayLike, shape: tuple[int, ...]) -> IntArray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iub":
        raise AllocationInputError(f"{name}: must be integers [Wh or coefficient units], got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.shape != shape:
        try:
            arr = np.broadcast_to(arr, shape)
        except ValueError:
            raise AllocationInputError(f"{name}: shape {arr.shape} does not fit {shape}") from None
    if arr.size and arr.min() < 0:
        p = np.argwhere(arr < 0)[0]
        raise AllocationInputError(f"{name}: negative value {arr[tuple(p)]} at index {tuple(int(i) for i in p)}")
    return arr


def allocate(
    production_wh: npt.ArrayLike,
    producer_coefficient: npt.ArrayLike,
    consumption_wh: npt.ArrayLike,
    key: KeyKind,
    *,
    iterations: int,
    static_keys: npt.ArrayLike | None = None,
    custom_keys: npt.ArrayLike | None = None,
    producer_active: npt.ArrayLike | None = None,
    consumer_active: npt.ArrayLike | None = None,
) -> Allocation:
    """Allocate the shared production to the consumers for every period.

    Args:
        production_wh: (periods, producers) raw injection. [Wh]
        producer_coefficient: (producers,) or (periods, producers) share of the injection made
            available, 0..:data:`FULL`. [COEF_SCALE units per %]
        consumption_wh: (periods, consumers) raw consumption. [Wh]
        key: which key sets the coefficients in iteration 1.
        iterations: number of iterations, at least 1 (the guide's example uses 2). Iterations after
            the pool or the demand is exhausted offer nothing; their rows are still produced.
        static_keys: (consumers,) weights, required for ``static``; renormalised among the active
            consumers, so they need not add up to 100 %. [COEF_SCALE units per %]
        custom_keys: (periods, consumers) weights, required for ``custom``; renormalised per period
            among the active consumers. [COEF_SCALE units per %]
        producer_active, consumer_active: (periods, n) booleans, default all True. An inactive
            participant (outside its entry/exit dates, or excluded for missing data) is out of the
            allocation: its energies count as 0 and its coefficients are 0.

    Edge cases: a period without production or without consumption allocates nothing; with
    ``dynamic`` keys and no consumption, every coefficient is 0; with ``static`` or ``custom`` keys
    whose active weights are all 0, nothing is offered and the pool stays unallocated.

    Raises AllocationInputError on wrong shapes, negative values, or energies above :data:`MAX_WH`.
    """
    prod = np.asarray(production_wh)
    cons = np.asarray(consumption_wh)
    if prod.ndim != 2 or cons.ndim != 2 or prod.shape[0] != cons.shape[0]:
        raise AllocationInputError(
            f"production_wh and consumption_wh must be (periods, participants) with the same number of periods; "
            f"got {prod.shape} and {cons.shape}"
        )
    if iterations < 1:
        raise AllocationInputError(f"iterations must be at least 1, got {iterations}")
    n_periods, n_prod = prod.shape
    n_cons = cons.shape[1]
    prod = _as_int("production_wh", prod, prod.shape)
    cons = _as_int("consumption_wh", cons, cons.shape)
    coef = _as_int("producer_coefficient", producer_coefficient, (n_periods, n_prod))
    if coef.size and coef.max() > FULL:
        raise AllocationInputError(f"producer_coefficient: above 100 % ({coef.max() / COEF_SCALE} %)")
    p_act = np.ones((n_periods, n_prod), bool) if producer_active is None else np.broadcast_to(
        np.asarray(producer_active, bool), (n_periods, n_prod))
    c_act = np.ones((n_periods, n_cons), bool) if consumer_active is None else np.broadcast_to(
        np.asarray(consumer_active, bool), (n_periods, n_cons))
    prod = np.where(p_act, prod, 0)
    for name, arr in (("production_wh", prod), ("consumption_wh", cons)):
        if arr.size and arr.sum(axis=1).max() > MAX_WH:
            raise AllocationInputError(f"{name}: a period's total is above {MAX_WH} Wh")

    coef = np.where(p_act, coef, 0)
    shared = prod * coef // FULL
    pool = shared.sum(axis=1)

    base: npt.NDArray[np.integer]
    if key is KeyKind.STATIC:
        if static_keys is None:
            raise AllocationInputError("static key: static_keys (one weight per consumer) is required")
        base = _as_int("static_keys", static_keys, (n_cons,))
    elif key is KeyKind.CUSTOM:
        if custom_keys is None:
            raise AllocationInputError("custom key: custom_keys (one weight per consumer per period) is required")
        base = _as_int("custom_keys", custom_keys, (n_periods, n_cons))
    else:
        base = cons
    if key is not KeyKind.DYNAMIC and base.size:
        if base.max() > MAX_WH:
            raise AllocationInputError(f"keys: a weight is above {MAX_WH}")
        if pool.size and int(pool.max()) * int(base.sum(axis=-1).max()) >= 2**63:
            raise AllocationInputError("keys: the weights add up to too much for exact integer shares; "
                                       "give keys in COEF_SCALE units per % adding up to about 100 %")

    # int32 (every value is at most MAX_WH) halves the memory the month's arrays take and move.
    shape3 = (iterations, n_periods, n_cons)
    demand_k = np.empty(shape3, np.int32)
    offered_k = np.zeros(shape3, np.int32)
    covered_k = np.zeros(shape3, np.int32)
    weights_out = np.zeros((n_periods, n_cons), np.int64) if key is not KeyKind.DYNAMIC else None
    avail_left = pool.copy()
    # Periods are independent: they are computed by blocks small enough for the work arrays to stay in cache.
    block = max(1, min(n_periods, _BLOCK_CELLS // max(1, n_cons)))
    scratch = np.empty((block, n_cons), np.int64)
    wbuf = np.empty((block, n_cons), np.int64)
    for lo in range(0, n_periods, block):
        sl = slice(lo, min(lo + block, n_periods))
        m = sl.stop - lo
        np.multiply(cons[sl], c_act[sl], out=demand_k[0, sl], casting="unsafe")
        if weights_out is not None:
            np.multiply(base if base.ndim == 1 else base[sl], c_act[sl], out=weights_out[sl])
        avail = avail_left[sl]
        for k in range(iterations):
            demand = demand_k[k, sl]
            if avail.any() and demand.any():
                if key is KeyKind.DYNAMIC:
                    w: npt.NDArray[np.integer] = demand
                elif k == 0:
                    assert weights_out is not None
                    w = weights_out[sl]
                else:
                    assert weights_out is not None
                    w = np.multiply(weights_out[sl], demand > 0, out=wbuf[:m])
                _split_into(avail, w, offered_k[k, sl], scratch[:m])
                np.minimum(offered_k[k, sl], demand, out=covered_k[k, sl])
                avail -= covered_k[k, sl].sum(axis=1, dtype=np.int64)
            if k + 1 < iterations:
                np.subtract(demand, covered_k[k, sl], out=demand_k[k + 1, sl])
    avail = avail_left

    covered_total = pool - avail
    self_consumed = split_running_total(covered_total, shared)
    return Allocation(
        production_wh=prod,
        producer_coefficient_pct=coef / COEF_SCALE,
        shared_wh=shared,
        self_consumed_wh=self_consumed,
        unallocated_wh=shared - self_consumed,
        residual_wh=prod - self_consumed,
        consumption_wh=demand_k[0],
        demand_wh=demand_k,
        offered_wh=offered_k,
        covered_wh=covered_k,
        producer_active=np.asarray(p_act),
        consumer_active=np.asarray(c_act),
        key=key,
        key_weights=weights_out if weights_out is not None else np.zeros((n_periods, n_cons), np.int64),
    )


def allocate_loop(
    production_wh: list[list[int]],
    producer_coefficient: list[int],
    consumption_wh: list[list[int]],
    static_keys: list[int],
    iterations: int,
) -> tuple[list[list[int]], list[list[list[int]]]]:
    """Reference implementation with static keys, one period at a time in plain Python.

    Same rules and rounding as :func:`allocate` (all participants active). Used by the tests as an
    independent check and by ``bench/sharing.py`` as the baseline. Returns (self-consumed per
    period and producer, covered per iteration, period and consumer). [Wh]
    """

    def split(amount: int, weights: list[int]) -> list[int]:
        total = sum(weights)
        if total == 0:
            return [0] * len(weights)
        shares = []
        running = previous = 0
        for w in weights:
            running += w
            bound = amount * running // total
            shares.append(bound - previous)
            previous = bound
        return shares

    self_consumed: list[list[int]] = []
    covered_all: list[list[list[int]]] = [[] for _ in range(iterations)]
    for prod_p, cons_p in zip(production_wh, consumption_wh):
        shared = [e * c // FULL for e, c in zip(prod_p, producer_coefficient)]
        avail = sum(shared)
        demand = list(cons_p)
        total_covered = 0
        for k in range(iterations):
            w = list(static_keys) if k == 0 else [s if d > 0 else 0 for s, d in zip(static_keys, demand)]
            if avail == 0 or not any(demand):
                covered_all[k].append([0] * len(demand))
                continue
            offered = split(avail, w)
            covered = [min(o, d) for o, d in zip(offered, demand)]
            demand = [d - c for d, c in zip(demand, covered)]
            avail -= sum(covered)
            total_covered += sum(covered)
            covered_all[k].append(covered)
        self_consumed.append(split(total_covered, shared))
    return self_consumed, covered_all
