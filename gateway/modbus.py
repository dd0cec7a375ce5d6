"""The Modbus TCP meter driver.

:class:`ModbusTcpBus` is the only class that talks to pymodbus (one place to
change when its API moves). :class:`ModbusMeter` reads one meter on a bus
through its register map (:mod:`quartier.registermap`). A :class:`BusPool`,
owned by the gateway, hands out one bus per endpoint so that meters behind
one Modbus TCP gateway share a connection and never talk over each other.

Importing this module registers the ``modbus`` driver; its ``[[meters]]``
table holds ``id``, ``model``, ``host``, ``port`` (default 502), ``unit``
(default 1), ``timeout_s`` (default 1.0) and ``retries`` (default 1).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException

from gateway.meters import Reading, register_driver
from quartier.errors import ConfigError, MeterError, RegisterMapError
from quartier.registermap import MeterModel, Register, available_models, decode, load_model

#: Most registers one read request may ask for (Modbus application protocol, functions 3 and 4).
MAX_REGISTERS_PER_REQUEST = 125
#: Largest run of unwanted registers read (and thrown away) to save a request.
MAX_GAP = 8
#: Quantities a :class:`Reading` is made of; ``import_energy`` is required.
READ_QUANTITIES = ("import_energy", "export_energy", "power")

Request = tuple[int, int, int]
"""``(function, address, count)`` of one read request."""


class ModbusExceptionError(MeterError):
    """The device answered with a Modbus exception response.

    Attributes:
        code: the Modbus exception code, e.g. 2 (ILLEGAL_ADDRESS).
    """

    def __init__(self, message: str, code: int) -> None:
        self.code = code
        super().__init__(message)


def _exception_name(code: int) -> str:
    try:
        return ExcCodes(code).name
    except ValueError:
        return "unknown"


class ModbusTcpBus:
    """One Modbus TCP connection (to a meter or to a TCP-to-RS485 gateway), one request at a time.

    Connects on first use and again on the next request after any connection
    failure or timeout.

    Args:
        host: name or address of the Modbus TCP server.
        port: its TCP port. [1..65535]
        timeout_s: connect timeout and response timeout of each attempt. [s, > 0]
        retries: extra attempts after a response timeout. [>= 0]
    """

    def __init__(self, host: str, port: int, timeout_s: float = 1.0, retries: int = 1) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError(f"host {host!r} must be a non-empty string")
        if not _is_int(port) or not 1 <= port <= 65535:
            raise ValueError(f"port {port!r} must be an integer in 1..65535")
        if not _is_number(timeout_s) or not 0 < timeout_s <= 60:
            raise ValueError(f"timeout_s {timeout_s!r} must be a number of seconds in (0, 60]")
        if not _is_int(retries) or not 0 <= retries <= 10:
            raise ValueError(f"retries {retries!r} must be an integer in 0..10")
        self.host = host
        self.port = port
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self._lock = threading.Lock()
        self._client = ModbusTcpClient(host, port=port, timeout=self.timeout_s, retries=retries)

    @property
    def endpoint(self) -> str:
        """``host:port``, as used in error messages."""
        return f"{self.host}:{self.port}"

    def read_registers(self, function: int, address: int, count: int, unit: int) -> list[int]:
        """Read ``count`` 16-bit registers from ``address`` of device ``unit``.

        Args:
            function: 3 (read holding registers) or 4 (read input registers).
            address: first register, 0-based on-the-wire address. [0..65535]
            count: number of registers. [1..125]
            unit: Modbus unit (device) id. [0..255]

        Returns:
            the register words, each 0..65535.

        Raises:
            ModbusExceptionError: the device answered with an exception response.
            MeterError: no connection, timeout, or a malformed answer; the
                connection is closed and reopened on the next request.
            ValueError: arguments out of range.
        """
        if function not in (3, 4):
            raise ValueError(f"function {function!r} must be 3 or 4")
        if not _is_int(count) or not 1 <= count <= MAX_REGISTERS_PER_REQUEST:
            raise ValueError(f"count {count!r} must be an integer in 1..{MAX_REGISTERS_PER_REQUEST}")
        if not _is_int(address) or not 0 <= address or address + count > 65536:
            raise ValueError(f"addresses {address}..{address + count - 1} are outside 0..65535")
        if not _is_int(unit) or not 0 <= unit <= 255:
            raise ValueError(f"unit {unit!r} must be an integer in 0..255")
        where = (
            f"Modbus {self.endpoint} unit {unit}: function {function} address {address} (0x{address:04X}) count {count}"
        )
        with self._lock:
            if not self._client.connected and not self._client.connect():
                raise MeterError(
                    f"{where}: cannot connect (refused, unreachable or no answer within {self.timeout_s} s)"
                )
            read = self._client.read_holding_registers if function == 3 else self._client.read_input_registers
            try:
                response = read(address, count=count, device_id=unit)
            except (ModbusException, OSError) as exc:
                self._client.close()
                raise MeterError(f"{where}: {exc}") from exc
            if response.isError():
                code = getattr(response, "exception_code", None)
                if code is None:
                    self._client.close()
                    raise MeterError(f"{where}: error response {response}")
                raise ModbusExceptionError(
                    f"{where}: exception response, code {code} ({_exception_name(code)})", code
                )
            registers = list(response.registers)
        if len(registers) != count:
            raise MeterError(f"{where}: answer holds {len(registers)} registers, expected {count}")
        return registers

    def close(self) -> None:
        """Close the connection (the next request reopens it)."""
        with self._lock:
            self._client.close()

    def __repr__(self) -> str:
        return f"ModbusTcpBus({self.host!r}, {self.port}, timeout_s={self.timeout_s}, retries={self.retries})"


class BusPool:
    """The buses of one gateway: one :class:`ModbusTcpBus` per ``(host, port)``, shared by its meters.

    The first :meth:`acquire` of an endpoint sets its timeout and retries;
    later ones share that bus as it is. A bus is closed when the last meter
    that acquired it releases it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buses: dict[tuple[str, int], ModbusTcpBus] = {}
        self._users: dict[tuple[str, int], int] = {}

    def acquire(self, host: str, port: int, timeout_s: float = 1.0, retries: int = 1) -> ModbusTcpBus:
        """The bus for ``host:port`` (created on first use); pair with :meth:`release`."""
        key = (host, port)
        with self._lock:
            bus = self._buses.get(key)
            if bus is None:
                bus = self._buses[key] = ModbusTcpBus(host, port, timeout_s=timeout_s, retries=retries)
                self._users[key] = 0
            self._users[key] += 1
            return bus

    def release(self, bus: ModbusTcpBus) -> None:
        """Give back one share of ``bus``; closes it when nobody uses it any more."""
        key = (bus.host, bus.port)
        with self._lock:
            if self._buses.get(key) is not bus:
                raise ValueError(f"{bus!r} does not belong to this pool")
            self._users[key] -= 1
            if self._users[key] > 0:
                return
            del self._buses[key], self._users[key]
        bus.close()

    def close(self) -> None:
        """Close every bus (meters still holding one reconnect on their next read)."""
        with self._lock:
            buses = list(self._buses.values())
            self._buses.clear()
            self._users.clear()
        for bus in buses:
            bus.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._buses)


