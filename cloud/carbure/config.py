"""``carbure.toml``: where the registry lives, where files go, and the series store to read.

::

    [carbure]
    registry = "carbure.sqlite"     # the charge-point registry (SQLite), relative to this file
    out_dir = "carbure-out"         # where quarterly files and summaries are written
    outbox = "carbure-outbox"       # where submitted files are put (the outbox submitter)
    cloud = "cloud.toml"            # optional: the cloud's config, whose ledger, gateway registry and key
                                    # give the evidence bundle (written with the quarterly file)

    [store]                          # the cloud's series store, as in cloud.toml
    backend = "sqlite"
    path = "series.sqlite"

Errors name the file and the dotted key (``FILE: carbure.registry: problem``);
unknown keys are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.stores import store_options
from quartier.config import Table, load_toml


@dataclass(frozen=True)
class CarbureConfig:
    path: Path
    registry: Path
    out_dir: Path
    outbox: Path
    store: dict[str, Any]
    cloud: Path | None = None

    @classmethod
    def load(cls, path: str | Path) -> CarbureConfig:
        p = Path(path)
        root = Table(load_toml(p), p)
        c = root.table("carbure")
        options = store_options(root.table("store"))
        cloud = c.path_("cloud", None)
        if cloud is not None and not cloud.is_file():
            raise c.error("cloud", f"no such file {cloud} (the cloud's cloud.toml, for the evidence bundle)")
        cfg = cls(p, c.path_("registry"), c.path_("out_dir", "carbure-out"), c.path_("outbox", "carbure-outbox"),
                  options, cloud)
        c.done()
        root.done()
        return cfg
