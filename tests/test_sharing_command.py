"""``quartier share run`` / ``bill`` end to end over a SQLite store, and the community file's validation."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from cloud.sharing.community import Community, month_periods
from cloud.sharing.files import read_consumption, read_production
from cloud.stores.sqlite import SqliteStore
from quartier.errors import ConfigError
from quartier.series import Direction, Interval, Quality

GUIDE_ROWS = [
    "2023-01-19 15:15:00Z;54144900000001;1;50;0,7;0,5;0,5;0;0,2",
    "2023-01-19 15:15:00Z;54144900000002;1;50;0,4;0,5;0,4;0,1;0",
    "2023-01-19 15:15:00Z;54144900000001;2;100;0,2;0,1;0,1;0;0,1",
    "2023-01-19 15:15:00Z;54144900000002;2;0;0;0;0;0;0",
]

COMMUNITY = """\
[community]
name = "Les Prés"
key = "static"
iterations = 2

[store]
backend = "sqlite"
path = "series.sqlite"

[[prices]]
role = "producer"
eur_per_kwh = "0.25"

[[prices]]
role = "consumer"
eur_per_kwh = 0.50

[[participants]]
ean = "54144900000003"
role = "producer"
gateway = "gw-1"
meter = "pv"

[[participants]]
ean = "54144900000001"
role = "consumer"
gateway = "gw-1"
meter = "house"
key = "50"

