"""A serial cable between two pseudo-terminals: real baud rates, real framing, real mistakes.

:class:`SerialLine` creates two pseudo-terminals, ``end_a`` and ``end_b``,
that programs open as serial ports (pyserial, pymodbus) exactly as they would
open ``/dev/ttyUSB0``. A relay thread carries bytes between them like a wire
between two UARTs:

- **Pace**: bytes reach the other end no faster than the sender's line
  allows, each slice of up to 10 ms of characters when its last character
  would have arrived: ``baudrate / bits per character`` characters per second, with
  bits per character = 1 start + data bits + parity bit + stop bits
  (7E1 = 10 bits, so 1200 baud carries 120 characters/s).
- **Speed**: each end's speed is the one its program set with termios
  (pyserial's ``baudrate``). When both ends agree, the data bits pass
  unchanged (masked to the data size). When they differ, the relay
  serialises the sender's characters to a bit stream (start bit, data LSB
  first, parity, stop bits) and samples it as the receiver's UART would: a
  1200 baud Linky read at 9600 baud gives garbage. That is what makes speed
  detection testable without hardware.
- **Character format** (data bits, parity, stop bits) is the line's, given
  to the constructor: Linux pseudo-terminals force CS8 without parity
  whatever a program asks, so a program's ``bytesize``/``parity`` cannot be
  observed and both ends are taken to use the line's format. (Linux 6.x also
  refuses with EINVAL a ``tcsetattr`` that asks a pty for parity again
  without changing its speed, which pyserial does on reconfiguration; the
  gateway's serial code opens a pty without parity for that reason, see
  :func:`gateway.drivers.modbus.is_pseudo_terminal`.)
- **Loss**: bytes sent while the other end's input queue is full are
  dropped and counted, as a UART overrun would.

A pseudo-terminal does not check parity; neither does the receiving side
here (Linux delivers a byte with a parity error unless INPCK is set), so
a corrupted character reaches the reader, whose checksum must catch it.
"""

from __future__ import annotations

import errno
import os
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass
from types import TracebackType

#: termios speed constants back to baud rates.
_SPEEDS: dict[int, int] = {
    getattr(termios, f"B{rate}"): rate
    for rate in (50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
                 230400)
    if hasattr(termios, f"B{rate}")
}
#: Longest slice the relay sends at once, so that pacing stays smooth. [s]
_SLICE_S = 0.01
_READ_SIZE = 4096


