"""The batch envelope: signed header, HPKE-encrypted payload (docs/protocol.md).

Layout, all integers big-endian::

    0   4   magic        b"QRT1"
    4   1   version      1
    5   1   suite        1 = HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256),
                             HKDF-SHA256, AES-256-GCM
    6   1   id_len       length of the gateway id, 1..63
    7   n   gateway_id   ASCII
    .   8   key_id       SHA-256(gateway Ed25519 raw public key)[:8]
    .   8   seq          per-gateway sequence number, from 1
    .   8   created_ms   gateway time when sealed [ms since epoch, UTC]
    .   4   ct_len       length of ct
    .   m   ct           HPKE enc (32 bytes) || AES-256-GCM ciphertext and tag
    .   64  signature    Ed25519 over every byte before it

The HPKE ``info`` is ``b"quartier/v1/batch" + header`` (magic through
created_ms), so a ciphertext cannot be moved under another header. The cloud
verifies the signature before it decrypts anything.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from quartier.errors import EnvelopeError
from quartier.keys import GATEWAY_ID_RE, key_id

MAGIC = b"QRT1"
VERSION = 1
SUITE_HPKE_X25519_SHA256_AES256GCM = 1
INFO_PREFIX = b"quartier/v1/batch"
SIGNATURE_LEN = 64
MAX_ENVELOPE_LEN = 4 * 1024 * 1024
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_HPKE_OVERHEAD = 32 + 16


@dataclass(frozen=True)
class Header:
    """The signed, cleartext part of an envelope."""

    gateway_id: str
    key_id: bytes
    seq: int
    created_ms: int
    version: int = VERSION
    suite: int = SUITE_HPKE_X25519_SHA256_AES256GCM

    def to_bytes(self) -> bytes:
        gid = self.gateway_id.encode("ascii")
        return (
            MAGIC
            + struct.pack(">BBB", self.version, self.suite, len(gid))
            + gid
            + self.key_id
            + struct.pack(">QQ", self.seq, self.created_ms)
        )


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope; ``signed`` is every byte the signature covers."""

    header: Header
    ciphertext: bytes
    signature: bytes
    signed: bytes
    header_bytes: bytes


def seal(
    payload: bytes,
    *,
    gateway_id: str,
    seq: int,
    created_ms: int,
    signing_key: Ed25519PrivateKey,
    cloud_public_key: X25519PublicKey,
) -> bytes:
    """Encrypt ``payload`` to the cloud and sign the whole envelope."""
    if not GATEWAY_ID_RE.match(gateway_id):
        raise ValueError(f"invalid gateway id {gateway_id!r}")
    if not 1 <= seq < 2**64:
        raise ValueError(f"seq must be in 1..2**64-1, got {seq}")
    header = Header(gateway_id, key_id(signing_key.public_key()), seq, created_ms).to_bytes()
    ct = _SUITE.encrypt(payload, cloud_public_key, info=INFO_PREFIX + header)
    signed = header + struct.pack(">I", len(ct)) + ct
    return signed + signing_key.sign(signed)


def parse(data: bytes) -> Envelope:
    """Split an envelope into its fields without verifying anything.

    Raises EnvelopeError('malformed', ...) saying which field is wrong and at
    which byte offset.
    """
    def fail(offset: int, what: str) -> EnvelopeError:
        return EnvelopeError("malformed", f"{what} (byte {offset} of {len(data)})")

    if len(data) > MAX_ENVELOPE_LEN:
        raise fail(0, f"envelope longer than {MAX_ENVELOPE_LEN} bytes")
    if len(data) < 7 or data[:4] != MAGIC:
        raise fail(0, "magic is not QRT1: not a Quartier batch envelope")
    version, suite, id_len = data[4], data[5], data[6]
    if version != VERSION:
        raise fail(4, f"unsupported version {version}")
    if suite != SUITE_HPKE_X25519_SHA256_AES256GCM:
        raise fail(5, f"unsupported suite {suite}")
    p = 7
    if id_len == 0 or len(data) < p + id_len + 28:
        raise fail(6, "truncated header")
    try:
        gateway_id = data[p : p + id_len].decode("ascii")
    except UnicodeDecodeError:
        raise fail(p, "gateway id is not ASCII") from None
    if not GATEWAY_ID_RE.match(gateway_id):
        raise fail(p, f"invalid gateway id {gateway_id!r}")
    p += id_len
    kid = data[p : p + 8]
    seq, created_ms = struct.unpack_from(">QQ", data, p + 8)
    p += 24
    header_bytes = data[:p]
    (ct_len,) = struct.unpack_from(">I", data, p)
    p += 4
    if ct_len < _HPKE_OVERHEAD:
        raise fail(p - 4, f"ciphertext length {ct_len} is shorter than the HPKE overhead")
    if len(data) != p + ct_len + SIGNATURE_LEN:
        raise fail(p - 4, f"length mismatch: ct_len {ct_len} + signature needs {p + ct_len + SIGNATURE_LEN} bytes")
    if seq == 0:
        raise fail(7 + id_len + 8, "seq 0 is not allowed")
    ct = data[p : p + ct_len]
    return Envelope(
        header=Header(gateway_id, kid, seq, created_ms, version, suite),
        ciphertext=ct,
        signature=data[p + ct_len :],
        signed=data[: p + ct_len],
        header_bytes=header_bytes,
    )


def verify(envelope: Envelope, public_key: Ed25519PublicKey) -> None:
    """Check the gateway's signature; raises EnvelopeError('bad-signature') or ('unknown-key')."""
    if envelope.header.key_id != key_id(public_key):
        raise EnvelopeError(
            "unknown-key",
            f"gateway {envelope.header.gateway_id!r} signed with key id {envelope.header.key_id.hex()}, "
            f"enrolled key id is {key_id(public_key).hex()}",
        )
    try:
        public_key.verify(envelope.signature, envelope.signed)
    except InvalidSignature:
        raise EnvelopeError("bad-signature", f"signature of batch seq {envelope.header.seq} does not verify") from None


def decrypt(envelope: Envelope, cloud_private_key: X25519PrivateKey) -> bytes:
    """Decrypt a verified envelope's payload; raises EnvelopeError('decrypt-failed')."""
    try:
        return _SUITE.decrypt(envelope.ciphertext, cloud_private_key, info=INFO_PREFIX + envelope.header_bytes)
    except (InvalidTag, ValueError) as e:
        raise EnvelopeError(
            "decrypt-failed",
            f"batch seq {envelope.header.seq} does not decrypt with this cloud key ({type(e).__name__}); "
            "was the gateway given another cloud.pub?",
        ) from None


def open_verified(
    data: bytes, public_key: Ed25519PublicKey, cloud_private_key: X25519PrivateKey
) -> tuple[Header, bytes]:
    """Parse, verify, then decrypt. Returns the header and the plaintext payload."""
    env = parse(data)
    verify(env, public_key)
    return env.header, decrypt(env, cloud_private_key)
