"""Key files: creation with 0600 permissions, loading, and the gateway registry.

Gateways sign with Ed25519; the cloud decrypts with X25519 (HPKE). Private
keys are PKCS#8 PEM files readable by their owner only; public keys are
SubjectPublicKeyInfo PEM files. The cloud's registry of enrolled gateways is a
JSON file mapping gateway id to its public key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from datetime import datetime, timezone
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
    _write_public(pub, key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
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


_K = TypeVar("_K")


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
    return _load(path, True, Ed25519PrivateKey, "an Ed25519 private key (a gateway's gateway.key)")


def load_gateway_public(path: Path) -> Ed25519PublicKey:
    return _load(path, False, Ed25519PublicKey, "an Ed25519 public key (a gateway's gateway.pub)")


def load_cloud_private(path: Path) -> X25519PrivateKey:
    return _load(path, True, X25519PrivateKey, "an X25519 private key (the cloud's cloud.key)")


def load_cloud_public(path: Path) -> X25519PublicKey:
    return _load(path, False, X25519PublicKey, "an X25519 public key (the cloud's cloud.pub)")


def enrol_gateway(registry: Path, gateway_id: str, public_key_path: Path) -> None:
    """Add (or replace) ``gateway_id`` with the key in ``public_key_path`` in the registry file."""
    check_gateway_id(gateway_id)
    pub = load_gateway_public(public_key_path)
    entries = load_registry(registry) if registry.exists() else {}
    entries[gateway_id] = pub
    raw = {
        gid: {
            "ed25519": k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex(),
            "enrolled_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for gid, k in entries.items()
    }
    tmp = registry.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, registry)


def load_registry(registry: Path) -> dict[str, Ed25519PublicKey]:
    """Enrolled gateways: id -> Ed25519 public key."""
    try:
        raw = json.loads(registry.read_text())
    except OSError as e:
        raise KeyFileError(f"cannot read gateway registry {registry}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise KeyFileError(f"gateway registry {registry} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    out: dict[str, Ed25519PublicKey] = {}
    for gid, entry in raw.items():
        try:
            out[gid] = Ed25519PublicKey.from_public_bytes(bytes.fromhex(entry["ed25519"]))
        except (KeyError, TypeError, ValueError):
            raise KeyFileError(f"gateway registry {registry}: entry {gid!r} has no valid 'ed25519' hex key") from None
    return out
