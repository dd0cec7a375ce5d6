"""Configuration errors name file, key and problem; keys are 0600; the CLI and the demo run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cli.main import main
from cloud.config import CloudConfig
from gateway.config import GatewayConfig
from quartier import enrolment, keys
from quartier.errors import ConfigError

GOOD = """
[gateway]
id = "gw-1"
state_dir = "state"
signing_key = "keys/gateway.key"
cloud_public_key = "keys/cloud.pub"

[[meters]]
id = "cp1"
model = "sdm630"
host = "127.0.0.1"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "gateway.toml"
    p.write_text(text)
    return p


def test_good_gateway_config_resolves_paths_from_its_folder(tmp_path: Path) -> None:
    cfg = GatewayConfig.load(write(tmp_path, GOOD))
    assert cfg.signing_key == tmp_path / "keys/gateway.key"
    assert (cfg.poll_interval_s, cfg.mqtt.port, cfg.meters[0].id) == (10, 1883, "cp1")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (GOOD.replace('id = "gw-1"', 'id = "GW 1"'), "gateway.id", "invalid"),
        (GOOD.replace('state_dir = "state"', ""), "gateway.state_dir", "missing"),
        (GOOD + "\n[mqtt]\nport = 70000\n", "mqtt.port", "between 1 and 65535"),
        (GOOD.replace("[gateway]", "[gateway]\npoll_interval_s = 7"), "gateway.poll_interval_s", "divide 900"),
        (GOOD.replace("[gateway]", "[gateway]\npoll_intervall_s = 10"), "gateway.poll_intervall_s", "unknown key"),
        (GOOD.replace("[gateway]", "[gateway]\nmax_gap_s = \"long\""), "gateway.max_gap_s", "whole number"),
        (GOOD + '\n[[meters]]\nid = "cp1"\nmodel = "sdm630"\nhost = "h"\n', "meters[1].id", "duplicate"),
        (GOOD.split("[[meters]]")[0], "meters", "missing"),
        (GOOD + "max_power_w = -5\n", "meters[0].max_power_w", "positive number of watts"),
        (GOOD.replace("[gateway]", "[gateway]\nbacklog_batches_per_s = 0"), "gateway.backlog_batches_per_s", ""),
        ("[gateway\n", "", "not valid TOML"),
    ],
)
def test_gateway_config_errors_name_file_key_and_problem(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        GatewayConfig.load(path)
    assert e.value.path == str(path) and e.value.key == key and problem in e.value.problem
    assert str(e.value).startswith(f"{path}: ")


def test_cloud_config_sqlite_path_is_relative_to_the_file(tmp_path: Path) -> None:
    p = tmp_path / "cloud.toml"
    p.write_text('[cloud]\nstate_dir = "s"\nprivate_key = "k"\ngateways = "g.json"\n[store]\npath = "db/x.sqlite"\n')
    assert CloudConfig.load(p).store == {"path": str(tmp_path / "db/x.sqlite")}
    p.write_text('[cloud]\nstate_dir = "s"\nprivate_key = "k"\ngateways = "g.json"\nextra = 1\n')
    with pytest.raises(ConfigError, match="cloud.extra: unknown key"):
        CloudConfig.load(p)


def test_keys_are_private_refuse_overwrite_and_enrol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "gateway", "--dir", str(tmp_path / "gw")]) == 0
    key = tmp_path / "gw" / "gateway.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    kid = keys.key_id(keys.load_gateway_public(tmp_path / "gw" / "gateway.pub")).hex()
    assert f"key id: {kid}" in capsys.readouterr().out
    assert main(["keys", "gateway", "--dir", str(tmp_path / "gw")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    reg = tmp_path / "gateways.json"
    assert main(["keys", "enrol", "--registry", str(reg), "--id", "gw-1", "--public-key",
                 str(tmp_path / "gw" / "gateway.pub")]) == 0
    assert enrolment.load_enrolments(reg)["gw-1"].current.key_id == kid  # type: ignore[union-attr]
    assert main(["keys", "enrol", "--registry", str(reg), "--id", "Bad Id", "--public-key",
                 str(tmp_path / "gw" / "gateway.pub")]) == 2


def test_world_readable_private_key_is_refused(tmp_path: Path) -> None:
    priv, _ = keys.create_cloud_key(tmp_path)
    os.chmod(priv, 0o644)
    with pytest.raises(keys.KeyFileError, match="chmod 600"):
        keys.load_cloud_private(priv)


def test_cli_reports_config_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD.replace("[gateway]", "[gateway]\npoll_interval_s = 7"))
    assert main(["gateway", "run", "--config", str(path)]) == 2
    assert "gateway.poll_interval_s: must divide 900" in capsys.readouterr().err


def test_demo_runs_and_every_interval_matches(capsys: pytest.CaptureFixture[str], mosquitto: object) -> None:
    """The README's first command, shortened: 2 quarter-hours at 1800x."""
    assert main(["demo", "--quarters", "2", "--speed", "1800"]) == 0
    out = capsys.readouterr().out
    assert "demo result: every interval matches the meters" in out
    assert out.count(" ok\n") == 2 * 5  # 4 meters, one of them also exporting


def test_gateway_status_reports_outbox_budget_clock_and_meters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.provision import provision_site

    site = provision_site(tmp_path, gateway_id="gw-s", mqtt_port=1883,
                          meters=[{"id": "cp1", "driver": "modbus", "model": "sdm630", "host": "127.0.0.1"},
                                  {"id": "linky", "driver": "tic", "device": "/dev/ttyAMA0"}],
                          gateway_options={"outbox_budget_mb": 2.0})
    (site.gateway_config.parent / "state").mkdir(exist_ok=True)
    assert main(["gateway", "status", "--config", str(site.gateway_config)]) == 0
    out = capsys.readouterr().out
    assert "pending_batches: 0" in out and "of the 2 MB budget" in out
    assert "clock_synchronised: " in out and "meters: cp1 (modbus), linky (tic)" in out


@pytest.mark.parametrize("command", ["run", "status"])
def test_gateway_run_and_status_refuse_the_same_bad_meter_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Each driver validates its [[meters]] table once, when the config loads: status says what run would."""
    from cli.provision import provision_site

    site = provision_site(tmp_path, gateway_id="gw-s", mqtt_port=1883,
                          meters=[{"id": "cp1", "driver": "modbus", "model": "sdm630", "host": "127.0.0.1",
                                   "unit": 300}])
    assert main(["gateway", command, "--config", str(site.gateway_config)]) == 2
    err = capsys.readouterr().err
    assert f"{site.gateway_config}: meters[cp1].unit: 300 must be a Modbus unit id in 0..255" in err
    assert "Traceback" not in err


def test_gateway_status_shows_the_failing_meters_of_the_last_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading

    from cli.devservers import free_port
    from cli.provision import provision_site
    from gateway.service import Gateway
    from quartier.clock import ManualClock

    nobody = free_port()  # nothing listens there: the meter's connection is refused
    site = provision_site(tmp_path, gateway_id="gw-s", mqtt_port=free_port(),
                          meters=[{"id": "cp1", "model": "sdm630", "host": "127.0.0.1", "port": nobody,
                                   "timeout_s": 0.2, "retries": 0}],
                          gateway_options={"poll_interval_s": 60})
    assert main(["gateway", "status", "--config", str(site.gateway_config)]) == 0
    assert "failing_meters: unknown (no status.json yet" in capsys.readouterr().out
    gw = Gateway(GatewayConfig.load(site.gateway_config), ManualClock(1_768_780_800.0))
    try:
        gw.run(threading.Event(), until=1_768_780_800.0 + 120)
    finally:
        gw.close()
    assert main(["gateway", "status", "--config", str(site.gateway_config)]) == 0
    out = capsys.readouterr().out
    assert "failing_meters: cp1 (as of 2026-01-19T00:0" in out and "alarm: meters not answering: cp1\n" in out
