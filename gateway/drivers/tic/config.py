"""The ``tic`` driver's options: validated once into a :class:`TicMeterConfig`, then opened."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from gateway.drivers.base import MeterConfig
from gateway.drivers.tic.port import AUTO
from gateway.drivers.tic.reader import TIME_SOURCES, TicMeter
from quartier.clock import Clock
from quartier.errors import ConfigError
from quartier.tic import MODES

_OPTION_KEYS = {"driver", "id", "device", "mode", "timeout_s", "adco", "adsc", "time_source"}


@dataclass(frozen=True, kw_only=True)
class TicMeterConfig(MeterConfig):
    """A ``driver = "tic"`` meter's validated options (see the module documentation for each key).

    Attributes:
        device: the serial port the meter's TIC output is wired to.
        mode: ``auto`` (detect the speed), ``historic`` or ``standard``.
        timeout_s: the oldest frame a reading may come from. [s]
        expected_id: the meter's 12-digit address (``adco`` or ``adsc``) the frames must carry, if given.
        time_source: ``gateway`` (the poll time) or ``meter`` (the frame's DATE horodate).
    """

    driver: ClassVar[str] = "tic"

    device: str
    mode: str = AUTO
    timeout_s: float = 10.0
    expected_id: str | None = None
    time_source: str = "gateway"


def parse_tic_options(options: Mapping[str, Any], config_path: str) -> TicMeterConfig:
    """Validate one ``[[meters]]`` table of the ``tic`` driver.

    Raises:
        ConfigError: a missing, unknown or invalid key, named ``meters[<id>].<key>``.
    """
    meter_id = options.get("id")
    if not isinstance(meter_id, str) or not meter_id:
        raise ConfigError(config_path, "meters[?].id", f"{meter_id!r}: every meter needs a non-empty string id")
    prefix = f"meters[{meter_id}]"
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise ConfigError(config_path, f"{prefix}.{unknown[0]}",
                          f"unknown key; the tic driver takes {sorted(_OPTION_KEYS)}")
    device = options.get("device")
    if not isinstance(device, str) or not device:
        raise ConfigError(config_path, f"{prefix}.device", f'{device!r}: give the serial port, e.g. "/dev/ttyUSB0"')
    mode = options.get("mode", AUTO)
    if mode not in (AUTO, *MODES):
        raise ConfigError(config_path, f"{prefix}.mode", f"{mode!r} must be one of {[AUTO, *MODES]}")
    timeout_s = options.get("timeout_s", 10.0)
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, int | float)
        or not math.isfinite(timeout_s)
        or not 0 < timeout_s <= 3600
    ):
        raise ConfigError(config_path, f"{prefix}.timeout_s", f"{timeout_s!r} must be a number of seconds in (0, 3600]")
    expected: str | None = None
    given = [key for key in ("adco", "adsc") if key in options]
    if len(given) > 1:
        raise ConfigError(config_path, f"{prefix}.adsc", "give adco (historic) or adsc (standard), not both")
    for key in given:
        value = options[key]
        if not (isinstance(value, str) and len(value) == 12 and value.isascii() and value.isdigit()):
            raise ConfigError(
                config_path, f"{prefix}.{key}", f"{value!r} must be the meter's 12-digit address as a string"
            )
        expected = value
    time_source = options.get("time_source", "gateway")
    if time_source not in TIME_SOURCES:
        raise ConfigError(config_path, f"{prefix}.time_source", f"{time_source!r} must be one of {list(TIME_SOURCES)}")
    return TicMeterConfig(
        id=meter_id, config_path=config_path, device=device, mode=mode, timeout_s=float(timeout_s),
        expected_id=expected, time_source=time_source,
    )


def open_tic_meter(config: TicMeterConfig, clock: Clock | None = None) -> TicMeter:
    """Build and start the :class:`TicMeter` of ``config``, stamping readings with ``clock`` (the gateway's).

    The port is opened by the reader thread, so a missing device does not
    fail here: :meth:`TicMeter.read` reports it.
    """
    return TicMeter(
        config.id, config.device, mode=config.mode, timeout_s=config.timeout_s, expected_id=config.expected_id,
        clock=clock, time_source=config.time_source,
    ).start()
