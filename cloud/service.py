"""The cloud process: subscribe to every gateway's batches, ingest, acknowledge."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud.ingest import Ingestor, Outcome
from cloud.ledger import Ledger
from cloud.store import SeriesStore, open_store
from quartier.config import CloudConfig
from quartier.keys import load_cloud_private, load_registry
from quartier.mqtt import TOPIC_ROOT, Message, MqttLink, ack_topic

log = logging.getLogger(__name__)


class GatewayRegistry:
    """Enrolled gateways from the registry file, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._keys: dict[str, Ed25519PublicKey] = {}

    def __call__(self, gateway_id: str) -> Ed25519PublicKey | None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return None
        if mtime != self._mtime:
            self._keys, self._mtime = load_registry(self.path), mtime
        return self._keys.get(gateway_id)


class Cloud:
    """Ingest service bound to one broker and one store."""

    def __init__(self, config: CloudConfig, store: SeriesStore | None = None) -> None:
        self.config = config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        options = dict(config.store)
        if options.get("backend", "sqlite") == "sqlite":
            options.setdefault("path", str(config.state_dir / "series.sqlite"))
        self.store = store if store is not None else open_store(options, str(config.path))
        self.ledger = Ledger(config.state_dir / "ledger.sqlite")
        self.ingestor = Ingestor(
            GatewayRegistry(config.gateways), load_cloud_private(config.private_key), self.ledger, self.store
        )
        self.mqtt = MqttLink(
            client_id="quartier-cloud",
            host=config.mqtt.host,
            port=config.mqtt.port,
            subscriptions=[(f"{TOPIC_ROOT}/+/batch", 1)],
            on_message=self._on_message,
            manual_ack=True,
            keepalive_s=config.mqtt.keepalive_s,
        )
        self.on_outcome: list[Callable[[Outcome], None]] = []

    def start(self) -> None:
        self.mqtt.start()

    def stop(self) -> None:
        self.mqtt.stop()
        self.ledger.close()
        self.store.close()

    def _on_message(self, msg: Message) -> None:
        outcome = self.ingestor.handle(msg.topic, msg.payload)
        if outcome.status == "retry":
            return  # no PUBACK: the broker redelivers after we reconnect
        if outcome.ack and outcome.gateway_id is not None:
            self.mqtt.publish(ack_topic(outcome.gateway_id), _ack_payload(outcome), qos=1)
        self.mqtt.ack(msg)
        for callback in self.on_outcome:
            callback(outcome)


def _ack_payload(o: Outcome) -> bytes:
    doc: dict[str, object] = {"seq": o.seq, "status": o.status}
    if o.reason:
        doc["reason"] = o.reason
    return json.dumps(doc, separators=(",", ":")).encode()
