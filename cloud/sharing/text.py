"""Vectorised CSV text: whole columns of numbers formatted at once, rows assembled as bytes.

The files have millions of rows (a month of 900 consumers and 3 iterations: 8 million), too many
to format one by one in Python. Here a field of a block of rows is a numpy array of fixed-width
byte strings (dtype ``V<width>``: UTF-8, NUL-padded on the right), mostly taken from lookup tables
of pre-formatted values; the fields are laid side by side in a (rows, width) byte matrix and the
padding is removed at the end (:func:`join`), which leaves fields, separators and line ends back
to back. No field may contain a NUL byte (the separator cannot be one, see ``files.check_separator``).

The text is the same, byte for byte, as ``files.format_kwh`` and ``files.format_pct`` give.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

Text = npt.NDArray[np.void]
"""One field per row: UTF-8 bytes, NUL-padded to the dtype's width (``V<width>``)."""

TABLE_WH = 1 << 16
"""Energies below this are formatted from a table (65.535 kWh); larger ones digit by digit. [Wh]"""


def strings(values: Sequence[str]) -> Text:
    """A field from Python strings (encoded as UTF-8), one per row."""
    encoded = [v.encode("utf-8") for v in values]
    width = max(1, max((len(b) for b in encoded), default=1))
    return np.array(encoded, dtype=f"S{width}").view(f"V{width}")


def integers(values: npt.NDArray[np.integer]) -> Text:
    """Decimal digits of non-negative integers, no leading zeros (``0`` for 0), one field per value."""
    v = np.asarray(values, np.int64).ravel()
    width = len(str(int(v.max()))) if v.size else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((v[:, None] // powers) % 10 + ord("0")).astype(np.uint8)
    digits[:, :-1][v[:, None] < powers[:-1]] = 0  # leading zeros (the units digit always stays)
    return np.ascontiguousarray(digits).view(f"V{width}")[:, 0]


def _kwh_text(wh: int) -> str:
    q, r = divmod(wh, 1000)
    return str(q) if r == 0 else f"{q},{r:03d}".rstrip("0")


class Formats:
    """Lookup tables for one separator: each field's text followed by the separator or a line end."""

    def __init__(self, separator: str) -> None:
        self.separator = separator
        kwh = [_kwh_text(v) for v in range(TABLE_WH)]
        self.kwh_sep = strings([t + separator for t in kwh])
        self.kwh_end = strings([t + "\n" for t in kwh])
        fractions_3 = [("," + f"{r:03d}".rstrip("0")) if r else "" for r in range(1000)]
        self.fraction_sep = strings([t + separator for t in fractions_3])
        self.fraction_end = strings([t + "\n" for t in fractions_3])
        self.pct_units = strings([str(q) for q in range(101)])
        self.pct_fraction_sep = strings([(("," + f"{r:04d}".rstrip("0")) if r else "") + separator
                                         for r in range(10_000)])

    def kwh(self, wh: npt.NDArray[np.integer], last: bool = False) -> list[Text]:
        """Energies [Wh] as kWh (``0,7``, ``1``, ``1,234``), then the separator (or a line end if ``last``)."""
        v = np.asarray(wh).ravel()
        if not v.size or int(v.max()) < TABLE_WH:
            return [(self.kwh_end if last else self.kwh_sep)[v]]
        q, r = np.divmod(v.astype(np.int64), 1000)
        return [integers(q), (self.fraction_end if last else self.fraction_sep)[r]]

    def pct(self, pct: npt.NDArray[np.floating]) -> list[Text]:
        """Coefficients [%] from 0 to 100 rounded to 4 decimals (``50``, ``33,3333``), then the separator.

        Same rounding as ``f"{pct:.4f}"`` (the exact binary value, rounded half to even): where
        ``pct * 10^4`` is too close to a half for the float product to decide, Python formats it.
        """
        p = np.asarray(pct, np.float64).ravel()
        x = p * 10_000
        units = np.rint(x).astype(np.int64)
        for i in np.flatnonzero(np.abs(x - np.floor(x) - 0.5) < 1e-6).tolist():
            units[i] = int(f"{p[i]:.4f}".replace(".", ""))
        q, r = np.divmod(units, 10_000)
        return [self.pct_units[q], self.pct_fraction_sep[r]]


@lru_cache(maxsize=8)
def formats(separator: str) -> Formats:
    """The (cached) :class:`Formats` of a separator."""
    return Formats(separator)


def join(shape: tuple[int, ...], fields: Sequence[Text], keep: npt.NDArray[np.bool_] | None = None) -> bytes:
    """The bytes of the rows indexed by ``shape`` (C order), fields side by side, padding removed.

    Each field is (rows,) with rows the product of ``shape``, or broadcastable to ``shape`` (e.g. a
    timestamp per period for every row of that period). Only the rows where ``keep``
    (broadcastable to ``shape``) is True are kept.
    """
    rows = int(np.prod(shape))
    width = sum(f.dtype.itemsize for f in fields)
    block = np.empty((*shape, width), np.uint8)
    at = 0
    for f in fields:
        w = f.dtype.itemsize
        block[..., at:at + w].view(f.dtype)[..., 0] = f.reshape(shape) if f.size == rows else f
        at += w
    if keep is not None:
        keep = np.broadcast_to(keep, shape)
        if not keep.all():
            return block[keep].tobytes().translate(None, b"\0")
    return block.tobytes().translate(None, b"\0")
