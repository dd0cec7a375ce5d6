"""Publish flow control alone (gateway/publisher.py): a real outbox, the wire replaced by a list of what was sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.outbox import Outbox
from gateway.publisher import Publisher
from quartier.ack import Ack, AckStatus


class Wire:
    """What the publisher sent, in order; ``up`` False plays a link that is down."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.up = True

    def __call__(self, envelope: bytes) -> bool:
        if self.up:
            self.sent.append(envelope)
        return self.up


class Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def outbox_with(tmp_path: Path, n: int) -> Outbox:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    for _ in range(n):
        outbox.commit({}, lambda seq: (b"batch-%d" % seq, 0, 1))
    return outbox


def publisher(outbox: Outbox, wire: Wire, now: Now, *, in_flight: int = 50, rate: float = 2.0) -> Publisher:
    return Publisher(outbox, wire, max_in_flight=in_flight, resend_after_s=30.0, backlog_batches_per_s=rate,
                     monotonic=now)


def test_freshest_first_then_backlog_oldest_first_at_the_rate(tmp_path: Path) -> None:
    wire, now = Wire(), Now()
    pub = publisher(outbox_with(tmp_path, 6), wire, now, rate=2.0)
    # The newest batch at once, then the bucket's one second's worth (2) of the backlog, oldest first.
    assert pub.publish_due() == 3
    assert wire.sent == [b"batch-6", b"batch-1", b"batch-2"]
    assert pub.publish_due() == 0  # no token left, nothing new
    now.t += 1.0
    assert pub.publish_due() == 2
    assert wire.sent[3:] == [b"batch-3", b"batch-4"]
    assert pub.stats.publishes == 5


def test_in_flight_limit_and_resend_after_silence(tmp_path: Path) -> None:
    wire, now = Wire(), Now()
    pub = publisher(outbox_with(tmp_path, 5), wire, now, in_flight=2, rate=100.0)
    assert pub.publish_due() == 2 and wire.sent == [b"batch-5", b"batch-1"]
    now.t += 29.0
    assert pub.publish_due() == 0  # both still in flight
    now.t += 1.0  # 30 s without an answer: both may go again, the backlog oldest first
    assert pub.publish_due() == 2 and wire.sent[2:] == [b"batch-1", b"batch-2"]


def test_acknowledgements_empty_the_outbox_and_rejections_set_aside(tmp_path: Path) -> None:
    wire, now = Wire(), Now()
    outbox = outbox_with(tmp_path, 3)
    pub = publisher(outbox, wire, now, rate=100.0)
    pub.publish_due()
    pub.on_ack("quartier/v1/gw/ack", Ack(1, AckStatus.STORED).encode())
    pub.on_ack("quartier/v1/gw/ack", Ack(2, AckStatus.DUPLICATE).encode())
    pub.on_ack("quartier/v1/gw/ack", Ack(3, AckStatus.REJECTED, "decrypt-failed").encode())
    assert outbox.counts() == {"pending_batches": 0, "pending_intervals": 0, "rejected_batches": 1,
                               "rejected_intervals": 1, "last_seq": 3}
    assert (pub.stats.acks, pub.stats.rejections) == (2, 1)
    now.t += 60.0
    assert pub.publish_due() == 0  # nothing pending: the rejected batch is never resent


@pytest.mark.parametrize("payload", [b"", b"{", b"[]", b'{"seq":"1","status":"stored"}', b'{"seq":1,"status":"retry"}',
                                     b'{"seq":1,"status":"lost"}', b"[" * 100_000])
def test_a_malformed_acknowledgement_changes_nothing(tmp_path: Path, payload: bytes) -> None:
    wire, now = Wire(), Now()
    outbox = outbox_with(tmp_path, 1)
    pub = publisher(outbox, wire, now)
    pub.publish_due()
    pub.on_ack("quartier/v1/gw/ack", payload)
    assert outbox.counts()["pending_batches"] == 1 and pub.stats.acks == 0
    now.t += 1.0
    assert pub.publish_due() == 0  # still in flight: a malformed answer is not an answer


def test_a_link_down_sends_nothing_and_loses_nothing(tmp_path: Path) -> None:
    wire, now = Wire(), Now()
    outbox = outbox_with(tmp_path, 2)
    pub = publisher(outbox, wire, now)
    wire.up = False
    assert pub.publish_due() == 0 and outbox.counts()["pending_batches"] == 2
    wire.up = True
    assert pub.publish_due() == 2 and wire.sent == [b"batch-2", b"batch-1"]
