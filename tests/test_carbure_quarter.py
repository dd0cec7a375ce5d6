"""CarbuRe quarterly readings: a simulated 2025Q1 of 15-minute data through the real SQLite store (issue 7).

2025Q1 runs from 2024-12-31T23:00Z (01/01/2025 00:00 Paris, UTC+1) to
2025-03-31T22:00Z (01/04/2025 00:00 Paris, UTC+2 since 30/03): 2159 hours,
8636 intervals. Hand-computed figures per point:

* FRQRTE0001A, 22 kW: accepted 2024Q4 index 5000.123 kWh at the start, +250 Wh
  every interval (1 kW): 5000.123 + 8636 x 0.25 = 7159.123 kWh at 01/04/2025;
  2159 kWh used; load factor 2159 / (22 x 2159) = 1/22 = 0.0455.
* FRQRTE0002A, 22 kW, meter replaced at 2025-02-10T09:00Z (970 h = 3880
  intervals in): old meter from 3000.000 kWh, +100 Wh/interval, final index
  3388.000 kWh; new meter from 0.500 kWh, +200 Wh for 4756 intervals: 951.700 kWh.
  Used: 388.000 + 951.200 = 1339.200 kWh; load factor 1339.2 / 47498 = 0.0282.
  File: B = 0.500 (new meter's initial index), C = 951.700.
* FRQRTE0003A, 150 kW: no accepted reading, initial index 10000.000 kWh;
  measured until 2025-02-01T00:00Z (2980 intervals, +1000 Wh each), then
  missing, and estimated over the last day: no reading, "since 01/02/2025 01:00".
* FRQRTE0004A: subject to article 2: in the summary, not in the file.
* FRQRTE0005A, 22 kW: initial 0 on 01/01/2025; +40 Wh/interval until
  2025-03-30T12:00Z (8500 intervals) then nothing: index 340.000 kWh dated
  30/03/2025 (its real date, within the 7-day limit).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from cli.main import main
from cloud.carbure.checks import Check, FileReading, PointContext, check_readings
from cloud.carbure.errors import FileProblemsError, QuarterError
from cloud.carbure.mapping import read_mapping
from cloud.carbure.period import Quarter
from cloud.carbure.prepare import compute_quarter, write_outputs
from cloud.carbure.quarterly import read_quarterly, summary_rows
from cloud.carbure.readings import MeterSeries, load_factor
from cloud.carbure.registry import AcceptedReading, ChargePoint, CurrentType, Registry
from cloud.stores.sqlite import SqliteStore
from quartier.series import INTERVAL_S, Interval, Quality, parse_utc

DATA = Path(__file__).parent / "data" / "carbure"
Q1 = Quarter(2025, 1)
START = parse_utc("2024-12-31T23:00:00Z")
BOUNDARY = parse_utc("2025-03-31T22:00:00Z")
SWAP = parse_utc("2025-02-10T09:00:00Z")


def ramp(meter: str, t0: int, t1: int, index0: int, step: int, quality: Quality = Quality.MEASURED) -> list[Interval]:
    """Intervals from t0 to t1 [s UTC], the index rising by ``step`` Wh each."""
    out = []
    for k, t in enumerate(range(t0, t1, INTERVAL_S)):
        i0 = index0 + k * step
        out.append(Interval(meter, t, step, i0, i0 + step, quality))
    return out


def holes(meter: str, t0: int, t1: int) -> list[Interval]:
    return [Interval(meter, t, None, None, None, Quality.MISSING) for t in range(t0, t1, INTERVAL_S)]


def point(pid: str, kw: int, art2: bool = False) -> ChargePoint:
    return ChargePoint(pid, date(2022, 3, 1), "LNE-12345", date(2025, 1, 1), 0, "12345678901234",
                       CurrentType.AC if kw <= 22 else CurrentType.DC, art2, Decimal(kw))


@pytest.fixture
def site(tmp_path: Path) -> tuple[Registry, SqliteStore]:
    reg = Registry(tmp_path / "carbure.sqlite")
    reg.upsert_points([point("FRQRTE0001A", 22), point("FRQRTE0002A", 22), point("FRQRTE0003A", 150),
                       point("FRQRTE0004A", 50, art2=True), point("FRQRTE0005A", 22)])
    reg.set_links(read_mapping(DATA / "meters.csv"))
    reg.record_accepted(AcceptedReading("FRQRTE0001A", "2024Q4", START, 5_000_123, "gw-lyon-1", "cp1"))
    reg.record_accepted(AcceptedReading("FRQRTE0002A", "2024Q4", START, 3_000_000, "gw-lyon-1", "cp2-old"))
    store = SqliteStore(str(tmp_path / "series.sqlite"))
    store.write_intervals("gw-lyon-1", ramp("cp1", START, BOUNDARY + 4 * INTERVAL_S, 5_000_123, 250))
    store.write_intervals("gw-lyon-1", ramp("cp2-old", START, SWAP, 3_000_000, 100))
    store.write_intervals("gw-lyon-1", ramp("cp2", SWAP, BOUNDARY, 500, 200))
    feb1 = parse_utc("2025-02-01T00:00:00Z")
    store.write_intervals("gw-lyon-2", ramp("cp3", START, feb1, 10_000_000, 1000)
                          + holes("cp3", feb1, BOUNDARY - 86400)
                          + ramp("cp3", BOUNDARY - 86400, BOUNDARY, 13_000_000, 1000, Quality.ESTIMATED))
    store.write_intervals("gw-lyon-2", ramp("cp4", START, BOUNDARY, 0, 10))
    store.write_intervals("gw-lyon-3", ramp("cp5", START, parse_utc("2025-03-30T12:00:00Z"), 0, 40))
    yield reg, store
    store.close()
    reg.close()


def test_quarter_boundaries_are_paris_midnights() -> None:
    assert (Q1.start_utc, Q1.boundary_utc) == (START, BOUNDARY)
    assert (Q1.boundary_utc - Q1.start_utc) // INTERVAL_S == 8636
    assert (Q1.first_day, Q1.last_day, Q1.deadline) == (date(2025, 1, 1), date(2025, 3, 31), date(2025, 4, 15))
    assert Quarter.parse("2025q4").boundary_utc == parse_utc("2025-12-31T23:00:00Z")
    with pytest.raises(QuarterError, match="2025Q5"):
        Quarter.parse("2025Q5")


def test_simulated_quarter_file_is_read_back_cell_by_cell(site: tuple[Registry, SqliteStore], tmp_path: Path) -> None:
    reg, store = site
    result = compute_quarter(reg, store, Q1)
    paths = write_outputs(result, tmp_path / "out")

    ws = load_workbook(paths["xlsx"]).active
    cells = [[c.value for c in row] for row in ws.iter_rows()]
    assert cells == [
        ["Identifiant du point de recharge communiqué à transport.data.gouv",
         "Energie active totale soutirée lors du relevé précédent",
         "Energie active totale soutirée au 01/04/2025",
         "Date du relevé (JJ/MM/AAAA)"],
        ["FRQRTE0001A", 5000.123, 7159.123, "01/04/2025"],
        ["FRQRTE0002A", 0.5, 951.7, "01/04/2025"],
        ["FRQRTE0003A", 10000.0, None, None],
        ["FRQRTE0005A", 0.0, 340.0, "30/03/2025"],
    ]
    assert ws["B2"].number_format == ws["C2"].number_format == "0.000"
    back = read_quarterly(paths["xlsx"], Q1)
    assert [(r.point_id, r.previous_wh, r.index_wh, r.reading_date, r.row) for r in back] == [
        ("FRQRTE0001A", 5_000_123, 7_159_123, date(2025, 4, 1), 2),
        ("FRQRTE0002A", 500, 951_700, date(2025, 4, 1), 3),
        ("FRQRTE0003A", 10_000_000, None, None, 4),
        ("FRQRTE0005A", 0, 340_000, date(2025, 3, 30), 5),
    ]

    by = {r.point.point_id: r for r in result.readings}
    assert (by["FRQRTE0001A"].energy_wh, by["FRQRTE0001A"].load_factor) == (2_159_000, Decimal("0.0455"))
    assert by["FRQRTE0001A"].reading_at == BOUNDARY
    r2 = by["FRQRTE0002A"]
    assert (r2.energy_wh, r2.load_factor, r2.meter_id) == (1_339_200, Decimal("0.0282"), "cp2")
    (swap,) = r2.replacements
    assert (swap.old_meter_id, swap.old_final_wh, swap.old_final_at, swap.new_initial_wh) == (
        "cp2-old", 3_388_000, SWAP, 500)
    r3 = by["FRQRTE0003A"]
    assert (r3.index_wh, r3.energy_wh, r3.missing_since) == (None, None, parse_utc("2025-02-01T00:00:00Z"))
    assert "no valid index of meter gw-lyon-2/cp3 since 01/02/2025 01:00" in r3.warnings[0]
    assert by["FRQRTE0005A"].reading_at == parse_utc("2025-03-30T12:00:00Z")
    assert "latest valid index at 30/03/2025 14:00" in by["FRQRTE0005A"].warnings[0]
    assert by["FRQRTE0004A"].index_wh == 8636 * 10  # computed, summarised, but not in the file

    assert [(f.check, f.point_id) for f in result.findings] == [(Check.MISSING, "FRQRTE0003A")]

    summary = paths["summary_txt"].read_text(encoding="utf-8")
    assert "meter gw-lyon-1/cp2-old replaced by gw-lyon-1/cp2 at 10/02/2025 10:00: old meter final index " \
           "3388.000 kWh at 10/02/2025 10:00, new meter initial index 0.500 kWh" in summary
    rows = summary_rows(result.readings, result.findings)
    stations = {r["station_id"]: r for r in rows if r["level"] == "station"}
    # FRQRTP0001: 2159 + 1339.2 kWh over 44 kW x 2159 h = 3498.2 / 94996 = 0.0368.
    assert (stations["FRQRTP0001"]["kwh_used"], stations["FRQRTP0001"]["load_factor"]) == ("3498.200", "0.0368")
    assert stations["FRQRTP0002"]["kwh_used"] == ""  # one point unknown: no invented total
    csv_text = paths["summary_csv"].read_text(encoding="utf-8")
    assert csv_text.splitlines()[0].startswith("level,station_id,point_id")


def test_estimated_and_missing_intervals_never_give_the_index() -> None:
    s = MeterSeries.from_rows([(0, 100, "measured"), (900, 200, "interpolated"), (1800, 300, "estimated"),
                               (2700, None, "missing")])
    assert s.at(3600) == (1800, 200)
    assert s.at(1799) == (900, 100)
    assert s.at(3600, after=1800) is None


def test_load_factor_formula() -> None:
    # 22 kW for 90 days is 47 520 kWh: a load factor of exactly 1.
    assert load_factor(47_520_000, Decimal(22), 90 * 86400) == Decimal("1.0000")
    assert load_factor(1, Decimal(22), 0) is None


CTX = {"P": PointContext(True, Decimal(22), date(2025, 1, 1))}


def _check(*rows: FileReading, ctx: dict[str, PointContext] = CTX) -> list[tuple[Check, str]]:
    return [(f.check, f.point_id) for f in check_readings(list(rows), ctx, Q1)]


def test_check_load_factor_above_one_fails() -> None:
    # 01/01 -> 01/04/2025 is 90 days: at 22 kW at most 47 520 kWh.
    assert _check(FileReading("P", 0, 47_520_000, date(2025, 4, 1))) == []
    assert _check(FileReading("P", 0, 47_521_000, date(2025, 4, 1))) == [(Check.LOAD_FACTOR, "P")]


def test_check_decreasing_index_fails() -> None:
    assert _check(FileReading("P", 100_000, 100_000, date(2025, 4, 1))) == []
    assert _check(FileReading("P", 100_000, 99_999, date(2025, 4, 1))) == [(Check.DECREASING_INDEX, "P")]


def test_check_duplicate_point_fails() -> None:
    r = FileReading("P", 0, 1000, date(2025, 4, 1), row=2)
    findings = check_readings([r, FileReading("P", 0, 1000, date(2025, 4, 1), row=3)], CTX, Q1)
    assert [str(f) for f in findings] == ["row 3, P: duplicate: already listed on row 2"]


def test_check_date_window_fails() -> None:
    assert _check(FileReading("P", 0, 1000, date(2025, 1, 1))) == []
    assert _check(FileReading("P", 0, 1000, date(2025, 4, 15))) == []
    assert _check(FileReading("P", 0, 1000, date(2025, 4, 16))) == [(Check.DATE_WINDOW, "P")]
    assert _check(FileReading("P", 0, 1000, date(2024, 12, 31)),
                  ctx={"P": PointContext(True, Decimal(22), None)}) == [(Check.DATE_WINDOW, "P")]
    later = {"P": PointContext(True, Decimal(22), date(2025, 2, 1))}
    assert _check(FileReading("P", 0, 1000, date(2025, 1, 31)), ctx=later) == [(Check.DATE_WINDOW, "P")]


def test_check_unregistered_or_meterless_point_fails() -> None:
    ctx = {**CTX, "M": PointContext(False, Decimal(22), None)}
    assert _check(FileReading("X", 0, 1, date(2025, 4, 1)), FileReading("M", 0, 1, date(2025, 4, 1)), ctx=ctx) == [
        (Check.REGISTERED, "X"), (Check.REGISTERED, "M")]


def test_read_quarterly_reports_bad_cells(tmp_path: Path) -> None:
    from openpyxl import Workbook

    from cloud.carbure.quarterly import headers

    wb = Workbook()
    ws = wb.active
    ws.append(list(headers(Q1)))
    ws.append(["P", 1.0, "beaucoup", "32/03/2025"])
    wb.save(tmp_path / "q.xlsx")
    with pytest.raises(FileProblemsError) as e:
        read_quarterly(tmp_path / "q.xlsx", Q1)
    assert e.value.problems == [
        f"{tmp_path / 'q.xlsx'}: row 2, column C (Energie active totale soutirée au 01/04/2025): "
        "energy [kWh] must be a number, got 'beaucoup'",
        f"{tmp_path / 'q.xlsx'}: row 2, column D (Date du relevé (JJ/MM/AAAA)): "
        "'32/03/2025' is not a date (write it JJ/MM/AAAA or AAAA-MM-JJ)",
    ]
    with pytest.raises(FileProblemsError, match="column C .*header is 'Energie active totale soutirée au 01/04/2025'"):
        read_quarterly(tmp_path / "q.xlsx", Quarter(2025, 2))


def test_cli_quarter_writes_the_files(site: tuple[Registry, SqliteStore], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "carbure.toml"
    cfg.write_text('[carbure]\nregistry = "carbure.sqlite"\nout_dir = "out"\n'
                   '[store]\nbackend = "sqlite"\npath = "series.sqlite"\n')
    assert main(["carbure", "quarter", "--quarter", "2025Q1", "--config", str(cfg)]) == 1  # FRQRTE0003A missing
    out = capsys.readouterr().out
    assert "FRQRTE0001A: index 7159.123 kWh at 01/04/2025 00:00, 2159.000 kWh used, load factor 0.0455" in out
    assert "row 4, FRQRTE0003A: missing: no index or no reading date" in out
    assert (tmp_path / "out" / "carbure-2025Q1.xlsx").exists()
    assert main(["carbure", "quarter", "--quarter", "2025Q9", "--config", str(cfg)]) == 2
    assert "quarter '2025Q9' is not valid" in capsys.readouterr().err


def test_cli_quarter_life_from_draft_to_accepted(site: tuple[Registry, SqliteStore], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    reg, store = site
    cfg = tmp_path / "carbure.toml"
    cfg.write_text('[carbure]\nregistry = "carbure.sqlite"\nout_dir = "out"\noutbox = "outbox"\n'
                   '[store]\nbackend = "sqlite"\npath = "series.sqlite"\n')
    c = ["--config", str(cfg)]
    # The scheduled job, 3 days before the deadline: prepares 2025Q1 (a draft: FRQRTE0003A has no reading) and warns.
    assert main(["carbure", "tick", "--today", "2025-04-12", *c]) == 1
    out = capsys.readouterr().out
    assert "status: draft" in out
    assert "WARNING: quarter 2025Q1: due 15/04/2025, 3 days left, file draft" in out
    assert main(["carbure", "status", "submit", "--quarter", "2025Q1", *c]) == 2
    assert "cannot go from draft to submitted" in capsys.readouterr().err

    feb1 = parse_utc("2025-02-01T00:00:00Z")  # the gateway's backlog arrives: cp3 measured up to the boundary
    store.write_intervals("gw-lyon-2", ramp("cp3", feb1, BOUNDARY, 12_980_000, 1000))
    assert main(["carbure", "quarter", "--quarter", "2025Q1", *c]) == 0
    assert "status: ready" in capsys.readouterr().out
    assert main(["carbure", "status", "submit", "--quarter", "2025Q1", *c]) == 0
    assert (tmp_path / "outbox" / "carbure-2025Q1.xlsx").read_bytes() == \
        (tmp_path / "out" / "carbure-2025Q1.xlsx").read_bytes()
    assert "2025Q1: submitted (outbox:" in capsys.readouterr().out
    assert main(["carbure", "tick", "--today", "2025-04-14", *c]) == 0  # submitted: no warning, not re-prepared
    assert main(["carbure", "status", "accepted", "--quarter", "2025Q1", *c]) == 0
    assert "4 readings recorded as accepted" in capsys.readouterr().out

    acc = reg.last_accepted("FRQRTE0001A")
    assert acc is not None and (acc.quarter, acc.reading_at, acc.index_wh) == ("2025Q1", BOUNDARY, 7_159_123)
    # 2025Q2 starts from the accepted index: 5 intervals of 250 Wh after the boundary (4 written by the fixture).
    store.write_intervals("gw-lyon-1", ramp("cp1", BOUNDARY, BOUNDARY + 5 * INTERVAL_S, 7_159_123, 250))
    q2 = compute_quarter(reg, store, Quarter(2025, 2), max_age_s=100 * 86400)
    r1 = next(r for r in q2.readings if r.point.point_id == "FRQRTE0001A")
    assert (r1.previous_wh, r1.previous_source, r1.index_wh, r1.energy_wh) == (
        7_159_123, "accepted reading 2025Q1", 7_160_373, 1250)
