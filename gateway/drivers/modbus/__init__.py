"""The Modbus meter driver: Modbus TCP and Modbus RTU (RS485).

A bus (:class:`ModbusBus`) carries one request at a time: :class:`ModbusTcpBus`
is one TCP connection (to a meter or to a TCP-to-RS485 gateway),
:class:`ModbusRtuBus` one serial port driving an RS485 line. They are the only
classes that talk to pymodbus (one place to change when its API moves).
:class:`ModbusMeter` reads one meter on a bus through its register map
(:mod:`quartier.registermap`). A :class:`BusPool`, owned by the gateway, hands
out one bus per endpoint, so that the meters behind one TCP gateway or on one
RS485 line share it and never talk over each other.

Importing this module registers the ``modbus`` driver. Its ``[[meters]]``
table holds ``id``, ``model``, ``unit`` (default 1), ``timeout_s`` (default
1.0), ``retries`` (default 1) and exactly one of:

- ``host`` and ``port`` (default 502): Modbus TCP;
- ``device`` (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``, or a pyserial URL
  such as ``socket://host:port`` for RTU over a transparent TCP gateway),
  ``baudrate`` (default 9600), ``parity`` (``N``, ``E`` or ``O``; default
  ``N``) and ``stopbits`` (1 or 2; default 1): Modbus RTU, always 8 data bits.
  RTU unit ids are 1..247 (0 is the broadcast address, which never answers).

Modbus RTU timing, and what pymodbus 3.16 does about it
-------------------------------------------------------

A Modbus RTU master must leave the line quiet for at least 3.5 character
times between the end of one frame and the start of the next (the spec fixes
it at 1.75 ms above 19200 baud). pymodbus 3.16's synchronous serial client
does not: ``ModbusSerialClient.send`` writes a request at once (it only
discards unread input first), and its character time (``1 + data bits + stop
bits``, without the parity bit) only paces its polling for received bytes and,
up to 19200 baud, sets pyserial's inter-byte timeout to 1.5 characters. Its
transaction loop also re-sends after a CRC-bad answer only once a whole
further timeout has passed, can spend nearly two timeouts in one attempt when
bytes trickle in, and counts nothing. So :class:`ModbusRtuBus` uses pymodbus
for the serial port, the request frames, the CRC and the decoding of answers,
but runs each exchange itself:

- **One request at a time per line** (a lock per bus; the pool gives every
  meter of one port the same bus).
- **Inter-frame gap**: before every request, retries included, the bus waits
  until no byte has arrived for 3.5 character times (10 bits per character
  at 8N1, 11 at 8E1, 8O1 and 8N2), or 1.75 ms above 19200 baud, counted from
  the last byte received or from the end of the last attempt. Bytes that
  arrive meanwhile (a late answer, a babbling device) are thrown away and
  restart the wait; a line that never falls quiet within ``timeout_s`` is an
  error, not a hang.
- **Timeout**: after the request has been transmitted, the device has
  ``timeout_s`` to start answering, then the transmission time of the
  expected answer to finish it. A silent unit thus costs ``timeout_s`` (plus
  the request's transmission time and one gap) per attempt, at most
  ``retries + 1`` attempts per request.
- **Framing**: the bus knows the answer it waits for (unit, function, byte
  count), so it looks for exactly that frame anywhere in what it received,
  skipping noise before it (such as the glitch byte of a transceiver turning
  on). A frame with a wrong CRC, an answer from another unit, a broadcast
  (unit 0) "answer" and plain garbage are rejected and counted
  (:attr:`ModbusRtuBus.stats`); the attempt ends as soon as a complete
  CRC-bad frame is in, without waiting out the timeout.
- **Retries re-send on a CRC error** as on a timeout: reading registers
  (functions 3 and 4) has no side effect, and a corrupted answer is most often
  a one-off disturbance of the line. An exception response is an answer and
  is never retried.

A meter that stops answering does not stall the other meters of its line:
after a read without answer, :class:`ModbusMeter` skips the bus for its next
1, 2, 4, ... up to :data:`BACKOFF_MAX_POLLS` polls (see :meth:`ModbusMeter.read`).
"""

from __future__ import annotations

import logging
import math
import os
import stat
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import serial
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU, FramerType
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

