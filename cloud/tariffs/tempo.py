"""RTE's published Tempo colours to a day calendar CSV (pure: a parsed JSON document in, CSV text out).

RTE publishes each day's colour the day before through its "Tempo Like Supply Contract" API
(``/open_api/tempo_like_supply_contract/v1/tempo_like_calendars``). Its answer is::

    {"tempo_like_calendars": {"start_date": ..., "end_date": ...,
        "values": [{"start_date": "2026-01-05T00:00:00+01:00", "end_date": "2026-01-06T00:00:00+01:00",
                    "value": "RED", "updated_date": "2026-01-04T10:20:00+01:00"}, ...]}}

Each value is one Tempo day, identified by the local date of ``start_date``; ``value`` is BLUE, WHITE or RED.
The CSV written is the ``[day_types]`` calendar format of docs/tariffs.md (``date,day_type``, with ``#``
comment lines saying where the colours come from), with the library's day type names blue, white, red.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from cloud.tariffs.errors import TempoCalendarError

RTE_COLOURS: Mapping[str, str] = {"BLUE": "blue", "WHITE": "white", "RED": "red"}
"""RTE's ``value`` -> the day type names of ``library/tempo.toml``."""


def rte_days(doc: Any, where: str = "<rte>") -> dict[date, str]:
    """The day colours of an RTE ``tempo_like_calendars`` answer: local date -> blue, white or red.

    Raises TempoCalendarError naming ``where`` and the entry (``values[3].value``) for a missing or unknown
    field, or a date given twice with two colours (the same colour twice is accepted: overlapping downloads).
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("tempo_like_calendars"), dict):
        raise TempoCalendarError(f"{where}: not an RTE Tempo answer (no tempo_like_calendars object)")
    values = doc["tempo_like_calendars"].get("values")
    if not isinstance(values, list):
        raise TempoCalendarError(f"{where}: tempo_like_calendars.values: missing or not a list")
    days: dict[date, str] = {}
    for i, v in enumerate(values):
        at = f"{where}: tempo_like_calendars.values[{i}]"
        if not isinstance(v, dict):
            raise TempoCalendarError(f"{at}: not an object")
        colour = v.get("value")
        if not isinstance(colour, str) or colour not in RTE_COLOURS:
            raise TempoCalendarError(f"{at}.value: must be one of {', '.join(RTE_COLOURS)}, got {colour!r}")
        try:
            day = datetime.fromisoformat(str(v.get("start_date"))).date()
        except ValueError:
            raise TempoCalendarError(f"{at}.start_date: not an ISO date-time: {v.get('start_date')!r}") from None
        name = RTE_COLOURS[colour]
        if days.get(day, name) != name:
            raise TempoCalendarError(f"{at}.start_date: {day} is already {days[day]}, here {name}")
        days[day] = name
    return days


def calendar_csv(days: Mapping[date, str], source: str) -> str:
    """The ``[day_types]`` calendar CSV: ``# source`` then ``date,day_type`` rows in date order."""
    lines = [f"# {line}" for line in source.splitlines()] + ["date,day_type"]
    lines += [f"{d.isoformat()},{days[d]}" for d in sorted(days)]
    return "\n".join(lines) + "\n"
