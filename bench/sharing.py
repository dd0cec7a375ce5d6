"""Speed of the energy-sharing allocation engine, as a ratio to a per-period Python loop measured in the same run.

Run from the repository root: ``python bench/sharing.py`` (about 10 s).

What is measured (best of a few repeats, ``time.perf_counter``): one month of 31 days (2,976 quarter-hours) for a
community of 1,000 participants, 100 producers and 900 consumers, static keys, 3 iterations, energies drawn at
random (seeded) so that iterations 2 and 3 have surplus to re-offer.

* result: ``cloud.sharing.allocation.allocate`` on the whole month (numpy, vectorised over periods and
  participants; it builds every output array of the consumption file except the coefficients, computed on use);
* baseline: ``allocate_loop``, the same rules and rounding in plain Python, one period at a time, on the same
  month (best of 2); the two results are checked equal before any figure is printed.

How to read the ratio: ratio = loop time / engine time (how many times faster the engine is). Target: engine
under 1 s for the month and ratio at least 50.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from cloud.sharing.allocation import COEF_SCALE, FULL, KeyKind, allocate, allocate_loop  # noqa: E402

PERIODS = 31 * 96
PRODUCERS = 100
CONSUMERS = 900
ITERATIONS = 3
REPEATS = 5
SEED = 5


def best_time(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    """Shortest wall time of ``fn()`` over ``repeats`` runs. [s]"""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def community() -> dict[str, Any]:
    """Random month: producers 0-20 kWh per quarter-hour (a third of periods at night: 0), consumers 0-1.5 kWh."""
    rng = np.random.default_rng(SEED)
    production = rng.integers(0, 20_000, (PERIODS, PRODUCERS))
    production[(np.arange(PERIODS) % 96 < 28) | (np.arange(PERIODS) % 96 >= 84)] = 0
    consumption = rng.integers(0, 1_500, (PERIODS, CONSUMERS))
    consumption[rng.random((PERIODS, CONSUMERS)) < 0.2] = 0
    return dict(
        production_wh=production,
        producer_coefficient=np.full(PRODUCERS, FULL),
        consumption_wh=consumption,
        static_keys=rng.integers(1, 1_000, CONSUMERS) * COEF_SCALE // 100,
    )


def main() -> int:
    started = time.perf_counter()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}", flush=True)
    c = community()

    def engine() -> Any:
        return allocate(c["production_wh"], c["producer_coefficient"], c["consumption_wh"], KeyKind.STATIC,
                        iterations=ITERATIONS, static_keys=c["static_keys"])

    a = engine()
    t_engine = best_time(engine)

    prod_l = c["production_wh"].tolist()
    cons_l = c["consumption_wh"].tolist()
    coef_l = c["producer_coefficient"].tolist()
    keys_l = c["static_keys"].tolist()
    result: dict[str, Any] = {}

    def loop() -> None:
        result["v"] = allocate_loop(prod_l, coef_l, cons_l, keys_l, ITERATIONS)

    t_loop = best_time(loop, 2)
    self_consumed, covered = result["v"]
    if self_consumed != a.self_consumed_wh.tolist() or covered != a.covered_wh.tolist():
        print("ERROR: the engine and the loop disagree", file=sys.stderr)
        return 1

    surplus_offered = int(a.offered_wh[1:].sum())
    print(f"community: {PRODUCERS} producers + {CONSUMERS} consumers, {PERIODS} periods, {ITERATIONS} iterations; "
          f"{int(a.covered_wh.sum()) / 1e6:,.1f} MWh shared, {surplus_offered / 1e6:,.1f} MWh re-offered in "
          f"iterations 2-{ITERATIONS}")
    print()
    head = ("measurement", "time [s]", "baseline", "baseline [s]", "ratio")
    loop_name = "per-period Python loop"
    rows = [("allocate, one month", f"{t_engine:.3f}", loop_name, f"{t_loop:.2f}", f"{t_loop / t_engine:.1f}")]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt.format(*r))
    print(f"\nratio = loop time / engine time; target: engine < 1 s ({'met' if t_engine < 1 else 'MISSED'}), "
          f"ratio >= 50 ({'met' if t_loop / t_engine >= 50 else 'MISSED'})")
    print(f"\nbench ran in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
