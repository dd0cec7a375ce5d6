"""The acknowledgement contract (quartier/ack.py), byte for byte as docs/protocol.md shows it."""

from __future__ import annotations

import pytest

from quartier.ack import Ack, AckError, AckStatus


@pytest.mark.parametrize(("ack", "wire"), [
    (Ack(1, AckStatus.STORED), b'{"seq":1,"status":"stored"}'),
    (Ack(1, AckStatus.DUPLICATE), b'{"seq":1,"status":"duplicate"}'),
    (Ack(7, AckStatus.REJECTED, "decrypt-failed"), b'{"seq":7,"status":"rejected","reason":"decrypt-failed"}'),
])
def test_encode_and_decode_the_documented_examples(ack: Ack, wire: bytes) -> None:
    assert ack.encode() == wire
    assert Ack.decode(wire) == ack


def test_retry_is_never_sent() -> None:
    assert not AckStatus.RETRY.sent and AckStatus.STORED.done and not AckStatus.REJECTED.done
    with pytest.raises(ValueError, match="never sent"):
        Ack(1, AckStatus.RETRY)


@pytest.mark.parametrize(("payload", "problem"), [
    (b"\xff", "not JSON"),
    (b"[1]", "not a JSON object"),
    (b'{"status":"stored"}', "seq must be an integer, got None"),
    (b'{"seq":true,"status":"stored"}', "seq must be an integer"),
    (b'{"seq":1,"status":"ok"}', "unknown status 'ok'"),
    (b'{"seq":1,"status":"retry"}', "never sent"),
    (b'{"seq":1,"status":"rejected","reason":5}', "reason must be a string"),
    (b" " * 5000, "more than 4096"),
])
def test_decode_says_what_is_wrong(payload: bytes, problem: str) -> None:
    with pytest.raises(AckError, match=problem):
        Ack.decode(payload)
