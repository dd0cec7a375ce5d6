"""``quartier scan``: probe a serial port or a Modbus TCP endpoint and report the meters found there.

On a serial port, a Linky's TIC is listened for first (:mod:`gateway.scan.tic`), then Modbus RTU is tried; a
``host[:port]`` target is scanned as Modbus TCP. How a Modbus unit is recognised is told in
:mod:`gateway.scan.modbus`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.drivers.modbus import ModbusBus
from gateway.scan.modbus import RTU_TRIES, UnitScan, describe_unit, scan_bus


def parse_units(text: str) -> list[int]:
    """``"1-10,20"`` -> [1, ..., 10, 20]; raises ValueError naming the bad part."""
    units: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"unit range {part!r}: write numbers like 1-10,20") from None
        if not 0 <= first <= last <= 255:
            raise ValueError(f"unit range {part!r} must lie within 0..255, low to high")
        units.extend(range(first, last + 1))
    return units


def is_serial_target(target: str) -> bool:
    """A serial port (``/dev/ttyUSB0``, ``COM3``) rather than a ``host[:port]`` Modbus TCP endpoint."""
    return target.startswith(("/", ".", "COM")) or target.startswith("socket://")


def run_scan(
    target: str,
    protocol: str = "auto",
    units: Sequence[int] = range(1, 11),
    baudrate: int | None = None,
    parity: str | None = None,
    timeout_s: float = 0.3,
    listen_s: float = 4.0,
    out: Callable[[str], None] = print,
) -> int:
    """``quartier scan``: probe ``target`` and report; returns the number of meters found.

    ``target`` is ``host[:port]`` (Modbus TCP, port 502 by default) or a serial
    port. On a serial port, ``protocol="auto"`` first listens for a Linky's TIC
    (``listen_s`` per speed), then tries Modbus RTU at ``baudrate``/``parity``
    or, when not given, at each of :data:`RTU_TRIES` until a speed answers.
    """
    from gateway.drivers.modbus import ModbusRtuBus, ModbusTcpBus

    found = 0
    if not is_serial_target(target):
        if protocol not in ("auto", "tcp"):
            raise ValueError(f"{target!r} is a TCP endpoint; protocol {protocol!r} needs a serial port")
        host, _, port_text = target.rpartition(":") if ":" in target else (target, "", "502")
        port = int(port_text)
        out(f"Modbus TCP {host}:{port}, units {_span(units)}, timeout {timeout_s:g} s")
        scans = _scan_and_report(ModbusTcpBus(host, port, timeout_s=timeout_s, retries=0), units, out)
        return sum(1 for s in scans if s.models)
    if protocol in ("auto", "tic"):
        from gateway.scan.tic import scan_tic

        out(f"TIC on {target}: listening {listen_s:g} s at 9600 then 1200 bit/s (7E1)")
        tic = scan_tic(target, listen_s=listen_s)
        if tic.mode is not None:
            found += 1
            out(f"  Linky in {tic.mode} mode at {tic.baudrate} bit/s: meter {tic.meter_id}, contract {tic.contract}, "
                f"{tic.frames_complete} complete frames, {tic.groups_bad_checksum} bad checksums")
            out(f"  labels: {' '.join(tic.labels)}")
            return found
        out(f"  no TIC: {tic.problem}")
    if protocol in ("auto", "rtu"):
        tries = [
            (b, p) for b, p in RTU_TRIES if (baudrate is None or b == baudrate) and (parity is None or p == parity)
        ]
        if not tries:
            tries = [(baudrate or 9600, parity or "N")]
        for speed, par in tries:
            out(f"Modbus RTU on {target} at {speed} 8{par}1, units {_span(units)}, timeout {timeout_s:g} s")
            scans = _scan_and_report(ModbusRtuBus(target, speed, par, 1, timeout_s=timeout_s, retries=0), units, out)
            if scans:
                return found + sum(1 for s in scans if s.models)
    return found


def _scan_and_report(bus: ModbusBus, units: Sequence[int], out: Callable[[str], None]) -> list[UnitScan]:
    """Scan ``units`` on ``bus`` (closed afterwards) and print one line per unit that answered."""
    try:
        scans = scan_bus(bus, units)
    finally:
        bus.close()
    for scan in scans:
        out("  " + describe_unit(scan))
    if not scans:
        out("  no unit answered")
    return scans


def _span(units: Sequence[int]) -> str:
    units = list(units)
    if units and units == list(range(units[0], units[-1] + 1)):
        return f"{units[0]}-{units[-1]}"
    return ",".join(str(u) for u in units)
