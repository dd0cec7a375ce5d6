"""The Modbus driver against simulated meters over real TCP on loopback."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.drivers import MeterContext, open_meter
from gateway.drivers.base import Reading
from gateway.drivers.modbus import (
    BACKOFF_MAX_POLLS,
    BusConflictError,
    BusKey,
    BusPool,
    MeterSkippedError,
    ModbusBus,
    ModbusExceptionError,
    ModbusMeter,
    ModbusTcpBus,
    NoAnswerError,
    plan_requests,
)
from quartier.clock import ManualClock
from quartier.errors import ConfigError, MeterError, RegisterMapError
from quartier.registermap import MeterModel, decode, load_model, load_model_file
from simulators.modbus_tcp import ModbusTcpSimulator, SimulatedMeter
from simulators.profile import LoadProfile
from tests.conftest import free_port

EPOCH = 1_768_780_800  # 2026-01-19T00:00:00Z
H = 3600
TIMEOUT_S = 0.3


@pytest.fixture
def sdm630() -> MeterModel:
    return load_model("sdm630")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(EPOCH)


@pytest.fixture
def simulator(sdm630: MeterModel, clock: ManualClock) -> Iterator[ModbusTcpSimulator]:
    """Unit 1: 7400 W around the clock from 5,000,000 Wh; unit 2: 7400 W from 08:00 to 10:00 from 1,000,000 Wh."""
    charger = SimulatedMeter(sdm630, LoadProfile.constant(7400, 5_000_000, EPOCH), clock, unit=1)
    morning = LoadProfile([(0, 0.0), (8 * H, 7400.0), (10 * H, 0.0)], 1_000_000, EPOCH)
    with ModbusTcpSimulator([charger, SimulatedMeter(sdm630, morning, clock, unit=2)], port=0) as sim:
        yield sim


@pytest.fixture
def pool() -> Iterator[BusPool]:
    pool = BusPool()
    yield pool
    pool.close()


def meter_on(pool: BusPool, sim: ModbusTcpSimulator, model: MeterModel, unit: int, meter_id: str = "m") -> ModbusMeter:
    bus = pool.acquire("127.0.0.1", sim.port, timeout_s=TIMEOUT_S, retries=0)
    return ModbusMeter(meter_id, bus, model, unit, pool=pool)


def core(reading: Reading) -> Reading:
    """The reading without its other quantities (``values``), to compare the dedicated fields."""
    return dataclasses.replace(reading, values={})


# --- plan_requests ----------------------------------------------------------------


def test_plan_nothing() -> None:
    assert plan_requests([]) == []


def test_plan_contiguous_registers_become_one_request() -> None:
    assert plan_requests([(4, 0x4A, 2), (4, 0x48, 2)]) == [(4, 0x48, 4)]


def test_plan_bridges_gaps_up_to_8_registers() -> None:
    assert plan_requests([(4, 0, 2), (4, 10, 2)]) == [(4, 0, 12)]  # gap of 8
    assert plan_requests([(4, 0, 2), (4, 11, 2)]) == [(4, 0, 2), (4, 11, 2)]  # gap of 9
    assert plan_requests([(4, 0, 2), (4, 4, 2)], max_gap=0) == [(4, 0, 2), (4, 4, 2)]


def test_plan_keeps_functions_apart() -> None:
    assert plan_requests([(4, 0, 2), (3, 2, 2), (4, 2, 2)]) == [(3, 2, 2), (4, 0, 4)]


def test_plan_merges_overlaps_and_duplicates() -> None:
    assert plan_requests([(3, 0, 4), (3, 2, 2), (3, 0, 4), (3, 1, 1)]) == [(3, 0, 4)]


def test_plan_stays_within_125_registers() -> None:
    words_0_to_123 = [(4, address, 2) for address in range(0, 124, 2)]
    assert plan_requests(words_0_to_123 + [(4, 123, 2)]) == [(4, 0, 125)]
    assert plan_requests(words_0_to_123 + [(4, 124, 2)]) == [(4, 0, 124), (4, 124, 2)]
    assert plan_requests(words_0_to_123 + [(4, 124, 1)]) == [(4, 0, 125)]
    chain = [(4, address, 2) for address in range(0, 300, 2)]
    assert plan_requests(chain) == [(4, 0, 124), (4, 124, 124), (4, 248, 52)]


def test_plan_refuses_impossible_registers() -> None:
    with pytest.raises(ValueError, match="1..125"):
        plan_requests([(4, 0, 126)])
    with pytest.raises(ValueError, match="1..125"):
        plan_requests([(4, 0, 0)])


def test_plan_for_an_sdm630_reading(sdm630: MeterModel) -> None:
    wanted = [sdm630.registers[q] for q in ("import_energy", "export_energy", "power")]
    assert plan_requests((r.function, r.address, r.count) for r in wanted) == [(4, 0x34, 2), (4, 0x48, 4)]
    everything = [(r.function, r.address, r.count) for r in sdm630.registers.values()]
    assert plan_requests(everything) == [(4, 0x00, 0x12), (4, 0x34, 2), (4, 0x46, 6), (4, 0x156, 2)]


# --- end to end -------------------------------------------------------------------


def test_two_meters_on_one_shared_bus(
    simulator: ModbusTcpSimulator, sdm630: MeterModel, clock: ManualClock, pool: BusPool
) -> None:
    charger = meter_on(pool, simulator, sdm630, unit=1, meter_id="cp1")
    morning = meter_on(pool, simulator, sdm630, unit=2, meter_id="cp2")
    assert charger.bus is morning.bus
    assert len(pool) == 1

    assert core(charger.read(clock.now())) == Reading(t=EPOCH, import_wh=5_000_000, export_wh=0, power_w=7400.0)
    clock.advance(15 * 60)
    assert core(charger.read(clock.now())) == Reading(t=EPOCH + 900, import_wh=5_001_850, export_wh=0, power_w=7400.0)
    assert core(morning.read(clock.now())) == Reading(t=EPOCH + 900, import_wh=1_000_000, export_wh=0, power_w=0.0)

    clock.set(EPOCH + 9 * H)
    assert morning.read(clock.now()).import_wh == 1_007_400
    assert morning.read(clock.now()).power_w == 7400.0
    clock.set(EPOCH + 10 * H)
    assert morning.read(clock.now()).import_wh == 1_014_800
    clock.set(EPOCH + H * 34)
    assert morning.read(clock.now()).import_wh == 1_029_600
    assert charger.read(clock.now()).import_wh == 5_000_000 + 7400 * 34


def test_all_sdm630_registers_are_served(
    simulator: ModbusTcpSimulator, sdm630: MeterModel, clock: ManualClock, pool: BusPool
) -> None:
    clock.advance(H)
    bus = pool.acquire("127.0.0.1", simulator.port, timeout_s=TIMEOUT_S)
    for function, start, count in plan_requests((r.function, r.address, r.count) for r in sdm630.registers.values()):
        words = bus.read_registers(function, start, count, 1)
        values = {
            r.quantity: decode(r, words[r.address - start : r.address - start + r.count])
            for r in sdm630.registers.values()
            if start <= r.address < start + count
        }
        for quantity, value in values.items():
            expected = {
                "voltage": 230.0,
                "current": 7400 / 3 / 230,
                "power_": 7400 / 3,
                "frequency": 50.0,
                "import_energy": 5_007_400,
                "export_energy": 0,
                "total_energy": 5_007_400,
                "power": 7400.0,
            }
            key = next(k for k in expected if quantity.startswith(k))
            assert value == pytest.approx(expected[key], rel=1e-6), quantity


def test_export_profile(sdm630: MeterModel, clock: ManualClock, pool: BusPool) -> None:
    solar = SimulatedMeter(
        sdm630,
        LoadProfile.constant(400, 10_000, EPOCH),
        clock,
        unit=3,
        export_profile=LoadProfile([(0, 0.0), (12 * H, 3000.0), (14 * H, 0.0)], 2_000, EPOCH),
    )
    with ModbusTcpSimulator([solar]) as sim:
        clock.set(EPOCH + 13 * H)
        reading = meter_on(pool, sim, sdm630, unit=3).read(clock.now())
    assert core(reading) == Reading(
        t=EPOCH + 13 * H, import_wh=10_000 + 400 * 13, export_wh=2_000 + 3000, power_w=-2600.0
    )
    assert reading.values["power_l1"] == pytest.approx(-2600 / 3, rel=1e-6)
    assert reading.values["current_l2"] == pytest.approx(2600 / 3 / 230, rel=1e-6)
    assert reading.values["total_energy"] == pytest.approx(10_000 + 400 * 13 + 2_000 + 3000, abs=0.01)


def test_unknown_unit_gets_gateway_no_response(
    simulator: ModbusTcpSimulator, sdm630: MeterModel, clock: ManualClock, pool: BusPool
) -> None:
    nobody = meter_on(pool, simulator, sdm630, unit=7, meter_id="ghost")
    started = time.monotonic()
    # Exception 0x0B is the TCP gateway saying the device is silent: no answer (backoff applies), not an answer.
    with pytest.raises(NoAnswerError) as caught:
        nobody.read(clock.now())
    assert time.monotonic() - started < TIMEOUT_S
    message = str(caught.value)
    assert "meter ghost" in message and f"127.0.0.1:{simulator.port} unit 7" in message
    assert "exception 11, GATEWAY_NO_RESPONSE" in message
    with pytest.raises(MeterSkippedError):
        nobody.read(clock.now())
    # The shared connection still serves the other meters.
    assert meter_on(pool, simulator, sdm630, unit=1).read(clock.now()).import_wh == 5_000_000


def test_unmapped_address_and_wrong_function_are_illegal_address(simulator: ModbusTcpSimulator, pool: BusPool) -> None:
    bus = pool.acquire("127.0.0.1", simulator.port, timeout_s=TIMEOUT_S)
    for function, address, count in [(4, 0x0100, 2), (4, 0x0012, 2), (4, 0x0034, 4), (3, 0x0048, 2)]:
        with pytest.raises(ModbusExceptionError, match=r"code 2 \(ILLEGAL_ADDRESS\)") as caught:
            bus.read_registers(function, address, count, 1)
        assert caught.value.code == 2
        assert f"address {address} (0x{address:04X})" in str(caught.value)
    assert len(bus.read_registers(4, 0x0048, 4, 1)) == 4


def holey_model(tmp_path: Path) -> MeterModel:
    """import_energy at 100..101 and power at 104..105: the reader bridges 102..103, which the device refuses."""
    path = tmp_path / "holey.toml"
    path.write_text(
        '[model]\nname = "holey"\nmanufacturer = "Test"\nsource = "tests"\nfunction = 4\n'
        'byte_order = "big"\nword_order = "little"\n'
        '[registers.import_energy]\naddress = 100\ntype = "uint32"\nunit = "Wh"\n'
        '[registers.power]\naddress = 104\ntype = "int32"\nunit = "W"\nscale = 0.1\n'
    )
    return load_model_file(path)


def test_meter_falls_back_to_exact_reads_when_a_bridged_hole_is_refused(
    tmp_path: Path, clock: ManualClock, pool: BusPool
) -> None:
    model = holey_model(tmp_path)
    with ModbusTcpSimulator([SimulatedMeter(model, LoadProfile.constant(7400, 123_456, EPOCH), clock, unit=5)]) as sim:
        meter = meter_on(pool, sim, model, unit=5)
        assert meter.read(clock.now()) == Reading(
            t=EPOCH, import_wh=123_456, export_wh=None, power_w=pytest.approx(7400.0)
        )
        assert meter.requests_per_read == 2  # the hole at 102..103 is no longer bridged
        clock.advance(H)
        assert meter.read(clock.now()).import_wh == 123_456 + 7400


def test_a_refused_bridged_read_is_explained_in_words(
    tmp_path: Path, clock: ManualClock, pool: BusPool, caplog: pytest.LogCaptureFixture
) -> None:
    model = holey_model(tmp_path)
    with ModbusTcpSimulator([SimulatedMeter(model, LoadProfile.constant(7400, 123_456, EPOCH), clock, unit=5)]) as sim:
        meter = meter_on(pool, sim, model, unit=5)
        with caplog.at_level(logging.INFO):
            meter.read(clock.now())
    said = [r.getMessage() for r in caplog.records if "refused a read" in r.getMessage()]
    assert len(said) == 1 and "refused a read of 6 registers from address 100 (function 4, input registers; " \
        "ILLEGAL_ADDRESS: some of them do not exist on this device); reading with 2 smaller requests now" in said[0]


def test_stopped_simulator_is_a_meter_error_naming_the_endpoint(
    simulator: ModbusTcpSimulator, sdm630: MeterModel, clock: ManualClock, pool: BusPool
) -> None:
    meter = meter_on(pool, simulator, sdm630, unit=1)
    assert meter.read(clock.now()).import_wh == 5_000_000
    port = simulator.port
    simulator.stop()
    with pytest.raises(MeterError, match=f"127.0.0.1:{port}") as caught:
        meter.read(clock.now())
    assert not isinstance(caught.value, MeterSkippedError)
    # The next poll is skipped (backoff), the message still names the endpoint and the last problem.
    with pytest.raises(
        MeterSkippedError, match=f"skipped, no answer since .*127.0.0.1:{port}.*next attempt in 1 poll$"
    ):
        meter.read(clock.now())
    # The bus reconnects once a server listens again on the same endpoint.
    with ModbusTcpSimulator(simulator.meters, port=port):
        clock.advance(900)
        assert meter.read(clock.now()).import_wh == 5_001_850


def test_nothing_listening(pool: BusPool, sdm630: MeterModel) -> None:
    port = free_port()
    meter = ModbusMeter("cp9", pool.acquire("127.0.0.1", port, timeout_s=TIMEOUT_S), sdm630, 1, pool=pool)
    with pytest.raises(MeterError, match=f"meter cp9: Modbus 127.0.0.1:{port} unit 1: .*cannot connect"):
        meter.read(0.0)


def test_silent_server_times_out() -> None:
    """A server that accepts the connection but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        accepted: list[socket.socket] = []
        acceptor = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
        acceptor.start()
        bus = ModbusTcpBus("127.0.0.1", port, timeout_s=0.2, retries=0)
        started = time.monotonic()
        with pytest.raises(MeterError, match=f"127.0.0.1:{port} unit 1: function 4 address 72"):
            bus.read_registers(4, 0x48, 2, 1)
        assert time.monotonic() - started < 1.0
        bus.close()
        acceptor.join(1)
        for connection in accepted:
            connection.close()


