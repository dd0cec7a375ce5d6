"""Key files: creation with 0600 permissions, loading and rotation.

Gateways sign with Ed25519; the cloud decrypts with X25519 (HPKE). Private
keys are PKCS#8 PEM files readable by their owner only; public keys are
SubjectPublicKeyInfo PEM files.

Gateway key rotation (on the gateway, :func:`rotate_gateway_key`) writes a new
``gateway.key`` at the same path, atomically (temporary file 0600, fsync,
rename), and keeps the previous pair as ``gateway.key.old`` / ``gateway.pub.old``.

The cloud's record of enrolled gateways is in :mod:`quartier.enrolment`.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from dataclasses import dataclass
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


def atomic_write(path: Path, data: bytes, mode: int) -> None:
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
    atomic_write(old_priv, priv.read_bytes(), 0o600)
    atomic_write(old_pub, current_pub.public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    atomic_write(
        priv, new.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600
    )
    atomic_write(pub, new.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return Rotation(priv, pub, key_id(new.public_key()).hex(), old_priv, old_pub, key_id(current_pub).hex())
