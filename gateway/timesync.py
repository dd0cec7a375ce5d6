"""Is the system clock synchronised? (A Raspberry Pi has no RTC: until NTP has set it, its time is wrong.)

Linux keeps the answer in the kernel's NTP state: ``adjtimex(2)`` returns
``TIME_ERROR`` (5) while the clock is not synchronised, which is what
``timedatectl`` reports as "System clock synchronized: no". Read-only: a
zeroed ``struct timex`` (``modes = 0``) changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

TIME_ERROR = 5
_TIMEX_SIZE = 512  # larger than struct timex on every Linux ABI


@cache
def _adjtimex() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return ctypes.CDLL(name, use_errno=True).adjtimex


def clock_synchronised() -> bool | None:
    """True when the kernel says the clock is synchronised, False when it says not, None when it cannot tell."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return None
    state = adjtimex(ctypes.create_string_buffer(_TIMEX_SIZE))
    if state < 0:
        return None
    return state != TIME_ERROR
