"""The simulated site file: every mistake named by its table and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.provision import toml_document
from quartier.clock import ManualClock
from quartier.errors import ConfigError
from simulators.site import SimulatedSite, load_site

EPOCH = "2026-01-19T00:00:00Z"
PROFILE = {"initial_index_wh": 10, "epoch": EPOCH, "profile": [{"at": "00:00", "power_w": 100}]}
LINES = [{"name": "rs485", "baudrate": 19200}, {"name": "tic"}]


def site(meters: list[dict[str, Any]], lines: list[dict[str, Any]] = LINES) -> SimulatedSite:
    return SimulatedSite(meters, ManualClock(1_768_780_800), lines, "/etc/site.toml")


@pytest.mark.parametrize(
    ("meters", "key", "problem"),
    [
        ([{"id": "m", "model": "sdm630", "line": "bus9", **PROFILE}], "meters[0].line", "no [[lines]] named 'bus9'"),
        ([{"id": "m", "model": "nope", **PROFILE}], "meters[0].model", "must be one of"),
        ([{"id": "a", "model": "sdm630", "line": "rs485", **PROFILE},
          {"id": "b", "model": "sdm630", "line": "rs485", **PROFILE}], "meters[1].unit", "used twice on line 'rs485'"),
        ([{"id": "l1", "tic": "standard", "line": "tic", **PROFILE},
          {"id": "l2", "tic": "historic", "line": "tic", **PROFILE}], "meters[1].line", "already carries another"),
        ([{"id": "l", "tic": "standard", "line": "tic", **PROFILE},
          {"id": "m", "model": "sdm630", "line": "tic", **PROFILE}], "meters[1].line", "carries a TIC meter"),
        ([{"id": "l", "tic": "standard", **PROFILE}], "meters[0].line", "needs a [[lines]] of its own"),
        ([{"id": "l", "tic": "fast", "line": "tic", **PROFILE}], "meters[0].tic", "historic, standard"),
        ([{"id": "l", "tic": "standard", "line": "tic", "meter_id": "12", **PROFILE}],
         "meters[0].meter_id", "12-digit"),
        ([{"id": "m", "model": "sdm630", "line": "rs485", "colour": "red", **PROFILE}], "meters[0].colour", "unknown"),
        ([{"id": "m", "model": "sdm630", **PROFILE}, {"id": "m", "model": "sdm630", "unit": 2, **PROFILE}],
         "meters[1].id", "duplicate meter id"),
    ],
)
def test_mistakes_are_named(meters: list[dict[str, Any]], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        site(meters)
    assert caught.value.key == key and problem in str(caught.value), str(caught.value)


def test_lines_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"lines\[1\].name: duplicate line name 'rs485'"):
        site([], [{"name": "rs485"}, {"name": "rs485"}])
    with pytest.raises(ConfigError, match=r"lines\[0\].parity: must be one of N, E, O"):
        site([], [{"name": "rs485", "parity": "X"}])


def test_site_file_gives_the_gateway_its_meter_tables(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(toml_document({
        "lines": [{"name": "rs485", "link": "rs485", "baudrate": 19200, "parity": "E"}],
        "meters": [{"id": "pv", "model": "iem3155", "line": "rs485", "unit": 4, **PROFILE},
                   {"id": "cp", "model": "sdm630", "unit": 1, **PROFILE}],
    }))
    with load_site(path, ManualClock(1_768_780_800)) as running:
        tables = {m["id"]: m for m in running.gateway_meters(timeout_s=0.5)}
        assert (tmp_path / "rs485").is_symlink()
        assert tables["pv"] == {"id": "pv", "driver": "modbus", "model": "iem3155", "unit": 4, "timeout_s": 0.5,
                                "device": str(tmp_path / "rs485"), "baudrate": 19200, "parity": "E"}
        assert tables["cp"]["host"] == "127.0.0.1" and tables["cp"]["port"] > 0
    assert not (tmp_path / "rs485").exists()  # the link goes with the site