def test_simulator_time_before_the_profile_epoch_is_device_failure(
    simulator: ModbusTcpSimulator, sdm630: MeterModel, clock: ManualClock, pool: BusPool
) -> None:
    clock.set(EPOCH - 60)
    with pytest.raises(ModbusExceptionError, match="DEVICE_FAILURE"):
        meter_on(pool, simulator, sdm630, unit=1).read(clock.now())


# --- bus pool and meter lifecycle --------------------------------------------------


def test_pool_shares_and_releases_buses(pool: BusPool, sdm630: MeterModel) -> None:
    first = pool.acquire("127.0.0.1", 1502)
    assert pool.acquire("127.0.0.1", 1502) is first
    other = pool.acquire("127.0.0.1", 1503)
    assert other is not first
    assert len(pool) == 2
    meter_a = ModbusMeter("a", first, sdm630, 1, pool=pool)
    meter_b = ModbusMeter("b", first, sdm630, 2, pool=pool)
    meter_a.close()
    meter_a.close()  # releasing twice is harmless
    assert len(pool) == 2
    meter_b.close()
    assert len(pool) == 1
    pool.release(other)
    assert len(pool) == 0
    with pytest.raises(ValueError, match="does not belong"):
        pool.release(other)


def test_model_without_import_energy_is_refused(tmp_path: Path, pool: BusPool) -> None:
    path = tmp_path / "powermeter.toml"
    path.write_text(
        '[model]\nname = "powermeter"\nmanufacturer = "Test"\nsource = "tests"\n'
        '[registers.power]\naddress = 0\ntype = "float32"\nfunction = 4\n'
        'byte_order = "big"\nword_order = "big"\nunit = "W"\n'
    )
    with pytest.raises(RegisterMapError, match="no import_energy"):
        ModbusMeter("p", pool.acquire("127.0.0.1", 1502), load_model_file(path), 1)


