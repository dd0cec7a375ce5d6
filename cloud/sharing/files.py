"""The representative's two CSV files (production, consumption), written and read back.

Layout (docs/sharing.md): the guide's French headers in the guide's order; one row per period and
EAN (production) or per period, iteration and EAN (consumption), rows ordered by period, then
iteration, then the participants' order; a participant has no row in a period where it is out of
the allocation. Timestamps are period starts in UTC written ``2023-01-19 15:15:00Z``; energies in
kWh with a decimal comma and no trailing zeros (``0,7``, ``1``, ``0``), exact since the engine
works in whole Wh; coefficients in % rounded to 4 decimals. UTF-8, ``\\n`` line ends, separator
``;`` by default (any single character but the decimal comma, a quote or a line end).

Reading accepts what a DSO sends with the same layout: a UTF-8 BOM, ``\\r\\n`` line ends, quoted
fields, a decimal point as well as a comma; energies must have at most 3 decimals (whole Wh).
Every error names the file, the row (the header is row 1) and the column. Reading checks the
format, not the arithmetic between columns: a DSO's file is billed as it is (its own rounding and
loss coefficients may break Quartier's identities by a Wh).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cloud.sharing import text
from cloud.sharing.allocation import COEF_SCALE, Allocation, BoolArray, FloatArray, IntArray
from cloud.sharing.errors import SharingFileError
from quartier.series import INTERVAL_S

PRODUCTION_HEADER = (
    "Timestamp",
    "EAN",
    "Production brute",
    "Coefficient",
    "Production allouée au partage",
    "Production allouée autoconsommée par le partage",
    "Production non allouée au partage",
    "Allo Production",
)
CONSUMPTION_HEADER = (
    "Timestamp",
    "EAN",
    "Itération",
    "Coefficient",
    "Prélèvement brut",
    "Production mise à disposition par le partage",
    "Prélèvement couvert par le partage",
    "Surplus de production",
    "Allo Consommation",
)
CUSTOM_KEYS_HEADER = ("Timestamp", "EAN", "Coefficient")

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with periods written so far."""

_TS = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)Z")
_KWH = re.compile(r"(\d+)(?:[.,](\d{1,3}))?")
_PCT = re.compile(r"(\d+)(?:[.,](\d+))?")


def check_separator(separator: str) -> str:
    """Return ``separator`` if usable, else raise ValueError saying why."""
    if len(separator) != 1 or separator in ',."\r\n\x000123456789':
        raise ValueError(f"separator must be one character other than a comma, point, quote, digit, line end or NUL; "
                         f"got {separator!r}")
    return separator


