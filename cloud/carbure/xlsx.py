"""CarbuRe's registration file (xlsx): read into :class:`ChargePoint` records, write from them.

Layout (row 1 headers, one charge point per row from row 2): column A is
empty, then

====  ===========================================================================
B     Identifiant du point de recharge communiqué à transport.data.gouv
C     Date d'installation (ou 01/01/2022 si antérieur)
D     Numéro MID du certificat d'examen du type
E     Date du relevé
F     Energie active totale soutirée à la date du relevé  [kWh]
G     Numéro du point référence mesure du gestionnaire du réseau public ... (PRM)
H     (blank)
I     current type, AC or DC
J     station subject to article 2 of decree 2022-1330: oui/non
K     nominal power [kW]
====  ===========================================================================

Headers B to G must match (spaces and case aside); I to K are free text.
Reading collects every problem of the file, each as
``FILE: row R, column C (header): problem``, and raises them together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from cloud.carbure.cells import (
    is_blank,
    kwh_to_wh,
    parse_bool,
    parse_date,
    parse_decimal,
    text,
    wh_to_kwh,
)
from cloud.carbure.errors import FileProblemsError
from cloud.carbure.registry import ChargePoint, CurrentType

H_POINT = "Identifiant du point de recharge communiqué à transport.data.gouv"
H_INSTALLED = "Date d'installation (ou 01/01/2022 si antérieur)"
H_MID = "Numéro MID du certificat d'examen du type"
H_MEASURE_DATE = "Date du relevé"
H_MEASURE_ENERGY = "Energie active totale soutirée à la date du relevé"
H_PRM = (
    "Numéro du point référence mesure du gestionnaire du réseau public de distribution alimentant la station"
)
H_CURRENT = "Type de courant (AC/DC)"
H_ARTICLE2 = "Station soumise à l'article 2 du décret 2022-1330 (oui/non)"
H_POWER = "Puissance nominale (kW)"

HEADERS: tuple[str, ...] = ("", H_POINT, H_INSTALLED, H_MID, H_MEASURE_DATE, H_MEASURE_ENERGY, H_PRM, "",
                            H_CURRENT, H_ARTICLE2, H_POWER)
"""Row 1 of the registration file, columns A to K."""

_CHECKED_HEADERS = range(1, 7)  # B..G: CarbuRe's own wording
_EARLIEST_INSTALL = date(2022, 1, 1)


def col_letter(i: int) -> str:
    """0-based column index to its letter (0 → A)."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _norm(h: object) -> str:
    return " ".join(text(h).split()).casefold()


def _open_rows(path: Path) -> list[tuple[Any, ...]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise FileProblemsError(path, [f"{path}: file not found"]) from None
    except Exception as exc:  # openpyxl raises many kinds for a non-xlsx file
        raise FileProblemsError(path, [f"{path}: not a readable xlsx file: {exc}"]) from None
    try:
        return [tuple(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()


def read_registration(path: str | Path) -> list[ChargePoint]:
    """Charge points of a registration file, in file order.

    Blank rows are skipped. Every problem of the file (header text, missing or
    malformed cell, installation date before 01/01/2022, duplicate point id)
    is collected; :class:`FileProblemsError` lists them all.
    """
    p = Path(path)
    rows = _open_rows(p)
    problems: list[str] = []

    def where(r: int, c: int) -> str:
        head = HEADERS[c] if c < len(HEADERS) and HEADERS[c] else "blank column"
        return f"{p}: row {r}, column {col_letter(c)} ({head})"

    if not rows:
        raise FileProblemsError(p, [f"{p}: the file is empty (row 1 must hold the headers)"])
    header = rows[0] + (None,) * (len(HEADERS) - len(rows[0]))
    for c in _CHECKED_HEADERS:
        if _norm(header[c]) != _norm(HEADERS[c]):
            problems.append(f"{where(1, c)}: header is {text(header[c])!r}, expected {HEADERS[c]!r}")

    points: list[ChargePoint] = []
    first_row: dict[str, int] = {}
    for r, raw in enumerate(rows[1:], start=2):
        row = tuple(raw) + (None,) * (len(HEADERS) - len(raw))
        if all(is_blank(v) for v in row):
            continue
        bad = len(problems)

        def cell(c: int, parse: Any) -> Any:
            try:
                return parse(row[c])
            except ValueError as exc:
                problems.append(f"{where(r, c)}: {exc}")
                return None

        point_id = text(row[1])
        if not point_id:
            problems.append(f"{where(r, 1)}: missing charge point id (id_pdc_itinerance)")
        elif point_id in first_row:
            problems.append(f"{where(r, 1)}: charge point {point_id} already on row {first_row[point_id]}")
        else:
            first_row[point_id] = r
        installed = cell(2, parse_date)
        if installed is not None and installed < _EARLIEST_INSTALL:
            problems.append(f"{where(r, 2)}: {installed:%d/%m/%Y} is before 01/01/2022; write 01/01/2022")
        mid = text(row[3])
        if not mid:
            problems.append(f"{where(r, 3)}: missing MID type-examination certificate number")
        mdate = cell(4, parse_date)
        menergy = cell(5, lambda v: kwh_to_wh(v, "energy [kWh]"))
        prm = text(row[6])
        if not prm.isdigit() or len(prm) != 14:
            problems.append(f"{where(r, 6)}: PRM must be 14 digits, got {prm!r}")
        ctype = text(row[8]).upper()
        if ctype not in ("AC", "DC"):
            problems.append(f"{where(r, 8)}: current type must be AC or DC, got {text(row[8])!r}")
        art2 = cell(9, parse_bool)
        power = cell(10, lambda v: parse_decimal(v, "nominal power [kW]"))
        if power is not None and power <= 0:
            problems.append(f"{where(r, 10)}: nominal power must be above 0 kW, got {text(row[10])!r}")
        if len(problems) == bad:
            points.append(ChargePoint(point_id, installed, mid, mdate, menergy, prm, CurrentType(ctype), art2, power))
    if problems:
        raise FileProblemsError(p, problems)
    return points


def write_registration(path: str | Path, points: Iterable[ChargePoint]) -> None:
    """Write a registration file (dates as ``JJ/MM/AAAA`` text, kWh with 3 decimals)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook has one sheet, active
    ws.title = "Points de recharge"
    ws.append(list(HEADERS))
    for pt in points:
        row: Sequence[object] = (
            None, pt.point_id, f"{pt.installed_on:%d/%m/%Y}", pt.mid_certificate, f"{pt.measure_date:%d/%m/%Y}",
            float(wh_to_kwh(pt.measure_energy_wh)), pt.prm, None, pt.current_type.value,
            "oui" if pt.article2 else "non", float(pt.nominal_power_kw),
        )
        ws.append(list(row))
        ws.cell(ws.max_row, 6).number_format = "0.000"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
