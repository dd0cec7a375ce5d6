"""Command-line entry point of the cloud's service: ``quartier cloud run|intervals``.

Wired into ``quartier`` by :mod:`cli.main`; the handler imports the cloud's modules only when it runs.
"""

from __future__ import annotations

import argparse
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloud.config import CloudConfig


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier cloud run|intervals`` to the ``quartier`` parser."""
    c = sub.add_parser("cloud", help="run or inspect the cloud")
    cs = c.add_subparsers(dest="cloud_cmd", required=True)
    cr = cs.add_parser("run", help="ingest batches into the store")
    cr.add_argument("--config", required=True, help="the cloud's cloud.toml (docs/operations.md)")
    ci = cs.add_parser("intervals", help="print stored intervals, tab-separated with a header (both directions)")
    ci.add_argument("--config", required=True, help="the cloud's cloud.toml (docs/operations.md)")
    ci.add_argument("--gateway", help="only this gateway's meters")
    ci.add_argument("--meter", help="only this meter id")
    ci.add_argument("--from", dest="start", help="first interval start, UTC, e.g. 2026-01-19T00:00:00Z")
    ci.add_argument("--to", dest="end", help="end (exclusive), UTC")
    c.set_defaults(func=cmd_cloud)


def cmd_cloud(args: argparse.Namespace) -> int:
    """``quartier cloud run`` (until interrupted) or ``quartier cloud intervals`` (tab-separated, one a line)."""
    from cloud.config import CloudConfig

    config = CloudConfig.load(args.config)
    if args.cloud_cmd == "intervals":
        return print_intervals(config, args.gateway, args.meter, args.start, args.end)
    from cloud.service import Cloud

    cloud = Cloud(config)
    cloud.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
    return 0


INTERVALS_HEADER = ("gateway", "meter", "direction", "start_utc", "wh", "quality", "method")


def print_intervals(config: CloudConfig, gateway: str | None, meter: str | None, start: str | None,
                    end: str | None) -> int:
    """``quartier cloud intervals``: a header, then one line an interval, oldest first per meter and direction.

    An unknown energy prints as an empty ``wh``, an interval without a method as an empty ``method``. Asking for
    a gateway or a meter the store does not hold is an error that lists what it holds.
    """
    from cloud.stores import open_store
    from quartier.errors import QuartierError
    from quartier.series import Direction, iso_utc, parse_utc

    t0 = parse_utc(start) if start else None
    t1 = parse_utc(end) if end else None
    store = open_store(config.store, str(config.path))
    try:
        held = store.meters()
        chosen = [(g, m) for g, m in held if (gateway is None or g == gateway) and (meter is None or m == meter)]
        if not chosen and (gateway is not None or meter is not None):
            known = ", ".join(f"{g}/{m}" for g, m in held) or "none"
            raise QuartierError(f"no stored meter matches --gateway {gateway or '*'} --meter {meter or '*'} "
                                f"(the store holds: {known})")
        print("\t".join(INTERVALS_HEADER))
        for gid, mid in chosen:
            for direction in Direction:
                for i in store.read_intervals(gid, mid, t0, t1, direction):
                    wh = "" if i.energy_wh is None else str(i.energy_wh)
                    method = "" if i.method is None else i.method.value
                    print(f"{gid}\t{mid}\t{direction.value}\t{iso_utc(i.start)}\t{wh}\t{i.quality.value}\t{method}")
    finally:
        store.close()
    return 0
