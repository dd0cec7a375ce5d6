"""The batch payload: the plaintext inside an envelope (docs/protocol.md).

Compact UTF-8 JSON::

    {"v": 1, "gateway": "gw-1", "seq": 42,
     "intervals": [{"meter": "cp1", "start": 1768780800, "wh": 1850,
                    "index_start_wh": 5000000, "index_end_wh": 5001850,
                    "quality": "measured"}, ...]}

``gateway`` and ``seq`` repeat the signed header so that the plaintext is
bound to it; the cloud checks that they agree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from quartier.errors import EnvelopeError
from quartier.series import Interval

PAYLOAD_VERSION = 1


def encode(gateway_id: str, seq: int, intervals: Sequence[Interval]) -> bytes:
    """Serialise a batch payload."""
    doc = {"v": PAYLOAD_VERSION, "gateway": gateway_id, "seq": seq, "intervals": [i.to_dict() for i in intervals]}
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(payload: bytes, gateway_id: str, seq: int) -> list[Interval]:
    """Parse a payload and check it against its header; EnvelopeError('bad-payload') says where."""
    def bad(detail: str) -> EnvelopeError:
        return EnvelopeError("bad-payload", f"batch {gateway_id}#{seq}: {detail}")

    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise bad("payload is not a JSON object")
    if doc.get("v") != PAYLOAD_VERSION:
        raise bad(f"field 'v' is {doc.get('v')!r}, expected {PAYLOAD_VERSION}")
    if doc.get("gateway") != gateway_id or doc.get("seq") != seq:
        raise bad(f"payload says {doc.get('gateway')!r}#{doc.get('seq')!r}, header says {gateway_id!r}#{seq}")
    items = doc.get("intervals")
    if not isinstance(items, list):
        raise bad("field 'intervals' is not a list")
    out: list[Interval] = []
    for n, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise TypeError("not an object")
            out.append(Interval.from_dict(item))
        except KeyError as e:
            raise bad(f"intervals[{n}]: field {e.args[0]!r} is missing") from None
        except (TypeError, ValueError) as e:
            raise bad(f"intervals[{n}]: {e}") from None
    return out
