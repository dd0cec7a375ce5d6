"""The French tariff library (Base, HP/HC, Tempo) and day calendars: loads, and hand-computed bills."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from cloud.tariffs.bill import bill
from cloud.tariffs.errors import BillingError, TariffFileError
from cloud.tariffs.mechanisms import Account
from cloud.tariffs.model import load_tariff
from tests.test_tariff_bill import series

LIBRARY = Path(__file__).parents[1] / "cloud" / "tariffs" / "library"
D = Decimal


@pytest.mark.parametrize("name", ["base", "hphc", "tempo"])
def test_library_files_load_and_state_their_source(name: str) -> None:
    t = load_tariff(LIBRARY / f"{name}.toml")
    assert t.country == "FR" and t.prices_include_tax and t.tax_percent == D(20)
    assert "2025-08-01" in t.source and t.valid_from == date(2025, 8, 1)


def test_example_tempo_calendar_has_the_tempo_counts() -> None:
    t = load_tariff(LIBRARY / "tempo.toml")
    assert t.day_calendar is not None and t.day_calendar.day_start_hour == 6
    counts = [t.day_calendar.types.count(i) for i in range(3)]
    assert counts == [300, 43, 22]  # blue, white, red over one Tempo year


def test_base_bill(tmp_path: Path) -> None:
    t = load_tariff(LIBRARY / "base.toml")
    # January 2026: 250 Wh every quarter-hour = 24 kWh/day x 31 = 744 kWh x 0.1952 = 145.2288 -> 145.23
    # subscription 185.64 x 31/365 = 15.7668 -> 15.77 ; total 161.00 ; TVA share 161.00 x 20/120 = 26.8333 -> 26.83
    s = series(date(2026, 1, 1), date(2026, 2, 1), lambda d: (250, 0))
    [b] = bill(t, s, date(2026, 1, 1), date(2026, 2, 1), Account(subscribed_kva=D(6)))
    assert [(i.label, i.amount) for i in b.items] == [("Consommation", D("145.23")),
                                                      ("Abonnement (6 kVA)", D("15.77"))]
    assert (b.total, b.tax) == (D("161.00"), D("26.83"))


def _tempo_with(tmp_path: Path, rows: str):  # type: ignore[no-untyped-def]
    text = (LIBRARY / "tempo.toml").read_text().replace('calendar = "tempo_days_example.csv"',
                                                         'calendar = "days.csv"')
    (tmp_path / "tempo.toml").write_text(text)
    (tmp_path / "days.csv").write_text("# test calendar\ndate,day_type\n" + rows)
    return load_tariff(tmp_path / "tempo.toml")


def test_tempo_day_runs_from_6_to_6(tmp_path: Path) -> None:
    t = _tempo_with(tmp_path, "2026-01-04,blue\n2026-01-05,red\n")
    # Monday 5 January 2026 local day, 250 Wh per quarter-hour (1 kWh per hour):
    # 00:00-06:00 belongs to Sunday 4 (blue): blue HC 6 kWh x 0.1232 = 0.7392 -> 0.74
    # 06:00-22:00 red HP 16 kWh x 0.6468 = 10.3488 -> 10.35 ; 22:00-24:00 red HC 2 kWh x 0.1460 = 0.292 -> 0.29
    # subscription 238.06 x 1/365 = 0.6522 -> 0.65
    s = series(date(2026, 1, 5), date(2026, 1, 6), lambda d: (250, 0))
    [b] = bill(t, s, date(2026, 1, 5), date(2026, 1, 6), Account(subscribed_kva=D(9)))
    assert {i.label: (i.quantity, i.amount) for i in b.items} == {
        "Consommation blue HC": (D("6"), D("0.74")), "Consommation red HP": (D("16"), D("10.35")),
        "Consommation red HC": (D("2"), D("0.29")), "Abonnement (9 kVA)": (D("0.0027"), D("0.65"))}
    # 6 January needs 5 January (red, until 06:00) and 6 January, which the calendar lacks (rows count file lines)
    s2 = series(date(2026, 1, 6), date(2026, 1, 7), lambda d: (250, 0))
    with pytest.raises(BillingError, match="has no day type for 2026-01-06"):
        bill(t, s2, date(2026, 1, 6), date(2026, 1, 7), Account(subscribed_kva=D(9)))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("2026-01-05,purple\n", "row 3, column day_type: must be one of blue, white, red; got 'purple'"),
        ("2026-13-05,red\n", "row 3, column date: not a date (YYYY-MM-DD): '2026-13-05'"),
        ("2026-01-05,red\n2026-01-05,blue\n", "row 4, column date: 2026-01-05 appears twice"),
    ],
)
def test_day_calendar_errors_name_the_row(tmp_path: Path, rows: str, expected: str) -> None:
    with pytest.raises(TariffFileError) as e:
        _tempo_with(tmp_path, rows)
    assert str(e.value) == f"{tmp_path / 'days.csv'}: {expected}"


def test_schedule_must_cover_every_calendar_day_type(tmp_path: Path) -> None:
    text = (LIBRARY / "tempo.toml").read_text()
    (tmp_path / "tempo_days_example.csv").write_text("date,day_type\n2026-01-05,red\n")
    (tmp_path / "t.toml").write_text(text.replace("\nwhite = [", "\nwhiite = ["))
    with pytest.raises(TariffFileError, match=r"charges\[0\].schedule.all.white: missing"):
        load_tariff(tmp_path / "t.toml")