from gateway.drivers.base import MeterConfig, Reading
from quartier.errors import ConfigError, MeterError, RegisterMapError
from quartier.registermap import MeterModel, Register, available_models, decode, load_model, rollover_wh

log = logging.getLogger(__name__)

#: Most registers one read request may ask for (Modbus application protocol, functions 3 and 4).
MAX_REGISTERS_PER_REQUEST = 125
#: Largest run of unwanted registers read (and thrown away) to save a request.
MAX_GAP = 8
#: Quantities that have a field of their own in a :class:`Reading`; ``import_energy`` is required.
READ_QUANTITIES = ("import_energy", "export_energy", "power")
#: Most polls a meter that does not answer is skipped for, between two attempts.
BACKOFF_MAX_POLLS = 32
#: Serial speeds a Modbus RTU line may use. [bit/s]
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
#: Parity settings: none, even, odd.
PARITIES = ("N", "E", "O")
#: Inter-frame gap above 19200 baud, fixed by the Modbus serial line spec. [s]
FIXED_GAP_S = 0.00175
#: Unit ids a Modbus RTU device may have (0 is the broadcast address, 248..255 are reserved).
RTU_UNITS = range(1, 248)
#: Unit ids a Modbus TCP request may carry.
TCP_UNITS = range(0, 256)
#: Bytes received in one attempt after which the bus stops looking for its answer (the longest RTU frame is 256).
_MAX_RECEIVED = 1024

#: Exception codes a Modbus TCP gateway sends when the RS485 device behind it is unreachable
#: (0x0A GATEWAY_PATH_UNAVAILABLE, 0x0B GATEWAY_TARGET_NO_RESPONSE): no answer, not an answer.
_GATEWAY_CODES = frozenset({0x0A, 0x0B})

Request = tuple[int, int, int]
"""``(function, address, count)`` of one read request."""
BusKey = tuple[str, str] | tuple[str, str, int]
"""A bus's identity in a :class:`BusPool`: ``("tcp", host, port)`` or ``("rtu", device)``."""


class ModbusExceptionError(MeterError):
    """The device answered with a Modbus exception response (an answer: the device is there).

    Attributes:
        code: the Modbus exception code, e.g. 2 (ILLEGAL_ADDRESS).
    """

    def __init__(self, message: str, code: int) -> None:
        self.code = code
        super().__init__(message)


class NoAnswerError(MeterError):
    """No byte came back within the timeout, on every attempt (device absent, off, wrong unit id or line settings)."""


class BadFrameError(MeterError):
    """Bytes came back but no valid answer: CRC error, wrong length, another unit's frame, garbage."""


class MeterSkippedError(MeterError):
    """The meter was not read: it has not answered lately and waits out its backoff (no bus traffic).

    Attributes:
        polls_left: polls until the next attempt (1: the next poll tries again).
    """

    def __init__(self, message: str, polls_left: int) -> None:
        self.polls_left = polls_left
        super().__init__(message)


class BusConflictError(ValueError):
    """Two meters ask for one endpoint with settings or protocols that cannot share it.

    Attributes:
        setting: the option that differs (``baudrate``, ``parity``,
            ``stopbits``, or ``device``/``host`` when the protocols differ).
    """

    def __init__(self, message: str, setting: str) -> None:
        self.setting = setting
        super().__init__(message)


def _exception_name(code: int) -> str:
    try:
        return ExcCodes(code).name
    except ValueError:
        return "unknown"


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


@dataclass
class RtuStats:
    """Counters of one RS485 line, since the bus was made.

    Attributes:
        requests: request frames sent, retries included.
        answers: valid answers received (exception responses included).
        timeouts: attempts that got no byte back.
        rejected_frames: answers thrown away: CRC-bad frames, and attempts
            that received bytes without a valid frame (garbage, another
            unit's frame, a broadcast "answer").
        stray_bytes: bytes that arrived outside an exchange (late answers,
            noise) and were discarded before a request.
    """

    requests: int = 0
    answers: int = 0
    timeouts: int = 0
    rejected_frames: int = 0
    stray_bytes: int = 0


