"""``quartier bill`` end to end: a SQLite store, tariff files, the printed bill, JSON and CSV, comparisons."""

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
LIBRARY = Path(__file__).parents[1] / "cloud" / "tariffs" / "library"
PARIS = ZoneInfo("Europe/Paris")


def _write(store: SqliteStore, meter: str, direction: Direction, energies: list[int], starts: list[int]) -> None:
    index, rows = 1_000_000, []
    for t, e in zip(starts, energies):
        rows.append(Interval(meter, t, e, index, index + e, Quality.MEASURED, direction))
        index += e
    store.write_intervals("gw1", rows)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """February 2026 for gw1/grid and gw1/pv: 100 Wh imported every quarter-hour, 400 Wh exported and
    500 Wh produced every quarter-hour from 12:00 to 14:00 local (consumption 100 Wh then too)."""
    path = tmp_path / "series.sqlite"
    s = SqliteStore(str(path))
    starts = interval_starts(date(2026, 2, 1), date(2026, 3, 1)).tolist()
    noon = [12 <= datetime.fromtimestamp(t, timezone.utc).astimezone(PARIS).hour < 14 for t in starts]
    _write(s, "grid", Direction.IMPORT, [0 if n else 100 for n in noon], starts)
    _write(s, "grid", Direction.EXPORT, [400 if n else 0 for n in noon], starts)
    _write(s, "pv", Direction.EXPORT, [500 if n else 0 for n in noon], starts)
    s.close()
    return path


