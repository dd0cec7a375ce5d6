"""Gateway enrolment: which gateways, and which of their keys, the cloud accepts.

The cloud's registry of enrolled gateways, ``gateways.json``, format 2::

    {
      "version": 2,
      "gateways": {
        "gw-parking-nord": {
          "keys": [
            {"key_id": "56475aa75463474c", "public_key": "<64 hex: raw Ed25519 public key>",
             "enrolled_at": "2026-01-19T08:00:00Z",
             "retired_at": "2026-06-01T09:00:00Z", "accepted_until": "2026-06-08T09:00:00Z"},
            {"key_id": "0f3c...", "public_key": "...", "enrolled_at": "2026-06-01T09:00:00Z"}
          ],
          "revoked_at": null, "revoked_reason": null
        }
      }
    }

Per gateway, ``keys`` lists every key ever enrolled, oldest first. Timestamps
are UTC, ``YYYY-MM-DDTHH:MM:SSZ``. A key without ``retired_at`` is *current*
(normally exactly one). A retired key is still accepted while the cloud's
clock is before its ``accepted_until`` (the grace period given at enrolment of
its successor), and refused as ``expired-key`` from then on. A key may carry
its own ``revoked_at`` / ``revoked_reason`` (refused as ``revoked-key``); a
gateway-level ``revoked_at`` refuses every batch of that gateway
(``revoked-gateway``). ``key_id`` is redundant with ``public_key`` and
checked against it on load.

Format 1 (``{"<gateway id>": {"ed25519": "<hex>", "enrolled_at": "..."}}``) is
still read, as one current key per gateway, and rewritten as format 2 by the
next change (:func:`enrol_gateway`, :func:`revoke`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from quartier.keys import KeyFileError, atomic_write, check_gateway_id, key_id, load_gateway_public
from quartier.series import format_utc, parse_utc_datetime, utc_now

ENROLMENT_FORMAT = 2
DEFAULT_GRACE = timedelta(days=7)
"""How long a gateway's previous key stays accepted after a new one is enrolled."""

class EnrolmentError(KeyFileError):
    """The gateway registry (``gateways.json``) cannot be read, or a requested change does not apply to it."""


def _opt_utc(entry: dict[str, object], name: str, where: str) -> datetime | None:
    value = entry.get(name)
    return None if value is None else parse_utc_datetime(value, f"{where}.{name}")


@dataclass(frozen=True)
class EnrolledKey:
    """One public key of a gateway, as recorded in the registry."""

    public_key: Ed25519PublicKey
    enrolled_at: datetime
    retired_at: datetime | None = None
    accepted_until: datetime | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    @property
    def key_id(self) -> str:
        return key_id(self.public_key).hex()

    def to_json(self) -> dict[str, object]:
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out: dict[str, object] = {
            "key_id": self.key_id, "public_key": raw.hex(), "enrolled_at": format_utc(self.enrolled_at)
        }
        for name in ("retired_at", "accepted_until", "revoked_at"):
            value = getattr(self, name)
            if value is not None:
                out[name] = format_utc(value)
        if self.revoked_reason is not None:
            out["revoked_reason"] = self.revoked_reason
        return out


# Key states, as shown by ``quartier keys list``; the refusals are also ingest rejection reasons.
ACCEPTED_STATES = ("current", "grace")
REFUSAL_REASONS = ("revoked-gateway", "revoked-key", "expired-key")


@dataclass(frozen=True)
class GatewayEntry:
    """A gateway in the registry: its keys (oldest first) and whether it is revoked."""

    gateway_id: str
    keys: tuple[EnrolledKey, ...]
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    def find(self, kid: bytes | str) -> EnrolledKey | None:
        """The key with id ``kid`` (8 bytes or 16 hex digits), or None."""
        wanted = kid.hex() if isinstance(kid, bytes) else kid.lower()
        return next((k for k in self.keys if k.key_id == wanted), None)

    @property
    def current(self) -> EnrolledKey | None:
        """The newest key that is neither retired nor revoked."""
        return next((k for k in reversed(self.keys) if k.retired_at is None and k.revoked_at is None), None)

    def state(self, key: EnrolledKey, now: datetime) -> str:
        """``current``, ``grace`` (retired, still accepted), ``expired-key``, ``revoked-key`` or ``revoked-gateway``.

        ``now`` is the cloud's clock; a retired key is accepted while ``now < accepted_until``.
        """
        if self.revoked_at is not None:
            return "revoked-gateway"
        if key.revoked_at is not None:
            return "revoked-key"
        if key.retired_at is None:
            return "current"
        if key.accepted_until is not None and now < key.accepted_until:
            return "grace"
        return "expired-key"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"keys": [k.to_json() for k in self.keys]}
        if self.revoked_at is not None:
            out["revoked_at"] = format_utc(self.revoked_at)
            out["revoked_reason"] = self.revoked_reason or ""
        return out