@pytest.mark.parametrize(("unit", "problem"), [(0, "0..255"), (256, "0..255")])
def test_bus_argument_checks(unit: int, problem: str) -> None:
    bus = ModbusTcpBus("127.0.0.1", 1502)
    with pytest.raises(ValueError, match=problem):
        bus.read_registers(4, 0, 2, unit if unit else -1)
    with pytest.raises(ValueError, match="function"):
        bus.read_registers(6, 0, 2, 1)
    with pytest.raises(ValueError, match="count"):
        bus.read_registers(4, 0, 126, 1)
    with pytest.raises(ValueError, match="outside"):
        bus.read_registers(4, 65535, 2, 1)
    with pytest.raises(ValueError, match="port"):
        ModbusTcpBus("127.0.0.1", 0)


# --- the driver factory ---------------------------------------------------------


def test_open_meter_through_the_registry(simulator: ModbusTcpSimulator, clock: ManualClock, pool: BusPool) -> None:
    options = {
        "driver": "modbus",
        "id": "cp1",
        "model": "sdm630",
        "host": "127.0.0.1",
        "port": simulator.port,
        "timeout_s": TIMEOUT_S,
    }
    first = open_meter(options, "gateway.toml", MeterContext(buses=pool))
    second = open_meter({**options, "id": "cp2", "unit": 2}, "gateway.toml", MeterContext(buses=pool))
    assert isinstance(first, ModbusMeter) and isinstance(second, ModbusMeter)
    assert first.bus is second.bus and first.unit == 1 and second.unit == 2
    clock.advance(900)
    assert first.read(clock.now()).import_wh == 5_001_850
    assert second.read(clock.now()).import_wh == 1_000_000
    first.close()
    second.close()
    assert len(pool) == 0


