"""CarbuRe registration file, meter mapping, registry and IRVE check (issue 7)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from cli.main import main
from cloud.carbure.errors import FileProblemsError, RegistryError
from cloud.carbure.irve import SAMPLE, check_against_irve, read_irve
from cloud.carbure.mapping import read_mapping
from cloud.carbure.registry import AcceptedReading, ChargePoint, CurrentType, MeterLink, Registry
from cloud.carbure.xlsx import HEADERS, read_registration, write_registration
from quartier.series import parse_utc

DATA = Path(__file__).parent / "data" / "carbure"
PRM = "12345678901234"


def _xlsx(path: Path, rows: list[list[object]], header: list[object] | None = None) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(list(HEADERS) if header is None else header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def _row(pid: str = "FRQRTE0001A", installed: object = "01/03/2022", mid: object = "LNE-12345",
         mdate: object = "01/01/2025", energy: object = 1520.5, prm: object = PRM, ctype: object = "AC",
         art2: object = "non", power: object = 22) -> list[object]:
    return [None, pid, installed, mid, mdate, energy, prm, None, ctype, art2, power]


def test_registration_file_is_read_with_dates_in_both_forms(tmp_path: Path) -> None:
    f = _xlsx(tmp_path / "reg.xlsx", [
        _row(),
        _row("FRQRTE0003A", installed=date(2023, 6, 15), mdate="2025-01-01", energy="10 000,25", ctype="dc",
             art2="oui", power="150"),
    ])
    a, b = read_registration(f)
    assert a == ChargePoint("FRQRTE0001A", date(2022, 3, 1), "LNE-12345", date(2025, 1, 1), 1_520_500, PRM,
                            CurrentType.AC, False, Decimal(22))
    assert (b.installed_on, b.measure_date, b.measure_energy_wh, b.current_type, b.article2, b.nominal_power_kw) == (
        date(2023, 6, 15), date(2025, 1, 1), 10_000_250, CurrentType.DC, True, Decimal(150))


def test_every_error_of_a_registration_file_is_reported_with_row_and_column(tmp_path: Path) -> None:
    f = _xlsx(tmp_path / "reg.xlsx", [
        _row(),                                                 # row 2: valid
        _row(pid=""),                                           # row 3: B
        _row("FRQRTE0002A", installed="31/02/2024"),            # row 4: C not a date
        _row("FRQRTE0003A", installed="15/06/2021", energy="abc", prm="1234567890123"),  # row 5: C, F, G
        [None] * 11,                                            # row 6: blank, skipped
        _row("FRQRTE0001A", ctype="XC", art2="peut-être", power=0),  # row 7: B dup, I, J, K
        _row("FRQRTE0005A", mid="", mdate=None, energy=-1),     # row 8: D, E, F
    ])
    with pytest.raises(FileProblemsError) as e:
        read_registration(f)
    p = str(f)
    assert e.value.problems == [
        f"{p}: row 3, column B (Identifiant du point de recharge communiqué à transport.data.gouv): "
        "missing charge point id (id_pdc_itinerance)",
        f"{p}: row 4, column C (Date d'installation (ou 01/01/2022 si antérieur)): "
        "'31/02/2024' is not a date (write it JJ/MM/AAAA or AAAA-MM-JJ)",
        f"{p}: row 5, column C (Date d'installation (ou 01/01/2022 si antérieur)): "
        "15/06/2021 is before 01/01/2022; write 01/01/2022",
        f"{p}: row 5, column F (Energie active totale soutirée à la date du relevé): "
        "energy [kWh] must be a number, got 'abc'",
        f"{p}: row 5, column G (Numéro du point référence mesure du gestionnaire du réseau public de distribution "
        "alimentant la station): PRM must be 14 digits, got '1234567890123'",
        f"{p}: row 7, column B (Identifiant du point de recharge communiqué à transport.data.gouv): "
        "charge point FRQRTE0001A already on row 2",
        f"{p}: row 7, column I (Type de courant (AC/DC)): current type must be AC or DC, got 'XC'",
        f"{p}: row 7, column J (Station soumise à l'article 2 du décret 2022-1330 (oui/non)): "
        "must be oui or non, got 'peut-être'",
        f"{p}: row 7, column K (Puissance nominale (kW)): nominal power must be above 0 kW, got '0'",
        f"{p}: row 8, column D (Numéro MID du certificat d'examen du type): "
        "missing MID type-examination certificate number",
        f"{p}: row 8, column E (Date du relevé): missing date (write it JJ/MM/AAAA)",
        f"{p}: row 8, column F (Energie active totale soutirée à la date du relevé): "
        "energy [kWh] must be a non-negative number, got '-1'",
    ]
    assert str(e.value).startswith(f"{p}: 12 problems\n  {p}: row 3, column B")


def test_a_wrong_header_is_reported_with_its_column(tmp_path: Path) -> None:
    header = list(HEADERS)
    header[4] = "Date"
    f = _xlsx(tmp_path / "reg.xlsx", [_row()], header)
    with pytest.raises(FileProblemsError) as e:
        read_registration(f)
    assert e.value.problems == [f"{f}: row 1, column E (Date du relevé): header is 'Date', expected 'Date du relevé'"]


def test_registration_round_trip_through_the_registry(tmp_path: Path) -> None:
    src = _xlsx(tmp_path / "in.xlsx", [_row(), _row("FRQRTE0002A", energy=0.001, art2="oui", power=7.4)])
    reg = Registry(tmp_path / "carbure.sqlite")
    reg.upsert_points(read_registration(src))
    reg.close()
    reg = Registry(tmp_path / "carbure.sqlite")  # persisted
    out = tmp_path / "out.xlsx"
    write_registration(out, reg.points())
    assert read_registration(out) == reg.points()
    ws = load_workbook(out).active
    assert [c.value for c in ws[1]] == [None if h == "" else h for h in HEADERS]
    assert [c.value for c in ws[3]] == [None, "FRQRTE0002A", "01/03/2022", "LNE-12345", "01/01/2025", 0.001, PRM,
                                        None, "AC", "oui", 7.4]
    reg.close()


def test_mapping_links_points_to_meters_and_keeps_replaced_meters(tmp_path: Path) -> None:
    links = read_mapping(DATA / "meters.csv")
    assert len(links) == 6
    old, new = links[1], links[2]
    # 01/03/2022 is 00:00 Europe/Paris (UTC+1 in winter): 2022-02-28T23:00Z.
    assert old == MeterLink("FRQRTE0002A", "gw-lyon-1", "cp2-old", "ABB B23 312-100", "MID-22-0002", 0,
                            parse_utc("2022-02-28T23:00:00Z"), "FRQRTP0001")
    assert (new.meter_id, new.initial_index_wh, new.installed_at) == ("cp2", 500, parse_utc("2025-02-10T09:00:00Z"))
    reg = Registry(tmp_path / "r.sqlite")
    with pytest.raises(RegistryError, match="unregistered charge points: FRQRTE0001A"):
        reg.set_links(links)
    reg.upsert_points([ChargePoint(x, date(2022, 3, 1), "LNE", date(2025, 1, 1), 0, PRM, CurrentType.AC, False,
                                   Decimal(22)) for x in sorted({x.point_id for x in links})])
    reg.set_links(links)
    assert [x.meter_id for x in reg.links("FRQRTE0002A")] == ["cp2-old", "cp2"]
    assert reg.point("FRQRTE0002A").station_id == "FRQRTP0001"
    again = ChargePoint("FRQRTE0002A", date(2022, 3, 1), "LNE-2", date(2025, 1, 1), 0, PRM, CurrentType.AC, False,
                        Decimal(11))
    reg.upsert_points([again])  # a re-imported registration file has no station: the mapping's one stays
    assert (reg.point("FRQRTE0002A").station_id, reg.point("FRQRTE0002A").nominal_power_kw) == (
        "FRQRTP0001", Decimal(11))
    reg.close()


def test_mapping_errors_name_row_and_column(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text(
        "charge_point_id,station_id,gateway_id,meter_id,meter_model,mid_meter_id,initial_index_kwh,installed_at\n"
        "FRQRTE0001A,S,gw,m1,model,MID,12.5,2025-01-01T00:00:00\n"
        ",S,gw,,model,MID,x,01/01/2025\n", encoding="utf-8")
    with pytest.raises(FileProblemsError) as e:
        read_mapping(f)
    assert e.value.problems == [
        f"{f}: row 2, column H (installed_at): time '2025-01-01T00:00:00' has no UTC offset; "
        "write it like 2026-01-19T15:15:00Z",
        f"{f}: row 3, column A (charge_point_id): missing",
        f"{f}: row 3, column D (meter_id): missing",
        f"{f}: row 3, column G (initial_index_kwh): initial index [kWh] must be a number, got 'x'",
    ]
    f.write_text("charge_point_id,gateway,meter_id\n", encoding="utf-8")
    with pytest.raises(FileProblemsError, match=r"row 1, column B \(gateway\): unknown column"):
        read_mapping(f)


def test_irve_check_reports_points_missing_and_power_mismatch() -> None:
    irve = read_irve(SAMPLE)
    assert sorted(irve) == ["FRQRTE0001A", "FRQRTE0002A", "FRQRTE0003A"]
    assert irve["FRQRTE0003A"].station_id == "FRQRTP0002"
    assert irve["FRQRTE0003A"].nominal_power_kw == Decimal(150)

    def pt(pid: str, kw: str, station: str = "") -> ChargePoint:
        return ChargePoint(pid, date(2022, 3, 1), "LNE", date(2025, 1, 1), 0, PRM, CurrentType.AC, False,
                           Decimal(kw), station)

    findings = check_against_irve(
        [pt("FRQRTE0009Z", "22"), pt("FRQRTE0001A", "22", "FRQRTP0001"), pt("FRQRTE0003A", "50", "FRQRTP0009")],
        irve)
    assert [str(f) for f in findings] == [
        "FRQRTE0003A: station FRQRTP0009 here, FRQRTP0002 in the IRVE file",
        "FRQRTE0003A: nominal power 50 kW here, 150 kW in the IRVE file",
        "FRQRTE0009Z: missing from the IRVE consolidated file (id_pdc_itinerance); "
        "CarbuRe requires the same ids as transport.data.gouv.fr",
    ]


def test_irve_file_without_the_point_column_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "irve.csv"
    f.write_text("id_station_itinerance;id_pdc_itinerance;puissance_nominale\nA;B;22\n", encoding="utf-8")
    with pytest.raises(FileProblemsError, match="missing column id_pdc_itinerance"):
        read_irve(f)


def test_accepted_readings_give_the_latest_before_a_time(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "r.sqlite")
    for q, t, wh in (("2024Q3", 100, 5), ("2024Q4", 200, 7)):
        reg.record_accepted(AcceptedReading("P", q, t, wh, "gw", "m"))
    assert reg.last_accepted("P").quarter == "2024Q4"  # type: ignore[union-attr]
    assert reg.last_accepted("P", before=200).quarter == "2024Q3"  # type: ignore[union-attr]
    assert reg.last_accepted("Q") is None
    reg.close()


def test_cli_imports_registration_and_mapping_then_checks_irve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "carbure.toml"
    cfg.write_text('[carbure]\nregistry = "c.sqlite"\n[store]\nbackend = "sqlite"\npath = "s.sqlite"\n')
    reg_file = _xlsx(tmp_path / "reg.xlsx", [_row(f"FRQRTE000{i}A") for i in range(1, 6)])
    assert main(["carbure", "import-registration", str(reg_file), "--mapping", str(DATA / "meters.csv"),
                 "--config", str(cfg)]) == 0
    assert "5 charge points imported, 6 meter links" in capsys.readouterr().out
    assert main(["carbure", "check-irve", str(SAMPLE), "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "FRQRTE0004A: missing from the IRVE" in out and "FRQRTE0005A: missing from the IRVE" in out
    assert "FRQRTE0003A: nominal power 22 kW here, 150 kW in the IRVE file" in out  # the file says 22 kW
    assert "3 problems against" in out
    bad = _xlsx(tmp_path / "bad.xlsx", [_row(pid="")])
    assert main(["carbure", "import-registration", str(bad), "--config", str(cfg)]) == 2
    assert "row 2, column B" in capsys.readouterr().err
