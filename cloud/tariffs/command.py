"""``quartier bill``: bill a site from the store under one or more tariffs (wired in by :mod:`cli.main`)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from cloud.arrays import to_array
from cloud.tariffs.bill import Series, storage_statement
from cloud.tariffs.calendar import interval_starts
from cloud.tariffs.catalogue import with_validity_warnings
from cloud.tariffs.compare import ComparisonRow, compare
from cloud.tariffs.errors import BillingError
from cloud.tariffs.mechanisms import PRECHARGE_MAX_KWH, PRECHARGE_MIN_KWH, Account
from cloud.tariffs.model import Compensation, Sector, Tariff, load_tariff
from quartier.series import Direction, iso_utc


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier bill`` to the ``quartier`` parser."""
    b = sub.add_parser("bill", help="bill a site's measured import/export under one or more tariffs (docs/tariffs.md)")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="cloud.toml: read its [store]")
    src.add_argument("--store", help="a SQLite series store file (instead of --config)")
    b.add_argument("--site", required=True, help="the grid connection meter, GATEWAY/METER")
    b.add_argument("--production", help="the solar production meter, GATEWAY/METER (gross metering, 'without "
                                        "solar' comparison)")
    b.add_argument("--tariff", required=True, action="append",
                   help="tariff file (.toml, or a URDB rate .json with --timezone); repeat to compare tariffs")
    b.add_argument("--timezone", help="local time zone of URDB tariffs, e.g. America/Los_Angeles")
    b.add_argument("--from", dest="start", required=True, help="first local day billed, YYYY-MM-DD")
    b.add_argument("--to", dest="last", required=True, help="last local day billed (included), YYYY-MM-DD")
    b.add_argument("--mechanism", action="append", choices=[c.value for c in Compensation],
                   help="bill each tariff under this compensation mechanism instead of its own; repeat to compare "
                        "mechanisms (e.g. net_billing and virtual_storage)")
    b.add_argument("--withdrawal-price", help="virtual storage: EUR/kWh (tax-included) paid on each kWh drawn, for "
                                              "--mechanism virtual_storage (default: the tariff's own, else 0)")
    b.add_argument("--commissioning", help="virtual storage: the site's commissioning date, YYYY-MM-DD")
    b.add_argument("--precharge", type=int, default=0, help="virtual storage pre-charge, 0 or 1000-5000 kWh")
    b.add_argument("--opening", default="0", help="virtual storage balance or net metering credits at --from [kWh]")
    b.add_argument("--kva", help="the site's subscribed power [kVA] (puissance souscrite): picks the subscription "
                                 "line of tariffs priced by kVA (by_kva)")
    b.add_argument("--out", help="folder for <tariff>.json and <tariff>.csv")
    b.set_defaults(func=cmd_bill)
    c = sub.add_parser("tariffs", help="list a folder of tariff files as a tariff database: filters, popularity, "
                                       "the default for new projects (docs/tariffs.md)")
    c.add_argument("--dir", help="folder of .toml tariffs (default: the bundled French library)")
    c.add_argument("--country", help="ISO 3166-1 alpha-2 code, e.g. FR")
    c.add_argument("--sector", choices=[m.value for m in Sector if m is not Sector.UNSPECIFIED])
    c.add_argument("--on", help="only tariffs in force on this local date, YYYY-MM-DD")
    c.add_argument("--latest", action="store_true", help="only the latest version of each tariff")
    c.set_defaults(func=cmd_tariffs)
    t = sub.add_parser("tempo-days", help="RTE's published Tempo colours (tempo_like_calendars JSON) to a day "
                                          "calendar CSV for tempo.toml (docs/tariffs.md)")
    t.add_argument("rte", nargs="+", help="RTE API answer(s), JSON; several files are merged")
    t.add_argument("--out", required=True, help="the calendar CSV to write (point [day_types].calendar to it)")
    t.set_defaults(func=cmd_tempo_days)


