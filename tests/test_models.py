"""Every shipped register map: documented addresses, known-answer words, and a real read over Modbus TCP.

The expected addresses, types and scales below are a second, hand-written copy
of the manufacturers' tables (see each map's header comment for the document),
so a typo in a TOML file fails here. The known-answer words are computed by
hand (struct.pack) from the manufacturers' definitions, so a wrong word order,
scale or type fails too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.drivers.modbus import BusPool, ModbusExceptionError, ModbusMeter, ModbusTcpBus, plan_requests
from quartier.clock import ManualClock
from quartier.errors import RegisterMapError
from quartier.registermap import (
    Identify,
    MeterModel,
    Register,
    available_models,
    decode,
    encode,
    load_model,
    load_model_file,
)
from simulators.modbus_tcp import ModbusTcpSimulator, SimulatedMeter
from simulators.profile import LoadProfile

EPOCH = 1_768_780_800  # 2026-01-19T00:00:00Z
TIMEOUT_S = 0.5
IMPORT_W = 7200.0  # 1800 Wh per quarter hour: a multiple of every map's energy step (at most 100 Wh)
IMPORT_START_WH = 5_000_000
EXPORT_W = 1200.0
EXPORT_START_WH = 250_000
READ_TIMES = (EPOCH, EPOCH + 900)

MODELS = available_models()

# quantity: (function, address, type, scale, unit), from the manufacturers' tables.
PHASES = ("l1", "l2", "l3")
DOCUMENTED: dict[str, dict[str, tuple[int, int, str, float, str]]] = {
    "sdm72dm": {
        "power": (4, 0x0034, "float32", 1.0, "W"),
        "import_energy": (4, 0x0048, "float32", 1.0, "kWh"),
        "export_energy": (4, 0x004A, "float32", 1.0, "kWh"),
        "total_energy": (4, 0x0156, "float32", 1.0, "kWh"),
    },
    "sdm72dm2": {
        **{f"voltage_{p}": (4, 0x0000 + 2 * i, "float32", 1.0, "V") for i, p in enumerate(PHASES)},
        **{f"current_{p}": (4, 0x0006 + 2 * i, "float32", 1.0, "A") for i, p in enumerate(PHASES)},
        **{f"power_{p}": (4, 0x000C + 2 * i, "float32", 1.0, "W") for i, p in enumerate(PHASES)},
        "power": (4, 0x0034, "float32", 1.0, "W"),
        "frequency": (4, 0x0046, "float32", 1.0, "Hz"),
        "import_energy": (4, 0x0048, "float32", 1.0, "kWh"),
        "export_energy": (4, 0x004A, "float32", 1.0, "kWh"),
        "total_energy": (4, 0x0156, "float32", 1.0, "kWh"),
    },
    "abb_b23": {
        "import_energy": (3, 0x5000, "uint64", 0.01, "kWh"),
        "export_energy": (3, 0x5004, "uint64", 0.01, "kWh"),
        **{f"voltage_{p}": (3, 0x5B00 + 2 * i, "uint32", 0.1, "V") for i, p in enumerate(PHASES)},
        **{f"current_{p}": (3, 0x5B0C + 2 * i, "uint32", 0.01, "A") for i, p in enumerate(PHASES)},
        "power": (3, 0x5B14, "int32", 0.01, "W"),
        **{f"power_{p}": (3, 0x5B16 + 2 * i, "int32", 0.01, "W") for i, p in enumerate(PHASES)},
        "frequency": (3, 0x5B2C, "uint16", 0.01, "Hz"),
    },
    "em340": {
        **{f"voltage_{p}": (4, 0x0000 + 2 * i, "int32", 0.1, "V") for i, p in enumerate(PHASES)},
        **{f"current_{p}": (4, 0x000C + 2 * i, "int32", 0.001, "A") for i, p in enumerate(PHASES)},
        **{f"power_{p}": (4, 0x0012 + 2 * i, "int32", 0.1, "W") for i, p in enumerate(PHASES)},
        "power": (4, 0x0028, "int32", 0.1, "W"),
        "frequency": (4, 0x0033, "int16", 0.1, "Hz"),
        "import_energy": (4, 0x0034, "int32", 0.1, "kWh"),
        "export_energy": (4, 0x004E, "int32", 0.1, "kWh"),
    },
    "iem3155": {  # Schneider register numbers - 1
        **{f"current_{p}": (3, 3000 - 1 + 2 * i, "float32", 1.0, "A") for i, p in enumerate(PHASES)},
        **{f"voltage_{p}": (3, 3028 - 1 + 2 * i, "float32", 1.0, "V") for i, p in enumerate(PHASES)},
        **{f"power_{p}": (3, 3054 - 1 + 2 * i, "float32", 1.0, "kW") for i, p in enumerate(PHASES)},
        "power": (3, 3060 - 1, "float32", 1.0, "kW"),
        "frequency": (3, 3110 - 1, "float32", 1.0, "Hz"),
        "import_energy": (3, 3204 - 1, "int64", 1.0, "Wh"),
        "export_energy": (3, 3208 - 1, "int64", 1.0, "Wh"),
    },
    "alfen_eve": {
        **{f"voltage_{p}": (3, 306 + 2 * i, "float32", 1.0, "V") for i, p in enumerate(PHASES)},
        **{f"current_{p}": (3, 320 + 2 * i, "float32", 1.0, "A") for i, p in enumerate(PHASES)},
        "frequency": (3, 336, "float32", 1.0, "Hz"),
        **{f"power_{p}": (3, 338 + 2 * i, "float32", 1.0, "W") for i, p in enumerate(PHASES)},
        "power": (3, 344, "float32", 1.0, "W"),
        "import_energy": (3, 374, "float64", 1.0, "Wh"),
    },
}
# (function, address, type, count, values, unit) of each map's [identify].
IDENTIFIES: dict[str, tuple[int, int, str, int, tuple[int | str, ...], int | None] | None] = {
    "sdm630": None,
    "sdm72dm": None,
    "sdm72dm2": (3, 0xFC02, "uint16", 1, (0x0089,), None),
    "abb_b23": (3, 0x8960, "string", 6, ("B23", "B24"), None),
    "em340": None,
    "iem3155": (3, 50 - 1, "string", 20, ("iEM3155",), None),
    "alfen_eve": (3, 117, "string", 5, ("Alfen",), 200),
}


# --- the shipped maps ------------------------------------------------------------


def test_at_least_six_models_each_with_an_import_energy() -> None:
    assert len(MODELS) >= 6
    for name in MODELS:
        model = load_model(name)
        assert "import_energy" in model.registers, name
        assert model.source.strip() and model.manufacturer.strip(), name


def test_every_model_is_documented_here() -> None:
    assert set(MODELS) == set(DOCUMENTED) | {"sdm630"}  # sdm630 has its own tests in test_registermap.py
    assert set(MODELS) == set(IDENTIFIES)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_registers_sit_at_the_documented_addresses(name: str) -> None:
    model = load_model(name)
    assert set(model.registers) == set(DOCUMENTED[name])
    for quantity, (function, address, type_, scale, unit) in DOCUMENTED[name].items():
        register = model.registers[quantity]
        assert (register.function, register.address, register.type) == (function, address, type_), quantity
        assert (register.scale, register.unit) == (scale, unit), quantity


@pytest.mark.parametrize("name", sorted(IDENTIFIES))
def test_identification_sits_at_the_documented_address(name: str) -> None:
    identify = load_model(name).identify
    expected = IDENTIFIES[name]
    if expected is None:
        assert identify is None
        return
    assert identify is not None
    assert (identify.function, identify.address, identify.type, identify.count) == expected[:4]
    assert (identify.values, identify.unit) == expected[4:]


def test_word_orders() -> None:
    assert load_model("em340").registers["import_energy"].word_order == "little"  # LSW first
    for name in ("sdm72dm", "sdm72dm2", "abb_b23", "iem3155", "alfen_eve"):
        assert all(r.word_order == "big" and r.byte_order == "big" for r in load_model(name).registers.values())


# --- known answers, per model ----------------------------------------------------


def known(name: str, quantity: str, words: list[int], value: float) -> None:
    """``words`` at the quantity's register decode to ``value`` and ``value`` encodes to ``words``."""
    register = load_model(name).registers[quantity]
    assert decode(register, words) == pytest.approx(value, rel=1e-12, abs=1e-9)
    assert encode(register, value) == words


