"""One whole path with real parts: Modbus TCP meters -> gateway -> Mosquitto -> cloud -> store.

The meters' profiles are chosen so that every interval's energy can be worked
out by hand; the test asserts the exact Wh of every interval in the store.
Mosquitto runs as in the field: TLS only, client certificates from a
throw-away site CA, and the Quartier ACL (each gateway its own topics).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.devservers import free_port
from cli.devservers.mosquitto import Mosquitto
from cli.provision import provision_site
from cloud.config import CloudConfig
from cloud.service import Cloud
from cloud.stores import open_store
from gateway.config import GatewayConfig
from gateway.service import Gateway
from quartier.clock import ManualClock
from quartier.mqtt import MqttLink
from quartier.pki import issue_gateway_cert
from quartier.series import Direction, Interval, Quality
from simulators.site import build_simulators

T0 = 1_768_780_800  # 2026-01-19T00:00:00Z
QUARTERS = 8
EPOCH = "2026-01-19T00:00:00Z"

# cp1: an AC charger at 7400 W all along: 7400 W x 900 s / 3600 = 1850 Wh per quarter-hour.
# cp2: 0 W until 00:30, 11000 W until 01:15 (2750 Wh per quarter), then 3700 W (925 Wh).
# cp3: 22000 W until 00:20, then 0 W: 5500 Wh, then 22000 x 300 / 3600 = 1833.3 -> index floor 1833 Wh.
# cp2 is bidirectional (vehicle-to-grid): it also exports 2000 W from 01:00, 500 Wh per quarter-hour.
SITE = [
    {"id": "cp1", "model": "sdm630", "unit": 1, "initial_index_wh": 5_000_000, "epoch": EPOCH,
     "profile": [{"at": "00:00", "power_w": 7400}]},
    {"id": "cp2", "model": "sdm630", "unit": 1, "initial_index_wh": 12_345_678, "epoch": EPOCH,
     "profile": [{"at": "00:00", "power_w": 0}, {"at": "00:30", "power_w": 11000},
                 {"at": "01:15", "power_w": 3700}],
     "export": {"initial_index_wh": 4321,
                "profile": [{"at": "00:00", "power_w": 0}, {"at": "01:00", "power_w": 2000}]}},
    {"id": "cp3", "model": "sdm630", "unit": 2, "initial_index_wh": 0, "epoch": EPOCH,
     "profile": [{"at": "00:00", "power_w": 22000}, {"at": "00:20", "power_w": 0}]},
]
EXPECTED_WH = {
    "cp1": [1850] * 8,
    "cp2": [0, 0, 2750, 2750, 2750, 925, 925, 925],
    "cp3": [5500, 1833, 0, 0, 0, 0, 0, 0],
}
INITIAL = {"cp1": 5_000_000, "cp2": 12_345_678, "cp3": 0}
EXPECTED_EXPORT_WH = {"cp1": [0] * 8, "cp2": [0, 0, 0, 0, 500, 500, 500, 500], "cp3": [0] * 8}
INITIAL_EXPORT = {"cp1": 0, "cp2": 4321, "cp3": 0}


def expected_intervals(meter: str, quarters: int = QUARTERS, direction: Direction = Direction.IMPORT) -> list[Interval]:
    if direction == Direction.IMPORT:
        energies, index = EXPECTED_WH[meter], INITIAL[meter]
    else:
        energies, index = EXPECTED_EXPORT_WH[meter], INITIAL_EXPORT[meter]
    out = []
    for q, wh in enumerate(energies[:quarters]):
        out.append(Interval(meter, T0 + 900 * q, wh, index, index + wh, Quality.MEASURED, direction))
        index += wh
    return out


def expected_wh(meter: str, quarters: int) -> list[int]:
    """Import energy of the first ``quarters`` quarter-hours. [Wh]

    The profiles are daily; from 02:00 to midnight each is constant.
    """
    tail = {"cp1": 1850, "cp2": 925, "cp3": 0}[meter]
    day = EXPECTED_WH[meter] + [tail] * (96 - 8)
    return [day[q % 96] for q in range(quarters)]


class Rig:
    """Simulated meters, gateway and cloud around one TLS + ACL broker, driven by a manual clock."""

    def __init__(self, tmp: Path, store: dict[str, Any]) -> None:
        self.tmp = tmp
        self.clock = ManualClock(T0)
        ports = [free_port(), free_port()]
        sim_meters = [dict(SITE[0], port=ports[0]), dict(SITE[1], port=ports[1]), dict(SITE[2], port=ports[1])]
        self.sims = build_simulators(sim_meters, self.clock)
        for s in self.sims:
            s.start()
        gw_meters = [
            {"id": m["id"], "driver": "modbus", "model": "sdm630", "host": "127.0.0.1", "port": m["port"],
             "unit": m["unit"], "timeout_s": 1.0}
            for m in sim_meters
        ]
        self.site = provision_site(
            tmp, gateway_id="gw-e2e", mqtt_port=free_port(), meters=gw_meters, store=store, tls=True,
            gateway_options={"poll_interval_s": 300, "resend_after_s": 2.0},
        )
        self.cloud_config = CloudConfig.load(self.site.cloud_config)
        self.broker = Mosquitto(tmp / "broker", port=self.cloud_config.mqtt.port, tls=self.site.broker_tls()).start()
        self.cloud = Cloud(self.cloud_config)
        self.cloud.start()
        assert self.cloud.mqtt.wait_connected(10)
        self.gateway = Gateway(GatewayConfig.load(self.site.gateway_config), self.clock)
        self.gateway.start()
        assert self.gateway.mqtt.wait_connected(10)

    def client(self, client_id: str, identity: str, **kwargs: Any) -> MqttLink:
        """An MQTT client holding ``identity``'s certificate (``cloud``, ``gw-e2e``, or a new CN the CA issues)."""
        pki = self.site.pki
        assert pki is not None
        if identity == "cloud":
            files = pki.cloud
        elif identity in pki.gateways:
            files = pki.gateways[identity]
        else:
            files = issue_gateway_cert(pki.directory, self.tmp / "other-certs", identity)
        return MqttLink(client_id, "127.0.0.1", self.broker.port, tls_ca=pki.ca.cert, tls_cert=files.cert,
                        tls_key=files.key, **kwargs)

    def run_until(self, t: float) -> None:
        self.gateway.run(threading.Event(), until=t)

    def close(self) -> None:
        self.gateway.close()
        self.cloud.stop()
        for s in self.sims:
            s.stop()
        self.broker.stop()

    def stored(self, meter: str, direction: Direction = Direction.IMPORT) -> list[Interval]:
        store = open_store(
            {**self.cloud_config.store, "path": str(self.cloud_config.state_dir / "series.sqlite")}
            if self.cloud_config.store.get("backend", "sqlite") == "sqlite" else self.cloud_config.store
        )
        try:
            return store.read_intervals("gw-e2e", meter, direction=direction)
        finally:
            store.close()


