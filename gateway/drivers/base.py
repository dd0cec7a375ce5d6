"""What every meter driver shares: its options' base (:class:`MeterConfig`), the :class:`Meter` interface and
the :class:`Reading` it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol


@dataclass(frozen=True, kw_only=True)
class MeterConfig:
    """The validated options of one ``[[meters]]`` table; each driver subclasses it with its own.

    Attributes:
        id: the meter id, unique in the gateway, as it appears in intervals and topics.
        max_power_w: the most this meter can carry, if configured; an index rising faster is a
            discontinuity, not energy (read by the gateway's interval builder, whatever the driver). [W]
        config_path: the file the options were read from, for the errors found when the meter opens.
    """

    driver: ClassVar[str]
    """The driver's name in :data:`gateway.drivers.DRIVERS` (the table's ``driver`` key)."""

    id: str
    max_power_w: float | None = None
    config_path: str = "<config>"


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
