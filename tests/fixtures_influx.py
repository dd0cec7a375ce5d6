"""Fixtures for a real InfluxDB 1.x server (``influxd``) on free loopback ports.

Without ``influxd`` the tests that need it are skipped, except when the ``CI``
environment variable is set: there they fail, so CI never silently skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["influxdb_url", "influx_database"]

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0


def _config(root: Path, http_port: int, rpc_port: int) -> str:
    def path(name: str) -> str:
        return json.dumps(str(root / name))

    # Debian's 1.6.7 knows "reporting-enabled" (default false); upstream 1.x knows "reporting-disabled".
    return f"""\
reporting-disabled = true
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = {path("meta")}

[data]
  dir = {path("data")}
  wal-dir = {path("wal")}
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false

[logging]
  suppress-logo = true
"""


def _log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _pinged(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=1) as response:
            return response.status == 204
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def influxdb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL (``http://127.0.0.1:PORT``) of an ``influxd`` running for the whole session."""
    binary = shutil.which("influxd")
    if binary is None:
        if "CI" in os.environ:
            pytest.fail("influxd not installed and CI is set: install it (apt-get install influxdb)")
        pytest.skip("influxd not installed (apt-get install influxdb)")
    from tests.conftest import free_port  # here, not at the top: conftest star-imports this module

    root = tmp_path_factory.mktemp("influxd")
    http_port = free_port()
    rpc_port = free_port()
    while rpc_port == http_port:
        rpc_port = free_port()
    config = root / "influxdb.conf"
    config.write_text(_config(root, http_port, rpc_port))
    log = root / "influxd.log"
    url = f"http://127.0.0.1:{http_port}"
    with log.open("wb") as log_file:
        proc = subprocess.Popen([binary, "-config", str(config)], stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _pinged(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {proc.returncode}" if proc.returncode is not None else "not answering"
                raise RuntimeError(f"influxd at {url} {state} after start; log tail:\n{_log_tail(log)}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def influx_database() -> str:
    """A database name no other test uses (not created: the store creates it)."""
    return f"test_{uuid.uuid4().hex[:12]}"
