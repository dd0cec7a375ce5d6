"""Register maps: the shipped SDM630 map, validation of bad maps, encode/decode."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartier.errors import RegisterMapError
from quartier.registermap import (
    Register,
    available_models,
    decode,
    encode,
    load_model,
    load_model_file,
)

SDM630_EXPECTED = {
    "voltage_l1": (0x0000, "V"),
    "voltage_l2": (0x0002, "V"),
    "voltage_l3": (0x0004, "V"),
    "current_l1": (0x0006, "A"),
    "current_l2": (0x0008, "A"),
    "current_l3": (0x000A, "A"),
    "power_l1": (0x000C, "W"),
    "power_l2": (0x000E, "W"),
    "power_l3": (0x0010, "W"),
    "power": (0x0034, "W"),
    "frequency": (0x0046, "Hz"),
    "import_energy": (0x0048, "kWh"),
    "export_energy": (0x004A, "kWh"),
    "total_energy": (0x0156, "kWh"),
}


def reg(
    type_: str = "float32",
    unit: str = "kWh",
    quantity: str = "import_energy",
    word_order: str = "big",
    byte_order: str = "big",
    scale: float = 1.0,
) -> Register:
    counts = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}
    return Register(
        quantity=quantity,
        address=0,
        type=type_,
        count=counts[type_],
        function=4,
        byte_order=byte_order,  # type: ignore[arg-type]
        word_order=word_order,  # type: ignore[arg-type]
        scale=scale,
        unit=unit,
    )


# --- the shipped map ---------------------------------------------------------


def test_sdm630_is_shipped_and_complete() -> None:
    assert "sdm630" in available_models()
    model = load_model("sdm630")
    assert model.name == "sdm630"
    assert model.manufacturer == "Eastron"
    assert "SDM630 Modbus Protocol" in model.source
    assert set(model.registers) == set(SDM630_EXPECTED)
    for quantity, (address, unit) in SDM630_EXPECTED.items():
        register = model.registers[quantity]
        assert (register.address, register.unit) == (address, unit), quantity
        assert register.quantity == quantity
        assert (register.type, register.count, register.function) == ("float32", 2, 4)
        assert (register.byte_order, register.word_order, register.scale) == ("big", "big", 1.0)


def test_sdm630_canonical_units() -> None:
    registers = load_model("sdm630").registers
    assert registers["import_energy"].canonical_unit == "Wh"
    assert registers["import_energy"].factor == 1000.0
    assert registers["power"].canonical_unit == "W"
    assert registers["frequency"].canonical_unit == "Hz"


def test_unknown_model_lists_available_ones() -> None:
    with pytest.raises(RegisterMapError, match=r"unknown meter model 'sdm999'.*sdm630"):
        load_model("sdm999")


@pytest.mark.parametrize("name", ["../sdm630", "sdm630.toml", "", "SDM630/x"])
def test_model_names_cannot_escape_the_maps_folder(name: str) -> None:
    with pytest.raises(RegisterMapError, match="unknown meter model"):
        load_model(name)


# --- encode / decode ---------------------------------------------------------


def test_float32_1234_5_big_word_order() -> None:
    register = reg(unit="Wh")
    assert encode(register, 1234.5) == [0x449A, 0x5000]
    assert decode(register, [0x449A, 0x5000]) == 1234.5


def test_float32_little_word_order_swaps_the_words() -> None:
    register = reg(unit="Wh", word_order="little")
    assert encode(register, 1234.5) == [0x5000, 0x449A]
    assert decode(register, [0x5000, 0x449A]) == 1234.5


def test_float32_little_byte_order_swaps_bytes_within_each_word() -> None:
    assert encode(reg(unit="Wh", byte_order="little"), 1234.5) == [0x9A44, 0x0050]
    both = reg(unit="Wh", byte_order="little", word_order="little")
    assert encode(both, 1234.5) == [0x0050, 0x9A44]
    assert decode(both, [0x0050, 0x9A44]) == 1234.5


def test_kwh_register_decodes_to_wh() -> None:
    assert decode(reg(unit="kWh"), [0x449A, 0x5000]) == 1_234_500.0
    assert encode(reg(unit="kWh"), 1_234_500.0) == [0x449A, 0x5000]
    assert decode(reg(unit="MWh"), [0x449A, 0x5000]) == 1_234_500_000.0
    assert decode(reg(unit="kW", quantity="power"), [0x449A, 0x5000]) == 1_234_500.0


def test_integer_types() -> None:
    assert encode(reg("int16", "W", "power"), -2) == [0xFFFE]
    assert decode(reg("int16", "W", "power"), [0xFFFE]) == -2
    assert decode(reg("uint16", "W", "power"), [0xFFFE]) == 65534
    assert encode(reg("uint32", "Wh"), 0x12345678) == [0x1234, 0x5678]
    assert encode(reg("uint32", "Wh", word_order="little"), 0x12345678) == [0x5678, 0x1234]
    assert encode(reg("uint32", "Wh", byte_order="little"), 0x12345678) == [0x3412, 0x7856]
    assert decode(reg("int32", "W", "power"), [0xFFFF, 0xFFFF]) == -1
    assert encode(reg("uint64", "Wh"), 0x0123456789ABCDEF) == [0x0123, 0x4567, 0x89AB, 0xCDEF]
    assert decode(reg("int64", "Wh", word_order="little"), [0xCDEF, 0x5678, 0x1234, 0x0012]) == 0x0012_1234_5678_CDEF
    assert decode(reg("int64", "Wh"), [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE]) == -2


def test_scale_applies_before_the_unit_factor() -> None:
    hundredths_of_kwh = reg("uint32", "kWh", scale=0.01)
    assert decode(hundredths_of_kwh, [0x0001, 0xE240]) == pytest.approx(1_234_560.0)  # 123456 * 0.01 kWh
    assert encode(hundredths_of_kwh, 1_234_560.0) == [0x0001, 0xE240]
    tenths_of_w = reg("int16", "W", "power", scale=0.1)
    assert encode(tenths_of_w, -7.4) == [0xFFB6]  # -74


def test_encode_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="uint16"):
        encode(reg("uint16", "W", "power"), 65536)
    with pytest.raises(ValueError, match="uint32"):
        encode(reg("uint32", "Wh"), -1)
    with pytest.raises(ValueError, match="int16"):
        encode(reg("int16", "W", "power"), float("nan"))
    with pytest.raises(ValueError, match="float32"):
        encode(reg("float32", "Wh"), 1e40)


def test_decode_refuses_the_wrong_number_of_words() -> None:
    with pytest.raises(ValueError, match="expected 2"):
        decode(reg(), [0x449A])
    with pytest.raises(ValueError, match="expected 2"):
        decode(reg(), [0x449A, 0x10000])


@given(st.integers(0, 2**32 - 1), st.sampled_from(["big", "little"]), st.sampled_from(["big", "little"]))
def test_uint32_round_trip_is_exact(value: int, word_order: str, byte_order: str) -> None:
    register = reg("uint32", "Wh", word_order=word_order, byte_order=byte_order)
    words = encode(register, value)
    assert len(words) == 2 and all(0 <= w <= 0xFFFF for w in words)
    assert decode(register, words) == value


@given(st.integers(0, 16_384_000 - 1))
def test_float32_kwh_keeps_the_wh_below_16384_kwh(index_wh: int) -> None:
    register = load_model("sdm630").registers["import_energy"]
    assert round(decode(register, encode(register, index_wh))) == index_wh


def test_float32_kwh_loses_the_wh_above_16384_kwh() -> None:
    register = load_model("sdm630").registers["import_energy"]
    # Between 2^14 and 2^15 kWh one float32 step is 2^-9 kWh = 1.953125 Wh.
    assert decode(register, encode(register, 16_384_000)) == 16_384_000
    assert round(decode(register, encode(register, 16_384_001))) != 16_384_001


# --- validation of malformed maps -------------------------------------------

GOOD_MODEL = """\
[model]
name = "testmeter"
manufacturer = "Test"
source = "hand-written for the tests"
function = 4
byte_order = "big"
word_order = "big"
"""

GOOD_REGISTERS = """\
[registers.import_energy]
address = 0x0048
type = "float32"
unit = "kWh"

