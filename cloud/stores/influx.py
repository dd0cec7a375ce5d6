"""InfluxDB series store, through the InfluxDB 1.x HTTP API (``/write``, ``/query``).

Tested against InfluxDB 1.6.7 (Debian's ``influxdb`` package). InfluxDB 2.x and
3.x serve the same v1 ``/write`` and ``/query`` endpoints for compatibility:
there the database name must be mapped to a bucket (a DBRP mapping) and the
credentials are v1-compatible auth (2.x: ``influx v1 auth create``; 3.x: a
token as password). Those servers do not accept ``CREATE DATABASE`` or
``DELETE`` through the v1 API; see below for what that means.

Schema: measurement ``energy_interval``; tags ``gateway``, ``meter``,
``direction`` (``import``/``export``); fields
``wh``, ``index_start_wh``, ``index_end_wh`` (integers [Wh]), ``quality`` and
``method`` (strings; ``method`` absent from older gateways' points); timestamp =
interval start, written with precision ``s``. InfluxDB has no null, so an
unknown energy or index is an absent field.

Idempotence: a point with the same tags and timestamp replaces the old one
field by field, so fields the new point lacks would survive from the old one.
When an interval with an absent field replaces a stored point that has that
field, the store first deletes the old point (InfluxQL ``DELETE``), so the new
interval wins completely. That case (a known value becoming unknown) is rare;
on 2.x/3.x it raises :class:`StoreError` because their v1 API cannot delete.

Gateway and meter ids must be non-empty and contain no backslash or newline:
InfluxDB 1.x line protocol cannot carry those in tag values faithfully.

Config (``[store]`` table)::

    backend = "influxdb"
    url = "http://127.0.0.1:8086"   # required; http or https, optional path prefix
    database = "quartier"           # default "quartier"; created if missing
    username = "quartier"           # optional
    password = "..."                # optional
    timeout_s = 10                  # optional, per HTTP request [s]
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError, InfluxDBServerError

from quartier.errors import ConfigError, StoreError
from quartier.series import Direction, Interval, Method, Quality

MEASUREMENT = "energy_interval"
_INT_FIELDS = ("wh", "index_start_wh", "index_end_wh")
_WRITE_BATCH = 5000

_Errors = (InfluxDBClientError, InfluxDBServerError, requests.RequestException)


def quote_ident(name: str) -> str:
    """InfluxQL identifier: double quotes, with ``\\`` and ``"`` backslash-escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """InfluxQL string literal: single quotes, with ``\\`` and ``'`` backslash-escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _int_fields(iv: Interval) -> tuple[int | None, int | None, int | None]:
    return (iv.energy_wh, iv.index_start_wh, iv.index_end_wh)


def _check_tag(value: str, what: str) -> None:
    if not value or "\\" in value or "\n" in value:
        raise StoreError(
            f"{what} {value!r} cannot be stored in InfluxDB: it must be non-empty, without backslash or newline"
        )


