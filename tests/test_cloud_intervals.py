"""``quartier cloud intervals``: what an operator reads from the store, with filters, and safe in a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from cli.provision import provision_site
from cloud.config import CloudConfig
from cloud.stores.sqlite import SqliteStore
from quartier.series import Direction, Interval, Method, Quality

T0 = 1_768_780_800  # 2026-01-19T00:00:00Z


def site_with(tmp_path: Path, intervals: dict[str, list[Interval]]) -> Path:
    site = provision_site(tmp_path, gateway_id="gw-a", mqtt_port=1883,
                          meters=[{"id": "cp1", "model": "sdm630", "host": "127.0.0.1"}])
    store = SqliteStore(CloudConfig.load(site.cloud_config).store["path"])
    for gateway_id, rows in intervals.items():
        store.write_intervals(gateway_id, rows)
    store.close()
    return site.cloud_config


def test_header_both_directions_and_unknown_energy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = site_with(tmp_path, {"gw-a": [
        Interval("pv", T0, 120, 1000, 1120, Quality.MEASURED, method=Method.INDEX_DIFFERENCE),
        Interval("pv", T0 + 900, None, 1120, None, Quality.MISSING, method=Method.GAP_TOO_LONG),
        Interval("pv", T0, 310, 5000, 5310, Quality.INTERPOLATED, Direction.EXPORT),
    ]})
    assert main(["cloud", "intervals", "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "gateway\tmeter\tdirection\tstart_utc\twh\tquality\tmethod",
        "gw-a\tpv\timport\t2026-01-19T00:00:00Z\t120\tmeasured\tindex-difference",
        "gw-a\tpv\timport\t2026-01-19T00:15:00Z\t\tmissing\tgap-too-long",
        "gw-a\tpv\texport\t2026-01-19T00:00:00Z\t310\tinterpolated\t",
    ]


def test_filters_by_gateway_meter_and_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [Interval(m, T0 + 900 * q, 10 * q, 0, 10 * q, Quality.MEASURED) for m in ("cp1", "cp2") for q in range(4)]
    config = site_with(tmp_path, {"gw-a": rows, "gw-b": rows[:1]})
    argv = ["cloud", "intervals", "--config", str(config), "--gateway", "gw-a", "--meter", "cp2",
            "--from", "2026-01-19T00:15:00Z", "--to", "2026-01-19T00:45:00Z"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:4] for line in lines[1:]] == [
        ["gw-a", "cp2", "import", "2026-01-19T00:15:00Z"], ["gw-a", "cp2", "import", "2026-01-19T00:30:00Z"]]


def test_an_unknown_meter_is_named_not_silently_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = site_with(tmp_path, {"gw-a": [Interval("cp1", T0, 1, 0, 1, Quality.MEASURED)]})
    assert main(["cloud", "intervals", "--config", str(config), "--meter", "cp9"]) == 2
    assert "no stored meter matches --gateway * --meter cp9 (the store holds: gw-a/cp1)" in capsys.readouterr().err


def test_piped_into_head_it_stops_quietly(tmp_path: Path) -> None:
    rows = [Interval("cp1", T0 + 900 * q, 1, q, q + 1, Quality.MEASURED) for q in range(20_000)]  # > a pipe's buffer
    config = site_with(tmp_path, {"gw-a": rows})
    result = subprocess.run(f"{sys.executable} -m cli cloud intervals --config {config} | head -n 2",
                            shell=True, capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.stdout.splitlines()[0].startswith("gateway\tmeter")
    assert len(result.stdout.splitlines()) == 2
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == "quartier 0.1.0\n"
