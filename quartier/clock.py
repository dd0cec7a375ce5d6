"""Clocks that the gateway and the simulators share.

Everything that needs the time takes a :class:`Clock`, so a test or the demo
can run many quarter-hours in seconds with the same code that runs in the
field. Times are UTC seconds since the Unix epoch (floats).

:func:`add_clock_options` and :func:`clock_from_args` give every command that
runs in time (``quartier gateway run``, ``quartier sim``) the same
``--start/--speed/--origin`` options.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Protocol

from quartier.series import parse_utc

if TYPE_CHECKING:
    import argparse


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


def add_clock_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--start``, ``--speed`` and ``--origin`` (simulated time) to a command's parser."""
    g = parser.add_argument_group("simulated time (for simulators and tests; leave out in the field)")
    g.add_argument("--start", help="simulated UTC start time, e.g. 2026-01-19T00:00:00Z")
    g.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    g.add_argument("--origin", type=float, help="real time.time() at which --start applies (same in every process)")


def clock_from_args(args: argparse.Namespace) -> Clock:
    """The clock the options of :func:`add_clock_options` ask for: the wall clock unless time is simulated.

    Raises ``ValueError`` for a malformed ``--start`` or a ``--speed`` that is not positive.
    """
    if args.start is None and args.speed == 1.0:
        return SystemClock()
    start = parse_utc(args.start) if args.start else time.time()
    return ScaledClock(start, args.speed, origin=args.origin)
