"""Conformance suite of the series store backends (SQLite file, real influxd)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from influxdb import InfluxDBClient

from cloud.stores import SeriesStore, open_store
from cloud.stores.influx import InfluxStore
from quartier.errors import ConfigError, StoreError
from quartier.series import INTERVAL_S, Direction, Interval, Method, Quality, parse_utc
from tests.conftest import free_port

T0 = parse_utc("2026-01-19T00:00:00Z")
M, I, X = Quality.MEASURED, Quality.INTERPOLATED, Quality.MISSING


@dataclass
class Backend:
    store: SeriesStore
    row_count: Callable[[], int]
    """Rows as the backend itself counts them, bypassing the store's reads."""


def _sqlite(tmp_path: Path) -> Backend:
    path = str(tmp_path / "series.sqlite")

    def row_count() -> int:
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM intervals").fetchone()[0])

    return Backend(open_store({"backend": "sqlite", "path": path}), row_count)


def _influx(url: str, database: str) -> Backend:
    client = InfluxDBClient("127.0.0.1", int(url.rsplit(":", 1)[1]), database=database)

    def row_count() -> int:
        points = list(client.query('SELECT COUNT("quality") FROM "energy_interval"').get_points())
        return int(points[0]["count"]) if points else 0

    return Backend(open_store({"backend": "influxdb", "url": url, "database": database}), row_count)