def cmd_tariffs(args: argparse.Namespace) -> int:
    from cloud.tariffs.catalogue import applicable, by_popularity, default_tariff, load_folder

    folder = Path(args.dir) if args.dir else Path(__file__).parent / "library"
    if not folder.is_dir():
        raise BillingError(f"--dir: {folder} is not a folder")
    on = _date(args.on, "--on") if args.on else None
    entries = load_folder(folder)
    sector = Sector(args.sector) if args.sector else None
    files = {id(e.tariff): e.path.name for e in entries if e.tariff}
    found = by_popularity([e.tariff for e in entries
                           if e.tariff and applicable(e.tariff, args.country, sector, on, args.latest)])
    default = default_tariff(found)
    print(f"{len(found)} tariff(s) in {folder}" + (f" in force on {on}" if on else ""))
    for t in found:
        valid = f"{t.valid_from} to {t.valid_to or '-'}"
        mark = "  default for new projects" if t is default else ""
        print(f"  {files[id(t)]:<24} {t.name} ({t.distributor}, {t.country}, {t.sector.value}), "
              f"valid {valid}, {'latest' if t.latest else 'not latest'}, popularity {t.popularity}, "
              f"{t.compensation.value}{mark}")
        for w in t.warnings:
            print(f"  {'':<24} WARNING: {w}")
    for e in entries:
        if e.tariff is None:
            print(f"  {e.path.name:<24} REFUSED: {e.error}")
    return 0


def cmd_tempo_days(args: argparse.Namespace) -> int:
    import json

    from cloud.tariffs.errors import TempoCalendarError
    from cloud.tariffs.tempo import calendar_csv, rte_days

    days: dict[date, str] = {}
    for name in args.rte:
        try:
            doc = json.loads(Path(name).read_text(encoding="utf-8"))
        except OSError as e:
            raise TempoCalendarError(f"{name}: cannot read: {e.strerror}") from None
        except ValueError as e:
            raise TempoCalendarError(f"{name}: not JSON: {e}") from None
        for d, colour in rte_days(doc, name).items():
            if days.get(d, colour) != colour:
                raise TempoCalendarError(f"{name}: {d} is {colour} here but {days[d]} in an earlier file")
            days[d] = colour
    if not days:
        raise TempoCalendarError(f"{', '.join(args.rte)}: no day in the RTE answer(s)")
    first, last = min(days), max(days)
    counts = {c: list(days.values()).count(c) for c in ("blue", "white", "red")}
    source = (f"RTE Tempo Like Supply Contract (tempo_like_calendars), from {', '.join(Path(n).name for n in args.rte)}"
              f"\n{len(days)} days {first} to {last}: " + ", ".join(f"{n} {c}" for c, n in counts.items()))
    Path(args.out).write_text(calendar_csv(days, source), encoding="utf-8")
    print(f"{args.out}: {len(days)} days {first} to {last} ({', '.join(f'{n} {c}' for c, n in counts.items())})")
    return 0


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BillingError(f"{option}: not a date (YYYY-MM-DD): {value!r}") from None


def _meter(value: str, option: str) -> tuple[str, str]:
    gw, sep, meter = value.partition("/")
    if not sep or not gw or not meter:
        raise BillingError(f"{option}: expected GATEWAY/METER, got {value!r}")
    return gw, meter


def _load(path: str, timezone: str | None) -> Tariff:
    if path.endswith(".json"):
        if not timezone:
            raise BillingError(f"--tariff {path}: a URDB rate has no time zone; "
                               "give --timezone (e.g. America/New_York)")
        from cloud.tariffs.urdb import load_urdb

        return load_urdb(path, timezone)
    return load_tariff(path)


