"""MQTT security against a real Mosquitto: TLS with client certificates, the per-gateway ACL and the last will.

The broker (``secure_mosquitto``) has a single TLS listener that requires a certificate from the site CA
(``site_pki``: ``cloud``, ``gw-a``, ``gw-b``) and the ACL of :func:`quartier.topics.acl_text`. Mosquitto drops
unauthorised publishes silently and never delivers unauthorised subscriptions, so these tests watch for messages
that must *not* arrive, after a message sent later on an allowed path did arrive (the broker keeps order).
"""

from __future__ import annotations

import contextlib
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from cli.devservers.mosquitto import Mosquitto
from quartier.config import ConfigError, MqttConfig, Table
from quartier.mqtt import Message, MqttLink, MqttTlsError
from quartier.pki import CertFiles, PkiError, SitePki, certificate_identity, create_site_pki, issue_gateway_cert
from quartier.topics import STATUS_OFFLINE, STATUS_ONLINE, ack_topic, batch_topic, status_topic

TIMEOUT_S = 5.0


class Inbox:
    """Messages received by a link, with a wait for a condition."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()

    def __call__(self, msg: Message) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload))
            self._cond.notify_all()

    def wait_for(self, topic: str, payload: bytes, timeout_s: float = TIMEOUT_S) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: (topic, payload) in self.messages, timeout_s)

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> bool:
        with self._cond:
            return self._cond.wait_for(condition, timeout_s)

    def on(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p in self.messages if t == topic]


@pytest.fixture
def links(secure_mosquitto: Mosquitto) -> Iterator[Callable[..., MqttLink]]:
    """Make started MqttLinks to the secure broker; all are stopped at the end."""
    made: list[MqttLink] = []

    def make(client_id: str, files: CertFiles | None, ca: Path | None, subscriptions: Sequence[str] = (),
             inbox: Inbox | None = None, status: str | None = None) -> MqttLink:
        link = MqttLink(client_id, "127.0.0.1", secure_mosquitto.port, [(t, 1) for t in subscriptions], inbox,
                        clean_start=True, tls_ca=ca, tls_cert=files.cert if files else None,
                        tls_key=files.key if files else None, status_topic=status)
        link.start()
        made.append(link)
        return link

    yield make
    for link in made:
        link.stop()


def test_pki_files_and_identities(site_pki: SitePki, tmp_path: Path) -> None:
    for files in (site_pki.ca, site_pki.server, site_pki.cloud, *site_pki.gateways.values()):
        assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert certificate_identity(site_pki.cloud.cert) == "cloud"
    assert certificate_identity(site_pki.gateways["gw-a"].cert) == "gw-a"
    issued = issue_gateway_cert(site_pki.directory, tmp_path / "out", "gw-parking-nord")
    assert certificate_identity(issued.cert) == "gw-parking-nord"
    with pytest.raises(PkiError, match="already exists"):
        issue_gateway_cert(site_pki.directory, tmp_path / "out", "gw-parking-nord")
    with pytest.raises(PkiError, match="reserved"):
        issue_gateway_cert(site_pki.directory, tmp_path / "out", "cloud")
    with pytest.raises(PkiError, match="invalid"):
        issue_gateway_cert(site_pki.directory, tmp_path / "out", "gw/+")
    with pytest.raises(PkiError, match="cannot read certificate"):
        issue_gateway_cert(tmp_path / "nowhere", tmp_path / "out", "gw-c")


def test_mqtt_config_tls_keys(site_pki: SitePki, tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    ca, gw = site_pki.ca.cert, site_pki.gateways["gw-a"]
    c = MqttConfig.from_table(Table({"tls_ca": str(ca), "tls_cert": str(gw.cert), "tls_key": str(gw.key)}, path))
    assert (c.tls, c.port, c.tls_key) == (True, 8883, gw.key)
    assert MqttConfig.from_table(Table({}, path)).tls is False
    with pytest.raises(ConfigError, match="tls_key: missing: TLS needs tls_ca, tls_cert and tls_key together"):
        MqttConfig.from_table(Table({"tls_ca": str(ca), "tls_cert": str(gw.cert)}, path, "mqtt"))
    with pytest.raises(ConfigError, match="mqtt.tls_ca: file .*nope.crt does not exist"):
        MqttConfig.from_table(Table({"tls_ca": "nope.crt", "tls_cert": str(gw.cert), "tls_key": str(gw.key)},
                                    path, "mqtt"))
    gw.key.chmod(0o644)
    with pytest.raises(MqttTlsError, match="chmod 600"):
        MqttLink("x", "127.0.0.1", 1, tls_ca=ca, tls_cert=gw.cert, tls_key=gw.key)


def test_gateway_and_cloud_end_to_end_over_tls(tmp_path: Path) -> None:
    """A provisioned site (tls=True): the real Gateway and Cloud services, one batch stored and acknowledged."""
    pytest.importorskip("simulators.site")
    from cli.devservers import free_port
    from cli.provision import provision_site
    from cloud.config import CloudConfig
    from cloud.service import Cloud
    from gateway.config import GatewayConfig
    from gateway.service import Gateway
    from quartier.clock import ManualClock
    from simulators.site import build_simulators

    t0 = 1_768_780_800
    port = free_port()
    meter = {"id": "cp1", "model": "sdm630", "unit": 1, "initial_index_wh": 1000, "epoch": "2026-01-19T00:00:00Z",
             "profile": [{"at": "00:00", "power_w": 7400}], "port": port}
    clock = ManualClock(t0)
    sims = build_simulators([meter], clock)
    for s in sims:
        s.start()
    site = provision_site(
        tmp_path / "site", gateway_id="gw-a", mqtt_port=free_port(), tls=True,
        meters=[{"id": "cp1", "driver": "modbus", "model": "sdm630", "host": "127.0.0.1", "port": port, "unit": 1,
                 "timeout_s": 1.0}],
        gateway_options={"poll_interval_s": 300, "resend_after_s": 2.0},
    )
    gw_config, cloud_config = GatewayConfig.load(site.gateway_config), CloudConfig.load(site.cloud_config)
    assert gw_config.mqtt.tls and cloud_config.mqtt.tls
    broker = Mosquitto(tmp_path / "broker", port=gw_config.mqtt.port, tls=site.broker_tls()).start()
    cloud = gateway = None
    try:
        cloud = Cloud(cloud_config)
        cloud.start()
        assert cloud.mqtt.wait_connected(TIMEOUT_S), broker.log_tail()
        gateway = Gateway(gw_config, clock)
        gateway.start()
        assert gateway.mqtt.wait_connected(TIMEOUT_S), broker.log_tail()
        gateway.run(threading.Event(), until=t0 + 900)
        assert gateway.drain(timeout_s=10), gateway.outbox.counts()
        assert cloud.ingestor.counts["stored"] >= 1
        assert "u'gw-a'" in broker.log_tail() and "u'cloud'" in broker.log_tail()
    finally:
        if gateway is not None:
            gateway.close()
        if cloud is not None:
            cloud.stop()
        broker.stop()
        for s in sims:
            s.stop()


def test_clients_without_a_valid_certificate_cannot_connect(
    links: Callable[..., MqttLink], site_pki: SitePki, tmp_path: Path
) -> None:
    other = create_site_pki(tmp_path / "other-ca", ["gw-a"])
    no_cert = links("no-cert", None, site_pki.ca.cert)
    foreign_cert = links("foreign-cert", other.gateways["gw-a"], site_pki.ca.cert)
    plain = links("plain", None, None)  # no TLS at all on a TLS port
    good = links("good", site_pki.gateways["gw-a"], site_pki.ca.cert)
    assert good.wait_connected(TIMEOUT_S)
    time.sleep(1.0)  # the bad ones had as long as the good one and then some
    assert not no_cert.connected.is_set()
    assert not foreign_cert.connected.is_set()
    assert not plain.connected.is_set()
    # The client refuses a broker whose certificate comes from another CA, even with a valid own certificate.
    fooled = links("fooled", site_pki.gateways["gw-b"], other.ca.cert)
    assert not fooled.wait_connected(1.0)


def test_acl_confines_a_gateway_to_its_own_topics(links: Callable[..., MqttLink], site_pki: SitePki) -> None:
    cloud_inbox, a_inbox, b_inbox = Inbox(), Inbox(), Inbox()
    cloud = links("cloud", site_pki.cloud, site_pki.ca.cert, ["quartier/v1/+/batch", "quartier/v1/+/status"],
                  cloud_inbox)
    gw_a = links("gw-a", site_pki.gateways["gw-a"], site_pki.ca.cert, [ack_topic("gw-a"), ack_topic("gw-b"), "#"],
                 a_inbox)
    gw_b = links("gw-b", site_pki.gateways["gw-b"], site_pki.ca.cert, [ack_topic("gw-b")], b_inbox)
    for link in (cloud, gw_a, gw_b):
        assert link.wait_connected(TIMEOUT_S)
    time.sleep(0.2)  # subscriptions are sent right after CONNACK

    # gw-a impersonating gw-b (and writing to an ack topic) is dropped; its own batch, sent after, arrives.
    assert gw_a.publish(batch_topic("gw-b"), b"forged by gw-a")
    assert gw_a.publish(ack_topic("gw-b"), b"forged ack by gw-a")
    assert gw_a.publish(batch_topic("gw-a"), b"from gw-a")
    assert gw_b.publish(batch_topic("gw-b"), b"from gw-b")
    assert cloud_inbox.wait_for(batch_topic("gw-a"), b"from gw-a")
    assert cloud_inbox.wait_for(batch_topic("gw-b"), b"from gw-b")
    assert cloud_inbox.on(batch_topic("gw-b")) == [b"from gw-b"]

    # The cloud acknowledges both; gw-a gets only its own ack, despite subscribing to gw-b's and to '#'.
    assert cloud.publish(ack_topic("gw-b"), b"ack b")
    assert cloud.publish(ack_topic("gw-a"), b"ack a")
    assert b_inbox.wait_for(ack_topic("gw-b"), b"ack b")
    assert a_inbox.wait_for(ack_topic("gw-a"), b"ack a")
    assert b_inbox.on(ack_topic("gw-b")) == [b"ack b"]
    assert a_inbox.on(ack_topic("gw-b")) == []
    assert {t for t, _ in a_inbox.messages} == {ack_topic("gw-a")}  # '#' brought nothing else either

    # A gateway cannot publish on the cloud's side either: an ack for itself, written by itself, is dropped.
    assert gw_a.publish(ack_topic("gw-a"), b"self-ack")
    assert cloud.publish(ack_topic("gw-a"), b"ack a 2")
    assert a_inbox.wait_for(ack_topic("gw-a"), b"ack a 2")
    assert b"self-ack" not in a_inbox.on(ack_topic("gw-a"))


def test_last_will_marks_a_dead_gateway_offline(links: Callable[..., MqttLink], site_pki: SitePki) -> None:
    inbox = Inbox()
    topic = status_topic("gw-a")
    gw = links("gw-a", site_pki.gateways["gw-a"], site_pki.ca.cert, [ack_topic("gw-a")], status=topic)
    assert gw.wait_connected(TIMEOUT_S)
    watcher = links("cloud", site_pki.cloud, site_pki.ca.cert, [topic], inbox)
    assert watcher.wait_connected(TIMEOUT_S)
    assert inbox.wait_for(topic, STATUS_ONLINE)  # retained: the watcher came after the gateway

    sock = gw._client.socket()  # noqa: SLF001 - kill the TCP connection without an MQTT DISCONNECT
    assert sock is not None
    sock.close()
    assert inbox.wait_for(topic, STATUS_OFFLINE), "the broker did not publish the last will"
    assert inbox.wait_until(lambda: inbox.on(topic)[-2:] == [STATUS_OFFLINE, STATUS_ONLINE]), inbox.on(topic)
    assert gw.wait_connected(TIMEOUT_S)  # paho reconnected by itself (1 s backoff)

    # A late subscriber sees the retained state; after a clean stop it is "offline" too.
    gw.stop()
    late = Inbox()
    links("cloud-late", site_pki.cloud, site_pki.ca.cert, [topic], late)
    assert late.wait_for(topic, STATUS_OFFLINE)


def test_quartier_pki_commands_make_a_site_that_talks_through_the_acl(tmp_path: Path) -> None:
    """Certificates made with `quartier pki` only, a TLS broker with `quartier pki acl`: the cloud reads gw-x."""
    from cli.devservers import free_port
    from cli.devservers.mosquitto import BrokerTls
    from cli.main import main

    d = tmp_path / "pki"
    assert main(["pki", "ca", "--dir", str(d / "ca")]) == 0
    assert main(["pki", "server", "--ca", str(d / "ca"), "--out", str(d / "broker"), "--name", "127.0.0.1"]) == 0
    assert main(["pki", "gateway", "--ca", str(d / "ca"), "--out", str(d / "gw"), "--id", "gw-x"]) == 0
    assert main(["pki", "client", "cloud", "--ca", str(d / "ca"), "--out", str(d / "cloud")]) == 0
    assert main(["pki", "gateway", "--ca", str(d / "ca"), "--out", str(d / "gw"), "--id", "gw-x"]) == 2  # no overwrite
    assert stat.S_IMODE((d / "gw" / "gw-x.key").stat().st_mode) == 0o600
    acl = tmp_path / "acl.txt"
    with acl.open("w") as f, contextlib.redirect_stdout(f):
        assert main(["pki", "acl"]) == 0
    broker = Mosquitto(tmp_path / "broker", port=free_port(), acl=acl.read_text(),
                       tls=BrokerTls(d / "ca" / "ca.crt", d / "broker" / "server.crt", d / "broker" / "server.key"))
    broker.start()
    inbox = Inbox()
    ca = d / "ca" / "ca.crt"
    cloud = MqttLink("c", "127.0.0.1", broker.port, [(batch_topic("+"), 1)], inbox, clean_start=True, tls_ca=ca,
                     tls_cert=d / "cloud" / "cloud.crt", tls_key=d / "cloud" / "cloud.key")
    gw = MqttLink("g", "127.0.0.1", broker.port, clean_start=True, tls_ca=ca, tls_cert=d / "gw" / "gw-x.crt",
                  tls_key=d / "gw" / "gw-x.key")
    try:
        for link in (cloud, gw):
            link.start()
            assert link.wait_connected(TIMEOUT_S)
        time.sleep(0.3)
        assert gw.publish(batch_topic("gw-y"), b"as another gateway", qos=1)  # dropped by the ACL
        assert gw.publish(batch_topic("gw-x"), b"its own", qos=1)
        assert inbox.wait_for(batch_topic("gw-x"), b"its own")
        assert inbox.on(batch_topic("gw-y")) == []
    finally:
        gw.stop()
        cloud.stop()
        broker.stop()
