"""The tariff model as data: frozen dataclasses, loaded from TOML and validated.

Field names follow OpenSolar's tariff editor (docs/tariffs.md maps each one to the guide). Every price is
tax-included (TTC), as the guide requires; a tariff file says so explicitly with ``prices_include_tax = true``.

Errors are ``FILE: dotted.key: problem`` (:class:`~cloud.tariffs.errors.TariffFileError`); unknown keys are refused.
Prices and limits are read as exact decimals: write them as TOML strings (``"0.2516"``) or numbers; a number is
taken as the shortest decimal that reads back to it, so ``0.2516`` is exactly 0.2516.
"""

from __future__ import annotations

import enum
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud.tariffs.calendar import HOLIDAY_CALENDARS
from cloud.tariffs.errors import BillingError, TariffFileError
from quartier.config import _REQUIRED as _CONFIG_REQUIRED
from quartier.config import Table
from quartier.series import PARIS

DAY_TYPES: tuple[str, ...] = ("weekday", "weekend")
"""Day types of a time-of-use calendar: Monday-Friday and Saturday-Sunday (local time)."""

SLOTS_PER_DAY: tuple[int, ...] = (24, 48, 96)
"""Allowed lengths of a day's schedule: hours (the guide's calendar), half-hours, quarter-hours."""


class ChargeType(str, enum.Enum):
    """What a charge bills (guide: Type de facturation)."""

    USAGE = "usage"  # Taux d'utilisation [EUR/kWh] on imported energy
    DEMAND = "demand"  # Taux de demande [EUR/kW] on the peak 15-minute average power of a bill
    EXPORT = "export"  # Taux d'exportation [EUR/kWh], a credit on exported energy
    CONTROLLED_LOAD = "controlled_load"  # Charge controlee [EUR/kWh] on a separately metered load


class Structure(str, enum.Enum):
    """How a charge's price varies (guide: Forfaitaire, Blocage, Temps d'utilisation)."""

    FLAT = "flat"
    BLOCK = "block"
    TOU = "tou"


class BlockReset(str, enum.Enum):
    """When block tiers start again from zero (guide: Periode de blocage)."""

    DAILY = "daily"  # Quotidien: every local day
    BILL = "bill"  # Defaut: every bill


class BillingFrequency(str, enum.Enum):
    """Bill length (guide: Frequence de facturation); bills follow calendar months in local time."""

    MONTHLY = "monthly"
    BIMONTHLY = "bimonthly"  # every two months: Jan-Feb, Mar-Apr ...
    QUARTERLY = "quarterly"  # Jan-Mar, Apr-Jun ...

    @property
    def months(self) -> int:
        return {"monthly": 1, "bimonthly": 2, "quarterly": 3}[self.value]


class Compensation(str, enum.Enum):
    """Solar compensation mechanism (guide: Mecanisme de compensation solaire; virtual storage: Urban Solar)."""

    NET_BILLING = "net_billing"
    NET_METERING = "net_metering"
    GROSS_METERING = "gross_metering"
    VIRTUAL_STORAGE = "virtual_storage"


class Sector(str, enum.Enum):
    """Customer type (guide: Secteur); default unspecified."""

    RESIDENTIAL = "residential"
    COMMERCIAL = "commercial"
    INDUSTRIAL = "industrial"
    UNSPECIFIED = "unspecified"


class FixedPer(str, enum.Enum):
    """Time scale of a fixed surcharge or discount (guide: EUR/jour, mois, trimestre, annee)."""

    DAY = "day"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True)
class Tier:
    """One block of a rate.

    Attributes:
        price: tax-included price. [EUR/kWh], or [EUR/kW] for demand
        limit: upper bound of the block, counted from zero at each reset; None for the last block. [kWh] or [kW]
    """

    price: Decimal
    limit: Decimal | None = None

    @property
    def limit_milli(self) -> int | None:
        """The limit in [Wh] (or [W] for demand); validation guarantees it is whole."""
        return None if self.limit is None else int(self.limit * 1000)


@dataclass(frozen=True)
class Rate:
    """A named price (a time-of-use period such as ``HP``), flat when it has one tier."""

    name: str
    tiers: tuple[Tier, ...]


