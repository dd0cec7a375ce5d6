"""The Modbus meter driver: Modbus TCP and Modbus RTU (RS485).

A bus (:class:`ModbusBus`) carries one request at a time: :class:`ModbusTcpBus`
is one TCP connection (to a meter or to a TCP-to-RS485 gateway),
:class:`ModbusRtuBus` one serial port driving an RS485 line. They are the only
classes that talk to pymodbus (one place to change when its API moves).
:class:`ModbusMeter` reads one meter on a bus through its register map
(:mod:`quartier.registermap`). A :class:`BusPool`, owned by the gateway, hands
out one bus per endpoint, so that the meters behind one TCP gateway or on one
RS485 line share it and never talk over each other.

A ``driver = "modbus"`` meter's ``[[meters]]`` table holds ``id``, ``model``,
``unit`` (default 1), ``timeout_s`` (default 1.0), ``retries`` (default 1) and
exactly one of:

- ``host`` and ``port`` (default 502): Modbus TCP;
- ``device`` (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``, or a pyserial URL
  such as ``socket://host:port`` for RTU over a transparent TCP gateway),
  ``baudrate`` (default 9600), ``parity`` (``N``, ``E`` or ``O``; default
  ``N``) and ``stopbits`` (1 or 2; default 1): Modbus RTU, always 8 data bits.
  RTU unit ids are 1..247 (0 is the broadcast address, which never answers).

One job per module, each importing only those before it: :mod:`.errors`,
:mod:`.bus` (the abstract bus, shared limits), :mod:`.devices` (serial device
names), :mod:`.tcp`, :mod:`.rtu` (with the RTU timing rules), :mod:`.pool`,
:mod:`.plan` (request planning), :mod:`.meter`, :mod:`.config` (the typed
options and the factory).
"""

from gateway.drivers.modbus.bus import (
    BAUDRATES,
    MAX_REGISTERS_PER_REQUEST,
    PARITIES,
    RTU_UNITS,
    TCP_UNITS,
    BusKey,
    ModbusBus,
)
from gateway.drivers.modbus.config import ModbusMeterConfig, open_modbus_meter, parse_modbus_options
from gateway.drivers.modbus.devices import canonical_device, is_pseudo_terminal
from gateway.drivers.modbus.errors import (
    BadFrameError,
    BusConflictError,
    MeterSkippedError,
    ModbusExceptionError,
    NoAnswerError,
)
from gateway.drivers.modbus.meter import BACKOFF_MAX_POLLS, READ_QUANTITIES, ModbusMeter
from gateway.drivers.modbus.plan import MAX_GAP, Request, plan_requests
from gateway.drivers.modbus.pool import BusPool
from gateway.drivers.modbus.rtu import FIXED_GAP_S, ModbusRtuBus, RtuAnswer, RtuStats
from gateway.drivers.modbus.tcp import ModbusTcpBus

__all__ = [
    "BACKOFF_MAX_POLLS",
    "BAUDRATES",
    "FIXED_GAP_S",
    "MAX_GAP",
    "MAX_REGISTERS_PER_REQUEST",
    "PARITIES",
    "READ_QUANTITIES",
    "RTU_UNITS",
    "TCP_UNITS",
    "BadFrameError",
    "BusConflictError",
    "BusKey",
    "BusPool",
    "MeterSkippedError",
    "ModbusBus",
    "ModbusExceptionError",
    "ModbusMeter",
    "ModbusMeterConfig",
    "ModbusRtuBus",
    "ModbusTcpBus",
    "NoAnswerError",
    "Request",
    "RtuAnswer",
    "RtuStats",
    "canonical_device",
    "is_pseudo_terminal",
    "open_modbus_meter",
    "parse_modbus_options",
    "plan_requests",
]