@dataclass(frozen=True)
class RtuAnswer:
    """What :meth:`ModbusRtuBus.parse_answer` found in the bytes received so far.

    Attributes:
        registers: the registers of a valid normal answer, else None.
        exception_code: the code of a valid exception answer, else None.
        rejected: complete frames of the expected shape whose CRC was wrong (not overlapping).
        pending: the bytes end with the start of a frame of the expected
            shape; more bytes may complete it.
    """

    registers: list[int] | None = None
    exception_code: int | None = None
    rejected: int = 0
    pending: bool = False

    @property
    def valid(self) -> bool:
        """A valid answer (normal or exception) was found."""
        return self.registers is not None or self.exception_code is not None


@dataclass(frozen=True)
class _Failed:
    """An attempt that got no valid answer: what happened, and whether bytes came back (garbled) or none."""

    problem: str
    garbled: bool


class ModbusRtuBus(ModbusBus):
    """One serial port driving an RS485 line of Modbus RTU devices, one request at a time.

    Opens the port on first use, and again on the next request after an I/O
    error (adapter unplugged). See the module documentation for the timing
    rules it keeps (inter-frame gap, timeout, retries, framing).

    Args:
        device: the serial port: a path (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``)
            or a pyserial URL (``socket://host:port``, ``rfc2217://host:port``).
        baudrate: line speed. [bit/s, one of :data:`BAUDRATES`]
        parity: ``N``, ``E`` or ``O`` (8 data bits always).
        stopbits: 1 or 2.
        timeout_s: time a device has to start answering, counted from the end
            of the request's transmission. [s, (0, 60]]
        retries: extra attempts after a timeout or a garbled answer. [0..10]

    Attributes:
        char_time_s: time one character takes on the line. [s]
        gap_s: the inter-frame gap kept before every request. [s]
        stats: counters of requests, answers, timeouts and rejected frames.

    Raises:
        ValueError: a setting out of range.
    """

    units = RTU_UNITS
    _decoder = DecodePDU(False)  # decodes answers (client side)

    def __init__(
        self,
        device: str,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        timeout_s: float = 1.0,
        retries: int = 1,
    ) -> None:
        if not isinstance(device, str) or not device:
            raise ValueError(f"device {device!r} must be a serial port path or URL")
        if baudrate not in BAUDRATES or isinstance(baudrate, bool):
            raise ValueError(f"baudrate {baudrate!r} must be one of {list(BAUDRATES)}")
        if parity not in PARITIES:
            raise ValueError(f"parity {parity!r} must be one of {list(PARITIES)}")
        if stopbits not in (1, 2) or isinstance(stopbits, bool):
            raise ValueError(f"stopbits {stopbits!r} must be 1 or 2")
        _check_timing(timeout_s, retries)
        self.device = device
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self.char_time_s = (1 + 8 + (parity != "N") + stopbits) / baudrate
        self.gap_s = FIXED_GAP_S if baudrate > 19200 else 3.5 * self.char_time_s
        self.stats = RtuStats()
        self._lock = threading.Lock()
        self._quiet_since = 0.0  # time.monotonic() of the last byte seen or the end of the last attempt
        # A pseudo-terminal carries no parity bit, and Linux refuses (EINVAL) to be asked for one again, as pyserial
        # does on every later change of settings: open it without; the far end's settings decide what the line is.
        self._client = ModbusSerialClient(
            device,
            framer=FramerType.RTU,
            baudrate=baudrate,
            bytesize=8,
            parity="N" if is_pseudo_terminal(device) else parity,
            stopbits=stopbits,
            timeout=self.timeout_s,
            retries=0,  # the bus retries itself, keeping the inter-frame gap
        )

    @property
    def endpoint(self) -> str:
        """The serial device, as used in error messages."""
        return self.device

    @property
    def settings(self) -> str:
        """The line settings, e.g. ``9600 8N1``."""
        return f"{self.baudrate} 8{self.parity}{self.stopbits}"

    @property
    def key(self) -> BusKey:
        """``("rtu", device)``, the device with symbolic links resolved (two names of one port are one bus)."""
        return ("rtu", canonical_device(self.device))

    def read_registers(self, function: int, address: int, count: int, unit: int) -> list[int]:
        """See :meth:`ModbusBus.read_registers`.

        Makes at most ``retries + 1`` attempts, each after the inter-frame
        gap; a timeout and a garbled answer are retried, an exception
        response is not.

        Raises:
            ModbusExceptionError: the device answered with an exception response.
            NoAnswerError: no byte came back on any attempt.
            BadFrameError: bytes came back but no valid answer (or the line never fell quiet) on
                at least one attempt, and no attempt got a valid answer.
            MeterError: the serial port cannot be opened or failed (it is reopened on the next request).
            ValueError: arguments out of range (unit 0, the broadcast address, included).
        """
        where = f"Modbus RTU {self.device} {self._describe(function, address, count, unit)}"
        request_class = ReadHoldingRegistersRequest if function == 3 else ReadInputRegistersRequest
        frame = self._client.framer.buildFrame(request_class(address=address, count=count, dev_id=unit))
        with self._lock:
            port = self._open(where)
            problems: list[str] = []
            garbled = False
            for _ in range(self.retries + 1):
                try:
                    answer = self._exchange(port, frame, unit, function, count)
                except (serial.SerialException, OSError) as exc:
                    self._client.close()
                    raise MeterError(f"{where}: serial port failed: {exc}; it is reopened on the next request") from exc
                if isinstance(answer, _Failed):
                    problems.append(answer.problem)
                    garbled = garbled or answer.garbled
                    continue
                if answer.exception_code is not None:
                    code = answer.exception_code
                    raise ModbusExceptionError(
                        f"{where}: exception response, code {code} ({_exception_name(code)})", code
                    )
                assert answer.registers is not None
                return answer.registers
        attempts = f"{len(problems)} attempt{'s' if len(problems) > 1 else ''}"
        detail = "; ".join(dict.fromkeys(problems))  # each distinct problem once, in order
        hint = f"check the unit id, the wiring (A/B) and that the device uses {self.settings}"
        error = BadFrameError if garbled else NoAnswerError
        raise error(f"{where}: {detail} ({attempts}); {hint}")

    def _open(self, where: str) -> serial.Serial:
        """The open serial port (opened now if needed)."""
        if self._client.connected and self._client.socket is not None:
            return self._client.socket
        if "://" not in self.device:
            if not os.path.exists(self.device):
                raise MeterError(f"{where}: serial port {self.device} does not exist (adapter unplugged? "
                                 "see ls -l /dev/serial/by-id/)")
            if not os.access(self.device, os.R_OK | os.W_OK):
                raise MeterError(f"{where}: no permission to open {self.device} (add the gateway's user to "
                                 "the group owning it, usually dialout)")
        if not self._client.connect() or self._client.socket is None:
            raise MeterError(f"{where}: cannot open serial port {self.device} at {self.settings} "
                             "(in use by another program, or not a serial port)")
        self._quiet_since = time.monotonic()
        return self._client.socket

    def _exchange(self, port: serial.Serial, frame: bytes, unit: int, function: int, count: int) -> RtuAnswer | _Failed:
        """One attempt: gap, request, answer. Returns the valid answer, or what went wrong."""
        if not self._await_quiet_line(port):
            return _Failed(
                f"the line never falls quiet: bytes keep arriving for {self.timeout_s} s (another master on the "
                "line, a babbling device, or a wrong baud rate?)",
                garbled=True,
            )
        writing = time.monotonic()
        port.write(frame)
        port.flush()
        self.stats.requests += 1
        # The device can only answer once the whole request is on the line.
        sent = max(time.monotonic(), writing + len(frame) * self.char_time_s)
        start_deadline = sent + self.timeout_s
        end_deadline = start_deadline + (5 + 2 * count) * self.char_time_s
        received = bytearray()
        answer = RtuAnswer()
        while True:
            now = time.monotonic()
            deadline = end_deadline if received else start_deadline
            if now >= deadline:
                break
            port.timeout = deadline - now
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                continue
            received += chunk
            self._quiet_since = time.monotonic()
            answer = self.parse_answer(bytes(received), unit, function, count)
            if answer.valid:
                self.stats.answers += 1
                self.stats.rejected_frames += answer.rejected
                return answer
            if answer.rejected and not answer.pending:
                break  # a whole frame came in, CRC-bad: the device is done talking
            if len(received) > _MAX_RECEIVED:
                break  # far more than any answer: noise or a babbling device
        self._quiet_since = time.monotonic()  # the gap before the next request counts from here
        if not received:
            self.stats.timeouts += 1
            return _Failed(f"no answer within {self.timeout_s} s", garbled=False)
        self.stats.rejected_frames += max(answer.rejected, 1)
        what = "CRC error" if answer.rejected else "no valid frame"
        shown = received[:16].hex(" ") + (" ..." if len(received) > 16 else "")
        return _Failed(f"garbled answer ({what} in {len(received)} bytes: {shown})", garbled=True)

    def _await_quiet_line(self, port: serial.Serial) -> bool:
        """Wait until no byte has arrived for the inter-frame gap, discarding what arrives meanwhile.

        Returns:
            False when bytes kept arriving for ``timeout_s`` (the line is not quiet; nothing may be sent).
        """
        give_up = time.monotonic() + max(self.timeout_s, 10 * self.gap_s)
        while True:
            waiting = port.in_waiting
            if waiting:
                self.stats.stray_bytes += len(port.read(waiting))
                self._quiet_since = time.monotonic()
            wait = self._quiet_since + self.gap_s - time.monotonic()
            if wait <= 0:
                return True
            if time.monotonic() + wait > give_up:
                return False
            time.sleep(wait)

    @classmethod
    def parse_answer(cls, data: bytes, unit: int, function: int, count: int) -> RtuAnswer:
        """Find the answer to a read of ``count`` registers with ``function`` from ``unit`` in received bytes.

        The answer is ``unit, function, 2 * count, data..., CRC`` (``5 + 2 *
        count`` bytes) or the exception ``unit, function | 0x80, code, CRC``
        (5 bytes), anywhere in ``data``: bytes before it are noise. Never
        raises on any input.

        Args:
            data: every byte received since the request. [bytes]
            unit: the unit asked. [1..247]
            function: 3 or 4.
            count: registers asked. [1..125]

        Returns:
            the first valid answer, or how many CRC-bad frames there were (not
            counting candidates inside an already rejected one) and whether a
            candidate is still incomplete.
        """
        length = 5 + 2 * count
        rejected = 0
        rejected_end = 0  # a candidate inside a rejected frame is looked at, but not counted again
        for start in range(len(data)):
            if data[start] != unit:
                continue
            head = data[start + 1 : start + 3]
            if not head or (head[0] == function and len(head) < 2):
                return RtuAnswer(rejected=rejected, pending=True)
            if head[0] == function and head[1] == 2 * count:
                size = length
            elif head[0] == function | 0x80:
                size = 5
            else:
                continue
            frame = data[start : start + size]
            if len(frame) < size:
                return RtuAnswer(rejected=rejected, pending=True)
            if not FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big")):
                if start >= rejected_end:
                    rejected, rejected_end = rejected + 1, start + size
                continue
            try:
                pdu = cls._decoder.decode(frame[1:-2])
            except (ModbusException, ValueError, IndexError):  # cannot happen for a well-formed frame; be safe
                pdu = None
            if isinstance(pdu, ExceptionResponse):
                return RtuAnswer(exception_code=int(pdu.exception_code), rejected=rejected)
            registers = list(getattr(pdu, "registers", None) or [])
            if pdu is None or len(registers) != count:
                rejected += 1
                continue
            return RtuAnswer(registers=registers, rejected=rejected)
        return RtuAnswer(rejected=rejected)

    def close(self) -> None:
        """Close the serial port (the next request reopens it)."""
        with self._lock:
            self._client.close()

    def __repr__(self) -> str:
        return (
            f"ModbusRtuBus({self.device!r}, {self.baudrate}, parity={self.parity!r}, stopbits={self.stopbits}, "
            f"timeout_s={self.timeout_s}, retries={self.retries})"
        )


