"""A real Mosquitto broker on a free loopback port, one per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.devservers.mosquitto import BrokerTls, Mosquitto
from quartier.pki import SitePki, create_site_pki

__all__ = ["mosquitto", "site_pki", "secure_mosquitto"]


def _need_mosquitto() -> None:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed; .ci/setup should have installed it")
        pytest.skip("mosquitto not installed (apt-get install mosquitto)")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    _need_mosquitto()
    broker = Mosquitto(tmp_path / "broker").start()
    yield broker
    broker.stop()


@pytest.fixture
def site_pki(tmp_path: Path) -> SitePki:
    """A throw-away CA with the broker's certificate (127.0.0.1/localhost), ``cloud``, ``gw-a`` and ``gw-b``."""
    return create_site_pki(tmp_path / "pki", ["gw-a", "gw-b"])


@pytest.fixture
def secure_mosquitto(tmp_path: Path, site_pki: SitePki) -> Iterator[Mosquitto]:
    """Mosquitto with only a TLS listener requiring client certificates from ``site_pki``, and the Quartier ACL."""
    _need_mosquitto()
    broker = Mosquitto(tmp_path / "secure-broker", tls=BrokerTls(site_pki.ca.cert, site_pki.server.cert,
                                                                 site_pki.server.key)).start()
    yield broker
    broker.stop()
