"""Modbus RTU on an RS485 line: :class:`ModbusRtuBus`, with its counters and answer parser.

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

import os
import threading
import time
from dataclasses import dataclass

import serial
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU, FramerType
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

from gateway.drivers.modbus.bus import BAUDRATES, PARITIES, RTU_UNITS, BusKey, ModbusBus, _check_timing
from gateway.drivers.modbus.devices import canonical_device, is_pseudo_terminal
from gateway.drivers.modbus.errors import BadFrameError, ModbusExceptionError, NoAnswerError, _exception_name
from quartier.errors import MeterError

#: Inter-frame gap above 19200 baud, fixed by the Modbus serial line spec. [s]
FIXED_GAP_S = 0.00175
#: Bytes received in one attempt after which the bus stops looking for its answer (the longest RTU frame is 256).
_MAX_RECEIVED = 1024


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