def test_abb_b23_known_answers() -> None:
    known("abb_b23", "import_energy", [0x0000, 0x0000, 0x0001, 0xE240], 1_234_560)  # 123456 * 0.01 kWh
    known("abb_b23", "export_energy", [0x0000, 0x0000, 0x0000, 0x0064], 1_000)  # 100 * 0.01 kWh
    known("abb_b23", "power", [0xFFF4, 0xB560], -7400.0)  # -740000 * 0.01 W, signed
    known("abb_b23", "voltage_l2", [0x0000, 0x08FC], 230.0)  # 2300 * 0.1 V
    known("abb_b23", "current_l3", [0x0000, 0x0366], 8.70)  # 870 * 0.01 A
    known("abb_b23", "frequency", [0x1388], 50.0)  # 5000 * 0.01 Hz
    # Read in the wrong word order, the same words would be 123456 * 2**48 * 10 Wh.
    assert decode(load_model("abb_b23").registers["import_energy"], [0xE240, 0x0001, 0, 0]) > 1e18


def test_em340_known_answers_low_word_first() -> None:
    known("em340", "import_energy", [0xD687, 0x0012], 123_456_700)  # 0x0012D687 = 1234567 * 0.1 kWh
    known("em340", "export_energy", [0x0064, 0x0000], 10_000)  # 100 * 0.1 kWh
    known("em340", "power", [0xDEF0, 0xFFFE], -7400.0)  # 0xFFFEDEF0 = -74000 * 0.1 W
    known("em340", "voltage_l1", [0x08FD, 0x0000], 230.1)  # 2301 * 0.1 V
    known("em340", "current_l2", [0x21F8, 0x0000], 8.696)  # 8696 * 0.001 A
    known("em340", "frequency", [0x01F4], 50.0)  # 500 * 0.1 Hz
    # High word first, the import words would mean 0xD6870012 (negative as INT32).
    assert decode(load_model("em340").registers["import_energy"], [0x0012, 0xD687]) != 123_456_700


