"""The community file (TOML): participants, key, prices and where their series are stored.

Validated like quartier/config.py: every error is ``FILE: dotted.key: problem`` and unknown keys
are refused. Format (docs/sharing.md has a full example)::

    [community]
    name = "Les Prés"
    key = "static"            # static | dynamic (default) | custom
    iterations = 2            # default 3
    custom_keys = "keys.csv"  # custom key only: Timestamp;EAN;Coefficient
    separator = ";"           # of the files written and read

    [store]                   # same options as a cloud config's [store]
    backend = "sqlite"
    path = "series.sqlite"

    [[prices]]
    role = "producer"         # producer | consumer
    eur_per_kwh = "0.25"      # string (exact) or number
    ean = "54144900000001"    # optional: this participant only (wins over the role's price)
    valid_from = 2023-01-01   # optional, first local day
    valid_to = 2024-01-01     # optional, first local day no longer valid

    [[participants]]
    ean = "54144900000001"    # or prm = "..." (French PDL/PRM)
    name = "Boulangerie"      # optional
    role = "both"             # producer | consumer | both
    gateway = "gw-1"          # the series: gateway id + meter id; producers export, consumers import
    meter = "m1"
    key = "50"                # static key only: the consumer's key [%]
    coefficient = "100"       # producers: % of the injection made available, default 100
    entry = 2023-01-16        # optional, first local day in the sharing
    exit = 2023-03-01         # optional, first local day out of it
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from cloud.sharing.allocation import COEF_SCALE, BoolArray, KeyKind
from cloud.sharing.billing import Price, Role
from cloud.sharing.files import check_separator
from cloud.stores import store_options
from quartier.config import Table, load_toml
from quartier.series import INTERVAL_S, PARIS


class _Table(Table):
    """Table with the value kinds a community file needs on top of quartier.config's."""

    def date(self, name: str) -> date | None:
        v = self._get(name, None, (date,), "date like 2023-01-16 (no quotes)")
        if isinstance(v, datetime):
            raise self.error(name, f"must be a date without a time, got {v}")
        return v  # type: ignore[no-any-return]

    def decimal(self, name: str, default: str | None, lo: Decimal, hi: Decimal | None = None) -> Any:
        v = self._get(name, default, (str, int, float), "number or a decimal string like \"0.25\"")
        if v is None:
            return None
        try:
            d = Decimal(repr(v) if isinstance(v, float) else str(v))
        except InvalidOperation:
            raise self.error(name, f"{v!r} is not a decimal number") from None
        if not d.is_finite() or d < lo or (hi is not None and d > hi):
            raise self.error(name, f"must be between {lo} and {hi}, got {v!r}" if hi is not None else
                             f"must be at least {lo}, got {v!r}")
        return d

    def sub(self, items: list[Table]) -> list[_Table]:
        return [_Table(t.data, t.path, t.prefix) for t in items]


@dataclass(frozen=True)
class Participant:
    """One metering point of the community.

    Attributes:
        ean: EAN (Belgium) or PDL/PRM (France), digits; the files' "EAN" column.
        name: free text for statements.
        producer, consumer: its roles.
        gateway_id, meter_id: where its series is stored (export for producing, import for consuming).
        key_pct: static key. [%]
        coefficient_pct: share of its injection made available. [%]
        entry: first local day in the sharing, None if before the month.
        exit: first local day out of it, None if still in.
    """

    ean: str
    name: str
    producer: bool
    consumer: bool
    gateway_id: str
    meter_id: str
    key_pct: Decimal | None
    coefficient_pct: Decimal
    entry: date | None
    exit: date | None

    def active(self, days: Sequence[date]) -> BoolArray:
        """Whether each local day is within [entry, exit)."""
        return np.array([(self.entry is None or self.entry <= d) and (self.exit is None or d < self.exit)
                         for d in days], bool)


