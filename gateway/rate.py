"""A token bucket: at most ``rate`` events per second on average, bursts up to ``burst``."""

from __future__ import annotations


class TokenBucket:
    """Allows ``rate`` events per second on average and up to ``burst`` at once; times are monotonic seconds.

    Starts full. Pure: the caller passes the time, so it can be tested with plain numbers.
    """

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got rate={rate}, burst={burst}")
        self.rate, self.burst = rate, burst
        self._tokens = burst
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        if self._at is None or now > self._at:
            self._at = now

    def available(self, now: float) -> int:
        """How many events may happen at ``now``. [s]"""
        self._refill(now)
        return int(self._tokens)

    def take(self, now: float, n: int = 1) -> bool:
        """Spend ``n`` tokens if there are that many at ``now``; False (and nothing spent) otherwise."""
        self._refill(now)
        if self._tokens < n:
            return False
        self._tokens -= n
        return True