def read_series(store: Any, gw: str, meter: str, direction: Direction, starts: np.ndarray,
                allow_absent: bool) -> np.ndarray:
    """Energy per interval [Wh] of one meter and direction over the consecutive ``starts`` [s UTC] (BillingError on
    any gap)."""
    ivs = store.read_intervals(gw, meter, int(starts[0]), int(starts[-1]) + 900, direction)
    if not ivs and allow_absent:
        return np.zeros(starts.size, dtype=np.int64)
    energy, missing = to_array(ivs, starts)
    if missing.any():
        gaps = np.flatnonzero(missing)
        raise BillingError(f"{gw}/{meter} {direction.value}: {gaps.size} interval(s) missing or of quality missing, "
                           f"first at {iso_utc(int(starts[gaps[0]]))}; a bill needs every quarter-hour")
    return energy


def _store_options(args: argparse.Namespace) -> tuple[Mapping[str, Any], str]:
    if args.store:
        if not Path(args.store).is_file():
            raise BillingError(f"--store: {args.store} does not exist")
        return {"backend": "sqlite", "path": args.store}, args.store
    from cloud.config import CloudConfig

    config = CloudConfig.load(args.config)
    return config.store, str(config.path)


def _after_solar(tariff: Tariff) -> Tariff | None:
    """The tariff named by ``switch_to`` (one hop: its own ``switch_to`` is not followed)."""
    if tariff.switch_to is None:
        return None
    after = load_tariff(tariff.switch_to)
    if after.timezone != tariff.timezone or after.currency != tariff.currency:
        raise BillingError(f"tariff {tariff.name!r} switches to {after.name!r}, whose time zone or currency "
                           f"differs ({after.timezone} {after.currency} vs {tariff.timezone} {tariff.currency})")
    return after


def _mechanisms(args: argparse.Namespace, tariffs: list[Tariff]) -> list[list[Compensation]]:
    """Per tariff (the one billed with solar), the mechanisms to bill it under (its own without --mechanism)."""
    if not args.mechanism:
        return [[t.compensation] for t in tariffs]
    wanted = [Compensation(m) for m in args.mechanism]
    dup = sorted({m.value for m in wanted if wanted.count(m) > 1})
    if dup:
        raise BillingError(f"--mechanism {dup[0]} is given twice")
    return [wanted for _ in tariffs]


def _decimal(value: str | None, option: str) -> Decimal | None:
    """An option's exact decimal value, None when absent (BillingError naming the option if not a number)."""
    if value is None:
        return None
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise BillingError(f"{option}: not a number: {value!r}") from None
    if not d.is_finite():
        raise BillingError(f"{option}: not a finite number: {value!r}")
    return d


def _check_options(args: argparse.Namespace, start: date, end: date, mechanisms: list[list[Compensation]]
                   ) -> tuple[Account, Decimal | None]:
    """Validate the options of the compensation mechanisms before reading the store."""
    used = {m for ms in mechanisms for m in ms}
    opening = _decimal(args.opening, "--opening")
    assert opening is not None  # the option has a default
    if opening < 0 or (opening * 1000) % 1:
        raise BillingError(f"--opening: must be >= 0 [kWh] with at most 3 decimals, got {args.opening!r}")
    pre = args.precharge
    if pre and not PRECHARGE_MIN_KWH <= pre <= PRECHARGE_MAX_KWH:
        raise BillingError(f"--precharge: the virtual storage pre-charge is 0 or {PRECHARGE_MIN_KWH} to "
                           f"{PRECHARGE_MAX_KWH} kWh, got {pre}")
    commissioning = _date(args.commissioning, "--commissioning") if args.commissioning else None
    withdrawal = _decimal(args.withdrawal_price, "--withdrawal-price")
    if withdrawal is not None:
        if withdrawal < 0:
            raise BillingError(f"--withdrawal-price: must be >= 0 EUR/kWh, got {args.withdrawal_price!r}")
        if not args.mechanism or Compensation.VIRTUAL_STORAGE not in used:
            raise BillingError("--withdrawal-price is for --mechanism virtual_storage")
    if Compensation.VIRTUAL_STORAGE in used:
        if commissioning is None:
            raise BillingError("virtual storage needs --commissioning DATE (the site's date of commissioning, "
                               "'mise en service': the storage starts at local midnight of that day)")
        if commissioning >= end:
            raise BillingError(f"--commissioning {commissioning} is after --to {end - timedelta(days=1)}: the "
                               "virtual storage would not start in the billed range")
        if commissioning < start and pre and not opening:
            raise BillingError(f"--commissioning {commissioning} is before --from {start}: the pre-charge is "
                               "history; give the storage balance at --from with --opening KWH instead of --precharge")
    if Compensation.GROSS_METERING in used and not args.production:
        raise BillingError("gross metering (buy all, sell all) needs --production GATEWAY/METER")
    kva = _decimal(args.kva, "--kva")
    if kva is not None and kva <= 0:
        raise BillingError(f"--kva: must be a positive power in kVA, got {args.kva!r}")
    return Account(commissioning, pre, opening, kva), withdrawal


