"""``quartier share``: run a month of a community (store -> files + statements), or bill from received files.

``quartier share run --community FILE --month 2023-01 [--out DIR] [--separator ';'] [--exclude-missing]``
reads the participants' series, allocates, writes ``production_2023-01.csv``,
``consumption_2023-01.csv`` and ``statements_2023-01.csv`` into DIR, and prints the statements.

``quartier share bill --community FILE --production F --consumption F [--out DIR]`` bills from the
two files as received from the DSO (Quartier did not compute them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np

from cloud.arrays import ranges, to_array
from cloud.sharing.allocation import IntArray, KeyKind, allocate
from cloud.sharing.billing import Price, Role, Statement, format_statement, local_days, statements
from cloud.sharing.community import Community, Participant, month_periods
from cloud.sharing.errors import MissingDataError, SharingError
from cloud.sharing.files import check_separator, read_consumption, read_custom_keys, read_production, write_files
from quartier.series import Direction, iso_utc

STATEMENT_HEADER = ("EAN", "Rôle", "Du", "Au", "Énergie (kWh)", "Prix (EUR/kWh)", "Montant (EUR)")


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier share`` (run, bill) to the ``quartier`` parser."""
    s = sub.add_parser("share", help="energy sharing: allocate a month, write the representative's files, bill")
    ss = s.add_subparsers(dest="share_cmd", required=True)
    r = ss.add_parser("run", help="allocate a month from the store; write both files and the statements")
    r.add_argument("--community", required=True, help="community file (TOML, see docs/sharing.md)")
    r.add_argument("--month", required=True, help="local calendar month, e.g. 2023-01")
    r.add_argument("--out", default=".", help="folder for the files (default: current folder)")
    r.add_argument("--separator", help="CSV separator (default: the community file's, else ';')")
    r.add_argument("--exclude-missing", action="store_true",
                   help="take a participant out of the allocation where its data is missing, instead of stopping")
    r.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r.set_defaults(func=cmd_run)
    b = ss.add_parser("bill", help="bill from a production and a consumption file as received")
    b.add_argument("--community", required=True, help="community file: its [[prices]] and separator are used")
    b.add_argument("--production", required=True, help="production file")
    b.add_argument("--consumption", required=True, help="consumption file")
    b.add_argument("--out", help="write statements.csv there too")
    b.add_argument("--separator", help="CSV separator (default: the community file's, else ';')")
    b.set_defaults(func=cmd_bill)


class _Progress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.last = -1

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.quiet or total == 0:
            return
        pct = 100 * done // total
        if pct // 10 != self.last // 10 or done == total:
            self.last = pct
            print(f"{label}: {done}/{total} ({pct} %)", file=sys.stderr, flush=True)
        if done == total:
            self.last = -1


def _separator(args: argparse.Namespace, community: Community) -> str:
    sep = args.separator if args.separator is not None else community.separator
    try:
        return check_separator(sep)
    except ValueError as e:
        raise SharingError(f"--separator: {e}") from None


def read_series(
    community: Community, periods: IntArray, progress: _Progress
) -> tuple[IntArray, IntArray, dict[str, list[tuple[int, int]]], np.ndarray, np.ndarray]:
    """Read every participant's month from the store.

    Returns production and consumption (periods, n) [Wh], the missing ranges per participant and
    direction (only where the participant is in the sharing), and the missing masks.
    """
    from cloud.stores import open_store

    days = local_days(periods)
    store = open_store(community.store, str(community.path), create=False)
    try:
        start, end = int(periods[0]), int(periods[-1]) + 900
        missing: dict[str, list[tuple[int, int]]] = {}
        out = []
        for role, people, direction in ((Role.PRODUCER, community.producers, Direction.EXPORT),
                                        (Role.CONSUMER, community.consumers, Direction.IMPORT)):
            energy = np.zeros((len(periods), len(people)), np.int64)
            gaps = np.zeros((len(periods), len(people)), bool)
            for j, p in enumerate(people):
                ivs = store.read_intervals(p.gateway_id, p.meter_id, start, end, direction)
                energy[:, j], gap = to_array(ivs, periods)
                gaps[:, j] = gap & p.active(days)
                if gaps[:, j].any():
                    missing[f"{p.ean} ({role.value}, {p.gateway_id}/{p.meter_id} {direction.value})"] = ranges(
                        periods, gaps[:, j])
                progress(f"reading {role.value} series", j + 1, len(people))
            out.append((energy, gaps))
    finally:
        store.close()
    (prod, prod_gaps), (cons, cons_gaps) = out
    return prod, cons, missing, prod_gaps, cons_gaps


