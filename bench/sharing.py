"""Speed of the energy-sharing engine and file writer, as ratios to plain Python measured in the same run.

Run from the repository root: ``python bench/sharing.py`` (about a minute, most of it the writing baseline).

What is measured (best of a few repeats, ``time.perf_counter``): one month of 31 days (2,976 quarter-hours) for a
community of 1,000 participants, 100 producers and 900 consumers, static keys, 3 iterations, energies drawn at
random (seeded) so that iterations 2 and 3 have surplus to re-offer.

* result: ``cloud.sharing.allocation.allocate`` on the whole month (numpy, vectorised over periods and
  participants): what each producer makes available, what is offered to and covered for each consumer in each
  iteration, what each producer sold to the sharing; the columns derived from those by a subtraction or a ratio
  (demand per iteration, surplus, Allo Consommation/Production, non allouée, coefficients) are computed on use, and
  are timed in the write_files line below;
* baseline: ``allocate_loop``, the same rules and rounding in plain Python, one period at a time, on the same
  month (best of 2); the two results are checked equal before any figure is printed.

* result: ``cloud.sharing.files.write_files``, the production and consumption files of that month (8.3 M rows,
  about 480 MB) into a temporary folder, whole columns at a time; baseline: the same rows written one by one with
  ``csv.writer`` (``production_rows``/``consumption_rows``, the row-by-row formatting the writer used before),
  timed once; the two files are checked equal byte for byte. Both times include a fresh ``allocate`` (so the
  columns computed on use, coefficients, demand, surplus..., are computed in each), the writer's lookup tables
  (built once per separator and process, as in one ``quartier share run``) and the disk writes.

How to read the ratio: ratio = baseline time / result time (how many times faster). Target for the engine: under
1 s for the month and ratio at least 50.
"""

from __future__ import annotations

import csv
import filecmp
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from cloud.sharing import text  # noqa: E402
from cloud.sharing.allocation import COEF_SCALE, FULL, Allocation, KeyKind, allocate, allocate_loop  # noqa: E402
from cloud.sharing.files import (  # noqa: E402
    CONSUMPTION_HEADER,
    PRODUCTION_HEADER,
    consumption_rows,
    production_rows,
    write_files,
)

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


def write_rows(folder: Path, starts: list[int], producers: list[str], consumers: list[str], a: Allocation) -> None:
    """Baseline: both files row by row with ``csv.writer``."""
    for name, header, rows in (("p0.csv", PRODUCTION_HEADER, production_rows(starts, producers, a)),
                               ("c0.csv", CONSUMPTION_HEADER, consumption_rows(starts, consumers, a))):
        with open(folder / name, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter=";", lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)


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

    starts = list(range(1_672_527_600, 1_672_527_600 + 900 * PERIODS, 900))  # 2023-01-01 00:00 Paris
    producers = [f"5414490{j:07d}" for j in range(PRODUCERS)]
    consumers = [f"5414491{j:07d}" for j in range(CONSUMERS)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def write() -> None:
            text.formats.cache_clear()
            write_files(folder / "p.csv", folder / "c.csv", starts, producers, consumers, engine())

        t_write = best_time(write, 2)
        t_rows = best_time(lambda: write_rows(folder, starts, producers, consumers, engine()), 1)
        size = (folder / "c.csv").stat().st_size
        same = all(filecmp.cmp(folder / x, folder / y, shallow=False) for x, y in (("p.csv", "p0.csv"),
                                                                                   ("c.csv", "c0.csv")))
    if not same:
        print("ERROR: the files written by columns and row by row differ", file=sys.stderr)
        return 1

    surplus_offered = int(a.offered_wh[1:].sum())
    print(f"community: {PRODUCERS} producers + {CONSUMERS} consumers, {PERIODS} periods, {ITERATIONS} iterations; "
          f"{int(a.covered_wh.sum()) / 1e6:,.1f} MWh shared, {surplus_offered / 1e6:,.1f} MWh re-offered in "
          f"iterations 2-{ITERATIONS}")
    print()
    head = ("measurement", "time [s]", "baseline", "baseline [s]", "ratio")
    loop_name = "per-period Python loop"
    rows = [("allocate, one month", f"{t_engine:.3f}", loop_name, f"{t_loop:.2f}", f"{t_loop / t_engine:.1f}"),
            (f"write_files, one month ({size / 1e6:.0f} MB)", f"{t_write:.2f}", "csv.writer row by row",
             f"{t_rows:.1f}", f"{t_rows / t_write:.1f}")]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt.format(*r))
    print(f"\nratio = baseline time / time; target for allocate: < 1 s ({'met' if t_engine < 1 else 'MISSED'}), "
          f"ratio >= 50 ({'met' if t_loop / t_engine >= 50 else 'MISSED'})")
    print(f"\nbench ran in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
