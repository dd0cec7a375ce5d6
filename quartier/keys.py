"""Key files: creation with 0600 permissions, loading, rotation, and the gateway registry.

Gateways sign with Ed25519; the cloud decrypts with X25519 (HPKE). Private
keys are PKCS#8 PEM files readable by their owner only; public keys are
SubjectPublicKeyInfo PEM files.

Gateway key rotation (on the gateway, :func:`rotate_gateway_key`) writes a new
``gateway.key`` at the same path, atomically (temporary file 0600, fsync,
rename), and keeps the previous pair as ``gateway.key.old`` / ``gateway.pub.old``.

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

import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from quartier.errors import QuartierError

GATEWAY_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
"""Gateway ids: lower-case letters, digits, ``_`` and ``-``; they are MQTT topic levels."""


class KeyFileError(QuartierError):
    """A key file is missing, unreadable, of the wrong kind or too widely readable."""


def check_gateway_id(gateway_id: str) -> str:
    """Return ``gateway_id`` if valid, else raise ValueError saying what is allowed."""
    if not GATEWAY_ID_RE.match(gateway_id):
        raise ValueError(
            f"gateway id {gateway_id!r} is invalid: use 1-63 of a-z, 0-9, '_' and '-', starting with a letter or digit"
        )
    return gateway_id


def key_id(public_key: Ed25519PublicKey) -> bytes:
    """First 8 bytes of SHA-256 over the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8]


def _write_private(path: Path, pem: bytes, force: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key (use --force to replace it)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)


def _write_public(path: Path, pem: bytes) -> None:
    path.write_bytes(pem)
    os.chmod(path, 0o644)


def _create(directory: Path, stem: str, key: Ed25519PrivateKey | X25519PrivateKey, force: bool) -> tuple[Path, Path]:
    priv, pub = directory / f"{stem}.key", directory / f"{stem}.pub"
    _write_private(
        priv,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        force,
    )
    _write_public(
        pub, key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return priv, pub


def create_gateway_key(directory: Path, force: bool = False) -> tuple[Path, Path]:
    """Create ``gateway.key`` (Ed25519, 0600) and ``gateway.pub`` in ``directory``."""
    return _create(directory, "gateway", Ed25519PrivateKey.generate(), force)


def create_cloud_key(directory: Path, force: bool = False) -> tuple[Path, Path]:
    """Create ``cloud.key`` (X25519, 0600) and ``cloud.pub`` in ``directory``."""
    return _create(directory, "cloud", X25519PrivateKey.generate(), force)


def _read(path: Path, private: bool) -> bytes:
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from None
    if private and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"private key {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); run: chmod 600 {path}"
        )
    return data


_K = TypeVar("_K")  # the key classes are abstract: mypy wants type-abstract ignored where they are passed


