"""Modbus TCP: :class:`ModbusTcpBus`, one TCP connection to a meter or to a TCP-to-RS485 gateway."""

from __future__ import annotations

import threading

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.drivers.modbus.bus import TCP_UNITS, BusKey, ModbusBus, _check_timing, _is_int
from gateway.drivers.modbus.errors import ModbusExceptionError, NoAnswerError, _exception_name
from quartier.errors import MeterError

#: Exception codes a Modbus TCP gateway sends when the RS485 device behind it is unreachable
#: (0x0A GATEWAY_PATH_UNAVAILABLE, 0x0B GATEWAY_TARGET_NO_RESPONSE): no answer, not an answer.
_GATEWAY_CODES = frozenset({0x0A, 0x0B})


class ModbusTcpBus(ModbusBus):
    """One Modbus TCP connection (to a meter or to a TCP-to-RS485 gateway), one request at a time.

    Connects on first use and again on the next request after any connection
    failure or timeout.

    Args:
        host: name or address of the Modbus TCP server.
        port: its TCP port. [1..65535]
        timeout_s: connect timeout and response timeout of each attempt. [s, > 0]
        retries: extra attempts after a response timeout. [>= 0]
    """

    units = TCP_UNITS

    def __init__(self, host: str, port: int, timeout_s: float = 1.0, retries: int = 1) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError(f"host {host!r} must be a non-empty string")
        if not _is_int(port) or not 1 <= port <= 65535:
            raise ValueError(f"port {port!r} must be an integer in 1..65535")
        _check_timing(timeout_s, retries)
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

    @property
    def key(self) -> BusKey:
        """``("tcp", host, port)``."""
        return ("tcp", self.host, self.port)

    def read_registers(self, function: int, address: int, count: int, unit: int) -> list[int]:
        """See :meth:`ModbusBus.read_registers`; the connection is closed after a failure and reopened on the next
        request."""
        where = f"Modbus {self.endpoint} {self._describe(function, address, count, unit)}"
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
                if code in _GATEWAY_CODES:
                    # A TCP-to-RS485 gateway speaking for a device that did not answer it.
                    raise NoAnswerError(
                        f"{where}: the TCP gateway reports no answer from the device "
                        f"(exception {code}, {_exception_name(code)}); check the unit id and the RS485 wiring"
                    )
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