def _key_from_json(raw: object, where: str) -> EnrolledKey:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object with key_id, public_key and enrolled_at")
    try:
        pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(raw["public_key"]))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}.public_key must be the 64 hex digits of a raw Ed25519 public key") from None
    key = EnrolledKey(
        pub,
        parse_utc_datetime(raw.get("enrolled_at"), f"{where}.enrolled_at"),
        _opt_utc(raw, "retired_at", where),
        _opt_utc(raw, "accepted_until", where),
        _opt_utc(raw, "revoked_at", where),
        None if raw.get("revoked_reason") is None else str(raw["revoked_reason"]),
    )
    if "key_id" in raw and raw["key_id"] != key.key_id:
        raise ValueError(f"{where}.key_id is {raw['key_id']!r} but its public_key has key id {key.key_id}")
    return key


def _from_v1(raw: dict[str, object], fallback_time: datetime) -> dict[str, GatewayEntry]:
    out: dict[str, GatewayEntry] = {}
    for gid, entry in raw.items():
        where = f"gateway {gid!r}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} has no valid 'ed25519' hex key")
        try:
            pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(entry["ed25519"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where} has no valid 'ed25519' hex key") from None
        enrolled = entry.get("enrolled_at")
        enrolled_at = fallback_time if enrolled is None else parse_utc_datetime(enrolled, f"{where}.enrolled_at")
        out[gid] = GatewayEntry(gid, (EnrolledKey(pub, enrolled_at),))
    return out


def _from_v2(gateways: object) -> dict[str, GatewayEntry]:
    if not isinstance(gateways, dict):
        raise ValueError("'gateways' must be an object mapping gateway id to its entry")
    out: dict[str, GatewayEntry] = {}
    for gid, entry in gateways.items():
        where = f"gateways.{gid}"
        check_gateway_id(gid)
        if not isinstance(entry, dict) or not isinstance(entry.get("keys"), list):
            raise ValueError(f"{where} must be an object with a 'keys' list")
        keys = tuple(_key_from_json(k, f"{where}.keys[{i}]") for i, k in enumerate(entry["keys"]))
        reason = entry.get("revoked_reason")
        revoked_at = _opt_utc(entry, "revoked_at", where)
        out[gid] = GatewayEntry(gid, keys, revoked_at, None if reason is None else str(reason))
    return out


def parse_enrolments(raw: object, fallback_time: datetime | None = None) -> dict[str, GatewayEntry]:
    """Registry entries from decoded JSON, format 1 or 2; raises ValueError saying which field is wrong.

    ``fallback_time`` is the enrolment time given to format-1 entries that have none.
    """
    if not isinstance(raw, dict):
        raise ValueError("the top level must be a JSON object")
    version = raw.get("version")
    if isinstance(version, dict):  # format 1 with a gateway that happens to be called "version"
        version = None
    if version is None:
        return _from_v1(raw, fallback_time or utc_now())
    if version != ENROLMENT_FORMAT:
        raise ValueError(f"format version {version!r} is not supported (this Quartier reads 1 and 2); upgrade Quartier")
    return _from_v2(raw.get("gateways"))


def enrolments_json(entries: dict[str, GatewayEntry]) -> str:
    """The format-2 JSON text of ``entries``."""
    doc = {"version": ENROLMENT_FORMAT, "gateways": {gid: entries[gid].to_json() for gid in sorted(entries)}}
    return json.dumps(doc, indent=2) + "\n"


def load_enrolments(registry: Path) -> dict[str, GatewayEntry]:
    """Enrolled gateways: id -> :class:`GatewayEntry` (format 1 is converted in memory)."""
    try:
        text = registry.read_text()
        mtime = datetime.fromtimestamp(registry.stat().st_mtime, timezone.utc).replace(microsecond=0)
    except OSError as e:
        raise EnrolmentError(f"cannot read gateway registry {registry}: {e.strerror}") from None
    try:
        return parse_enrolments(json.loads(text), mtime)
    except json.JSONDecodeError as e:
        raise EnrolmentError(
            f"gateway registry {registry} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except ValueError as e:
        raise EnrolmentError(f"gateway registry {registry}: {e}") from None


def save_enrolments(registry: Path, entries: dict[str, GatewayEntry]) -> None:
    """Write ``entries`` in format 2, atomically (temporary file, fsync, rename); mode 0644, it holds no secret."""
    registry.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(registry, enrolments_json(entries).encode(), 0o644)


@contextmanager
def _locked(registry: Path) -> Iterator[dict[str, GatewayEntry]]:
    """Load the registry under an exclusive lock (``<registry>.lock``) so two commands cannot lose a change."""
    import fcntl

    registry.parent.mkdir(parents=True, exist_ok=True)
    with open(registry.with_name(registry.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield load_enrolments(registry) if registry.exists() else {}


def _check_grace(grace: timedelta) -> timedelta:
    if grace < timedelta(0):
        raise ValueError(f"grace period must not be negative (got {grace})")
    return grace


def enrol_gateway(
    registry: Path,
    gateway_id: str,
    public_key_path: Path,
    *,
    grace: timedelta = DEFAULT_GRACE,
    now: datetime | None = None,
    reinstate: bool = False,
) -> GatewayEntry:
    """Enrol the key in ``public_key_path`` as ``gateway_id``'s current key; returns the updated entry.

    A new gateway gets its first key. For a known gateway the previous current key is retired and stays
    accepted until ``now + grace``. Enrolling the current key again changes nothing. A revoked gateway is
    refused unless ``reinstate`` (its old keys are then refused at once: they may be compromised).
    """
    check_gateway_id(gateway_id)
    _check_grace(grace)
    pub = load_gateway_public(public_key_path)
    now = (now or utc_now()).replace(microsecond=0)
    new = EnrolledKey(pub, now)
    with _locked(registry) as entries:
        entry = entries.get(gateway_id)
        if entry is None:
            entry = GatewayEntry(gateway_id, (new,))
        else:
            if entry.revoked_at is not None:
                if not reinstate:
                    raise EnrolmentError(
                        f"gateway {gateway_id!r} was revoked at {format_utc(entry.revoked_at)} "
                        f"({entry.revoked_reason or 'no reason given'}); "
                        "to admit it again with a new key add --reinstate"
                    )
                grace = timedelta(0)
                entry = replace(entry, revoked_at=None, revoked_reason=None)
            known = entry.find(new.key_id)
            if known is not None:
                if entry.current is known:
                    return entry  # already the current key: nothing to do
                raise EnrolmentError(
                    f"key {new.key_id} was already enrolled for {gateway_id!r} and is {entry.state(known, now)}; "
                    f"a key is never reinstated: create a new one on the gateway (quartier keys rotate --dir ...)"
                )
            keys = tuple(
                replace(k, retired_at=now, accepted_until=now + grace)
                if k.retired_at is None and k.revoked_at is None
                else k
                for k in entry.keys
            )
            entry = replace(entry, keys=keys + (new,))
        entries[gateway_id] = entry
        save_enrolments(registry, entries)
    return entry


def revoke(
    registry: Path,
    gateway_id: str,
    reason: str = "",
    *,
    key: str | None = None,
    now: datetime | None = None,
) -> GatewayEntry:
    """Revoke a whole gateway, or with ``key`` (16 hex digits) one of its keys; returns the updated entry.

    From the next registry read on, the cloud refuses its batches as ``revoked-gateway`` / ``revoked-key``.
    Revoking again keeps the first revocation time and reason.
    """
    now = (now or utc_now()).replace(microsecond=0)
    if not registry.exists():
        raise EnrolmentError(f"gateway registry {registry} does not exist; nothing is enrolled there")
    with _locked(registry) as entries:
        entry = entries.get(gateway_id)
        if entry is None:
            known = ", ".join(sorted(entries)) or "none"
            raise EnrolmentError(f"gateway {gateway_id!r} is not in {registry} (enrolled: {known})")
        if key is None:
            if entry.revoked_at is not None:
                return entry
            entry = replace(entry, revoked_at=now, revoked_reason=reason)
        else:
            if not re.fullmatch(r"[0-9a-fA-F]{16}", key):
                raise ValueError(f"key id {key!r} is invalid: give the 16 hex digits shown by quartier keys list")
            found = entry.find(key)
            if found is None:
                ids = ", ".join(k.key_id for k in entry.keys)
                raise EnrolmentError(f"gateway {gateway_id!r} has no key {key.lower()} (its keys: {ids})")
            if found.revoked_at is not None:
                return entry
            keys = tuple(replace(k, revoked_at=now, revoked_reason=reason) if k is found else k for k in entry.keys)
            entry = replace(entry, keys=keys)
        entries[gateway_id] = entry
        save_enrolments(registry, entries)
    return entry


def enrolment_table(entries: dict[str, GatewayEntry], now: datetime | None = None) -> list[tuple[str, ...]]:
    """Rows (gateway, key id, state, enrolled, detail) for ``quartier keys list``, header first."""
    now = now or utc_now()
    rows: list[tuple[str, ...]] = [("GATEWAY", "KEY ID", "STATE", "ENROLLED", "DETAIL")]
    for gid in sorted(entries):
        entry = entries[gid]
        for k in entry.keys:
            state = entry.state(k, now)
            if state == "revoked-gateway":
                detail = f"gateway revoked {format_utc(entry.revoked_at)}"  # type: ignore[arg-type]
                detail += f": {entry.revoked_reason}" if entry.revoked_reason else ""
            elif state == "revoked-key":
                detail = f"revoked {format_utc(k.revoked_at)}"  # type: ignore[arg-type]
                detail += f": {k.revoked_reason}" if k.revoked_reason else ""
            elif state == "grace":
                detail = f"accepted until {format_utc(k.accepted_until)}"  # type: ignore[arg-type]
            elif state == "expired-key":
                until = k.accepted_until or k.retired_at
                detail = f"refused since {format_utc(until)}" if until else ""
            else:
                detail = ""
            shown = state.replace("-key", "").replace("-gateway", "")
            rows.append((gid, k.key_id, shown, format_utc(k.enrolled_at), detail))
    return rows