@dataclass(frozen=True)
class Season:
    """A season runs from its start (month, day; local dates) to the next season's start, cyclically."""

    name: str
    start_month: int
    start_day: int


@dataclass(frozen=True)
class DaySchedule:
    """Which rate applies in each slot of one day type in one season.

    ``slots`` holds indexes into the charge's ``rates``; its length is 24, 48 or 96 (slot = local minute of
    day * len // 1440).
    """

    season: str
    day_type: str
    slots: tuple[int, ...]


@dataclass(frozen=True)
class Charge:
    """One line of the guide's Facturation table.

    ``rates`` has one rate for flat and block charges, one per time-of-use period for TOU; a rate with several
    tiers makes a block charge (for TOU: a block charge with a calendar). ``schedule`` is empty unless TOU.
    Tiers of a charge count the charge's whole energy in the reset window, whatever the TOU period.
    """

    type: ChargeType
    structure: Structure
    name: str
    rates: tuple[Rate, ...]
    block_reset: BlockReset = BlockReset.BILL
    schedule: tuple[DaySchedule, ...] = ()

    @property
    def tiered(self) -> bool:
        return any(len(r.tiers) > 1 for r in self.rates)


@dataclass(frozen=True)
class FixedCharge:
    """A fixed surcharge (positive) or discount (negative), tax-included. [EUR per ``per``]

    Either one ``amount``, or a price per subscribed power ``by_kva`` (the French "abonnement" grid: the
    subscription depends on the site's kVA), as ((kVA, amount), ...) ascending; the site's kVA picks the line.
    """

    name: str
    amount: Decimal | None
    per: FixedPer
    by_kva: tuple[tuple[Decimal, Decimal], ...] = ()

    def amount_for(self, kva: Decimal | None) -> Decimal:
        """The amount for a site subscribing ``kva`` [kVA] (BillingError when the grid has no such line, or
        no kVA is given to a grid). A plain ``amount`` ignores ``kva``."""
        if not self.by_kva:
            assert self.amount is not None
            return self.amount
        listed = ", ".join(format_decimal(k) for k, _ in self.by_kva)
        if kva is None:
            raise BillingError(f"{self.name!r} is priced by subscribed power: give the site's kVA "
                               f"(quartier bill --kva); the tariff lists {listed} kVA")
        for k, amount in self.by_kva:
            if k == kva:
                return amount
        raise BillingError(f"{self.name!r} has no price for {format_decimal(kva)} kVA; the tariff lists {listed} kVA "
                           "(add the line from the supplier's grid to by_kva)")


