"""The abstract Modbus bus (:class:`ModbusBus`), its identity (:data:`BusKey`), the limits and settings shared by
the buses, and the argument checks the modules of this package share."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

#: Most registers one read request may ask for (Modbus application protocol, functions 3 and 4).
MAX_REGISTERS_PER_REQUEST = 125
#: Serial speeds a Modbus RTU line may use. [bit/s]
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
#: Parity settings: none, even, odd.
PARITIES = ("N", "E", "O")
#: Unit ids a Modbus RTU device may have (0 is the broadcast address, 248..255 are reserved).
RTU_UNITS = range(1, 248)
#: Unit ids a Modbus TCP request may carry.
TCP_UNITS = range(0, 256)

BusKey = tuple[str, str] | tuple[str, str, int]
"""A bus's identity in a :class:`BusPool`: ``("tcp", host, port)`` or ``("rtu", device)``."""


class ModbusBus(ABC):
    """One Modbus bus, one request at a time, shared by the meters on it.

    Attributes:
        timeout_s: response timeout of each attempt. [s]
        retries: extra attempts after a failed one. [>= 0]
        units: the unit ids a request on this bus may address.
    """

    timeout_s: float
    retries: int
    units: range = TCP_UNITS

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """Where the bus goes (``host:port``, a serial device), as used in error messages."""

    @property
    @abstractmethod
    def key(self) -> BusKey:
        """The bus's identity in a :class:`BusPool`."""

    @abstractmethod
    def read_registers(self, function: int, address: int, count: int, unit: int) -> list[int]:
        """Read ``count`` 16-bit registers from ``address`` of device ``unit``.

        Args:
            function: 3 (read holding registers) or 4 (read input registers).
            address: first register, 0-based on-the-wire address. [0..65535]
            count: number of registers. [1..125]
            unit: Modbus unit (device) id. [:attr:`units`]

        Returns:
            the register words, each 0..65535.

        Raises:
            ModbusExceptionError: the device answered with an exception response.
            MeterError: no answer, a malformed answer, or the bus cannot be
                opened (names the endpoint, the unit and the request).
            ValueError: arguments out of range.
        """

    @abstractmethod
    def close(self) -> None:
        """Close the connection or port (the next request reopens it)."""

    def _describe(self, function: int, address: int, count: int, unit: int) -> str:
        """Check a request's arguments; returns its description for messages.

        Raises:
            ValueError: an argument out of range.
        """
        if function not in (3, 4):
            raise ValueError(f"function {function!r} must be 3 or 4")
        if not _is_int(count) or not 1 <= count <= MAX_REGISTERS_PER_REQUEST:
            raise ValueError(f"count {count!r} must be an integer in 1..{MAX_REGISTERS_PER_REQUEST}")
        if not _is_int(address) or not 0 <= address or address + count > 65536:
            raise ValueError(f"addresses {address}..{address + count - 1} are outside 0..65535")
        if not _is_int(unit) or unit not in self.units:
            raise ValueError(f"unit {unit!r} must be an integer in {_span(self.units)}")
        return f"unit {unit}: function {function} address {address} (0x{address:04X}) count {count}"


def _check_timing(timeout_s: object, retries: object) -> None:
    if not _is_number(timeout_s) or not 0 < timeout_s <= 60:  # type: ignore[operator]
        raise ValueError(f"timeout_s {timeout_s!r} must be a number of seconds in (0, 60]")
    if not _is_int(retries) or not 0 <= retries <= 10:  # type: ignore[operator]
        raise ValueError(f"retries {retries!r} must be an integer in 0..10")


def _span(units: range) -> str:
    return f"{units.start}..{units.stop - 1}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
