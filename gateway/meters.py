"""The meter interface and the registry of drivers.

A driver reads one physical meter and returns a :class:`Reading`. Drivers
register themselves by name (``modbus``, later ``tic``); the gateway
configuration names the driver, the model, the bus and the unit id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from quartier.registry import Factory, Registry


@dataclass(frozen=True)
class Reading:
    """What one poll of a meter returned.

    Attributes:
        t: UTC time of the poll. [s since epoch]
        import_wh: cumulative active energy imported (consumed). [Wh]
        export_wh: cumulative active energy exported, if the meter has it. [Wh]
        power_w: instantaneous total active power, if the meter has it;
            positive when importing. [W]
        values: every other quantity the meter offers, by the register-map
            name of the quantity (``power_l1``, ``voltage_l2``, ``current_l3``,
            ``frequency``...), in canonical units. [W, V, A, Hz, Wh]
        indexes_wh: cumulative import index of each tariff period when the
            meter keeps one per period (a Linky's ``HCHC``/``HCHP``,
            ``EASF01``...); their sum is ``import_wh`` unless the meter
            also gives a total. [Wh]
        tariff_period: the tariff period the meter says is running now
            (``HC``, ``HP``, ``BLEU HP``...), if it says.
    """

    t: float
    import_wh: int
    export_wh: int | None = None
    power_w: float | None = None
    values: Mapping[str, float] = field(default_factory=dict)
    indexes_wh: Mapping[str, int] = field(default_factory=dict)
    tariff_period: str | None = None


class Meter(Protocol):
    """One meter the gateway polls."""

    meter_id: str

    def read(self, t: float) -> Reading:
        """Poll the meter now; ``t`` is the poll time to stamp on the reading.

        Raises :class:`quartier.errors.MeterError` when the meter does not answer
        or answers with an error; never returns a partial reading.
        """
        ...

    def close(self) -> None:
        """Release the meter's share of its bus."""
        ...


DRIVERS: Registry[Meter] = Registry("meter driver")


def register_driver(name: str, factory: Factory[Meter]) -> None:
    """Register a meter driver under ``name``; refuses duplicates."""
    DRIVERS.register(name, factory)


def open_meter(options: Mapping[str, Any], config_path: str = "<config>") -> Meter:
    """Build the meter described by one ``[[meters]]`` table.

    The table's ``driver`` key (default ``modbus``) picks the driver.
    """
    from gateway import modbus, tic_reader  # noqa: F401  (register the modbus and tic drivers)

    return DRIVERS.create(
        options.get("driver", "modbus"), options, config_path, f"meters[{options.get('id', '?')}].driver"
    )
