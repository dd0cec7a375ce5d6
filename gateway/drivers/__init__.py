"""The meter drivers, in one table: a ``[[meters]]`` table's ``driver`` key picks its entry here.

A driver validates its options into a typed :class:`~gateway.drivers.base.MeterConfig` (once, when the
gateway's configuration is loaded) and opens the :class:`~gateway.drivers.base.Meter` that reads the device
(when the gateway starts). :mod:`gateway.drivers.base` holds the interface. To add a driver, write its package
beside ``modbus`` and ``tic`` and add one line to :data:`DRIVERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.drivers.base import Meter, MeterConfig
from gateway.drivers.modbus import BusPool, ModbusMeterConfig, open_modbus_meter, parse_modbus_options
from gateway.drivers.tic import TicMeterConfig, open_tic_meter, parse_tic_options
from quartier.clock import Clock, SystemClock
from quartier.errors import ConfigError


@dataclass
class MeterContext:
    """What the gateway lends its drivers: its clock, and one Modbus bus per endpoint shared by its meters."""

    clock: Clock = field(default_factory=SystemClock)
    buses: BusPool = field(default_factory=BusPool)


@dataclass(frozen=True)
class Driver:
    """One driver: ``parse`` validates a ``[[meters]]`` table (and the config file's path, for errors); ``open``
    builds the meter of the validated options."""

    parse: Callable[[Mapping[str, Any], str], MeterConfig]
    open: Callable[[Any, MeterContext], Meter]


def _open_modbus(config: ModbusMeterConfig, context: MeterContext) -> Meter:
    return open_modbus_meter(config, context.buses)


def _open_tic(config: TicMeterConfig, context: MeterContext) -> Meter:
    return open_tic_meter(config, context.clock)


DRIVERS: dict[str, Driver] = {
    "modbus": Driver(parse_modbus_options, _open_modbus),
    "tic": Driver(parse_tic_options, _open_tic),
}
"""Driver name (the ``driver`` key, default ``modbus``) -> its entry."""


def parse_meter(options: Mapping[str, Any], config_path: str = "<config>") -> MeterConfig:
    """Validate one ``[[meters]]`` table with the driver its ``driver`` key (default ``modbus``) names.

    ``max_power_w`` is the gateway's own key: pass the table without it and set it on the result.
    """
    name = options.get("driver", "modbus")
    driver = DRIVERS.get(name) if isinstance(name, str) else None
    if driver is None:
        raise ConfigError(config_path, f"meters[{options.get('id', '?')}].driver",
                          f"unknown meter driver {name!r}; choose one of {sorted(DRIVERS)}")
    return driver.parse(options, config_path)


def open_meter(
    options: Mapping[str, Any] | MeterConfig, config_path: str = "<config>", context: MeterContext | None = None
) -> Meter:
    """Open the meter of one ``[[meters]]`` table (validated first) or of an already validated config."""
    config = options if isinstance(options, MeterConfig) else parse_meter(options, config_path)
    return DRIVERS[config.driver].open(config, context if context is not None else MeterContext())
