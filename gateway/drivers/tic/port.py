"""The TIC serial port: opening it at 7E1, and listening for valid groups at one speed (detection, scan)."""

from __future__ import annotations

import logging
import termios
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from quartier.tic import BAUDRATES, HISTORIC, STANDARD, detect_mode

log = logging.getLogger("gateway.drivers.tic")

AUTO = "auto"
#: Speeds tried by auto-detection, in order: standard (9600) first, it is the faster to recognise.
DETECT_ORDER: tuple[str, ...] = (STANDARD, HISTORIC)
#: Default listening time per speed during detection (a frame lasts ~1 s at 9600, up to ~2.5 s at 1200). [s]
DETECT_WINDOW_S: dict[str, float] = {STANDARD: 2.5, HISTORIC: 4.0}
_READ_CHUNK = 512
_READ_TIMEOUT_S = 0.1

SerialFactory = Callable[..., Any]
"""Opens a port like ``serial.Serial(path, baudrate, bytesize=..., parity=..., stopbits=..., timeout=...)``."""


def open_serial(device: str, baudrate: int, timeout_s: float = _READ_TIMEOUT_S) -> serial.Serial:
    """Open ``device`` as a TIC port at ``baudrate`` [bit/s]: 7 data bits, even parity, 1 stop bit.

    A port that refuses 7E1 (some USB adapters have no 7-bit mode; a Linux
    pseudo-terminal, which forces CS8 without parity, fails a reconfiguration
    that changes nothing else with EINVAL) is opened 8N1 instead: a 7E1
    character read 8N1 is the same 10 bits, its parity bit arriving as bit 7,
    which the frame assembler masks off.

    Raises:
        serial.SerialException: cannot open (missing, busy, no permission).
    """
    try:
        return serial.Serial(
            device,
            baudrate,
            bytesize=serial.SEVENBITS,
            parity=serial.PARITY_EVEN,
            stopbits=serial.STOPBITS_ONE,
            timeout=timeout_s,
        )
    except (serial.SerialException, termios.error, OSError) as exc:
        try:
            port = serial.Serial(device, baudrate, timeout=timeout_s)
        except (serial.SerialException, termios.error, OSError):
            raise exc from None
        log.debug("%s refused 7E1 (%s); reading 8N1 and masking the parity bit", device, exc)
        return port


def probe(port: Any, mode: str, window_s: float, stop: threading.Event | None = None) -> tuple[str | None, bytes]:
    """Listen on ``port`` at ``mode``'s speed for at most ``window_s`` [s]; the mode recognised and the bytes read.

    Returns as soon as :func:`detect_mode` recognises a mode (None if it
    never does). Serial errors propagate.
    """
    if port.baudrate != BAUDRATES[mode]:  # (a pseudo-terminal refuses a no-op reconfiguration with EINVAL)
        port.baudrate = BAUDRATES[mode]
    port.reset_input_buffer()
    data = bytearray()
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        chunk = port.read(_READ_CHUNK)
        if chunk:
            data += chunk
            found = detect_mode(bytes(data))
            if found is not None:
                return found, bytes(data)
    return None, bytes(data)
