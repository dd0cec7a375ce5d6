"""Serial device names: pseudo-terminals, and one name per port (symbolic links resolved)."""

from __future__ import annotations

import os
import stat


def is_pseudo_terminal(device: str) -> bool:
    """Whether ``device`` is the slave end of a Linux pseudo-terminal (``/dev/pts/N``: majors 136..143)."""
    if "://" in device:
        return False
    try:
        info = os.stat(device)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and 136 <= os.major(info.st_rdev) <= 143


def canonical_device(device: str) -> str:
    """``device`` with symbolic links resolved (``/dev/serial/by-id/...`` -> ``/dev/ttyUSB0``); URLs as given."""
    return device if "://" in device else os.path.realpath(device)

