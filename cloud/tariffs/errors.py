"""Errors of the tariff part: a bad tariff file, or data that cannot be billed."""

from __future__ import annotations

from quartier.errors import ConfigError, QuartierError


class TariffFileError(ConfigError):
    """A tariff file is unreadable or invalid; the message is ``FILE: dotted.key: problem``."""


class BillingError(QuartierError):
    """Series or dates that cannot be billed (gaps, misaligned intervals, unsupported mechanism ...).

    The message says which interval, date or option is at fault.
    """


class UrdbError(QuartierError):
    """A URDB rate record cannot be imported; the message names the record (or file) and the field."""

    def __init__(self, where: str, field: str, problem: str) -> None:
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


class TempoCalendarError(QuartierError):
    """An RTE Tempo colour document that cannot be read; the message names the file, the entry and the field."""
