"""The ``quartier`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from quartier import logs
from quartier.clock import Clock, ScaledClock, SystemClock
from quartier.errors import QuartierError
from quartier.series import format_utc, parse_utc


def _clock(args: argparse.Namespace) -> Clock:

    if args.start is None and args.speed == 1.0:
        return SystemClock()
    import time

    start = parse_utc(args.start) if args.start else time.time()
    return ScaledClock(start, args.speed, origin=args.origin)


def _add_clock_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("simulated time (for simulators and tests; leave out in the field)")
    g.add_argument("--start", help="simulated UTC start time, e.g. 2026-01-19T00:00:00Z")
    g.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    g.add_argument("--origin", type=float, help="real time.time() at which --start applies (same in every process)")


def cmd_keys(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from quartier import enrolment, keys

    if args.keys_cmd == "gateway":
        priv, pub = keys.create_gateway_key(Path(args.dir), force=args.force)
        kid = keys.key_id(keys.load_gateway_public(pub)).hex()
        print(f"gateway signing key: {priv} (mode 0600)\npublic key: {pub}\nkey id: {kid}")
        print("enrol it on the cloud: quartier keys enrol --registry gateways.json --id <gateway id> --public-key", pub)
    elif args.keys_cmd == "cloud":
        priv, pub = keys.create_cloud_key(Path(args.dir), force=args.force)
        print(f"cloud decryption key: {priv} (mode 0600)\npublic key: {pub} (copy it to every gateway)")
    elif args.keys_cmd == "rotate":
        rot = keys.rotate_gateway_key(Path(args.dir))
        print(f"new gateway signing key: {rot.private_key} (mode 0600)\nnew public key: {rot.public_key}")
        print(f"key id: {rot.key_id}")
        print(f"previous key {rot.old_key_id} kept as {rot.old_private_key} and {rot.old_public_key}")
        print(rot.public_key.read_text(), end="")
        print("1. enrol it on the cloud: quartier keys enrol --registry gateways.json --id <gateway id> --public-key",
              rot.public_key)
        print("2. then restart the gateway: it signs with the key it loaded at start until then")
    elif args.keys_cmd == "enrol":
        if args.grace_days < 0:
            raise QuartierError(f"--grace-days must be 0 or more (got {args.grace_days})")
        entry = enrolment.enrol_gateway(
            Path(args.registry), args.id, Path(args.public_key),
            grace=timedelta(days=args.grace_days), reinstate=args.reinstate,
        )
        current = entry.current
        print(f"gateway {args.id} enrolled in {args.registry} with key id {current.key_id if current else '?'}")
        for old in entry.keys:
            if old.accepted_until is not None and old is not current and old.revoked_at is None:
                print(f"previous key {old.key_id} accepted until {format_utc(old.accepted_until)}")
    elif args.keys_cmd == "revoke":
        entry = enrolment.revoke(Path(args.registry), args.id, args.reason, key=args.key_id)
        if args.key_id:
            revoked = entry.find(args.key_id)
            when = format_utc(revoked.revoked_at) if revoked and revoked.revoked_at else "?"
            print(f"key {args.key_id.lower()} of gateway {args.id} revoked at {when}; "
                  "its batches are refused (revoked-key)")
        else:
            when = format_utc(entry.revoked_at) if entry.revoked_at else "?"
            print(f"gateway {args.id} revoked at {when}; all its batches are refused (revoked-gateway)")
    elif args.keys_cmd == "list":
        registry = Path(args.registry)
        if not registry.exists():
            raise QuartierError(
                f"gateway registry {registry} does not exist; enrol a gateway first (quartier keys enrol)"
            )
        rows = enrolment.enrolment_table(enrolment.load_enrolments(registry))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_pki(args: argparse.Namespace) -> int:
    from quartier import pki
    from quartier.topics import acl_text

    if args.pki_cmd == "acl":
        print(acl_text(args.cloud_identity), end="")
        return 0
    if args.pki_cmd == "show":
        cert = pki.load_certificate(Path(args.cert))
        print(f"{args.cert}: CN {pki.certificate_identity(Path(args.cert))}, issued by "
              f"{cert.issuer.rfc4514_string()}, valid {cert.not_valid_before_utc:%Y-%m-%d} to "
              f"{cert.not_valid_after_utc:%Y-%m-%d}")
        return 0
    files: pki.CertFiles
    if args.pki_cmd == "ca":
        files = pki.create_ca(Path(args.dir), days=args.days, force=args.force)
        print("keep ca.key off the servers (an offline machine or a USB key): it can issue any identity")
    elif args.pki_cmd == "server":
        files = pki.issue_server_cert(Path(args.ca), Path(args.out), args.name or pki.DEFAULT_SERVER_NAMES,
                                      days=args.days, force=args.force)
    elif args.pki_cmd == "gateway":
        files = pki.issue_gateway_cert(Path(args.ca), Path(args.out), args.id, days=args.days, force=args.force)
    else:
        files = pki.issue_client_cert(Path(args.ca), Path(args.out), args.identity, days=args.days, force=args.force)
    print(f"certificate: {files.cert}\nprivate key: {files.key} (mode 0600)")
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    from gateway.config import GatewayConfig
    from gateway.service import Gateway

    config = GatewayConfig.load(args.config)
    if args.gateway_cmd == "status":
        from gateway.outbox import Outbox
        from gateway.timesync import clock_synchronised

        outbox = Outbox(config.state_dir / "outbox.sqlite")
        for k, v in outbox.counts().items():
            print(f"{k}: {v}")
        used = outbox.size_bytes()
        print(f"outbox_bytes: {used} ({100 * used / (config.outbox_budget_mb * 1024 * 1024):.1f} % of the "
              f"{config.outbox_budget_mb:g} MB budget)")
        outbox.close()
        synced = clock_synchronised()
        print(f"clock_synchronised: {'unknown' if synced is None else 'yes' if synced else 'no'}")
        print(f"meters: {', '.join(m['id'] + ' (' + m.get('driver', 'modbus') + ')' for m in config.meters)}")
        return 0
    gw = Gateway(config, _clock(args))
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


def cmd_cloud(args: argparse.Namespace) -> int:
    from cloud.config import CloudConfig
    from cloud.service import Cloud

    config = CloudConfig.load(args.config)
    if args.cloud_cmd == "intervals":
        from cloud.stores import open_store
        from quartier.series import iso_utc

        store = open_store(config.store, str(config.path))
        for gid, mid in store.meters():
            for i in store.read_intervals(gid, mid):
                print(f"{gid}\t{mid}\t{iso_utc(i.start)}\t{i.energy_wh}\t{i.quality.value}")
        store.close()
        return 0
    cloud = Cloud(config)
    cloud.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from simulators.site import run_site_forever

    run_site_forever(Path(args.config), _clock(args))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo(
        quarters=args.quarters, speed=args.speed, workdir=Path(args.workdir) if args.workdir else None
    )


def cmd_scan(args: argparse.Namespace) -> int:
    from gateway.scan import parse_units, run_scan

    logging.getLogger("gateway").setLevel(logging.ERROR)  # the report says what answered; no per-read logs
    found = run_scan(
        args.target, protocol=args.protocol, units=parse_units(args.units), baudrate=args.baudrate,
        parity=args.parity, timeout_s=args.timeout, listen_s=args.listen,
    )
    print(f"{found} meter{'s' if found != 1 else ''} found")
    return 0 if found else 1


_PART_COMMANDS = ("cloud.sharing.command", "cloud.tariffs.command", "cloud.carbure.command")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quartier", description="Quartier metering platform")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    p.add_argument("--log-format", choices=("plain", "json"), default="plain",
                   help="plain lines (default) or one JSON object per line (for journald, Loki, ...)")
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="run a whole simulated site: meters, broker, gateway, cloud")
    d.add_argument("--quarters", type=int, default=8, help="simulated quarter-hours to run (default 8)")
    d.add_argument("--speed", type=float, default=300.0, help="simulated seconds per real second (default 300)")
    d.add_argument("--workdir", help="where to put keys, configs and databases (default: a new temporary folder)")
    d.set_defaults(func=cmd_demo)

    k = sub.add_parser("keys", help="create, rotate, enrol and revoke keys")
    ks = k.add_subparsers(dest="keys_cmd", required=True)
    kg = ks.add_parser("gateway", help="create a gateway's Ed25519 signing key")
    kg.add_argument("--dir", required=True)
    kg.add_argument("--force", action="store_true", help="replace an existing key")
    kc = ks.add_parser("cloud", help="create the cloud's X25519 decryption key")
    kc.add_argument("--dir", required=True)
    kc.add_argument("--force", action="store_true", help="replace an existing key")
    kr = ks.add_parser("rotate", help="on a gateway: replace gateway.key by a new key, keep the old one as .old")
    kr.add_argument("--dir", required=True, help="the folder holding gateway.key and gateway.pub")
    ke = ks.add_parser("enrol", help="allow a gateway's (new) public key on the cloud")
    ke.add_argument("--registry", required=True, help="the cloud's gateways.json")
    ke.add_argument("--id", required=True, help="gateway id")
    ke.add_argument("--public-key", required=True, help="the gateway's gateway.pub")
    ke.add_argument("--grace-days", type=float, default=7.0,
                    help="how long the gateway's previous key stays accepted (default 7 days)")
    ke.add_argument("--reinstate", action="store_true",
                    help="admit a revoked gateway again with this new key (its old keys stay refused)")
    kv = ks.add_parser("revoke", help="refuse every batch of a gateway, or of one of its keys, from now on")
    kv.add_argument("--registry", required=True, help="the cloud's gateways.json")
    kv.add_argument("--id", required=True, help="gateway id")
    kv.add_argument("--key-id", help="revoke only this key (16 hex digits, see: quartier keys list)")
    kv.add_argument("--reason", default="", help="why, kept in the registry and in rejection details")
    kl = ks.add_parser("list", help="show enrolled gateways, their keys and their states")
    kl.add_argument("--registry", required=True, help="the cloud's gateways.json")
    k.set_defaults(func=cmd_keys)

    pk = sub.add_parser("pki", help="the site's MQTT certificates: CA, broker, cloud and gateway identities, ACL")
    ps = pk.add_subparsers(dest="pki_cmd", required=True)
    pca = ps.add_parser("ca", help="create the site CA (ca.crt, ca.key 0600)")
    pca.add_argument("--dir", required=True, help="folder for ca.crt and ca.key")
    pca.add_argument("--days", type=int, default=3650, help="validity (default 3650)")
    psv = ps.add_parser("server", help="issue the broker's certificate for its host names and addresses")
    psv.add_argument("--name", action="append", help="host name or IP the gateways connect to (repeat); "
                                                      "default localhost, 127.0.0.1, ::1")
    pgw = ps.add_parser("gateway", help="issue a gateway's client certificate (CN = gateway id = MQTT username)")
    pgw.add_argument("--id", required=True, help="the gateway id, as in gateway.toml")
    pcl = ps.add_parser("client", help="issue another client certificate, e.g. the cloud's (CN cloud)")
    pcl.add_argument("identity", help="the MQTT identity (CN), e.g. cloud")
    for leaf in (psv, pgw, pcl):
        leaf.add_argument("--ca", required=True, help="folder holding ca.crt and ca.key")
        leaf.add_argument("--out", required=True, help="where <name>.crt and <name>.key (0600) are written")
        leaf.add_argument("--days", type=int, default=825, help="validity, capped at the CA's (default 825)")
    for p_ in (pca, psv, pgw, pcl):
        p_.add_argument("--force", action="store_true", help="replace existing files")
    pac = ps.add_parser("acl", help="print the Mosquitto ACL file (each gateway only its own topics)")
    pac.add_argument("--cloud-identity", default="cloud", help="the cloud certificate's CN (default cloud)")
    psh = ps.add_parser("show", help="print a certificate's identity, issuer and validity")
    psh.add_argument("cert")
    pk.set_defaults(func=cmd_pki)

    g = sub.add_parser("gateway", help="run or inspect a gateway")
    gs = g.add_subparsers(dest="gateway_cmd", required=True)
    gr = gs.add_parser("run", help="poll the meters and publish batches")
    gr.add_argument("--config", required=True)
    _add_clock_options(gr)
    gst = gs.add_parser("status", help="show the outbox")
    gst.add_argument("--config", required=True)
    g.set_defaults(func=cmd_gateway)

    c = sub.add_parser("cloud", help="run or inspect the cloud")
    cs = c.add_subparsers(dest="cloud_cmd", required=True)
    cr = cs.add_parser("run", help="ingest batches into the store")
    cr.add_argument("--config", required=True)
    ci = cs.add_parser("intervals", help="print every stored interval")
    ci.add_argument("--config", required=True)
    c.set_defaults(func=cmd_cloud)

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

    s = sub.add_parser("sim", help="run simulated meters from a site file")
    s.add_argument("--config", required=True)
    _add_clock_options(s)
    s.set_defaults(func=cmd_sim)

    # Each cloud part adds its own subcommand (share, bill, carbure ...).
    for module in _PART_COMMANDS:
        importlib.import_module(module).add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(logging.DEBUG if args.verbose else logging.INFO, json_lines=args.log_format == "json")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        return int(args.func(args) or 0)
    except QuartierError as e:
        print(f"quartier: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # e.g. a malformed --start
        print(f"quartier: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
