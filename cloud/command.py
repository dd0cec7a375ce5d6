"""Command-line entry point of the cloud's service: ``quartier cloud run|intervals``.

Wired into ``quartier`` by :mod:`cli.main`; the handler imports the cloud's modules only when it runs.
"""

from __future__ import annotations

import argparse
import threading


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier cloud run|intervals`` to the ``quartier`` parser."""
    c = sub.add_parser("cloud", help="run or inspect the cloud")
    cs = c.add_subparsers(dest="cloud_cmd", required=True)
    cr = cs.add_parser("run", help="ingest batches into the store")
    cr.add_argument("--config", required=True)
    ci = cs.add_parser("intervals", help="print every stored interval")
    ci.add_argument("--config", required=True)
    c.set_defaults(func=cmd_cloud)


def cmd_cloud(args: argparse.Namespace) -> int:
    """``quartier cloud run`` (until interrupted) or ``quartier cloud intervals`` (tab-separated, one a line)."""
    from cloud.config import CloudConfig

    config = CloudConfig.load(args.config)
    if args.cloud_cmd == "intervals":
        from cloud.stores import open_store
        from quartier.series import iso_utc

        store = open_store(config.store, str(config.path))
        try:
            for gid, mid in store.meters():
                for i in store.read_intervals(gid, mid):
                    print(f"{gid}\t{mid}\t{iso_utc(i.start)}\t{i.energy_wh}\t{i.quality.value}")
        finally:
            store.close()
        return 0
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
