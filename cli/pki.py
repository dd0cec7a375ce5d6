"""``quartier pki``: the site's MQTT certificates (CA, broker, cloud and gateway identities) and the broker's ACL."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier pki ...`` to the ``quartier`` parser."""
    pk = sub.add_parser("pki", help="the site's MQTT certificates: CA, broker, cloud and gateway identities, ACL")
    ps = pk.add_subparsers(dest="pki_cmd", required=True)
    pca = ps.add_parser("ca", help="create the site CA (ca.crt, ca.key 0600)")
    pca.add_argument("--dir", required=True, help="folder for ca.crt and ca.key")
    pca.add_argument("--days", type=int, default=3650, help="validity (default 3650)")
    psv = ps.add_parser("server", help="issue the broker's certificate for its host names and addresses "
                                       "(server.crt, server.key 0600, and a copy of ca.crt)")
    psv.add_argument("--name", action="append", help="host name or IP the gateways connect to (repeat); "
                                                      "default localhost, 127.0.0.1, ::1")
    pgw = ps.add_parser("gateway", help="issue a gateway's client certificate (CN = gateway id = MQTT username)")
    pgw.add_argument("--id", required=True, help="the gateway id, as in gateway.toml")
    pcl = ps.add_parser("client", help="issue another client certificate, e.g. the cloud's (CN cloud)")
    pcl.add_argument("identity", help="the MQTT identity (CN), e.g. cloud")
    for leaf in (psv, pgw, pcl):
        leaf.add_argument("--ca", required=True, help="folder holding ca.crt and ca.key")
        leaf.add_argument("--out", required=True,
                          help="where <name>.crt, <name>.key (0600) and a copy of ca.crt are written")
        leaf.add_argument("--days", type=int, default=825, help="validity, capped at the CA's (default 825)")
    for p_ in (pca, psv, pgw, pcl):
        p_.add_argument("--force", action="store_true", help="replace existing files")
    pbr = ps.add_parser("broker", help="set up the site's Mosquitto: certs/ (ca.crt, server.crt, server.key), "
                                       "quartier.acl and conf.d/quartier.conf under --dir")
    pbr.add_argument("--ca", required=True, help="folder holding ca.crt and ca.key")
    pbr.add_argument("--dir", required=True, help="the broker's folder, /etc/mosquitto on Debian")
    pbr.add_argument("--name", action="append", help="host name or IP the clients connect to (repeat); "
                                                      "default localhost, 127.0.0.1, ::1")
    pbr.add_argument("--user", help="the account the broker runs as (Debian: mosquitto); it gets the key (needs root)")
    pbr.add_argument("--port", type=int, default=8883, help="the TLS listener's port (default 8883)")
    pbr.add_argument("--force", action="store_true", help="replace existing files")
    pac = ps.add_parser("acl", help="print the Mosquitto ACL file (each gateway only its own topics)")
    pac.add_argument("--cloud-identity", default="cloud", help="the cloud certificate's CN (default cloud)")
    psh = ps.add_parser("show", help="print a certificate's identity, issuer and validity")
    psh.add_argument("cert")
    pk.set_defaults(func=cmd_pki)


def cmd_pki(args: argparse.Namespace) -> int:
    """``quartier pki ca|server|gateway|client|acl|show``."""
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
    if args.pki_cmd == "broker":
        from quartier.broker import install_broker

        if not 1 <= args.port <= 65535:
            raise pki.PkiError(f"--port must be in 1..65535 (got {args.port})")
        broker = install_broker(Path(args.ca), Path(args.dir), args.name or pki.DEFAULT_SERVER_NAMES,
                                user=args.user, port=args.port, force=args.force)
        owner = f", owned by {args.user}" if args.user else ""
        print(f"CA certificate: {broker.ca}\ncertificate: {broker.cert}\nprivate key: {broker.key} (mode 0600{owner})"
              f"\nACL: {broker.acl}\nconfiguration: {broker.config}\nthen: systemctl restart mosquitto")
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
    if args.pki_cmd != "ca":
        print(f"CA certificate: {pki.copy_ca_certificate(Path(args.ca), Path(args.out))}")
    return 0
