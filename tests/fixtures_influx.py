"""Fixtures for a real InfluxDB 1.x server (``influxd``) on free loopback ports.

Without ``influxd`` the tests that need it are skipped, except when the ``CI``
environment variable is set: there they fail, so CI never silently skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from cli.devservers.influxd import Influxd

__all__ = ["influxdb_url", "influx_database"]


@pytest.fixture(scope="session")
def influxdb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL (``http://127.0.0.1:PORT``) of an ``influxd`` running for the whole session."""
    if not Influxd.available():
        if "CI" in os.environ:
            pytest.fail("influxd not installed and CI is set: install it (apt-get install influxdb)")
        pytest.skip("influxd not installed (apt-get install influxdb)")
    server = Influxd(tmp_path_factory.mktemp("influxd")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def influx_database() -> str:
    """A database name no other test uses (not created: the store creates it)."""
    return f"test_{uuid.uuid4().hex[:12]}"
