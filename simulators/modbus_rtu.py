"""Simulated Modbus RTU meters: real Modbus RTU frames on a real (pseudo-)serial line.

:class:`ModbusRtuSimulator` serves the same :class:`~simulators.modbus_tcp.SimulatedMeter`
devices as the TCP simulator, through pymodbus's RTU serial server, on one
serial port: all the meters of one RS485 line behind one port. Use it with
:class:`simulators.serial_line.SerialLine`: the simulator opens ``end_a``,
the gateway ``end_b``, and the line paces the bytes at the baud rate.

Like a real RS485 line, and unlike a Modbus TCP gateway (which answers
GATEWAY_NO_RESPONSE, 0x0B), a request to a unit id that no meter has gets
no answer at all; neither does a broadcast (unit 0). The master can only
wait for its timeout.

For tests, the simulator counts the requests it decodes per unit id
(:attr:`ModbusRtuSimulator.requests`, including unknown units), can make
meters fall silent (:attr:`ModbusRtuSimulator.silent_units`) and can damage
its next answers (:meth:`ModbusRtuSimulator.corrupt_next`).
"""

from __future__ import annotations

import os
import stat
import threading
from collections import Counter

from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import SimDevice

from simulators.modbus_server import ServerThread, check_units, meter_devices
from simulators.modbus_tcp import SimulatedMeter, _absent_units_device

#: Baud rates the simulator accepts (those a pseudo-terminal and common meters have). [bit/s]
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


class ModbusRtuSimulator(ServerThread):
    """A Modbus RTU server on a serial port, in a background thread, serving simulated meters by unit id.

    Start and stop it with :meth:`start` and :meth:`stop`, or use it as a
    context manager. The character format is 8 data bits with ``parity``
    and ``stopbits`` (Modbus RTU always has 8 data bits).

    Args:
        meters: the meters on the line, each with a distinct unit id (1..247).
        device: the serial port to open (``SerialLine.end_a``, ``/dev/ttyUSB0``).
        baudrate: line speed. [bit/s, one of :data:`BAUDRATES`]
        parity: ``N``, ``E`` or ``O``.
        stopbits: 1 or 2.

    Attributes:
        requests: requests decoded per unit id, answered or not (unknown
            units, silent units and broadcasts included).
        answers: answers sent per unit id (corrupted ones included).
        silent_units: unit ids that receive requests but never answer (a
            meter that lost power or its RS485 connection); change it at any
            time to make a meter fall silent or answer again.

    Raises:
        ValueError: no meters, duplicate unit ids, or an unsupported setting.
    """

    kind = "Modbus RTU"

    def __init__(
        self, meters: list[SimulatedMeter], device: str, baudrate: int = 9600, parity: str = "N", stopbits: int = 1
    ) -> None:
        check_units([meter.unit for meter in meters])
        if not isinstance(device, str) or not device:
            raise ValueError(f"device {device!r} must be a serial port path")
        if baudrate not in BAUDRATES:
            raise ValueError(f"baudrate {baudrate!r} must be one of {list(BAUDRATES)}")
        if parity not in ("N", "E", "O"):
            raise ValueError(f"parity {parity!r} must be 'N', 'E' or 'O'")
        if stopbits not in (1, 2):
            raise ValueError(f"stopbits {stopbits!r} must be 1 or 2")
        super().__init__()
        self.meters = list(meters)
        self.device = device
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.requests: Counter[int] = Counter()
        self.answers: Counter[int] = Counter()
        self.silent_units: set[int] = set()
        self._units = frozenset(meter.unit for meter in self.meters)
        self._corrupt = 0
        self._how = "crc"
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """The serial port and its settings, e.g. ``/dev/pts/4 9600 8N1``."""
        return f"{self.device} {self.baudrate} 8{self.parity}{self.stopbits}"

    def corrupt_next(self, count: int = 1, how: str = "crc") -> None:
        """Damage the next ``count`` answers, as a disturbed line would.

        Args:
            count: answers to damage. [>= 0]
            how: ``crc`` inverts the last byte (a frame with a wrong CRC);
                ``noise`` inverts every other bit of every byte (no frame at all).

        Raises:
            ValueError: ``count`` < 0 or an unknown ``how``.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count {count!r} must be an integer >= 0")
        if how not in ("crc", "noise"):
            raise ValueError(f"how {how!r} must be 'crc' or 'noise'")
        with self._lock:
            self._corrupt = count
            self._how = how

    def _devices(self) -> list[SimDevice]:
        # Device 0 catches unknown unit ids (pymodbus needs it); its answers are dropped in _trace_packet.
        return meter_devices(self.meters) + [_absent_units_device()]

    def _make_server(self, devices: list[SimDevice]) -> ModbusSerialServer:
        return ModbusSerialServer(
            devices,
            framer=FramerType.RTU,
            port=self.device,
            baudrate=self.baudrate,
            bytesize=8,
            # A pseudo-terminal carries no parity bit and Linux refuses (EINVAL) to be asked for one again, as
            # pymodbus does right after opening: open it without; SerialLine applies the line's format.
            parity="N" if _is_pseudo_terminal(self.device) else self.parity,
            stopbits=self.stopbits,
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        """pymodbus hook on every decoded request and every answer: count requests per unit."""
        if not sending:
            self.requests[pdu.dev_id] += 1
        return pdu

    def _trace_packet(self, sending: bool, packet: bytes) -> bytes:
        """pymodbus hook on the bytes sent and received: drop or corrupt answers; b"" sends nothing."""
        if not sending or not packet:
            return packet
        unit = packet[0]
        if unit not in self._units or unit in self.silent_units:
            return b""
        self.answers[unit] += 1
        with self._lock:
            if self._corrupt <= 0:
                return packet
            self._corrupt -= 1
            how = self._how
        if how == "noise":
            return bytes(byte ^ 0x55 for byte in packet)
        return packet[:-1] + bytes([packet[-1] ^ 0xFF])

    def __repr__(self) -> str:
        units = sorted(self._units)
        return f"ModbusRtuSimulator({self.where}, units={units})"


def _is_pseudo_terminal(device: str) -> bool:
    """Whether ``device`` is the slave end of a Linux pseudo-terminal (``/dev/pts/N``: majors 136..143)."""
    try:
        info = os.stat(device)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and 136 <= os.major(info.st_rdev) <= 143