def plan_requests(
    registers: Iterable[Request], max_gap: int = MAX_GAP, max_count: int = MAX_REGISTERS_PER_REQUEST
) -> list[Request]:
    """Group register reads into as few requests as possible.

    Registers of the same function are merged into one request when at most
    ``max_gap`` unwanted registers separate them and the request stays within
    ``max_count`` registers. Overlapping and duplicate registers are merged.

    Args:
        registers: ``(function, address, count)`` of each wanted register, in any order.
        max_gap: most unwanted registers read to save a request. [>= 0]
        max_count: most registers per request. [>= 1]

    Returns:
        ``(function, address, count)`` requests sorted by function then address;
        every wanted register lies wholly inside one of them.

    Raises:
        ValueError: a register longer than ``max_count`` or with a count < 1.
    """
    planned: list[Request] = []
    start = end = function = -1
    for fn, address, count in sorted(registers):
        if count < 1 or count > max_count:
            raise ValueError(f"register at {address} spans {count} registers; a request holds 1..{max_count}")
        if fn == function and address - end <= max_gap and max(end, address + count) - start <= max_count:
            end = max(end, address + count)
            continue
        if function != -1:
            planned.append((function, start, end - start))
        function, start, end = fn, address, address + count
    if function != -1:
        planned.append((function, start, end - start))
    return planned