@dataclass(frozen=True)
class Framing:
    """The settings of one UART.

    Attributes:
        baudrate: bits per second. [bit/s]
        bytesize: data bits per character. [5..8]
        parity: ``N`` (none), ``E`` (even) or ``O`` (odd).
        stopbits: 1 or 2.
    """

    baudrate: int
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1

    @property
    def bits_per_char(self) -> int:
        """Start bit + data bits + parity bit + stop bits."""
        return 1 + self.bytesize + (self.parity != "N") + self.stopbits

    @property
    def chars_per_s(self) -> float:
        """Characters per second the line carries when sent back to back. [1/s]"""
        return self.baudrate / self.bits_per_char

    def __str__(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


def baudrate_of(fd: int) -> int:
    """The output speed a program set on the terminal ``fd`` (termios, as pyserial does); 0 if unnamed. [bit/s]"""
    return _SPEEDS.get(termios.tcgetattr(fd)[5], 0)


def _parity_bit(value: int, parity: str) -> int:
    ones = bin(value).count("1") & 1
    return ones if parity == "E" else 1 - ones


def serialise(data: bytes, framing: Framing) -> list[int]:
    """The line levels (1 = idle/mark) of ``data`` sent back to back, one entry per bit."""
    bits: list[int] = []
    for byte in data:
        value = byte & ((1 << framing.bytesize) - 1)
        bits.append(0)
        bits.extend((value >> k) & 1 for k in range(framing.bytesize))
        if framing.parity != "N":
            bits.append(_parity_bit(value, framing.parity))
        bits.extend([1] * framing.stopbits)
    return bits


def sample(bits: list[int], sender_baud: int, receiver: Framing) -> bytes:
    """What a UART with ``receiver``'s settings reads from ``bits`` sent at ``sender_baud``.

    The receiver waits for a falling edge, then samples each of its own bit
    times in the middle; a start bit that is high again at its middle is
    noise and skipped. Characters with a parity or framing error are
    delivered anyway (Linux without INPCK); a character of fewer than 8
    data bits arrives in the low bits.
    """
    if receiver.baudrate <= 0 or sender_baud <= 0:
        return b""
    step = sender_baud / receiver.baudrate  # sender bits per receiver bit

    def level(position: float) -> int:
        index = int(position)
        return bits[index] if 0 <= index < len(bits) else 1

    out = bytearray()
    position = 0.0
    n = len(bits)
    while True:
        index = int(position)
        while index < n and bits[index] == 1:
            index += 1
        if index >= n:
            return bytes(out)
        start = float(index)
        if level(start + step * 0.5) == 1:
            position = start + 1
            continue
        value = 0
        for k in range(receiver.bytesize):
            value |= level(start + step * (1.5 + k)) << k
        out.append(value)
        # Resume looking for the next start bit after the first stop bit's sample point.
        position = start + step * (1.5 + receiver.bytesize + (receiver.parity != "N"))
        position = max(position, start + 1)


def translate(data: bytes, sender: Framing, receiver: Framing) -> bytes:
    """What ``receiver`` reads when ``sender`` sends ``data``."""
    if sender == receiver:
        mask = (1 << sender.bytesize) - 1
        return data if mask == 0xFF else bytes(b & mask for b in data)
    return sample(serialise(data, sender), sender.baudrate, receiver)


@dataclass
class LineStats:
    """Counters of one direction of the line. [characters]"""

    sent: int = 0
    delivered: int = 0
    dropped: int = 0


class SerialLine:
    """Two pseudo-terminals joined by a paced relay, like two UARTs on a cable.

    Use :attr:`end_a` and :attr:`end_b` as serial port names. Until a program
    sets the speed of an end, it is raw at ``default_baudrate``.

    Args:
        default_baudrate: speed of an end whose program did not set one. [bit/s]
        bytesize: data bits per character on this line. [5..8]
        parity: ``N``, ``E`` or ``O``.
        stopbits: 1 or 2.
        pace: deliver bytes at the sender's line rate (False: as fast as
            possible, for tests that only check content).
    """

    def __init__(
        self, default_baudrate: int = 9600, bytesize: int = 8, parity: str = "N", stopbits: int = 1, pace: bool = True
    ) -> None:
        if bytesize not in (5, 6, 7, 8) or parity not in ("N", "E", "O") or stopbits not in (1, 2):
            raise ValueError(f"unsupported character format {bytesize}{parity}{stopbits}")
        self.character = Framing(default_baudrate, bytesize, parity, stopbits)
        self.pace = pace
        self._fds: dict[str, tuple[int, int]] = {}  # end -> (master fd, our slave fd)
        self.paths: dict[str, str] = {}
        for end in ("a", "b"):
            master, slave = os.openpty()
            tty.setraw(slave)
            attrs = termios.tcgetattr(slave)
            speed = getattr(termios, f"B{default_baudrate}")
            attrs[4] = attrs[5] = speed
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            os.set_blocking(master, False)
            self._fds[end] = (master, slave)
            self.paths[end] = os.ttyname(slave)
        self.stats = {"a>b": LineStats(), "b>a": LineStats()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()

    @property
    def end_a(self) -> str:
        """Path of end A (e.g. ``/dev/pts/7``)."""
        return self.paths["a"]

    @property
    def end_b(self) -> str:
        """Path of end B."""
        return self.paths["b"]

    def framing(self, end: str) -> Framing:
        """The framing of ``end`` (``a`` or ``b``): the speed its program set, the line's character format."""
        c = self.character
        return Framing(baudrate_of(self._fds[end][1]), c.bytesize, c.parity, c.stopbits)

    def start(self) -> SerialLine:
        """Start relaying; returns self."""
        if self._thread is not None:
            raise RuntimeError("serial line already started")
        self._thread = threading.Thread(target=self._run, name=f"serial-line-{self.end_a}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop relaying and close both pseudo-terminals."""
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for master, slave in self._fds.values():
            for fd in (master, slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fds.clear()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> SerialLine:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        masters = {self._fds[end][0]: end for end in ("a", "b")}
        # Characters not yet on the wire, per sender; the slice on the wire and when its last character lands;
        # when the sender's line is free again.
        queues: dict[str, bytearray] = {"a": bytearray(), "b": bytearray()}
        on_wire: dict[str, tuple[bytes, float] | None] = {"a": None, "b": None}
        line_free: dict[str, float] = {"a": 0.0, "b": 0.0}
        while not self._stop.is_set():
            now = time.monotonic()
            for sender, queue in queues.items():
                if on_wire[sender] is None and queue:
                    on_wire[sender] = self._take_slice(sender, queue, now, line_free)
            dues = [slot[1] for slot in on_wire.values() if slot is not None]
            timeout = max(0.0, min(dues) - now) if dues else None
            try:
                readable, _, _ = select.select([*masters, self._wake_r], [], [], timeout)
            except (OSError, ValueError):
                return
            if self._wake_r in readable:
                return
            for fd in readable:
                try:
                    data = os.read(fd, _READ_SIZE)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno == errno.EIO:
                        continue
                    raise
                queues[masters[fd]].extend(data)
            now = time.monotonic()
            for sender, slot in on_wire.items():
                if slot is not None and now >= slot[1]:
                    self._deliver(sender, slot[0])
                    on_wire[sender] = None

    def _take_slice(
        self, sender: str, queue: bytearray, now: float, line_free: dict[str, float]
    ) -> tuple[bytes, float]:
        """Put the next slice of ``sender``'s queue on the wire; returns it with the time its last character lands."""
        framing = self.framing(sender)
        paced = self.pace and framing.baudrate > 0
        count = max(1, int(framing.chars_per_s * _SLICE_S)) if paced else len(queue)
        chunk = bytes(queue[:count])
        del queue[:count]
        if not paced:
            return chunk, now
        due = max(now, line_free[sender]) + len(chunk) / framing.chars_per_s
        line_free[sender] = due
        return chunk, due

    def _deliver(self, sender: str, chunk: bytes) -> None:
        """Hand ``chunk`` to the other end, as its UART reads it."""
        receiver = "b" if sender == "a" else "a"
        out = translate(chunk, self.framing(sender), self.framing(receiver))
        stats = self.stats[f"{sender}>{receiver}"]
        stats.sent += len(chunk)
        written = 0
        if out:
            try:
                written = os.write(self._fds[receiver][0], out)
            except (BlockingIOError, OSError):
                written = 0
        stats.delivered += written
        stats.dropped += len(out) - written