def _write(out: Path, stem: str, text: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / stem).write_text(text, encoding="utf-8")


def cmd_bill(args: argparse.Namespace) -> int:
    from cloud.stores import open_store
    from cloud.tariffs import report

    start, end = _date(args.start, "--from"), _date(args.last, "--to") + timedelta(days=1)
    if end <= start:
        raise BillingError(f"--to {args.last} is before --from {args.start}")
    tariffs = [with_validity_warnings(_load(p, args.timezone), start, end) for p in args.tariff]
    afters = [None if a is None else with_validity_warnings(a, start, end) for a in map(_after_solar, tariffs)]
    mechanisms = _mechanisms(args, [a or t for t, a in zip(tariffs, afters)])
    account, withdrawal = _check_options(args, start, end, mechanisms)
    for t in tariffs + [a for a in afters if a]:  # before reading the store: a kVA grid needs the site's kVA
        for f in t.fixed:
            f.amount_for(account.subscribed_kva)
    zones = {t.timezone for t in tariffs}
    site = _meter(args.site, "--site")
    prod_meter = _meter(args.production, "--production") if args.production else None

    options, where = _store_options(args)
    store = open_store(options, where, create=False)
    series: dict[str, Series] = {}
    try:
        for tz in zones:
            starts = interval_starts(start, end, tz)
            imp = read_series(store, *site, Direction.IMPORT, starts, allow_absent=False)
            exp = read_series(store, *site, Direction.EXPORT, starts, allow_absent=True)
            prod = read_series(store, *prod_meter, Direction.EXPORT, starts, allow_absent=False) if prod_meter else None
            series[tz] = Series(starts, imp, exp, prod)
    finally:
        store.close()

    rows: list[ComparisonRow] = []
    out = Path(args.out) if args.out else None
    for path, t, after, ms in zip(args.tariff, tariffs, afters, mechanisms):
        s = series[t.timezone]
        runs, tariff_rows = compare(t, ms, s, start, end, account, withdrawal, after)
        if after is not None:
            print(f"{t.name} switches to {after.name} once solar is installed (switch_to): the bills below are "
                  f"{after.name}'s; 'without solar' is {t.name}'s\n")
            path = f"{Path(path).stem}-to-{Path(t.switch_to or '').stem}"
        rows += tariff_rows
        for run in runs:
            storage = (storage_statement(run.tariff, s, start, end, account)
                       if run.tariff.compensation is Compensation.VIRTUAL_STORAGE else [])
            print(report.text(run.tariff, run.bills))
            if storage:
                print(report.storage_text(storage))
            if out:
                stem = Path(path).stem + (f"-{run.tariff.compensation.value}" if args.mechanism else "")
                _write(out, f"{stem}.json", report.to_json(run.tariff, run.bills, storage))
                _write(out, f"{stem}.csv",
                       report.to_csv(run.tariff, run.bills) + report.storage_csv(run.tariff, storage))
    if len(rows) > 1:
        print(report.comparison(rows), end="")
        if out:
            _write(out, "comparison.json", report.comparison_json(rows))
            _write(out, "comparison.csv", report.comparison_csv(rows))
    return 0
