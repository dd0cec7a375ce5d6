"""Shared fixtures: real servers on free loopback ports."""

from __future__ import annotations

from cli.devservers import free_port  # noqa: F401  (tests import it from here)
from tests.fixtures_influx import *  # noqa: F401,F403,E402
from tests.fixtures_mqtt import *  # noqa: F401,F403,E402