def test_iem3155_known_answers() -> None:
    known("iem3155", "import_energy", [0x0000, 0x0000, 0x4996, 0x02D2], 1_234_567_890)  # INT64 Wh
    known("iem3155", "export_energy", [0x0000, 0x0100, 0x0000, 0x0005], 2**40 + 5)  # beyond 32 bits
    known("iem3155", "power", [0x40F0, 0x0000], 7500.0)  # float32 7.5 kW
    known("iem3155", "power_l1", [0xC020, 0x0000], -2500.0)  # float32 -2.5 kW
    known("iem3155", "voltage_l3", [0x4366, 0x0000], 230.0)
    known("iem3155", "frequency", [0x4248, 0x0000], 50.0)


def test_alfen_eve_known_answers_float64() -> None:
    known("alfen_eve", "import_energy", [0x4132, 0xD687, 0x8000, 0x0000], 1_234_567.5)  # float64 Wh
    known("alfen_eve", "import_energy", [0x4340, 0x0000, 0x0000, 0x0000], 2.0**53)  # every Wh exact up to here
    known("alfen_eve", "power", [0x462B, 0xE000], 11_000.0)  # float32 W
    known("alfen_eve", "voltage_l1", [0x4366, 0x0000], 230.0)


@pytest.mark.parametrize("name", ["sdm72dm", "sdm72dm2"])
def test_eastron_sdm72_known_answers(name: str) -> None:
    known(name, "import_energy", [0x449A, 0x5000], 1_234_500)  # float32 1234.5 kWh
    known(name, "power", [0x449A, 0x5000], 1234.5)  # float32 W