def format_timestamp(start: int) -> str:
    """``2023-01-19 15:15:00Z`` form of a period start. [s since epoch, UTC]"""
    return datetime.fromtimestamp(start, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def format_kwh(wh: int) -> str:
    """Energy [Wh] as kWh with a decimal comma and no trailing zeros: 700 -> ``0,7``, 1000 -> ``1``."""
    q, r = divmod(int(wh), 1000)
    return str(q) if r == 0 else f"{q},{r:03d}".rstrip("0")


def format_pct(pct: float) -> str:
    """Coefficient [%] rounded to 4 decimals, decimal comma, no trailing zeros: 50.0 -> ``50``."""
    s = f"{pct:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s.replace(".", ",")


def production_rows(period_starts: Sequence[int], eans: Sequence[str], a: Allocation) -> Iterator[list[str]]:
    """Rows of the production file (without the header), in file order."""
    for p, start in enumerate(period_starts):
        ts = format_timestamp(int(start))
        cols = [a.production_wh[p].tolist(), a.producer_coefficient_pct[p].tolist(), a.shared_wh[p].tolist(),
                a.self_consumed_wh[p].tolist(), a.unallocated_wh[p].tolist(), a.residual_wh[p].tolist()]
        for j, active in enumerate(a.producer_active[p].tolist()):
            if active:
                yield [ts, eans[j], format_kwh(cols[0][j]), format_pct(cols[1][j]), format_kwh(cols[2][j]),
                       format_kwh(cols[3][j]), format_kwh(cols[4][j]), format_kwh(cols[5][j])]


def consumption_rows(
    period_starts: Sequence[int], eans: Sequence[str], a: Allocation, progress: Progress | None = None
) -> Iterator[list[str]]:
    """Rows of the consumption file (without the header), in file order; ``progress`` after each period."""
    coefficient, surplus, supplier = a.coefficient_pct, a.surplus_wh, a.from_supplier_wh
    for p, start in enumerate(period_starts):
        ts = format_timestamp(int(start))
        active = a.consumer_active[p].tolist()
        for k in range(a.iterations):
            it = str(k + 1)
            cols = [coefficient[k, p].tolist(), a.demand_wh[k, p].tolist(), a.offered_wh[k, p].tolist(),
                    a.covered_wh[k, p].tolist(), surplus[k, p].tolist(), supplier[k, p].tolist()]
            for j, on in enumerate(active):
                if on:
                    yield [ts, eans[j], it, format_pct(cols[0][j]), format_kwh(cols[1][j]), format_kwh(cols[2][j]),
                           format_kwh(cols[3][j]), format_kwh(cols[4][j]), format_kwh(cols[5][j])]
        if progress is not None:
            progress(p + 1, len(period_starts))


def write_files(
    production_path: str | Path,
    consumption_path: str | Path,
    period_starts: Sequence[int],
    producer_eans: Sequence[str],
    consumer_eans: Sequence[str],
    allocation: Allocation,
    separator: str = ";",
    progress: Progress | None = None,
) -> None:
    """Write the production and the consumption files of ``allocation`` (see the module docstring).

    ``progress(done, total)`` is called after each block of periods of the consumption file (the
    long one). The text is the one :func:`production_rows` and :func:`consumption_rows` give, byte
    for byte, formatted by whole columns (:mod:`cloud.sharing.text`).
    """
    check_separator(separator)
    fmt = text.formats(separator)
    with open(production_path, "wb") as f:
        f.write((separator.join(PRODUCTION_HEADER) + "\n").encode("utf-8"))
        f.writelines(production_text(period_starts, producer_eans, allocation, fmt))
    with open(consumption_path, "wb") as f:
        f.write((separator.join(CONSUMPTION_HEADER) + "\n").encode("utf-8"))
        f.writelines(consumption_text(period_starts, consumer_eans, allocation, fmt, progress))


_ROWS_PER_BLOCK = 32 * 1024
"""Rows formatted at a time (a few MB of text)."""


def _timestamps(period_starts: Sequence[int], separator: str) -> text.Text:
    return text.strings([format_timestamp(int(t)) + separator for t in period_starts])


def production_text(period_starts: Sequence[int], eans: Sequence[str], a: Allocation,
                    fmt: text.Formats) -> Iterator[bytes]:
    """The production file's rows (without the header) as blocks of UTF-8 text, in file order."""
    n = len(eans)
    if n == 0:
        return
    ean_field = text.strings([e + fmt.separator for e in eans])[None]
    step = max(1, _ROWS_PER_BLOCK // n)
    for lo in range(0, len(period_starts), step):
        hi = min(lo + step, len(period_starts))
        sl = slice(lo, hi)
        fields = [_timestamps(period_starts[sl], fmt.separator)[:, None], ean_field,
                  *fmt.kwh(a.production_wh[sl]), *fmt.pct(a.producer_coefficient_pct[sl]),
                  *fmt.kwh(a.shared_wh[sl]), *fmt.kwh(a.self_consumed_wh[sl]), *fmt.kwh(a.unallocated_wh[sl]),
                  *fmt.kwh(a.residual_wh[sl], last=True)]
        yield text.join((hi - lo, n), fields, a.producer_active[sl])


def consumption_text(period_starts: Sequence[int], eans: Sequence[str], a: Allocation, fmt: text.Formats,
                     progress: Progress | None = None) -> Iterator[bytes]:
    """The consumption file's rows (without the header) as blocks of UTF-8 text, in file order;
    ``progress(done, total)`` after each block of periods."""
    n, iterations, total = len(eans), a.iterations, len(period_starts)
    if n == 0:
        if progress is not None and total:
            progress(total, total)
        return
    ean_it = text.strings([f"{e}{fmt.separator}{k + 1}{fmt.separator}" for k in range(iterations) for e in eans])
    ean_it = ean_it.reshape(1, iterations, n)
    coefficient, surplus, supplier = a.coefficient_pct, a.surplus_wh, a.from_supplier_wh
    step = max(1, _ROWS_PER_BLOCK // (n * iterations))
    for lo in range(0, total, step):
        hi = min(lo + step, total)
        sl = slice(lo, hi)

        def col(arr: np.ndarray) -> np.ndarray:
            return arr[:, sl].transpose(1, 0, 2)  # (periods, iterations, consumers): the file's order

        fields = [_timestamps(period_starts[sl], fmt.separator)[:, None, None], ean_it,
                  *fmt.pct(col(coefficient)), *fmt.kwh(col(a.demand_wh)), *fmt.kwh(col(a.offered_wh)),
                  *fmt.kwh(col(a.covered_wh)), *fmt.kwh(col(surplus)), *fmt.kwh(col(supplier), last=True)]
        yield text.join((hi - lo, iterations, n), fields, a.consumer_active[sl][:, None, :])
        if progress is not None:
            progress(hi, total)


# --- reading -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductionTable:
    """A production file read back; arrays (periods, producers) [Wh], coefficients [%].

    ``period_starts`` are the distinct timestamps of the file, sorted [s UTC]; ``eans`` in order of
    first appearance; ``present`` tells which (period, EAN) had a row (others are 0).
    """

    period_starts: IntArray
    eans: tuple[str, ...]
    present: BoolArray
    production_wh: IntArray
    coefficient_pct: FloatArray
    shared_wh: IntArray
    self_consumed_wh: IntArray
    unallocated_wh: IntArray
    residual_wh: IntArray


@dataclass(frozen=True)
class ConsumptionTable:
    """A consumption file read back; arrays (iterations, periods, consumers) [Wh], coefficients [%].

    ``present`` (periods, consumers) tells which (period, EAN) had rows. Iterations run from 1 to
    the largest found; a missing (period, EAN, iteration) row inside that range reads as 0.
    """

    period_starts: IntArray
    eans: tuple[str, ...]
    present: BoolArray
    coefficient_pct: FloatArray
    demand_wh: IntArray
    offered_wh: IntArray
    covered_wh: IntArray
    surplus_wh: IntArray
    from_supplier_wh: IntArray

    def covered_total_wh(self) -> IntArray:
        """Consumption covered by the sharing over all iterations, (periods, consumers). [Wh]"""
        return self.covered_wh.sum(axis=0)


class _Reader:
    def __init__(self, path: str | Path, header: tuple[str, ...], separator: str) -> None:
        self.path = Path(path)
        self.header = header
        self.separator = check_separator(separator)

    def error(self, row: int | None, column: str | None, problem: str) -> SharingFileError:
        return SharingFileError(self.path, row, column, problem)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        try:
            f = open(self.path, encoding="utf-8-sig", newline="")
        except OSError as e:
            raise self.error(None, None, f"cannot read the file: {e.strerror}") from None
        with f:
            try:
                reader = csv.reader(f, delimiter=self.separator)
                first = next(reader, None)
                if first is None:
                    raise self.error(1, None, "empty file (expected the header line)")
                got = [c.strip() for c in first]
                if len(got) != len(self.header):
                    raise self.error(1, None, f"header has {len(got)} columns, expected {len(self.header)}: "
                                     f"{self.separator.join(self.header)} (is the separator {self.separator!r}?)")
                for i, (g, want) in enumerate(zip(got, self.header)):
                    if g != want:
                        raise self.error(1, _letter(i), f"header {g!r}, expected {want!r}")
                for n, row in enumerate(reader, start=2):
                    if not row or row == [""]:
                        continue
                    if len(row) != len(self.header):
                        raise self.error(n, None, f"{len(row)} fields, expected {len(self.header)}")
                    yield n, [c.strip() for c in row]
            except UnicodeDecodeError as e:
                raise self.error(None, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
            except csv.Error as e:
                raise self.error(None, None, f"not CSV: {e}") from None

    def timestamp(self, n: int, text: str) -> int:
        m = _TS.fullmatch(text)
        if m is None:
            raise self.error(n, "Timestamp", f"{text!r} is not a time like 2023-01-19 15:15:00Z")
        try:
            year, month, day, hour, minute, second = map(int, m.groups())
            t = int(datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp())
        except ValueError as e:
            raise self.error(n, "Timestamp", f"{text!r}: {e}") from None
        if t % INTERVAL_S:
            raise self.error(n, "Timestamp", f"{text!r} is not the start of a quarter-hour")
        return t

    def wh(self, n: int, column: str, text: str) -> int:
        m = _KWH.fullmatch(text)
        if m is None:
            problem = f"{text!r} is not a non-negative energy in kWh like 0,7"
            if re.fullmatch(r"\d+[.,]\d{4,}", text):
                problem = f"{text!r} has more than 3 decimals (Quartier works in whole Wh)"
            raise self.error(n, column, problem)
        return int(m.group(1)) * 1000 + int((m.group(2) or "0").ljust(3, "0"))

    def pct(self, n: int, column: str, text: str) -> float:
        m = _PCT.fullmatch(text)
        if m is None:
            raise self.error(n, column, f"{text!r} is not a percentage like 50 or 33,3333")
        value = float(f"{m.group(1)}.{m.group(2) or '0'}")
        if value > 100:
            raise self.error(n, column, f"{text!r} is above 100 %")
        return value


def _letter(i: int) -> str:
    return "ABCDEFGHIJ"[i]


def _index(values: Iterable[object]) -> dict[object, int]:
    out: dict[object, int] = {}
    for v in values:
        out.setdefault(v, len(out))
    return out


def read_production(path: str | Path, separator: str = ";") -> ProductionTable:
    """Read a production file; SharingFileError naming the file, row and column on any problem."""
    r = _Reader(path, PRODUCTION_HEADER, separator)
    parsed: list[tuple[int, str, float, list[int]]] = []
    seen: dict[tuple[int, str], int] = {}
    for n, row in r.rows():
        t = r.timestamp(n, row[0])
        ean = row[1]
        if not ean:
            raise r.error(n, "EAN", "empty")
        if (t, ean) in seen:
            raise r.error(n, "EAN", f"second row for {ean} at {row[0]} (first at row {seen[(t, ean)]})")
        seen[(t, ean)] = n
        values = [r.wh(n, PRODUCTION_HEADER[i], row[i]) for i in (2, 4, 5, 6, 7)]
        parsed.append((t, ean, r.pct(n, "Coefficient", row[3]), values))
    starts = sorted({t for t, *_ in parsed})
    pi = {t: i for i, t in enumerate(starts)}
    ei = _index(e for _, e, *_ in parsed)
    shape = (len(starts), len(ei))
    present = np.zeros(shape, bool)
    coef = np.zeros(shape)
    arrays = np.zeros((5, *shape), np.int64)
    for t, ean, c, values in parsed:
        p, j = pi[t], ei[ean]
        present[p, j] = True
        coef[p, j] = c
        arrays[:, p, j] = values
    return ProductionTable(np.array(starts, np.int64), tuple(str(e) for e in ei), present, arrays[0], coef,
                           arrays[1], arrays[2], arrays[3], arrays[4])


def read_consumption(path: str | Path, separator: str = ";") -> ConsumptionTable:
    """Read a consumption file; SharingFileError naming the file, row and column on any problem."""
    r = _Reader(path, CONSUMPTION_HEADER, separator)
    parsed: list[tuple[int, str, int, float, list[int]]] = []
    seen: dict[tuple[int, str, int], int] = {}
    for n, row in r.rows():
        t = r.timestamp(n, row[0])
        ean = row[1]
        if not ean:
            raise r.error(n, "EAN", "empty")
        if not row[2].isdigit() or int(row[2]) < 1:
            raise r.error(n, "Itération", f"{row[2]!r} is not an iteration number (1, 2, ...)")
        k = int(row[2])
        if (t, ean, k) in seen:
            raise r.error(n, "Itération", f"second row for {ean} iteration {k} at {row[0]} "
                          f"(first at row {seen[(t, ean, k)]})")
        seen[(t, ean, k)] = n
        values = [r.wh(n, CONSUMPTION_HEADER[i], row[i]) for i in (4, 5, 6, 7, 8)]
        parsed.append((t, ean, k, r.pct(n, "Coefficient", row[3]), values))
    starts = sorted({t for t, *_ in parsed})
    pi = {t: i for i, t in enumerate(starts)}
    ei = _index(e for _, e, *_ in parsed)
    n_it = max((k for _, _, k, *_ in parsed), default=1)
    shape = (n_it, len(starts), len(ei))
    present = np.zeros(shape[1:], bool)
    coef = np.zeros(shape)
    arrays = np.zeros((5, *shape), np.int64)
    for t, ean, k, c, values in parsed:
        p, j = pi[t], ei[ean]
        present[p, j] = True
        coef[k - 1, p, j] = c
        arrays[:, k - 1, p, j] = values
    return ConsumptionTable(np.array(starts, np.int64), tuple(str(e) for e in ei), present, coef, *arrays)


def read_custom_keys(
    path: str | Path, period_starts: Sequence[int], eans: Sequence[str], separator: str = ";"
) -> IntArray:
    """Read custom keys (``Timestamp;EAN;Coefficient``, coefficient in %) into (periods, consumers) weights.

    Returns integer weights [COEF_SCALE units per %]; a (period, EAN) without a row weighs 0 (the
    consumer gets nothing in iteration 1 of that period). Rows for other periods are ignored; an
    EAN that is not a consumer of the community is an error.
    """
    r = _Reader(path, CUSTOM_KEYS_HEADER, separator)
    pi = {int(t): i for i, t in enumerate(period_starts)}
    ei = {e: j for j, e in enumerate(eans)}
    out = np.zeros((len(pi), len(ei)), np.int64)
    for n, row in r.rows():
        t = r.timestamp(n, row[0])
        if row[1] not in ei:
            raise r.error(n, "EAN", f"{row[1]!r} is not a consumer of the community")
        m = _PCT.fullmatch(row[2])
        if m is None or len(m.group(2) or "") > 6:
            raise r.error(n, "Coefficient", f"{row[2]!r} is not a percentage with at most 6 decimals")
        if t in pi:
            out[pi[t], ei[row[1]]] = int(m.group(1)) * COEF_SCALE + int((m.group(2) or "0").ljust(6, "0"))
    return out
