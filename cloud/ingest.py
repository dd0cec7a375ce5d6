"""Ingest one MQTT message: verify, decrypt, check the sequence, store (no MQTT here).

Order matters and is fixed: parse the header, check the topic, find the
gateway and the header's key id in the registry, refuse a revoked gateway, a
revoked key or a retired key past its grace period (judged by the cloud's own
clock, never by the gateway's ``created_ms``), verify the signature, and only
then decrypt. A batch
is written to the store before it is recorded in the ledger, and acknowledged
only after both, so a crash anywhere means redelivery, and redelivery is
harmless because store writes are idempotent.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.ledger import Ledger
from cloud.stores import SeriesStore
from quartier import batch, envelope
from quartier.ack import Ack, AckStatus
from quartier.enrolment import EnrolledKey, EnrolmentError, GatewayEntry
from quartier.errors import EnvelopeError, StoreError
from quartier.series import format_utc
from quartier.topics import gateway_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to one message.

    ``status`` is ``stored``, ``duplicate`` (already stored, nothing changed),
    ``rejected`` (kept aside with ``reason``) or ``retry`` (the store failed;
    do not acknowledge, the broker will redeliver). ``ack`` says whether the
    gateway should be told; only authenticated batches are answered (:meth:`answer`).
    """

    status: AckStatus
    gateway_id: str | None = None
    seq: int | None = None
    n_intervals: int = 0
    reason: str | None = None
    detail: str | None = None
    ack: bool = False

    def answer(self) -> Ack | None:
        """The acknowledgement to publish to the gateway, or None when it gets none."""
        if not (self.ack and self.status.sent and self.gateway_id is not None and self.seq is not None):
            return None
        return Ack(self.seq, self.status, self.reason)


GatewayLookup = Callable[[str], "GatewayEntry | Ed25519PublicKey | None"]
"""Gateway id -> its registry entry (or, for simple setups and tests, its single public key), None if unknown."""