def missing_report(missing: dict[str, list[tuple[int, int]]]) -> str:
    lines = []
    for who, rs in missing.items():
        n = sum((b - a) // 900 for a, b in rs)
        shown = ", ".join(f"{iso_utc(a)} .. {iso_utc(b)}" for a, b in rs[:5])
        more = f" and {len(rs) - 5} more ranges" if len(rs) > 5 else ""
        lines.append(f"  {who}: {n} periods missing: {shown}{more}")
    return "\n".join(lines)


def _active(people: Sequence[Participant], days: list) -> np.ndarray:
    if not people:
        return np.zeros((len(days), 0), bool)
    return np.stack([p.active(days) for p in people], axis=1)


def write_statements(path: Path, bills: list[Statement], separator: str) -> None:
    def num(d: Decimal) -> str:
        return str(d).replace(".", ",")

    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(separator.join(STATEMENT_HEADER) + "\n")
        for s in bills:
            for line in s.lines:
                f.write(separator.join([s.ean, s.role.value, str(line.first_day), str(line.last_day),
                                        num(line.energy_kwh), num(line.eur_per_kwh), num(line.amount_eur)]) + "\n")


def bill_all(prices: Sequence[Price], producer_periods: IntArray, producer_eans: Sequence[str],
             self_consumed: IntArray, consumer_periods: IntArray, consumer_eans: Sequence[str],
             covered: IntArray) -> list[Statement]:
    """Statements of the producers then the consumers."""
    return (statements(producer_periods, producer_eans, Role.PRODUCER, self_consumed, prices)
            + statements(consumer_periods, consumer_eans, Role.CONSUMER, covered, prices))


def cmd_run(args: argparse.Namespace) -> int:
    community = Community.load(args.community)
    sep = _separator(args, community)
    try:
        periods = month_periods(args.month)
    except ValueError as e:
        raise SharingError(f"--month: {e}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = _Progress(args.quiet)
    days = local_days(periods)
    prod, cons, missing, prod_gaps, cons_gaps = read_series(community, periods, progress)
    if missing:
        report = missing_report(missing)
        if not args.exclude_missing:
            raise MissingDataError(missing, f"{args.community}: data missing for {len(missing)} series in "
                                   f"{args.month}; nothing written (with --exclude-missing those participants are "
                                   f"out of the allocation where data is missing):\n{report}")
        print(f"data missing, participants out of the allocation there:\n{report}", file=sys.stderr)
    producers, consumers = community.producers, community.consumers
    p_act = _active(producers, days) & ~prod_gaps
    c_act = _active(consumers, days) & ~cons_gaps
    custom = None
    if community.key is KeyKind.CUSTOM:
        assert community.custom_keys is not None
        custom = read_custom_keys(community.custom_keys, periods.tolist(), [p.ean for p in consumers], sep)
    if not args.quiet:
        print(f"allocating {len(periods)} periods, {len(producers)} producers, {len(consumers)} consumers, "
              f"{community.iterations} iterations, {community.key.value} key", file=sys.stderr, flush=True)
    a = allocate(prod, community.producer_coefficients(), cons, community.key, iterations=community.iterations,
                 static_keys=community.static_keys(), custom_keys=custom, producer_active=p_act,
                 consumer_active=c_act)
    prod_path, cons_path = out / f"production_{args.month}.csv", out / f"consumption_{args.month}.csv"
    write_files(prod_path, cons_path, periods.tolist(), [p.ean for p in producers], [p.ean for p in consumers], a,
                sep, progress=lambda d, t: progress("writing the consumption file", d, t))
    bills = bill_all(community.prices, periods, [p.ean for p in producers], a.self_consumed_wh,
                     periods, [p.ean for p in consumers], a.covered_total_wh())
    st_path = out / f"statements_{args.month}.csv"
    write_statements(st_path, bills, sep)
    for s in bills:
        print(format_statement(s))
    print(f"wrote {prod_path}, {cons_path}, {st_path}")
    return 0


def cmd_bill(args: argparse.Namespace) -> int:
    community = Community.load(args.community)
    sep = _separator(args, community)
    p = read_production(args.production, sep)
    c = read_consumption(args.consumption, sep)
    bills = bill_all(community.prices, p.period_starts, p.eans, p.self_consumed_wh, c.period_starts, c.eans,
                     c.covered_total_wh())
    for s in bills:
        print(format_statement(s))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_statements(out / "statements.csv", bills, sep)
        print(f"wrote {out / 'statements.csv'}")
    return 0

