"""Provision a site in one folder: keys, enrolment and configuration files.

Used by ``quartier demo`` and by the end-to-end tests, so both run the same
files a real installation would have (docs/operations.md shows them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.devservers.mosquitto import BrokerTls
from quartier import enrolment, keys
from quartier.pki import SitePki, copy_ca_certificate, create_site_pki


def toml_value(v: Any) -> str:
    """TOML for the scalars, arrays and inline tables these files use."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, Sequence):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def toml_document(tables: Mapping[str, Any]) -> str:
    """A TOML document from {table: {key: value}} and {array_name: [{...}, ...]}."""
    out: list[str] = []
    for name, body in tables.items():
        bodies, header = ([body], f"[{name}]") if isinstance(body, Mapping) else (body, f"[[{name}]]")
        for b in bodies:
            out.append(header)
            out.extend(f"{k} = {toml_value(v)}" for k, v in b.items())
            out.append("")
    return "\n".join(out)


@dataclass(frozen=True)
class Site:
    gateway_config: Path
    cloud_config: Path
    pki: SitePki | None = None
    """With ``tls=True``: the CA, broker, cloud and gateway certificates (start the broker with :meth:`broker_tls`)."""

    def broker_tls(self) -> BrokerTls:
        """The files a TLS :class:`cli.devservers.mosquitto.Mosquitto` needs for this site (requires ``tls=True``)."""
        if self.pki is None:
            raise ValueError("this site was provisioned without tls=True; it has no certificates")
        return BrokerTls(self.pki.ca.cert, self.pki.server.cert, self.pki.server.key)


def provision_site(
    workdir: Path,
    *,
    gateway_id: str,
    mqtt_port: int,
    meters: Sequence[Mapping[str, Any]],
    store: Mapping[str, Any] | None = None,
    gateway_options: Mapping[str, Any] | None = None,
    tls: bool = False,
) -> Site:
    """Create cloud and gateway keys, enrol the gateway, write ``gateway.toml`` and ``cloud.toml``.

    With ``tls`` also create a site PKI in ``workdir/pki`` (CA, broker certificate for 127.0.0.1/localhost, the
    cloud's and the gateway's client certificates), copy each party's files next to its config (``tls/``) and set
    ``[mqtt]`` ``tls_ca``/``tls_cert``/``tls_key`` in both files; ``mqtt_port`` must then be the broker's TLS port.
    """
    cloud_dir, gw_dir = workdir / "cloud", workdir / "gateway"
    keys.create_cloud_key(cloud_dir / "keys")
    keys.create_gateway_key(gw_dir / "keys")
    # In the field the cloud's public key is copied to the gateway; here they share a disk.
    (gw_dir / "keys" / "cloud.pub").write_bytes((cloud_dir / "keys" / "cloud.pub").read_bytes())
    enrolment.enrol_gateway(cloud_dir / "gateways.json", gateway_id, gw_dir / "keys" / "gateway.pub")
    mqtt: dict[str, Any] = {"host": "127.0.0.1", "port": mqtt_port}
    gw_mqtt, cloud_mqtt = dict(mqtt), dict(mqtt)
    pki: SitePki | None = None
    if tls:
        pki = create_site_pki(workdir / "pki", [gateway_id])
        # Each party gets its own copy, as on separate machines; the private keys stay 0600.
        gw_mqtt.update(_install_tls(gw_dir / "tls", pki.ca.cert, pki.gateways[gateway_id].cert,
                                    pki.gateways[gateway_id].key))
        cloud_mqtt.update(_install_tls(cloud_dir / "tls", pki.ca.cert, pki.cloud.cert, pki.cloud.key))
    gw_table = {
        "id": gateway_id,
        "state_dir": "state",
        "signing_key": "keys/gateway.key",
        "cloud_public_key": "keys/cloud.pub",
        **(gateway_options or {}),
    }
    gw_cfg = gw_dir / "gateway.toml"
    gw_cfg.write_text(toml_document({"gateway": gw_table, "mqtt": gw_mqtt, "meters": list(meters)}))
    cloud_cfg = cloud_dir / "cloud.toml"
    cloud_table = {"state_dir": "state", "private_key": "keys/cloud.key", "gateways": "gateways.json"}
    cloud_cfg.write_text(
        toml_document({"cloud": cloud_table, "mqtt": cloud_mqtt, "store": dict(store or {"backend": "sqlite"})})
    )
    return Site(gw_cfg, cloud_cfg, pki)


def _install_tls(directory: Path, ca: Path, cert: Path, key: Path) -> dict[str, str]:
    """Copy a CA file, a certificate and its key (0600, never overwritten) into ``directory``; the [mqtt] keys."""
    copy_ca_certificate(ca.parent, directory)
    # The names quartier pki gateway/client write (<identity>.crt, .key), as docs/operations.md shows them.
    (directory / cert.name).write_bytes(cert.read_bytes())
    fd = os.open(directory / key.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.read_bytes())
    rel = directory.name
    return {"tls_ca": f"{rel}/ca.crt", "tls_cert": f"{rel}/{cert.name}", "tls_key": f"{rel}/{key.name}"}
