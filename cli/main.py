"""The ``quartier`` command: one entry point, one subcommand per job, each part loaded only when it runs.

:data:`COMMANDS` names every subcommand, the module whose ``add_parser(sub)`` defines it, the pip extra that
installs what it needs and its one-line help. Building the parser imports none of those modules: ``quartier
--help`` lists the table, and ``quartier share ...`` imports :mod:`cloud.sharing.command` alone. So a machine
with only ``pip install 'quartier[gateway]'`` runs the gateway's commands, and a command whose part is not
installed says in one line which extra to install (exit status 2).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from quartier import __version__, logs
from quartier.errors import QuartierError

_GATEWAY = ("pymodbus", "serial", "paho", "cryptography")
_CLOUD = ("numpy", "flask", "influxdb", "openpyxl", "paho", "cryptography")
_SIM = ("pymodbus", "serial")
EXTRAS: dict[str, tuple[str, ...]] = {
    "gateway": _GATEWAY,
    "cloud": _CLOUD,
    "sim": _SIM,
    "all": tuple(dict.fromkeys(_GATEWAY + _CLOUD + _SIM)),
}
"""The top-level modules that each pip extra of pyproject.toml installs (tests/test_extras.py keeps them in step)."""

_PART_NAMES = {"gateway": "the gateway part", "cloud": "the cloud part", "sim": "the simulators", "all": "every part"}
_OWN_PACKAGES = ("quartier", "gateway", "cloud", "simulators", "cli")


@dataclass(frozen=True)
class Command:
    """One subcommand of ``quartier``."""

    module: str
    """The module whose ``add_parser(sub)`` adds it (one module may add several: ``bill``, ``tariffs`` ...)."""
    extras: tuple[str, ...]
    """The pip extras that provide it; any one of them is enough."""
    help: str
    """Its one-line help, exactly as its ``add_parser`` gives it (``quartier --help`` shows this one)."""
    needs: tuple[str, ...] | None = None
    """The top-level modules checked before its module is imported; by default its first extra's."""

    def required_modules(self) -> tuple[str, ...]:
        """The top-level modules that must be importable for this subcommand to run."""
        return EXTRAS[self.extras[0]] if self.needs is None else self.needs


_KEYS = ("gateway", "cloud")  # cryptography comes with either
COMMANDS: dict[str, Command] = {
    "demo": Command("cli.demo", ("all",), "run a whole simulated site: meters, broker, gateway, cloud"),
    "keys": Command("cli.keys", _KEYS, "create, rotate, enrol and revoke keys", ("cryptography",)),
    "pki": Command("cli.pki", _KEYS, "the site's MQTT certificates: CA, broker, cloud and gateway identities, ACL",
                   ("cryptography",)),
    "gateway": Command("gateway.command", ("gateway",), "run or inspect a gateway"),
    "cloud": Command("cloud.command", ("cloud",), "run or inspect the cloud"),
    "scan": Command("gateway.command", ("gateway",),
                    "find which known meters answer on a serial port or TCP endpoint (installers)"),
    "sim": Command("simulators.command", ("sim",), "run simulated meters from a site file"),
    "share": Command("cloud.sharing.command", ("cloud",),
                     "energy sharing: allocate a month, write the representative's files, bill"),
    "bill": Command("cloud.tariffs.command", ("cloud",),
                    "bill a site's measured import/export under one or more tariffs (docs/tariffs.md)"),
    "tariffs": Command("cloud.tariffs.command", ("cloud",),
                       "list a folder of tariff files as a tariff database: filters, popularity, the default for new "
                       "projects (docs/tariffs.md)"),
    "tempo-days": Command("cloud.tariffs.command", ("cloud",),
                          "RTE's published Tempo colours (tempo_like_calendars JSON) to a day calendar CSV for "
                          "tempo.toml (docs/tariffs.md)"),
    "carbure": Command("cloud.carbure.command", ("cloud",),
                       "CarbuRe: charge-point registry and quarterly meter readings"),
    "verify": Command("cloud.carbure.command", ("cloud",),
                      "check a CarbuRe evidence bundle: signatures, payloads, recomputed figures"),
}
"""Every subcommand, in ``quartier --help`` order."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``quartier`` parser, with ``command``'s module loaded: it adds its real subcommands.

    Every other subcommand is a placeholder that has only its help, so without ``command`` nothing is imported.
    Raises ModuleNotFoundError when the module cannot be imported.
    """
    p = argparse.ArgumentParser(prog="quartier", description="Quartier metering platform")
    p.add_argument("--version", action="version", version=f"quartier {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    p.add_argument("--log-format", choices=("plain", "json"), default="plain",
                   help="plain lines (default) or one JSON object per line (for journald, Loki, ...)")
    sub = p.add_subparsers(dest="cmd", required=True)
    module = COMMANDS[command].module if command is not None else None
    for name, c in COMMANDS.items():
        if name in sub.choices:  # added with an earlier subcommand of its module
            continue
        if c.module == module:
            importlib.import_module(c.module).add_parser(sub)
        else:
            sub.add_parser(name, help=c.help, add_help=False)
    return p


def missing_dependency(exc: ModuleNotFoundError) -> bool:
    """Whether ``exc`` means a part or one of its third-party packages is not installed (not a bug of ours)."""
    if not exc.name:
        return False
    top = exc.name.partition(".")[0]
    if top in sys.stdlib_module_names:
        return False
    if top in _OWN_PACKAGES:  # a module missing from a part that is there is a bug
        return importlib.util.find_spec(top) is None
    return True


def _check_installed(command: Command) -> None:
    """Raise ModuleNotFoundError for the first module ``command`` needs that cannot be found (none is imported)."""
    for name in command.required_modules():
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)


def _report_missing(name: str, command: Command, exc: ModuleNotFoundError) -> int:
    parts = " or ".join(_PART_NAMES[e] for e in command.extras)
    install = " or ".join(f"'quartier[{e}]'" for e in command.extras)
    print(f"quartier: error: 'quartier {name}' needs {parts} ({exc}): pip install {install}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``quartier`` with ``argv`` (default: the command line); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # First pass, nothing imported: --help, a missing or unknown subcommand end here (argparse exits).
    name = build_parser().parse_known_args(argv)[0].cmd
    command = COMMANDS[name]
    try:
        _check_installed(command)
        parser = build_parser(name)
    except ModuleNotFoundError as e:
        if not missing_dependency(e):
            raise
        return _report_missing(name, command, e)
    args = parser.parse_args(argv)
    logs.configure(logging.DEBUG if args.verbose else logging.INFO, json_lines=args.log_format == "json")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (``quartier cloud intervals | head``): stop quietly, as a pipe's writer should.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as e:  # handlers import their part's modules when they run
        if not missing_dependency(e):
            raise
        return _report_missing(name, command, e)
    except QuartierError as e:
        print(f"quartier: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # e.g. a malformed --start
        print(f"quartier: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