def test_identify_known_answers() -> None:
    sdm72 = load_model("sdm72dm2").identify
    assert sdm72 is not None
    assert sdm72.matches([0x0089]) and sdm72.encode() == [0x0089]
    assert not sdm72.matches([0x0084]) and not sdm72.matches([0x0070])  # SDM72D-M (v1), SDM630

    abb = load_model("abb_b23").identify
    assert abb is not None
    b23 = [0x4232, 0x3320, 0x3331, 0x322D, 0x3130, 0x3000]  # "B23 312-100\0"
    assert abb.decode(b23) == "B23 312-100"
    assert abb.matches(b23)
    assert abb.matches([0x4232, 0x3420, 0x3331, 0x322D, 0x3130, 0x3000])  # "B24 312-100"
    assert not abb.matches([0x4132, 0x3320, 0x3331, 0x322D, 0x3130, 0x3000])  # "A23 312-100"
    assert not abb.matches([0x3242, 0x2033, 0x3133, 0x2D32, 0x3031, 0x0030])  # bytes swapped
    assert abb.encode() == [0x4232, 0x3300, 0, 0, 0, 0]

    iem = load_model("iem3155").identify
    assert iem is not None
    assert iem.matches([0x6945, 0x4D33, 0x3135, 0x3500] + [0] * 16)  # "iEM3155"
    assert not iem.matches([0x6945, 0x4D33, 0x3135, 0x3000] + [0] * 16)  # "iEM3150"

    alfen = load_model("alfen_eve").identify
    assert alfen is not None
    assert alfen.decode([0x416C, 0x6665, 0x6E20, 0x4E56, 0x0000]) == "Alfen NV"
    assert alfen.matches([0x416C, 0x6665, 0x6E20, 0x4E56, 0x0000])


def test_identify_decodes_uint32_in_both_word_orders_and_tolerates_foreign_bytes() -> None:
    big = Identify(address=0, function=3, type="uint32", count=2, values=(0x12345678,))
    little = Identify(address=0, function=3, type="uint32", count=2, values=(0x12345678,), word_order="little")
    assert big.encode() == [0x1234, 0x5678] and big.matches([0x1234, 0x5678])
    assert little.encode() == [0x5678, 0x1234] and little.matches([0x5678, 0x1234])
    assert not big.matches([0x5678, 0x1234])
    text = Identify(address=0, function=3, type="string", count=2, values=("AB",))
    assert text.decode([0x4142, 0xFF20]) == "AB\ufffd"  # non-ASCII byte, no exception
    assert text.decode([0x4142, 0x2020]) == "AB"  # trailing spaces ignored
    with pytest.raises(ValueError, match="expected 2"):
        text.matches([0x4142])
    with pytest.raises(ValueError, match="does not fit"):
        text.encode("ABCDE")


def test_resolution_of_each_type() -> None:
    abb = load_model("abb_b23").registers
    assert abb["import_energy"].resolution(1e9) == pytest.approx(10.0)  # 0.01 kWh
    assert abb["current_l1"].resolution() == pytest.approx(0.01)
    assert load_model("em340").registers["import_energy"].resolution() == pytest.approx(100.0)  # 0.1 kWh
    sdm_import = load_model("sdm630").registers["import_energy"]
    assert sdm_import.resolution(16_384_000) == 1.953125  # float32 kWh, as in the module docstring
    assert sdm_import.resolution(16_383_000) == 0.9765625
    alfen_import = load_model("alfen_eve").registers["import_energy"]
    assert alfen_import.resolution(2.0**52) == 1.0 and alfen_import.resolution(2.0**53) == 2.0


# --- every model, read over Modbus TCP -------------------------------------------


@pytest.fixture
def pool() -> Iterator[BusPool]:
    pool = BusPool()
    yield pool
    pool.close()


def tolerance(register: Register, value: float) -> float:
    """Half a step of the register near ``value``, plus float noise. [canonical unit]"""
    return register.resolution(value) / 2 + 1e-9 * max(1.0, abs(value))


def read_all(bus: ModbusTcpBus, model: MeterModel, unit: int) -> dict[str, float]:
    """Every quantity of ``model``, read register block by block (no holes bridged)."""
    values: dict[str, float] = {}
    wanted = [(r.function, r.address, r.count) for r in model.registers.values()]
    for function, start, count in plan_requests(wanted, max_gap=0):
        words = bus.read_registers(function, start, count, unit)
        for r in model.registers.values():
            if r.function == function and start <= r.address < start + count:
                values[r.quantity] = decode(r, words[r.address - start : r.address - start + r.count])
    return values


