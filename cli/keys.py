"""``quartier keys``: create, rotate, enrol and revoke the gateways' and the cloud's keys (needs ``cryptography``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from quartier.errors import QuartierError


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier keys ...`` to the ``quartier`` parser."""
    k = sub.add_parser("keys", help="create, rotate, enrol and revoke keys")
    ks = k.add_subparsers(dest="keys_cmd", required=True)
    kg = ks.add_parser("gateway", help="create a gateway's Ed25519 signing key")
    kg.add_argument("--dir", required=True, help="folder for gateway.key (0600) and gateway.pub")
    kg.add_argument("--force", action="store_true", help="replace an existing key")
    kc = ks.add_parser("cloud", help="create the cloud's X25519 decryption key")
    kc.add_argument("--dir", required=True, help="folder for cloud.key (0600) and cloud.pub")
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


def cmd_keys(args: argparse.Namespace) -> int:
    """``quartier keys gateway|cloud|rotate|enrol|revoke|list``."""
    from quartier import keys

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
        _enrol(args)
    elif args.keys_cmd == "revoke":
        _revoke(args)
    elif args.keys_cmd == "list":
        _list(args)
    return 0


def _enrol(args: argparse.Namespace) -> None:
    from datetime import timedelta

    from quartier import enrolment
    from quartier.series import format_utc

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


def _revoke(args: argparse.Namespace) -> None:
    from quartier import enrolment
    from quartier.series import format_utc

    entry = enrolment.revoke(Path(args.registry), args.id, args.reason, key=args.key_id)
    if args.key_id:
        revoked = entry.find(args.key_id)
        when = format_utc(revoked.revoked_at) if revoked and revoked.revoked_at else "?"
        print(f"key {args.key_id.lower()} of gateway {args.id} revoked at {when}; "
              "its batches are refused (revoked-key)")
    else:
        when = format_utc(entry.revoked_at) if entry.revoked_at else "?"
        print(f"gateway {args.id} revoked at {when}; all its batches are refused (revoked-gateway)")


def _list(args: argparse.Namespace) -> None:
    from quartier import enrolment

    registry = Path(args.registry)
    if not registry.exists():
        raise QuartierError(
            f"gateway registry {registry} does not exist; enrol a gateway first (quartier keys enrol)"
        )
    rows = enrolment.enrolment_table(enrolment.load_enrolments(registry))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
