"""The representative's two CSV files: byte-exact with the guide, read back, errors that say where."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from cloud.sharing.allocation import COEF_SCALE, FULL, KeyKind, allocate
from cloud.sharing.errors import SharingFileError
from cloud.sharing.files import (
    format_kwh,
    format_pct,
    read_consumption,
    read_custom_keys,
    read_production,
    write_files,
)

DATA = Path(__file__).parent / "data" / "sharing"
T = int(datetime(2023, 1, 19, 15, 15, tzinfo=timezone.utc).timestamp())
PRODUCERS = ["54144900000003"]
CONSUMERS = ["54144900000001", "54144900000002"]

# Copied verbatim from the guide (its tables are tab-separated).
GUIDE_PRODUCTION = (
    "Timestamp\tEAN\tProduction brute\tCoefficient\tProduction allouée au partage\t"
    "Production allouée autoconsommée par le partage\tProduction non allouée au partage\tAllo Production\n"
    "2023-01-19 15:15:00Z\t54144900000003\t1\t100\t1\t1\t0\t0\n"
)
GUIDE_CONSUMPTION = (
    "Timestamp\tEAN\tItération\tCoefficient\tPrélèvement brut\tProduction mise à disposition par le partage\t"
    "Prélèvement couvert par le partage\tSurplus de production\tAllo Consommation\n"
) + """\
2023-01-19 15:15:00Z	54144900000001	1	50	0,7	0,5	0,5	0	0,2
2023-01-19 15:15:00Z	54144900000002	1	50	0,4	0,5	0,4	0,1	0
2023-01-19 15:15:00Z	54144900000001	2	100	0,2	0,1	0,1	0	0,1
2023-01-19 15:15:00Z	54144900000002	2	0	0	0	0	0	0
"""


def _guide_allocation():
    return allocate([[1000]], [FULL], [[700, 400]], KeyKind.STATIC, iterations=2,
                    static_keys=[50 * COEF_SCALE, 50 * COEF_SCALE])


def test_guide_example_files_byte_for_byte(tmp_path: Path) -> None:
    a = _guide_allocation()
    write_files(tmp_path / "p.csv", tmp_path / "c.csv", [T], PRODUCERS, CONSUMERS, a, separator="\t")
    assert (tmp_path / "p.csv").read_bytes() == GUIDE_PRODUCTION.encode("utf-8")
    assert (tmp_path / "c.csv").read_bytes() == GUIDE_CONSUMPTION.encode("utf-8")
    write_files(tmp_path / "p2.csv", tmp_path / "c2.csv", [T], PRODUCERS, CONSUMERS, a)
    assert (tmp_path / "p2.csv").read_bytes() == (DATA / "guide_production.csv").read_bytes()
    assert (tmp_path / "c2.csv").read_bytes() == (DATA / "guide_consumption.csv").read_bytes()


def test_guide_example_files_read_back() -> None:
    p = read_production(DATA / "guide_production.csv")
    assert p.period_starts.tolist() == [T] and p.eans == tuple(PRODUCERS)
    assert [p.production_wh.tolist(), p.shared_wh.tolist(), p.self_consumed_wh.tolist(),
            p.unallocated_wh.tolist(), p.residual_wh.tolist()] == [[[1000]], [[1000]], [[1000]], [[0]], [[0]]]
    assert p.coefficient_pct.tolist() == [[100.0]]
    c = read_consumption(DATA / "guide_consumption.csv")
    a = _guide_allocation()
    assert c.eans == tuple(CONSUMERS)
    for name in ("demand_wh", "offered_wh", "covered_wh", "surplus_wh", "from_supplier_wh", "coefficient_pct"):
        assert getattr(c, name).tolist() == getattr(a, name).tolist(), name
    assert c.covered_total_wh().tolist() == [[600, 400]]


def test_formats() -> None:
    assert [format_kwh(w) for w in (0, 1, 10, 100, 700, 1000, 1234, 20050)] == [
        "0", "0,001", "0,01", "0,1", "0,7", "1", "1,234", "20,05"]
    assert [format_pct(x) for x in (0.0, 50.0, 100.0, 100 / 3, 12.5)] == ["0", "50", "100", "33,3333", "12,5"]


def test_random_community_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    periods = 8
    starts = [T + 900 * i for i in range(periods)]
    prod = rng.integers(0, 3000, (periods, 2))
    cons = rng.integers(0, 2000, (periods, 3))
    active = np.ones((periods, 3), bool)
    active[:3, 2] = False  # the third consumer joins in period 4
    a = allocate(prod, [FULL, 70 * COEF_SCALE], cons, KeyKind.DYNAMIC, iterations=3, consumer_active=active)
    write_files(tmp_path / "p.csv", tmp_path / "c.csv", starts, ["P1", "P2"], ["C1", "C2", "C3"], a, separator=";")
    p = read_production(tmp_path / "p.csv")
    c = read_consumption(tmp_path / "c.csv")
    assert p.period_starts.tolist() == starts and c.period_starts.tolist() == starts
    assert (p.self_consumed_wh == a.self_consumed_wh).all() and (p.residual_wh == a.residual_wh).all()
    assert (c.covered_wh == a.covered_wh).all() and (c.demand_wh == a.demand_wh).all()
    assert (c.present == active).all()
    assert np.allclose(c.coefficient_pct, a.coefficient_pct, atol=5e-5)
    lines = (tmp_path / "c.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 3 * (periods * 3 - 3)


def _write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


PROD_HEADER = (DATA / "guide_production.csv").read_text(encoding="utf-8").splitlines()[0]
CONS_HEADER = (DATA / "guide_consumption.csv").read_text(encoding="utf-8").splitlines()[0]


@pytest.mark.parametrize(
    "line, row, column, problem",
    [
        ("2023-01-19T15:15:00Z;E1;1;100;1;1;0;0", 2, "Timestamp", "not a time"),
        ("2023-01-19 15:10:00Z;E1;1;100;1;1;0;0", 2, "Timestamp", "quarter-hour"),
        ("2023-01-19 15:15:00Z;E1;1;100;1,2345;1;0;0", 2, "Production allouée au partage", "more than 3 decimals"),
        ("2023-01-19 15:15:00Z;E1;-1;100;1;1;0;0", 2, "Production brute", "not a non-negative energy"),
        ("2023-01-19 15:15:00Z;E1;1;150;1;1;0;0", 2, "Coefficient", "above 100"),
        ("2023-01-19 15:15:00Z;;1;100;1;1;0;0", 2, "EAN", "empty"),
    ],
)
def test_production_read_errors_name_file_row_column(tmp_path: Path, line: str, row: int, column: str,
                                                     problem: str) -> None:
    path = _write(tmp_path, f"{PROD_HEADER}\n{line}\n")
    with pytest.raises(SharingFileError, match=problem) as e:
        read_production(path)
    assert (e.value.path, e.value.row, e.value.column) == (str(path), row, column)
    assert str(e.value).startswith(f"{path}: row {row}: column {column!r}: ")


def test_consumption_read_errors(tmp_path: Path) -> None:
    ok = "2023-01-19 15:15:00Z;E1;1;50;0,7;0,5;0,5;0;0,2"
    path = _write(tmp_path, f"{CONS_HEADER}\n{ok}\n{ok}\n")
    with pytest.raises(SharingFileError, match="second row for E1 iteration 1 .*first at row 2") as e:
        read_consumption(path)
    assert e.value.row == 3
    path = _write(tmp_path, f"{CONS_HEADER}\n{ok.replace(';1;50', ';0;50')}\n")
    with pytest.raises(SharingFileError, match="not an iteration number") as e:
        read_consumption(path)
    assert e.value.column == "Itération"
    path = _write(tmp_path, f"{CONS_HEADER.replace('Itération', 'Iteration')}\n{ok}\n")
    with pytest.raises(SharingFileError, match="header 'Iteration', expected 'Itération'") as e:
        read_consumption(path)
    assert (e.value.row, e.value.column) == (1, "C")
    path = _write(tmp_path, f"{CONS_HEADER}\n{ok};9\n")
    with pytest.raises(SharingFileError, match="10 fields, expected 9"):
        read_consumption(path)


def test_wrong_separator_is_named(tmp_path: Path) -> None:
    with pytest.raises(SharingFileError, match=r"header has 1 columns, expected 9.*separator '\\t'"):
        read_consumption(DATA / "guide_consumption.csv", separator="\t")
    with pytest.raises(ValueError, match="separator"):
        read_consumption(DATA / "guide_consumption.csv", separator=",")


def test_dso_variants_are_accepted(tmp_path: Path) -> None:
    text = "\ufeff" + (DATA / "guide_consumption.csv").read_text(encoding="utf-8").replace("\n", "\r\n")
    text = text.replace("0,7", "0.700").replace(";54144900000002;1;", ';"54144900000002";1;')
    c = read_consumption(_write(tmp_path, text))
    assert c.demand_wh[0].tolist() == [[700, 400]]
    assert c.eans == tuple(CONSUMERS)


def test_custom_keys_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "Timestamp;EAN;Coefficient\n2023-01-19 15:15:00Z;C1;33,333333\n"
                  "2023-01-19 15:15:00Z;C2;66,666667\n2023-01-19 15:30:00Z;C2;100\n")
    keys = read_custom_keys(path, [T, T + 900], ["C1", "C2"])
    assert keys.tolist() == [[33_333_333, 66_666_667], [0, 100_000_000]]
    bad = _write(tmp_path, "Timestamp;EAN;Coefficient\n2023-01-19 15:15:00Z;C9;10\n", "bad.csv")
    with pytest.raises(SharingFileError, match="'C9' is not a consumer") as e:
        read_custom_keys(bad, [T], ["C1"])
    assert (e.value.row, e.value.column) == (2, "EAN")
