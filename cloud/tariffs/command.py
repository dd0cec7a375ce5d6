"""``quartier bill``: bill a site from the store under one or more tariffs (wired in by :mod:`quartier.cli`)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import date, timedelta
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from cloud.tariffs.bill import Series, bill
from cloud.tariffs.calendar import interval_starts
from cloud.tariffs.errors import BillingError
from cloud.tariffs.mechanisms import Account
from cloud.tariffs.model import Compensation, Tariff, load_tariff
from quartier.series import Direction, Quality, iso_utc


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
    b.add_argument("--commissioning", help="virtual storage: the site's commissioning date, YYYY-MM-DD")
    b.add_argument("--precharge", type=int, default=0, help="virtual storage pre-charge, 0 or 1000-5000 kWh")
    b.add_argument("--opening", default="0", help="virtual storage balance or net metering credits at --from [kWh]")
    b.add_argument("--out", help="folder for <tariff>.json and <tariff>.csv")
    b.set_defaults(func=cmd_bill)


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
    """Energy per interval [Wh] of one meter and direction over ``starts`` (BillingError on any gap)."""
    ivs = store.read_intervals(gw, meter, int(starts[0]), int(starts[-1]) + 900, direction)
    if not ivs and allow_absent:
        return np.zeros(starts.size, dtype=np.int64)
    energy = np.zeros(starts.size, dtype=np.int64)
    have = np.zeros(starts.size, dtype=bool)
    for iv in ivs:
        i = int(np.searchsorted(starts, iv.start))
        if i < starts.size and starts[i] == iv.start and iv.energy_wh is not None and iv.quality is not Quality.MISSING:
            energy[i] = iv.energy_wh
            have[i] = True
    if not have.all():
        gaps = np.flatnonzero(~have)
        raise BillingError(f"{gw}/{meter} {direction.value}: {gaps.size} interval(s) missing or of quality missing, "
                           f"first at {iso_utc(int(starts[gaps[0]]))}; a bill needs every quarter-hour")
    return energy


def _store_options(args: argparse.Namespace) -> tuple[Mapping[str, Any], str]:
    if args.store:
        if not Path(args.store).is_file():
            raise BillingError(f"--store: {args.store} does not exist")
        return {"backend": "sqlite", "path": args.store}, args.store
    from quartier.config import CloudConfig

    config = CloudConfig.load(args.config)
    options = dict(config.store)
    if options.get("backend", "sqlite") == "sqlite":
        options.setdefault("path", str(config.state_dir / "series.sqlite"))
    return options, str(config.path)


def cmd_bill(args: argparse.Namespace) -> int:
    from cloud.store import open_store
    from cloud.tariffs import report

    start, end = _date(args.start, "--from"), _date(args.last, "--to") + timedelta(days=1)
    if end <= start:
        raise BillingError(f"--to {args.last} is before --from {args.start}")
    try:
        opening = Decimal(args.opening)
    except InvalidOperation:
        raise BillingError(f"--opening: not a number: {args.opening!r}") from None
    account = Account(_date(args.commissioning, "--commissioning") if args.commissioning else None,
                      args.precharge, opening)
    tariffs = [_load(p, args.timezone) for p in args.tariff]
    zones = {t.timezone for t in tariffs}
    site = _meter(args.site, "--site")
    prod_meter = _meter(args.production, "--production") if args.production else None

    options, where = _store_options(args)
    store = open_store(options, where)
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

    rows: list[tuple[str, str, Decimal, str]] = []
    for path, t in zip(args.tariff, tariffs):
        s = series[t.timezone]
        bills = bill(t, s, start, end, account)
        print(report.text(t, bills))
        rows.append((t.name, "measured", sum((b.total for b in bills), Decimal(0)), t.currency))
        if s.production_wh is not None and t.compensation is not Compensation.GROSS_METERING:
            consumption = s.import_wh + s.production_wh - s.export_wh
            # without solar there is nothing to credit or bank: bill the consumption as plain net billing
            alone = replace(t, compensation=Compensation.NET_BILLING, net_metering=None, virtual_storage=None)
            no_solar = bill(alone, Series(s.starts, consumption, np.zeros_like(consumption)), start, end)
            rows.append((t.name, "without solar", sum((b.total for b in no_solar), Decimal(0)), t.currency))
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            stem = Path(path).stem
            (out / f"{stem}.json").write_text(report.to_json(t, bills), encoding="utf-8")
            (out / f"{stem}.csv").write_text(report.to_csv(t, bills), encoding="utf-8")
    if len(rows) > 1:
        print(report.comparison(rows), end="")
    return 0

