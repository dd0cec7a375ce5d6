"""Command-line entry points of the gateway part: ``quartier gateway run|status`` and ``quartier scan``.

Wired into ``quartier`` by :mod:`cli.main`; the handlers import the gateway's modules (pymodbus, pyserial,
paho-mqtt) only when they run.
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from quartier.clock import add_clock_options, clock_from_args

if TYPE_CHECKING:
    from gateway.config import GatewayConfig


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier gateway ...`` and ``quartier scan`` to the ``quartier`` parser."""
    g = sub.add_parser("gateway", help="run or inspect a gateway")
    gs = g.add_subparsers(dest="gateway_cmd", required=True)
    gr = gs.add_parser("run", help="poll the meters and publish batches")
    gr.add_argument("--config", required=True, help="the gateway's gateway.toml (docs/operations.md)")
    add_clock_options(gr)
    gst = gs.add_parser("status", help="show the outbox")
    gst.add_argument("--config", required=True, help="the gateway's gateway.toml (docs/operations.md)")
    g.set_defaults(func=cmd_gateway)

    sc = sub.add_parser("scan", help="find which known meters answer on a serial port or TCP endpoint (installers)")
    sc.add_argument("target", help="serial port (/dev/ttyUSB0) or Modbus TCP host[:port]")
    sc.add_argument("--protocol", choices=("auto", "tcp", "rtu", "tic"), default="auto",
                    help="on a serial port, auto listens for a Linky's TIC, then tries Modbus RTU")
    sc.add_argument("--units", default="1-10", help="Modbus unit ids to try, e.g. 1-10,20 (default 1-10)")
    sc.add_argument("--baudrate", type=int, help="Modbus RTU speed (default: try the common ones)")
    sc.add_argument("--parity", choices=("N", "E", "O"), help="Modbus RTU parity (default: try N and E)")
    sc.add_argument("--timeout", type=float, default=0.3, help="seconds to wait for each Modbus answer")
    sc.add_argument("--listen", type=float, default=4.0, help="seconds to listen for TIC at each speed")
    sc.set_defaults(func=cmd_scan)


def cmd_gateway(args: argparse.Namespace) -> int:
    """``quartier gateway run`` (until interrupted) or ``quartier gateway status``."""
    from gateway.config import GatewayConfig

    config = GatewayConfig.load(args.config)
    if args.gateway_cmd == "status":
        return _status(config)
    from gateway.service import Gateway

    gw = Gateway(config, clock_from_args(args))
    gw.start()
    stop = threading.Event()
    try:
        gw.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        gw.close()
    return 0


def _status(config: GatewayConfig) -> int:
    """Print the outbox's counts and size, whether the clock is synchronised, and the meters."""
    from gateway.outbox import Outbox
    from gateway.timesync import clock_synchronised

    outbox = Outbox(config.outbox_path)
    for k, v in outbox.counts().items():
        print(f"{k}: {v}")
    used = outbox.size_bytes()
    print(f"outbox_bytes: {used} ({100 * used / (config.outbox_budget_mb * 1024 * 1024):.1f} % of the "
          f"{config.outbox_budget_mb:g} MB budget)")
    outbox.close()
    synced = clock_synchronised()
    print(f"clock_synchronised: {'unknown' if synced is None else 'yes' if synced else 'no'}")
    print(f"meters: {', '.join(f'{m.id} ({m.driver})' for m in config.meters)}")
    _print_health(config.status_path)
    return 0


def _print_health(path: Path) -> None:
    """The failing meters and alarms of the running (or last) gateway, from its health document."""
    import json

    from quartier.series import iso_utc

    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"failing_meters: unknown (no {path.name} yet: the gateway has not run with this state_dir)")
        return
    except (OSError, ValueError) as e:
        print(f"failing_meters: unknown ({path} unreadable: {e})")
        return
    when = iso_utc(doc["t"]) if isinstance(doc.get("t"), int | float) else "?"
    print(f"failing_meters: {', '.join(doc.get('failing_meters') or []) or 'none'} (as of {when})")
    for alarm in doc.get("alarms") or []:
        print(f"alarm: {alarm}")


def cmd_scan(args: argparse.Namespace) -> int:
    """``quartier scan``: report the meters that answer; exit 1 when none does."""
    from gateway.scan import parse_units, run_scan

    logging.getLogger("gateway").setLevel(logging.ERROR)  # the report says what answered; no per-read logs
    found = run_scan(
        args.target, protocol=args.protocol, units=parse_units(args.units), baudrate=args.baudrate,
        parity=args.parity, timeout_s=args.timeout, listen_s=args.listen,
    )
    print(f"{found} meter{'s' if found != 1 else ''} found")
    return 0 if found else 1