[[participants]]
ean = "54144900000002"
role = "consumer"
gateway = "gw-2"
meter = "shop"
key = 50
entry = 2023-01-16
"""


def _series(meter: str, periods: np.ndarray, wh: int, direction: Direction,
            skip: frozenset[int] = frozenset(), missing: frozenset[int] = frozenset()) -> list[Interval]:
    out = []
    for i, t in enumerate(periods.tolist()):
        if i in skip:
            continue
        if i in missing:
            out.append(Interval(meter, t, None, None, None, Quality.MISSING, direction))
        else:
            out.append(Interval(meter, t, wh, i * wh, (i + 1) * wh, Quality.MEASURED, direction))
    return out


def _site(tmp_path: Path, c2_skip: frozenset[int] = frozenset(), c2_missing: frozenset[int] = frozenset()) -> Path:
    periods = month_periods("2023-01")
    store = SqliteStore(str(tmp_path / "series.sqlite"))
    store.write_intervals("gw-1", _series("pv", periods, 1000, Direction.EXPORT))
    store.write_intervals("gw-1", _series("house", periods, 700, Direction.IMPORT))
    # The shop's meter also exports a little: the consumer side must read the import direction only.
    store.write_intervals("gw-2", _series("shop", periods, 400, Direction.IMPORT, c2_skip, c2_missing))
    store.write_intervals("gw-2", _series("shop", periods, 5, Direction.EXPORT))
    store.close()
    path = tmp_path / "community.toml"
    path.write_text(COMMUNITY, encoding="utf-8")
    return path


def test_month_periods_are_local_months() -> None:
    jan = month_periods("2023-01")
    assert len(jan) == 2976
    assert datetime.fromtimestamp(int(jan[0]), timezone.utc) == datetime(2022, 12, 31, 23, 0, tzinfo=timezone.utc)
    assert len(month_periods("2023-03")) == 2976 - 4 and len(month_periods("2023-10")) == 2976 + 4
    with pytest.raises(ValueError, match="2023-01"):
        month_periods("2023-1-5")


def test_share_run_writes_files_and_statements(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    community = _site(tmp_path)
    out = tmp_path / "out"
    assert main(["share", "run", "--community", str(community), "--month", "2023-01", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "writing the consumption file: 2976/2976 (100 %)" in captured.err
    cons_lines = (out / "consumption_2023-01.csv").read_text(encoding="utf-8").splitlines()
    i = cons_lines.index(GUIDE_ROWS[0])
    assert cons_lines[i:i + 4] == GUIDE_ROWS
    # Before the shop's entry (16 Jan, local) the house has 100 % of the sharing and the shop no row.
    assert "2023-01-10 12:00:00Z;54144900000001;1;100;0,7;1;0,7;0,3;0" in cons_lines
    assert not any(line.startswith("2023-01-10 12:00:00Z;54144900000002") for line in cons_lines)
    # 16 Jan 00:00 in Paris is 15 Jan 23:00Z.
    assert "2023-01-15 23:00:00Z;54144900000002;1;50;0,4;0,5;0,4;0,1;0" in cons_lines
    assert not any(line.startswith("2023-01-15 22:45:00Z;54144900000002") for line in cons_lines)
    # 1440 periods before the entry (1000 Wh: 700 to the house), 1536 after (600 + 400).
    statements = (out / "statements_2023-01.csv").read_text(encoding="utf-8").splitlines()
    assert statements == [
        "EAN;Rôle;Du;Au;Énergie (kWh);Prix (EUR/kWh);Montant (EUR)",
        "54144900000003;producer;2023-01-01;2023-01-31;2544;0,25;636,00",
        "54144900000001;consumer;2023-01-01;2023-01-31;1929,6;0,5;964,80",
        "54144900000002;consumer;2023-01-16;2023-01-31;614,4;0,5;307,20",
    ]
    assert "2544 kWh x 0.25 EUR/kWh = 636.00 EUR" in captured.out
    p = read_production(out / "production_2023-01.csv")
    assert int(p.self_consumed_wh.sum()) == 2_544_000 and int(p.residual_wh.sum()) == 2_976_000 - 2_544_000

    # Billing from the files as received gives the same statements.
    assert main(["share", "bill", "--community", str(community), "--production", str(out / "production_2023-01.csv"),
                 "--consumption", str(out / "consumption_2023-01.csv"), "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "statements.csv").read_text(encoding="utf-8").splitlines() == statements


def test_missing_data_is_reported_not_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    periods = month_periods("2023-01")
    t_19 = int(datetime(2023, 1, 19, 15, 15, tzinfo=timezone.utc).timestamp())
    i = int((t_19 - periods[0]) // 900)
    # The shop: 4 periods absent from 19 Jan 15:15Z, one 'missing' interval 20 periods later, and nothing
    # before its entry (not missing: it was not in the sharing yet).
    community = _site(tmp_path, c2_skip=frozenset(range(0, 1440)) | {i, i + 1, i + 2, i + 3},
                      c2_missing=frozenset({i + 20}))
    out = tmp_path / "out"
    args = ["share", "run", "--community", str(community), "--month", "2023-01", "--out", str(out), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "data missing for 1 series" in err
    assert ("54144900000002 (consumer, gw-2/shop import): 5 periods missing: 2023-01-19T15:15:00Z .. "
            "2023-01-19T16:15:00Z, 2023-01-19T20:15:00Z .. 2023-01-19T20:30:00Z") in err
    assert not out.exists() or not any(out.iterdir())

    assert main([*args, "--exclude-missing"]) == 0
    c = read_consumption(out / "consumption_2023-01.csv")
    j = c.eans.index("54144900000002")
    assert c.present[:, j].sum() == 1536 - 5
    assert int(c.covered_total_wh()[:, j].sum()) == (1536 - 5) * 400


def test_community_file_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(COMMUNITY.replace('key = "50"\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.toml: participants\[1\]\.key: missing"):
        Community.load(path)
    path.write_text(COMMUNITY.replace('gateway = "gw-2"', 'gateway = "gw-2"\nmeterr = "x"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"participants\[2\]\.meterr: unknown key"):
        Community.load(path)
    path.write_text(COMMUNITY.replace("entry = 2023-01-16", 'entry = "16/01/2023"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"participants\[2\]\.entry: must be a date"):
        Community.load(path)
    path.write_text(COMMUNITY.replace('eur_per_kwh = "0.25"', 'eur_per_kwh = "0,25"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"prices\[0\]\.eur_per_kwh: '0,25' is not a decimal number"):
        Community.load(path)
    path.write_text(COMMUNITY.replace('ean = "54144900000002"', 'ean = "54144900000001"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"participants\[2\]\.ean: 54144900000001 already given by participants\[1\]"):
        Community.load(path)


def test_community_loads(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(COMMUNITY, encoding="utf-8")
    c = Community.load(path)
    assert [p.ean for p in c.producers] == ["54144900000003"]
    assert [p.ean for p in c.consumers] == ["54144900000001", "54144900000002"]
    assert c.static_keys().tolist() == [50_000_000, 50_000_000]
    assert c.prices[1].eur_per_kwh == Decimal("0.5")
    assert c.store == {"backend": "sqlite", "path": str(tmp_path / "series.sqlite")}


def test_participant_both_producer_and_consumer(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(COMMUNITY.replace('role = "consumer"\ngateway = "gw-1"', 'role = "both"\ngateway = "gw-1"')
                    .replace('meter = "house"', 'meter = "house"\ncoefficient = "80.5"'), encoding="utf-8")
    c = Community.load(path)
    assert [p.ean for p in c.producers] == ["54144900000003", "54144900000001"]
    assert [p.ean for p in c.consumers] == ["54144900000001", "54144900000002"]
    assert c.producer_coefficients().tolist() == [100_000_000, 80_500_000]
