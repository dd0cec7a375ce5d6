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
    cg = cs.add_parser("gateways", help="each enrolled gateway's last status: state, alarms, failing meters, outbox")
    cg.add_argument("--config", required=True, help="the cloud's cloud.toml (docs/operations.md)")
    c.set_defaults(func=cmd_cloud)


def cmd_cloud(args: argparse.Namespace) -> int:
    """``quartier cloud run`` (until interrupted) or ``quartier cloud intervals`` (tab-separated, one a line)."""
    from cloud.config import CloudConfig

    config = CloudConfig.load(args.config)
    if args.cloud_cmd == "intervals":
        return print_intervals(config, args.gateway, args.meter, args.start, args.end)
    if args.cloud_cmd == "gateways":
        return print_gateways(config)
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
    store = open_store(config.store, str(config.path), create=False)
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


GATEWAYS_HEADER = ("GATEWAY", "STATE", "SINCE (UTC)", "BATCHES", "OUTBOX", "FAILING METERS", "ALARMS")


def gateway_rows(config: CloudConfig) -> list[tuple[str, ...]]:
    """Rows of :data:`GATEWAYS_HEADER`: every enrolled gateway and every gateway that sent a status, by id.

    ``SINCE`` is when the cloud received the last status document; a gateway that never sent one is ``never seen``.
    """
    from cloud.ledger import Ledger
    from quartier.enrolment import load_enrolments
    from quartier.series import iso_utc

    enrolled = load_enrolments(config.gateways) if config.gateways.exists() else {}
    ledger = Ledger(config.state_dir / "ledger.sqlite")
    try:
        statuses = ledger.gateway_statuses()
        rows: list[tuple[str, ...]] = []
        for gid in sorted(set(enrolled) | set(statuses)):
            batches = str(ledger.accepted_count(gid))
            if gid not in statuses:
                rows.append((gid, "never seen", "", batches, "", "", ""))
                continue
            received, doc = statuses[gid]
            state = str(doc.get("state", "?")) + ("" if gid in enrolled else " (not enrolled)")
            used, budget = doc.get("outbox_bytes"), doc.get("outbox_budget_bytes")
            outbox = f"{used / 2**20:.1f} / {budget / 2**20:g} MB" if isinstance(used, int | float) and \
                isinstance(budget, int | float) and budget > 0 else ""
            failing = doc.get("failing_meters") or []
            alarms = doc.get("alarms") or []
            rows.append((gid, state, iso_utc(received), batches, outbox,
                         ", ".join(map(str, failing)) if isinstance(failing, list) else "",
                         "; ".join(map(str, alarms)) if isinstance(alarms, list) else ""))
        return rows
    finally:
        ledger.close()


def print_gateways(config: CloudConfig) -> int:
    """``quartier cloud gateways``: :func:`gateway_rows` as aligned columns under a header."""
    rows = [GATEWAYS_HEADER, *gateway_rows(config)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(GATEWAYS_HEADER))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
