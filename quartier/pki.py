"""A small X.509 PKI for the MQTT link: a site CA, the broker's server certificate and client certificates.

Mosquitto authenticates every client by its certificate (``require_certificate true``) and takes the
certificate's common name as the MQTT username (``use_identity_as_username true``); the ACL then lets each
identity touch only its own topics (see :mod:`cli.devservers.mosquitto` and docs/operations.md, "MQTT security").

Identities (the CN of the client certificate):

* a gateway: its gateway id verbatim (``gw-parking-nord``), the same string as its topic level;
* the cloud: ``cloud`` (:data:`CLOUD_IDENTITY`), a name no gateway may take.

Layout written by :func:`create_site_pki` (one folder, e.g. ``<site>/pki``)::

    ca.crt  ca.key                 the site CA (keep ca.key offline in production)
    server.crt  server.key         the broker
    cloud.crt  cloud.key           the cloud service
    <gateway_id>.crt  <gateway_id>.key   one pair per gateway

Keys are ECDSA P-256, private keys PKCS#8 PEM written with mode 0600 and never overwritten unless
``force``. Certificates are PEM, mode 0644. Validity periods are in days.

Issuing a gateway certificate from the command line (the ``quartier pki gateway`` sub-command wraps
:func:`issue_gateway_cert`)::

    issue_gateway_cert(ca_dir=Path("/etc/quartier/pki"), out_dir=Path("/tmp/out"), gateway_id="gw-parking-nord")
    # -> /tmp/out/gw-parking-nord.crt, /tmp/out/gw-parking-nord.key (0600) ; copy them and ca.crt to the gateway
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from quartier.errors import QuartierError

CLOUD_IDENTITY = "cloud"
"""MQTT identity (certificate CN and broker username) of the cloud service; reserved, no gateway may use it."""

RESERVED_IDENTITIES = frozenset({CLOUD_IDENTITY, "server", "ca"})
"""Names a gateway may not take: they would clash with the cloud's identity or with the PKI's own files."""

DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1", "::1")

CA_DAYS = 3650
LEAF_DAYS = 825


class PkiError(QuartierError):
    """A certificate or key file is missing, unreadable, of the wrong kind, or would be overwritten."""


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class SitePki:
    """Every file of a site PKI made by :func:`create_site_pki`."""

    directory: Path
    ca: CertFiles
    server: CertFiles
    cloud: CertFiles
    gateways: dict[str, CertFiles]


@dataclass(frozen=True)
class CertificateAuthority:
    """A loaded CA: its certificate and private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    files: CertFiles


