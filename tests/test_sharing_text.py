"""Column-by-column CSV writing: the same bytes as the row-by-row formatting, on values that test each path."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.sharing import text
from cloud.sharing.allocation import COEF_SCALE, FULL, MAX_WH, KeyKind, allocate
from cloud.sharing.files import (
    CONSUMPTION_HEADER,
    PRODUCTION_HEADER,
    check_separator,
    consumption_rows,
    format_kwh,
    format_pct,
    production_rows,
    write_files,
)

T = int(datetime(2023, 3, 26, 0, 0, tzinfo=timezone.utc).timestamp())


def _kwh_text(values: list[int], last: bool = False) -> list[str]:
    fields = text.formats(";").kwh(np.array(values), last=last)
    end = "\n" if last else ";"
    return text.join((len(values),), fields).decode().split(end)[:-1]


def _pct_text(values: list[float]) -> list[str]:
    return text.join((len(values),), text.formats(";").pct(np.array(values))).decode().split(";")[:-1]


def test_energies_from_the_table_and_digit_by_digit() -> None:
    small = [0, 1, 10, 100, 700, 999, 1000, 1001, 1234, 20050, text.TABLE_WH - 1]
    assert _kwh_text(small) == ["0", "0,001", "0,01", "0,1", "0,7", "0,999", "1", "1,001", "1,234", "20,05", "65,535"]
    # One value past the table sends the whole column digit by digit.
    large = small + [text.TABLE_WH, 1_000_000, 10_000_001, MAX_WH]
    assert _kwh_text(large, last=True) == [format_kwh(v) for v in large]
    assert _kwh_text(large)[-4:] == ["65,536", "1000", "10000,001", "2147483,647"]


def test_coefficients_round_like_python() -> None:
    # 0.00005 and 12.34565 sit on a half of the 4th decimal in decimal but not in binary: Python decides.
    values = [0.0, 100.0, 50.0, 100 / 3, 200 / 3, 12.5, 0.00005, 0.00015, 12.34565, 99.99995, 1e-9]
    assert _pct_text(values) == [format_pct(v) for v in values]
    # 99.99995 is 99.99994999999999...4 in binary: rounded down, like Python.
    assert _pct_text([0.0, 100.0, 100 / 3, 99.99995, 0.00015]) == ["0", "100", "33,3333", "99,9999", "0,0001"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 100), st.integers(0, 10**6).map(lambda u: u / 10_000),
                          st.integers(0, 2 * 10**6).map(lambda u: (u + 0.5) / 20_000 * 2)), min_size=1, max_size=20))
def test_coefficients_property(values: list[float]) -> None:
    values = [min(v, 100.0) for v in values]
    assert _pct_text(values) == [format_pct(v) for v in values]


def _row_text(header: tuple[str, ...], rows, separator: str) -> bytes:
    lines = [separator.join(header)] + [separator.join(r) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.mark.parametrize("separator", [";", "\t", "|", "§"])
def test_files_equal_the_row_by_row_text(tmp_path: Path, separator: str) -> None:
    rng = np.random.default_rng(11)
    periods, n_prod, n_cons = 40, 3, 7
    starts = [T + 900 * i for i in range(periods)]
    prod = rng.integers(0, 40_000, (periods, n_prod))
    prod[5] = [70_000, 2_000_000, 0]  # past the kWh table in one block only
    cons = rng.integers(0, 3_000, (periods, n_cons))
    cons[rng.random((periods, n_cons)) < 0.2] = 0
    p_act = np.ones((periods, n_prod), bool)
    p_act[30:, 1] = False
    c_act = np.ones((periods, n_cons), bool)
    c_act[:12, 3] = False
    c_act[20:, 6] = False
    keys = rng.integers(0, 30, n_cons) * COEF_SCALE
    a = allocate(prod, [FULL, 37 * COEF_SCALE + 123_457, 0], cons, KeyKind.STATIC, iterations=3, static_keys=keys,
                 producer_active=p_act, consumer_active=c_act)
    pe = [f"5414490000{j:04d}" for j in range(n_prod)]
    ce = [f"5414491000{j:04d}" for j in range(n_cons)]
    calls: list[tuple[int, int]] = []
    import cloud.sharing.files as files
    old = files._ROWS_PER_BLOCK
    files._ROWS_PER_BLOCK = 50  # several blocks of periods
    try:
        write_files(tmp_path / "p.csv", tmp_path / "c.csv", starts, pe, ce, a, separator,
                    progress=lambda d, t: calls.append((d, t)))
    finally:
        files._ROWS_PER_BLOCK = old
    assert (tmp_path / "p.csv").read_bytes() == _row_text(PRODUCTION_HEADER, production_rows(starts, pe, a), separator)
    assert (tmp_path / "c.csv").read_bytes() == _row_text(CONSUMPTION_HEADER, consumption_rows(starts, ce, a),
                                                          separator)
    # Progress after each block of 2 periods (50 rows // 21 per period), ending at the total.
    assert calls == [(min(d, periods), periods) for d in range(2, periods + 2, 2)]


def test_nul_separator_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        check_separator("\0")
