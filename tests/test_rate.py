"""The token bucket that bounds the backlog drain rate, with hand-worked times."""

from __future__ import annotations

import pytest

from gateway.rate import TokenBucket


def test_starts_full_then_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=4)
    assert bucket.available(100.0) == 4
    assert all(bucket.take(100.0) for _ in range(4))
    assert not bucket.take(100.0) and bucket.available(100.0) == 0
    assert bucket.available(100.4) == 0  # 0.8 token
    assert bucket.take(100.5) and not bucket.take(100.5)  # 1 token after 0.5 s at 2/s
    assert bucket.available(110.0) == 4  # never more than the burst, however long the pause


def test_a_long_drain_goes_no_faster_than_the_rate() -> None:
    bucket = TokenBucket(rate=20.0, burst=20)
    sent, t = 0, 0.0
    while t < 60.0:  # a caller polling every 50 ms for a minute, taking all it may
        while bucket.take(t):
            sent += 1
        t += 0.05
    assert sent == 20 + 20 * 60 - 1  # the initial burst, then 20/s until the last call at 59.95 s


def test_time_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.take(50.0)
    assert not bucket.take(40.0) and not bucket.take(50.5)
    assert bucket.take(51.0)


def test_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0, burst=1)
