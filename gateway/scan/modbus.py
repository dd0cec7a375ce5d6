"""Scan a Modbus bus: find which known meters answer, as an installer would on site.

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
from collections.abc import Iterable, Sequence
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
