"""RTE's Tempo colours (tempo_like_calendars JSON) to the day calendar CSV, then billed with library/tempo.toml."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from cli.main import main
from cloud.tariffs.bill import bill
from cloud.tariffs.errors import TempoCalendarError
from cloud.tariffs.mechanisms import Account
from cloud.tariffs.model import load_tariff
from cloud.tariffs.tempo import rte_days
from tests.test_tariff_bill import series

LIBRARY = Path(__file__).parents[1] / "cloud" / "tariffs" / "library"
D = Decimal


def _value(day: str, colour: str, offset: str = "+01:00") -> dict[str, str]:
    # the shape of RTE's answer (newest first, each day midnight to midnight local time)
    return {"start_date": f"{day}T00:00:00{offset}", "end_date": f"{day}T23:59:59{offset}", "value": colour,
            "updated_date": f"{day}T10:20:00{offset}"}


def _answer(*values: dict[str, str]) -> dict[str, object]:
    return {"tempo_like_calendars": {"start_date": "2026-01-01T00:00:00+01:00",
                                     "end_date": "2026-01-10T00:00:00+01:00", "values": list(values)}}


def test_rte_answer_to_calendar_and_bill(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text(json.dumps(_answer(_value("2026-01-05", "RED"), _value("2026-01-04", "BLUE"))))
    b.write_text(json.dumps(_answer(_value("2026-01-06", "WHITE"), _value("2026-01-05", "RED"))))  # overlaps a
    out = tmp_path / "days.csv"
    assert main(["tempo-days", str(a), str(b), "--out", str(out)]) == 0
    assert "3 days 2026-01-04 to 2026-01-06 (1 blue, 1 white, 1 red)" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# RTE Tempo Like Supply Contract") and lines[2:] == [
        "date,day_type", "2026-01-04,blue", "2026-01-05,red", "2026-01-06,white"]
    (tmp_path / "tempo.toml").write_text((LIBRARY / "tempo.toml").read_text().replace(
        'calendar = "tempo_days_example.csv"', 'calendar = "days.csv"'))
    t = load_tariff(tmp_path / "tempo.toml")
    # Tuesday 6 January 2026, 1 kWh per hour: 00:00-06:00 belongs to the 5th (red HC 6 x 0.1460 = 0.876 -> 0.88),
    # 06:00-22:00 white HP 16 x 0.1730 = 2.768 -> 2.77, 22:00-24:00 white HC 2 x 0.1391 = 0.2782 -> 0.28
    [bl] = bill(t, series(date(2026, 1, 6), date(2026, 1, 7), lambda d: (250, 0)), date(2026, 1, 6),
                date(2026, 1, 7), Account(subscribed_kva=D(9)))
    assert {i.label: i.amount for i in bl.items if i.category == "usage"} == {
        "Consommation red HC": D("0.88"), "Consommation white HP": D("2.77"), "Consommation white HC": D("0.28")}


@pytest.mark.parametrize(("doc", "message"), [
    ({"values": []}, "x.json: not an RTE Tempo answer (no tempo_like_calendars object)"),
    ({"tempo_like_calendars": {}}, "tempo_like_calendars.values: missing or not a list"),
    (_answer(_value("2026-01-05", "ROUGE")), "values[0].value: must be one of BLUE, WHITE, RED, got 'ROUGE'"),
    (_answer({"value": "RED", "start_date": "5 Jan"}), "values[0].start_date: not an ISO date-time: '5 Jan'"),
    (_answer(_value("2026-01-05", "RED"), _value("2026-01-05", "BLUE")),
     "values[1].start_date: 2026-01-05 is already red, here blue"),
])
def test_bad_rte_answers_name_the_entry(doc: object, message: str) -> None:
    with pytest.raises(TempoCalendarError) as e:
        rte_days(doc, "x.json")
    assert message in str(e.value)


def test_conflicting_files_and_unreadable_input_are_user_errors(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_answer(_value("2026-01-05", "RED"))))
    b.write_text(json.dumps(_answer(_value("2026-01-05", "WHITE"))))
    assert main(["tempo-days", str(a), str(b), "--out", str(tmp_path / "d.csv")]) == 2
    assert "2026-01-05 is white here but red in an earlier file" in capsys.readouterr().err
    b.write_text("{not json")
    assert main(["tempo-days", str(b), "--out", str(tmp_path / "d.csv")]) == 2
    assert f"{b}: not JSON" in capsys.readouterr().err
    assert not (tmp_path / "d.csv").exists()
