"""The envelope against the documented test vector, and every way of breaking it."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from quartier import batch, envelope
from quartier.errors import EnvelopeError
from quartier.series import Interval, Quality

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
GW_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
CLOUD_KEY = X25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
PAYLOAD = (
    b'{"v":1,"gateway":"gw-demo","seq":1,"intervals":[{"meter":"cp1","start":1768780800,"wh":1850,'
    b'"index_start_wh":5000000,"index_end_wh":5001850,"quality":"measured"}]}'
)


def doc_vector() -> bytes:
    text = DOC.read_text()
    block = re.search(r"<!-- vector:envelope-v1 -->\n```\n([0-9a-f\n]+)```", text)
    assert block, "test vector block missing from docs/protocol.md"
    return bytes.fromhex(block.group(1).replace("\n", ""))


def test_vector_fields_at_their_offsets() -> None:
    data = doc_vector()
    assert len(data) == 317
    assert data[0:4] == b"QRT1" and data[4] == 1 and data[5] == 1 and data[6] == 7
    assert data[7:14] == b"gw-demo"
    assert data[14:22].hex() == "56475aa75463474c"
    assert struct.unpack(">QQI", data[22:42]) == (1, 1768781700000, 317 - 42 - 64)
    assert data[42:74] != bytes(32)  # HPKE enc


def test_vector_opens_to_the_documented_payload() -> None:
    header, plaintext = envelope.open_verified(doc_vector(), GW_KEY.public_key(), CLOUD_KEY)
    assert (header.gateway_id, header.seq, header.created_ms) == ("gw-demo", 1, 1768781700000)
    assert plaintext == PAYLOAD
    assert PAYLOAD.decode() in DOC.read_text()
    assert batch.decode(plaintext, "gw-demo", 1) == [
        Interval("cp1", 1768780800, 1850, 5_000_000, 5_001_850, Quality.MEASURED)
    ]


def test_seal_then_open_round_trip() -> None:
    data = envelope.seal(
        PAYLOAD, gateway_id="gw-demo", seq=1, created_ms=1768781700000,
        signing_key=GW_KEY, cloud_public_key=CLOUD_KEY.public_key(),
    )
    assert envelope.open_verified(data, GW_KEY.public_key(), CLOUD_KEY)[1] == PAYLOAD
    assert data[:42] == doc_vector()[:42]  # header is deterministic


@pytest.mark.parametrize("offset", [0, 5, 10, 20, 30, 60, 200, 316])
def test_any_flipped_byte_is_refused(offset: int) -> None:
    data = bytearray(doc_vector())
    data[offset] ^= 0x01
    with pytest.raises(EnvelopeError) as e:
        envelope.open_verified(bytes(data), GW_KEY.public_key(), CLOUD_KEY)
    assert e.value.reason in {"malformed", "bad-signature", "unknown-key"}


def test_truncated_and_garbage_are_malformed_with_offset() -> None:
    for data in (b"", b"QRT1", doc_vector()[:100], b"hello world" * 10, doc_vector() + b"x"):
        with pytest.raises(EnvelopeError) as e:
            envelope.parse(data)
        assert e.value.reason == "malformed" and "byte" in e.value.detail


def test_other_gateway_key_is_unknown_key() -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    with pytest.raises(EnvelopeError) as e:
        envelope.open_verified(doc_vector(), other.public_key(), CLOUD_KEY)
    assert e.value.reason == "unknown-key"


def test_resigned_by_attacker_with_same_key_id_fails_signature() -> None:
    data = bytearray(doc_vector())
    data[-64:] = Ed25519PrivateKey.generate().sign(bytes(data[:-64]))
    with pytest.raises(EnvelopeError) as e:
        envelope.open_verified(bytes(data), GW_KEY.public_key(), CLOUD_KEY)
    assert e.value.reason == "bad-signature"


def test_ciphertext_moved_under_another_header_does_not_decrypt() -> None:
    """A gateway that re-signs another gateway's ciphertext under its own header gets nothing."""
    ct = envelope.parse(doc_vector()).ciphertext
    header = envelope.Header("gw-evil", envelope.key_id(GW_KEY.public_key()), 1, 0).to_bytes()
    signed = header + struct.pack(">I", len(ct)) + ct
    forged = signed + GW_KEY.sign(signed)
    with pytest.raises(EnvelopeError) as e:
        envelope.open_verified(forged, GW_KEY.public_key(), CLOUD_KEY)
    assert e.value.reason == "decrypt-failed"


def test_wrong_cloud_key_is_decrypt_failed() -> None:
    with pytest.raises(EnvelopeError) as e:
        envelope.open_verified(doc_vector(), GW_KEY.public_key(), X25519PrivateKey.generate())
    assert e.value.reason == "decrypt-failed"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"v":2,"gateway":"gw-demo","seq":1,"intervals":[]}', "'v'"),
        (b'{"v":1,"gateway":"gw-x","seq":1,"intervals":[]}', "header says"),
        (b'{"v":1,"gateway":"gw-demo","seq":1,"intervals":[{"meter":"cp1"}]}', "intervals[0]: field 'start'"),
        (b'{"v":1,"gateway":"gw-demo","seq":1,"intervals":[{"meter":"a","start":1,"wh":1,'
         b'"index_start_wh":0,"index_end_wh":1,"quality":"measured"}]}', "not aligned"),
        (b'{"v":1,"gateway":"gw-demo","seq":1,"intervals":[{"meter":"a","start":900,"wh":1.5,'
         b'"index_start_wh":0,"index_end_wh":1,"quality":"measured"}]}', "'wh' must be an integer"),
        (b'{"v":1,"gateway":"gw-demo","seq":1,"intervals":[{"meter":"a","start":900,"wh":1,'
         b'"index_start_wh":0,"index_end_wh":1,"quality":"guessed"}]}', "guessed"),
    ],
)
def test_bad_payloads_say_where(payload: bytes, needle: str) -> None:
    with pytest.raises(EnvelopeError) as e:
        batch.decode(payload, "gw-demo", 1)
    assert e.value.reason == "bad-payload" and needle in e.value.detail
