"""Command-line entry point of this part (wired into ``quartier`` by :mod:`quartier.cli`)."""

from __future__ import annotations

import argparse


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add this part's subcommand to the ``quartier`` parser (not written yet)."""
