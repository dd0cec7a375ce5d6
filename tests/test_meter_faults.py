"""Meter faults through the whole path: simulated meters misbehave on a timetable, the cloud stores the flags.

Real parts: a pymodbus TCP server playing two meters (one with a timetable of
faults, one whose integer counter rolls over), the gateway on a manual clock,
Mosquitto, the cloud and its SQLite store. Each quarter-hour's quality and
method are worked out by hand below from the poll times (every 300 s).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from cli.devservers.mosquitto import Mosquitto
from cli.provision import provision_site
from cloud.config import CloudConfig
from cloud.service import Cloud
from gateway.config import GatewayConfig
from gateway.service import Gateway
from quartier.clock import ManualClock
from quartier.registermap import load_model, rollover_wh
from quartier.series import Method, Quality
from simulators.faults import FaultWindow, MeterFaults
from simulators.modbus_tcp import ModbusTcpSimulator, SimulatedMeter
from simulators.profile import LoadProfile

T0 = 1_768_780_800  # 2026-01-19T00:00:00Z
Q = 900
CP_W = 7400  # 1850 Wh per quarter-hour
WRAP_W = 8000  # 2000 Wh per quarter-hour
EM340_ROLLOVER_WH = 2**31 * 100  # int32 of 0.1 kWh

M, I, E, X = Quality.MEASURED, Quality.INTERPOLATED, Quality.ESTIMATED, Quality.MISSING

# Faults of cp1, against polls every 300 s:
# - 2,600..2,800 s: exception 0x04 at the poll of 2,700 s (a boundary): interpolated from 2,400 and 3,000 s.
# - 3,650..7,250 s: silent (a TCP gateway answers 0x0B): the gateway backs off (skips 1, 2, 4, 8 polls) and reads
#   again at 9,600 s (attempts at 3,900, 4,500, 5,400 and 6,900 s); the boundaries from 4,500 to 9,000 s lie in a
#   6,000 s gap: estimated, energy conserved.
# - 11,000 s: replaced by a new meter at 12 Wh: the quarter 10,800..11,700 s has an index going back: missing.
# - 13,150..13,250 s: no answer within the timeout at the poll of 13,200 s; backoff skips 13,500 s (a boundary),
#   read again at 13,800 s: interpolated.
CP1_FAULTS = MeterFaults(
    windows=(
        FaultWindow(T0 + 2600, T0 + 2800, "exception", code=0x04),
        FaultWindow(T0 + 3650, T0 + 7250, "no-answer"),
        FaultWindow(T0 + 13_150, T0 + 13_250, "timeout", delay_s=1.0),
    ),
    replaced_at=T0 + 11_000,
    new_index_wh=12,
)
CP1_EXPECTED = [
    (M, Method.INDEX_DIFFERENCE), (M, Method.INDEX_DIFFERENCE),  # 0, 900
    (I, Method.LINEAR_INTERPOLATION), (I, Method.LINEAR_INTERPOLATION),  # 1800, 2700: the exception
    *[(E, Method.LINEAR_ESTIMATE)] * 7,  # 3600 .. 9000: the silence
    (M, Method.INDEX_DIFFERENCE),  # 9900
    (X, Method.INDEX_DECREASED),  # 10800: the replacement
    (M, Method.INDEX_DIFFERENCE),  # 11700
    (I, Method.LINEAR_INTERPOLATION), (I, Method.LINEAR_INTERPOLATION),  # 12600, 13500: the timeout
    (M, Method.INDEX_DIFFERENCE),  # 14400
]
QUARTERS = len(CP1_EXPECTED)


def test_each_meter_fault_gets_its_quality_and_method_in_the_store(
    tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(T0)
    cp1 = SimulatedMeter(load_model("sdm630"), LoadProfile([(0, CP_W)], 5_000_000, T0), clock, unit=1,
                         faults=CP1_FAULTS)
    em340 = load_model("em340")
    assert rollover_wh(em340.registers["import_energy"]) == EM340_ROLLOVER_WH
    start_wh = EM340_ROLLOVER_WH - 3000  # rolls over 1,500 s in
    wrapping = SimulatedMeter(em340, LoadProfile([(0, WRAP_W)], start_wh, T0), clock, unit=2)
    server = ModbusTcpSimulator([cp1, wrapping])
    server.start()
    meters = [
        {"id": "cp1", "driver": "modbus", "model": "sdm630", "host": "127.0.0.1", "port": server.port, "unit": 1,
         "timeout_s": 0.3, "max_power_w": 44_000},
        {"id": "wrap", "driver": "modbus", "model": "em340", "host": "127.0.0.1", "port": server.port, "unit": 2,
         "timeout_s": 0.3},
    ]
    site = provision_site(tmp_path, gateway_id="gw-faults", mqtt_port=mosquitto.port, meters=meters,
                          gateway_options={"poll_interval_s": 300, "resend_after_s": 2.0})
    cloud = Cloud(CloudConfig.load(site.cloud_config))
    cloud.start()
    gateway = Gateway(GatewayConfig.load(site.gateway_config), clock)
    gateway.start()
    try:
        with caplog.at_level(logging.INFO, logger="gateway.service"):
            gateway.run(threading.Event(), until=T0 + QUARTERS * Q)
        assert gateway.drain(timeout_s=30), gateway.outbox.counts()
        stored = cloud.store.read_intervals("gw-faults", "cp1")
        assert [i.start for i in stored] == [T0 + Q * q for q in range(QUARTERS)]
        got = [(i.quality, i.method) for i in stored]
        assert got == CP1_EXPECTED, "\n".join(f"{i.start - T0}: {i.quality.value} {i.method}" for i in stored)
        per_quarter = CP_W * Q // 3600
        for i in stored:
            if i.quality is M:
                assert i.energy_wh == per_quarter, i
            elif i.quality in (I, E):
                assert i.energy_wh is not None and abs(i.energy_wh - per_quarter) <= 1, i
            else:
                assert i.energy_wh is None
        # The estimated stretch conserves the meter's energy exactly: its indexes join the measured ends.
        silent = [i for i in stored if i.quality is E]
        assert silent[0].index_start_wh == stored[3].index_end_wh
        assert sum(i.energy_wh or 0 for i in silent) == silent[-1].index_end_wh - silent[0].index_start_wh
        # After the swap the new meter's index is used as it is: 12 Wh + what it counted since 11,000 s.
        assert stored[13].index_start_wh == 12 + round(CP_W * (11_700 - 11_000) / 3600)  # 1,451 Wh

        wrapped = cloud.store.read_intervals("gw-faults", "wrap")
        assert [(i.quality, i.method, i.energy_wh) for i in wrapped] == [
            (M, Method.INDEX_DIFFERENCE, 2000)
        ] * QUARTERS
        assert wrapped[0].index_start_wh == start_wh
        assert wrapped[-1].index_end_wh == start_wh + 2000 * QUARTERS  # beyond the register's range: unwrapped
        assert gateway.builders["wrap", wrapped[0].direction].wraps == 1
        assert gateway.stats.read_errors["cp1"] > 0 and "wrap" not in gateway.stats.read_errors
        # Each of the three episodes is stated once when it starts and once when it ends, however many polls fail.
        events = [(r.event, r.meter) for r in caplog.records if getattr(r, "event", "").startswith("meter-")]
        assert events == [("meter-failing", "cp1"), ("meter-answering", "cp1")] * 3
    finally:
        gateway.close()
        cloud.stop()
        server.stop()
