"""Scan a serial port for a TIC (a Linky's tele-information): which mode, speed and meter talk there."""

from __future__ import annotations

import termios
import time
from dataclasses import dataclass

import serial

from gateway.drivers.tic import _READ_CHUNK, DETECT_ORDER, SerialFactory, open_serial, probe
from quartier.errors import MeterError
from quartier.tic import BAUDRATES, FrameAssembler, TicDataError, TicReading, tic_reading


@dataclass(frozen=True)
class TicScanResult:
    """What :func:`scan_tic` found on a port.

    Attributes:
        device: the port.
        mode: ``historic``/``standard``, or None if nothing valid was heard.
        baudrate: the speed at which it was heard. [bit/s]
        meter_id: ADCO/ADSC of the first usable frame.
        contract: OPTARIF/NGTF of that frame.
        labels: every label seen in valid groups, sorted.
        frames_ok, frames_complete: frames returned / with every group valid.
        groups_ok, groups_bad_checksum, groups_malformed: group counters at that speed.
        bytes_received: bytes read at every speed tried.
        problem: why nothing usable was found, else None.
    """

    device: str
    mode: str | None
    baudrate: int | None
    meter_id: str | None
    contract: str | None
    labels: tuple[str, ...]
    frames_ok: int
    frames_complete: int
    groups_ok: int
    groups_bad_checksum: int
    groups_malformed: int
    bytes_received: int
    problem: str | None


def scan_tic(device: str, listen_s: float = 5.0, serial_factory: SerialFactory = open_serial) -> TicScanResult:
    """Listen on ``device`` at 9600 then 1200 bit/s, at most ``listen_s`` [s] each, and say what talks there.

    Stops at the first speed where a mode is recognised, after one complete
    usable frame or ``listen_s`` at that speed, whichever comes first.

    Raises:
        MeterError: the port cannot be opened (missing, busy, permissions).
    """
    if not listen_s > 0:
        raise ValueError(f"listen_s {listen_s!r} must be > 0")
    try:
        port = serial_factory(device, BAUDRATES[DETECT_ORDER[0]])
    except (serial.SerialException, OSError, termios.error) as exc:
        raise MeterError(
            f"TIC scan: cannot open {device}: {exc}; check the path and that this user may use it "
            f"(e.g. the dialout group)"
        ) from exc
    received = 0
    try:
        for mode in DETECT_ORDER:
            started = time.monotonic()
            found, data = probe(port, mode, listen_s)
            received += len(data)
            if found is None:
                continue
            assembler = FrameAssembler(found)
            labels: set[str] = set()
            first: TicReading | None = None
            complete = 0
            chunk = data
            while True:
                for frame in assembler.feed(chunk):
                    labels.update(frame.labels)
                    complete += frame.complete
                    if first is None and frame.complete:
                        try:
                            first = tic_reading(frame)
                        except TicDataError:
                            pass
                if first is not None or time.monotonic() - started >= listen_s:
                    break
                chunk = port.read(_READ_CHUNK)
                received += len(chunk)
            s = assembler.stats
            return TicScanResult(
                device=device,
                mode=found,
                baudrate=BAUDRATES[mode],
                meter_id=first.meter_id if first else None,
                contract=first.contract if first else None,
                labels=tuple(sorted(labels)),
                frames_ok=s.frames_ok,
                frames_complete=complete,
                groups_ok=s.groups_ok,
                groups_bad_checksum=s.groups_bad_checksum,
                groups_malformed=s.groups_malformed,
                bytes_received=received,
                problem=None if first else f"no complete usable frame within {listen_s:g} s",
            )
    finally:
        port.close()
    speeds = " or ".join(str(BAUDRATES[m]) for m in DETECT_ORDER)
    return TicScanResult(
        device=device,
        mode=None,
        baudrate=None,
        meter_id=None,
        contract=None,
        labels=(),
        frames_ok=0,
        frames_complete=0,
        groups_ok=0,
        groups_bad_checksum=0,
        groups_malformed=0,
        bytes_received=received,
        problem=(
            f"no valid TIC group at {speeds} bit/s within {listen_s:g} s each "
            f"({received} bytes heard); check the wiring to I1/I2 and the interface"
        ),
    )
