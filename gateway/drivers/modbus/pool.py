"""The gateway's buses (:class:`BusPool`): one bus per endpoint, shared by the meters on it."""

from __future__ import annotations

import threading
from typing import Any

from gateway.drivers.modbus.bus import BusKey, ModbusBus
from gateway.drivers.modbus.devices import canonical_device
from gateway.drivers.modbus.errors import BusConflictError
from gateway.drivers.modbus.rtu import ModbusRtuBus
from gateway.drivers.modbus.tcp import ModbusTcpBus


def _physical(key: BusKey) -> tuple[str, str, int] | tuple[str, str]:
    """Where a bus really goes: ``("net", host, port)`` for TCP and RTU over TCP, ``("serial", path)`` otherwise."""
    if key[0] == "tcp":
        return ("net", str(key[1]).lower(), int(key[2]))  # type: ignore[misc]
    device = str(key[1])
    scheme, _, rest = device.partition("://")
    if rest and scheme in ("socket", "rfc2217"):
        host, _, port = rest.split("?", 1)[0].rpartition(":")
        if host and port.isdigit():
            return ("net", host.strip("[]").lower(), int(port))
    return ("serial", device)


def _describe_bus(bus: ModbusBus) -> str:
    if isinstance(bus, ModbusRtuBus):
        return f"Modbus RTU on {bus.device} at {bus.settings}"
    return f"Modbus TCP to {bus.endpoint}"


class BusPool:
    """The buses of one gateway: one :class:`ModbusBus` per endpoint, shared by its meters.

    Buses are keyed by endpoint: ``("tcp", host, port)`` or ``("rtu", device)``.
    The first acquire of an endpoint makes its bus and fixes its settings:
    later acquires share that bus as it is, with its timeout and retries; a
    later RTU acquire with another baud rate, parity or stop bits, and any
    acquire of one endpoint through two protocols (Modbus TCP to
    ``host:port`` and RTU over ``socket://host:port``), raise
    :class:`BusConflictError`. A bus is closed when the last meter that
    acquired it releases it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buses: dict[BusKey, ModbusBus] = {}
        self._users: dict[BusKey, int] = {}
        self._owners: dict[BusKey, str] = {}
        self._physical: dict[tuple[str, str, int] | tuple[str, str], BusKey] = {}

    def acquire(
        self, host: str, port: int, timeout_s: float = 1.0, retries: int = 1, *, user: str = ""
    ) -> ModbusTcpBus:
        """The Modbus TCP bus for ``host:port`` (created on first use); pair with :meth:`release`.

        Args:
            user: who asks (a meter id), named in conflict messages.

        Raises:
            BusConflictError: the endpoint is used as RTU over TCP.
            ValueError: invalid settings.
        """
        bus = self._acquire(("tcp", host, port), user, lambda: ModbusTcpBus(host, port, timeout_s, retries), None)
        assert isinstance(bus, ModbusTcpBus)
        return bus

    def acquire_rtu(
        self,
        device: str,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        timeout_s: float = 1.0,
        retries: int = 1,
        *,
        user: str = "",
    ) -> ModbusRtuBus:
        """The Modbus RTU bus of serial port ``device`` (created on first use); pair with :meth:`release`.

        Args:
            user: who asks (a meter id), named in conflict messages.

        Raises:
            BusConflictError: the port is already open with other serial
                settings, or the endpoint is used as Modbus TCP.
            ValueError: invalid settings.
        """
        if not isinstance(device, str) or not device:
            raise ValueError(f"device {device!r} must be a serial port path or URL")
        wanted = {"baudrate": baudrate, "parity": parity, "stopbits": stopbits}

        def check(bus: ModbusBus, owner: str) -> None:
            assert isinstance(bus, ModbusRtuBus)
            have = {"baudrate": bus.baudrate, "parity": bus.parity, "stopbits": bus.stopbits}
            differing = [name for name in wanted if wanted[name] != have[name]]
            if differing:
                asked = f"{baudrate} 8{parity}{stopbits}"
                raise BusConflictError(
                    f"serial port {device} is already open at {bus.settings} for {owner or 'another meter'}; "
                    f"{user or 'this meter'} asks for {asked}: the meters of one RS485 line must all use the "
                    f"line's baud rate, parity and stop bits",
                    differing[0],
                )

        def make() -> ModbusBus:
            return ModbusRtuBus(device, baudrate, parity, stopbits, timeout_s, retries)

        bus = self._acquire(("rtu", canonical_device(device)), user, make, check)
        assert isinstance(bus, ModbusRtuBus)
        return bus

    def _acquire(self, key: BusKey, user: str, make: Any, check: Any) -> ModbusBus:
        physical = _physical(key)
        with self._lock:
            other = self._physical.get(physical)
            if other is not None and other != key:
                first = self._buses[other]
                asked = "Modbus RTU" if key[0] == "rtu" else "Modbus TCP"
                raise BusConflictError(
                    f"{first.endpoint} is already used as {_describe_bus(first)} by "
                    f"{self._owners[other] or 'another meter'}; {user or 'this meter'} asks for it as {asked} "
                    f"({key[1]}): one endpoint speaks one protocol",
                    "device" if key[0] == "rtu" else "host",
                )
            bus = self._buses.get(key)
            if bus is None:
                bus = self._buses[key] = make()
                self._users[key] = 0
                self._owners[key] = user
                self._physical[physical] = key
            elif check is not None:
                check(bus, self._owners[key])
            self._users[key] += 1
            return bus

    def release(self, bus: ModbusBus) -> None:
        """Give back one share of ``bus``; closes it when nobody uses it any more.

        Raises:
            ValueError: ``bus`` is not one of this pool's.
        """
        key = bus.key
        with self._lock:
            if self._buses.get(key) is not bus:
                raise ValueError(f"{bus!r} does not belong to this pool")
            self._users[key] -= 1
            if self._users[key] > 0:
                return
            del self._buses[key], self._users[key], self._owners[key], self._physical[_physical(key)]
        bus.close()

    def close(self) -> None:
        """Close every bus (meters still holding one reopen it on their next read)."""
        with self._lock:
            buses = list(self._buses.values())
            self._buses.clear()
            self._users.clear()
            self._owners.clear()
            self._physical.clear()
        for bus in buses:
            bus.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._buses)

