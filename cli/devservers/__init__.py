"""Throw-away servers on loopback for the demo, the tests and the benchmarks: Mosquitto and InfluxDB 1.x.

In production the broker and the database are the system's own, set up as docs/operations.md says;
nothing in ``gateway/`` or ``cloud/`` imports this package.
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
