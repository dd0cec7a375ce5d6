"""Publish flow control: which sealed batches go to the broker now, and what an acknowledgement does.

The outbox holds every sealed batch until the cloud answers. :class:`Publisher` decides what to send:

- **freshest first**: the newest pending batch goes out at once, so live data is never stuck behind a backlog;
- **backlog oldest first, at a bounded rate**: the others (and resends) go out at no more than
  ``backlog_batches_per_s`` on average, a token bucket holding up to one second's worth, so a link that comes
  back after a long outage is not flooded;
- **in flight**: at most ``max_in_flight`` batches are unanswered at once; one without an answer after
  ``resend_after_s`` is sent again (resending is safe: the cloud recognises a duplicate).

An acknowledgement (:class:`quartier.ack.Ack`) ``stored`` or ``duplicate`` removes the batch from the outbox;
``rejected`` sets it aside there. No MQTT here: the publisher is given a ``send`` function, so it is tested alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.outbox import Outbox
from gateway.rate import TokenBucket
from quartier.ack import Ack, AckError, AckStatus

log = logging.getLogger(__name__)

Send = Callable[[bytes], bool]
"""Publish one sealed envelope on the gateway's batch topic at QoS 1; False when the link is down."""


@dataclass
class PublisherStats:
    """Counters since start: batches published (resends included), acknowledged, and rejected by the cloud."""

    publishes: int = 0
    acks: int = 0
    rejections: int = 0


class Publisher:
    """What to publish from ``outbox`` and when; thread-safe (acks arrive on the MQTT network thread).

    ``monotonic`` is the clock of resends and the rate limit [s]: real time, whatever clock the polls follow.
    """

    def __init__(
        self,
        outbox: Outbox,
        send: Send,
        *,
        max_in_flight: int,
        resend_after_s: float,
        backlog_batches_per_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outbox = outbox
        self._send = send
        self.max_in_flight = max_in_flight
        self.resend_after_s = resend_after_s
        self._monotonic = monotonic
        self._backlog_rate = TokenBucket(backlog_batches_per_s, burst=max(1.0, backlog_batches_per_s))
        self._in_flight: dict[int, float] = {}  # seq -> when it was last sent
        self._newest_sent = 0  # seq of the last batch sent on the freshest-first path
        self._lock = threading.Lock()
        self.stats = PublisherStats()

    def publish_due(self) -> int:
        """Publish what is due now (module documentation); returns the number of batches published."""
        now = self._monotonic()
        with self._lock:
            fresh = {s for s, sent in self._in_flight.items() if now - sent < self.resend_after_s}
            room = self.max_in_flight - len(fresh)
        if room <= 0:
            return 0
        n = 0
        newest = self.outbox.newest_pending()
        if newest is not None and newest.seq not in fresh and newest.seq > self._newest_sent:
            if not self._send(newest.envelope):
                return 0
            with self._lock:
                self._in_flight[newest.seq] = now
                self._newest_sent = newest.seq
            fresh.add(newest.seq)
            room -= 1
            n += 1
        backlog = min(room, self._backlog_rate.available(now))
        for entry in self.outbox.pending(backlog, exclude=fresh) if backlog > 0 else []:
            if not self._send(entry.envelope):
                break
            with self._lock:
                self._in_flight[entry.seq] = now
            self._backlog_rate.take(now)
            n += 1
        self.stats.publishes += n
        return n

    def on_ack(self, topic: str, payload: bytes) -> None:
        """Apply one acknowledgement from ``topic``; a malformed one is logged and ignored."""
        try:
            ack = Ack.decode(payload)
        except AckError as e:
            log.warning("ignoring malformed acknowledgement on %s (%s): %r", topic, e, payload[:100])
            return
        # Leave the outbox first, then forget the in-flight mark: the other way round,
        # publish_due could see the batch pending and not in flight, and send it again.
        if ack.status.done:
            if self.outbox.acknowledge(ack.seq):
                self.stats.acks += 1
        elif ack.status is AckStatus.REJECTED:
            self.stats.rejections += 1
            reason = ack.reason or "unspecified"
            log.error("cloud rejected batch %d: %s; kept in the outbox for inspection", ack.seq, reason,
                      extra={"event": "batch-rejected", "seq": ack.seq, "reason": reason})
            self.outbox.reject(ack.seq, reason)
        with self._lock:
            self._in_flight.pop(ack.seq, None)