[registers.export_energy]
address = 0x004A
type = "float32"
unit = "kWh"
"""


def write_map(tmp_path: Path, text: str, name: str = "testmeter") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_good_test_map_loads(tmp_path: Path) -> None:
    model = load_model_file(write_map(tmp_path, GOOD_MODEL + GOOD_REGISTERS))
    assert set(model.registers) == {"import_energy", "export_energy"}
    assert model.registers["import_energy"].scale == 1.0


def test_register_settings_override_model_defaults(tmp_path: Path) -> None:
    text = GOOD_MODEL + GOOD_REGISTERS + (
        '[registers.power]\naddress = 0x0048\nfunction = 3\ntype = "int32"\n'
        'word_order = "little"\nbyte_order = "little"\nunit = "kW"\nscale = 0.001\n'
    )
    power = load_model_file(write_map(tmp_path, text)).registers["power"]
    # Same address as import_energy, but holding registers: a separate table, no overlap.
    assert (power.function, power.type, power.count) == (3, "int32", 2)
    assert (power.word_order, power.byte_order, power.unit, power.scale) == ("little", "little", "kW", 0.001)


def one_register(body: str, quantity: str = "import_energy") -> str:
    return GOOD_MODEL + f"[registers.{quantity}]\n" + body


BAD_REGISTERS = [
    ("unknown type", one_register('address = 0\ntype = "float16"\nunit = "kWh"\n'), "import_energy", "float16"),
    ("word order", one_register('address = 0\ntype = "float32"\nunit = "kWh"\nword_order = "middle"\n'), "import_energy", "word_order"),  # noqa: E501
    ("byte order", one_register('address = 0\ntype = "float32"\nunit = "kWh"\nbyte_order = "mixed"\n'), "import_energy", "byte_order"),  # noqa: E501
    ("function 5", one_register('address = 0\ntype = "float32"\nunit = "kWh"\nfunction = 5\n'), "import_energy", "function 5"),  # noqa: E501
    ("function bool", one_register('address = 0\ntype = "float32"\nunit = "kWh"\nfunction = true\n'), "import_energy", "function"),  # noqa: E501
    ("negative address", one_register('address = -1\ntype = "float32"\nunit = "kWh"\n'), "import_energy", "address -1"),
    ("address too big", one_register('address = 65536\ntype = "uint16"\nunit = "Wh"\n'), "import_energy", "address 65536"),  # noqa: E501
    ("address as text", one_register('address = "0x48"\ntype = "float32"\nunit = "kWh"\n'), "import_energy", "address"),
    ("runs past the end", one_register('address = 65535\ntype = "float32"\nunit = "kWh"\n'), "import_energy", "65535"),
    ("missing address", one_register('type = "float32"\nunit = "kWh"\n'), "import_energy", "address"),
    ("zero scale", one_register('address = 0\ntype = "float32"\nunit = "kWh"\nscale = 0\n'), "import_energy", "scale"),
    ("scale as text", one_register('address = 0\ntype = "float32"\nunit = "kWh"\nscale = "1"\n'), "import_energy", "scale"),  # noqa: E501
    ("infinite scale", one_register('address = 0\ntype = "float32"\nunit = "kWh"\nscale = inf\n'), "import_energy", "scale"),  # noqa: E501
    ("power unit for energy", one_register('address = 0\ntype = "float32"\nunit = "kW"\n'), "import_energy", "unit 'kW' is not allowed for energy"),  # noqa: E501
    ("missing unit", one_register('address = 0\ntype = "float32"\n'), "import_energy", "unit None"),
    ("voltage unit for power", one_register('address = 0\ntype = "float32"\nunit = "V"\n', "power"), "power", "unit 'V' is not allowed for power"),  # noqa: E501
    ("unknown dimension", one_register('address = 0\ntype = "float32"\nunit = "W"\n', "banana"), "banana", "dimension"),
    ("two dimensions", one_register('address = 0\ntype = "float32"\nunit = "W"\n', "power_current"), "power_current", "dimension"),  # noqa: E501
    ("unknown key", one_register('adress = 0\naddress = 0\ntype = "float32"\nunit = "kWh"\n'), "import_energy", "adress"),  # noqa: E501
    (
        "overlap",
        GOOD_MODEL + GOOD_REGISTERS + '[registers.total_energy]\naddress = 0x0049\ntype = "float32"\nunit = "kWh"\n',
        "total_energy",
        "overlaps registers.import_energy",
    ),
    (
        "overlap of a wide register",
        GOOD_MODEL + GOOD_REGISTERS + '[registers.total_energy]\naddress = 0x0046\ntype = "uint64"\nunit = "Wh"\n',
        "import_energy",
        "overlaps registers.total_energy",
    ),
]


@pytest.mark.parametrize(
    ("text", "register", "problem"), [case[1:] for case in BAD_REGISTERS], ids=[c[0] for c in BAD_REGISTERS]
)
def test_bad_register_names_file_register_and_problem(tmp_path: Path, text: str, register: str, problem: str) -> None:
    path = write_map(tmp_path, text)
    with pytest.raises(RegisterMapError) as caught:
        load_model_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"registers.{register}:" in message
    assert problem in message


BAD_MODELS = [
    ("not toml", GOOD_MODEL + "[registers.import_energy\n", "not valid TOML"),
    ("no model", GOOD_REGISTERS, "model: missing"),
    ("unknown model key", GOOD_MODEL + "colour = 'blue'\n" + GOOD_REGISTERS, "model.colour: unknown key"),
    ("missing source", GOOD_MODEL.replace('source = "hand-written for the tests"\n', "") + GOOD_REGISTERS, "model.source"),  # noqa: E501
    ("name mismatch", GOOD_MODEL.replace('"testmeter"', '"othermeter"') + GOOD_REGISTERS, "model.name"),
    ("no registers", GOOD_MODEL, "registers: missing"),
    ("unknown table", GOOD_MODEL + GOOD_REGISTERS + "[extra]\nx = 1\n", "extra: unknown table"),
    ("register not a table", GOOD_MODEL + "[registers]\nimport_energy = 5\n", "registers.import_energy: must be a table"),  # noqa: E501
]


@pytest.mark.parametrize(("text", "problem"), [case[1:] for case in BAD_MODELS], ids=[c[0] for c in BAD_MODELS])
def test_bad_model_names_file_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = write_map(tmp_path, text)
    with pytest.raises(RegisterMapError) as caught:
        load_model_file(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegisterMapError, match="cannot read"):
        load_model_file(tmp_path / "nothere.toml")