@dataclass(frozen=True)
class Community:
    """A loaded, validated community file."""

    path: Path
    name: str
    key: KeyKind
    iterations: int
    custom_keys: Path | None
    separator: str
    store: dict[str, Any]
    prices: tuple[Price, ...]
    participants: tuple[Participant, ...]

    @property
    def producers(self) -> list[Participant]:
        return [p for p in self.participants if p.producer]

    @property
    def consumers(self) -> list[Participant]:
        return [p for p in self.participants if p.consumer]

    def static_keys(self) -> np.ndarray:
        """Consumers' static keys in COEF_SCALE units (0 when not static)."""
        return np.array([int((p.key_pct or 0) * COEF_SCALE) for p in self.consumers], np.int64)

    def producer_coefficients(self) -> np.ndarray:
        return np.array([int(p.coefficient_pct * COEF_SCALE) for p in self.producers], np.int64)

    @classmethod
    def load(cls, path: str | Path) -> Community:
        p = Path(path)
        root = _Table(load_toml(p), p)
        c = _Table(root.table("community").data, p, "community")
        name = c.str("name", "")
        key = KeyKind(c.str("key", "dynamic", choices=tuple(k.value for k in KeyKind)))
        iterations = c.int("iterations", 3, 1, 100)
        custom = c.path_("custom_keys", None)
        if key is KeyKind.CUSTOM and custom is None:
            raise c.error("custom_keys", "missing: key = \"custom\" needs a file of Timestamp;EAN;Coefficient rows")
        if key is not KeyKind.CUSTOM and custom is not None:
            raise c.error("custom_keys", f"only used with key = \"custom\" (key is {key.value!r})")
        separator = c.str("separator", ";")
        try:
            check_separator(separator)
        except ValueError as e:
            raise c.error("separator", str(e)) from None
        c.done()

        store = store_options(root.table("store", required=False))

        participants: list[Participant] = []
        seen: dict[str, str] = {}
        for t in root.sub(root.tables("participants")):
            participants.append(_participant(t, key, seen))
        if not participants:
            raise root.error("participants", "at least one [[participants]] entry is required")
        if not any(x.producer for x in participants):
            raise root.error("participants", "no producer (role = \"producer\" or \"both\")")
        if not any(x.consumer for x in participants):
            raise root.error("participants", "no consumer (role = \"consumer\" or \"both\")")

        prices = []
        for t in root.sub(root.tables("prices", required=False)):
            role = Role(t.str("role", choices=tuple(r.value for r in Role)))
            ean = t.str("ean", None)
            if ean is not None and ean not in seen:
                raise t.error("ean", f"{ean!r} is not a participant of the community")
            vf, vt = t.date("valid_from"), t.date("valid_to")
            if vf is not None and vt is not None and vt <= vf:
                raise t.error("valid_to", f"must be after valid_from ({vf}), got {vt}")
            if "eur_per_kwh" not in t.data:
                raise t.error("eur_per_kwh", "missing (the price in EUR/kWh, e.g. eur_per_kwh = \"0.25\")")
            prices.append(Price(role, t.decimal("eur_per_kwh", None, Decimal(0)), ean, vf, vt))
            t.done()
        root.done()
        return cls(p, name, key, iterations, custom, separator, store, tuple(prices), tuple(participants))


def _participant(t: _Table, key: KeyKind, seen: dict[str, str]) -> Participant:
    ids = [n for n in ("ean", "prm", "pdl") if n in t.data]
    if len(ids) != 1:
        raise t.error("ean", "give exactly one of ean (Belgium) or prm / pdl (France)"
                      + (f"; got {', '.join(ids)}" if ids else ""))
    ident = t.str(ids[0])
    if not ident.isdigit():
        raise t.error(ids[0], f"must be digits only, got {ident!r}")
    if ident in seen:
        raise t.error(ids[0], f"{ident} already given by {seen[ident]}")
    seen[ident] = t.prefix
    role = t.str("role", choices=("producer", "consumer", "both"))
    producer, consumer = role in ("producer", "both"), role in ("consumer", "both")
    key_pct = t.decimal("key", None, Decimal(0), Decimal(100))
    if consumer and key is KeyKind.STATIC and key_pct is None:
        raise t.error("key", "missing: with key = \"static\" every consumer needs its key in % (e.g. key = \"50\")")
    if key_pct is not None and not (consumer and key is KeyKind.STATIC):
        raise t.error("key", "only used for consumers of a community with key = \"static\"")
    coefficient = t.decimal("coefficient", "100", Decimal(0), Decimal(100))
    if "coefficient" in t.data and not producer:
        raise t.error("coefficient", "only used for producers")
    for name, v in (("key", key_pct), ("coefficient", coefficient)):
        if v is not None and (v * COEF_SCALE) % 1:
            raise t.error(name, f"at most 6 decimals, got {v}")
    entry, exit_ = t.date("entry"), t.date("exit")
    if entry is not None and exit_ is not None and exit_ <= entry:
        raise t.error("exit", f"must be after entry ({entry}), got {exit_}")
    part = Participant(ident, t.str("name", ""), producer, consumer, t.str("gateway"), t.str("meter"), key_pct,
                       coefficient, entry, exit_)
    t.done()
    return part


def month_periods(month: str) -> np.ndarray:
    """Period starts of a local (Europe/Paris) calendar month ``YYYY-MM``. [s since epoch, UTC]

    A month of 31 days has 2,976 periods, minus 4 in March (summer time) plus 4 in October.
    Raises ValueError for a malformed month.
    """
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=PARIS)
    except ValueError:
        raise ValueError(f"month must look like 2023-01, got {month!r}") from None
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    start, end = int(first.timestamp()), int(nxt.timestamp())
    return np.arange(start, end, INTERVAL_S, dtype=np.int64)
