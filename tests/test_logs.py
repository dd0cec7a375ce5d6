"""JSON log lines: the fields a machine filters on, and the extras a problem carries."""

from __future__ import annotations

import json
import logging

from quartier.logs import JsonFormatter


def test_json_line_has_utc_time_level_logger_message_and_extras() -> None:
    record = logging.LogRecord("gateway.service", logging.ERROR, __file__, 1, "meter %s silent", ("cp3",), None)
    record.created = 1_768_780_800.25  # 2026-01-19T00:00:00.250Z
    record.event, record.meter = "meter-failing", "cp3"
    doc = json.loads(JsonFormatter().format(record))
    assert doc == {"t": "2026-01-19T00:00:00.250Z", "level": "ERROR", "logger": "gateway.service",
                   "msg": "meter cp3 silent", "event": "meter-failing", "meter": "cp3"}


def test_exception_and_odd_extras_stay_one_json_line() -> None:
    try:
        raise ValueError("bad\nframe")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.WARNING, __file__, 1, "failed", (), sys.exc_info())
    record.path = object()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert "ValueError: bad\nframe" in doc["exception"] and doc["path"].startswith("<object")