def _load(path: Path, private: bool, kind: type[_K], what: str) -> _K:
    data = _read(path, private)
    try:
        key = (
            serialization.load_pem_private_key(data, password=None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except ValueError:
        raise KeyFileError(f"{path} is not a PEM key file; expected {what}") from None
    if not isinstance(key, kind):
        raise KeyFileError(f"{path} holds another kind of key; expected {what}")
    return key


def load_gateway_private(path: Path) -> Ed25519PrivateKey:
    return _load(path, True, Ed25519PrivateKey,  # type: ignore[type-abstract]
                 "an Ed25519 private key (a gateway's gateway.key)")


def load_gateway_public(path: Path) -> Ed25519PublicKey:
    return _load(path, False, Ed25519PublicKey,  # type: ignore[type-abstract]
                 "an Ed25519 public key (a gateway's gateway.pub)")


def load_cloud_private(path: Path) -> X25519PrivateKey:
    return _load(path, True, X25519PrivateKey,  # type: ignore[type-abstract]
                 "an X25519 private key (the cloud's cloud.key)")


def load_cloud_public(path: Path) -> X25519PublicKey:
    return _load(path, False, X25519PublicKey,  # type: ignore[type-abstract]
                 "an X25519 public key (the cloud's cloud.pub)")




# --- gateway key rotation -------------------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. a platform that cannot open directories; the renames are still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (``mode``, fsync, rename).

    At every moment ``path`` is either its old content or the new one, never a partial file.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class Rotation:
    """Files written by :func:`rotate_gateway_key`."""

    private_key: Path
    public_key: Path
    key_id: str
    old_private_key: Path
    old_public_key: Path
    old_key_id: str


def rotate_gateway_key(directory: Path) -> Rotation:
    """Replace ``gateway.key``/``gateway.pub`` in ``directory`` by a new pair; keep the old one as ``*.old``.

    The new private key is written to a temporary 0600 file, fsynced and renamed over ``gateway.key``, so the
    gateway config's ``signing_key`` path stays valid and always holds a whole key. The previous pair is first
    copied (same way) to ``gateway.key.old`` / ``gateway.pub.old``, replacing an earlier ``.old`` pair. A running
    gateway keeps signing with the key it loaded until it is restarted.
    """
    priv, pub = directory / "gateway.key", directory / "gateway.pub"
    old_priv, old_pub = directory / "gateway.key.old", directory / "gateway.pub.old"
    if not priv.exists():
        raise KeyFileError(f"{priv} does not exist; create the first key with: quartier keys gateway --dir {directory}")
    current = load_gateway_private(priv)  # also refuses a key readable by others
    current_pub = current.public_key()
    new = Ed25519PrivateKey.generate()
    pem = serialization.Encoding.PEM
    _atomic_write(old_priv, priv.read_bytes(), 0o600)
    _atomic_write(old_pub, current_pub.public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    _atomic_write(
        priv, new.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600
    )
    _atomic_write(pub, new.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return Rotation(priv, pub, key_id(new.public_key()).hex(), old_priv, old_pub, key_id(current_pub).hex())


# --- the cloud's gateway registry -----------------------------------------------------------------------------------

REGISTRY_VERSION = 2
DEFAULT_GRACE = timedelta(days=7)
"""How long a gateway's previous key stays accepted after a new one is enrolled."""

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class RegistryError(KeyFileError):
    """The gateway registry cannot be read, or a requested change does not apply to it."""


def utc_now() -> datetime:
    """Current UTC time, to the second (the registry's resolution)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def format_utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime(_TIME_FORMAT)


def _parse_utc(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a UTC time string like 2026-01-19T08:00:00Z")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where} {value!r} is not a time like 2026-01-19T08:00:00Z") from None
    if t.tzinfo is None:
        raise ValueError(f"{where} {value!r} has no time zone; write UTC with a final Z")
    return t.astimezone(timezone.utc)


def _opt_utc(entry: dict[str, object], name: str, where: str) -> datetime | None:
    value = entry.get(name)
    return None if value is None else _parse_utc(value, f"{where}.{name}")


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
        _parse_utc(raw.get("enrolled_at"), f"{where}.enrolled_at"),
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
        enrolled_at = fallback_time if enrolled is None else _parse_utc(enrolled, f"{where}.enrolled_at")
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


def parse_registry(raw: object, fallback_time: datetime | None = None) -> dict[str, GatewayEntry]:
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
    if version != REGISTRY_VERSION:
        raise ValueError(f"format version {version!r} is not supported (this Quartier reads 1 and 2); upgrade Quartier")
    return _from_v2(raw.get("gateways"))


def registry_json(entries: dict[str, GatewayEntry]) -> str:
    """The format-2 JSON text of ``entries``."""
    doc = {"version": REGISTRY_VERSION, "gateways": {gid: entries[gid].to_json() for gid in sorted(entries)}}
    return json.dumps(doc, indent=2) + "\n"


def load_registry(registry: Path) -> dict[str, GatewayEntry]:
    """Enrolled gateways: id -> :class:`GatewayEntry` (format 1 is converted in memory)."""
    try:
        text = registry.read_text()
        mtime = datetime.fromtimestamp(registry.stat().st_mtime, timezone.utc).replace(microsecond=0)
    except OSError as e:
        raise RegistryError(f"cannot read gateway registry {registry}: {e.strerror}") from None
    try:
        return parse_registry(json.loads(text), mtime)
    except json.JSONDecodeError as e:
        raise RegistryError(
            f"gateway registry {registry} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except ValueError as e:
        raise RegistryError(f"gateway registry {registry}: {e}") from None


def save_registry(registry: Path, entries: dict[str, GatewayEntry]) -> None:
    """Write ``entries`` in format 2, atomically (temporary file, fsync, rename); mode 0644, it holds no secret."""
    registry.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(registry, registry_json(entries).encode(), 0o644)


@contextmanager
def _locked(registry: Path) -> Iterator[dict[str, GatewayEntry]]:
    """Load the registry under an exclusive lock (``<registry>.lock``) so two commands cannot lose a change."""
    import fcntl

    registry.parent.mkdir(parents=True, exist_ok=True)
    with open(registry.with_name(registry.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield load_registry(registry) if registry.exists() else {}


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
                    raise RegistryError(
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
                raise RegistryError(
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
        save_registry(registry, entries)
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
        raise RegistryError(f"gateway registry {registry} does not exist; nothing is enrolled there")
    with _locked(registry) as entries:
        entry = entries.get(gateway_id)
        if entry is None:
            known = ", ".join(sorted(entries)) or "none"
            raise RegistryError(f"gateway {gateway_id!r} is not in {registry} (enrolled: {known})")
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
                raise RegistryError(f"gateway {gateway_id!r} has no key {key.lower()} (its keys: {ids})")
            if found.revoked_at is not None:
                return entry
            keys = tuple(replace(k, revoked_at=now, revoked_reason=reason) if k is found else k for k in entry.keys)
            entry = replace(entry, keys=keys)
        entries[gateway_id] = entry
        save_registry(registry, entries)
    return entry


def registry_table(entries: dict[str, GatewayEntry], now: datetime | None = None) -> list[tuple[str, ...]]:
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