class Ingestor:
    """Turns batch messages into stored intervals; counts rejections per reason.

    ``gateways`` looks a gateway up (normally :class:`cloud.service.EnrolledGateways`); ``now`` is the cloud's
    clock in UTC seconds since the epoch, used to decide whether a retired key's grace period is over.
    """

    def __init__(
        self,
        gateways: GatewayLookup,
        cloud_key: X25519PrivateKey,
        ledger: Ledger,
        store: SeriesStore,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.gateways = gateways
        self.cloud_key = cloud_key
        self.ledger = ledger
        self.store = store
        self.now = now
        self.counts: Counter[str] = Counter()

    def handle(self, topic: str, data: bytes) -> Outcome:
        """Process one message from ``quartier/v1/<gateway>/batch``; never raises for bad input."""
        try:
            outcome = self._handle(topic, data)
        except EnvelopeError as e:
            outcome = Outcome(AckStatus.REJECTED, reason=e.reason, detail=e.detail)
        except StoreError as e:
            log.error("store failed, batch left for redelivery: %s", e)
            outcome = Outcome(AckStatus.RETRY, reason="store-failed", detail=str(e))
        except EnrolmentError as e:
            # Fail closed without losing the batch: nothing is accepted while the registry is unreadable.
            log.error("gateway registry unreadable, batch left for redelivery: %s", e)
            outcome = Outcome(AckStatus.RETRY, reason="registry-unreadable", detail=str(e))
        if outcome.status is AckStatus.REJECTED:
            self.ledger.reject(topic, outcome.reason or "?", outcome.detail or "", data)
            log.warning("rejected message on %s: %s: %s", topic, outcome.reason, outcome.detail)
            self.counts[f"rejected:{outcome.reason}"] += 1
        else:
            self.counts[outcome.status.value] += 1
        return outcome

    def _handle(self, topic: str, data: bytes) -> Outcome:
        env = envelope.parse(data)
        h = env.header
        if gateway_of(topic) != h.gateway_id:
            raise EnvelopeError("topic-mismatch", f"header says gateway {h.gateway_id!r}, topic is {topic!r}")
        key, refusal = self._accepted_key(h.gateway_id, h.key_id)
        envelope.verify(env, key)
        # From here on the sender is authenticated: it gets an answer.
        if refusal is not None:
            # A key past its grace period signed this: the gateway is told, so it sets the batch aside
            # instead of resending it forever.
            return Outcome(AckStatus.REJECTED, h.gateway_id, h.seq, reason=refusal.reason, detail=refusal.detail,
                           ack=True)
        digest = hashlib.sha256(data).digest()
        known = self.ledger.digest_of(h.gateway_id, h.seq)
        if known == digest:
            return Outcome(AckStatus.DUPLICATE, h.gateway_id, h.seq, ack=True)
        if known is not None:
            raise EnvelopeError(
                "replay", f"batch {h.gateway_id}#{h.seq} was already stored with different content"
            )
        try:
            plaintext = envelope.decrypt(env, self.cloud_key)
            intervals = batch.decode(plaintext, h.gateway_id, h.seq)
        except EnvelopeError as e:
            return Outcome(AckStatus.REJECTED, h.gateway_id, h.seq, reason=e.reason, detail=e.detail, ack=True)
        self.store.write_intervals(h.gateway_id, intervals)
        span = (min(i.start for i in intervals), max(i.start for i in intervals)) if intervals else None
        self.ledger.record(h.gateway_id, h.seq, digest, len(intervals), envelope=data, span=span)
        return Outcome(AckStatus.STORED, h.gateway_id, h.seq, len(intervals), ack=True)

    def _accepted_key(self, gateway_id: str, kid: bytes) -> tuple[Ed25519PublicKey, EnvelopeError | None]:
        """The enrolled public key with id ``kid`` and, if the cloud no longer accepts it, why.

        Unknown gateways and keys, revoked gateways and revoked keys raise EnvelopeError at once (nothing
        to verify with, or nobody to trust); a retired key past its grace period is returned with its refusal
        so that the batch is verified first and its authentic sender told.
        """
        found = self.gateways(gateway_id)
        if found is None:
            raise EnvelopeError("unknown-gateway", f"gateway {gateway_id!r} is not enrolled (quartier keys enrol)")
        if isinstance(found, Ed25519PublicKey):
            return found, None  # a bare key: envelope.verify compares the key id
        entry: GatewayEntry = found
        if entry.revoked_at is not None:
            raise EnvelopeError(
                "revoked-gateway",
                f"gateway {gateway_id!r} was revoked at {format_utc(entry.revoked_at)}"
                + (f": {entry.revoked_reason}" if entry.revoked_reason else ""),
            )
        key: EnrolledKey | None = entry.find(kid)
        if key is None:
            enrolled = ", ".join(k.key_id for k in entry.keys) or "none"
            raise EnvelopeError(
                "unknown-key",
                f"gateway {gateway_id!r} signed with key id {kid.hex()}, enrolled key ids are {enrolled} "
                "(enrol the new key: quartier keys enrol)",
            )
        now = datetime.fromtimestamp(self.now(), timezone.utc)
        state = entry.state(key, now)
        if state == "revoked-key":
            raise EnvelopeError(
                "revoked-key",
                f"key {key.key_id} of gateway {gateway_id!r} was revoked at {format_utc(key.revoked_at)}"  # type: ignore[arg-type]
                + (f": {key.revoked_reason}" if key.revoked_reason else ""),
            )
        if state == "expired-key":
            until = key.accepted_until or key.retired_at
            return key.public_key, EnvelopeError(
                "expired-key",
                f"key {key.key_id} of gateway {gateway_id!r} was retired and its grace period ended at "
                f"{format_utc(until) if until else '?'}; restart the gateway so it signs with its new key",
            )
        return key.public_key, None
