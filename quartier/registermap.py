"""Meter register maps: data files describing where a meter model keeps its values.

A model is described once, in ``quartier/meters/<name>.toml``; the gateway's
Modbus driver and the meter simulators both load it through this module, so
the map is never copied into code. Format::

    [model]
    name = "sdm630"              # must equal the file name without .toml
    manufacturer = "Eastron"
    source = "..."               # where the map comes from (datasheet, table)
    function = 4                 # defaults that a register may override:
    byte_order = "big"           #   function, type, byte_order, word_order
    word_order = "big"

    [registers.import_energy]    # the quantity this register holds
    address = 0x0048             # on-the-wire address (0-based)
    type = "float32"
    unit = "kWh"
    scale = 1.0                  # optional, default 1.0

Value in the canonical unit = raw * scale * unit factor, where the canonical
units are Wh (energy), W (power), V, A and Hz. A quantity's dimension comes
from its name: ``energy``, ``power``, ``voltage``, ``current`` or ``frequency``
must be one of its ``_``-separated words (``import_energy``, ``power_l1``).

``word_order`` is the order of the 16-bit registers of a multi-register value
(``big`` = most significant word first); ``byte_order`` the order of the two
bytes inside each register (``big`` is the Modbus standard, ``little`` swaps
them).

Types: ``int16``, ``uint16``, ``int32``, ``uint32``, ``int64``, ``uint64``
(integers, raw * scale), ``float32`` (IEEE 754 single, 2 registers) and
``float64`` (IEEE 754 double, 4 registers).

Precision: a float32 energy keeps a 1 Wh resolution only while its value in
its unit has a step of 1 Wh or less; for kWh that is below 2^14 kWh =
16,384 kWh (2^24 Wh = 16,777 kWh if the meter counted in Wh). Above that,
decoded energies move in steps of 2, 4, ... Wh. A float64 has a 53-bit
significand: counted in Wh it holds every whole Wh exactly up to 2^53 Wh
(9.0e15 Wh); counted in kWh its step stays below 1 Wh up to 2^43 kWh
(8.8e12 kWh). Integer types resolve one raw step = scale * unit (e.g. 10 Wh
for a counter in 0.01 kWh), whatever the value.

Identification (optional), so that a bus scan can tell models apart when
several answer at one address::

    [identify]
    address = 0xFC02             # on-the-wire address (0-based)
    function = 3                 # default: [model] function
    type = "uint16"              # "uint16", "uint32" or "string"
    values = [0x0089]            # accepted values (integers; strings for "string")
    # count = 6                  # registers of a "string" (required for it)
    # unit = 200                 # read at another unit id than the meter's own
    # word_order = "big"         # of a uint32; default: [model] word_order

A ``string`` is ASCII, two characters per register, high byte first, ended
by the first NUL; trailing spaces are ignored. A string value matches when
the text read *starts with* it, so ``values = ["B23"]`` accepts the type
designation "B23 312-100". An integer value must equal the value read.
``unit`` is for devices that keep their identity at a fixed unit id of their
own (an Alfen charge point: unit 200 for the station, 1 and 2 for the
sockets); without it the identification is read at the meter's unit id and
must not overlap a register of the map.
"""

from __future__ import annotations

import math
import re
import struct
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from quartier.errors import RegisterMapError

Order = Literal["big", "little"]

#: Register count of each supported type.
TYPE_COUNTS: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
}
FLOAT_TYPES = frozenset({"float32", "float64"})
_INT_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}

#: Allowed units per dimension, with the factor to the canonical unit (first).
UNITS: dict[str, dict[str, float]] = {
    "energy": {"Wh": 1.0, "kWh": 1e3, "MWh": 1e6},
    "power": {"W": 1.0, "kW": 1e3},
    "voltage": {"V": 1.0},
    "current": {"A": 1.0},
    "frequency": {"Hz": 1.0},
}
#: Canonical unit of each dimension.
CANONICAL_UNITS: dict[str, str] = {dim: next(iter(units)) for dim, units in UNITS.items()}

FUNCTIONS = frozenset({3, 4})
ORDERS = ("big", "little")

