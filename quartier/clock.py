"""Clocks that the gateway and the simulators share.

Everything that needs the time takes a :class:`Clock`, so a test or the demo
can run many quarter-hours in seconds with the same code that runs in the
field. Times are UTC seconds since the Unix epoch (floats).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Source of UTC time and of waiting.

    ``speed`` is how many clock seconds pass per real second (``inf`` for a
    clock whose ``sleep`` returns at once), so a loop can wake often enough in
    real time.
    """

    speed: float

    def now(self) -> float:
        """Current UTC time. [s since epoch]"""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time. [s]"""
        ...


class SystemClock:
    """The real wall clock."""

    speed = 1.0

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """A clock that starts at ``start`` and runs ``speed`` times faster than real time.

    Two processes given the same ``start``, ``speed`` and ``origin`` (a
    ``time.time()`` reading) see the same simulated time, which is how the
    demo's separate parts agree on the time.
    """

    def __init__(self, start: float, speed: float = 1.0, origin: float | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.start = float(start)
        self.speed = float(speed)
        self.origin = time.time() if origin is None else float(origin)

    def now(self) -> float:
        return self.start + (time.time() - self.origin) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)


class ManualClock:
    """A clock that only moves when told to; ``sleep`` advances it at once.

    Thread-safe, so a simulator in another thread reads the same time as the
    gateway that drives it. With ``sleep`` advancing the clock, a gateway loop
    runs through simulated days as fast as the CPU allows.
    """

    speed = float("inf")

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def set(self, t: float) -> None:
        with self._lock:
            self._now = float(t)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)


class PacedClock(ManualClock):
    """A manual clock whose ``sleep`` also waits ``seconds / speed`` of real time.

    Time moves only when the driving loop sleeps, so readings are taken at
    exact clock times (a poll due on a quarter-hour boundary is on it), while
    the run still unfolds at a watchable pace. Used by the demo.
    """

    def __init__(self, start: float, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        super().__init__(start)
        self.speed = float(speed)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)
            self.advance(seconds)
