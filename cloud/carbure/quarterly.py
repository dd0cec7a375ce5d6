"""The quarterly readings file CarbuRe takes (xlsx), its read-back, and the human-readable summary.

File layout, row 1 headers, one point per row from row 2, sorted by point id;
only points *not* subject to article 2 of decree 2022-1330:

== ====================================================================
A  Identifiant du point de recharge communiqué à transport.data.gouv
B  Energie active totale soutirée lors du relevé précédent        [kWh]
C  Energie active totale soutirée au JJ/MM/AAAA (the reading date) [kWh]
D  Date du relevé (JJ/MM/AAAA)
== ====================================================================

B and C are numbers with 3 decimals; D is ``JJ/MM/AAAA`` text (the local
date of the index actually used). A point without a reading keeps C and D
blank, and the summary says why.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from cloud.carbure.cells import is_blank, kwh_to_wh, parse_date, text, wh_to_kwh
from cloud.carbure.checks import FileReading, Finding, PointContext
from cloud.carbure.errors import FileProblemsError
from cloud.carbure.period import Quarter, ddmmyyyy, paris_date, paris_text
from cloud.carbure.readings import PointReading
from cloud.carbure.xlsx import H_POINT, col_letter

H_PREVIOUS = "Energie active totale soutirée lors du relevé précédent"
H_DATE = "Date du relevé (JJ/MM/AAAA)"


def headers(quarter: Quarter) -> tuple[str, str, str, str]:
    """Row 1, columns A to D; C names the reading date (``au 01/04/2025`` for 2025Q1)."""
    return (H_POINT, H_PREVIOUS, f"Energie active totale soutirée au {ddmmyyyy(quarter.boundary_day)}", H_DATE)


def file_rows(readings: Sequence[PointReading]) -> list[FileReading]:
    """The rows the file holds for ``readings``: article-2 points left out, sorted by point id, rows from 2."""
    kept = sorted((r for r in readings if not r.point.article2), key=lambda r: r.point.point_id)
    return [
        FileReading(r.point.point_id, r.file_previous_wh, r.index_wh,
                    None if r.reading_at is None else paris_date(r.reading_at), row)
        for row, r in enumerate(kept, start=2)
    ]


def contexts(readings: Sequence[PointReading]) -> dict[str, PointContext]:
    """What the checks need to know of each point, from its computed reading."""
    return {
        r.point.point_id: PointContext(
            has_meter=bool(r.meter_id), nominal_power_kw=r.point.nominal_power_kw,
            previous_date=None if r.previous_at is None else paris_date(
                r.previous_at if not r.replacements else r.replacements[-1].installed_at),
        )
        for r in readings
    }


def write_quarterly(path: str | Path, rows: Sequence[FileReading], quarter: Quarter) -> None:
    """Write the CarbuRe quarterly file from :func:`file_rows`."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook has one sheet, active
    ws.title = f"Relevés {quarter}"
    ws.append(list(headers(quarter)))
    for r in rows:
        ws.append([
            r.point_id,
            None if r.previous_wh is None else float(wh_to_kwh(r.previous_wh)),
            None if r.index_wh is None else float(wh_to_kwh(r.index_wh)),
            None if r.reading_date is None else ddmmyyyy(r.reading_date),
        ])
        ws.cell(ws.max_row, 2).number_format = "0.000"
        ws.cell(ws.max_row, 3).number_format = "0.000"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def read_quarterly(path: str | Path, quarter: Quarter) -> list[FileReading]:
    """Rows of a quarterly file; every problem (header, number, date) as ``FILE: row R, column C (header): ...``."""
    from openpyxl import load_workbook

    p = Path(path)
    try:
        wb = load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:
        raise FileProblemsError(p, [f"{p}: not a readable xlsx file: {exc}"]) from None
    try:
        rows = [tuple(r) + (None,) * 4 for r in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()
    hs = headers(quarter)
    problems: list[str] = []
    if not rows:
        raise FileProblemsError(p, [f"{p}: the file is empty"])
    for c, h in enumerate(hs):
        if " ".join(text(rows[0][c]).split()) != h:
            problems.append(f"{p}: row 1, column {col_letter(c)} ({h}): header is {text(rows[0][c])!r}")
    out: list[FileReading] = []
    for r, row in enumerate(rows[1:], start=2):
        if all(is_blank(v) for v in row[:4]):
            continue
        vals: list[object] = [text(row[0]), None, None, None]
        if not vals[0]:
            problems.append(f"{p}: row {r}, column A ({hs[0]}): missing charge point id")
        for c, parse in ((1, kwh_to_wh), (2, kwh_to_wh), (3, parse_date)):
            if is_blank(row[c]):
                continue
            try:
                vals[c] = parse(row[c])
            except ValueError as exc:
                problems.append(f"{p}: row {r}, column {col_letter(c)} ({hs[c]}): {exc}")
        out.append(FileReading(str(vals[0]), vals[1], vals[2], vals[3], r))  # type: ignore[arg-type]
    if problems:
        raise FileProblemsError(p, problems)
    return out


SUMMARY_COLUMNS = (
    "level", "station_id", "point_id", "meter", "previous_kwh", "previous_at", "previous_source", "index_kwh",
    "reading_at", "kwh_used", "nominal_kw", "load_factor", "in_file", "warnings",
)


def _kwh(wh: int | None) -> str:
    return "" if wh is None else str(wh_to_kwh(wh))


def summary_rows(readings: Sequence[PointReading], findings: Sequence[Finding] = ()) -> list[dict[str, str]]:
    """One row per point (``level`` = point) then one per station (``level`` = station).

    A station's kWh used is the sum over its points, blank if any is unknown;
    its load factor is that sum over (sum of nominal powers x the longest
    elapsed time); warnings count its points' warnings and findings.
    """
    by_point: dict[str, list[str]] = {}
    for f in findings:
        by_point.setdefault(f.point_id, []).append(f"{f.check.value}: {f.message}")
    rows: list[dict[str, str]] = []
    stations: dict[str, list[PointReading]] = {}
    for r in sorted(readings, key=lambda x: (x.point.station_id, x.point.point_id)):
        pt = r.point
        stations.setdefault(pt.station_id, []).append(r)
        notes = [x.describe() for x in r.replacements] + list(r.warnings) + by_point.get(pt.point_id, [])
        rows.append({
            "level": "point", "station_id": pt.station_id, "point_id": pt.point_id,
            "meter": f"{r.gateway_id}/{r.meter_id}" if r.meter_id else "",
            "previous_kwh": _kwh(r.previous_wh),
            "previous_at": "" if r.previous_at is None else paris_text(r.previous_at),
            "previous_source": r.previous_source, "index_kwh": _kwh(r.index_wh),
            "reading_at": "" if r.reading_at is None else paris_text(r.reading_at),
            "kwh_used": _kwh(r.energy_wh), "nominal_kw": str(pt.nominal_power_kw),
            "load_factor": "" if r.load_factor is None else str(r.load_factor),
            "in_file": "no (article 2)" if pt.article2 else "yes", "warnings": " | ".join(notes),
        })
    for station, rs in sorted(stations.items()):
        energies = [r.energy_wh for r in rs]
        total = None if any(e is None for e in energies) else sum(e for e in energies if e is not None)
        power = sum((r.point.nominal_power_kw for r in rs), Decimal(0))
        spans = [r.reading_at - r.previous_at for r in rs if r.reading_at is not None and r.previous_at is not None]
        lf = ""
        if total is not None and spans and power > 0:
            lf = str((Decimal(total) * 3600 / (power * 1000 * max(spans))).quantize(Decimal("0.0001")))
        n_warn = sum(len(r.warnings) + len(r.replacements) + len(by_point.get(r.point.point_id, [])) for r in rs)
        rows.append({
            "level": "station", "station_id": station, "point_id": f"{len(rs)} point{'s' if len(rs) != 1 else ''}",
            "meter": "",
            "previous_kwh": "", "previous_at": "", "previous_source": "", "index_kwh": "", "reading_at": "",
            "kwh_used": _kwh(total), "nominal_kw": str(power), "load_factor": lf, "in_file": "",
            "warnings": f"{n_warn} warning{'s' if n_warn != 1 else ''}" if n_warn else "",
        })
    return rows


def summary_csv(rows: Sequence[Mapping[str, str]]) -> str:
    """The summary rows as CSV text (UTF-8, comma-separated, header first)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def summary_text(quarter: Quarter, readings: Sequence[PointReading], findings: Sequence[Finding]) -> str:
    """A short plain-text report: one line per point, its notes indented, then the findings."""
    lines = [f"CarbuRe readings {quarter}: reading date {ddmmyyyy(quarter.boundary_day)}, "
             f"due by {ddmmyyyy(quarter.deadline)}"]
    for row in summary_rows(readings, findings):
        if row["level"] == "station":
            lines.append(f"station {row['station_id'] or '(none)'}: {row['point_id']}, {row['kwh_used'] or '?'} kWh,"
                         f" load factor {row['load_factor'] or '?'}")
            continue
        index = f"index {row['index_kwh']} kWh at {row['reading_at']}" if row["index_kwh"] else "index MISSING"
        lines.append(f"  {row['point_id']}: {index}, {row['kwh_used'] or '?'} kWh used, "
                     f"load factor {row['load_factor'] or '?'}")
        for note in filter(None, row["warnings"].split(" | ")):
            lines.append(f"      {note}")
    lines.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}" + (":" if findings else ""))
    lines += [f"  {f}" for f in findings]
    return "\n".join(lines) + "\n"
