"""Shared fixtures: real servers on free loopback ports."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
from tests.fixtures_influx import *  # noqa: F401,F403,E402
from tests.fixtures_mqtt import *  # noqa: F401,F403,E402