def test_open_meter_without_a_pool_owns_its_bus(simulator: ModbusTcpSimulator, clock: ManualClock) -> None:
    meter = open_meter({"id": "cp1", "model": "sdm630", "host": "127.0.0.1", "port": simulator.port}, "gateway.toml")
    assert isinstance(meter, ModbusMeter)
    assert meter.bus.timeout_s == 1.0 and meter.bus.retries == 1
    assert meter.read(clock.now()).import_wh == 5_000_000
    meter.close()


@pytest.mark.parametrize(
    ("overrides", "key", "problem"),
    [
        ({"model": "sdm999"}, "meters[cp1].model", "unknown meter model 'sdm999'; available models: ["),
        ({"model": None}, "meters[cp1].model", "unknown meter model None"),
        ({"host": ""}, "meters[cp1].host", "host name"),
        ({"port": 70000}, "meters[cp1].port", "1..65535"),
        ({"port": "502"}, "meters[cp1].port", "1..65535"),
        ({"unit": 300}, "meters[cp1].unit", "0..255"),
        ({"unit": True}, "meters[cp1].unit", "0..255"),
        ({"timeout_s": 0}, "meters[cp1].timeout_s", "seconds"),
        ({"retries": -1}, "meters[cp1].retries", "0..10"),
        ({"unti": 2}, "meters[cp1].unti", "unknown key"),
        ({"device": "/dev/ttyUSB0"}, "meters[cp1].device", "not both"),
        ({"host": None}, "meters[cp1].host", "host name"),
        ({"baudrate": 9600}, "meters[cp1].baudrate", "is a Modbus RTU setting, but this meter is on Modbus TCP"),
        ({"id": ""}, "meters[?].id", "non-empty string id"),
    ],
)
def test_open_meter_config_errors(overrides: dict[str, object], key: str, problem: str) -> None:
    options = {"driver": "modbus", "id": "cp1", "model": "sdm630", "host": "127.0.0.1", "port": 1502, **overrides}
    with pytest.raises(ConfigError) as caught:
        open_meter(options, "gateway.toml")
    assert caught.value.path == "gateway.toml"
    assert caught.value.key == key
    assert problem in caught.value.problem


