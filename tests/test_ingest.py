"""Cloud ingest without a broker: every kind of bad message is rejected with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud.ingest import Ingestor
from cloud.ledger import Ledger
from cloud.stores.sqlite import SqliteStore
from quartier import batch, envelope
from quartier.series import Interval, Quality

T0 = 1_768_780_800
GW = Ed25519PrivateKey.generate()
CLOUD = X25519PrivateKey.generate()
IVS = [
    Interval("cp1", T0, 1850, 5_000_000, 5_001_850, Quality.MEASURED),
    Interval("cp2", T0, 2750, 100, 2850, Quality.INTERPOLATED),
]


def sealed(seq: int, intervals: list[Interval] = IVS, gw: str = "gw1", key: Ed25519PrivateKey = GW,
           payload: bytes | None = None) -> bytes:
    return envelope.seal(
        payload if payload is not None else batch.encode(gw, seq, intervals),
        gateway_id=gw, seq=seq, created_ms=0, signing_key=key, cloud_public_key=CLOUD.public_key(),
    )


@pytest.fixture
def ingestor(tmp_path: Path) -> Ingestor:
    keys = {"gw1": GW.public_key()}
    return Ingestor(keys.get, CLOUD, Ledger(tmp_path / "ledger.sqlite"), SqliteStore(str(tmp_path / "s.sqlite")))


def test_batch_is_stored_then_duplicate_changes_nothing(ingestor: Ingestor) -> None:
    msg = sealed(1)
    o = ingestor.handle("quartier/v1/gw1/batch", msg)
    assert (o.status, o.seq, o.n_intervals, o.ack) == ("stored", 1, 2, True)
    assert ingestor.store.read_intervals("gw1", "cp1") == [IVS[0]]
    o2 = ingestor.handle("quartier/v1/gw1/batch", msg)
    assert (o2.status, o2.ack) == ("duplicate", True)
    assert ingestor.store.read_intervals("gw1", "cp2") == [IVS[1]]
    assert ingestor.ledger.accepted_count("gw1") == 1


def test_each_bad_message_is_rejected_with_its_reason(ingestor: Ingestor) -> None:
    ingestor.handle("quartier/v1/gw1/batch", sealed(1))
    stranger = Ed25519PrivateKey.generate()
    good = sealed(2)
    flipped = bytearray(good)
    flipped[-70] ^= 0xFF
    cases = {
        "malformed": ("quartier/v1/gw1/batch", b"\x00garbage"),
        "topic-mismatch": ("quartier/v1/gw2/batch", good),
        "unknown-gateway": ("quartier/v1/gw9/batch", sealed(1, gw="gw9")),
        "unknown-key": ("quartier/v1/gw1/batch", sealed(3, key=stranger)),
        "bad-signature": ("quartier/v1/gw1/batch", bytes(flipped)),
        "replay": ("quartier/v1/gw1/batch", sealed(1, [IVS[0]])),
        "bad-payload": ("quartier/v1/gw1/batch", sealed(4, payload=b'{"v":1}')),
    }
    for reason, (topic, data) in cases.items():
        o = ingestor.handle(topic, data)
        assert (o.status, o.reason) == ("rejected", reason), reason
        # Only authenticated senders get an answer on their ack topic.
        assert o.ack is (reason == "bad-payload"), reason
    assert ingestor.ledger.rejection_counts() == {r: 1 for r in cases}
    kept = ingestor.ledger.rejections()
    assert [r for _, r, _, _ in kept] == list(cases)
    assert kept[0][3] == b"\x00garbage"
    # Nothing of the rejected messages reached the store.
    assert ingestor.store.read_intervals("gw1", "cp1") == [IVS[0]]
    assert ingestor.store.meters() == [("gw1", "cp1"), ("gw1", "cp2")]


def test_out_of_order_batches_are_accepted(ingestor: Ingestor) -> None:
    later = [Interval("cp1", T0 + 900, 10, 5_001_850, 5_001_860, Quality.MEASURED)]
    assert ingestor.handle("quartier/v1/gw1/batch", sealed(2, later)).status == "stored"
    assert ingestor.handle("quartier/v1/gw1/batch", sealed(1)).status == "stored"
    assert [i.start for i in ingestor.store.read_intervals("gw1", "cp1")] == [T0, T0 + 900]


def test_accepted_envelopes_are_archived_whole_and_found_by_span(ingestor: Ingestor) -> None:
    first, second = sealed(1), sealed(2, [Interval("cp1", T0 + 900, 10, 5_001_850, 5_001_860, Quality.MEASURED)])
    ingestor.handle("quartier/v1/gw1/batch", first)
    ingestor.handle("quartier/v1/gw1/batch", second)
    ingestor.handle("quartier/v1/gw1/batch", b"\x00garbage")  # rejected: never archived
    assert ingestor.ledger.archived("gw1") == [(1, first), (2, second)]
    assert ingestor.ledger.archived("gw1", T0 + 900) == [(2, second)]
    assert ingestor.ledger.archived("gw1", None, T0 + 900) == [(1, first)]
    assert ingestor.ledger.archived("gw1", T0 + 1800) == []
    assert ingestor.ledger.archived("gw2") == []
    # The archived bytes are the signed envelope: they still verify with the gateway's public key.
    envelope.verify(envelope.parse(ingestor.ledger.archived("gw1", T0, T0 + 1)[0][1]), GW.public_key())
