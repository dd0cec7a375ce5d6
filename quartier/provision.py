"""Provision a site in one folder: keys, enrolment and configuration files.

Used by ``quartier demo`` and by the end-to-end tests, so both run the same
files a real installation would have (docs/operations.md shows them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quartier import keys


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


def provision_site(
    workdir: Path,
    *,
    gateway_id: str,
    mqtt_port: int,
    meters: Sequence[Mapping[str, Any]],
    store: Mapping[str, Any] | None = None,
    gateway_options: Mapping[str, Any] | None = None,
) -> Site:
    """Create cloud and gateway keys, enrol the gateway, write ``gateway.toml`` and ``cloud.toml``."""
    cloud_dir, gw_dir = workdir / "cloud", workdir / "gateway"
    keys.create_cloud_key(cloud_dir / "keys")
    keys.create_gateway_key(gw_dir / "keys")
    # In the field the cloud's public key is copied to the gateway; here they share a disk.
    (gw_dir / "keys" / "cloud.pub").write_bytes((cloud_dir / "keys" / "cloud.pub").read_bytes())
    keys.enrol_gateway(cloud_dir / "gateways.json", gateway_id, gw_dir / "keys" / "gateway.pub")
    mqtt = {"host": "127.0.0.1", "port": mqtt_port}
    gw_table = {
        "id": gateway_id,
        "state_dir": "state",
        "signing_key": "keys/gateway.key",
        "cloud_public_key": "keys/cloud.pub",
        **(gateway_options or {}),
    }
    gw_cfg = gw_dir / "gateway.toml"
    gw_cfg.write_text(toml_document({"gateway": gw_table, "mqtt": mqtt, "meters": list(meters)}))
    cloud_cfg = cloud_dir / "cloud.toml"
    cloud_table = {"state_dir": "state", "private_key": "keys/cloud.key", "gateways": "gateways.json"}
    cloud_cfg.write_text(
        toml_document({"cloud": cloud_table, "mqtt": mqtt, "store": dict(store or {"backend": "sqlite"})})
    )
    return Site(gw_cfg, cloud_cfg)
