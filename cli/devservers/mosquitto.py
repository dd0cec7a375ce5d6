"""Run a local Mosquitto broker (for the demo and the tests).

In production the broker is the system's own Mosquitto, configured as in
docs/operations.md; this module only starts a throw-away one on loopback.

Two modes: plain (the default: anonymous, no TLS, for the demo and most tests)
and secure (``tls=BrokerTls(...)``): one TLS listener that requires a client
certificate signed by the site CA, takes its CN as the username and applies the
ACL of :func:`quartier.topics.acl_text` (each gateway its own topics, the cloud all gateways).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cli.devservers import free_port
from quartier.broker import config_text
from quartier.errors import QuartierError
from quartier.topics import acl_text


class BrokerError(QuartierError):
    """Mosquitto is missing or did not start."""


@dataclass(frozen=True)
class BrokerTls:
    """Files of a TLS listener: the CA that signs client certificates, and the broker's own certificate and key."""

    ca: Path
    cert: Path
    key: Path


class Mosquitto:
    """A Mosquitto process listening on 127.0.0.1:``port`` with its files in ``workdir``.

    With ``tls`` the only listener is TLS (1.2 or later) and requires a client certificate from ``tls.ca``; the
    certificate's CN is the username and ``acl`` (default :func:`acl_text`) decides who may use which topic.
    Without ``tls`` (the default) the listener is plain and anonymous, as before.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_config: str = "",
        tls: BrokerTls | None = None,
        acl: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.extra_config = extra_config
        self.tls = tls
        self.acl = acl if acl is not None else (acl_text() if tls else None)
        self.proc: subprocess.Popen[bytes] | None = None

    def config_text(self) -> str:
        """The mosquitto.conf this broker runs with (the ACL file, if any, is ``workdir/acl``)."""
        acl_file = self.workdir / "acl"
        if self.tls is None:
            lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
            if self.acl is not None:
                lines.append(f"acl_file {acl_file}")
        else:
            for f in (self.tls.ca, self.tls.cert, self.tls.key):
                if not Path(f).is_file():
                    raise BrokerError(f"TLS file {f} does not exist (create it with quartier.pki.create_site_pki)")
            # The site's own configuration (quartier pki broker writes the same), on loopback.
            lines = config_text(self.tls.ca, self.tls.cert, self.tls.key, acl_file, self.port, "127.0.0.1").splitlines()
        if (self.tls is not None or self.acl is not None) and hasattr(os, "geteuid") and os.geteuid() == 0:
            # Started as root, mosquitto would become user "mosquitto", which cannot read the ACL and keys in a
            # private temporary folder; this throw-away loopback broker stays root instead.
            lines.append("user root")
        lines += ["persistence false", "max_queued_messages 100000", self.extra_config]
        return "\n".join(lines) + "\n"

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if exe is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        if self.acl is not None:
            (self.workdir / "acl").write_text(self.acl)
        conf.write_text(self.config_text())
        log = open(self.workdir / "mosquitto.log", "wb")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"mosquitto exited at start: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on port {self.port} within {timeout_s} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.workdir / "mosquitto.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
