"""The charge-point registry: what CarbuRe knows of each point, and which gateway meter measures it.

A :class:`ChargePoint` mirrors one row of CarbuRe's registration file. A
:class:`MeterLink` says which meter (gateway id, meter id) measured the point
from ``installed_at`` on; a point has one link per meter it ever had, so a
replaced meter keeps its history. :class:`AcceptedReading` is a quarterly
index CarbuRe accepted: the next quarter's "previous index".

Persisted in one SQLite file (WAL, see :func:`quartier.sqlite.connect`).
Energies and indexes are stored as integers [Wh]; times as UTC epoch seconds;
calendar dates (installation, registration reading) as ISO ``YYYY-MM-DD``.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from cloud.carbure.errors import RegistryError
from quartier.sqlite import connect


class CurrentType(str, enum.Enum):
    """Current delivered by a charge point."""

    AC = "AC"
    DC = "DC"


@dataclass(frozen=True)
class ChargePoint:
    """One charge point as registered on CarbuRe.

    Attributes:
        point_id: ``id_pdc_itinerance`` of the national IRVE open data (e.g. ``FRQRTE0001A``).
        installed_on: installation date (01/01/2022 if earlier).
        mid_certificate: number of the meter's MID type-examination certificate.
        measure_date: date of the index reading given at registration.
        measure_energy_wh: cumulative index at ``measure_date``. [Wh]
        prm: the distribution network's metering point (PRM) feeding the station.
        current_type: AC or DC.
        article2: the station is subject to article 2 of decree 2022-1330
            (such points are left out of the quarterly readings file).
        nominal_power_kw: nominal power. [kW]
        station_id: ``id_station_itinerance``; from the meter mapping, "" if unknown.
    """

    point_id: str
    installed_on: date
    mid_certificate: str
    measure_date: date
    measure_energy_wh: int
    prm: str
    current_type: CurrentType
    article2: bool
    nominal_power_kw: Decimal
    station_id: str = ""


@dataclass(frozen=True)
class MeterLink:
    """The gateway meter that measures a charge point from ``installed_at`` on.

    Attributes:
        point_id: the charge point.
        gateway_id, meter_id: the meter's identity in the series store.
        meter_model: the meter's model (e.g. ``ABB B23 312``).
        mid_meter_id: the meter's own MID serial number.
        initial_index_wh: the meter's import index when it started measuring the point. [Wh]
        installed_at: when it started measuring the point. [s since epoch, UTC]
        station_id: ``id_station_itinerance`` of the point's station.
    """

    point_id: str
    gateway_id: str
    meter_id: str
    meter_model: str
    mid_meter_id: str
    initial_index_wh: int
    installed_at: int
    station_id: str


@dataclass(frozen=True)
class AcceptedReading:
    """A quarterly index accepted by CarbuRe: the starting point of the next quarter.

    Attributes:
        point_id: the charge point.
        quarter: e.g. ``2025Q1``.
        reading_at: time of the index. [s since epoch, UTC]
        index_wh: the cumulative index read on ``meter_id``. [Wh]
        gateway_id, meter_id: the meter the index was read on.
    """

    point_id: str
    quarter: str
    reading_at: int
    index_wh: int
    gateway_id: str
    meter_id: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS charge_points (
    point_id TEXT PRIMARY KEY,
    installed_on TEXT NOT NULL,
    mid_certificate TEXT NOT NULL,
    measure_date TEXT NOT NULL,
    measure_energy_wh INTEGER NOT NULL,
    prm TEXT NOT NULL,
    current_type TEXT NOT NULL,
    article2 INTEGER NOT NULL,
    nominal_power_kw TEXT NOT NULL,
    station_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meter_links (
    point_id TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    meter_id TEXT NOT NULL,
    meter_model TEXT NOT NULL,
    mid_meter_id TEXT NOT NULL,
    initial_index_wh INTEGER NOT NULL,
    installed_at INTEGER NOT NULL,
    station_id TEXT NOT NULL,
    PRIMARY KEY (point_id, installed_at)
);
CREATE TABLE IF NOT EXISTS accepted_readings (
    point_id TEXT NOT NULL,
    quarter TEXT NOT NULL,
    reading_at INTEGER NOT NULL,
    index_wh INTEGER NOT NULL,
    gateway_id TEXT NOT NULL,
    meter_id TEXT NOT NULL,
    PRIMARY KEY (point_id, quarter)
);
"""


