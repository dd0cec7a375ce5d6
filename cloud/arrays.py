"""Stored 15-minute intervals to per-period arrays, with missing data kept apart (never read as zero).

The one conversion used by energy sharing (:mod:`cloud.sharing`) and billing (:mod:`cloud.tariffs`): it lives
here, beside both, so neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from quartier.series import INTERVAL_S, Interval, Quality

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def to_array(intervals: Iterable[Interval], period_starts: IntArray) -> tuple[IntArray, BoolArray]:
    """Energy per period [Wh] and a mask of missing periods.

    ``period_starts`` are consecutive period starts, 900 s apart [s UTC]. A period is missing when no interval
    starts there, or its quality is ``missing``, or its energy is unknown; its energy reads 0 but the mask says so.
    Intervals outside the periods are ignored; estimated and interpolated ones count. When two intervals start at
    the same period, the last one with a known energy wins.
    """
    n = len(period_starts)
    energy = np.zeros(n, np.int64)
    known = np.zeros(n, bool)
    if n == 0:
        return energy, ~known
    t0 = int(period_starts[0])
    for iv in intervals:
        i, off = divmod(iv.start - t0, INTERVAL_S)
        if not off and 0 <= i < n and iv.quality is not Quality.MISSING and iv.energy_wh is not None:
            energy[i] = iv.energy_wh
            known[i] = True
    return energy, ~known


def ranges(period_starts: Sequence[int] | IntArray, mask: BoolArray) -> list[tuple[int, int]]:
    """Runs of True in ``mask`` as (first start, end) pairs, end exclusive [s UTC].

    ``period_starts`` are consecutive period starts, 900 s apart [s UTC], as for :func:`to_array`.
    """
    out: list[tuple[int, int]] = []
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(idx) > 1)
    firsts = np.concatenate(([idx[0]], idx[breaks + 1]))
    lasts = np.concatenate((idx[breaks], [idx[-1]]))
    for a, b in zip(firsts.tolist(), lasts.tolist()):
        out.append((int(period_starts[a]), int(period_starts[b]) + INTERVAL_S))
    return out