# --- simulator checks ---------------------------------------------------------------


def test_simulator_refuses_duplicate_units_and_bad_ids(sdm630: MeterModel, clock: ManualClock) -> None:
    profile = LoadProfile.constant(0, 0, EPOCH)
    with pytest.raises(ValueError, match=r"unit ids \[1\]"):
        ModbusTcpSimulator([SimulatedMeter(sdm630, profile, clock, 1), SimulatedMeter(sdm630, profile, clock, 1)])
    with pytest.raises(ValueError, match="1..247"):
        SimulatedMeter(sdm630, profile, clock, 0)
    with pytest.raises(RuntimeError, match="start"):
        _ = ModbusTcpSimulator([SimulatedMeter(sdm630, profile, clock, 1)]).port


def test_simulator_reports_a_busy_port(simulator: ModbusTcpSimulator, sdm630: MeterModel, clock: ManualClock) -> None:
    meter = SimulatedMeter(sdm630, LoadProfile.constant(0, 0, EPOCH), clock, 1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = ModbusTcpSimulator([meter], port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="cannot listen"):
            busy.start()
        busy.stop()


# --- every quantity, refused registers ------------------------------------------------


class CountingBus(ModbusBus):
    """A bus that counts the requests it passes to another one, or answers from a script when it has none.

    ``script`` entries are consumed one per request: a list of words to return, or an exception to raise.
    """

    def __init__(self, inner: ModbusBus | None = None, script: list[object] | None = None) -> None:
        self.inner = inner
        self.script = script if script is not None else []
        self.requests: list[tuple[int, int, int, int]] = []
        self.timeout_s, self.retries = 0.1, 0

    @property
    def endpoint(self) -> str:
        return self.inner.endpoint if self.inner else "scripted"

    @property
    def key(self) -> BusKey:
        return ("tcp", "scripted", 1)

    def read_registers(self, function: int, address: int, count: int, unit: int) -> list[int]:
        self.requests.append((function, address, count, unit))
        if self.inner is not None:
            return self.inner.read_registers(function, address, count, unit)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, list)
        return step[:count] + [0] * (count - len(step))

    def close(self) -> None:
        pass