_MODEL_KEYS = {"name", "manufacturer", "source", "function", "type", "byte_order", "word_order"}
_REGISTER_KEYS = {"address", "type", "function", "byte_order", "word_order", "scale", "unit"}
_IDENTIFY_KEYS = {"address", "function", "type", "count", "values", "unit", "word_order"}
#: Register count of each identification type (``string`` takes its ``count``).
IDENTIFY_TYPES: dict[str, int | None] = {"uint16": 1, "uint32": 2, "string": None}
_MAX_STRING_REGISTERS = 125  # one read request
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_QUANTITY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_PACKAGE = "quartier"
_MAPS_DIR = "meters"


@dataclass(frozen=True)
class Register:
    """Where and how one quantity is stored in a meter.

    Attributes:
        quantity: what the register holds, e.g. ``import_energy``.
        address: first register, 0-based on-the-wire address. [0..65535]
        type: one of :data:`TYPE_COUNTS`.
        count: number of 16-bit registers the value spans.
        function: Modbus read function: 3 (holding) or 4 (input registers).
        byte_order: byte order inside each register, ``big`` or ``little``.
        word_order: register order of a multi-register value, ``big`` or ``little``.
        scale: raw value * scale = value in ``unit``.
        unit: unit of the scaled value, e.g. ``kWh``.
    """

    quantity: str
    address: int
    type: str
    count: int
    function: int
    byte_order: Order
    word_order: Order
    scale: float
    unit: str

    @property
    def dimension(self) -> str:
        """Physical dimension (``energy``, ``power``, ...), derived from the quantity name."""
        dimension = dimension_of(self.quantity)
        assert dimension is not None  # validated when loaded
        return dimension

    @property
    def factor(self) -> float:
        """Multiplier from the scaled value in ``unit`` to the canonical unit."""
        return UNITS[self.dimension][self.unit]

    @property
    def canonical_unit(self) -> str:
        """Unit of :func:`decode`'s result and :func:`encode`'s argument (Wh, W, V, A, Hz)."""
        return CANONICAL_UNITS[self.dimension]

    def resolution(self, value: float = 0.0) -> float:
        """Step between two adjacent values the register can hold near ``value``. [canonical unit]

        One raw step (scale * unit factor) for integer types; for float32 and
        float64 the spacing of floats of that width at ``value``, which grows
        with the value (see the module docstring).
        """
        step = abs(self.scale * self.factor)
        if self.type == "float64":
            return math.ulp(abs(value) / step) * step
        if self.type == "float32":
            exponent = math.frexp(abs(value) / step)[1] if value else -125  # x = m * 2**exponent, 0.5 <= m < 1
            return math.ldexp(1.0, max(exponent, -125) - 24) * step  # subnormals: 2**-149
        return step


