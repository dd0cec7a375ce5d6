"""The acknowledgement: the cloud's answer about one batch, the one contract both sides encode and decode.

UTF-8 JSON on ``quartier/v1/<gateway_id>/ack`` (docs/protocol.md, "Acknowledgement")::

    {"seq":1,"status":"stored"}
    {"seq":1,"status":"duplicate"}
    {"seq":7,"status":"rejected","reason":"decrypt-failed"}

``stored`` and ``duplicate`` remove the batch from the gateway's outbox; ``rejected`` sets it aside there
(kept, never resent). Acknowledgements are not signed: the broker's ACL lets only the cloud publish them.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

#: The longest acknowledgement a gateway reads; a real one is under 200 bytes. [bytes]
MAX_ACK_BYTES = 4096


class AckStatus(str, enum.Enum):
    """What happened to one batch at the cloud.

    ``RETRY`` is never sent: the store or the gateway registry failed, so the cloud leaves the message
    unacknowledged and the broker delivers it again.
    """

    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    RETRY = "retry"

    @property
    def sent(self) -> bool:
        """Whether this status is answered on the ack topic."""
        return self is not AckStatus.RETRY

    @property
    def done(self) -> bool:
        """Whether the batch leaves the gateway's outbox (it reached the store, now or before)."""
        return self in (AckStatus.STORED, AckStatus.DUPLICATE)


class AckError(ValueError):
    """An acknowledgement that is not one (not JSON, missing or wrong fields, an unknown status)."""


@dataclass(frozen=True)
class Ack:
    """One acknowledgement.

    Attributes:
        seq: the batch's sequence number.
        status: a sent status (not ``RETRY``).
        reason: why a batch was rejected (the ingest's stable reason code); None otherwise.
    """

    seq: int
    status: AckStatus
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.status.sent:
            raise ValueError(f"status {self.status.value!r} is never sent on the ack topic")

    def encode(self) -> bytes:
        """The compact JSON document (``reason`` only when there is one)."""
        doc: dict[str, object] = {"seq": self.seq, "status": self.status.value}
        if self.reason:
            doc["reason"] = self.reason
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Ack:
        """Parse an acknowledgement; raises :class:`AckError` saying what is wrong."""
        if len(payload) > MAX_ACK_BYTES:
            raise AckError(f"{len(payload)} bytes, more than {MAX_ACK_BYTES}")
        try:
            doc = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise AckError(f"not JSON: {e}") from None
        if not isinstance(doc, dict):
            raise AckError("not a JSON object")
        seq, status, reason = doc.get("seq"), doc.get("status"), doc.get("reason")
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise AckError(f"seq must be an integer, got {seq!r}")
        try:
            parsed = AckStatus(status)
        except ValueError:
            raise AckError(f"unknown status {status!r}") from None
        if not parsed.sent:
            raise AckError(f"status {status!r} is never sent")
        if reason is not None and not isinstance(reason, str):
            raise AckError(f"reason must be a string, got {reason!r}")
        return cls(seq, parsed, reason)