def format_decimal(d: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 6, 4.5."""
    return format(d.normalize(), "f")


@dataclass(frozen=True)
class NetMetering:
    """Net energy metering options: kWh credits carried to later bills, expiring at the adjustment period.

    Attributes:
        adjustment_month: local month (1-12) at the end of whose bill unused credits expire.
        expired_credit_rate: price paid for expired credits (net surplus compensation); None = lost. [EUR/kWh]
    """

    adjustment_month: int
    expired_credit_rate: Decimal | None


@dataclass(frozen=True)
class DayCalendar:
    """Day types given date by date (e.g. Tempo's blue/white/red days), from a CSV file ``date,day_type``.

    Attributes:
        path: the CSV file.
        day_start_hour: local hour at which a calendar day begins (Tempo: 6; hours before belong to the
            previous date's day type).
        days: dates as days since 1970-01-01, ascending. types: index into the tariff's day types, per date.
    """

    path: str
    day_start_hour: int
    days: tuple[int, ...]
    types: tuple[int, ...]


@dataclass(frozen=True)
class VirtualStorage:
    """Virtual storage options of the tariff (site data such as the pre-charge are given when billing).

    Attributes:
        withdrawal_price: tax-included price of each kWh drawn from the storage (0 if the offer charges
            none, written explicitly in the file). [EUR/kWh]
        precharge_price: tax-included price of each pre-charged kWh, billed once in the bill holding the
            commissioning date; None when the pre-charge is not billed through the tariff. [EUR/kWh]
    """

    withdrawal_price: Decimal
    precharge_price: Decimal | None = None


@dataclass(frozen=True)
class Tariff:
    """A retail tariff (guide fields; see docs/tariffs.md for the mapping)."""

    name: str
    distributor: str
    network_operator: str
    country: str
    sector: Sector
    valid_from: date
    valid_to: date | None
    latest: bool
    popularity: int
    description: str
    billing_frequency: BillingFrequency
    compensation: Compensation
    minimum_daily_charge: Decimal
    switch_to: str | None
    timezone: str
    prices_include_tax: bool
    usage_discount_percent: Decimal
    supply_discount_percent: Decimal
    demand_discount_percent: Decimal
    tax_percent: Decimal
    seasons: tuple[Season, ...]
    charges: tuple[Charge, ...]
    fixed: tuple[FixedCharge, ...]
    net_metering: NetMetering | None = None
    virtual_storage: VirtualStorage | None = None
    source: str = ""
    day_types: tuple[str, ...] = DAY_TYPES
    day_calendar: DayCalendar | None = None
    currency: str = "EUR"
    billing_anchor_day: int = 1  # bills (and per-month/quarter fixed charges) run from this local day of the month
    holidays: str | None = None  # public holiday calendar (HOLIDAY_CALENDARS): those dates bill as weekend days
    warnings: tuple[str, ...] = ()  # shown with every bill: an incomplete tariff, an assumed price

    def charges_of(self, kind: ChargeType) -> tuple[Charge, ...]:
        return tuple(c for c in self.charges if c.type is kind)


_REQ: Any = _CONFIG_REQUIRED


class _Table(Table):
    """quartier.config.Table raising TariffFileError and pointing unknown keys to docs/tariffs.md."""

    def error(self, name: str, problem: str) -> TariffFileError:
        return TariffFileError(self.path, self.key(name), problem)

    def table(self, name: str, required: bool = True) -> _Table:
        v = self._get(name, _REQ if required else {}, (dict,), "table")
        return _Table(v, self.path, self.key(name))

    def tables(self, name: str, required: bool = True) -> list[_Table]:  # type: ignore[override]
        v = self._get(name, _REQ if required else [], (list,), "array of tables")
        out = []
        for i, item in enumerate(v):
            if not isinstance(item, dict):
                raise TariffFileError(self.path, f"{self.key(name)}[{i}]", f"must be a table, got {item!r}")
            out.append(_Table(item, self.path, f"{self.key(name)}[{i}]"))
        return out

    def decimal(self, name: str, default: Any = None, lo: Decimal | None = None, hi: Decimal | None = None,
                required: bool = False) -> Any:
        """An exact decimal from a string or a number; None when absent and not required."""
        v = self._get(name, _REQ if required else default, (str, int, float, Decimal), "number or decimal string")
        if v is None or isinstance(v, Decimal):
            return v
        try:
            d = Decimal(v if isinstance(v, str) else repr(v))
        except InvalidOperation:
            raise self.error(name, f"must be a decimal number such as \"0.2516\", got {v!r}") from None
        if not d.is_finite():
            raise self.error(name, f"must be a finite number, got {v!r}")
        if lo is not None and d < lo:
            raise self.error(name, f"must be at least {lo}, got {d}")
        if hi is not None and d > hi:
            raise self.error(name, f"must be at most {hi}, got {d}")
        return d

    def date_(self, name: str, required: bool = True) -> Any:
        v = self._get(name, _REQ if required else None, (date,), "date (a TOML date such as 2026-02-01)")
        if isinstance(v, datetime):
            raise self.error(name, f"must be a date without a time (such as 2026-02-01), got {v.isoformat()}")
        return v

    def enum(self, name: str, cls: Any) -> Any:
        """A required value among the enum's values."""
        return cls(self.str(name, _REQ, tuple(str(m.value) for m in cls)))

    def done(self) -> None:
        extra = sorted(set(self.data) - self._seen)
        if extra:
            raise self.error(extra[0], "unknown key (check the spelling; see docs/tariffs.md)")


def _percent(t: _Table, name: str) -> Decimal:
    return t.decimal(name, Decimal(0), Decimal(0), Decimal(100))  # type: ignore[no-any-return]


def _tiers(t: _Table, what: str) -> tuple[Tier, ...]:
    """``price = ...`` (one tier) or ``tiers = [{price, limit}, ...]`` (blocks)."""
    if "price" in t.data and "tiers" in t.data:
        raise t.error("tiers", "give either price (one price) or tiers (blocks), not both")
    if "price" in t.data:
        return (Tier(t.decimal("price", required=True)),)
    tiers: list[Tier] = []
    rows = t.tables("tiers")
    if not rows:
        raise t.error("tiers", "at least one tier is required (or give price)")
    previous = Decimal(0)
    for i, row in enumerate(rows):
        last = i == len(rows) - 1
        price = row.decimal("price", required=True)
        limit = row.decimal("limit", None, lo=Decimal(0))
        if last and limit is not None:
            raise row.error(
                "limit",
                f"the last tier must have no limit: {what} beyond {limit} would have no price and be billed "
                "at 0 EUR (the guide's warning); remove the limit or add a tier after it",
            )
        if not last and limit is None:
            raise row.error("limit", "missing: every tier but the last needs a limit")
        if limit is not None:
            if limit <= previous:
                raise row.error("limit", f"must be greater than the previous tier's limit ({previous}), got {limit}")
            if (limit * 1000) != (limit * 1000).to_integral_value():
                raise row.error("limit", f"at most 3 decimals (whole Wh or W), got {limit}")
            previous = limit
        row.done()
        tiers.append(Tier(price, limit))
    return tuple(tiers)


def _month_day(t: _Table, name: str) -> tuple[int, int]:
    v = t.str(name)
    try:
        m, d = (int(x) for x in v.split("-"))
        date(2024, m, d)  # a leap year accepts 02-29
    except ValueError:
        raise t.error(name, f"must be a month-day such as \"11-01\", got {v!r}") from None
    return m, d


def _seasons(root: _Table) -> tuple[Season, ...]:
    rows = root.tables("seasons", required=False)
    if not rows:
        return (Season("all", 1, 1),)
    out: list[Season] = []
    for row in rows:
        name = row.str("name")
        m, d = _month_day(row, "start")
        if any(s.name == name for s in out):
            raise row.error("name", f"duplicate season {name!r}")
        if any((s.start_month, s.start_day) == (m, d) for s in out):
            raise row.error("start", f"another season already starts on {m:02d}-{d:02d}")
        row.done()
        out.append(Season(name, m, d))
    return tuple(sorted(out, key=lambda s: (s.start_month, s.start_day)))


def _schedule(t: _Table, rates: tuple[Rate, ...], seasons: tuple[Season, ...],
              day_types: tuple[str, ...]) -> tuple[DaySchedule, ...]:
    """``[charges.schedule.<season>]`` with one key per day type (``weekday`` and ``weekend`` unless the tariff
    has a day calendar): a rate name for the whole day, or a list of 24, 48 or 96 rate names. Every slot of
    every day type of every season must be covered."""
    sched = t.table("schedule")
    index = {r.name: i for i, r in enumerate(rates)}
    used: set[int] = set()
    out: list[DaySchedule] = []
    for season in seasons:
        if season.name not in sched.data:
            raise sched.error(season.name, f"missing: season {season.name!r} has no schedule; the calendar must "
                                           "cover every hour of every day type in every season")
        st = sched.table(season.name)
        for day_type in day_types:
            v = st._get(day_type, _REQ, (str, list), f"rate name or list of {'/'.join(map(str, SLOTS_PER_DAY))} "
                                                        "rate names")
            names = [v] * 24 if isinstance(v, str) else v
            if len(names) not in SLOTS_PER_DAY:
                raise st.error(day_type, f"must have 24 (hours), 48 or 96 entries, got {len(names)}")
            slots: list[int] = []
            for i, n in enumerate(names):
                if n not in index:
                    raise TariffFileError(st.path, f"{st.key(day_type)}[{i}]",
                                          f"unknown rate {n!r}; the rates are {', '.join(index)}")
                slots.append(index[n])
            used.update(slots)
            out.append(DaySchedule(season.name, day_type, tuple(slots)))
        st.done()
    sched.done()
    for i, r in enumerate(rates):
        if i not in used:
            raise t.error("rates", f"rate {r.name!r} is never used by the schedule")
    return tuple(out)


def _charge(t: _Table, seasons: tuple[Season, ...], day_types: tuple[str, ...]) -> Charge:
    ctype = t.enum("type", ChargeType)
    structure = t.enum("structure", Structure)
    name = t.str("name", ctype.value.replace("_", " "))
    what = "demand" if ctype is ChargeType.DEMAND else "energy"
    rates: list[Rate] = []
    if structure is Structure.TOU:
        for row in t.tables("rates"):
            rname = row.str("name")
            if any(r.name == rname for r in rates):
                raise row.error("name", f"duplicate rate name {rname!r}")
            rates.append(Rate(rname, _tiers(row, what)))
            row.done()
        if not rates:
            raise t.error("rates", "a tou charge needs at least one rate")
    else:
        if "rates" in t.data or "schedule" in t.data:
            raise t.error("rates" if "rates" in t.data else "schedule",
                          f"a {structure.value} charge has no rates/schedule; give price or tiers "
                          "(use structure = \"tou\" for a calendar)")
        rates.append(Rate(name, _tiers(t, what)))
    tiered = any(len(r.tiers) > 1 for r in rates)
    if structure is Structure.FLAT and tiered:
        raise t.error("tiers", "a flat charge has one price; use structure = \"block\" for tiers")
    if structure is Structure.BLOCK and not tiered:
        raise t.error("tiers", "a block charge needs at least two tiers; use structure = \"flat\" for one price")
    if "block_reset" in t.data and not tiered:
        raise t.error("block_reset", "only block charges (or tou rates with tiers) have a block reset")
    reset = BlockReset(t.str("block_reset", "bill", tuple(m.value for m in BlockReset)))
    if ctype is ChargeType.DEMAND and reset is BlockReset.DAILY:
        raise t.error("block_reset", "demand tiers apply to the bill's peak; daily reset is not supported")
    schedule = _schedule(t, tuple(rates), seasons, day_types) if structure is Structure.TOU else ()
    t.done()
    return Charge(ctype, structure, name, tuple(rates), reset, schedule)


def _day_calendar(t: _Table) -> tuple[tuple[str, ...], DayCalendar]:
    """``[day_types]``: ``names`` (the day types), ``calendar`` (CSV ``date,day_type``, relative to the tariff
    file) and ``day_starts_at`` (local hour, default 0)."""
    names = t._get("names", _REQ, (list,), "list of day type names")
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise t.error("names", f"must be a list of distinct, non-empty names, got {names!r}")
    path = t.path_("calendar")
    hour = t.int("day_starts_at", 0, 0, 23)
    t.done()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise t.error("calendar", f"cannot read {path}: {e.strerror}") from None
    head = 0
    while head < len(lines) and lines[head].startswith("#"):  # leading comment lines (source, date)
        head += 1
    if head == len(lines) or lines[head].strip() != "date,day_type":
        raise TariffFileError(path, f"row {head + 1}", "the first line after the # comments must be the header "
                                                       "date,day_type")
    found: dict[int, int] = {}
    for n, line in enumerate(lines[head + 1:], start=head + 2):
        if not line.strip() or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        try:
            d = date.fromisoformat(cells[0])
        except ValueError:
            raise TariffFileError(path, f"row {n}, column date", f"not a date (YYYY-MM-DD): {cells[0]!r}") from None
        if len(cells) != 2 or cells[1] not in names:
            got = cells[1] if len(cells) > 1 else ""
            raise TariffFileError(path, f"row {n}, column day_type", f"must be one of {', '.join(names)}; got {got!r}")
        key = d.toordinal() - _EPOCH_ORDINAL
        if key in found:
            raise TariffFileError(path, f"row {n}, column date", f"{d} appears twice")
        found[key] = names.index(cells[1])
    days = tuple(sorted(found))
    return tuple(names), DayCalendar(str(path), hour, days, tuple(found[d] for d in days))


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _fixed(t: _Table) -> FixedCharge:
    """``amount = ...`` or ``by_kva = {"6" = "185.64", "9" = "238.06"}`` (subscribed kVA -> amount)."""
    name = t.str("name")
    if ("amount" in t.data) == ("by_kva" in t.data):
        raise t.error("amount", "give either amount, or by_kva (the amount per subscribed kVA), not both"
                      if "amount" in t.data else "missing: give amount, or by_kva (the amount per subscribed kVA)")
    amount = t.decimal("amount", None)
    grid: list[tuple[Decimal, Decimal]] = []
    if "by_kva" in t.data:
        g = t.table("by_kva")
        if not g.data:
            raise t.error("by_kva", "is empty: give at least one line such as \"6\" = \"185.64\"")
        for key in g.data:
            try:
                kva = Decimal(key)
            except InvalidOperation:
                raise g.error(key, "the key must be a power in kVA such as \"6\" or \"4.5\"") from None
            if not kva.is_finite() or kva <= 0:
                raise g.error(key, "the key must be a positive power in kVA")
            if any(k == kva for k, _ in grid):
                raise g.error(key, f"{format_decimal(kva)} kVA is given twice")
            grid.append((kva, g.decimal(key, required=True)))
        g.done()
    f = FixedCharge(name, amount, t.enum("per", FixedPer), tuple(sorted(grid)))
    t.done()
    return f


def _switch_to(t: _Table) -> str | None:
    """``switch_to``: the tariff file (relative to this one) the customer moves to once solar is installed."""
    p = t.path_("switch_to", None)
    if p is None:
        return None
    if p.suffix != ".toml" or not p.is_file():
        raise t.error("switch_to", f"no tariff file {p} (give the .toml file of the tariff the customer moves to "
                                   "after solar, relative to this file)")
    return str(p)


def tariff_from_dict(data: dict[str, Any], path: str | Path = "<tariff>") -> Tariff:
    """Validate a parsed tariff document (TOML or the same structure as JSON)."""
    p = Path(path)
    root = _Table(data, p)
    t = root.table("tariff")
    tz = t.str("timezone", PARIS.key)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise t.error("timezone", f"unknown time zone {tz!r} (an IANA name such as Europe/Paris)") from None
    if "prices_include_tax" not in t.data:
        raise t.error("prices_include_tax", "missing: write prices_include_tax = true (all prices are TTC)")
    if t.bool("prices_include_tax") is not True:
        raise t.error("prices_include_tax", "must be true: enter every price tax-included (TTC), as the guide says")
    valid_from = t.date_("valid_from")
    valid_to = t.date_("valid_to", required=False)
    if valid_to is not None and valid_from is not None and valid_to < valid_from:
        raise t.error("valid_to", f"is before valid_from ({valid_from})")
    seasons = _seasons(root)
    tariff_kw: dict[str, Any] = dict(
        name=t.str("name"),
        distributor=t.str("distributor"),
        network_operator=t.str("network_operator", ""),
        country=t.str("country"),
        sector=Sector(t.str("sector", "unspecified", tuple(m.value for m in Sector))),
        valid_from=valid_from,
        valid_to=valid_to,
        latest=t.bool("latest", True),
        popularity=t.int("popularity", 0, 0, 100),
        description=t.str("description", ""),
        billing_frequency=t.enum("billing_frequency", BillingFrequency),
        compensation=t.enum("compensation", Compensation),
        minimum_daily_charge=t.decimal("minimum_daily_charge", Decimal(0), lo=Decimal(0)),
        switch_to=_switch_to(t),
        timezone=tz,
        prices_include_tax=True,
        source=t.str("source", ""),
        currency=t.str("currency", "EUR"),
        billing_anchor_day=t.int("billing_anchor_day", 1, 1, 28),
        holidays=t.str("holidays", None, tuple(HOLIDAY_CALENDARS)),
    )
    incomplete = t.str("incomplete", None)
    if incomplete is not None:
        if not incomplete.strip():
            raise t.error("incomplete", "must say what is missing (or remove the key)")
        tariff_kw["warnings"] = (f"incomplete tariff: {incomplete.strip()}",)
    if len(tariff_kw["currency"]) != 3 or not tariff_kw["currency"].isalpha() or not tariff_kw["currency"].isupper():
        raise t.error("currency", f"must be an ISO 4217 code such as EUR, got {tariff_kw['currency']!r}")
    if len(tariff_kw["country"]) != 2 or not tariff_kw["country"].isupper():
        raise t.error("country", f"must be an ISO 3166-1 alpha-2 code such as FR, got {tariff_kw['country']!r}")
    t.done()
    extra = root.table("extra", required=False)
    tariff_kw.update(
        usage_discount_percent=_percent(extra, "usage_discount_percent"),
        supply_discount_percent=_percent(extra, "supply_discount_percent"),
        demand_discount_percent=_percent(extra, "demand_discount_percent"),
        tax_percent=_percent(extra, "tax_percent"),
    )
    extra.done()
    day_types, day_calendar = DAY_TYPES, None
    if "day_types" in root.data:
        if tariff_kw["holidays"] is not None:
            raise t.error("holidays", "a tariff with [day_types] gives every date's type in its calendar file; "
                                      "holidays are for the weekday/weekend calendar (remove one of them)")
        day_types, day_calendar = _day_calendar(root.table("day_types"))
    charges = tuple(_charge(c, seasons, day_types) for c in root.tables("charges"))
    if not any(c.type is ChargeType.USAGE for c in charges):
        raise root.error("charges", "at least one charge of type \"usage\" is required")
    fixed = tuple(_fixed(f) for f in root.tables("fixed", required=False))
    mechanism = tariff_kw["compensation"]
    nm = None
    if "net_metering" in root.data:
        if mechanism is not Compensation.NET_METERING:
            raise root.error("net_metering", 'only for compensation = "net_metering"')
        n = root.table("net_metering")
        nm = NetMetering(n.int("adjustment_month", 12, 1, 12), n.decimal("expired_credit_rate", None, Decimal(0)))
        n.done()
    elif mechanism is Compensation.NET_METERING:
        nm = NetMetering(12, None)
    vs = None
    if "virtual_storage" in root.data:
        if mechanism is not Compensation.VIRTUAL_STORAGE:
            raise root.error("virtual_storage", 'only for compensation = "virtual_storage"')
        v = root.table("virtual_storage")
        if "withdrawal_price" not in v.data:
            raise v.error("withdrawal_price", "missing: the price of each kWh drawn from the storage [EUR/kWh, "
                                              "tax-included]; write 0 if the offer charges none")
        vs = VirtualStorage(v.decimal("withdrawal_price", lo=Decimal(0)),
                            v.decimal("precharge_price", None, lo=Decimal(0)))
        v.done()
    elif mechanism is Compensation.VIRTUAL_STORAGE:
        raise root.error("virtual_storage", "missing: a virtual storage tariff needs [virtual_storage] with "
                                            "withdrawal_price [EUR/kWh] (0 if the offer charges none)")
    has_export = any(c.type is ChargeType.EXPORT for c in charges)
    if mechanism in (Compensation.NET_BILLING, Compensation.GROSS_METERING) and not has_export:
        raise root.error("charges", f"compensation {mechanism.value!r} credits exports at the "
                                    "export rate: add a charge of type \"export\"")
    if mechanism in (Compensation.NET_METERING, Compensation.VIRTUAL_STORAGE) and has_export:
        raise root.error("charges", f"compensation {mechanism.value!r} compensates exports in kWh, not at an "
                                    "export rate (the guide: the export rate applies only to net billing and "
                                    "gross metering); remove the export charge")
    root.done()
    return Tariff(**tariff_kw, seasons=seasons, charges=charges, fixed=fixed, net_metering=nm, virtual_storage=vs,
                  day_types=day_types, day_calendar=day_calendar)


def load_tariff(path: str | Path) -> Tariff:
    """Read and validate a tariff TOML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise TariffFileError(p, "", f"cannot read the file: {e.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TariffFileError(p, "", f"not valid TOML: {e}") from None
    return tariff_from_dict(data, p)
