"""The Modbus RTU driver against simulated meters on a simulated RS485 line (two ptys, paced at the baud rate)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU

from gateway.drivers import MeterContext, open_meter
from gateway.drivers.base import Meter
from gateway.drivers.modbus import (
    FIXED_GAP_S,
    BadFrameError,
    BusConflictError,
    BusPool,
    MeterSkippedError,
    ModbusExceptionError,
    ModbusMeter,
    ModbusRtuBus,
    NoAnswerError,
)
from quartier.clock import ManualClock
from quartier.errors import ConfigError, MeterError
from quartier.registermap import MeterModel, load_model
from simulators.modbus_rtu import ModbusRtuSimulator
from simulators.modbus_tcp import SimulatedMeter
from simulators.profile import LoadProfile
from simulators.serial_line import SerialLine

EPOCH = 1_768_780_800  # 2026-01-19T00:00:00Z
H = 3600
TIMEOUT_S = 0.3
#: Timeout where every request is expected to be answered: generous, so that a loaded CI machine does not retry.
ANSWER_TIMEOUT_S = 1.0


@pytest.fixture
def sdm630() -> MeterModel:
    return load_model("sdm630")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(EPOCH)


@pytest.fixture
def pool() -> Iterator[BusPool]:
    pool = BusPool()
    yield pool
    pool.close()


def profiles() -> dict[int, LoadProfile]:
    """Unit 1: 7400 W around the clock; unit 2: 7400 W from 08:00 to 10:00; unit 3: 3680 W from 18:00 to 22:00."""
    return {
        1: LoadProfile.constant(7400, 5_000_000, EPOCH),
        2: LoadProfile([(0, 0.0), (8 * H, 7400.0), (10 * H, 0.0)], 1_000_000, EPOCH),
        3: LoadProfile([(0, 0.0), (18 * H, 3680.0), (22 * H, 0.0)], 250_000, EPOCH),
    }


def simulated(model: MeterModel, clock: ManualClock) -> list[SimulatedMeter]:
    return [SimulatedMeter(model, profile, clock, unit=unit) for unit, profile in profiles().items()]


def rtu_options(meter_id: str, device: str, unit: int, pool: BusPool, **line: object) -> dict[str, object]:
    return {
        "id": meter_id,
        "model": "sdm630",
        "device": device,
        "unit": unit,
        "timeout_s": ANSWER_TIMEOUT_S,
        **line,
    }


def open_on(pool: BusPool, options: dict[str, object], config_path: str = "<config>") -> Meter:
    """Open a meter as the gateway does, on the buses of ``pool``."""
    return open_meter(options, config_path, MeterContext(buses=pool))


def frame(*body: int) -> bytes:
    """An RTU frame: the bytes and their CRC."""
    data = bytes(body)
    return data + FramerRTU.compute_CRC(data).to_bytes(2, "big")


def answer(unit: int, registers: list[int], function: int = 4) -> bytes:
    """The RTU answer to a read of ``len(registers)`` registers."""
    words = [byte for word in registers for byte in word.to_bytes(2, "big")]
    return frame(unit, function, 2 * len(registers), *words)


class RawResponder:
    """The far end of a line played by hand: reads each 8-byte read request and writes what ``reply`` returns."""

    def __init__(self, device: str, baudrate: int, reply: Callable[[bytes], bytes]) -> None:
        self.port = serial.Serial(device, baudrate, timeout=0.02)
        self.reply = reply
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            buffer += self.port.read(64)
            while len(buffer) >= 8:
                request, buffer = buffer[:8], buffer[8:]
                self.requests.append(request)
                reply = self.reply(request)
                if reply:
                    self.port.write(reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.port.close()


# --- end to end --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("baudrate", "parity"), [(9600, "N"), (19200, "E")], ids=["9600-8N1", "19200-8E1"])
def test_three_meters_on_one_line(
    baudrate: int, parity: str, sdm630: MeterModel, clock: ManualClock, pool: BusPool
) -> None:
    with (
        SerialLine(parity=parity) as line,
        ModbusRtuSimulator(simulated(sdm630, clock), line.end_a, baudrate=baudrate, parity=parity) as sim,
    ):
        meters = [
            open_on(pool, rtu_options(f"cp{unit}", line.end_b, unit, pool, baudrate=baudrate, parity=parity))
            for unit in (1, 2, 3)
        ]
        assert all(isinstance(meter, ModbusMeter) for meter in meters)
        bus = meters[0].bus  # type: ignore[attr-defined]
        assert isinstance(bus, ModbusRtuBus) and len(pool) == 1
        assert all(meter.bus is bus for meter in meters)  # type: ignore[attr-defined]
        assert bus.settings == f"{baudrate} 8{parity}1"
        for t in (EPOCH, EPOCH + 9 * H + 123, EPOCH + 20 * H, EPOCH + 34 * H + 1):
            clock.set(t)
            for unit, meter in zip((1, 2, 3), meters):
                reading = meter.read(clock.now())
                profile = profiles()[unit]
                assert reading.t == t
                assert reading.import_wh == profile.index_wh(t), (unit, t)
                assert reading.export_wh == 0
                assert reading.power_w == pytest.approx(profile.power_w(t), rel=1e-6)
        # Per-phase quantities come with every reading, in canonical units.
        clock.set(EPOCH + 19 * H)
        values = meters[2].read(clock.now()).values
        assert set(values) == set(sdm630.registers) - {"import_energy", "export_energy", "power"}
        for phase in ("l1", "l2", "l3"):
            assert values[f"voltage_{phase}"] == 230.0
            assert values[f"power_{phase}"] == pytest.approx(3680 / 3, rel=1e-6)
            assert values[f"current_{phase}"] == pytest.approx(3680 / 3 / 230, rel=1e-6)
        assert values["frequency"] == 50.0
        assert values["total_energy"] == pytest.approx(250_000 + 3680, abs=0.5)
        # Four requests per read, each answered; nothing lost, nothing rejected.
        assert sim.requests == {1: 16, 2: 16, 3: 20}
        assert bus.stats.requests == bus.stats.answers == 52
        assert bus.stats.rejected_frames == bus.stats.timeouts == bus.stats.stray_bytes == 0
        for meter in meters:
            meter.close()
        assert len(pool) == 0


def test_crc_errors_are_retried_and_then_a_meter_error_and_the_meter_recovers(
    sdm630: MeterModel, clock: ManualClock
) -> None:
    with SerialLine() as line, ModbusRtuSimulator(simulated(sdm630, clock), line.end_a) as sim:
        bus = ModbusRtuBus(line.end_b, 9600, timeout_s=TIMEOUT_S, retries=1)
        meter = ModbusMeter("cp1", bus, sdm630, unit=1)
        sim.corrupt_next(1)  # one bad CRC: the retry gets through
        assert meter.read(clock.now()).import_wh == 5_000_000
        assert bus.stats.rejected_frames == 1 and bus.stats.requests == 5
        sim.corrupt_next(2)  # the request and its retry: the read fails
        with pytest.raises(BadFrameError, match=f"meter cp1: Modbus RTU {line.end_b} unit 1: .*CRC error") as caught:
            meter.read(clock.now())
        assert "(2 attempts)" in str(caught.value) and "9600 8N1" in str(caught.value)
        assert bus.stats.rejected_frames == 3
        sent = sum(sim.requests.values())
        with pytest.raises(MeterSkippedError, match="next attempt in 1 poll$"):
            meter.read(clock.now())
        assert sum(sim.requests.values()) == sent  # skipped: nothing sent
        clock.advance(H)
        assert meter.read(clock.now()).import_wh == 5_007_400
        bus.close()


def test_noise_instead_of_an_answer_is_a_meter_error_then_recovery(sdm630: MeterModel, clock: ManualClock) -> None:
    with SerialLine() as line, ModbusRtuSimulator(simulated(sdm630, clock), line.end_a, baudrate=19200) as sim:
        bus = ModbusRtuBus(line.end_b, 19200, timeout_s=TIMEOUT_S, retries=0)
        sim.corrupt_next(1, how="noise")
        with pytest.raises(BadFrameError, match=r"garbled answer \(no valid frame in 41 bytes: 54 51 71 "):
            bus.read_registers(4, 0, 0x12, 1)
        assert bus.stats.rejected_frames == 1
        assert len(bus.read_registers(4, 0, 0x12, 1)) == 0x12
        bus.close()


def test_speed_mismatch_is_a_meter_error_naming_the_device(sdm630: MeterModel, clock: ManualClock) -> None:
    with SerialLine() as line, ModbusRtuSimulator(simulated(sdm630, clock), line.end_a, baudrate=9600) as sim:
        bus = ModbusRtuBus(line.end_b, 19200, timeout_s=TIMEOUT_S, retries=1)
        meter = ModbusMeter("cp1", bus, sdm630, unit=1)
        started = time.monotonic()
        with pytest.raises(MeterError, match=f"meter cp1: Modbus RTU {line.end_b} unit 1: .*19200 8N1") as caught:
            meter.read(clock.now())
        assert time.monotonic() - started < 2.0  # two attempts of 0.2 s, not a hang
        assert isinstance(caught.value, NoAnswerError | BadFrameError)
        assert sim.answers == {}  # the simulator never made sense of the garbled requests
        bus.close()


def test_unknown_unit_times_out_quickly_and_the_others_still_answer(sdm630: MeterModel, clock: ManualClock) -> None:
    with SerialLine() as line, ModbusRtuSimulator(simulated(sdm630, clock), line.end_a) as sim:
        bus = ModbusRtuBus(line.end_b, 9600, timeout_s=TIMEOUT_S, retries=1)
        nobody = ModbusMeter("ghost", bus, sdm630, unit=9)
        started = time.monotonic()
        with pytest.raises(NoAnswerError, match=r"meter ghost: .* unit 9: .*no answer within 0.3 s \(2 attempts\)"):
            nobody.read(clock.now())
        assert time.monotonic() - started < 1.5
        assert sim.requests[9] == 2 and sim.answers[9] == 0  # silence, not an exception response
        assert bus.stats.timeouts == 2
        assert ModbusMeter("cp2", bus, sdm630, unit=2).read(clock.now()).import_wh == 1_000_000
        bus.close()


def test_broadcast_foreign_and_garbage_answers_are_rejected() -> None:
    """What a real line can bring back instead of the answer: each is a MeterError, counted, never a hang."""
    good = answer(1, [0x1234, 0x5678])
    replies = [
        frame(0, 4, 4, 0x12, 0x34, 0x56, 0x78),  # a "broadcast" answer: slaves never answer unit 0
        answer(2, [0x1234, 0x5678]),  # another unit's answer
        bytes(range(0x80, 0xA0)),  # garbage
        good[:-3],  # the start of an answer, then silence
        b"\x00\xff" + good,  # a turn-on glitch before the answer: accepted
        frame(1, 0x84, 0x02),  # an exception response: an answer
    ]
    with SerialLine(pace=False) as line:
        responder = RawResponder(line.end_a, 9600, lambda request: replies.pop(0))
        bus = ModbusRtuBus(line.end_b, 9600, timeout_s=0.3, retries=0)
        try:
            for kind in ("no valid frame", "no valid frame", "no valid frame", "no valid frame"):
                with pytest.raises(BadFrameError, match=kind):
                    bus.read_registers(4, 0, 2, 1)
            assert bus.read_registers(4, 0, 2, 1) == [0x1234, 0x5678]
            with pytest.raises(ModbusExceptionError, match="ILLEGAL_ADDRESS"):
                bus.read_registers(4, 0, 2, 1)
            assert bus.stats.rejected_frames == 4 and bus.stats.answers == 2
            assert responder.requests[0] == frame(1, 4, 0, 0, 0, 2)
        finally:
            responder.close()
            bus.close()


def test_the_inter_frame_gap_is_kept_and_stray_bytes_are_dropped(sdm630: MeterModel, clock: ManualClock) -> None:
    assert ModbusRtuBus("/dev/null", 9600).gap_s == pytest.approx(3.5 * 10 / 9600)
    assert ModbusRtuBus("/dev/null", 19200, parity="E").gap_s == pytest.approx(3.5 * 11 / 19200)
    assert ModbusRtuBus("/dev/null", 9600, stopbits=2).gap_s == pytest.approx(3.5 * 11 / 9600)
    assert ModbusRtuBus("/dev/null", 38400).gap_s == FIXED_GAP_S == 0.00175
    with SerialLine() as line, ModbusRtuSimulator(simulated(sdm630, clock), line.end_a) as sim:
        bus = ModbusRtuBus(line.end_b, 9600, timeout_s=TIMEOUT_S, retries=0)
        meter = ModbusMeter("cp1", bus, sdm630, unit=1)
        meter.read(clock.now())  # opens the port
        port = bus._client.socket
        assert port is not None
        quiet_before_write: list[float] = []
        write = port.write

        def timed_write(data: bytes) -> int | None:
            quiet_before_write.append(time.monotonic() - bus._quiet_since)
            return write(data)

        port.write = timed_write  # type: ignore[method-assign]
        # A late or stray answer on the line: drained before the next request, which still gets its answer.
        with serial.Serial(line.end_a, 9600) as noise:
            noise.write(b"\x01\x04\x08junk")
            time.sleep(0.1)
        for _ in range(3):
            meter.read(clock.now())
        assert bus.stats.stray_bytes == 7
        assert len(quiet_before_write) == 12
        assert min(quiet_before_write) >= bus.gap_s
        assert sim.requests[1] == 16
        bus.close()


def test_a_babbling_line_is_a_meter_error_not_a_hang() -> None:
    """Bytes that never stop (another master, a device stuck transmitting): the bus gives up after its timeout."""
    with SerialLine(pace=False) as line, serial.Serial(line.end_a, 9600) as babbler:
        stop = threading.Event()

        def babble() -> None:
            while not stop.is_set():
                babbler.write(b"\x55")
                time.sleep(0.0005)

        thread = threading.Thread(target=babble, daemon=True)
        thread.start()
        bus = ModbusRtuBus(line.end_b, 9600, timeout_s=0.3, retries=1)
        try:
            started = time.monotonic()
            with pytest.raises(BadFrameError, match="never falls quiet|garbled answer"):
                bus.read_registers(4, 0, 2, 1)
            assert time.monotonic() - started < 2.0
            assert bus.stats.stray_bytes + bus.stats.rejected_frames > 0
        finally:
            stop.set()
            thread.join(2)
            bus.close()


# --- a meter that stops answering ----------------------------------------------------------------------


def test_a_silent_meter_is_backed_off_and_does_not_stall_the_others(sdm630: MeterModel, clock: ManualClock) -> None:
    polls = 24
    with SerialLine() as line, ModbusRtuSimulator(simulated(sdm630, clock), line.end_a, baudrate=38400) as sim:
        bus = ModbusRtuBus(line.end_b, 38400, timeout_s=0.3, retries=0)
        meters = [ModbusMeter(f"cp{unit}", bus, sdm630, unit=unit) for unit in (1, 2, 3)]
        sim.silent_units.add(3)
        outcomes: dict[str, list[str]] = {meter.meter_id: [] for meter in meters}
        for _ in range(polls):
            clock.advance(60)
            for meter in meters:
                try:
                    reading = meter.read(clock.now())
                    assert reading.import_wh == profiles()[meter.unit].index_wh(clock.now())
                    outcomes[meter.meter_id].append("read")
                except MeterSkippedError:
                    outcomes[meter.meter_id].append("skipped")
                except NoAnswerError:
                    outcomes[meter.meter_id].append("no answer")
        assert outcomes["cp1"] == outcomes["cp2"] == ["read"] * polls
        # The silent meter was tried at polls 1, 3, 6, 11 and 20 (skips of 1, 2, 4, 8, then 16 polls).
        tried = [poll for poll, outcome in enumerate(outcomes["cp3"], 1) if outcome == "no answer"]
        assert tried == [1, 3, 6, 11, 20]
        assert sim.requests[1] == sim.requests[2] == 4 * polls
        assert sim.requests[3] == len(tried) < polls / 4  # one timed-out request per attempt
        # It answers again: read at its next attempt, then on every poll.
        sim.silent_units.clear()
        for poll in range(1, 20):
            clock.advance(60)
            try:
                meters[2].read(clock.now())
                break
            except MeterSkippedError as exc:
                assert exc.polls_left == 13 - poll
        assert poll == 13  # the 16 polls skipped after poll 20 end at poll 24 + 12
        for _ in range(3):
            assert meters[2].read(clock.now()).import_wh == profiles()[3].index_wh(clock.now())
        bus.close()


# --- one bus per serial port, and its settings --------------------------------------------------------------------


def test_meters_on_one_device_share_its_bus_and_its_settings(tmp_path: Path, pool: BusPool) -> None:
    device = tmp_path / "ttyUSB0"
    device.touch()
    alias = tmp_path / "usb-FTDI_FT232R-if00-port0"
    alias.symlink_to(device)
    first = open_on(pool, rtu_options("cp1", str(device), 1, pool, baudrate=19200, parity="E"))
    second = open_on(pool, rtu_options("cp2", str(alias), 2, pool, baudrate=19200, parity="E"))
    assert first.bus is second.bus and len(pool) == 1  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as caught:
        open_on(pool, rtu_options("cp3", str(alias), 3, pool, baudrate=9600, parity="E"), "gateway.toml")
    assert caught.value.key == "meters[cp3].baudrate"
    message = caught.value.problem
    assert f"serial port {alias} is already open at 19200 8E1 for meter cp1" in message
    assert "meter cp3 asks for 9600 8E1" in message
    with pytest.raises(ConfigError) as caught:
        open_on(pool, rtu_options("cp4", str(device), 4, pool, baudrate=19200), "gateway.toml")
    assert caught.value.key == "meters[cp4].parity" and "asks for 19200 8N1" in caught.value.problem
    with pytest.raises(BusConflictError) as conflict:
        pool.acquire_rtu(str(device), 19200, "E", 2, user="meter cp5")
    assert conflict.value.setting == "stopbits"
    first.close()
    second.close()
    assert len(pool) == 0


@pytest.mark.parametrize(
    ("overrides", "key", "problem"),
    [
        ({"device": ""}, "meters[cp1].device", "give the serial port"),
        ({"baudrate": 14400}, "meters[cp1].baudrate", "must be one of [1200, 2400"),
        ({"baudrate": "9600"}, "meters[cp1].baudrate", "must be one of"),
        ({"parity": "even"}, "meters[cp1].parity", "'N' (none), 'E' (even) or 'O' (odd)"),
        ({"stopbits": 1.5}, "meters[cp1].stopbits", "1 or 2"),
        ({"unit": 0}, "meters[cp1].unit", "0 is the broadcast address"),
        ({"unit": 248}, "meters[cp1].unit", "1..247"),
        ({"port": 502}, "meters[cp1].port", "is a Modbus TCP setting, but this meter is on a serial port"),
        ({"host": "10.0.0.7"}, "meters[cp1].device", "either host (Modbus TCP) or device"),
    ],
)
def test_rtu_config_errors(overrides: dict[str, object], key: str, problem: str, pool: BusPool) -> None:
    options = {**rtu_options("cp1", "/dev/ttyUSB0", 1, pool), **overrides}
    with pytest.raises(ConfigError) as caught:
        open_on(pool, options, "gateway.toml")
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert len(pool) == 0


def test_bus_argument_checks_and_a_missing_port(sdm630: MeterModel) -> None:
    with pytest.raises(ValueError, match="baudrate"):
        ModbusRtuBus("/dev/ttyUSB0", 14400)
    with pytest.raises(ValueError, match="parity"):
        ModbusRtuBus("/dev/ttyUSB0", parity="X")
    with pytest.raises(ValueError, match="stopbits"):
        ModbusRtuBus("/dev/ttyUSB0", stopbits=3)
    bus = ModbusRtuBus("/dev/ttyQUARTIER-nonexistent", 9600)
    with pytest.raises(ValueError, match=r"unit 0 must be an integer in 1..247"):
        bus.read_registers(4, 0, 2, 0)  # broadcast: nobody would answer
    with pytest.raises(ValueError, match=r"1..247"):
        ModbusMeter("m", bus, sdm630, unit=0)
    with pytest.raises(MeterError, match="serial port /dev/ttyQUARTIER-nonexistent does not exist"):
        ModbusMeter("m", bus, sdm630, unit=1).read(EPOCH)


def test_simulator_checks_its_settings(sdm630: MeterModel, clock: ManualClock) -> None:
    meters = simulated(sdm630, clock)
    with pytest.raises(ValueError, match="baudrate"):
        ModbusRtuSimulator(meters, "/dev/null", baudrate=1000)
    with pytest.raises(ValueError, match=r"unit ids \[1\]"):
        ModbusRtuSimulator(meters + meters[:1], "/dev/null")
    missing = ModbusRtuSimulator(meters, "/dev/ttyQUARTIER-nonexistent")
    with pytest.raises(RuntimeError, match="cannot listen on /dev/ttyQUARTIER-nonexistent 9600 8N1"):
        missing.start()


# --- fuzzing the answer decoding ------------------------------------------------------------------------------


def corrupted_answers() -> st.SearchStrategy[bytes]:
    """Valid answers to ``read 2 input registers of unit 1``, damaged as a line damages them, and plain noise."""

    @st.composite
    def damaged(draw: st.DrawFn) -> bytes:
        data = bytearray(answer(1, draw(st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2))))
        for _ in range(draw(st.integers(0, 3))):
            change = draw(st.sampled_from(["flip", "cut", "insert", "prefix", "suffix"]))
            position = draw(st.integers(0, max(0, len(data) - 1)))
            if change == "flip" and data:
                data[position] ^= 1 << draw(st.integers(0, 7))
            elif change == "cut":
                del data[position:]
            elif change == "insert":
                data[position:position] = draw(st.binary(min_size=1, max_size=4))
            elif change == "prefix":
                data[:0] = draw(st.binary(min_size=1, max_size=8))
            else:
                data += draw(st.binary(min_size=1, max_size=8))
        return bytes(data)

    return st.one_of(damaged(), st.binary(max_size=64))


@settings(max_examples=400, deadline=None)
@given(data=corrupted_answers(), registers=st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2))
def test_parse_answer_never_crashes_and_counts_rejected_frames(data: bytes, registers: list[int]) -> None:
    found = ModbusRtuBus.parse_answer(data, 1, 4, 2)
    assert found.rejected >= 0
    if found.registers is not None:
        # Only ever a frame with a valid CRC, at the unit and function asked.
        assert len(found.registers) == 2 and found.exception_code is None
        assert any(data[i : i + 9] == answer(1, found.registers) for i in range(len(data)))
    # A valid answer anywhere (after noise, before noise) is found.
    good = answer(1, registers)
    assert ModbusRtuBus.parse_answer(data[:3] + good + data[:3], 1, 4, 2).registers is not None
    # A complete answer with a bad CRC is counted as rejected.
    bad = good[:-1] + bytes([good[-1] ^ 0x01])
    assert ModbusRtuBus.parse_answer(bad, 1, 4, 2).rejected == 1


def test_random_and_corrupted_answers_over_the_line_are_meter_errors() -> None:
    """Bytes written by the far end of a real (unpaced) line: the bus returns the answer or raises MeterError."""
    with SerialLine(pace=False) as line:
        payload = {"bytes": b""}
        responder = RawResponder(line.end_a, 9600, lambda request: payload["bytes"])
        bus = ModbusRtuBus(line.end_b, 9600, timeout_s=0.2, retries=0)
        counts = {"errors": 0, "answers": 0}

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(data=corrupted_answers())
        def exchange(data: bytes) -> None:
            payload["bytes"] = data
            rejected, timeouts = bus.stats.rejected_frames, bus.stats.timeouts
            started = time.monotonic()
            try:
                registers = bus.read_registers(4, 0, 2, 1)
            except ModbusExceptionError:
                counts["answers"] += 1
            except MeterError:
                counts["errors"] += 1
                assert bus.stats.rejected_frames + bus.stats.timeouts >= rejected + timeouts + 1
            else:
                counts["answers"] += 1
                assert registers == ModbusRtuBus.parse_answer(data, 1, 4, 2).registers
            assert time.monotonic() - started < 2.0

        try:
            exchange()
        finally:
            responder.close()
            bus.close()
        assert counts["errors"] > 0
        assert bus.stats.requests == counts["errors"] + counts["answers"]