@dataclass(frozen=True)
class Identify:
    """Where a model keeps a value that tells it apart from other models (``[identify]``).

    Attributes:
        address: first register, 0-based on-the-wire address. [0..65535]
        function: Modbus read function: 3 (holding) or 4 (input registers).
        type: ``uint16``, ``uint32`` or ``string`` (ASCII, two characters per
            register, high byte first).
        count: number of 16-bit registers to read. [1..125]
        values: accepted values: integers for ``uint16``/``uint32``, strings
            for ``string`` (matched as a prefix of the text read).
        unit: the unit id to read it at, or None for the meter's own unit id.
        word_order: register order of a ``uint32``, ``big`` or ``little``.
    """

    address: int
    function: int
    type: str
    count: int
    values: tuple[int, ...] | tuple[str, ...]
    unit: int | None = None
    word_order: Order = "big"

    def decode(self, regs: Sequence[int]) -> int | str:
        """The value held in ``regs``: an integer, or the text up to the first NUL without trailing spaces.

        Bytes that are not ASCII decode as U+FFFD, so a foreign device never raises.

        Raises:
            ValueError: ``regs`` does not hold exactly ``count`` 16-bit words.
        """
        if len(regs) != self.count or any(not 0 <= word <= 0xFFFF for word in regs):
            raise ValueError(f"identify: expected {self.count} 16-bit registers, got {list(regs)}")
        if self.type == "string":
            raw = b"".join(word.to_bytes(2, "big") for word in regs)
            return raw.split(b"\0", 1)[0].decode("ascii", errors="replace").rstrip(" ")
        words = list(regs) if self.word_order == "big" else list(reversed(regs))
        value = 0
        for word in words:
            value = (value << 16) | word
        return value

    def matches(self, regs: Sequence[int]) -> bool:
        """Whether ``regs`` (read at :attr:`address`) hold one of the accepted :attr:`values`.

        Raises:
            ValueError: ``regs`` does not hold exactly ``count`` 16-bit words.
        """
        value = self.decode(regs)
        if isinstance(value, str):
            return any(value.startswith(str(accepted)) for accepted in self.values)
        return value in self.values

    def encode(self, value: int | str | None = None) -> list[int]:
        """The registers a device of this model holds: ``value`` (default: the first accepted value).

        A string is padded with NULs to :attr:`count` registers.

        Raises:
            ValueError: the value does not fit the type or the registers.
        """
        if value is None:
            value = self.values[0]
        if self.type == "string":
            if not isinstance(value, str):
                raise ValueError(f"identify: {value!r} is not a string")
            data = value.encode("ascii")
            if len(data) > 2 * self.count:
                raise ValueError(f"identify: {value!r} does not fit in {self.count} registers")
            data = data.ljust(2 * self.count, b"\0")
            return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << (16 * self.count):
            raise ValueError(f"identify: {value!r} does not fit a {self.type}")
        words = [(value >> (16 * i)) & 0xFFFF for i in reversed(range(self.count))]
        return words if self.word_order == "big" else list(reversed(words))


@dataclass(frozen=True)
class MeterModel:
    """A meter model's register map, as loaded from its TOML file.

    Attributes:
        name: model name, the file name without ``.toml``.
        manufacturer: who makes the meter.
        source: the document the map was taken from.
        registers: the registers by quantity.
        identify: how to recognise the model on a bus, or None when the map has no ``[identify]``.
    """

    name: str
    manufacturer: str
    source: str
    registers: dict[str, Register]
    identify: Identify | None = None


def dimension_of(quantity: str) -> str | None:
    """The dimension named in ``quantity`` (``import_energy`` -> ``energy``), or None.

    None also when the name contains more than one dimension word.
    """
    found = [word for word in quantity.split("_") if word in UNITS]
    return found[0] if len(found) == 1 else None


def available_models() -> list[str]:
    """Names of the register maps shipped in ``quartier/meters``, sorted."""
    folder = resources.files(_PACKAGE).joinpath(_MAPS_DIR)
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(".toml")
    )


def load_model(name: str) -> MeterModel:
    """Load and validate the shipped register map ``quartier/meters/<name>.toml``.

    Raises:
        RegisterMapError: unknown model name, or an invalid map (the message
            names the file, the register and the problem).
    """
    if not _NAME_RE.match(name) or name not in available_models():
        raise RegisterMapError(f"unknown meter model {name!r}; available models: {available_models()}")
    resource = resources.files(_PACKAGE).joinpath(_MAPS_DIR, f"{name}.toml")
    return _parse(resource.read_bytes(), f"{_PACKAGE}/{_MAPS_DIR}/{name}.toml", name)


