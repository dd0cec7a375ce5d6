"""The ``modbus`` driver's typed configuration and factory: validate a ``[[meters]]`` table into a
:class:`ModbusMeterConfig` (keys in the package documentation, :mod:`gateway.drivers.modbus`), open its
:class:`ModbusMeter` on a bus of the gateway's :class:`BusPool`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from gateway.drivers.base import MeterConfig
from gateway.drivers.modbus.bus import (
    BAUDRATES,
    PARITIES,
    RTU_UNITS,
    TCP_UNITS,
    ModbusBus,
    _is_int,
    _is_number,
    _span,
)
from gateway.drivers.modbus.errors import BusConflictError
from gateway.drivers.modbus.meter import ModbusMeter
from gateway.drivers.modbus.pool import BusPool
from quartier.errors import ConfigError, RegisterMapError
from quartier.registermap import available_models, load_model

_TCP_KEYS = {"host", "port"}
_RTU_KEYS = {"device", "baudrate", "parity", "stopbits"}
_OPTION_KEYS = {"driver", "id", "model", "unit", "timeout_s", "retries"} | _TCP_KEYS | _RTU_KEYS


@dataclass(frozen=True, kw_only=True)
class ModbusMeterConfig(MeterConfig):
    """A ``driver = "modbus"`` meter's validated options (see the module documentation for each key).

    Exactly one of ``host`` (Modbus TCP) and ``device`` (Modbus RTU) is set.

    Attributes:
        model: the register map's name (``quartier/meters/<model>.toml``).
        unit: the Modbus unit id.
        timeout_s: how long one attempt waits for the answer. [s]
        retries: attempts after the first, per request.
        host, port: the Modbus TCP endpoint.
        device, baudrate, parity, stopbits: the RS485 line (8 data bits). [bit/s]
    """

    driver: ClassVar[str] = "modbus"

    model: str
    unit: int = 1
    timeout_s: float = 1.0
    retries: int = 1
    host: str | None = None
    port: int = 502
    device: str | None = None
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1


def parse_modbus_options(options: Mapping[str, Any], config_path: str) -> ModbusMeterConfig:
    """Validate one ``[[meters]]`` table of the ``modbus`` driver.

    The table names either ``host`` (and ``port``) for Modbus TCP or
    ``device`` (and ``baudrate``, ``parity``, ``stopbits``) for Modbus RTU;
    see the module documentation for every key.

    Raises:
        ConfigError: a missing, unknown or invalid key, named
            ``meters[<id>].<key>``; an unknown model lists the available
            ones; both or neither of ``host`` and ``device``; a key of the
            other protocol.
    """
    meter_id = options.get("id")
    if not isinstance(meter_id, str) or not meter_id:
        raise ConfigError(config_path, "meters[?].id", f"{meter_id!r}: every meter needs a non-empty string id")
    prefix = f"meters[{meter_id}]"

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(config_path, f"{prefix}.{key}", problem)

    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key; the modbus driver takes {sorted(_OPTION_KEYS)}")
    model_name = options.get("model")
    models = available_models()
    if model_name not in models:
        raise fail("model", f"unknown meter model {model_name!r}; available models: {models}")
    rtu = "device" in options
    if rtu and "host" in options:
        raise fail("device", "give either host (Modbus TCP) or device (Modbus RTU serial port), not both")
    if not rtu and "host" not in options:
        raise fail("host", "missing: give host (and port) for Modbus TCP, or device (and baudrate, parity, stopbits) "
                           "for Modbus RTU")
    foreign = sorted(set(options) & (_TCP_KEYS if rtu else _RTU_KEYS))
    if foreign:
        raise fail(foreign[0], f"is a Modbus {'TCP' if rtu else 'RTU'} setting, but this meter is on "
                               f"{'a serial port (device)' if rtu else 'Modbus TCP (host)'}")
    units = RTU_UNITS if rtu else TCP_UNITS
    unit = options.get("unit", 1)
    if not _is_int(unit) or unit not in units:
        broadcast = "; 0 is the broadcast address, which no RS485 meter answers" if rtu and unit == 0 else ""
        raise fail("unit", f"{unit!r} must be a Modbus unit id in {_span(units)}{broadcast}")
    timeout_s = options.get("timeout_s", 1.0)
    if not _is_number(timeout_s) or not 0 < timeout_s <= 60:
        raise fail("timeout_s", f"{timeout_s!r} must be a number of seconds in (0, 60]")
    retries = options.get("retries", 1)
    if not _is_int(retries) or not 0 <= retries <= 10:
        raise fail("retries", f"{retries!r} must be an integer in 0..10")
    common: dict[str, Any] = {"id": meter_id, "config_path": config_path, "model": model_name, "unit": unit,
                              "timeout_s": float(timeout_s), "retries": retries}
    if rtu:
        device = options["device"]
        if not isinstance(device, str) or not device.strip():
            raise fail("device", f"{device!r}: give the serial port, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
        baudrate = options.get("baudrate", 9600)
        if not _is_int(baudrate) or baudrate not in BAUDRATES:
            raise fail("baudrate", f"{baudrate!r} must be one of {list(BAUDRATES)} (bit/s)")
        parity = options.get("parity", "N")
        if parity not in PARITIES:
            raise fail("parity", f"{parity!r} must be 'N' (none), 'E' (even) or 'O' (odd)")
        stopbits = options.get("stopbits", 1)
        if not _is_int(stopbits) or stopbits not in (1, 2):
            raise fail("stopbits", f"{stopbits!r} must be 1 or 2")
        return ModbusMeterConfig(**common, device=device, baudrate=baudrate, parity=parity, stopbits=stopbits)
    host = options["host"]
    if not isinstance(host, str) or not host:
        raise fail("host", f"{host!r}: give the Modbus TCP host name or address")
    port = options.get("port", 502)
    if not _is_int(port) or not 1 <= port <= 65535:
        raise fail("port", f"{port!r} must be an integer in 1..65535")
    return ModbusMeterConfig(**common, host=host, port=port)


def open_modbus_meter(config: ModbusMeterConfig, pool: BusPool | None = None) -> ModbusMeter:
    """Build the :class:`ModbusMeter` of ``config`` on its bus from ``pool``.

    ``pool`` (the gateway's) makes meters on one endpoint share one bus; without it the meter gets a bus of
    its own.

    Raises:
        ConfigError: a serial port already used with other settings, or an endpoint used through two
            protocols (names both meters' settings), named ``meters[<id>].<key>``.
        RegisterMapError: the model's shipped map is invalid.
    """
    pool = pool if pool is not None else BusPool()
    user = f"meter {config.id}"
    model = load_model(config.model)
    bus: ModbusBus
    try:
        if config.device is not None:
            bus = pool.acquire_rtu(config.device, config.baudrate, config.parity, config.stopbits, config.timeout_s,
                                   config.retries, user=user)
        else:
            assert config.host is not None  # parse_modbus_options sets exactly one of host and device
            bus = pool.acquire(config.host, config.port, timeout_s=config.timeout_s, retries=config.retries, user=user)
    except BusConflictError as exc:
        raise ConfigError(config.config_path, f"meters[{config.id}].{exc.setting}", str(exc)) from exc
    try:
        return ModbusMeter(config.id, bus, model, config.unit, pool=pool)
    except (RegisterMapError, ValueError):
        pool.release(bus)
        raise