# ---------------------------------------------------------------------------------------------- files


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey, force: bool) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise PkiError(
            f"{path} already exists; refusing to overwrite a private key (use --force to replace it)"
        ) from None
    except OSError as e:
        raise PkiError(f"cannot create {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate, force: bool) -> None:
    if path.exists() and not force:
        raise PkiError(f"{path} already exists; refusing to overwrite a certificate (use --force to replace it)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        os.chmod(path, 0o644)
    except OSError as e:
        raise PkiError(f"cannot write {path}: {e.strerror}") from None


def check_private_key_file(path: Path) -> None:
    """Raise PkiError if ``path`` cannot be read or group/others may read it (the fix is in the message)."""
    try:
        st = path.stat()
    except OSError as e:
        raise PkiError(f"cannot read private key {path}: {e.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PkiError(
            f"private key {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); run: chmod 600 {path}"
        )


def load_certificate(path: Path) -> x509.Certificate:
    """Read a PEM certificate; PkiError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PkiError(f"cannot read certificate {path}: {e.strerror}") from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise PkiError(f"{path} is not a PEM certificate (expected '-----BEGIN CERTIFICATE-----')") from None


def load_ca(directory: Path) -> CertificateAuthority:
    """Load ``ca.crt`` and ``ca.key`` from ``directory`` (made by :func:`create_ca`)."""
    files = CertFiles(directory / "ca.crt", directory / "ca.key")
    cert = load_certificate(files.cert)
    check_private_key_file(files.key)
    try:
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise PkiError(f"{files.key} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{files.key} holds another kind of key; expected the EC private key of the CA")
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise PkiError(f"{files.key} does not belong to {files.cert}; both files must come from the same create_ca")
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise PkiError(f"{files.cert} is not a CA certificate (basicConstraints CA:FALSE)")
    except x509.ExtensionNotFound:
        raise PkiError(f"{files.cert} is not a CA certificate (no basicConstraints)") from None
    return CertificateAuthority(cert, key, files)


# ---------------------------------------------------------------------------------------------- certificates


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Quartier"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def create_ca(directory: Path, common_name: str = "Quartier site CA", days: int = CA_DAYS,
              force: bool = False) -> CertFiles:
    """Create ``ca.key`` (0600) and a self-signed ``ca.crt`` valid ``days`` days in ``directory``."""
    if days < 1:
        raise PkiError(f"CA validity must be at least 1 day, got {days}")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = CertFiles(directory / "ca.crt", directory / "ca.key")
    _write_private(files.key, key, force)
    _write_cert(files.cert, cert, force)
    return files


def _issue(ca: CertificateAuthority, out_dir: Path, stem: str, common_name: str, days: int, force: bool,
           server_names: Sequence[str] = ()) -> CertFiles:
    if days < 1:
        raise PkiError(f"certificate validity must be at least 1 day, got {days}")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + timedelta(days=days), ca.cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server_names
                                              else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if server_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(server_names)), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    files = CertFiles(out_dir / f"{stem}.crt", out_dir / f"{stem}.key")
    _write_private(files.key, key, force)
    _write_cert(files.cert, cert, force)
    return files


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            if not n or any(c in n for c in " /:@"):
                raise PkiError(f"server name {n!r} is neither an IP address nor a DNS name") from None
            out.append(x509.DNSName(n))
    return out


def issue_server_cert(ca_dir: Path, out_dir: Path, names: Sequence[str] = DEFAULT_SERVER_NAMES, stem: str = "server",
                      days: int = LEAF_DAYS, force: bool = False) -> CertFiles:
    """Issue the broker's certificate (``<stem>.crt``/``<stem>.key`` in ``out_dir``) signed by the CA in ``ca_dir``.

    ``names`` are the DNS names and IP addresses clients use to reach the broker (subjectAltName); clients check
    the broker's name against them. The first one is also the CN.
    """
    if not names:
        raise PkiError("a server certificate needs at least one DNS name or IP address")
    return _issue(load_ca(ca_dir), out_dir, stem, names[0], days, force, server_names=list(names))


def issue_client_cert(ca_dir: Path, out_dir: Path, identity: str, days: int = LEAF_DAYS,
                      force: bool = False) -> CertFiles:
    """Issue a client certificate whose CN is the MQTT ``identity``: ``<identity>.crt`` and ``<identity>.key``."""
    if not identity or any(c in identity for c in "/+#\0") or identity.startswith("."):
        raise PkiError(f"MQTT identity {identity!r} is invalid: it must be non-empty without '/', '+', '#'")
    return _issue(load_ca(ca_dir), out_dir, identity, identity, days, force)


def issue_gateway_cert(ca_dir: Path, out_dir: Path, gateway_id: str, days: int = LEAF_DAYS,
                       force: bool = False) -> CertFiles:
    """Issue the client certificate of one gateway (for ``quartier pki gateway``).

    Args:
        ca_dir: folder holding ``ca.crt`` and ``ca.key`` (made by :func:`create_ca` or :func:`create_site_pki`).
        out_dir: where ``<gateway_id>.crt`` and ``<gateway_id>.key`` (0600) are written.
        gateway_id: the gateway's id as in its gateway.toml; it becomes the certificate CN, hence the broker
            username, and the ACL lets it use only ``quartier/v1/<gateway_id>/...``.
        days: validity in days (capped at the CA's own expiry).
        force: replace existing files instead of refusing.

    Returns:
        The certificate and key paths. Copy both, and ``ca.crt``, to the gateway and point ``[mqtt]`` ``tls_ca``,
        ``tls_cert`` and ``tls_key`` at them.

    Raises:
        PkiError: invalid or reserved gateway id, missing/unreadable CA, or files that already exist.
    """
    from quartier.keys import check_gateway_id

    try:
        check_gateway_id(gateway_id)
    except ValueError as e:
        raise PkiError(str(e)) from None
    if gateway_id in RESERVED_IDENTITIES:
        raise PkiError(f"gateway id {gateway_id!r} is reserved (it is the name of another MQTT identity); pick another")
    return issue_client_cert(ca_dir, out_dir, gateway_id, days, force)


def copy_ca_certificate(ca_dir: Path, out_dir: Path) -> Path:
    """Put the CA's certificate (``ca.crt``, mode 0644) beside a leaf's files, where the configs expect it.

    An existing ``ca.crt`` is replaced only when it differs (a new CA): the leaves issued now chain to this one.
    """
    src, dst = ca_dir / "ca.crt", out_dir / "ca.crt"
    try:
        data = src.read_bytes()
        if not dst.exists() or dst.read_bytes() != data:
            out_dir.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
        os.chmod(dst, 0o644)
    except OSError as e:
        raise PkiError(f"cannot copy {src} to {dst}: {e.strerror}") from None
    return dst


def create_site_pki(directory: Path, gateway_ids: Sequence[str] = (),
                    server_names: Sequence[str] = DEFAULT_SERVER_NAMES, force: bool = False) -> SitePki:
    """Create a CA, the broker's certificate, the cloud's and one per gateway, all in ``directory``.

    Meant for tests, the demo and small single-host sites; in production keep ``ca.key`` off the servers.
    """
    ca = create_ca(directory, force=force)
    server = issue_server_cert(directory, directory, server_names, force=force)
    cloud = issue_client_cert(directory, directory, CLOUD_IDENTITY, force=force)
    gateways = {gid: issue_gateway_cert(directory, directory, gid, force=force) for gid in gateway_ids}
    return SitePki(directory, ca, server, cloud, gateways)


def certificate_identity(path: Path) -> str:
    """The CN of the certificate in ``path``, i.e. the MQTT identity the broker will see."""
    cns = load_certificate(path).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        raise PkiError(f"{path} has no common name (CN)")
    value = cns[0].value
    return value if isinstance(value, str) else value.decode()