def test_meter_reads_every_quantity_of_its_model(
    simulator: ModbusTcpSimulator, sdm630: MeterModel, clock: ManualClock, pool: BusPool
) -> None:
    bus = CountingBus(pool.acquire("127.0.0.1", simulator.port, timeout_s=TIMEOUT_S, retries=0))
    meter = ModbusMeter("cp1", bus, sdm630, unit=1)
    assert meter.quantities == set(sdm630.registers)
    clock.advance(H)
    reading = meter.read(clock.now())
    # Four requests (was two when only import, export and power were read): the per-phase block
    # 0x00..0x11, power, frequency..export energy, total energy.
    assert [r[:3] for r in bus.requests] == [(4, 0x00, 0x12), (4, 0x34, 2), (4, 0x46, 6), (4, 0x156, 2)]
    assert meter.requests_per_read == 4
    assert core(reading) == Reading(t=EPOCH + H, import_wh=5_007_400, export_wh=0, power_w=7400.0)
    assert set(reading.values) == set(sdm630.registers) - {"import_energy", "export_energy", "power"}
    for phase in ("l1", "l2", "l3"):
        assert reading.values[f"voltage_{phase}"] == 230.0
        assert reading.values[f"power_{phase}"] == pytest.approx(7400 / 3, rel=1e-6)
        assert reading.values[f"current_{phase}"] == pytest.approx(7400 / 3 / 230, rel=1e-6)
    assert reading.values["frequency"] == 50.0
    assert reading.values["total_energy"] == pytest.approx(5_007_400, abs=1)


def test_a_register_the_device_refuses_is_dropped(tmp_path: Path, clock: ManualClock, pool: BusPool) -> None:
    """The gateway's map lists a voltage the device (firmware) does not have: the meter stops asking for it."""
    common = (
        '[model]\nname = "{name}"\nmanufacturer = "Test"\nsource = "tests"\nfunction = 4\n'
        'byte_order = "big"\nword_order = "big"\n'
        '[registers.import_energy]\naddress = 100\ntype = "uint32"\nunit = "Wh"\n'
        '[registers.power]\naddress = 102\ntype = "int32"\nunit = "W"\n'
    )
    (tmp_path / "old.toml").write_text(common.format(name="old"))
    (tmp_path / "new.toml").write_text(
        common.format(name="new") + '[registers.voltage_l1]\naddress = 106\ntype = "uint16"\nunit = "V"\n'
    )
    device_model, gateway_model = load_model_file(tmp_path / "old.toml"), load_model_file(tmp_path / "new.toml")
    with ModbusTcpSimulator(
        [SimulatedMeter(device_model, LoadProfile.constant(1000, 500, EPOCH), clock, unit=4)]
    ) as sim:
        meter = meter_on(pool, sim, gateway_model, unit=4)
        assert meter.quantities == {"import_energy", "power", "voltage_l1"}
        reading = meter.read(clock.now())
        assert core(reading) == Reading(t=EPOCH, import_wh=500, export_wh=None, power_w=1000.0)
        assert reading.values == {}
        assert meter.quantities == {"import_energy", "power"}
        clock.advance(H)
        assert meter.read(clock.now()).import_wh == 1500


def test_a_refused_import_energy_fails_the_read(tmp_path: Path, clock: ManualClock, pool: BusPool) -> None:
    path = tmp_path / "far.toml"
    path.write_text(
        '[model]\nname = "far"\nmanufacturer = "Test"\nsource = "tests"\nfunction = 4\n'
        'byte_order = "big"\nword_order = "big"\n'
        '[registers.import_energy]\naddress = 100\ntype = "uint32"\nunit = "Wh"\n'
    )
    bus = CountingBus(script=[ModbusExceptionError("refused", 2)] * 3)
    meter = ModbusMeter("x", bus, load_model_file(path), unit=1)
    with pytest.raises(ModbusExceptionError, match="meter x: refused"):
        meter.read(0.0)
    assert meter.quantities == {"import_energy"}


