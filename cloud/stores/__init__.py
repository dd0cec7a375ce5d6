"""The series store backends, in one table: ``[store] backend`` picks a factory here.

:mod:`cloud.stores.base` holds the :class:`SeriesStore` interface; :mod:`cloud.stores.sqlite` (the embedded
default) and :mod:`cloud.stores.influx` (InfluxDB 1.x HTTP API) implement it. To add a backend, write its module
beside them and add one line to :data:`BACKENDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cloud.stores.base import SeriesStore
from cloud.stores.influx import open_influx_store
from cloud.stores.sqlite import open_sqlite_store
from quartier.config import Table
from quartier.errors import ConfigError

__all__ = ["BACKENDS", "SeriesStore", "open_store", "store_options"]

BACKENDS: dict[str, Callable[[Mapping[str, Any], str, bool], SeriesStore]] = {
    "sqlite": open_sqlite_store,
    "influxdb": open_influx_store,
}
"""Backend name -> factory building the store from its ``[store]`` table, the config file's path, and whether
it may create the database (``create``)."""

DEFAULT_SQLITE_FILE = "series.sqlite"
"""The embedded store's file, in the cloud's ``state_dir`` unless ``[store] path`` says otherwise."""


def store_options(table: Table, state_dir: Path | None = None) -> dict[str, Any]:
    """The options of a ``[store]`` table, for :func:`open_store`; its backend checks them when it opens.

    A SQLite ``path`` is taken from the config file's folder when relative; without one, the embedded store is
    ``state_dir/series.sqlite`` when a ``state_dir`` is given (a cloud config), else the backend says it is missing.
    """
    options = table.raw()
    if options.get("backend", "sqlite") == "sqlite":
        if "path" in options:
            options["path"] = str(table.path_("path"))
        elif state_dir is not None:
            options["path"] = str(state_dir / DEFAULT_SQLITE_FILE)
    return options


def open_store(options: Mapping[str, Any], config_path: str = "<config>", *, create: bool = True) -> SeriesStore:
    """Open the backend named by ``options['backend']`` (default ``sqlite``).

    ``create`` False is for commands that only read: a database that does not exist is then an error naming it
    (a mistyped path must not read as an empty store), and nothing is created on the server.
    """
    name = options.get("backend", "sqlite")
    factory = BACKENDS.get(name)
    if factory is None:
        raise ConfigError(config_path, "store.backend",
                          f"unknown store backend {name!r}; choose one of {sorted(BACKENDS)}")
    return factory(options, config_path, create)
