"""The meter mapping: which gateway meter measures each charge point (CSV, companion of the registration file).

CarbuRe's registration file has no column for the meter behind a point, so
Quartier keeps it in a small UTF-8 CSV, one row per meter a point ever had
(a replaced meter keeps its row; the new meter gets a new row)::

    charge_point_id,station_id,gateway_id,meter_id,meter_model,mid_meter_id,initial_index_kwh,installed_at
    FRQRTE0001A,FRQRTP0001,gw-lyon-1,cp1,ABB B23 312-100,MID-22-0001,1520.000,01/01/2025
    FRQRTE0002A,FRQRTP0001,gw-lyon-1,cp2,ABB B23 312-100,MID-22-0002,0.000,2025-02-10T09:00:00Z

``installed_at`` is when the meter started measuring the point: an ISO 8601
UTC time (``...Z``), or a date (``JJ/MM/AAAA`` or ``AAAA-MM-JJ``) meaning 00:00
Europe/Paris that day. ``initial_index_kwh`` is the meter's import index at
that moment [kWh, up to 3 decimals]. Every problem is reported as
``FILE: row R, column C (header): problem``; unknown or missing columns are refused.
"""

from __future__ import annotations

import csv
from pathlib import Path

from cloud.carbure.cells import kwh_to_wh, parse_date, text
from cloud.carbure.errors import FileProblemsError
from cloud.carbure.period import paris_midnight_utc
from cloud.carbure.registry import MeterLink
from cloud.carbure.xlsx import col_letter
from quartier.series import parse_utc

COLUMNS: tuple[str, ...] = (
    "charge_point_id", "station_id", "gateway_id", "meter_id", "meter_model", "mid_meter_id",
    "initial_index_kwh", "installed_at",
)


def parse_instant(v: str) -> int:
    """``installed_at`` to UTC epoch seconds: an ISO UTC time, or a local date (00:00 Europe/Paris)."""
    if "T" in v:
        return parse_utc(v)
    return paris_midnight_utc(parse_date(v))


def read_mapping(path: str | Path) -> list[MeterLink]:
    """Meter links of a mapping CSV, in file order; FileProblemsError lists every problem."""
    p = Path(path)
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise FileProblemsError(p, [f"{p}: cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise FileProblemsError(p, [f"{p}: not UTF-8 text"]) from None
    if not rows:
        raise FileProblemsError(p, [f"{p}: the file is empty (row 1 must hold the headers {','.join(COLUMNS)})"])
    header = [h.strip() for h in rows[0]]
    problems = [f"{p}: row 1, column {col_letter(i)} ({h}): unknown column; expected {', '.join(COLUMNS)}"
                for i, h in enumerate(header) if h not in COLUMNS]
    problems += [f"{p}: row 1: missing column {c}" for c in COLUMNS if c not in header]
    if problems:
        raise FileProblemsError(p, problems)
    col = {h: i for i, h in enumerate(header)}
    links: list[MeterLink] = []
    seen: dict[tuple[str, int], int] = {}
    for r, raw in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in raw):
            continue
        row = raw + [""] * (len(header) - len(raw))
        bad = len(problems)

        def where(name: str) -> str:
            return f"{p}: row {r}, column {col_letter(col[name])} ({name})"

        values = {name: text(row[col[name]]) for name in COLUMNS}
        for name in ("charge_point_id", "gateway_id", "meter_id"):
            if not values[name]:
                problems.append(f"{where(name)}: missing")
        index_wh = installed = 0
        try:
            index_wh = kwh_to_wh(values["initial_index_kwh"], "initial index [kWh]")
        except ValueError as exc:
            problems.append(f"{where('initial_index_kwh')}: {exc}")
        try:
            installed = parse_instant(values["installed_at"])
        except ValueError as exc:
            problems.append(f"{where('installed_at')}: {exc}")
        key = (values["charge_point_id"], installed)
        if len(problems) == bad and key in seen:
            problems.append(f"{where('installed_at')}: {key[0]} already has a meter installed at that time"
                            f" (row {seen[key]})")
        if len(problems) == bad:
            seen[key] = r
            links.append(MeterLink(
                values["charge_point_id"], values["gateway_id"], values["meter_id"], values["meter_model"],
                values["mid_meter_id"], index_wh, installed, values["station_id"],
            ))
    if problems:
        raise FileProblemsError(p, problems)
    return links