# --- backoff of a meter that does not answer ----------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_resets_on_an_answer(sdm630: MeterModel) -> None:
    bus = CountingBus(script=[NoAnswerError("no answer within 0.1 s")] * 100)
    meter = ModbusMeter("ghost", bus, sdm630, unit=1)
    attempts: list[int] = []
    for poll in range(1, 201):
        before = len(bus.requests)
        try:
            meter.read(EPOCH + poll)
        except MeterSkippedError as exc:
            assert "meter ghost: skipped, no answer since 2026-01-19T00:00:01+00:00" in str(exc)
            assert "last: " in str(exc) and "no answer within 0.1 s" in str(exc)
            assert len(bus.requests) == before  # no bus traffic
        except NoAnswerError as exc:
            assert str(exc) == "meter ghost: no answer within 0.1 s"
            attempts.append(poll)
    # Skips of 1, 2, 4, 8, 16, then 32 polls between attempts.
    assert attempts == [1, 3, 6, 11, 20, 37, 70, 103, 136, 169]
    assert BACKOFF_MAX_POLLS == 32
    # An answer (here an exception response: the device is there) resets the backoff.
    bus.script = [ModbusExceptionError("busy", 6)] + [NoAnswerError("silence")] * 10
    poll = 1000
    while True:  # wait out the current backoff
        poll += 1
        try:
            meter.read(EPOCH + poll)
        except MeterSkippedError as exc:
            assert exc.polls_left >= 1
        except ModbusExceptionError:
            break
    with pytest.raises(NoAnswerError):  # no skip after the answer
        meter.read(EPOCH + poll + 1)
    with pytest.raises(MeterSkippedError, match="next attempt in 1 poll$") as caught:
        meter.read(EPOCH + poll + 2)
    since = datetime.fromtimestamp(EPOCH + poll + 1, UTC).isoformat(timespec="seconds")
    assert f"no answer since {since} (1 failed read, last: silence)" in str(caught.value)


def test_backoff_can_be_disabled(sdm630: MeterModel) -> None:
    bus = CountingBus(script=[NoAnswerError("silence")] * 5)
    meter = ModbusMeter("m", bus, sdm630, unit=1, backoff_max_polls=0)
    for _ in range(5):
        with pytest.raises(NoAnswerError):
            meter.read(EPOCH)
    assert len(bus.requests) == 5


# --- one endpoint, one protocol -----------------------------------------------------------------


def test_pool_refuses_one_endpoint_through_two_protocols(pool: BusPool) -> None:
    pool.acquire("Gateway.local", 502, user="meter a")
    with pytest.raises(BusConflictError, match="gateway.local:502|Gateway.local:502") as caught:
        pool.acquire_rtu("socket://gateway.local:502", user="meter b")
    assert caught.value.setting == "device"
    assert "meter a" in str(caught.value) and "meter b" in str(caught.value)
    assert len(pool) == 1


def test_open_meter_refuses_rtu_over_tcp_on_a_modbus_tcp_endpoint(pool: BusPool) -> None:
    tcp = {"id": "cp1", "model": "sdm630", "host": "10.0.0.7", "port": 502}
    first = open_meter(tcp, "gateway.toml", MeterContext(buses=pool))
    with pytest.raises(ConfigError) as caught:
        open_meter({"id": "cp2", "model": "sdm630", "device": "socket://10.0.0.7:502"}, "gateway.toml",
                   MeterContext(buses=pool))
    assert caught.value.key == "meters[cp2].device"
    message = caught.value.problem
    assert "Modbus TCP to 10.0.0.7:502 by meter cp1" in message
    assert "meter cp2 asks for it as Modbus RTU (socket://10.0.0.7:502)" in message
    first.close()


def test_open_meter_needs_host_or_device() -> None:
    with pytest.raises(ConfigError) as caught:
        open_meter({"id": "cp1", "model": "sdm630"}, "gateway.toml")
    assert caught.value.key == "meters[cp1].host"
    assert "give host (and port) for Modbus TCP, or device" in caught.value.problem
