"""``quartier scan``'s Modbus part: which known models answer at which unit ids, over TCP and RTU."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from gateway.drivers.modbus import ModbusRtuBus, ModbusTcpBus
from gateway.scan import parse_units
from gateway.scan.modbus import plausible, scan_bus
from quartier.clock import ManualClock
from quartier.registermap import load_model
from simulators.modbus_rtu import ModbusRtuSimulator
from simulators.modbus_tcp import ModbusTcpSimulator, SimulatedMeter
from simulators.profile import LoadProfile
from simulators.serial_line import SerialLine
from simulators.site import SimulatedSite

EPOCH = 1_768_780_800  # 2026-01-19T00:00:00Z


def sim(model: str, unit: int, index_wh: int, clock: ManualClock) -> SimulatedMeter:
    return SimulatedMeter(load_model(model), LoadProfile.constant(3000, index_wh, EPOCH), clock, unit=unit)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(EPOCH)


def test_tcp_gateway_with_four_models_behind_it(clock: ManualClock) -> None:
    meters = [
        sim("sdm72dm2", 1, 1_000_000, clock),
        sim("abb_b23", 2, 2_000_000, clock),
        sim("em340", 3, 3_000_000, clock),
        sim("iem3155", 5, 5_000_000, clock),
    ]
    with ModbusTcpSimulator(meters) as server:
        bus = ModbusTcpBus("127.0.0.1", server.port, timeout_s=0.5, retries=0)
        try:
            found = {scan.unit: scan for scan in scan_bus(bus, range(1, 7))}
        finally:
            bus.close()
    assert sorted(found) == [1, 2, 3, 5]  # units 4 and 6: the TCP gateway answers 0x0B, nobody is there
    # Identified by their model registers (the SDM72D-M-2 meter code, ABB and Schneider designations).
    assert found[1].identified == ["sdm72dm2"]
    assert found[2].identified == ["abb_b23"]
    assert found[5].identified == ["iem3155"]
    assert found[1].models == ["sdm72dm2"] and found[2].models == ["abb_b23"] and found[5].models == ["iem3155"]
    # The EM340 has no identify register in its map; it is the only map whose registers read back plausibly.
    assert found[3].models == ["em340"]
    assert found[3].candidates["em340"] == 3_000_000
    assert found[2].candidates["abb_b23"] == 2_000_000


def test_rtu_line_finds_units_and_skips_silent_ones_after_one_timeout(clock: ManualClock) -> None:
    with SerialLine(default_baudrate=19200, pace=True) as line:
        meters = [sim("sdm630", 1, 1_234_000, clock), sim("em340", 4, 4_000_000, clock)]
        with ModbusRtuSimulator(meters, line.end_a, baudrate=19200):
            bus = ModbusRtuBus(line.end_b, baudrate=19200, timeout_s=0.1, retries=0)
            try:
                found = {scan.unit: scan for scan in scan_bus(bus, [1, 2, 3, 4])}
            finally:
                bus.close()
    assert sorted(found) == [1, 4]
    # SDM630 and the original SDM72D-M keep their energy at the same addresses; the scan says both.
    assert {"sdm630", "sdm72dm"} <= set(found[1].candidates)
    assert found[1].candidates["sdm630"] == 1_234_000
    assert found[4].models == ["em340"]


def test_plausibility_rules() -> None:
    model = load_model("sdm630")
    assert plausible(model, {"import_energy": 5.0, "voltage_l1": 231.0, "frequency": 50.0}) is None
    assert plausible(model, {"import_energy": 5.0, "voltage_l2": 0.0}) is None  # phase not wired
    assert "voltage_l1" in (plausible(model, {"import_energy": 5.0, "voltage_l1": 1.2e9}) or "")
    assert "negative" in (plausible(model, {"import_energy": -1.0}) or "")
    assert "nan" in (plausible(model, {"import_energy": float("nan")}) or "")


def test_parse_units() -> None:
    assert parse_units("1-3,7") == [1, 2, 3, 7]
    with pytest.raises(ValueError, match="'9-2'"):
        parse_units("9-2")
    with pytest.raises(ValueError, match="'x'"):
        parse_units("x")


def test_scan_command_on_a_mixed_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What an installer sees: ``quartier scan`` on the TCP charger, the RS485 line and the Linky's TIC port."""
    clock = ManualClock(EPOCH + 12 * 3600)
    profile = {"initial_index_wh": 1_000_000, "epoch": "2026-01-19T00:00:00Z",
               "profile": [{"at": "00:00", "power_w": 2000}]}
    lines = [{"name": "rs485", "link": "rs485", "baudrate": 19200, "parity": "E"}, {"name": "tic", "link": "tic"}]
    meters = [
        {"id": "cp1", "model": "alfen_eve", "unit": 1, **profile},
        {"id": "m1", "model": "abb_b23", "line": "rs485", "unit": 3, **profile},
        {"id": "linky", "tic": "historic", "contract": "BASE", "meter_id": "021861348497", "line": "tic", **profile},
    ]
    with SimulatedSite(meters, clock, lines, str(tmp_path / "site.toml")) as site:
        tcp = next(m for m in site.gateway_meters() if m["id"] == "cp1")
        assert main(["scan", f"127.0.0.1:{tcp['port']}", "--units", "1-2"]) == 0
        out = capsys.readouterr().out
        assert "unit 1: alfen_eve (identified), import index 1,024,000 Wh" in out and "1 meter found" in out
        # The installer does not know the line's speed: at 9600 baud (8N1, then 8E1) the line garbles everything.
        # (A pseudo-terminal cannot see parity, so 19200 8N1 is heard on this 19200 8E1 line; a real UART
        # would report parity errors there and the scan would go on to 19200 8E1.)
        target = str(tmp_path / "rs485")
        assert main(["scan", target, "--protocol", "rtu", "--units", "2-3", "--timeout", "0.2"]) == 0
        out = capsys.readouterr().out
        assert out.count("no unit answered") == 2
        assert "at 19200 8N1" in out and "unit 3: abb_b23 (identified), import index 1,024,000 Wh" in out
        assert main(["scan", str(tmp_path / "tic"), "--listen", "3"]) == 0
        out = capsys.readouterr().out
        assert "Linky in historic mode at 1200 bit/s: meter 021861348497, contract BASE" in out
    assert main(["scan", "127.0.0.1:1", "--units", "1", "--timeout", "0.2"]) == 1
    assert "0 meters found" in capsys.readouterr().out
