"""The Modbus driver's errors, and the names of Modbus exception codes.

The codes are named after pymodbus's table (:class:`pymodbus.constants.ExcCodes`): the one pymodbus import
outside the buses (:mod:`.tcp`, :mod:`.rtu`).
"""

from __future__ import annotations

from pymodbus.constants import ExcCodes

from quartier.errors import MeterError

#: Exception code of a read whose addresses the device refuses (ILLEGAL DATA ADDRESS, 0x02).
ILLEGAL_ADDRESS = ExcCodes.ILLEGAL_ADDRESS


class ModbusExceptionError(MeterError):
    """The device answered with a Modbus exception response (an answer: the device is there).

    Attributes:
        code: the Modbus exception code, e.g. 2 (ILLEGAL_ADDRESS).
    """

    def __init__(self, message: str, code: int) -> None:
        self.code = code
        super().__init__(message)


class NoAnswerError(MeterError):
    """No byte came back within the timeout, on every attempt (device absent, off, wrong unit id or line settings)."""


class BadFrameError(MeterError):
    """Bytes came back but no valid answer: CRC error, wrong length, another unit's frame, garbage."""


class MeterSkippedError(MeterError):
    """The meter was not read: it has not answered lately and waits out its backoff (no bus traffic).

    Attributes:
        polls_left: polls until the next attempt (1: the next poll tries again).
    """

    def __init__(self, message: str, polls_left: int) -> None:
        self.polls_left = polls_left
        super().__init__(message)


class BusConflictError(ValueError):
    """Two meters ask for one endpoint with settings or protocols that cannot share it.

    Attributes:
        setting: the option that differs (``baudrate``, ``parity``,
            ``stopbits``, or ``device``/``host`` when the protocols differ).
    """

    def __init__(self, message: str, setting: str) -> None:
        self.setting = setting
        super().__init__(message)


def _exception_name(code: int) -> str:
    try:
        return ExcCodes(code).name
    except ValueError:
        return "unknown"

