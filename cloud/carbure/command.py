"""Command-line entry point of this part (wired into ``quartier`` by :mod:`cli.main`).

``quartier carbure import-registration FILE [--mapping CSV] --config carbure.toml``
``quartier carbure import-mapping CSV --config ...``
``quartier carbure export-registration FILE --config ...``
``quartier carbure check-irve IRVE.csv --config ...``
``quartier carbure quarter --quarter 2025Q1 --config ... [--out DIR]``
``quartier carbure tick --config ...`` (the scheduled job, daily)
``quartier carbure status [submit|accepted|rejected] --quarter 2025Q1 --config ... [--reason ...]``
``quartier carbure volumes [credit|transfer|accept|refuse|cancel] --config ...``
``quartier verify BUNDLE [--cloud-key FILE] [--xlsx FILE] [--gateways FILE]`` (top level: an auditor's command)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloud.carbure.config import CarbureConfig
    from cloud.carbure.period import Quarter
    from cloud.carbure.prepare import QuarterResult
    from cloud.carbure.registry import Registry


def _registry(args: argparse.Namespace) -> tuple[CarbureConfig, Registry]:
    """The config named by ``--config`` and its registry (the caller closes it)."""
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


def _prepare(cfg: CarbureConfig, reg: Registry, quarter: Quarter, out: Path | None) -> int:
    """Compute, write and track a quarter's file; print the summary; 1 if any finding."""
    from cloud.carbure.prepare import compute_quarter, write_outputs
    from cloud.carbure.tracking import Tracker
    from cloud.stores import open_store

    store = open_store(cfg.store, str(cfg.path), create=False)
    try:
        result = compute_quarter(reg, store, quarter)
    finally:
        store.close()
    paths = write_outputs(result, out if out else cfg.out_dir)
    evidence_problems = _evidence(cfg, reg, result, out if out else cfg.out_dir)
    tracker = Tracker(cfg.registry)
    try:
        status = tracker.prepared(quarter, result.readings, not result.findings, str(paths["xlsx"]))
    finally:
        tracker.close()
    print(paths["summary_txt"].read_text(encoding="utf-8"), end="")
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    print(f"status: {status.value}")
    return 1 if result.findings or evidence_problems else 0


def _evidence(cfg: CarbureConfig, reg: Registry, result: QuarterResult, out: Path) -> list[str]:
    """Write the quarter's evidence bundle when ``[carbure] cloud`` is set; print and return its problems."""
    from cloud.carbure.evidence import EvidenceError, write_bundle
    from cloud.config import CloudConfig
    from cloud.ledger import Ledger
    from quartier.enrolment import load_enrolments
    from quartier.keys import load_cloud_private

    if cfg.cloud is None:
        print("evidence: not written (set [carbure] cloud to the cloud's cloud.toml)")
        return []
    cloud = CloudConfig.load(cfg.cloud)
    ledger_path = cloud.state_dir / "ledger.sqlite"
    if not ledger_path.is_file():
        raise EvidenceError(f"{cfg.cloud}: cloud.state_dir: no ledger {ledger_path}: has this cloud run yet?")
    gateways = load_enrolments(cloud.gateways)
    key = load_cloud_private(cloud.private_key)
    ledger = Ledger(ledger_path)
    try:
        bundle = write_bundle(result.quarter, result.readings, reg, ledger, gateways, key, out)
    finally:
        ledger.close()
    for note in bundle.notes:
        print(f"evidence: note: {note} (declared by the registry)")
    for problem in bundle.problems:
        print(f"evidence: WARNING: {problem}")
    print(f"evidence: {bundle.path} ({bundle.n_batches} batches)")
    return bundle.problems


def cmd_verify(args: argparse.Namespace) -> int:
    """Check an evidence bundle; print what was checked, then every problem; 1 if any."""
    from cloud.carbure.evidence import EvidenceError
    from cloud.carbure.verify import verify_bundle
    from quartier.enrolment import load_enrolments
    from quartier.keys import load_cloud_private

    bundle = Path(args.bundle)
    if not bundle.is_dir():
        raise EvidenceError(f"{bundle}: not a folder (an evidence bundle is the carbure-<quarter>-evidence folder)")
    key = load_cloud_private(Path(args.cloud_key)) if args.cloud_key else None
    gateways = load_enrolments(Path(args.gateways)) if args.gateways else None
    rep = verify_bundle(bundle, key, args.xlsx, gateways)
    for note in rep.notes:
        print(note)
    for problem in rep.problems:
        print(f"FAIL: {problem}")
    n = len(rep.problems)
    print(f"{bundle}: " + ("OK" if rep.ok else f"{n} problem{'s' if n != 1 else ''}")
          + ("" if args.cloud_key else " (payloads not checked against the envelopes: no --cloud-key)"))
    return 0 if rep.ok else 1


def cmd_quarter(args: argparse.Namespace) -> int:
    from cloud.carbure.period import Quarter

    quarter = Quarter.parse(args.quarter)
    cfg, reg = _registry(args)
    try:
        return _prepare(cfg, reg, quarter, Path(args.out) if args.out else None)
    finally:
        reg.close()


def cmd_tick(args: argparse.Namespace) -> int:
    """The scheduled job: prepare the last closed quarter unless submitted, warn near the deadline."""
    from datetime import date, datetime

    from cloud.carbure.status import FileStatus, deadline_notice, due_quarter
    from cloud.carbure.tracking import Tracker
    from quartier.series import PARIS

    today = date.fromisoformat(args.today) if args.today else datetime.now(PARIS).date()
    quarter = due_quarter(today)
    cfg, reg = _registry(args)
    tracker = Tracker(cfg.registry)
    try:
        cur = tracker.get(quarter)
        status = None if cur is None else cur.status
        rc = 0
        if status in (None, FileStatus.DRAFT, FileStatus.READY) and today <= quarter.deadline:
            rc = _prepare(cfg, reg, quarter, None)
            cur = tracker.get(quarter)
            status = None if cur is None else cur.status
        notice = deadline_notice(quarter, status, today)
    finally:
        tracker.close()
        reg.close()
    if notice:
        print(f"WARNING: {notice}")
        return 1
    return rc


