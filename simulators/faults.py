"""Meter faults a simulated Modbus meter can play: silence, exception answers, a replacement.

Pure data and functions of time, so a test states a meter's misbehaviour as a
timetable and the simulator follows it (times in seconds since the epoch, UTC).
Counter wrap-around needs no timetable: integer energy registers roll over at
their :func:`quartier.registermap.rollover_wh`, as the real meters do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: ``no-answer``: a Modbus TCP-to-RS485 gateway in front of the meter answers 0x0B (the meter is silent).
#: ``timeout``: nothing comes back in time (the answer comes ``delay_s`` late).
#: ``exception``: the meter answers with exception ``code`` (default 0x04, server device failure).
FAULT_KINDS = ("no-answer", "timeout", "exception")


@dataclass(frozen=True)
class FaultWindow:
    """The meter misbehaves from ``start`` (included) to ``end`` (excluded). [s UTC]"""

    start: float
    end: float
    kind: str
    code: int = 0x04
    delay_s: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} must be one of {FAULT_KINDS}")
        if not self.start < self.end:
            raise ValueError(f"fault window must end after it starts: {self.start}..{self.end}")


@dataclass(frozen=True)
class MeterFaults:
    """A simulated meter's timetable of faults.

    Attributes:
        windows: when the meter is silent or answers with an exception.
        replaced_at: when the meter is swapped for a new one (None: never). [s UTC]
        new_index_wh: the new meter's index when it is installed. [Wh]
    """

    windows: Sequence[FaultWindow] = field(default_factory=tuple)
    replaced_at: float | None = None
    new_index_wh: int = 0

    def window_at(self, t: float) -> FaultWindow | None:
        """The fault in force at ``t``, or None when the meter behaves."""
        return next((w for w in self.windows if w.start <= t < w.end), None)

    def import_index_wh(self, t: float, profile_index_wh: float, profile_index_at_swap_wh: float) -> float:
        """The import index the meter shows at ``t``, given the profile's own index at ``t`` and at the swap. [Wh]

        After a replacement the new meter starts at ``new_index_wh`` and counts the same energy from then on.
        """
        if self.replaced_at is None or t < self.replaced_at:
            return profile_index_wh
        return self.new_index_wh + (profile_index_wh - profile_index_at_swap_wh)