class InfluxStore:
    """A :class:`~cloud.stores.SeriesStore` in an InfluxDB database (v1 HTTP API).

    Times are interval starts [s since epoch UTC]; energies and indexes are
    integers [Wh] that fit in a signed 64-bit integer. Creating the store
    creates ``database`` if missing; a server that refuses (non-admin user,
    InfluxDB 2.x/3.x) is tolerated, and the database must then exist.

    Every failure (connection refused, timeout, HTTP error, bad answer) raises
    :class:`StoreError` naming the URL and the operation. Thread-safe.
    """

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10,
        create: bool = True,
    ) -> None:
        """Connect to ``url`` (``http[s]://host[:port][/prefix]``, port default 8086); ``create`` False sends no
        ``CREATE DATABASE`` (for commands that only read).

        Raises ValueError for a malformed URL or one that carries credentials.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"InfluxDB URL {url!r} must look like http://host:8086")
        if parts.username or parts.password:
            raise ValueError(f"InfluxDB URL {url!r} must not contain credentials; use username/password")
        self.url = url
        self.database = database
        self._lock = threading.Lock()
        self._client = InfluxDBClient(
            host=parts.hostname,
            port=parts.port or 8086,
            username=username,
            password=password,
            database=database,
            ssl=parts.scheme == "https",
            verify_ssl=parts.scheme == "https",
            timeout=timeout_s,
            retries=1,
            path=parts.path.rstrip("/"),
        )
        if not create:
            return
        try:
            self._client.create_database(database)
        except InfluxDBClientError as exc:
            if exc.code == 401:
                raise self._error("authenticating", exc) from exc
        except _Errors as exc:
            raise self._error(f"creating database {database!r}", exc) from exc

    def _error(self, operation: str, exc: Exception) -> StoreError:
        return StoreError(f"InfluxDB at {self.url}: {operation} failed: {exc}")

    def _query(self, q: str, operation: str, method: str = "GET") -> Any:
        try:
            return self._client.query(q, epoch="s", method=method)
        except _Errors as exc:
            raise self._error(operation, exc) from exc

    def _where(
        self, gateway_id: str, meter_id: str, direction: Direction, start: int | None, end: int | None
    ) -> str:
        cond = (
            f"{quote_ident('gateway')} = {quote_literal(gateway_id)}"
            f" AND {quote_ident('meter')} = {quote_literal(meter_id)}"
            f" AND {quote_ident('direction')} = {quote_literal(Direction(direction).value)}"
        )
        if start is not None:
            cond += f" AND time >= {int(start)}s"
        if end is not None:
            cond += f" AND time < {int(end)}s"
        return cond

    def _select(
        self, gateway_id: str, meter_id: str, direction: Direction, start: int | None, end: int | None
    ) -> list[Interval]:
        columns = ", ".join(quote_ident(c) for c in (*_INT_FIELDS, "quality", "method"))
        q = (
            f"SELECT {columns} FROM {quote_ident(MEASUREMENT)}"
            f" WHERE {self._where(gateway_id, meter_id, direction, start, end)} ORDER BY time ASC"
        )
        operation = f"reading {gateway_id}/{meter_id} ({Direction(direction).value})"
        result = self._query(q, operation)
        try:
            return [
                Interval(
                    meter_id,
                    int(p["time"]),
                    p["wh"],
                    p["index_start_wh"],
                    p["index_end_wh"],
                    Quality(p["quality"]),
                    Direction(direction),
                    Method(p["method"]) if p.get("method") else None,
                )
                for p in result.get_points()
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._error(f"{operation} (unexpected stored point)", exc) from exc

    def _stale_point_deletes(self, gateway_id: str, batch: Sequence[Interval]) -> Iterator[str]:
        """DELETE statements for stored points holding a value that ``batch`` makes unknown."""
        by_series: dict[tuple[str, Direction], list[Interval]] = {}
        for iv in batch:
            if None in _int_fields(iv):
                by_series.setdefault((iv.meter_id, iv.direction), []).append(iv)
        for (meter_id, direction), ivs in by_series.items():
            starts = [iv.start for iv in ivs]
            stored = {
                old.start: old for old in self._select(gateway_id, meter_id, direction, min(starts), max(starts) + 1)
            }
            for iv in ivs:
                old = stored.get(iv.start)
                pairs = zip(_int_fields(iv), _int_fields(old)) if old is not None else ()
                if any(new is None and prev is not None for new, prev in pairs):
                    yield (
                        f"DELETE FROM {quote_ident(MEASUREMENT)}"
                        f" WHERE {self._where(gateway_id, meter_id, direction, None, None)} AND time = {iv.start}s"
                    )

    def write_intervals(self, gateway_id: str, intervals: Sequence[Interval]) -> None:
        """Write ``intervals``; idempotent per (gateway, meter, direction, start), a later duplicate wins.

        Not atomic: a failure part-way may leave some points written; writing
        the batch again completes it.
        """
        _check_tag(gateway_id, "gateway id")
        batch = list({(iv.meter_id, iv.direction, iv.start): iv for iv in intervals}.values())
        for iv in batch:
            _check_tag(iv.meter_id, "meter id")
        points = [
            {
                "measurement": MEASUREMENT,
                "tags": {"gateway": gateway_id, "meter": iv.meter_id, "direction": iv.direction.value},
                "time": iv.start,
                "fields": {
                    **{k: int(v) for k, v in zip(_INT_FIELDS, _int_fields(iv)) if v is not None},
                    "quality": iv.quality.value,
                    **({"method": iv.method.value} if iv.method is not None else {}),
                },
            }
            for iv in batch
        ]
        if not points:
            return
        with self._lock:
            deletes = list(self._stale_point_deletes(gateway_id, batch))
            if deletes:
                self._query("; ".join(deletes), f"deleting {len(deletes)} replaced points", method="POST")
            try:
                self._client.write_points(points, time_precision="s", batch_size=_WRITE_BATCH)
            except _Errors as exc:
                raise self._error(f"writing {len(points)} intervals of gateway {gateway_id!r}", exc) from exc

    def read_intervals(
        self,
        gateway_id: str,
        meter_id: str,
        start: int | None = None,
        end: int | None = None,
        direction: Direction = Direction.IMPORT,
    ) -> list[Interval]:
        """Intervals of one meter and direction with ``start <= interval.start < end``, oldest first.

        ``start``/``end`` [s since epoch UTC]; None means unbounded. An unknown
        meter, or ``end <= start``, gives an empty list.
        """
        with self._lock:
            return self._select(gateway_id, meter_id, direction, start, end)

    def meters(self) -> list[tuple[str, str]]:
        """Every (gateway id, meter id) pair with at least one point, sorted."""
        q = (
            f"SELECT last({quote_ident('quality')}) FROM {quote_ident(MEASUREMENT)}"
            f" GROUP BY {quote_ident('gateway')}, {quote_ident('meter')}"
        )
        with self._lock:
            result = self._query(q, "listing meters")
        try:
            return sorted((tags["gateway"], tags["meter"]) for _, tags in result.keys())
        except (KeyError, TypeError) as exc:
            raise self._error("listing meters (unexpected answer)", exc) from exc

    def close(self) -> None:
        """Close the HTTP session; calling it again does nothing."""
        with self._lock:
            self._client.close()


def _opt_str(options: Mapping[str, Any], key: str, config_path: str) -> str | None:
    value = options.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(config_path, f"store.{key}", f"must be a non-empty string, got {value!r}")
    return value


def open_influx_store(options: Mapping[str, Any], config_path: str, create: bool = True) -> InfluxStore:
    """Build an :class:`InfluxStore` from ``[store]``; ``url`` is required."""
    url = _opt_str(options, "url", config_path)
    if url is None:
        raise ConfigError(
            config_path, "store.url", "missing: the InfluxDB backend needs the server URL, e.g. http://127.0.0.1:8086"
        )
    database = _opt_str(options, "database", config_path) or "quartier"
    timeout_s = options.get("timeout_s", 10)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ConfigError(config_path, "store.timeout_s", f"must be a positive number of seconds, got {timeout_s!r}")
    try:
        return InfluxStore(
            url,
            database,
            username=_opt_str(options, "username", config_path),
            password=_opt_str(options, "password", config_path),
            timeout_s=float(timeout_s),
            create=create,
        )
    except ValueError as exc:
        raise ConfigError(config_path, "store.url", str(exc)) from exc

