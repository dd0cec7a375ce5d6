"""A real Mosquitto broker on a free loopback port, one per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from quartier.broker import Mosquitto

__all__ = ["mosquitto"]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed; .ci/setup should have installed it")
        pytest.skip("mosquitto not installed (apt-get install mosquitto)")
    broker = Mosquitto(tmp_path / "broker").start()
    yield broker
    broker.stop()