class ModbusMeter:
    """A meter read over Modbus through its model's register map (implements ``gateway.meters.Meter``).

    Reads ``import_energy`` (required in the model) and, when the model has
    them, ``export_energy`` and ``power``, with as few requests as
    :func:`plan_requests` allows.

    If a request that bridges unmapped registers is refused with
    ILLEGAL_ADDRESS (some meters refuse reads of holes in their map), the
    meter switches to reading only mapped registers and retries at once.

    Args:
        meter_id: the meter's id in the gateway configuration.
        bus: the bus the meter is on.
        model: its register map.
        unit: its Modbus unit id. [0..255]
        pool: the pool ``bus`` was acquired from; :meth:`close` releases it
            there. Without a pool the caller owns the bus and closes it.

    Raises:
        RegisterMapError: the model has no ``import_energy`` register.
    """

    def __init__(
        self, meter_id: str, bus: ModbusTcpBus, model: MeterModel, unit: int = 1, pool: BusPool | None = None
    ) -> None:
        if "import_energy" not in model.registers:
            raise RegisterMapError(f"model {model.name!r}: no import_energy register; a meter needs one to be read")
        if not _is_int(unit) or not 0 <= unit <= 255:
            raise ValueError(f"unit {unit!r} must be an integer in 0..255")
        self.meter_id = meter_id
        self.bus = bus
        self.model = model
        self.unit = unit
        self._pool = pool
        self._registers: list[Register] = [model.registers[q] for q in READ_QUANTITIES if q in model.registers]
        self._plan = self._make_plan(MAX_GAP)

    def _make_plan(self, max_gap: int) -> list[Request]:
        return plan_requests(((r.function, r.address, r.count) for r in self._registers), max_gap=max_gap)

    def read(self, t: float) -> Reading:
        """Poll the meter; ``t`` [s since epoch] is stamped on the reading.

        Energies are rounded to whole Wh, power is in W.

        Raises:
            MeterError: the meter did not answer, answered with an exception,
                or returned a non-finite or negative energy.
        """
        try:
            try:
                words = self._read_words()
            except ModbusExceptionError as exc:
                bridged = self._make_plan(0)
                if exc.code != ExcCodes.ILLEGAL_ADDRESS or bridged == self._plan:
                    raise
                self._plan = bridged
                words = self._read_words()
        except ModbusExceptionError as exc:
            raise ModbusExceptionError(f"meter {self.meter_id}: {exc}", exc.code) from exc
        except MeterError as exc:
            raise MeterError(f"meter {self.meter_id}: {exc}") from exc
        values: dict[str, float] = {}
        for register in self._registers:
            value = decode(register, words[register.function, register.address])
            if not math.isfinite(value):
                raise MeterError(f"meter {self.meter_id}: {register.quantity} is {value}, not a number")
            values[register.quantity] = value
        return Reading(
            t=t,
            import_wh=self._energy_wh(values, "import_energy"),
            export_wh=self._energy_wh(values, "export_energy") if "export_energy" in values else None,
            power_w=values.get("power"),
        )

    def _read_words(self) -> dict[tuple[int, int], list[int]]:
        """The words of each wanted register, by ``(function, address)``."""
        words: dict[tuple[int, int], list[int]] = {}
        for function, start, count in self._plan:
            block = self.bus.read_registers(function, start, count, self.unit)
            for register in self._registers:
                offset = register.address - start
                if register.function == function and 0 <= offset and offset + register.count <= count:
                    words[function, register.address] = block[offset : offset + register.count]
        return words

    def _energy_wh(self, values: Mapping[str, float], quantity: str) -> int:
        value = values[quantity]
        if value < 0:
            raise MeterError(f"meter {self.meter_id}: {quantity} is negative ({value} Wh)")
        return round(value)

    def close(self) -> None:
        """Release this meter's share of its bus (only when it came from a pool)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.release(self.bus)

    def __repr__(self) -> str:
        return f"ModbusMeter({self.meter_id!r}, {self.bus.endpoint}, model={self.model.name!r}, unit={self.unit})"


_OPTION_KEYS = {"driver", "id", "model", "host", "port", "unit", "timeout_s", "retries", "_pool"}


def open_modbus_meter(options: Mapping[str, Any], config_path: str) -> ModbusMeter:
    """Driver factory: build a :class:`ModbusMeter` from one ``[[meters]]`` table.

    ``options["_pool"]`` (a :class:`BusPool`, set by the gateway, not by the
    user) makes meters on one endpoint share one bus; without it the meter
    gets a bus of its own.

    Raises:
        ConfigError: a missing, unknown or invalid key, named
            ``meters[<id>].<key>``; an unknown model lists the available ones.
        RegisterMapError: the model's shipped map is invalid.
    """
    meter_id = options.get("id")
    if not isinstance(meter_id, str) or not meter_id:
        raise ConfigError(config_path, "meters[?].id", f"{meter_id!r}: every meter needs a non-empty string id")
    prefix = f"meters[{meter_id}]"
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        known = sorted(_OPTION_KEYS - {"_pool"})
        raise ConfigError(config_path, f"{prefix}.{unknown[0]}", f"unknown key; the modbus driver takes {known}")
    model_name = options.get("model")
    models = available_models()
    if model_name not in models:
        raise ConfigError(
            config_path, f"{prefix}.model", f"unknown meter model {model_name!r}; available models: {models}"
        )
    host = options.get("host")
    if not isinstance(host, str) or not host:
        raise ConfigError(config_path, f"{prefix}.host", f"{host!r}: give the Modbus TCP host name or address")
    port = options.get("port", 502)
    if not _is_int(port) or not 1 <= port <= 65535:
        raise ConfigError(config_path, f"{prefix}.port", f"{port!r} must be an integer in 1..65535")
    unit = options.get("unit", 1)
    if not _is_int(unit) or not 0 <= unit <= 255:
        raise ConfigError(config_path, f"{prefix}.unit", f"{unit!r} must be a Modbus unit id in 0..255")
    timeout_s = options.get("timeout_s", 1.0)
    if not _is_number(timeout_s) or not 0 < timeout_s <= 60:
        raise ConfigError(config_path, f"{prefix}.timeout_s", f"{timeout_s!r} must be a number of seconds in (0, 60]")
    retries = options.get("retries", 1)
    if not _is_int(retries) or not 0 <= retries <= 10:
        raise ConfigError(config_path, f"{prefix}.retries", f"{retries!r} must be an integer in 0..10")
    pool = options.get("_pool")
    if pool is None:
        pool = BusPool()
    elif not isinstance(pool, BusPool):
        raise TypeError(f"options['_pool'] must be a BusPool, not {type(pool).__name__}")
    model = load_model(model_name)
    bus = pool.acquire(host, port, timeout_s=timeout_s, retries=retries)
    try:
        return ModbusMeter(meter_id, bus, model, unit, pool=pool)
    except (RegisterMapError, ValueError):
        pool.release(bus)
        raise


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


register_driver("modbus", open_modbus_meter)
