"""The site's Mosquitto: the one configuration it runs, and the files a real broker user can read.

``quartier pki broker`` writes, under the broker's folder (``/etc/mosquitto`` on Debian)::

    certs/ca.crt        the site CA, to check client certificates
    certs/server.crt    the broker's certificate (its host names and addresses)
    certs/server.key    its private key: mode 0600, owned by the broker's user (Debian: ``mosquitto``)
    quartier.acl        each gateway only its own topics (:func:`quartier.topics.acl_text`)
    conf.d/quartier.conf  the listener (:func:`config_text`)

Debian's Mosquitto is started as root and drops to the ``mosquitto`` user before it reads the key, so the key
must belong to that user; a root-only key gives "Unable to load server key file ... Permission denied".

The broker takes each client's certificate CN as its username (``use_identity_as_username``); the ACL then
confines each identity to its own topics.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from quartier.pki import DEFAULT_SERVER_NAMES, PkiError, copy_ca_certificate, issue_server_cert
from quartier.topics import acl_text

#: The broker's TLS port (IANA "secure-mqtt").
TLS_PORT = 8883


def config_text(ca: Path, cert: Path, key: Path, acl_file: Path, port: int = TLS_PORT, bind: str | None = None) -> str:
    """The Mosquitto configuration of a Quartier site: one TLS listener, client certificates, the ACL.

    ``ca`` checks the clients' certificates; ``cert`` and ``key`` are the broker's own. ``bind`` limits the
    listener to one address (the tests use 127.0.0.1); by default it listens on all.
    """
    return "\n".join([
        "# Quartier site broker (written by quartier pki broker; docs/operations.md, 'MQTT security')",
        f"listener {port}" + (f" {bind}" if bind else ""),
        f"cafile {ca}",
        f"certfile {cert}",
        f"keyfile {key}",
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
        "allow_anonymous false",
        f"acl_file {acl_file}",
    ]) + "\n"


@dataclass(frozen=True)
class BrokerFiles:
    """What :func:`install_broker` wrote."""

    ca: Path
    cert: Path
    key: Path
    acl: Path
    config: Path


def install_broker(ca_dir: Path, broker_dir: Path, names: tuple[str, ...] | list[str] = DEFAULT_SERVER_NAMES, *,
                   user: str | None = None, port: int = TLS_PORT, force: bool = False) -> BrokerFiles:
    """Write the broker's certificates, ACL and configuration under ``broker_dir`` (layout: module docstring).

    ``user`` (the account the broker runs as, ``mosquitto`` on Debian) is given the private key, mode 0600; it
    needs root to change a file's owner. Without it the key stays with whoever runs the command.

    Raises:
        PkiError: a missing CA, an unknown user, files that exist without ``force``, or no right to change owners.
    """
    owner = None
    if user is not None:
        try:
            owner = pwd.getpwnam(user)
        except KeyError:
            raise PkiError(f"no user {user!r} on this machine (Debian's Mosquitto runs as 'mosquitto')") from None
    certs = broker_dir / "certs"
    server = issue_server_cert(ca_dir, certs, list(names), force=force)
    ca = copy_ca_certificate(ca_dir, certs)
    acl = broker_dir / "quartier.acl"
    acl.write_text(acl_text())
    os.chmod(acl, 0o644)
    conf = broker_dir / "conf.d" / "quartier.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(config_text(ca, server.cert, server.key, acl, port))
    os.chmod(conf, 0o644)
    if owner is not None:
        try:
            os.chown(server.key, owner.pw_uid, owner.pw_gid)
        except PermissionError:
            raise PkiError(f"cannot give {server.key} to user {user!r}: run this command as root") from None
    return BrokerFiles(ca, server.cert, server.key, acl, conf)
