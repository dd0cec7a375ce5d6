"""The TIC meter driver: a Linky's (or older electronic meter's) tele-information read on a serial port.

A background thread owns the port (pyserial, 7E1), assembles frames with
:class:`quartier.tic.FrameAssembler` and keeps the latest *complete* frame
(every group valid) with the monotonic time it was received. A frame with a
dropped group is never used for a reading: in historic mode the import is
the sum of the indexes, and a missing index would make it wrong.

:meth:`TicMeter.read` turns that frame into a :class:`gateway.drivers.base.Reading`
or raises :class:`quartier.errors.MeterError` saying what is wrong (no frame
yet, stale frame, another meter on the line, the port's error).

Speed and mode detection (``mode = "auto"``): listen at 9600 bit/s
(standard) then 1200 bit/s (historic), each for a bounded time, and keep the
speed at which groups with valid checksums arrive (:func:`quartier.tic.detect_mode`);
start over when no valid frame has arrived for ``redetect_after_s``. A
vanished or unopenable port is reopened with an exponential backoff and
logged once until it works again; the thread survives any line data.

Its ``[[meters]]`` table (``driver = "tic"``) holds ``id``, ``device`` (serial port path), ``mode`` (``auto`` default,
``historic`` or ``standard``), ``timeout_s`` (the oldest frame a reading may
come from, default 10 s) and optionally ``adco`` or ``adsc`` (the meter's
12-digit address, checked against the frames).

Modules: :mod:`~gateway.drivers.tic.port` (the serial port, listening at one speed),
:mod:`~gateway.drivers.tic.reader` (:class:`TicMeter`, its reader thread and statistics),
:mod:`~gateway.drivers.tic.config` (the options). The codec itself is the core's :mod:`quartier.tic`.
"""

from __future__ import annotations

from gateway.drivers.tic.config import TicMeterConfig, open_tic_meter, parse_tic_options
from gateway.drivers.tic.port import (
    _READ_CHUNK,
    AUTO,
    DETECT_ORDER,
    DETECT_WINDOW_S,
    SerialFactory,
    open_serial,
    probe,
)
from gateway.drivers.tic.reader import TIME_SOURCES, TicMeter, TicReaderStats, reading_of

__all__ = [
    "AUTO",
    "DETECT_ORDER",
    "DETECT_WINDOW_S",
    "TIME_SOURCES",
    "SerialFactory",
    "TicMeter",
    "TicMeterConfig",
    "TicReaderStats",
    "_READ_CHUNK",
    "open_serial",
    "open_tic_meter",
    "parse_tic_options",
    "probe",
    "reading_of",
]
