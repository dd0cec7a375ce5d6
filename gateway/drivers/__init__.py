"""The meter drivers, in one table: a ``[[meters]]`` table's ``driver`` key picks its factory here.

A driver reads one physical meter and returns a :class:`~gateway.drivers.base.Reading`
(:mod:`gateway.drivers.base` holds the interface). To add a driver, write its package beside
``modbus`` and ``tic`` and add one line to :data:`DRIVERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.drivers.base import Meter
from gateway.drivers.modbus import open_modbus_meter
from gateway.drivers.tic import open_tic_meter
from quartier.errors import ConfigError

DRIVERS: dict[str, Callable[[Mapping[str, Any], str], Meter]] = {
    "modbus": open_modbus_meter,
    "tic": open_tic_meter,
}
"""Driver name -> factory building the meter from its ``[[meters]]`` table and the config file's path."""


def open_meter(options: Mapping[str, Any], config_path: str = "<config>") -> Meter:
    """Build the meter described by one ``[[meters]]`` table; its ``driver`` key (default ``modbus``) picks it."""
    name = options.get("driver", "modbus")
    factory = DRIVERS.get(name)
    if factory is None:
        raise ConfigError(config_path, f"meters[{options.get('id', '?')}].driver",
                          f"unknown meter driver {name!r}; choose one of {sorted(DRIVERS)}")
    return factory(options, config_path)
