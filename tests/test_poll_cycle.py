"""A poll cycle that outlasts poll_interval_s is said once, with its length, and again when it fits."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from cli.provision import provision_site
from gateway.config import GatewayConfig
from gateway.drivers.base import Reading
from gateway.service import Gateway
from quartier.clock import ScaledClock

T0 = 1_768_780_800.0  # 2026-01-19T00:00:00Z


class LineMeter:
    """A meter on a slow line: each read takes ``read_s`` real seconds (30 meters at 9600 baud take about 4 s)."""

    def __init__(self, read_s: float) -> None:
        self.meter_id = "cp1"
        self.read_s = read_s
        self.index_wh = 1000

    def read(self, t: float) -> Reading:
        time.sleep(self.read_s)
        self.index_wh += 1
        return Reading(t=t, import_wh=self.index_wh)

    def close(self) -> None:
        pass


def test_overrun_warned_once_then_cleared(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = provision_site(tmp_path, gateway_id="gw-p", mqtt_port=1883,
                          meters=[{"id": "cp1", "model": "sdm630", "host": "127.0.0.1"}],
                          gateway_options={"poll_interval_s": 2, "require_time_sync": False})
    meter = LineMeter(read_s=0.15)  # 0.15 s real = 3 s of a clock running 20 times faster: over 2 s
    clock = ScaledClock(T0, speed=20.0)
    gw = Gateway(GatewayConfig.load(site.gateway_config), clock, meters=[meter])
    try:
        with caplog.at_level(logging.INFO, logger="gateway.service"):
            gw.run(threading.Event(), until=T0 + 30)
            overruns = gw.stats.poll_overruns
            meter.read_s = 0.0
            gw.run(threading.Event(), until=clock.now() + 10)
    finally:
        gw.close()
    said = [r for r in caplog.records if getattr(r, "event", "").startswith("poll-overrun")]
    assert [r.event for r in said] == ["poll-overrun", "poll-overrun-cleared"]  # type: ignore[attr-defined]
    assert overruns >= 3 and gw.stats.poll_overruns == overruns
    assert 2.5 < said[0].cycle_s < 6  # type: ignore[attr-defined]
    assert "poll cycle took" in said[0].getMessage() and "poll_interval_s = 2 s" in said[0].getMessage()
