"""``quartier cloud gateways``: the status documents the cloud keeps, shown to an operator."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from cli.provision import provision_site
from cloud.config import CloudConfig
from cloud.ledger import Ledger


def test_enrolled_gateways_with_and_without_a_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = provision_site(tmp_path, gateway_id="gw-a", mqtt_port=1883,
                          meters=[{"id": "cp1", "model": "sdm630", "host": "127.0.0.1"}])
    config = CloudConfig.load(site.cloud_config)
    ledger = Ledger(config.state_dir / "ledger.sqlite")
    ledger.record_status("gw-a", {"state": "online", "t": 1.0, "alarms": ["meters not answering: cp3"],
                                  "failing_meters": ["cp3"], "outbox_bytes": 3 * 2**20,
                                  "outbox_budget_bytes": 1024 * 2**20, "clock_jumps": 0})
    ledger.record_status("gw-stray", {"state": "offline"})
    ledger.close()
    assert main(["cloud", "gateways", "--config", str(site.cloud_config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["GATEWAY", "STATE", "SINCE", "(UTC)", "BATCHES", "OUTBOX", "FAILING", "METERS",
                                "ALARMS"]
    a = lines[1].split("  ")
    cells = [c.strip() for c in a if c.strip()]
    assert cells[0:2] == ["gw-a", "online"] and cells[3:] == ["0", "3.0 / 1024 MB", "cp3", "meters not answering: cp3"]
    assert cells[2].endswith("Z")
    assert [c.strip() for c in lines[2].split("  ") if c.strip()][:2] == ["gw-stray", "offline (not enrolled)"]


def test_a_gateway_never_seen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = provision_site(tmp_path, gateway_id="gw-new", mqtt_port=1883,
                          meters=[{"id": "cp1", "model": "sdm630", "host": "127.0.0.1"}])
    assert main(["cloud", "gateways", "--config", str(site.cloud_config)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:4] == ["gw-new", "never", "seen", "0"]
