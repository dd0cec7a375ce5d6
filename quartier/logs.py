"""Log output: plain lines for a terminal, or one JSON object per line for journald/Loki/Elasticsearch.

The JSON form keeps the fields a machine filters on (time in UTC, level,
logger, message) apart, plus any ``extra={...}`` the caller attached, so an
operator can search "all errors of meter cp3" without parsing sentences.
Problems are logged once when they start and once when they clear (see
``gateway.service``); this module does not deduplicate.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

#: Attributes every LogRecord has; anything else was passed with ``extra=`` and goes into the JSON object.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """``{"t": "2026-11-23T08:45:00.123Z", "level": "ERROR", "logger": "...", "msg": "...", ...}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        t = datetime.fromtimestamp(record.created, timezone.utc)
        doc: dict[str, object] = {
            "t": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure(level: int, json_lines: bool) -> None:
    """Set up the root logger once for a command: plain text or JSON lines on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