def test_bill_prints_writes_json_and_csv_and_compares(store: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["bill", "--store", str(store), "--site", "gw1/grid", "--production", "gw1/pv",
               "--tariff", str(LIBRARY / "base.toml"), "--tariff", str(LIBRARY / "hphc.toml"),
               "--from", "2026-02-01", "--to", "2026-02-28", "--kva", "6", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    # Base: import 28 days x 88 x 100 Wh = 246.4 kWh x 0.1952 = 48.09728 -> 48.10 ; export 28 x 8 x 0.4 = 89.6 kWh
    # at 0 ; subscription 185.64 x 28/365 = 14.2409 -> 14.24 ; total 62.34
    # without solar: 28 x 96 x 100 Wh = 268.8 kWh x 0.1952 = 52.46976 -> 52.47 ; + 14.24 = 66.71
    assert "Consommation" in text and "48.10 EUR" in text and "Total 2026-02-01 to 2026-02-28: 62.34 EUR" \
        in text
    # HP/HC (no subscription in the file): HC 22:00-06:00 = 8 h x 4 x 100 Wh = 3.2 kWh/day x 28 = 89.6 kWh x 0.1635
    # = 14.6496 -> 14.65 ; HP measured: 14 h (06-12, 14-22) x 0.4 = 5.6 kWh/day x 28 = 156.8 x 0.2081 = 32.63008
    # -> 32.63 ; total 47.28. Without solar HP 16 h = 179.2 kWh x 0.2081 = 37.29152 -> 37.29 ; total 51.94
    # comparison rows: ... scenario, bought, credited, total, difference against "without solar", currency
    lines = {tuple(line.split()[-7:]) for line in text.splitlines()}
    assert ("with", "solar", "246.4", "89.6", "62.34", "-4.37", "EUR") in lines
    assert ("without", "solar", "268.8", "0", "66.71", "+0.00", "EUR") in lines
    assert ("solar", "246.4", "89.6", "47.28", "-4.66", "EUR", "[1]") in {tuple(line.split()[-7:])
                                                                         for line in text.splitlines()}
    assert text.count("WARNING: incomplete tariff: no subscription (abonnement) line") == 2  # the bill, the table
    assert "[1] WARNING: incomplete tariff: no subscription" in text
    assert ("solar", "268.8", "0", "51.94", "+0.00", "EUR", "[1]") in {tuple(line.split()[-7:])
                                                                      for line in text.splitlines()}
    doc = json.loads((out / "base.json").read_text())
    assert doc["total"] == "62.34" and doc["currency"] == "EUR"
    assert (doc["bills"][0]["first_day"], doc["bills"][0]["last_day"], doc["bills"][0]["days"]) == (
        "2026-02-01", "2026-02-28", 28)
    assert [(i["label"], i["quantity"], i["amount"]) for i in doc["bills"][0]["items"]] == [
        ("Consommation", "246.4", "48.10"), ("Surplus", "89.6", "0.00"), ("Abonnement (6 kVA)", "0.0767", "14.24")]
    assert doc["warnings"] == []
    assert json.loads((out / "hphc.json").read_text())["warnings"][0].startswith("incomplete tariff: no subscription")
    rows = list(csv.DictReader((out / "hphc.csv").open()))
    assert {(r["first_day"], r["last_day"]) for r in rows[1:]} == {("2026-02-01", "2026-02-28")}
    assert [(r["label"], r["amount"]) for r in rows][1:] == [
        ("Consommation HP", "32.63"), ("Consommation HC", "14.65"), ("Surplus", "0.00"), ("total", "47.28"),
        ("of which tax", "7.88")]
    assert rows[0]["category"] == "warning" and rows[0]["label"].startswith("incomplete tariff: no subscription")
    table = list(csv.DictReader((out / "comparison.csv").open()))
    assert [bool(r["warnings"]) for r in table] == [False, False, True, True]


def test_subscription_by_kva_needs_the_sites_power(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bill", "--store", str(store), "--site", "gw1/grid", "--tariff", str(LIBRARY / "base.toml"),
            "--from", "2026-02-01", "--to", "2026-02-28"]
    assert main(args) == 2
    assert "'Abonnement' is priced by subscribed power: give the site's kVA (quartier bill --kva); the tariff " \
           "lists 6 kVA" in capsys.readouterr().err
    assert main([*args, "--kva", "12"]) == 2
    assert "'Abonnement' has no price for 12 kVA; the tariff lists 6 kVA" in capsys.readouterr().err
    assert main([*args, "--kva", "six"]) == 2
    assert "--kva: not a number: 'six'" in capsys.readouterr().err


def test_bill_errors_are_user_errors(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = str(LIBRARY / "base.toml")
    rc = main(["bill", "--store", str(store), "--site", "gw1/grid", "--tariff", base, "--kva", "6",
               "--from", "2026-02-01", "--to", "2026-03-01"])
    assert rc == 2
    assert "gw1/grid import: 96 interval(s) missing or of quality missing, first at 2026-02-28T23:00:00Z" \
        in capsys.readouterr().err
    assert main(["bill", "--store", str(store), "--site", "grid", "--tariff", base, "--kva", "6",
                 "--from", "2026-02-01",
                 "--to", "2026-02-02"]) == 2
    assert "--site: expected GATEWAY/METER, got 'grid'" in capsys.readouterr().err
    assert main(["bill", "--store", str(store), "--site", "gw1/grid", "--tariff", str(DATA / "urdb_pge_a10.json"),
                 "--from", "2026-02-01", "--to", "2026-02-02"]) == 2
    assert "give --timezone" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[tariff]\nname = 1\n")
    assert main(["bill", "--store", str(store), "--site", "gw1/grid", "--tariff", str(bad), "--from", "2026-02-01",
                 "--to", "2026-02-02"]) == 2
    assert f"{bad}: tariff.prices_include_tax: missing" in capsys.readouterr().err


def test_switch_to_bills_the_after_solar_tariff_against_todays(store: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # today Base; once solar is installed the customer moves to HP/HC (the guide's "Passage au tarif")
    today = tmp_path / "today.toml"
    today.write_text((LIBRARY / "base.toml").read_text().replace(
        'prices_include_tax = true', f'prices_include_tax = true\nswitch_to = "{LIBRARY / "hphc.toml"}"'))
    out = tmp_path / "out"
    rc = main(["bill", "--store", str(store), "--site", "gw1/grid", "--production", "gw1/pv", "--kva", "6",
               "--tariff", str(today), "--from", "2026-02-01", "--to", "2026-02-28", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "EDF Tarif Bleu Base switches to EDF Tarif Bleu Heures Pleines / Heures Creuses once solar" in text
    # with solar under HP/HC 47.28 (see above) against today's Base without solar 66.71: -19.43
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [(r["tariff"], r["scenario"], r["total"], r["difference"]) for r in rows] == [
        ("EDF Tarif Bleu Heures Pleines / Heures Creuses", "with solar", "47.28", "-19.43"),
        ("EDF Tarif Bleu Base", "without solar", "66.71", "0.00")]
    assert json.loads((out / "today-to-hphc.json").read_text())["total"] == "47.28"
    today.write_text(today.read_text().replace("hphc.toml", "nothere.toml"))
    assert main(["bill", "--store", str(store), "--site", "gw1/grid", "--tariff", str(today), "--kva", "6",
                 "--from", "2026-02-01", "--to", "2026-02-28"]) == 2
    assert "tariff.switch_to: no tariff file" in capsys.readouterr().err