def is_pseudo_terminal(device: str) -> bool:
    """Whether ``device`` is the slave end of a Linux pseudo-terminal (``/dev/pts/N``: majors 136..143)."""
    if "://" in device:
        return False
    try:
        info = os.stat(device)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and 136 <= os.major(info.st_rdev) <= 143


def canonical_device(device: str) -> str:
    """``device`` with symbolic links resolved (``/dev/serial/by-id/...`` -> ``/dev/ttyUSB0``); URLs as given."""
    return device if "://" in device else os.path.realpath(device)


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
    """A meter read over Modbus through its model's register map (implements ``gateway.drivers.base.Meter``).

    Reads every quantity of the model (:attr:`quantities`) with as few
    requests as :func:`plan_requests` allows: ``import_energy`` (required),
    ``export_energy`` and ``power`` go to their own :class:`Reading` fields,
    every other quantity (per-phase power, voltage and current, frequency,
    total_energy, ...) to :attr:`Reading.values`, in canonical units.

    Refused reads: some meters refuse (ILLEGAL_ADDRESS) a read that bridges
    holes in their map, a few even a read spanning two mapped registers, and
    some firmware lacks a register its model's map lists. On ILLEGAL_ADDRESS
    the meter steps, at once and for good, from bridged requests to requests
    of adjacent mapped registers, then to one request per register; a
    register still refused then is dropped from :attr:`quantities` (logged),
    unless it is ``import_energy``, which makes the read fail.

    Backoff: after a read that got no valid answer (timeout, garbled answer,
    no connection; an exception response is an answer), the meter skips
    the bus for its next 1, 2, 4, ... polls, at most ``backoff_max_polls``:
    :meth:`read` then raises :class:`MeterSkippedError` at once, without bus
    traffic, so that a dead meter does not eat the line time of the others.
    Any read that gets an answer resets it.

    Args:
        meter_id: the meter's id in the gateway configuration.
        bus: the bus the meter is on.
        model: its register map.
        unit: its Modbus unit id. [``bus.units``: 0..255 on TCP, 1..247 on RTU]
        pool: the pool ``bus`` was acquired from; :meth:`close` releases it
            there. Without a pool the caller owns the bus and closes it.
        backoff_max_polls: most polls skipped between two attempts; 0
            disables the backoff. [polls, >= 0]
        drop_refused: drop a register the device refuses (see above); False
            makes such a read fail with the ILLEGAL_ADDRESS exception instead
            (``quartier scan`` uses it: a device lacking registers of a map is
            not that model).

    Raises:
        RegisterMapError: the model has no ``import_energy`` register.
        ValueError: unit or backoff_max_polls out of range.
    """

    def __init__(
        self,
        meter_id: str,
        bus: ModbusBus,
        model: MeterModel,
        unit: int = 1,
        pool: BusPool | None = None,
        backoff_max_polls: int = BACKOFF_MAX_POLLS,
        drop_refused: bool = True,
    ) -> None:
        if "import_energy" not in model.registers:
            raise RegisterMapError(f"model {model.name!r}: no import_energy register; a meter needs one to be read")
        if not _is_int(unit) or unit not in bus.units:
            raise ValueError(f"unit {unit!r} must be an integer in {_span(bus.units)}")
        if not _is_int(backoff_max_polls) or backoff_max_polls < 0:
            raise ValueError(f"backoff_max_polls {backoff_max_polls!r} must be an integer >= 0")
        self.meter_id = meter_id
        self.bus = bus
        self.model = model
        self.unit = unit
        self.backoff_max_polls = backoff_max_polls
        self.drop_refused = drop_refused
        self._pool = pool
        self._registers: dict[str, Register] = dict(model.registers)
        self._max_gap: int | None = MAX_GAP  # None: one request per register
        self._plan = self._make_plan()
        self._failures = 0  # reads in a row without an answer
        self._skip = 0  # polls still to skip
        self._silent_since: float | None = None  # poll time of the first read without an answer
        self._last_problem = ""

    @property
    def quantities(self) -> frozenset[str]:
        """The quantities this meter offers: its model's, less any its device refused."""
        return frozenset(self._registers)

    @property
    def index_wrap_wh(self) -> int | None:
        """Where the import index rolls over to 0: 2^bits x scale x unit of an integer register, None for floats. [Wh]

        (2^31 for a signed int32: the meter counts up to its largest positive value.)
        """
        return rollover_wh(self.model.registers["import_energy"])

    @property
    def requests_per_read(self) -> int:
        """Requests one successful read takes now."""
        return len(self._plan)

    def _make_plan(self) -> list[Request]:
        wanted = [(r.function, r.address, r.count) for r in self._registers.values()]
        if self._max_gap is None:
            return sorted(set(wanted))
        return plan_requests(wanted, max_gap=self._max_gap)

    def read(self, t: float) -> Reading:
        """Poll the meter; ``t`` [s since epoch] is stamped on the reading.

        Energies of the dedicated fields are rounded to whole Wh, power is in
        W, :attr:`Reading.values` holds the other quantities in Wh, W, V, A,
        Hz. A non-finite value of a quantity other than import/export energy
        and power is left out of :attr:`Reading.values` (a phase a meter does
        not measure must not cost the energy reading).

        Raises:
            MeterSkippedError: the meter is in backoff; nothing was sent.
            ModbusExceptionError: the meter answered with an exception.
            MeterError: no valid answer (also :class:`NoAnswerError`,
                :class:`BadFrameError`), or a non-finite or negative energy,
                or a non-finite power.
        """
        if self._skip > 0:
            self._skip -= 1
            raise self._skipped()
        try:
            words = self._read_words()
        except ModbusExceptionError as exc:
            self._answered()
            raise ModbusExceptionError(f"meter {self.meter_id}: {exc}", exc.code) from exc
        except MeterError as exc:
            self._not_answered(t, exc)
            error = type(exc) if type(exc) in (NoAnswerError, BadFrameError) else MeterError
            raise error(f"meter {self.meter_id}: {exc}") from exc
        self._answered()
        values: dict[str, float] = {}
        for quantity, register in self._registers.items():
            value = decode(register, words[register.function, register.address])
            if not math.isfinite(value):
                if quantity in READ_QUANTITIES:
                    raise MeterError(f"meter {self.meter_id}: {quantity} is {value}, not a number")
                continue
            values[quantity] = value
        import_wh = self._energy_wh(values, "import_energy")
        export_wh = self._energy_wh(values, "export_energy") if "export_energy" in values else None
        power_w = values.get("power")
        for quantity in READ_QUANTITIES:
            values.pop(quantity, None)
        return Reading(t=t, import_wh=import_wh, export_wh=export_wh, power_w=power_w, values=values)

    def _skipped(self) -> MeterSkippedError:
        since = datetime.fromtimestamp(self._silent_since or 0.0, UTC).isoformat(timespec="seconds")
        polls_left = self._skip + 1
        return MeterSkippedError(
            f"meter {self.meter_id}: skipped, no answer since {since} ({self._failures} failed "
            f"read{'s' if self._failures > 1 else ''}, last: {self._last_problem}); next attempt in {polls_left} "
            f"poll{'s' if polls_left > 1 else ''}",
            polls_left,
        )

    def _not_answered(self, t: float, exc: MeterError) -> None:
        self._failures += 1
        if self._silent_since is None:
            self._silent_since = t
        self._last_problem = str(exc)
        if self.backoff_max_polls:
            self._skip = min(2 ** min(self._failures - 1, 30), self.backoff_max_polls)

    def _answered(self) -> None:
        self._failures = self._skip = 0
        self._silent_since = None
        self._last_problem = ""

    def _read_words(self) -> dict[tuple[int, int], list[int]]:
        """The words of each wanted register, by ``(function, address)``, adapting the plan to refusals."""
        while True:
            words: dict[tuple[int, int], list[int]] = {}
            for function, start, count in self._plan:
                try:
                    block = self.bus.read_registers(function, start, count, self.unit)
                except ModbusExceptionError as exc:
                    if exc.code == ExcCodes.ILLEGAL_ADDRESS and self._adapt((function, start, count)):
                        break  # read again with the new plan
                    raise
                for register in self._registers.values():
                    offset = register.address - start
                    if register.function == function and 0 <= offset and offset + register.count <= count:
                        words[function, register.address] = block[offset : offset + register.count]
            else:
                return words

    def _adapt(self, refused: Request) -> bool:
        """Change the plan after ILLEGAL_ADDRESS for ``refused``; False when nothing is left to try."""
        plan = self._plan
        while self._max_gap is not None:
            self._max_gap = 0 if self._max_gap > 0 else None
            self._plan = self._make_plan()
            if self._plan != plan:
                log.info("meter %s: %s refused %s; reading with %d requests now", self.meter_id, self.bus.endpoint,
                         refused, len(self._plan))
                return True
        function, address, _ = refused
        dropped = [q for q, r in self._registers.items() if (r.function, r.address) == (function, address)]
        if not dropped or "import_energy" in dropped or not self.drop_refused:
            return False
        for quantity in dropped:
            del self._registers[quantity]
        self._plan = self._make_plan()
        log.warning("meter %s: the device refuses %s (function %d address %d, ILLEGAL_ADDRESS); no longer read",
                    self.meter_id, ", ".join(dropped), function, address)
        return True

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


