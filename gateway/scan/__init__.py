"""``quartier scan``: find which known meters answer on a Modbus bus, as an installer would on site.

For each unit id, every shipped register map (:func:`quartier.registermap.available_models`)
is tried in turn:

1. a model with an ``[identify]`` register is **identified** when that register
   holds one of its expected values (a model code, a type designation);
2. every model is a **candidate** when one full read of its registers (the
   gateway's own read, :class:`gateway.drivers.modbus.ModbusMeter`) succeeds and the
   values are plausible: energies finite and >= 0, voltages 0 or 80..300 V,
   frequency 0 or 45..65 Hz. Two models with the same registers at the same
   addresses cannot be told apart this way; both are reported.

A unit whose first request gets no answer at all is reported absent at once
(no other model is tried there), so a scan of an empty RS485 range costs one
timeout per unit. An exception response (ILLEGAL_ADDRESS...) means a device is
there but is not this model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gateway.drivers.modbus import ModbusBus, ModbusExceptionError, ModbusMeter, NoAnswerError
from quartier.errors import MeterError
from quartier.registermap import MeterModel, available_models, load_model

#: Plausible ranges of a quantity's dimension; 0 is accepted too (a phase not wired). [V, Hz]
_PLAUSIBLE = {"voltage": (80.0, 300.0), "frequency": (45.0, 65.0)}


@dataclass
class UnitScan:
    """What one unit id answered.

    Attributes:
        unit: the Modbus unit id.
        present: a device answered at least one request (even with an exception).
        identified: models whose identify register matched.
        candidates: models whose whole register map read back plausibly,
            with the import energy index read. [Wh]
        notes: why other models were ruled out, for the installer.
    """

    unit: int
    present: bool = False
    identified: list[str] = field(default_factory=list)
    candidates: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        """The best answer: the identified models if any, else the candidates."""
        if self.identified:
            return [m for m in self.identified if m in self.candidates] or list(self.identified)
        return sorted(self.candidates)


def plausible(model: MeterModel, values: dict[str, float]) -> str | None:
    """Why ``values`` (canonical units, by quantity) cannot come from a ``model`` meter, or None."""
    for quantity, value in values.items():
        if not math.isfinite(value):
            return f"{quantity} is {value}"
        dimension = model.registers[quantity].dimension if quantity in model.registers else None
        if dimension == "energy" and value < 0:
            return f"{quantity} is negative ({value:g} Wh)"
        bounds = _PLAUSIBLE.get(dimension or "")
        if bounds and value != 0 and not bounds[0] <= value <= bounds[1]:
            return f"{quantity} = {value:g} is outside {bounds[0]:g}..{bounds[1]:g}"
    return None


def scan_unit(bus: ModbusBus, unit: int, models: Sequence[MeterModel]) -> UnitScan:
    """Try every model at ``unit`` on ``bus``; see the module docstring."""
    result = UnitScan(unit)
    for model in models:
        identify = model.identify
        if identify is not None:
            try:
                regs = bus.read_registers(identify.function, identify.address, identify.count, identify.unit or unit)
            except NoAnswerError:
                if not result.present and identify.unit is None:
                    result.notes.append("no answer")
                    return result
            except ModbusExceptionError:
                result.present = result.present or identify.unit is None
            except MeterError as exc:
                result.notes.append(f"{model.name}: {exc}")
            else:
                result.present = result.present or identify.unit is None
                if identify.matches(regs):
                    result.identified.append(model.name)
        meter = ModbusMeter(f"unit-{unit}", bus, model, unit, backoff_max_polls=0, drop_refused=False)
        try:
            reading = meter.read(0.0)
        except NoAnswerError:
            if not result.present:
                result.notes.append("no answer")
                return result
            result.notes.append(f"{model.name}: no answer to its registers")
            continue
        except ModbusExceptionError as exc:
            result.present = True
            result.notes.append(f"{model.name}: refused (exception {exc.code})")
            continue
        except MeterError as exc:
            result.present = True
            result.notes.append(f"{model.name}: {exc}")
            continue
        result.present = True
        values = {"import_energy": float(reading.import_wh), **reading.values}
        if reading.export_wh is not None:
            values["export_energy"] = float(reading.export_wh)
        if reading.power_w is not None:
            values["power"] = reading.power_w
        problem = plausible(model, values)
        if problem:
            result.notes.append(f"{model.name}: implausible, {problem}")
        else:
            result.candidates[model.name] = reading.import_wh
    return result


def scan_bus(bus: ModbusBus, units: Iterable[int], models: Sequence[str] | None = None) -> list[UnitScan]:
    """Scan ``units`` on ``bus`` for ``models`` (default: every shipped map); only present units are returned."""
    loaded = [load_model(name) for name in (models if models is not None else available_models())]
    return [scan for scan in (scan_unit(bus, unit, loaded) for unit in units) if scan.present]


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


#: Serial settings tried in order when the installer does not know the line's: the common meter defaults first.
RTU_TRIES: tuple[tuple[int, str], ...] = (
    (9600, "N"), (9600, "E"), (19200, "N"), (19200, "E"), (38400, "N"), (2400, "N"), (4800, "N"), (115200, "N"),
)


def describe_unit(scan: UnitScan) -> str:
    """One line for the installer: ``unit 2: abb_b23 (identified), import index 2,000,000 Wh``."""
    if scan.identified:
        names = ", ".join(scan.models)
        how = "identified"
    elif scan.candidates:
        names = " or ".join(scan.models)
        how = "same registers, cannot tell apart" if len(scan.candidates) > 1 else "its registers answer"
    else:
        return f"unit {scan.unit}: a device answers but no known model matches ({'; '.join(scan.notes[:3])})"
    index = next((scan.candidates[m] for m in scan.models if m in scan.candidates), None)
    reading = f", import index {index:,} Wh" if index is not None else ""
    return f"unit {scan.unit}: {names} ({how}){reading}"


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
        from gateway.drivers.tic import scan_tic

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