@pytest.mark.parametrize("name", MODELS)
def test_every_model_read_by_the_gateway_from_the_simulator(name: str, pool: BusPool) -> None:
    model = load_model(name)
    clock = ManualClock(EPOCH)
    imports = LoadProfile.constant(IMPORT_W, IMPORT_START_WH, EPOCH)
    exports = LoadProfile.constant(EXPORT_W, EXPORT_START_WH, EPOCH) if "export_energy" in model.registers else None
    simulated = SimulatedMeter(model, imports, clock, unit=1, export_profile=exports)
    with ModbusTcpSimulator([simulated], port=0) as sim:
        bus = pool.acquire("127.0.0.1", sim.port, timeout_s=TIMEOUT_S, retries=0)
        meter = ModbusMeter(name, bus, model, 1, pool=pool)
        for t in READ_TIMES:
            clock.set(t)
            reading = meter.read(t)
            assert reading.import_wh == imports.index_wh(t), t
            if exports is not None:
                assert reading.export_wh == exports.index_wh(t), t
            else:
                assert reading.export_wh is None
            expected_power = IMPORT_W - (EXPORT_W if exports else 0.0)
            if "power" in model.registers:
                assert reading.power_w is not None
                assert abs(reading.power_w - expected_power) <= tolerance(model.registers["power"], expected_power)
            truth = simulated.values(t)
            got = read_all(bus, model, 1)
            assert set(got) == set(model.registers)
            for quantity, value in got.items():
                assert abs(value - truth[quantity]) <= tolerance(model.registers[quantity], truth[quantity]), (
                    quantity,
                    value,
                    truth[quantity],
                )
        identify = model.identify
        if identify is not None:
            words = bus.read_registers(
                identify.function, identify.address, identify.count, 1 if identify.unit is None else identify.unit
            )
            assert identify.matches(words)
            assert identify.decode(words) == identify.values[0]
        assert reading.import_wh == IMPORT_START_WH + 1800  # the second read, a quarter hour in


def test_energies_between_steps_round_to_the_nearest_step(pool: BusPool) -> None:
    """EM340 counts 100 Wh steps: an index of 5,000,037 Wh reads as 5,000,000 Wh."""
    model = load_model("em340")
    clock = ManualClock(EPOCH + 18)  # 7400 W for 18 s = 37 Wh
    simulated = SimulatedMeter(model, LoadProfile.constant(7400, IMPORT_START_WH, EPOCH), clock)
    with ModbusTcpSimulator([simulated], port=0) as sim:
        meter = ModbusMeter("em", pool.acquire("127.0.0.1", sim.port, timeout_s=TIMEOUT_S, retries=0), model, 1)
        assert meter.read(clock.now()).import_wh == IMPORT_START_WH


def test_two_alfen_sockets_share_their_station_identity(pool: BusPool) -> None:
    model = load_model("alfen_eve")
    clock = ManualClock(EPOCH)
    sockets = [SimulatedMeter(model, LoadProfile.constant(11_000, 1000 * unit, EPOCH), clock, unit) for unit in (1, 2)]
    with ModbusTcpSimulator(sockets, port=0) as sim:
        bus = pool.acquire("127.0.0.1", sim.port, timeout_s=TIMEOUT_S, retries=0)
        identify = model.identify
        assert identify is not None and identify.unit == 200
        assert identify.matches(bus.read_registers(3, identify.address, identify.count, 200))
        for unit in (1, 2):
            assert ModbusMeter("cp", bus, model, unit).read(EPOCH).import_wh == 1000 * unit
            with pytest.raises(ModbusExceptionError) as caught:  # the station's identity is not at the sockets
                bus.read_registers(3, identify.address, identify.count, unit)
            assert caught.value.code == 2  # ILLEGAL_ADDRESS


# --- float64 and [identify] validation ---------------------------------------------

MODEL_HEADER = """\
[model]
name = "testmeter"
manufacturer = "Test"
source = "hand-written for the tests"
function = 4
byte_order = "big"
word_order = "big"

[registers.import_energy]
address = 0x0048
type = "float32"
unit = "kWh"
"""