@pytest.fixture(params=["sqlite", pytest.param("influxdb", marks=pytest.mark.influx)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        b = _sqlite(tmp_path)
    else:
        b = _influx(request.getfixturevalue("influxdb_url"), request.getfixturevalue("influx_database"))
    yield b
    b.store.close()


def iv(meter: str, k: int, wh: int | None, i0: int | None, i1: int | None, q: Quality = M) -> Interval:
    return Interval(meter, T0 + k * INTERVAL_S, wh, i0, i1, q)


BATCH_A = [
    iv("m1", 0, 120, 1_000_000, 1_000_120),
    iv("m1", 1, 95, 1_000_120, 1_000_215, I),
    iv("m1", 2, None, 1_000_215, None, X),
    iv("m1", 3, None, None, None, X),
    iv("m-2 'x\"", 0, 0, 7, 7),
    iv("m-2 'x\"", 1, 2**40, 7, 7 + 2**40),
]
BATCH_B = [iv("m1", 0, 11, 50, 61), iv("m1", 1, 12, 61, 73)]


def write_both(store: SeriesStore) -> None:
    store.write_intervals("gw-a", BATCH_A)
    store.write_intervals("gw-b", BATCH_B)


def test_round_trip_two_gateways(backend: Backend) -> None:
    s = backend.store
    write_both(s)
    assert s.read_intervals("gw-a", "m1") == BATCH_A[:4]
    assert s.read_intervals("gw-a", "m-2 'x\"") == BATCH_A[4:]
    assert s.read_intervals("gw-b", "m1") == BATCH_B
    assert s.read_intervals("gw-b", "m-2 'x\"") == []
    assert s.read_intervals("gw-c", "m1") == []
    assert all(type(v) is int for i in s.read_intervals("gw-a", "m-2 'x\"") for v in (i.energy_wh, i.index_end_wh))
    assert backend.row_count() == 8


def test_rewrite_is_idempotent(backend: Backend) -> None:
    s = backend.store
    write_both(s)
    write_both(s)
    s.write_intervals("gw-a", list(reversed(BATCH_A)))
    assert backend.row_count() == 8
    assert s.read_intervals("gw-a", "m1") == BATCH_A[:4]
    assert s.read_intervals("gw-b", "m1") == BATCH_B


def test_overwrite_new_wins(backend: Backend) -> None:
    s = backend.store
    write_both(s)
    changed = [
        iv("m1", 0, 121, 1_000_000, 1_000_121, I),
        iv("m1", 1, None, 1_000_120, None, X),
        iv("m1", 2, 80, 1_000_215, 1_000_295),
        iv("m1", 3, None, None, None, X),
    ]
    s.write_intervals("gw-a", changed)
    assert s.read_intervals("gw-a", "m1") == changed
    s.write_intervals("gw-a", [iv("m1", 0, None, None, None, X)])
    assert s.read_intervals("gw-a", "m1")[0] == iv("m1", 0, None, None, None, X)
    s.write_intervals("gw-a", [iv("m1", 3, 1, 2, 3), iv("m1", 3, 4, 5, 9, I)])
    assert s.read_intervals("gw-a", "m1")[3] == iv("m1", 3, 4, 5, 9, I)
    unknown = [iv("m-2 'x\"", k, None, None, None, X) for k in (0, 1)]
    s.write_intervals("gw-a", unknown)
    assert s.read_intervals("gw-a", "m-2 'x\"") == unknown
    assert s.read_intervals("gw-b", "m1") == BATCH_B
    assert backend.row_count() == 8


def test_start_end_filter(backend: Backend) -> None:
    s = backend.store
    write_both(s)
    t = [T0 + k * INTERVAL_S for k in range(5)]
    assert s.read_intervals("gw-a", "m1", t[1], t[3]) == BATCH_A[1:3]
    assert s.read_intervals("gw-a", "m1", t[1] + 1, t[3] + 1) == BATCH_A[2:4]
    assert s.read_intervals("gw-a", "m1", start=t[2]) == BATCH_A[2:4]
    assert s.read_intervals("gw-a", "m1", end=t[1]) == BATCH_A[:1]
    assert s.read_intervals("gw-a", "m1", t[2], t[2]) == []
    assert s.read_intervals("gw-a", "m1", t[3], t[1]) == []
    assert s.read_intervals("gw-a", "m1", t[4]) == []


def test_meters(backend: Backend) -> None:
    assert backend.store.meters() == []
    write_both(backend.store)
    backend.store.write_intervals("gw-a", [])
    assert backend.store.meters() == [("gw-a", "m-2 'x\""), ("gw-a", "m1"), ("gw-b", "m1")]


def test_one_week_round_trip(backend: Backend) -> None:
    week = [iv("week", k, k % 97, 10_000 + k * k, 10_000 + k * k + k % 97, (M, I)[k % 2]) for k in range(672)]
    week[100] = iv("week", 100, None, None, None, X)
    backend.store.write_intervals("gw-w", week)
    assert backend.store.read_intervals("gw-w", "week") == week
    assert backend.row_count() == 672


def test_unknown_backend_is_config_error() -> None:
    with pytest.raises(ConfigError, match="'cassandra'") as info:
        open_store({"backend": "cassandra"}, "/etc/quartier/cloud.toml")
    assert info.value.key == "store.backend"
    assert info.value.path == "/etc/quartier/cloud.toml"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"backend": "sqlite"}, "store.path"),
        ({"backend": "sqlite", "path": 3}, "store.path"),
        ({"backend": "influxdb"}, "store.url"),
        ({"backend": "influxdb", "url": "ftp://h"}, "store.url"),
        ({"backend": "influxdb", "url": "http://127.0.0.1:1", "database": ["x"]}, "store.database"),
        ({"backend": "influxdb", "url": "http://127.0.0.1:1", "username": 7}, "store.username"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(options, "cloud.toml")
    assert info.value.key == key


def test_influx_closed_port_is_store_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreError, match=url):
        store = InfluxStore(url, "quartier", timeout_s=2)
        store.write_intervals("gw-a", BATCH_A)


@pytest.mark.influx
def test_influx_rejects_unstorable_ids(influxdb_url: str, influx_database: str) -> None:
    store = InfluxStore(influxdb_url, influx_database)
    with pytest.raises(StoreError, match="backslash"):
        store.write_intervals("gw-a", [iv("a\\b", 0, 1, 2, 3)])
    assert store.meters() == []


def test_import_and_export_of_one_meter_are_separate_series(backend: Backend) -> None:
    s = backend.store
    imported = iv("cp1", 0, 1850, 5_000_000, 5_001_850)
    exported = Interval("cp1", T0, 500, 4321, 4821, M, Direction.EXPORT)
    s.write_intervals("gw-1", [imported, exported])
    s.write_intervals("gw-1", [exported])  # idempotent per direction too
    assert s.read_intervals("gw-1", "cp1") == [imported]
    assert s.read_intervals("gw-1", "cp1", direction=Direction.EXPORT) == [exported]
    assert s.meters() == [("gw-1", "cp1")]
    assert backend.row_count() == 2
    missing = Interval("cp1", T0, None, 4321, None, X, Direction.EXPORT)
    s.write_intervals("gw-1", [missing])  # a known export becoming unknown leaves the import alone
    assert s.read_intervals("gw-1", "cp1", direction=Direction.EXPORT) == [missing]
    assert s.read_intervals("gw-1", "cp1") == [imported]


