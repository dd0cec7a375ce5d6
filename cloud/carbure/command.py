"""Command-line entry point of this part (wired into ``quartier`` by :mod:`quartier.cli`).

``quartier carbure import-registration FILE [--mapping CSV] --config carbure.toml``
``quartier carbure import-mapping CSV --config ...``
``quartier carbure export-registration FILE --config ...``
``quartier carbure check-irve IRVE.csv --config ...``
``quartier carbure quarter --quarter 2025Q1 --config ... [--out DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _registry(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from cloud.carbure.config import CarbureConfig
    from cloud.carbure.registry import Registry

    cfg = CarbureConfig.load(args.config)
    return cfg, Registry(cfg.registry)


def cmd_import_registration(args: argparse.Namespace) -> int:
    from cloud.carbure.mapping import read_mapping
    from cloud.carbure.xlsx import read_registration

    points = read_registration(args.file)
    links = read_mapping(args.mapping) if args.mapping else []
    _, reg = _registry(args)
    try:
        reg.upsert_points(points)
        if links:
            reg.set_links(links)
    finally:
        reg.close()
    print(f"{len(points)} charge points imported" + (f", {len(links)} meter links" if links else ""))
    return 0


def cmd_import_mapping(args: argparse.Namespace) -> int:
    from cloud.carbure.mapping import read_mapping

    links = read_mapping(args.file)
    _, reg = _registry(args)
    try:
        reg.set_links(links)
    finally:
        reg.close()
    print(f"{len(links)} meter links imported")
    return 0


def cmd_export_registration(args: argparse.Namespace) -> int:
    from cloud.carbure.xlsx import write_registration

    _, reg = _registry(args)
    try:
        points = reg.points()
    finally:
        reg.close()
    write_registration(args.file, points)
    print(f"{len(points)} charge points written to {args.file}")
    return 0


def cmd_check_irve(args: argparse.Namespace) -> int:
    from cloud.carbure.irve import check_against_irve, read_irve

    irve = read_irve(args.irve)
    _, reg = _registry(args)
    try:
        findings = check_against_irve(reg.points(), irve)
    finally:
        reg.close()
    for f in findings:
        print(f)
    print(f"{len(findings)} problem{'s' if len(findings) != 1 else ''} against {args.irve}")
    return 1 if findings else 0


def cmd_quarter(args: argparse.Namespace) -> int:
    from cloud.carbure.period import Quarter
    from cloud.carbure.prepare import compute_quarter, write_outputs
    from cloud.store import open_store

    quarter = Quarter.parse(args.quarter)
    cfg, reg = _registry(args)
    store = open_store(cfg.store, str(cfg.path))
    try:
        result = compute_quarter(reg, store, quarter)
    finally:
        store.close()
        reg.close()
    paths = write_outputs(result, Path(args.out) if args.out else cfg.out_dir)
    print(paths["summary_txt"].read_text(encoding="utf-8"), end="")
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 1 if result.findings else 0


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier carbure ...`` to the ``quartier`` parser."""
    p = sub.add_parser("carbure", help="CarbuRe: charge-point registry and quarterly meter readings")
    cs = p.add_subparsers(dest="carbure_cmd", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", required=True, help="carbure.toml (registry, output folder, series store)")
        return sp

    ir = with_config(cs.add_parser("import-registration", help="import CarbuRe's registration file (xlsx)"))
    ir.add_argument("file", help="the registration file (xlsx)")
    ir.add_argument("--mapping", help="the meter mapping CSV (charge point -> gateway meter), see docs/carbure.md")
    ir.set_defaults(func=cmd_import_registration)

    im = with_config(cs.add_parser("import-mapping", help="import the meter mapping CSV"))
    im.add_argument("file")
    im.set_defaults(func=cmd_import_mapping)

    er = with_config(cs.add_parser("export-registration", help="write the registry as a CarbuRe registration file"))
    er.add_argument("file")
    er.set_defaults(func=cmd_export_registration)

    ci = with_config(cs.add_parser("check-irve", help="report registered points missing from the IRVE file"))
    ci.add_argument("irve", help="local copy of the IRVE consolidated CSV (transport.data.gouv.fr)")
    ci.set_defaults(func=cmd_check_irve)

    q = with_config(cs.add_parser("quarter", help="prepare a quarter's readings file and summary"))
    q.add_argument("--quarter", required=True, help="e.g. 2025Q1")
    q.add_argument("--out", help="output folder (default: carbure.out_dir of the config)")
    q.set_defaults(func=cmd_quarter)