@pytest.fixture(params=["sqlite", "influxdb"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "influxdb":
        url = request.getfixturevalue("influxdb_url")
        store = {"backend": "influxdb", "url": url, "database": request.getfixturevalue("influx_database")}
    else:
        store = {"backend": "sqlite"}
    r = Rig(tmp_path, store)
    yield r
    r.close()


def test_every_interval_arrives_with_its_exact_energy(rig: Rig) -> None:
    started = time.monotonic()
    rig.run_until(T0 + QUARTERS * 900)
    assert rig.gateway.drain(timeout_s=30), rig.gateway.outbox.counts()
    elapsed = time.monotonic() - started
    for meter in ("cp1", "cp2", "cp3"):
        assert rig.stored(meter) == expected_intervals(meter), meter
        export = expected_intervals(meter, direction=Direction.EXPORT)
        assert rig.stored(meter, Direction.EXPORT) == export, meter
    assert rig.gateway.stats.read_errors == {}
    assert rig.cloud.ingestor.counts["stored"] == rig.gateway.stats.batches_sealed == QUARTERS
    print(f"\n{3 * QUARTERS} intervals end to end in {elapsed:.2f} s")


def test_cloud_restart_loses_and_duplicates_nothing(rig: Rig) -> None:
    rig.run_until(T0 + 4 * 900)
    assert rig.gateway.drain(timeout_s=30)
    rig.cloud.stop()  # the broker keeps the cloud's persistent session and queues for it
    rig.run_until(T0 + QUARTERS * 900)
    assert rig.gateway.outbox.counts()["pending_batches"] == 4
    time.sleep(0.5)
    rig.cloud = Cloud(rig.cloud_config)
    rig.cloud.start()
    assert rig.gateway.drain(timeout_s=30), rig.gateway.outbox.counts()
    for meter in ("cp1", "cp2", "cp3"):
        assert rig.stored(meter) == expected_intervals(meter), meter
    assert rig.cloud.ledger.accepted_count("gw-e2e") == QUARTERS
    assert rig.cloud.ledger.rejection_counts() == {}


def test_cloud_away_for_a_simulated_day_then_everything_arrives_once(tmp_path: Path) -> None:
    """The cloud stops for 24 simulated hours while gateway and broker run; then it catches up, nothing doubled.

    The gateway has at most ``max_in_flight`` batches unacknowledged at the broker; the rest wait on its disk.
    """
    quarters = 2 + 96
    rig = Rig(tmp_path, {"backend": "sqlite"})
    try:
        rig.run_until(T0 + 2 * 900)
        assert rig.gateway.drain(timeout_s=30)
        rig.cloud.stop()
        rig.run_until(T0 + quarters * 900)
        assert rig.gateway.outbox.counts()["pending_batches"] == 96
        rig.cloud = Cloud(rig.cloud_config)
        rig.cloud.start()
        started = time.monotonic()
        assert rig.gateway.drain(timeout_s=120), rig.gateway.outbox.counts()
        elapsed = time.monotonic() - started
        for meter in ("cp1", "cp2", "cp3"):
            stored = rig.stored(meter)
            assert [i.start for i in stored] == [T0 + 900 * q for q in range(quarters)], meter
            assert [i.energy_wh for i in stored] == expected_wh(meter, quarters), meter
        assert rig.cloud.ledger.accepted_count("gw-e2e") == quarters
        assert rig.cloud.ledger.rejection_counts() == {}
        print(f"\ncloud back after a simulated day: 96 batches caught up in {elapsed:.2f} s")
    finally:
        rig.close()


def test_bad_messages_through_the_broker_are_rejected_and_counted(tmp_path: Path) -> None:
    """Forged, replayed and malformed messages, published to the real broker next to a real gateway's batches."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from quartier import batch, envelope
    from quartier.keys import load_cloud_public, load_gateway_private
    from quartier.topics import batch_topic

    rig = Rig(tmp_path, {"backend": "sqlite"})
    try:
        rig.run_until(T0 + 2 * 900)
        assert rig.gateway.drain(timeout_s=30)
        gateway_key = load_gateway_private(rig.gateway.config.signing_key)  # as if stolen
        cloud_pub = load_cloud_public(rig.gateway.config.cloud_public_key)
        forged_key = Ed25519PrivateKey.generate()
        bogus = [Interval("cp1", T0, 999_999, 0, 999_999, Quality.MEASURED)]

        def seal(seq: int, key: object, gw: str = "gw-e2e") -> bytes:
            return envelope.seal(batch.encode(gw, seq, bogus), gateway_id=gw, seq=seq, created_ms=0,
                                 signing_key=key, cloud_public_key=cloud_pub)

        # Batch 1 is stored; the same seq with other content, even properly signed, is a replay.
        replay_with_other_content = seal(1, gateway_key)
        # Two attackers: one holds gw-e2e's stolen TLS certificate, the other a certificate the site CA issued to
        # a gateway that was never enrolled. The ACL lets each publish only under its own CN.
        thief = rig.client("thief", "gw-e2e", clean_start=True)
        ghost = rig.client("ghost", "gw-ghost", clean_start=True)
        sent = {
            "malformed": (thief, batch_topic("gw-e2e"), b"\x00\x01 not an envelope"),
            "unknown-key": (thief, batch_topic("gw-e2e"), seal(3, forged_key)),
            "unknown-gateway": (ghost, batch_topic("gw-ghost"), seal(1, forged_key, "gw-ghost")),
            "topic-mismatch": (ghost, batch_topic("gw-ghost"), seal(3, gateway_key)),
            "replay": (thief, batch_topic("gw-e2e"), replay_with_other_content),
        }
        for link in (thief, ghost):
            link.start()
            assert link.wait_connected(10)
        for link, topic, data in sent.values():
            assert link.publish(topic, data, qos=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(rig.cloud.ledger.rejection_counts().values()) < len(sent):
            time.sleep(0.05)
        thief.stop()
        ghost.stop()
        assert rig.cloud.ledger.rejection_counts() == {reason: 1 for reason in sent}
        # The gateway's real data is untouched and it still works.
        rig.run_until(T0 + 3 * 900)
        assert rig.gateway.drain(timeout_s=30)
        assert rig.stored("cp1") == expected_intervals("cp1", 3)
        assert rig.gateway.outbox.counts()["rejected_batches"] == 0
    finally:
        rig.close()


def test_a_driver_bug_does_not_stop_the_gateway(tmp_path: Path) -> None:
    """A meter whose driver raises something unexpected is counted as failing; the others go on."""
    from gateway.drivers.base import Reading

    class Broken:
        meter_id = "broken"

        def read(self, t: float) -> Reading:
            raise ZeroDivisionError("bug in a driver")

        def close(self) -> None:
            pass

    rig = Rig(tmp_path, {"backend": "sqlite"})
    try:
        rig.gateway.meters.append(Broken())
        rig.gateway._bus_groups.append([rig.gateway.meters[-1]])
        rig.run_until(T0 + 2 * 900)
        assert rig.gateway.drain(timeout_s=30)
        assert rig.gateway.stats.read_errors["broken"] > 0
        assert rig.stored("cp1") == expected_intervals("cp1", 2)
    finally:
        rig.close()


def test_live_values_on_their_own_qos0_topic(tmp_path: Path) -> None:
    """Each poll publishes every meter's power on quartier/v1/<gw>/live at QoS 0; the outbox path is untouched."""
    import json
    import queue

    from quartier.mqtt import Message
    from quartier.topics import live_topic

    rig = Rig(tmp_path, {"backend": "sqlite"})
    received: queue.Queue[Message] = queue.Queue()
    # Live values are the cloud's to read (the admin's live curves): the watcher holds the cloud's identity.
    watcher = rig.client("watcher", "cloud", subscriptions=[(live_topic("gw-e2e"), 0)], on_message=received.put,
                         clean_start=True)
    watcher.start()
    try:
        assert watcher.wait_connected(10)
        time.sleep(0.3)  # let the subscription settle
        rig.clock.set(T0 + 60)  # between boundaries: a poll that completes no interval
        assert rig.gateway.poll_once() == []
        message = received.get(timeout=10)
        assert message.qos == 0
        doc = json.loads(message.payload)
        assert doc["t"] == T0 + 60
        assert doc["meters"]["cp1"]["power_w"] == 7400 and doc["meters"]["cp1"]["import_wh"] == 5_000_000 + 123
        assert doc["meters"]["cp3"]["power_w"] == 22000
        assert rig.gateway.outbox.counts()["pending_batches"] == 0  # live values never go through the outbox
    finally:
        watcher.stop()
        rig.close()


def test_broker_down_for_six_simulated_hours_then_everything_arrives(tmp_path: Path) -> None:
    """Readings pile up on disk while the broker is away; when it is back, the backlog drains, nothing lost."""
    from quartier import envelope
    from quartier.topics import batch_topic

    quarters = 1 + 24  # one quarter-hour online, then six hours without a broker
    wh = {meter: expected_wh(meter, quarters) for meter in ("cp1", "cp2", "cp3")}
    rig = Rig(tmp_path, {"backend": "sqlite"})
    try:
        rig.run_until(T0 + 900)
        assert rig.gateway.drain(timeout_s=30)
        rig.broker.stop()
        rig.run_until(T0 + quarters * 900)
        counts = rig.gateway.outbox.counts()
        assert counts["pending_batches"] == quarters - 1  # one batch per quarter-hour, all kept on disk
        rig.broker.start()  # same port; a broker without persistence: every session starts afresh
        assert rig.cloud.mqtt.wait_connected(30) and rig.gateway.mqtt.wait_connected(30)
        # A second client with the cloud's identity watches the order in which batches come back.
        seen: list[int] = []
        watcher = rig.client("watcher", "cloud", subscriptions=[(batch_topic("gw-e2e"), 1)], clean_start=True,
                             on_message=lambda m: seen.append(envelope.parse(m.payload).header.seq))
        watcher.start()
        assert watcher.wait_connected(10)
        time.sleep(0.3)  # let the subscription settle
        started = time.monotonic()
        assert rig.gateway.drain(timeout_s=60), rig.gateway.outbox.counts()
        elapsed = time.monotonic() - started
        watcher.stop()
        first_seen = list(dict.fromkeys(seen))
        # The freshest data first (live curves and bills are current at once), then the backlog oldest first.
        assert first_seen == [quarters] + list(range(2, quarters)), seen
        print(f"\nbroker back after 6 simulated hours: {quarters - 1} batches drained in {elapsed:.2f} s")
        for meter in ("cp1", "cp2", "cp3"):
            stored = rig.stored(meter)
            assert [i.start for i in stored] == [T0 + 900 * q for q in range(quarters)], meter
            assert [i.energy_wh for i in stored] == wh[meter], meter
            assert all(i.quality is Quality.MEASURED for i in stored)
        assert rig.cloud.ledger.accepted_count("gw-e2e") == quarters
        assert rig.cloud.ledger.rejection_counts() == {}
    finally:
        rig.close()


def test_outbox_budget_alarm_is_raised_and_nothing_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the broker away, the outbox passes half its (tiny) budget: logged once, every batch kept."""
    import dataclasses
    import logging

    rig = Rig(tmp_path, {"backend": "sqlite"})
    try:
        rig.gateway.config = dataclasses.replace(rig.gateway.config, outbox_budget_mb=0.05)  # 50 KiB
        rig.broker.stop()
        with caplog.at_level(logging.ERROR, logger="gateway.service"):
            rig.run_until(T0 + 24 * 900)
        alarms = [r for r in caplog.records if "of its 0.05 MB budget" in r.getMessage()]
        assert 1 <= len(alarms) <= 2  # at 50 %, then maybe at 90 %: once per level, not once per poll
        assert rig.gateway.stats.outbox_bytes >= 0.5 * 0.05 * 1024 * 1024
        assert rig.gateway.outbox.counts()["pending_batches"] == 24
        # Back online, the gateway's retained status carries the alarm to the cloud.
        rig.broker.start()
        assert rig.gateway.mqtt.wait_connected(60) and rig.cloud.mqtt.wait_connected(60)  # reconnect backoff <= 30 s
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            status = rig.cloud.ledger.gateway_status("gw-e2e")
            if status and status[1].get("alarms"):
                break
            time.sleep(0.1)
        assert status is not None and status[1]["state"] == "online", status
        assert any("of its 0.05 MB budget" in a for a in status[1]["alarms"]), status
        assert status[1]["outbox_budget_bytes"] == int(0.05 * 1024 * 1024)
        rig.gateway.mqtt.stop()  # a clean stop says offline
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and rig.cloud.ledger.gateway_status("gw-e2e")[1]["state"] != "offline":
            time.sleep(0.1)
        offline = rig.cloud.ledger.gateway_status("gw-e2e")[1]
        assert offline["state"] == "offline" and offline["t"] >= T0 + 24 * 900  # when it was last seen online
    finally:
        rig.close()


def test_no_poll_before_the_system_clock_is_synchronised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's NTP state cannot be changed here: it is the one thing stubbed (as GPIO would be)."""
    import gateway.service as service
    from quartier.clock import SystemClock

    synchronised = threading.Event()
    monkeypatch.setattr(service, "clock_synchronised", lambda: synchronised.is_set())
    rig = Rig(tmp_path, {"backend": "sqlite"})
    rig.gateway.clock = SystemClock()
    stop = threading.Event()
    runner = threading.Thread(target=rig.gateway._wait_for_time_sync, args=(stop, 0.05))
    try:
        runner.start()
        time.sleep(0.3)
        assert runner.is_alive() and rig.gateway.stats.polls == 0  # still waiting, nothing read
        synchronised.set()
        runner.join(2)
        assert not runner.is_alive()
    finally:
        stop.set()
        runner.join(2)
        rig.close()
