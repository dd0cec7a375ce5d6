"""Exception hierarchy shared by every part of Quartier.

One base class, a few specific subclasses; messages say what and where, so a
user can act on them.
"""

from __future__ import annotations


class QuartierError(Exception):
    """Base class of every error Quartier raises on purpose."""


class ConfigError(QuartierError):
    """A configuration file is missing, unreadable or invalid.

    The message names the file, the key and the problem.
    """

    def __init__(self, path: object, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class MeterError(QuartierError):
    """A meter could not be read (timeout, exception response, bad data)."""


class MeterNotReadyError(MeterError):
    """A meter that has not given its first reading yet, within its start-up time (a Linky's reader is still
    finding the line's speed): not a failure; it becomes a plain :class:`MeterError` once that time has passed."""


class RegisterMapError(QuartierError):
    """A meter model's register map file is invalid."""


class EnvelopeError(QuartierError):
    """A batch envelope is malformed, forged, or cannot be decrypted.

    ``reason`` is a short stable code used for counting rejections
    (``malformed``, ``topic-mismatch``, ``unknown-gateway``, ``revoked-gateway``,
    ``unknown-key``, ``revoked-key``, ``expired-key``, ``bad-signature``,
    ``replay``, ``decrypt-failed``, ``bad-payload``; docs/protocol.md says when).
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class StoreError(QuartierError):
    """The series store refused or failed a read or a write."""
