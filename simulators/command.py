"""Command-line entry point of the simulators: ``quartier sim``, the meters of a site file on their protocols.

Wired into ``quartier`` by :mod:`cli.main`; the handler imports the simulators (pymodbus, pyserial) only when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quartier.clock import add_clock_options, clock_from_args


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier sim`` to the ``quartier`` parser."""
    s = sub.add_parser("sim", help="run simulated meters from a site file")
    s.add_argument("--config", required=True, help="the site file of simulated meters (simulators/site.py)")
    add_clock_options(s)
    s.set_defaults(func=cmd_sim)


def cmd_sim(args: argparse.Namespace) -> int:
    """``quartier sim``: serve the site's simulated meters until interrupted."""
    from simulators.site import run_site_forever

    run_site_forever(Path(args.config), clock_from_args(args))
    return 0