def test_estimated_quality_is_stored_as_such(backend: Backend) -> None:
    estimated = Interval("cp1", T0, 900, 840, 1740, Quality.ESTIMATED)
    backend.store.write_intervals("gw-1", [estimated])
    assert backend.store.read_intervals("gw-1", "cp1") == [estimated]


def test_quality_and_method_are_stored_for_each_fault(backend: Backend) -> None:
    """Every quality with the method that produced it; an older gateway's interval has no method."""
    ivs = [
        Interval("cp1", T0, 1850, 0, 1850, Quality.MEASURED, method=Method.INDEX_DIFFERENCE),
        Interval("cp1", T0 + 900, 900, 1850, 2750, Quality.INTERPOLATED, method=Method.LINEAR_INTERPOLATION),
        Interval("cp1", T0 + 1800, 900, 2750, 3650, Quality.ESTIMATED, method=Method.LINEAR_ESTIMATE),
        Interval("cp1", T0 + 2700, None, 3650, None, Quality.MISSING, method=Method.GAP_TOO_LONG),
        Interval("cp1", T0 + 3600, None, None, 12, Quality.MISSING, method=Method.INDEX_DECREASED),
        Interval("cp1", T0 + 4500, None, 12, None, Quality.MISSING, method=Method.INDEX_JUMP),
        Interval("cp1", T0 + 5400, 10, 12, 22, Quality.MEASURED),
    ]
    backend.store.write_intervals("gw-1", ivs)
    stored = backend.store.read_intervals("gw-1", "cp1")
    assert stored == ivs
    assert [i.method for i in stored] == [i.method for i in ivs]


def test_sqlite_store_made_before_methods_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE intervals (gateway_id TEXT NOT NULL, meter_id TEXT NOT NULL, direction TEXT NOT NULL,"
        " start INTEGER NOT NULL, energy_wh INTEGER NULL, index_start_wh INTEGER NULL, index_end_wh INTEGER NULL,"
        " quality TEXT NOT NULL, PRIMARY KEY (gateway_id, meter_id, direction, start))"
    )
    db.execute("INSERT INTO intervals VALUES ('gw-1', 'cp1', 'import', ?, 5, 0, 5, 'measured')", (T0,))
    db.commit()
    db.close()
    store = open_store({"backend": "sqlite", "path": str(path)})
    try:
        (old,) = store.read_intervals("gw-1", "cp1")
        assert old == Interval("cp1", T0, 5, 0, 5, Quality.MEASURED) and old.method is None
        new = Interval("cp1", T0 + 900, 5, 5, 10, Quality.MEASURED, method=Method.INDEX_DIFFERENCE)
        store.write_intervals("gw-1", [new])
        assert store.read_intervals("gw-1", "cp1", T0 + 900)[0].method is Method.INDEX_DIFFERENCE
    finally:
        store.close()


def test_a_reading_command_never_creates_a_sqlite_store(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "series.sqlite"
    with pytest.raises(ConfigError) as caught:
        open_store({"backend": "sqlite", "path": str(missing)}, "community.toml", create=False)
    assert caught.value.key == "store.path" and f"{missing} does not exist" in caught.value.problem
    assert not missing.parent.exists()


@pytest.mark.influx
def test_a_reading_command_sends_no_create_database(influxdb_url: str, influx_database: str) -> None:
    client = InfluxDBClient("127.0.0.1", int(influxdb_url.rsplit(":", 1)[1]))
    store = open_store({"backend": "influxdb", "url": influxdb_url, "database": influx_database}, create=False)
    store.close()
    assert influx_database not in {d["name"] for d in client.get_list_database()}
    open_store({"backend": "influxdb", "url": influxdb_url, "database": influx_database}).close()
    assert influx_database in {d["name"] for d in client.get_list_database()}
