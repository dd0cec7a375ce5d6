"""A simulated site from one TOML file: every meter, served on its real protocol.

``site.toml``::

    [[meters]]
    id = "cp1"
    model = "sdm630"          # a register map in quartier/meters/
    host = "127.0.0.1"
    port = 5020               # meters sharing host:port share one Modbus TCP server
    unit = 1
    initial_index_wh = 5000000
    epoch = "2026-01-19T00:00:00Z"
    profile = [{at = "00:00", power_w = 0}, {at = "08:00", power_w = 7400}]
    # optional: a bidirectional meter's export (injection) index, same epoch
    export = {initial_index_wh = 0, profile = [{at = "00:00", power_w = 0}, {at = "11:00", power_w = 3000}]}
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from quartier.clock import Clock
from quartier.config import Table, load_toml
from quartier.errors import ConfigError
from quartier.registermap import available_models, load_model
from simulators.modbus_tcp import ModbusTcpSimulator, SimulatedMeter
from simulators.profile import LoadProfile

_PROFILE_KEYS = ("initial_index_wh", "epoch", "profile")


def build_simulators(
    meters: Sequence[Mapping[str, Any]], clock: Clock, path: str = "<site>"
) -> list[ModbusTcpSimulator]:
    """One (not yet started) Modbus TCP server per distinct host:port."""
    by_endpoint: dict[tuple[str, int], list[SimulatedMeter]] = {}
    for n, m in enumerate(meters):
        t = Table(m, Path(path), f"meters[{n}]")
        t.str("id")
        model = t.str("model", choices=tuple(available_models()))
        host = t.str("host", "127.0.0.1")
        port = t.int("port", 0, 0, 65535)
        unit = t.int("unit", 1, 1, 247)
        profile = LoadProfile.from_config({k: m[k] for k in _PROFILE_KEYS if k in m}, path, t.prefix)
        export = None
        if "export" in m:
            e = t.table("export")
            export = LoadProfile.from_config({"epoch": m.get("epoch"), **e.raw()}, path, e.prefix)
        t.accept(*_PROFILE_KEYS)
        t.done()
        sims = by_endpoint.setdefault((host, port), [])
        if port == 0 and sims:
            raise ConfigError(path, f"meters[{n}].port", "give a port when several meters share a server")
        if any(s.unit == unit for s in sims):
            raise ConfigError(path, f"meters[{n}].unit", f"unit {unit} is used twice on {host}:{port}")
        sims.append(SimulatedMeter(load_model(model), profile, clock, unit=unit, export_profile=export))
    return [ModbusTcpSimulator(sims, host=h, port=p) for (h, p), sims in by_endpoint.items()]


def run_site_forever(path: Path, clock: Clock) -> None:
    """``quartier sim``: serve every meter of ``path`` until interrupted."""
    table = Table(load_toml(path), path)
    meters = [tt.raw() for tt in table.tables("meters")]
    table.done()
    sims = build_simulators(meters, clock, str(path))
    for s in sims:
        s.start()
        print(f"simulating {len(s.meters)} meter(s) on {s.host}:{s.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for s in sims:
            s.stop()
