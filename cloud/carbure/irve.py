"""The national IRVE consolidated file (schema "IRVE statique", transport.data.gouv.fr): read it, check the registry.

The file is a comma-separated UTF-8 CSV with one row per charge point and a
header row; only ``id_pdc_itinerance``, ``id_station_itinerance`` and
``puissance_nominale`` [kW] are used here (other columns, and their order, may
vary between releases). The user supplies a local copy; a three-point sample
ships as ``cloud/carbure/data/irve_sample.csv``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from cloud.carbure.cells import parse_decimal
from cloud.carbure.errors import FileProblemsError
from cloud.carbure.registry import ChargePoint

SAMPLE = Path(__file__).parent / "data" / "irve_sample.csv"
"""A small IRVE consolidated file with the national schema's header, for tests and trials."""

REQUIRED_COLUMNS = ("id_pdc_itinerance", "id_station_itinerance", "puissance_nominale")


@dataclass(frozen=True)
class IrvePoint:
    """One charge point of the IRVE file: ids and nominal power [kW] (None when blank or unreadable)."""

    point_id: str
    station_id: str
    nominal_power_kw: Decimal | None


def read_irve(path: str | Path) -> dict[str, IrvePoint]:
    """IRVE points by ``id_pdc_itinerance``.

    Raises FileProblemsError when the file cannot be read or lacks a required
    column. A row without a point id is skipped; a repeated id keeps its last
    row (the consolidated file holds a few duplicates). An unreadable power is
    kept as None rather than failing the whole national file.
    """
    p = Path(path)
    try:
        f = p.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise FileProblemsError(p, [f"{p}: cannot read the file: {exc.strerror}"]) from None
    with f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise FileProblemsError(p, [
                    f"{p}: row 1: missing column {c} (is this the IRVE consolidated CSV, comma-separated?)"
                    for c in missing
                ])
            i_pdc, i_sta, i_pow = (header.index(c) for c in REQUIRED_COLUMNS)
            out: dict[str, IrvePoint] = {}
            for row in reader:
                if len(row) <= i_pdc or not row[i_pdc].strip():
                    continue
                power: Decimal | None
                try:
                    power = parse_decimal(row[i_pow], "puissance_nominale") if len(row) > i_pow else None
                except ValueError:
                    power = None
                sta = row[i_sta].strip() if len(row) > i_sta else ""
                out[row[i_pdc].strip()] = IrvePoint(row[i_pdc].strip(), sta, power)
        except UnicodeDecodeError:
            raise FileProblemsError(p, [f"{p}: not UTF-8 text"]) from None
    return out


@dataclass(frozen=True)
class IrveFinding:
    """A disagreement between the registry and the IRVE file about one point."""

    point_id: str
    problem: str

    def __str__(self) -> str:
        return f"{self.point_id}: {self.problem}"


def check_against_irve(points: Iterable[ChargePoint], irve: dict[str, IrvePoint]) -> list[IrveFinding]:
    """Registered points missing from the IRVE file, or whose station or nominal power differ there.

    Pure; findings sorted by point id. A blank station id in the registry is not compared.
    """
    out: list[IrveFinding] = []
    for pt in sorted(points, key=lambda x: x.point_id):
        ref = irve.get(pt.point_id)
        if ref is None:
            out.append(IrveFinding(pt.point_id, "missing from the IRVE consolidated file (id_pdc_itinerance); "
                                                "CarbuRe requires the same ids as transport.data.gouv.fr"))
            continue
        if pt.station_id and ref.station_id and pt.station_id != ref.station_id:
            out.append(IrveFinding(pt.point_id, f"station {pt.station_id} here, {ref.station_id} in the IRVE file"))
        if ref.nominal_power_kw is not None and ref.nominal_power_kw != pt.nominal_power_kw:
            out.append(IrveFinding(pt.point_id, f"nominal power {pt.nominal_power_kw} kW here, "
                                                f"{ref.nominal_power_kw} kW in the IRVE file"))
    return out


__all__ = ["SAMPLE", "IrveFinding", "IrvePoint", "check_against_irve", "read_irve"]
