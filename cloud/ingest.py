"""Ingest one MQTT message: verify, decrypt, check the sequence, store (no MQTT here).

Order matters and is fixed: parse the header, check the topic, find the
gateway's enrolled key, verify the signature, and only then decrypt. A batch
is written to the store before it is recorded in the ledger, and acknowledged
only after both, so a crash anywhere means redelivery, and redelivery is
harmless because store writes are idempotent.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.ledger import Ledger
from cloud.store import SeriesStore
from quartier import batch, envelope
from quartier.errors import EnvelopeError, StoreError
from quartier.mqtt import gateway_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to one message.

    ``status`` is ``stored``, ``duplicate`` (already stored, nothing changed),
    ``rejected`` (kept aside with ``reason``) or ``retry`` (the store failed;
    do not acknowledge, the broker will redeliver). ``ack`` says whether the
    gateway should be told; only authenticated batches are answered.
    """

    status: str
    gateway_id: str | None = None
    seq: int | None = None
    n_intervals: int = 0
    reason: str | None = None
    detail: str | None = None
    ack: bool = False


class Ingestor:
    """Turns batch messages into stored intervals; counts rejections per reason."""

    def __init__(
        self,
        gateway_keys: Callable[[str], Ed25519PublicKey | None],
        cloud_key: X25519PrivateKey,
        ledger: Ledger,
        store: SeriesStore,
    ) -> None:
        self.gateway_keys = gateway_keys
        self.cloud_key = cloud_key
        self.ledger = ledger
        self.store = store
        self.counts: Counter[str] = Counter()

    def handle(self, topic: str, data: bytes) -> Outcome:
        """Process one message from ``quartier/v1/<gateway>/batch``; never raises for bad input."""
        try:
            outcome = self._handle(topic, data)
        except EnvelopeError as e:
            outcome = Outcome("rejected", reason=e.reason, detail=e.detail)
        except StoreError as e:
            log.error("store failed, batch left for redelivery: %s", e)
            outcome = Outcome("retry", reason="store-failed", detail=str(e))
        if outcome.status == "rejected":
            self.ledger.reject(topic, outcome.reason or "?", outcome.detail or "", data)
            log.warning("rejected message on %s: %s: %s", topic, outcome.reason, outcome.detail)
            self.counts[f"rejected:{outcome.reason}"] += 1
        else:
            self.counts[outcome.status] += 1
        return outcome

    def _handle(self, topic: str, data: bytes) -> Outcome:
        env = envelope.parse(data)
        h = env.header
        if gateway_of(topic) != h.gateway_id:
            raise EnvelopeError("topic-mismatch", f"header says gateway {h.gateway_id!r}, topic is {topic!r}")
        key = self.gateway_keys(h.gateway_id)
        if key is None:
            raise EnvelopeError("unknown-gateway", f"gateway {h.gateway_id!r} is not enrolled (quartier keys enrol)")
        envelope.verify(env, key)
        # From here on the sender is authenticated: it gets an answer.
        digest = hashlib.sha256(data).digest()
        known = self.ledger.digest_of(h.gateway_id, h.seq)
        if known == digest:
            return Outcome("duplicate", h.gateway_id, h.seq, ack=True)
        if known is not None:
            raise EnvelopeError(
                "replay", f"batch {h.gateway_id}#{h.seq} was already stored with different content"
            )
        try:
            plaintext = envelope.decrypt(env, self.cloud_key)
            intervals = batch.decode(plaintext, h.gateway_id, h.seq)
        except EnvelopeError as e:
            return Outcome("rejected", h.gateway_id, h.seq, reason=e.reason, detail=e.detail, ack=True)
        self.store.write_intervals(h.gateway_id, intervals)
        self.ledger.record(h.gateway_id, h.seq, digest, len(intervals))
        return Outcome("stored", h.gateway_id, h.seq, len(intervals), ack=True)
