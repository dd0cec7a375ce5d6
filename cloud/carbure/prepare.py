"""Preparing a quarter: registry + series store in, readings, findings and files out (the I/O side)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cloud.carbure.checks import Finding, check_readings
from cloud.carbure.period import Quarter
from cloud.carbure.quarterly import contexts, file_rows, summary_csv, summary_rows, summary_text, write_quarterly
from cloud.carbure.readings import MAX_AGE_S, MeterSeries, PointReading, point_reading
from cloud.carbure.registry import Registry
from cloud.stores import SeriesStore
from quartier.series import Direction

LOOKBACK_S = 400 * 86400
"""How far before the previous reading the store is read, to say since when a meter is silent. [s]"""


@dataclass(frozen=True)
class QuarterResult:
    """A prepared quarter: every registered point's reading and the checks' findings."""

    quarter: Quarter
    readings: list[PointReading]
    findings: list[Finding]


def compute_quarter(
    registry: Registry, store: SeriesStore, quarter: Quarter, max_age_s: int = MAX_AGE_S
) -> QuarterResult:
    """Read each point's meters from ``store`` and compute its reading for ``quarter``, then run the checks.

    ``max_age_s``: see :func:`~cloud.carbure.readings.point_reading`. [s]
    """
    boundary = quarter.boundary_utc
    readings: list[PointReading] = []
    for pt in registry.points():
        links = registry.links(pt.point_id)
        previous = registry.last_accepted(pt.point_id, before=boundary)
        since = min([x.installed_at for x in links] + [quarter.start_utc]
                    + ([previous.reading_at] if previous else [])) - LOOKBACK_S
        series = {
            (x.gateway_id, x.meter_id): MeterSeries.from_intervals(
                store.read_intervals(x.gateway_id, x.meter_id, max(since, x.installed_at - LOOKBACK_S), boundary,
                                     Direction.IMPORT))
            for x in links
        }
        readings.append(point_reading(pt, links, series, quarter, previous, max_age_s))
    findings = check_readings(file_rows(readings), contexts(readings), quarter)
    return QuarterResult(quarter, readings, findings)


def write_outputs(result: QuarterResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``carbure-2025Q1.xlsx``, ``carbure-2025Q1-summary.csv`` and ``.txt`` in ``out_dir``; their paths."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    q = result.quarter
    paths = {
        "xlsx": d / f"carbure-{q}.xlsx",
        "summary_csv": d / f"carbure-{q}-summary.csv",
        "summary_txt": d / f"carbure-{q}-summary.txt",
    }
    write_quarterly(paths["xlsx"], file_rows(result.readings), q)
    paths["summary_csv"].write_text(summary_csv(summary_rows(result.readings, result.findings)), encoding="utf-8")
    paths["summary_txt"].write_text(summary_text(q, result.readings, result.findings), encoding="utf-8")
    return paths
