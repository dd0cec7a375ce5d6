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
Int32Array = npt.NDArray[np.int32]
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

    The (iterations, periods, consumers) arrays are int32 (every value is at most
    :data:`MAX_WH`); sum them with numpy, which accumulates in int64. The columns derived from
    others by a subtraction or a ratio (marked *on use*) are computed on first access and kept.

    Producer side, shape (periods, producers), the guide's production file columns C..H:
        production_wh: raw injection ("Production brute").
        producer_coefficient_pct: % made available ("Coefficient"), 0 where the producer is inactive;
            on use. [%]
        shared_wh: made available to the sharing ("Production allouée au partage").
        self_consumed_wh: consumed by the participants ("Production allouée autoconsommée par le partage").
        unallocated_wh: made available but not consumed, ``shared - self_consumed``
            ("Production non allouée au partage"); on use.
        residual_wh: sold to the producer's supplier, ``production - self_consumed`` ("Allo Production");
            on use.

    Consumer side, shape (iterations, periods, consumers), the consumption file columns D..I:
        coefficient_pct: the consumer's coefficient in the iteration ("Coefficient"); on use. [%]
        demand_wh: consumption still to cover at the start of the iteration ("Prélèvement brut"; in
            iteration 1 the raw consumption); on use.
        offered_wh: share of the pool offered ("Production mise à disposition par le partage").
        covered_wh: ``min(offered, demand)`` ("Prélèvement couvert par le partage").
        surplus_wh: ``offered - covered``, back to the pool ("Surplus de production"); on use.
        from_supplier_wh: ``demand - covered`` ("Allo Consommation"); on use.

    Also: consumption_wh (periods, consumers), the raw consumption; producer_active and
    consumer_active, the masks given to :func:`allocate`. production_wh and consumption_wh are 0
    where the participant is inactive; without masks they are read-only views of the arrays given
    to :func:`allocate` (int64 given: no copy is made).
    """

    production_wh: IntArray
    producer_coefficient: IntArray
    """(periods, producers) coefficients as given, 0 where the producer is inactive. [COEF_SCALE units per %]"""
    shared_wh: IntArray
    self_consumed_wh: IntArray
    consumption_wh: IntArray
    offered_wh: Int32Array
    covered_wh: Int32Array
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
    def producer_coefficient_pct(self) -> FloatArray:
        """(periods, producers) % of the injection made available, computed on first use. [%]"""
        return self.producer_coefficient / COEF_SCALE

    @cached_property
    def unallocated_wh(self) -> IntArray:
        """``shared - self_consumed``, computed on first use. [Wh]"""
        return self.shared_wh - self.self_consumed_wh

    @cached_property
    def residual_wh(self) -> IntArray:
        """``production - self_consumed``, computed on first use. [Wh]"""
        return self.production_wh - self.self_consumed_wh

    @cached_property
    def demand_wh(self) -> Int32Array:
        """(iterations, periods, consumers) consumption still to cover at the start of each iteration,
        computed on first use: the consumption minus what the iterations before covered. [Wh]"""
        iterations = self.covered_wh.shape[0]
        out = np.empty(self.covered_wh.shape, np.int32)
        if iterations:
            out[0] = self.consumption_wh
        for k in range(1, iterations):
            np.subtract(out[k - 1], self.covered_wh[k - 1], out=out[k])
        return out

    @cached_property
    def surplus_wh(self) -> Int32Array:
        """``offered - covered``, computed on first use. [Wh]"""
        return self.offered_wh - self.covered_wh

    @cached_property
    def from_supplier_wh(self) -> Int32Array:
        """``demand - covered``, computed on first use. [Wh]"""
        return self.demand_wh - self.covered_wh

    @property
    def iterations(self) -> int:
        return int(self.covered_wh.shape[0])

    def covered_total_wh(self) -> IntArray:
        """Consumption covered by the sharing over all iterations, (periods, consumers). [Wh]"""
        return self.covered_wh.sum(axis=0)

    def final_from_supplier_wh(self) -> IntArray:
        """Consumption left to the supplier after the last iteration, (periods, consumers). [Wh]"""
        return self.from_supplier_wh[-1]


EXACT_FLOAT = 2**53
"""Every integer below 2^53 is exactly a float64: the float path of the split is used while
``amount * sum(weights) < EXACT_FLOAT`` (see :func:`_split_float`)."""


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
    a = np.asarray(amount, np.int64)
    out = np.empty(w.shape, np.int64)
    if w.shape[1] == 0:
        return out
    fast = a * w.sum(axis=1, dtype=np.float64) < EXACT_FLOAT  # a float product >= 2**53 if the exact one is
    if fast.all():
        scratch = np.empty(w.shape, np.int64)
        _split_float(a, w, out, scratch, scratch)
    elif not fast.any():
        _split_into(a, w, out, np.empty(w.shape, np.int64))
    else:
        for rows in (fast, ~fast):
            part = np.empty((int(rows.sum()), w.shape[1]), np.int64)
            if rows is fast:
                _split_float(a[rows], w[rows], part, np.empty(part.shape, np.int64), np.empty(part.shape, np.int64))
            else:
                _split_into(a[rows], w[rows], part, np.empty(part.shape, np.int64))
            out[rows] = part
    return out


def _split_into(amount: IntArray, weights: npt.NDArray[np.integer], out: npt.NDArray[np.integer],
                scratch: IntArray) -> None:
    """:func:`split_running_total` in int64 into ``out``, with ``scratch`` (same shape, int64) as work space."""
    if weights.shape[1] == 0:
        return
    np.cumsum(weights, axis=1, out=scratch)
    total = scratch[:, -1].copy()
    total[total == 0] = 1
    scratch *= amount[:, None]
    scratch //= total[:, None]
    out[:, 0] = scratch[:, 0]
    np.subtract(scratch[:, 1:], scratch[:, :-1], out=out[:, 1:], casting="same_kind")


def _split_float(amount: npt.NDArray[np.integer], weights: npt.NDArray[np.integer], out: npt.NDArray[np.integer],
                 scratch: IntArray, qbuf: npt.NDArray[np.integer], cumulative: IntArray | None = None) -> None:
    """:func:`_split_into` with a float64 division instead of int64 ``//``: the same result, bit for bit, faster.

    Requires ``amount[p] * sum(weights[p]) < 2**53`` for every row (asserted). ``weights`` may be
    (n,) weights shared by every row, then ``cumulative`` may give their running totals; ``scratch``
    (int64) and ``qbuf`` (integers, for the rounded-down running totals; may be ``scratch``) have
    the shape of ``out``.

    Why it is exact: ``x = amount * C[j]`` is computed in int64, ``t = C[n]``; as ``0 <= x < 2**53``,
    both convert to float64 exactly, and the division is correctly rounded:
    ``|fl(x/t) - x/t| <= (x/t) * 2**-53 < 1/t``. If ``x/t`` is an integer ``m``, ``fl(x/t) = m``;
    otherwise ``x/t`` is at least ``1/t`` away from both ``floor(x/t)`` and ``floor(x/t) + 1``, so
    ``fl(x/t)`` lies strictly between them. Either way truncating the float to an integer (it is
    non-negative) gives ``floor(x/t)`` exactly, as ``//`` does in int64.
    """
    m, n = out.shape
    if n == 0 or m == 0:
        return
    if weights.ndim == 1:
        cs = np.cumsum(weights, dtype=np.int64) if cumulative is None else cumulative
        total = np.full(m, float(cs[-1]))
        np.multiply(amount[:, None], cs, out=scratch)
    else:
        np.cumsum(weights, axis=1, dtype=np.int64, out=scratch)
        total = scratch[:, -1].astype(np.float64)
        scratch *= amount[:, None]
    assert float(np.max(amount * total)) < EXACT_FLOAT, "float split used beyond exact integers"
    total[total == 0] = 1
    np.divide(scratch, total[:, None], out=qbuf, casting="unsafe")  # float -> int truncates: floor, as >= 0
    out[:, 0] = qbuf[:, 0]
    np.subtract(qbuf[:, 1:], qbuf[:, :-1], out=out[:, 1:], casting="same_kind")


def _blocks(live: IntArray, block: int) -> list[tuple[int, int]]:
    """(first, end) periods of blocks of at most ``block`` periods covering every ``live`` period.

    A block starts at a live period and ends after the last live period within reach; dead periods
    in between are computed with an empty pool, which offers nothing, as they must.
    """
    out = []
    i = 0
    while i < len(live):
        lo = int(live[i])
        j = int(np.searchsorted(live, lo + block)) - 1
        out.append((lo, int(live[j]) + 1))
        i = j + 1
    return out


def _read_only(a: IntArray) -> IntArray:
    v = a.view()
    v.flags.writeable = False
    return v


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
    c_all = consumer_active is None or bool(c_act.all())
    # Without activity masks the inputs are used as they are (no copy): the result holds read-only views of them.
    prod = _read_only(prod) if producer_active is None else np.where(p_act, prod, 0)
    row_totals = []
    for name, arr in (("production_wh", prod), ("consumption_wh", cons)):
        total = arr.sum(axis=1)
        if arr.size and total.max() > MAX_WH:
            raise AllocationInputError(f"{name}: a period's total is above {MAX_WH} Wh")
        row_totals.append(total)

    if producer_active is not None:
        coef = np.where(p_act, coef, 0)
    shared = prod * coef
    shared //= FULL
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
    # One allocation for both (measured faster than two: its pages are mapped afresh, in fewer faults).
    offered_k, covered_k = np.zeros((2, *shape3), np.int32)
    if c_all:
        demand_total = row_totals[1]
    else:
        cons = np.where(c_act, cons, 0)
        demand_total = cons.sum(axis=1)
    consumption = _read_only(cons)

    # Iteration-1 weights: one row shared by every period (static key, everybody in), else per period.
    weights_out: npt.NDArray[np.integer] | None = None
    shared_row: npt.NDArray[np.int32] | None = None
    if key is KeyKind.DYNAMIC:
        weight_total = demand_total
    elif key is KeyKind.STATIC and c_all:
        weights_out = np.broadcast_to(base, (n_periods, n_cons))
        shared_row = base.astype(np.int32)  # at most MAX_WH, checked above
        weight_total = np.full(n_periods, int(base.sum()), np.int64)
    else:
        weights_out = base if c_all else np.where(c_act, base, 0)
        weight_total = weights_out.sum(axis=1)

    # A period is computed only if there is something to share and somebody in demand (else nothing is
    # offered, in any iteration). The float split is exact while pool * weights < 2**53 (_split_float);
    # the pool and the weights in demand only decrease over the iterations, so iteration 1 decides.
    pool_live = np.where(demand_total > 0, pool, 0)
    avail_left = pool_live.copy()
    exact_float = avail_left * weight_total < EXACT_FLOAT
    live = np.flatnonzero(avail_left)
    block = max(1, _BLOCK_CELLS // max(1, n_cons))
    cum_shared = None if shared_row is None else np.cumsum(shared_row, dtype=np.int64)

    def run(blocks: list[tuple[int, int]]) -> None:
        """Every iteration of each block of periods, one block after the other (its work arrays stay in cache)."""
        scratch = np.empty((block, n_cons), np.int64)
        qbuf = np.empty((block, n_cons), np.int32)
        mask = np.empty((block, n_cons), bool)
        wbuf = np.empty((block, n_cons), np.int64 if shared_row is None else np.int32)
        demand_buf = np.empty((block, n_cons), np.int32)
        for lo, hi in blocks:
            m = hi - lo
            demand = demand_buf[:m]
            demand[...] = cons[lo:hi]
            avail = avail_left[lo:hi]
            use_float = bool(exact_float[lo:hi].all())
            left = demand_total[lo:hi].copy()
            for k in range(iterations):
                offered, covered = offered_k[k, lo:hi], covered_k[k, lo:hi]
                if key is KeyKind.DYNAMIC:
                    w: npt.NDArray[np.integer] = demand
                elif k == 0:
                    w = shared_row if shared_row is not None else weights_out[lo:hi]  # type: ignore[index]
                else:
                    w1 = shared_row if shared_row is not None else weights_out[lo:hi]  # type: ignore[index]
                    w = np.multiply(np.greater(demand, 0, out=mask[:m]), w1, out=wbuf[:m])
                if use_float:
                    _split_float(avail, w, offered, scratch[:m], qbuf[:m], cum_shared if k == 0 else None)
                else:
                    _split_into(avail, np.broadcast_to(w, (m, n_cons)), offered, scratch[:m])
                np.minimum(offered, demand, out=covered)
                taken = covered.sum(axis=1, dtype=np.int64)
                avail -= taken
                left -= taken
                if k + 1 == iterations or not (avail.any() and left.any()):
                    break
                demand -= covered

    run(_blocks(live, block))

    covered_total = pool_live - avail_left
    self_consumed = np.zeros((n_periods, n_prod), np.int64)
    some = np.flatnonzero(covered_total)
    if some.size:
        self_consumed[some] = split_running_total(covered_total[some], shared[some])
    return Allocation(
        production_wh=prod,
        producer_coefficient=coef,
        shared_wh=shared,
        self_consumed_wh=self_consumed,
        consumption_wh=consumption,
        offered_wh=offered_k,
        covered_wh=covered_k,
        producer_active=np.asarray(p_act),
        consumer_active=np.asarray(c_act),
        key=key,
        key_weights=(np.zeros((n_periods, n_cons), np.int64) if weights_out is None
                     else weights_out.astype(np.int64, copy=False)),
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