def write_map(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "testmeter.toml"
    path.write_text(text)
    return path


def test_float64_register_loads_and_round_trips(tmp_path: Path) -> None:
    text = MODEL_HEADER + '[registers.export_energy]\naddress = 0x0100\ntype = "float64"\nunit = "Wh"\n'
    register = load_model_file(write_map(tmp_path, text)).registers["export_energy"]
    assert (register.type, register.count) == ("float64", 4)
    for value in (0.0, 1.0, 1_234_567.5, 2.0**53, 123_456_789_012.0):
        assert decode(register, encode(register, value)) == value
    assert math.isnan(decode(register, encode(register, math.nan)))
    little = Register("import_energy", 0, "float64", 4, 3, "big", "little", 1.0, "Wh")
    assert encode(little, 1_234_567.5) == [0x0000, 0x8000, 0xD687, 0x4132]


def test_float64_overlap_is_refused(tmp_path: Path) -> None:
    text = MODEL_HEADER + '[registers.export_energy]\naddress = 0x0046\ntype = "float64"\nunit = "Wh"\n'
    with pytest.raises(RegisterMapError, match=r"registers.import_energy: address 72 overlaps registers.export_energy"):
        load_model_file(write_map(tmp_path, text))


def test_good_identify_loads_with_defaults(tmp_path: Path) -> None:
    text = MODEL_HEADER + '[identify]\naddress = 0x000B\ntype = "uint16"\nvalues = [340, 341]\n'
    identify = load_model_file(write_map(tmp_path, text)).identify
    assert identify == Identify(address=11, function=4, type="uint16", count=1, values=(340, 341))


def test_identify_elsewhere_may_share_an_address(tmp_path: Path) -> None:
    other_function = '[identify]\naddress = 0x0048\nfunction = 3\ntype = "uint16"\nvalues = [1]\n'
    assert load_model_file(write_map(tmp_path, MODEL_HEADER + other_function)).identify is not None
    other_unit = '[identify]\nunit = 200\naddress = 0x0048\ntype = "string"\ncount = 2\nvalues = ["AB"]\n'
    identify = load_model_file(write_map(tmp_path, MODEL_HEADER + other_unit)).identify
    assert identify is not None and identify.unit == 200


BAD_IDENTIFY = [
    ("not a table", "identify = 5\n", "identify: must be a table"),
    (
        "unknown key",
        '[identify]\naddress = 1\ntype = "uint16"\nvalues = [1]\ncolour = 2\n',
        "identify.colour: unknown key",
    ),
    ("unknown type", '[identify]\naddress = 1\ntype = "float32"\nvalues = [1]\n', "identify.type: 'float32' unknown"),
    ("string without count", '[identify]\naddress = 1\ntype = "string"\nvalues = ["A"]\n', "identify.count"),
    ("string too long", '[identify]\naddress = 1\ntype = "string"\ncount = 126\nvalues = ["A"]\n', "identify.count"),
    ("uint16 with count 2", '[identify]\naddress = 1\ntype = "uint16"\ncount = 2\nvalues = [1]\n', "identify.count"),
    ("missing address", '[identify]\ntype = "uint16"\nvalues = [1]\n', "identify.address: missing"),
    ("negative address", '[identify]\naddress = -1\ntype = "uint16"\nvalues = [1]\n', "identify.address: -1"),
    ("past the end", '[identify]\naddress = 65535\ntype = "uint32"\nvalues = [1]\n', "identify.address"),
    ("function 5", '[identify]\naddress = 1\nfunction = 5\ntype = "uint16"\nvalues = [1]\n', "identify.function"),
    (
        "word order",
        '[identify]\naddress = 1\ntype = "uint32"\nword_order = "middle"\nvalues = [1]\n',
        "identify.word_order",
    ),
    ("unit 256", '[identify]\nunit = 256\naddress = 1\ntype = "uint16"\nvalues = [1]\n', "identify.unit: 256"),
    ("no values", '[identify]\naddress = 1\ntype = "uint16"\n', "identify.values: required"),
    ("empty values", '[identify]\naddress = 1\ntype = "uint16"\nvalues = []\n', "identify.values: required"),
    ("values not a list", '[identify]\naddress = 1\ntype = "uint16"\nvalues = 1\n', "identify.values: required"),
    ("too big", '[identify]\naddress = 1\ntype = "uint16"\nvalues = [1, 65536]\n', "identify.values[1]: 65536"),
    ("negative", '[identify]\naddress = 1\ntype = "uint32"\nvalues = [-1]\n', "identify.values[0]: -1"),
    ("bool", '[identify]\naddress = 1\ntype = "uint16"\nvalues = [true]\n', "identify.values[0]: True"),
    ("text for uint16", '[identify]\naddress = 1\ntype = "uint16"\nvalues = ["B23"]\n', "identify.values[0]"),
    ("number for string", '[identify]\naddress = 1\ntype = "string"\ncount = 2\nvalues = [7]\n', "identify.values[0]"),
    ("non-ASCII", '[identify]\naddress = 1\ntype = "string"\ncount = 2\nvalues = ["Ä"]\n', "printable ASCII"),
    ("longer than count", '[identify]\naddress = 1\ntype = "string"\ncount = 1\nvalues = ["ABC"]\n', "longer than 1"),
    ("overlap", '[identify]\naddress = 0x0049\ntype = "uint16"\nvalues = [1]\n', "overlaps registers.import_energy"),
]


@pytest.mark.parametrize(("body", "problem"), [case[1:] for case in BAD_IDENTIFY], ids=[c[0] for c in BAD_IDENTIFY])
def test_bad_identify_names_file_key_and_problem(tmp_path: Path, body: str, problem: str) -> None:
    path = write_map(tmp_path, body + MODEL_HEADER if body.startswith("identify =") else MODEL_HEADER + body)
    with pytest.raises(RegisterMapError) as caught:
        load_model_file(path)
    assert str(caught.value).startswith(f"{path}: identify")
    assert problem in str(caught.value)


def test_identify_needs_a_function(tmp_path: Path) -> None:
    """Without a [model] default, [identify] names its function like a register does."""
    text = MODEL_HEADER.replace("function = 4\n", "").replace('type = "float32"\n', 'type = "float32"\nfunction = 4\n')
    body = '[identify]\naddress = 1\ntype = "uint16"\nvalues = [1]\n'
    assert load_model_file(write_map(tmp_path, text)).registers["import_energy"].function == 4
    with pytest.raises(RegisterMapError, match=r"identify.function: None not supported"):
        load_model_file(write_map(tmp_path, text + body))


def test_every_rs485_model_on_one_rtu_line() -> None:
    """Every RS485 meter model on one simulated RS485 line at 19200 8E1, read by the gateway's RTU bus."""
    from gateway.drivers.modbus import ModbusRtuBus
    from simulators.modbus_rtu import ModbusRtuSimulator
    from simulators.serial_line import SerialLine

    names = [name for name in MODELS if name != "alfen_eve"]  # the Alfen's meter is read over Modbus TCP only
    clock = ManualClock(EPOCH)
    imports = LoadProfile.constant(IMPORT_W, IMPORT_START_WH, EPOCH)
    exports = LoadProfile.constant(EXPORT_W, EXPORT_START_WH, EPOCH)
    simulated = [
        SimulatedMeter(load_model(name), imports, clock, unit=unit, export_profile=exports)
        for unit, name in enumerate(names, start=1)
    ]
    with SerialLine(default_baudrate=19200, parity="E") as line, ModbusRtuSimulator(
        simulated, line.end_a, baudrate=19200, parity="E"
    ):
        bus = ModbusRtuBus(line.end_b, 19200, "E", timeout_s=1.0, retries=0)
        try:
            meters = [ModbusMeter(s.model.name, bus, s.model, s.unit) for s in simulated]
            for t in READ_TIMES:
                clock.set(t)
                for meter, sim in zip(meters, simulated):
                    reading = meter.read(t)
                    assert reading.import_wh == imports.index_wh(t), (meter.meter_id, t)
                    if "export_energy" in sim.model.registers:
                        assert reading.export_wh == exports.index_wh(t), (meter.meter_id, t)
                    truth = sim.values(t)
                    for quantity, value in reading.values.items():
                        register = sim.model.registers[quantity]
                        assert abs(value - truth[quantity]) <= tolerance(register, truth[quantity]), quantity
                    assert set(reading.values) | {"import_energy", "export_energy", "power"} >= set(sim.model.registers)
            assert bus.stats.timeouts == bus.stats.rejected_frames == 0
        finally:
            bus.close()


def test_index_wrap_follows_the_import_register_type() -> None:
    bus = ModbusTcpBus("127.0.0.1", 1)  # never connected: the property needs no traffic
    wraps = {name: ModbusMeter(name, bus, load_model(name), 1).index_wrap_wh for name in ("em340", "iem3155", "sdm630")}
    assert wraps == {"em340": 2**31 * 100, "iem3155": 2**63, "sdm630": None}  # int32 of 0.1 kWh, int64 of Wh, float
