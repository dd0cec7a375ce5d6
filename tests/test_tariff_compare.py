"""The installer's comparison (one tariff under several mechanisms, with and without solar) and the virtual
storage statement, end to end through ``quartier bill`` on a SQLite store, against hand-computed totals."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cli.main import main
from cloud.stores.sqlite import SqliteStore
from cloud.tariffs.calendar import interval_starts
from quartier.series import Direction, Interval, Quality

DATA = Path(__file__).parent / "data" / "tariffs"
FLAT = str(DATA / "compare_flat.toml")  # usage 0.20, export 0.10 EUR/kWh, "sub" 3.10 EUR/month
PARIS = ZoneInfo("Europe/Paris")


def _write(store: SqliteStore, meter: str, direction: Direction, energies: list[int], starts: list[int]) -> None:
    index, rows = 1_000_000, []
    for t, e in zip(starts, energies):
        rows.append(Interval(meter, t, e, index, index + e, Quality.MEASURED, direction))
        index += e
    store.write_intervals("gw1", rows)


def make_store(path: Path, first: date, end: date) -> Path:
    """Every local day from ``first`` to ``end`` (excluded), no DST change inside: gw1/grid imports 200 Wh per
    quarter-hour 00:00-06:00 (24 x 0.2 = 4.8 kWh/day) and exports 500 Wh per quarter-hour 12:00-14:00
    (8 x 0.5 = 4 kWh/day); gw1/pv produces 600 Wh per quarter-hour 12:00-14:00 (4.8 kWh/day). Consumption
    = import + production - export = 4.8 + 4.8 - 4 = 5.6 kWh/day."""
    s = SqliteStore(str(path))
    starts = interval_starts(first, end).tolist()
    hours = [datetime.fromtimestamp(t, timezone.utc).astimezone(PARIS).hour for t in starts]
    _write(s, "grid", Direction.IMPORT, [200 if h < 6 else 0 for h in hours], starts)
    _write(s, "grid", Direction.EXPORT, [500 if 12 <= h < 14 else 0 for h in hours], starts)
    _write(s, "pv", Direction.EXPORT, [600 if 12 <= h < 14 else 0 for h in hours], starts)
    s.close()
    return path


@pytest.fixture(scope="module")
def may_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("may") / "s.sqlite", date(2026, 5, 1), date(2026, 6, 1))


@pytest.fixture(scope="module")
def summer_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("summer") / "s.sqlite", date(2026, 5, 1), date(2026, 8, 1))


MECHANISMS = ["--mechanism", "net_billing", "--mechanism", "virtual_storage", "--mechanism", "gross_metering"]


def test_one_tariff_under_three_mechanisms_with_and_without_solar(may_store: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["bill", "--store", str(may_store), "--site", "gw1/grid", "--production", "gw1/pv", "--tariff", FLAT,
               *MECHANISMS, "--commissioning", "2026-05-01", "--precharge", "1000", "--withdrawal-price", "0.05",
               "--from", "2026-05-01", "--to", "2026-05-31", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    # May 2026, 31 days; "sub" is one full month: 3.10.
    # net billing: bought 4.8 x 31 = 148.8 kWh x 0.20 = 29.76 ; credited 4 x 31 = 124 kWh x 0.10 = -12.40
    #   total 29.76 - 12.40 + 3.10 = 20.46
    # virtual storage (from 1 May, 1000 kWh pre-charged): the night's 4.8 kWh all drawn, the noon's 4 kWh stored;
    #   bought 0, banked 124 kWh ; withdrawal 148.8 x 0.05 = 7.44 ; total 7.44 + 3.10 = 10.54
    # gross metering: bought the consumption 5.6 x 31 = 173.6 kWh x 0.20 = 34.72 ; sold the production
    #   4.8 x 31 = 148.8 kWh x 0.10 = -14.88 ; total 34.72 - 14.88 + 3.10 = 22.94
    # without solar: 173.6 kWh x 0.20 = 34.72 + 3.10 = 37.82 ; differences -17.36, -27.28, -14.88
    table = [line.split() for line in text.splitlines() if line.startswith("Flat 0.20 ") and "solar" in line]
    assert [row[2:] for row in table] == [
        ["net_billing", "with", "solar", "148.8", "124", "20.46", "-17.36", "EUR"],
        ["virtual_storage", "with", "solar", "0", "124", "10.54", "-27.28", "EUR"],
        ["gross_metering", "with", "solar", "173.6", "148.8", "22.94", "-14.88", "EUR"],
        ["-", "without", "solar", "173.6", "0", "37.82", "+0.00", "EUR"]]
    assert "Total 2026-05-01 to 2026-05-31: 10.54 EUR" in text
    doc = json.loads((out / "comparison.json").read_text())
    assert [(r["mechanism"], r["scenario"], r["bought_kwh"], r["credited_kwh"], r["total"], r["difference"])
            for r in doc["comparison"]] == [
        ("net_billing", "with solar", "148.8", "124", "20.46", "-17.36"),
        ("virtual_storage", "with solar", "0", "124", "10.54", "-27.28"),
        ("gross_metering", "with solar", "173.6", "148.8", "22.94", "-14.88"),
        ("-", "without solar", "173.6", "0", "37.82", "0.00")]
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [(r["mechanism"], r["total"], r["difference"]) for r in rows] == [
        ("net_billing", "20.46", "-17.36"), ("virtual_storage", "10.54", "-27.28"),
        ("gross_metering", "22.94", "-14.88"), ("-", "37.82", "0.00")]
    gross = json.loads((out / "compare_flat-gross_metering.json").read_text())
    assert gross["compensation"] == "gross_metering"
    assert [(i["label"], i["quantity"], i["amount"]) for i in gross["bills"][0]["items"]] == [
        ("usage", "173.6", "34.72"), ("export", "148.8", "-14.88"), ("sub", "1.0000", "3.10")]
    vs = list(csv.DictReader((out / "compare_flat-virtual_storage.csv").open()))
    assert [(r["label"], r["amount"]) for r in vs if r["category"] not in ("statement", "storage_statement")] == [
        ("virtual storage withdrawal", "7.44"), ("sub", "3.10"), ("total", "10.54"), ("of which tax", "1.76")]


def test_without_production_the_difference_is_unknown(may_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["bill", "--store", str(may_store), "--site", "gw1/grid", "--tariff", FLAT, "--mechanism",
               "net_billing", "--mechanism", "net_metering", "--from", "2026-05-01", "--to", "2026-05-31"])
    assert rc == 0
    table = [line.split() for line in capsys.readouterr().out.splitlines()
             if line.startswith("Flat 0.20 ") and "solar" in line]
    # net metering: 124 kWh of credits earned offset 124 of the 148.8 kWh imported: 24.8 x 0.20 = 4.96 + 3.10
    assert [row[2:] for row in table] == [
        ["net_billing", "with", "solar", "148.8", "124", "20.46", "-", "EUR"],
        ["net_metering", "with", "solar", "24.8", "124", "8.06", "-", "EUR"]]


def test_virtual_storage_statement_three_months_commissioned_mid_month(
        summer_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["bill", "--store", str(summer_store), "--site", "gw1/grid", "--tariff", FLAT,
               "--mechanism", "virtual_storage", "--withdrawal-price", "0.05", "--commissioning", "2026-05-16",
               "--precharge", "1000", "--from", "2026-05-01", "--to", "2026-07-31", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    # May: 1-15 May (15 days) are before commissioning: billed from the grid, 4.8 x 15 = 72 kWh, exports lost.
    #   From 16 May (16 days): 1000 pre-charged, stored 4 x 16 = 64, drawn 4.8 x 16 = 76.8,
    #   closing 1000 + 64 - 76.8 = 987.2. Bill: usage 72 x 0.20 = 14.40, withdrawal 76.8 x 0.05 = 3.84, sub 3.10
    # June (30 days): stored 120, drawn 144, closing 987.2 + 120 - 144 = 963.2 ; bill 7.20 + 3.10
    # July (31 days): stored 124, drawn 148.8, closing 963.2 + 124 - 148.8 = 938.4 ; bill 7.44 + 3.10
    start = text.index("Virtual storage statement [kWh]")
    statement = [line.split() for line in text[start:].splitlines()[1:5]]
    assert statement == [
        ["month", "opening", "pre-charge", "stored", "drawn", "closing", "from", "grid"],
        ["2026-05-01", "to", "2026-05-31", "0", "1000", "64", "76.8", "987.2", "72"],
        ["2026-06-01", "to", "2026-06-30", "987.2", "0", "120", "144", "963.2", "0"],
        ["2026-07-01", "to", "2026-07-31", "963.2", "0", "124", "148.8", "938.4", "0"]]
    assert "Total 2026-05-01 to 2026-07-31: 42.18 EUR" in text  # 21.34 + 10.30 + 10.54
    doc = json.loads((out / "compare_flat-virtual_storage.json").read_text())
    assert [b["total"] for b in doc["bills"]] == ["21.34", "10.30", "10.54"]
    assert [(i["label"], i["quantity"], i["amount"]) for i in doc["bills"][0]["items"]] == [
        ("usage", "72", "14.40"), ("virtual storage withdrawal", "76.8", "3.84"), ("sub", "1.0000", "3.10")]
    assert doc["storage_statement"] == [
        {"first_day": "2026-05-01", "last_day": "2026-05-31", "opening_kwh": "0", "precharge_kwh": "1000",
         "stored_kwh": "64", "drawn_kwh": "76.8", "closing_kwh": "987.2", "grid_kwh": "72"},
        {"first_day": "2026-06-01", "last_day": "2026-06-30", "opening_kwh": "987.2", "precharge_kwh": "0",
         "stored_kwh": "120", "drawn_kwh": "144", "closing_kwh": "963.2", "grid_kwh": "0"},
        {"first_day": "2026-07-01", "last_day": "2026-07-31", "opening_kwh": "963.2", "precharge_kwh": "0",
         "stored_kwh": "124", "drawn_kwh": "148.8", "closing_kwh": "938.4", "grid_kwh": "0"}]
    rows = list(csv.DictReader((out / "compare_flat-virtual_storage.csv").open()))
    assert [(r["first_day"], r["label"], r["quantity"]) for r in rows if r["category"] == "storage_statement"] == [
        ("2026-05-01", "storage opening balance", "0"), ("2026-05-01", "storage pre-charge", "1000"),
        ("2026-05-01", "stored", "64"), ("2026-05-01", "drawn", "76.8"),
        ("2026-05-01", "storage closing balance", "987.2"), ("2026-05-01", "billed from the grid", "72"),
        ("2026-06-01", "storage opening balance", "987.2"), ("2026-06-01", "storage pre-charge", "0"),
        ("2026-06-01", "stored", "120"), ("2026-06-01", "drawn", "144"),
        ("2026-06-01", "storage closing balance", "963.2"), ("2026-06-01", "billed from the grid", "0"),
        ("2026-07-01", "storage opening balance", "963.2"), ("2026-07-01", "storage pre-charge", "0"),
        ("2026-07-01", "stored", "124"), ("2026-07-01", "drawn", "148.8"),
        ("2026-07-01", "storage closing balance", "938.4"), ("2026-07-01", "billed from the grid", "0")]


@pytest.mark.parametrize("extra, message", [
    (["--mechanism", "virtual_storage"], "virtual storage needs --commissioning DATE"),
    (["--mechanism", "virtual_storage", "--commissioning", "2026-05-02", "--precharge", "500"],
     "--precharge: the virtual storage pre-charge is 0 or 1000 to 5000 kWh, got 500"),
    (["--mechanism", "virtual_storage", "--commissioning", "2026-06-01"],
     "--commissioning 2026-06-01 is after --to 2026-05-31"),
    (["--mechanism", "virtual_storage", "--commissioning", "2026-04-01", "--precharge", "1000"],
     "give the storage balance at --from with --opening KWH"),
    (["--mechanism", "net_billing", "--mechanism", "net_billing"], "--mechanism net_billing is given twice"),
    (["--mechanism", "gross_metering"], "gross metering (buy all, sell all) needs --production"),
    (["--mechanism", "net_billing", "--withdrawal-price", "0.05"], "--withdrawal-price is for --mechanism "
                                                                    "virtual_storage"),
    (["--mechanism", "virtual_storage", "--commissioning", "2026-05-01", "--withdrawal-price", "-1"],
     "--withdrawal-price: must be >= 0 EUR/kWh"),
    (["--opening", "abc"], "--opening: not a number"),
])
def test_mechanism_options_are_validated(may_store: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                         message: str) -> None:
    rc = main(["bill", "--store", str(may_store), "--site", "gw1/grid", "--tariff", FLAT, "--from", "2026-05-01",
               "--to", "2026-05-31", *extra])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_net_billing_needs_an_export_charge(may_store: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    vs = tmp_path / "vs.toml"
    vs.write_text(Path(FLAT).read_text().replace('compensation = "net_billing"', 'compensation = "virtual_storage"')
                  .replace('[[charges]]\ntype = "export"\nstructure = "flat"\nname = "export"\nprice = "0.10"\n', "")
                  + '[virtual_storage]\nwithdrawal_price = "0"\n')
    rc = main(["bill", "--store", str(may_store), "--site", "gw1/grid", "--tariff", str(vs), "--mechanism",
               "net_billing", "--from", "2026-05-01", "--to", "2026-05-31"])
    assert rc == 2
    assert "tariff 'Flat 0.20': net_billing credits exports at the export rate, but the tariff has no charge of " \
           "type \"export\"" in capsys.readouterr().err
