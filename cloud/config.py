"""``cloud.toml``, validated at start (errors name the file, the key and the problem)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.stores import store_options
from quartier.config import MqttConfig, Table, load_toml


@dataclass(frozen=True)
class CloudConfig:
    """``cloud.toml``: keys, gateway registry, broker and the series store.

    ``store`` holds the ``[store]`` options for :func:`cloud.stores.open_store`, the embedded SQLite path filled in.
    """

    path: Path
    state_dir: Path
    private_key: Path
    gateways: Path
    mqtt: MqttConfig
    store: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> CloudConfig:
        p = Path(path)
        root = Table(load_toml(p), p)
        c = root.table("cloud")
        state_dir = c.path_("state_dir")
        cfg = cls(
            path=p,
            state_dir=state_dir,
            private_key=c.path_("private_key"),
            gateways=c.path_("gateways"),
            mqtt=MqttConfig.from_table(root.table("mqtt", required=False)),
            store=store_options(root.table("store", required=False), state_dir),
        )
        c.done()
        root.done()
        return cfg
