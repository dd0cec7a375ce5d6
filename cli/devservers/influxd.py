"""Run a throw-away InfluxDB 1.x server (``influxd``) on loopback, for tests and benchmarks.

Production uses the system's own InfluxDB (docs/operations.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from cli.devservers import free_port
from quartier.errors import QuartierError


class InfluxdError(QuartierError):
    """influxd is missing or did not start."""


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


def _pinged(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=1) as response:
            return response.status == 204
    except (urllib.error.URLError, OSError):
        return False


class Influxd:
    """An ``influxd`` with its files in ``workdir``, HTTP and RPC on free 127.0.0.1 ports."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @staticmethod
    def available() -> bool:
        return shutil.which("influxd") is not None

    def start(self, timeout_s: float = 20.0) -> Influxd:
        binary = shutil.which("influxd")
        if binary is None:
            raise InfluxdError("influxd is not installed (apt-get install influxdb)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        http_port = free_port()
        rpc_port = free_port()
        while rpc_port == http_port:
            rpc_port = free_port()
        config = self.workdir / "influxdb.conf"
        config.write_text(_config(self.workdir, http_port, rpc_port))
        self.url = f"http://127.0.0.1:{http_port}"
        with (self.workdir / "influxd.log").open("wb") as log:
            self.proc = subprocess.Popen([binary, "-config", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not _pinged(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {self.proc.returncode}" if self.proc.returncode is not None else "not answering"
                self.stop()
                raise InfluxdError(f"influxd at {self.url} {state} after start; log tail:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.workdir / "influxd.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
