"""The cloud process: subscribe to every gateway's batches, ingest, acknowledge."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from cloud.config import CloudConfig
from cloud.ingest import Ingestor, Outcome
from cloud.ledger import Ledger
from cloud.stores import SeriesStore, open_store
from quartier.enrolment import GatewayEntry, load_enrolments
from quartier.keys import load_cloud_private
from quartier.mqtt import Message, MqttLink
from quartier.topics import METERS_ALARM, TOPIC_ROOT, ack_topic, gateway_of, parse_status

log = logging.getLogger(__name__)


class EnrolledGateways:
    """Enrolled gateways from the registry file, re-read whenever the file changes.

    A change is noticed by the file's identity and modification time (``st_ino``, ``st_mtime_ns``, ``st_size``):
    registry writes rename a new file into place, so even two changes within one clock tick are seen. A missing
    file means no gateway is enrolled; an unreadable or invalid one raises :class:`EnrolmentError` (the ingestor
    then leaves the batch for redelivery) until it is fixed, never falling back to an older copy.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._entries: dict[str, GatewayEntry] = {}

    def __call__(self, gateway_id: str) -> GatewayEntry | None:
        try:
            st = self.path.stat()
        except OSError:
            self._stamp, self._entries = None, {}
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._entries = load_enrolments(self.path)
            self._stamp = stamp
        return self._entries.get(gateway_id)


class Cloud:
    """Ingest service bound to one broker and one store."""

    def __init__(self, config: CloudConfig, store: SeriesStore | None = None) -> None:
        self.config = config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = store if store is not None else open_store(config.store, str(config.path))
        self.ledger = Ledger(config.state_dir / "ledger.sqlite")
        self.ingestor = Ingestor(
            EnrolledGateways(config.gateways), load_cloud_private(config.private_key), self.ledger, self.store
        )
        self.mqtt = MqttLink(
            client_id="quartier-cloud",
            host=config.mqtt.host,
            port=config.mqtt.port,
            subscriptions=[(f"{TOPIC_ROOT}/+/batch", 1), (f"{TOPIC_ROOT}/+/status", 1)],
            on_message=self._on_message,
            manual_ack=True,
            keepalive_s=config.mqtt.keepalive_s,
            tls_ca=config.mqtt.tls_ca,
            tls_cert=config.mqtt.tls_cert,
            tls_key=config.mqtt.tls_key,
        )
        self.on_outcome: list[Callable[[Outcome], None]] = []

    def start(self) -> None:
        self.mqtt.start()

    def stop(self) -> None:
        self.mqtt.stop()
        self.ledger.close()
        self.store.close()

    def _on_message(self, msg: Message) -> None:
        if msg.topic.endswith("/status"):
            self._on_status(msg)
            self.mqtt.ack(msg)
            return
        outcome = self.ingestor.handle(msg.topic, msg.payload)
        if not outcome.status.sent:
            return  # no PUBACK: the broker redelivers after we reconnect
        answer = outcome.answer()
        if answer is not None and outcome.gateway_id is not None:
            self.mqtt.publish(ack_topic(outcome.gateway_id), answer.encode(), qos=1)
        self.mqtt.ack(msg)
        for callback in self.on_outcome:
            callback(outcome)


    def _on_status(self, msg: Message) -> None:
        """Keep each gateway's last status; log when it goes offline, comes back, or raises or clears an alarm."""
        gateway_id = gateway_of(msg.topic)
        if gateway_id is None:
            return
        try:
            enrolled = self.ingestor.gateways(gateway_id) is not None
        except Exception as e:  # noqa: BLE001 - an unreadable registry must not stop the network thread
            log.error("gateway registry unreadable, status of %s ignored: %s", gateway_id, e)
            return
        if not enrolled:
            self.ingestor.counts["status-unknown-gateway"] += 1
            return
        try:
            doc = parse_status(msg.payload)
        except ValueError as e:
            log.warning("ignoring malformed status of %s: %s", gateway_id, e)
            self.ingestor.counts["status-malformed"] += 1
            return
        before = self.ledger.gateway_status(gateway_id)
        previous = before[1] if before else {}
        if doc["state"] == "offline":
            # The last will is a fixed message: carry the time of the last online document over.
            doc = {"state": "offline", **({"t": previous["t"]} if "t" in previous else {})}
        elif isinstance(doc.get("t"), int | float) and isinstance(previous.get("t"), int | float) \
                and doc["t"] < previous["t"]:
            self.ingestor.counts["status-stale"] += 1  # resent after a reconnection, overtaken by a newer one
            return
        self.ledger.record_status(gateway_id, doc)
        if doc.get("state") != previous.get("state"):
            (log.warning if doc["state"] == "offline" else log.info)("gateway %s is %s", gateway_id, doc["state"])
        online = doc.get("state") == "online"
        alarms, old_alarms = doc.get("alarms") or [], previous.get("alarms") or []
        if "failing_meters" in doc:
            # Said meter by meter: a shorter list of failing meters is the meters that came back, not a recovery.
            failing, old_failing = set(doc.get("failing_meters") or []), set(previous.get("failing_meters") or [])
            for meter in sorted(failing - old_failing):
                log.error("gateway %s: meter %s not answering", gateway_id, meter)
            for meter in sorted(old_failing - failing) if online else []:
                log.info("gateway %s: meter %s answers again", gateway_id, meter)
            alarms = [a for a in alarms if not a.startswith(METERS_ALARM)]
            old_alarms = [a for a in old_alarms if not a.startswith(METERS_ALARM)]
        for alarm in alarms:
            if alarm not in old_alarms:
                log.error("gateway %s: %s", gateway_id, alarm)
        for alarm in old_alarms:
            if alarm not in alarms and online:
                log.info("gateway %s: cleared: %s", gateway_id, alarm)