_UPSERT_POINT = """
INSERT INTO charge_points VALUES (?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (point_id) DO UPDATE SET
    installed_on = excluded.installed_on,
    mid_certificate = excluded.mid_certificate,
    measure_date = excluded.measure_date,
    measure_energy_wh = excluded.measure_energy_wh,
    prm = excluded.prm,
    current_type = excluded.current_type,
    article2 = excluded.article2,
    nominal_power_kw = excluded.nominal_power_kw,
    station_id = CASE WHEN excluded.station_id != '' THEN excluded.station_id ELSE charge_points.station_id END
"""


def _point_row(p: ChargePoint) -> tuple[object, ...]:
    return (
        p.point_id, p.installed_on.isoformat(), p.mid_certificate, p.measure_date.isoformat(), p.measure_energy_wh,
        p.prm, p.current_type.value, int(p.article2), str(p.nominal_power_kw), p.station_id,
    )


def _point_of(row: tuple[object, ...]) -> ChargePoint:
    pid, inst, mid, mdate, menergy, prm, ctype, art2, power, station = row
    return ChargePoint(
        str(pid), date.fromisoformat(str(inst)), str(mid), date.fromisoformat(str(mdate)), int(str(menergy)),
        str(prm), CurrentType(ctype), bool(art2), Decimal(str(power)), str(station),
    )


class Registry:
    """Charge points, their meter links and accepted readings in one SQLite file; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = connect(path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Charge points

    def upsert_points(self, points: Iterable[ChargePoint]) -> int:
        """Insert or update charge points (by ``point_id``), all or nothing; returns how many.

        A blank ``station_id`` (the registration file has none) keeps the one the meter mapping set.
        """
        rows = [_point_row(p) for p in points]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_UPSERT_POINT, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return len(rows)

    def points(self) -> list[ChargePoint]:
        """Every registered point, sorted by id."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM charge_points ORDER BY point_id").fetchall()
        return [_point_of(r) for r in rows]

    def point(self, point_id: str) -> ChargePoint:
        with self._lock:
            row = self._db.execute("SELECT * FROM charge_points WHERE point_id = ?", (point_id,)).fetchone()
        if row is None:
            raise RegistryError(f"registry {self.path}: charge point {point_id!r} is not registered")
        return _point_of(row)

    # Meter links

    def set_links(self, links: Iterable[MeterLink]) -> int:
        """Insert or replace meter links (by point and ``installed_at``), all or nothing.

        Each link's point must be registered (RegistryError naming it otherwise).
        The station of the latest link is copied to the charge point.
        """
        links = sorted(links, key=lambda x: (x.point_id, x.installed_at))
        with self._lock:
            known = {r[0] for r in self._db.execute("SELECT point_id FROM charge_points")}
            unknown = sorted({x.point_id for x in links} - known)
            if unknown:
                raise RegistryError(
                    f"registry {self.path}: meter links name unregistered charge points: {', '.join(unknown)}"
                    " (import the registration file first)"
                )
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO meter_links VALUES (?,?,?,?,?,?,?,?)",
                    [(x.point_id, x.gateway_id, x.meter_id, x.meter_model, x.mid_meter_id, x.initial_index_wh,
                      x.installed_at, x.station_id) for x in links],
                )
                for x in links:  # sorted: the latest link of each point is written last
                    self._db.execute("UPDATE charge_points SET station_id = ? WHERE point_id = ?",
                                     (x.station_id, x.point_id))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return len(links)

    def links(self, point_id: str | None = None) -> list[MeterLink]:
        """Meter links (of one point, or all), by point then ``installed_at``."""
        sql = "SELECT * FROM meter_links"
        params: tuple[str, ...] = ()
        if point_id is not None:
            sql += " WHERE point_id = ?"
            params = (point_id,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY point_id, installed_at", params).fetchall()
        return [MeterLink(str(a), str(b), str(c), str(d), str(e), int(f), int(g), str(h))
                for a, b, c, d, e, f, g, h in rows]

    # Accepted readings

    def record_accepted(self, reading: AcceptedReading) -> None:
        """Record (or replace) the accepted reading of a point for a quarter."""
        r = reading
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO accepted_readings VALUES (?,?,?,?,?,?)",
                (r.point_id, r.quarter, r.reading_at, r.index_wh, r.gateway_id, r.meter_id),
            )

    def last_accepted(self, point_id: str, before: int | None = None) -> AcceptedReading | None:
        """The latest accepted reading of a point (strictly before ``before`` [s UTC] if given), or None."""
        sql = "SELECT * FROM accepted_readings WHERE point_id = ?"
        params: list[object] = [point_id]
        if before is not None:
            sql += " AND reading_at < ?"
            params.append(before)
        with self._lock:
            row = self._db.execute(sql + " ORDER BY reading_at DESC LIMIT 1", params).fetchone()
        if row is None:
            return None
        a, b, c, d, e, f = row
        return AcceptedReading(str(a), str(b), int(c), int(d), str(e), str(f))