def cmd_status(args: argparse.Namespace) -> int:
    from cloud.carbure.period import Quarter
    from cloud.carbure.status import FileStatus, check_transition
    from cloud.carbure.submit import OutboxSubmitter
    from cloud.carbure.tracking import Tracker

    quarter = Quarter.parse(args.quarter)
    cfg, reg = _registry(args)
    tracker = Tracker(cfg.registry)
    try:
        if args.action == "submit":
            cur = tracker.get(quarter)
            check_transition(quarter, None if cur is None else cur.status, FileStatus.SUBMITTED)
            assert cur is not None  # check_transition refuses a quarter never prepared
            receipt = OutboxSubmitter(cfg.outbox).submit(quarter, Path(cur.file_path))
            tracker.submitted(quarter, receipt)
        elif args.action == "accepted":
            n = tracker.accepted(quarter, reg)
            print(f"{n} readings recorded as accepted")
        elif args.action == "rejected":
            tracker.rejected(quarter, args.reason or "")
        cur = tracker.get(quarter)
        if cur is None:
            print(f"{quarter}: not prepared")
        else:
            print(f"{quarter}: {cur.status.value}" + (f" ({cur.reason})" if cur.reason else "") +
                  (f", file {cur.file_path}" if cur.file_path else ""))
    finally:
        tracker.close()
        reg.close()
    return 0


def cmd_volumes(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from cloud.carbure.cells import kwh_to_wh
    from cloud.carbure.errors import CarbureError
    from cloud.carbure.period import Quarter
    from cloud.carbure.volume_store import VolumeStore
    from cloud.carbure.volumes import TransferStatus

    cfg, reg = _registry(args)
    reg.close()
    vs = VolumeStore(cfg.registry)
    try:
        if args.action == "credit":
            if not args.quarter or args.energy_kwh is None or args.share is None:
                raise CarbureError("credit needs --quarter, --energy-kwh and --share")
            try:
                share = Decimal(args.share)
            except InvalidOperation:
                raise CarbureError(f"--share must be a number between 0 and 1, got {args.share!r}") from None
            vol = vs.credit(Quarter.parse(args.quarter), kwh_to_wh(args.energy_kwh), share)
            print(f"{args.quarter}: {vol / 1000:.3f} kWh credited")
        elif args.action == "transfer":
            if not args.to or args.volume_kwh is None:
                raise CarbureError("transfer needs --to and --volume-kwh")
            t = vs.create(args.to, kwh_to_wh(args.volume_kwh))
            print(f"transfer {t.id}: {t.volume_wh / 1000:.3f} kWh to {t.obligated}, pending")
        elif args.action in ("accept", "refuse", "cancel"):
            if args.id is None:
                raise CarbureError(f"{args.action} needs --id")
            new = {"accept": TransferStatus.ACCEPTED, "refuse": TransferStatus.REFUSED,
                   "cancel": TransferStatus.CANCELLED}[args.action]
            t = vs.decide(args.id, new, args.comment or "")
            print(f"transfer {t.id}: {t.status.value}")
        b = vs.balance()
        print(f"available {b.available_wh / 1000:.3f} kWh, pending {b.pending_wh / 1000:.3f} kWh, "
              f"transferred {b.accepted_wh / 1000:.3f} kWh")
    finally:
        vs.close()
    return 0


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

    t = with_config(cs.add_parser("tick", help="scheduled job: prepare the last closed quarter, warn near deadline"))
    t.add_argument("--today", help="local date to act as today, AAAA-MM-JJ (default: today in Europe/Paris)")
    t.set_defaults(func=cmd_tick)

    st = with_config(cs.add_parser("status", help="show or change a quarterly file's status"))
    st.add_argument("action", nargs="?", choices=("show", "submit", "accepted", "rejected"), default="show")
    st.add_argument("--quarter", required=True)
    st.add_argument("--reason", help="CarbuRe's reason, for rejected")
    st.set_defaults(func=cmd_status)

    v = with_config(cs.add_parser("volumes", help="renewable volumes: credit a quarter, transfer to obligated parties"))
    v.add_argument("action", nargs="?", choices=("show", "credit", "transfer", "accept", "refuse", "cancel"),
                   default="show")
    v.add_argument("--quarter", help="for credit")
    v.add_argument("--energy-kwh", help="for credit: kWh used in the quarter")
    v.add_argument("--share", help="for credit: the year's renewable share, 0 to 1 (e.g. 0.2533)")
    v.add_argument("--to", help="for transfer: the obligated party")
    v.add_argument("--volume-kwh", help="for transfer")
    v.add_argument("--id", type=int, help="for accept/refuse/cancel: the transfer id")
    v.add_argument("--comment", help="for refuse: the obligated party's comment")
    v.set_defaults(func=cmd_volumes)

    vf = sub.add_parser("verify", help="check a CarbuRe evidence bundle: signatures, payloads, recomputed figures")
    vf.add_argument("bundle", help="the carbure-<quarter>-evidence folder")
    vf.add_argument("--cloud-key", help="the cloud's private key (cloud.key): also check each payload against "
                                        "its encrypted envelope")
    vf.add_argument("--xlsx", help="the quarterly file to compare with the recomputed figures")
    vf.add_argument("--gateways", help="the gateway registry (gateways.json): check the bundled keys are enrolled")
    vf.set_defaults(func=cmd_verify)