def load_model_file(path: str | Path) -> MeterModel:
    """Load and validate a register map from any TOML file (``model.name`` must equal its stem).

    Raises:
        RegisterMapError: unreadable file or invalid map (names the file,
            the register and the problem).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegisterMapError(f"{path}: cannot read register map: {exc.strerror or exc}") from exc
    return _parse(data, str(path), path.stem)


def _parse(data: bytes, where: str, expected_name: str) -> MeterModel:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegisterMapError(f"{where}: not valid TOML: {exc}") from exc

    def fail(key: str, problem: str) -> RegisterMapError:
        return RegisterMapError(f"{where}: {key}: {problem}")

    unknown = sorted(set(doc) - {"model", "registers", "identify"})
    if unknown:
        raise fail(unknown[0], "unknown table; a map has only [model], [registers.<quantity>] and [identify]")
    model = doc.get("model")
    if not isinstance(model, dict):
        raise fail("model", "missing [model] table")
    unknown = sorted(set(model) - _MODEL_KEYS)
    if unknown:
        raise fail(f"model.{unknown[0]}", f"unknown key; allowed: {sorted(_MODEL_KEYS)}")
    texts: dict[str, str] = {}
    for key in ("name", "manufacturer", "source"):
        value = model.get(key)
        if not isinstance(value, str) or not value.strip():
            raise fail(f"model.{key}", "required, a non-empty string")
        texts[key] = value
    if texts["name"] != expected_name:
        raise fail("model.name", f"is {texts['name']!r} but the file is named {expected_name!r}.toml")

    registers_table = doc.get("registers")
    if not isinstance(registers_table, dict) or not registers_table:
        raise fail("registers", "missing or empty; define at least one [registers.<quantity>] table")
    registers: dict[str, Register] = {}
    for quantity, entry in registers_table.items():
        key = f"registers.{quantity}"
        if not isinstance(entry, dict):
            raise fail(key, "must be a table")
        try:
            registers[quantity] = _register(quantity, entry, model)
        except ValueError as exc:
            raise fail(key, str(exc)) from None
    _check_overlaps(registers.values(), fail)
    identify = None
    if "identify" in doc:
        entry = doc["identify"]
        if not isinstance(entry, dict):
            raise fail("identify", "must be a table")
        try:
            identify = _identify(entry, model)
        except _TableError as exc:
            raise fail(f"identify.{exc.key}" if exc.key else "identify", exc.problem) from None
        _check_identify_overlap(identify, registers.values(), fail)
    return MeterModel(
        name=texts["name"],
        manufacturer=texts["manufacturer"],
        source=texts["source"],
        registers=registers,
        identify=identify,
    )


class _TableError(ValueError):
    """A problem with one key of a table (``key`` empty: the table itself)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


def _identify(entry: Mapping[str, Any], defaults: Mapping[str, Any]) -> Identify:
    """Validate the ``[identify]`` table; raises _TableError naming the key and the problem."""
    unknown = sorted(set(entry) - _IDENTIFY_KEYS)
    if unknown:
        raise _TableError(unknown[0], f"unknown key; allowed: {sorted(_IDENTIFY_KEYS)}")
    type_ = entry.get("type")
    if type_ not in IDENTIFY_TYPES:
        raise _TableError("type", f"{type_!r} unknown; choose one of {sorted(IDENTIFY_TYPES)}")
    fixed_count = IDENTIFY_TYPES[type_]
    count: int = entry.get("count", fixed_count)
    if fixed_count is None:
        if not _is_int(count) or not 1 <= count <= _MAX_STRING_REGISTERS:
            raise _TableError("count", f"{count!r}: a string needs a register count in 1..{_MAX_STRING_REGISTERS}")
    elif count != fixed_count or not _is_int(count):
        raise _TableError("count", f"{count!r}: a {type_} is {fixed_count} register(s); leave count out")
    if "address" not in entry:
        raise _TableError("address", "missing")
    address = entry["address"]
    if not _is_int(address) or not 0 <= address <= 65535:
        raise _TableError("address", f"{address!r} must be an integer in 0..65535")
    if address + count > 65536:
        raise _TableError("address", f"{count} register(s) at {address} run past the last register 65535")
    function = entry.get("function", defaults.get("function"))
    if not _is_int(function) or function not in FUNCTIONS:
        raise _TableError("function", f"{function!r} not supported; use 3 (holding) or 4 (input registers)")
    word_order = entry.get("word_order", defaults.get("word_order", "big"))
    if word_order not in ORDERS:
        raise _TableError("word_order", f"{word_order!r} invalid; use 'big' or 'little'")
    unit = entry.get("unit")
    if unit is not None and (not _is_int(unit) or not 0 <= unit <= 255):
        raise _TableError("unit", f"{unit!r} must be a Modbus unit id in 0..255")
    values = entry.get("values")
    if not isinstance(values, list) or not values:
        raise _TableError("values", "required, a non-empty list of the accepted values")
    for index, value in enumerate(values):
        if type_ == "string":
            if not isinstance(value, str) or not value or not all(" " <= char <= "~" for char in value):
                raise _TableError(f"values[{index}]", f"{value!r}: a string identification needs printable ASCII")
            if len(value) > 2 * count:
                raise _TableError(f"values[{index}]", f"{value!r} is longer than {count} registers ({2 * count} chars)")
        elif not _is_int(value) or not 0 <= value < 1 << (16 * count):
            raise _TableError(f"values[{index}]", f"{value!r} must be an integer in 0..{(1 << (16 * count)) - 1}")
    return Identify(
        address=address,
        function=function,
        type=type_,
        count=count,
        values=tuple(values),
        unit=unit,
        word_order=word_order,
    )


