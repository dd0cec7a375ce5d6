"""Request planning: the fewest read requests (:data:`Request`) that cover a meter's registers."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.drivers.modbus.bus import MAX_REGISTERS_PER_REQUEST

#: Largest run of unwanted registers read (and thrown away) to save a request.
MAX_GAP = 8

Request = tuple[int, int, int]
"""``(function, address, count)`` of one read request."""


def plan_requests(
    registers: Iterable[Request], max_gap: int = MAX_GAP, max_count: int = MAX_REGISTERS_PER_REQUEST
) -> list[Request]:
    """Group register reads into as few requests as possible.

    Registers of the same function are merged into one request when at most
    ``max_gap`` unwanted registers separate them and the request stays within
    ``max_count`` registers. Overlapping and duplicate registers are merged.

    Args:
        registers: ``(function, address, count)`` of each wanted register, in any order.
        max_gap: most unwanted registers read to save a request. [>= 0]
        max_count: most registers per request. [>= 1]

    Returns:
        ``(function, address, count)`` requests sorted by function then address;
        every wanted register lies wholly inside one of them.

    Raises:
        ValueError: a register longer than ``max_count`` or with a count < 1.
    """
    planned: list[Request] = []
    start = end = function = -1
    for fn, address, count in sorted(registers):
        if count < 1 or count > max_count:
            raise ValueError(f"register at {address} spans {count} registers; a request holds 1..{max_count}")
        if fn == function and address - end <= max_gap and max(end, address + count) - start <= max_count:
            end = max(end, address + count)
            continue
        if function != -1:
            planned.append((function, start, end - start))
        function, start, end = fn, address, address + count
    if function != -1:
        planned.append((function, start, end - start))
    return planned