def _check_identify_overlap(
    identify: Identify, registers: Iterable[Register], fail: Callable[[str, str], RegisterMapError]
) -> None:
    """Refuse an identification read at the meter's unit that shares an address with a register."""
    if identify.unit is not None:
        return
    end = identify.address + identify.count
    for register in registers:
        if register.function == identify.function and identify.address < register.address + register.count:
            if register.address < end:
                raise fail(
                    "identify.address",
                    f"{identify.address} overlaps registers.{register.quantity} "
                    f"(function {register.function}, "
                    f"addresses {register.address}..{register.address + register.count - 1})",
                )


def _register(quantity: str, entry: Mapping[str, Any], defaults: Mapping[str, Any]) -> Register:
    """Validate one register table; raises ValueError with the problem."""
    if not _QUANTITY_RE.match(quantity):
        raise ValueError("quantity names are lower-case words joined by '_'")
    dimension = dimension_of(quantity)
    if dimension is None:
        raise ValueError(f"quantity name must contain exactly one of the dimensions {sorted(UNITS)}")
    unknown = sorted(set(entry) - _REGISTER_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; allowed: {sorted(_REGISTER_KEYS)}")

    def setting(key: str) -> Any:
        if key in entry:
            return entry[key]
        if key in defaults:
            return defaults[key]
        raise ValueError(f"missing {key!r} (set it here or in [model])")

    type_ = setting("type")
    if type_ not in TYPE_COUNTS:
        raise ValueError(f"type {type_!r} unknown; choose one of {sorted(TYPE_COUNTS)}")
    count = TYPE_COUNTS[type_]
    function = setting("function")
    if not _is_int(function) or function not in FUNCTIONS:
        raise ValueError(f"function {function!r} not supported; use 3 (holding) or 4 (input registers)")
    orders: list[Order] = []
    for key in ("byte_order", "word_order"):
        value = setting(key)
        if value not in ORDERS:
            raise ValueError(f"{key} {value!r} invalid; use 'big' or 'little'")
        orders.append(value)
    if "address" not in entry:
        raise ValueError("missing 'address'")
    address = entry["address"]
    if not _is_int(address) or not 0 <= address <= 65535:
        raise ValueError(f"address {address!r} must be an integer in 0..65535")
    if address + count > 65536:
        raise ValueError(f"{type_} at address {address} runs past the last register 65535")
    scale = entry.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale == 0:
        raise ValueError(f"scale {scale!r} must be a finite nonzero number")
    unit = entry.get("unit")
    if unit not in UNITS[dimension]:
        raise ValueError(f"unit {unit!r} is not allowed for {dimension}; use one of {sorted(UNITS[dimension])}")
    return Register(
        quantity=quantity,
        address=address,
        type=type_,
        count=count,
        function=function,
        byte_order=orders[0],
        word_order=orders[1],
        scale=float(scale),
        unit=unit,
    )


def _check_overlaps(registers: Iterable[Register], fail: Callable[[str, str], RegisterMapError]) -> None:
    """Refuse registers of the same function that share an address (holding and input tables are separate)."""
    ordered = sorted(registers, key=lambda r: (r.function, r.address))
    for previous, current in zip(ordered, ordered[1:]):
        if previous.function == current.function and current.address < previous.address + previous.count:
            raise fail(
                f"registers.{current.quantity}",
                f"address {current.address} overlaps registers.{previous.quantity} "
                f"(function {previous.function}, "
                f"addresses {previous.address}..{previous.address + previous.count - 1})",
            )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: ``struct`` format of each numeric type, big-endian: registers are big-endian 16-bit words (Modbus spec).
_STRUCT: dict[str, str] = {
    "int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f",
    "int64": ">q", "uint64": ">Q", "float64": ">d",
}


def _words_to_raw(type_: str, words: Sequence[int], word_order: Order) -> int | float:
    """The value of ``words`` (most significant word first unless ``word_order`` is little)."""
    ordered = list(words) if word_order == "big" else list(reversed(words))
    value = struct.unpack(_STRUCT[type_], b"".join(w.to_bytes(2, "big") for w in ordered))[0]
    assert isinstance(value, int | float)
    return value


def _raw_to_words(type_: str, raw: int | float, word_order: Order) -> list[int]:
    """Inverse of :func:`_words_to_raw`; raises OverflowError or struct.error when ``raw`` does not fit."""
    data = struct.pack(_STRUCT[type_], raw)
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    return words if word_order == "big" else list(reversed(words))


def _swap_bytes(words: Sequence[int]) -> list[int]:
    return [((word & 0xFF) << 8) | (word >> 8) for word in words]


def decode(register: Register, regs: Sequence[int]) -> float:
    """Convert the raw register words of ``register`` to its value in the canonical unit.

    Returns raw * scale * unit factor, in Wh, W, V, A or Hz, as a float: a
    64-bit raw value above 2^53 is rounded to the nearest float. A float32 or
    float64 that holds NaN or infinity is returned as such (callers decide
    what is bad data).

    Raises:
        ValueError: ``regs`` does not hold exactly ``register.count`` 16-bit words.
    """
    if len(regs) != register.count or any(not 0 <= word <= 0xFFFF for word in regs):
        raise ValueError(f"{register.quantity}: expected {register.count} 16-bit registers, got {list(regs)}")
    words = _swap_bytes(regs) if register.byte_order == "little" else list(regs)
    raw = _words_to_raw(register.type, words, register.word_order)
    return raw * register.scale * register.factor


def rollover_wh(register: Register) -> int | None:
    """Where an integer energy register rolls over to 0: 2^bits x scale x unit factor; None for floats. [Wh]

    A signed register counts up to its largest positive value, so int32 rolls over at 2^31 raw steps.
    """
    if register.type in FLOAT_TYPES or register.type == "string":
        return None
    bits = 16 * register.count - (1 if register.type.startswith("int") else 0)
    return round(2**bits * register.scale * register.factor)


def encode(register: Register, value_canonical: float) -> list[int]:
    """Convert a value in the canonical unit (Wh, W, V, A, Hz) to the register words (inverse of :func:`decode`).

    Integer types round to the nearest raw step; float32 and float64 round to
    the nearest float of their width (see the module docstring for the
    resolution this leaves).

    Raises:
        ValueError: the value does not fit the register type.
    """
    raw: int | float
    if register.type in FLOAT_TYPES:
        raw = value_canonical / (register.scale * register.factor)
    else:
        if not math.isfinite(value_canonical):
            raise ValueError(f"{register.quantity}: {value_canonical} cannot be stored in {register.type}")
        # Exact, so that 64-bit counters beyond 2^53 survive.
        raw = round(Fraction(value_canonical) / (Fraction(register.scale) * Fraction(register.factor)))
        low, high = _INT_RANGES[register.type]
        if not low <= raw <= high:
            raise ValueError(
                f"{register.quantity}: {value_canonical} {register.canonical_unit} is raw {raw}, "
                f"outside the {register.type} range {low}..{high}"
            )
    try:
        words = _raw_to_words(register.type, raw, register.word_order)
    except (OverflowError, ValueError, struct.error) as exc:
        raise ValueError(f"{register.quantity}: {value_canonical} cannot be stored in {register.type}: {exc}") from exc
    return _swap_bytes(words) if register.byte_order == "little" else words
