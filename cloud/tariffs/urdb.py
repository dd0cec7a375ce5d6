"""Import OpenEI U.S. Utility Rate Database (URDB) rate records into the tariff model.

A URDB record (the JSON of one rate, as the URDB API v3/v7 or the "download JSON" link gives it) becomes the
same document as a tariff TOML file, validated by :func:`cloud.tariffs.model.tariff_from_dict`.

Mapping (docs/tariffs.md, "URDB"):

* ``energyratestructure`` periods x tiers (``rate`` + ``adj`` [$/kWh], ``max`` [kWh], ``unit`` ``kWh`` =
  tiers per bill, ``kWh daily`` = per day) with ``energyweekdayschedule`` / ``energyweekendschedule``
  (12 months x 24 hours of 0-based period indexes) -> a TOU usage charge; months whose schedules (energy and
  demand) are the same are merged into seasons.
* ``demandratestructure`` with ``demandweekdayschedule`` / ``demandweekendschedule`` -> a TOU demand charge;
  ``flatdemandstructure`` with ``flatdemandmonths`` -> a demand charge with one rate per month group.
* ``fixedchargefirstmeter`` with ``fixedchargeunits`` ($/day, $/month, $/year), or the older
  ``fixedmonthlycharge`` -> a fixed charge; ``mincharge`` in $/day -> the minimum daily charge.
* ``dgrules``: Net Metering -> net_metering; Net Billing Instantaneous / Hourly -> net_billing (exports at the
  tiers' ``sell`` rates, 0 when absent); Buy All Sell All -> gross_metering.
* Prices are taken as published, in USD (``currency = "USD"``). URDB prices exclude most taxes; the
  tariff's ``prices_include_tax`` is set true with ``tax_percent = 0``, meaning "no tax to show".

Fields that change the bill but are not imported (minimum charges per month or year, ratchets, coincident
demand, per-kW energy tiers ...) raise UrdbError: importing them silently would understate the bill.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from cloud.tariffs.errors import UrdbError
from cloud.tariffs.model import Tariff, tariff_from_dict

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_COMPENSATION = {
    "net metering": "net_metering",
    "net billing instantaneous": "net_billing",
    "net billing hourly": "net_billing",
    "buy all sell all": "gross_metering",
}
_SECTORS = {"residential": "residential", "commercial": "commercial", "industrial": "industrial"}
_FIXED_UNITS = {"$/day": "day", "$/month": "month", "$/year": "year"}
_UNSUPPORTED = ("coincidentratestructure", "demandratchetpercentage", "lookbackpercent", "energyattrs")


def _dec(v: Any) -> Decimal:
    return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)


def _price(tier: dict[str, Any], key: str = "rate") -> str:
    return str(_dec(tier.get(key, 0) or 0) + (_dec(tier.get("adj", 0) or 0) if key == "rate" else 0))


def _schedule(rec: dict[str, Any], key: str, where: str, n_periods: int) -> list[list[int]]:
    rows = rec.get(key)
    if not isinstance(rows, list) or len(rows) != 12 or any(not isinstance(r, list) or len(r) != 24 for r in rows):
        raise UrdbError(where, key, "must be 12 months x 24 hours of period indexes")
    for m, row in enumerate(rows):
        for h, p in enumerate(row):
            if not isinstance(p, int) or not 0 <= p < n_periods:
                raise UrdbError(where, f"{key}[{m}][{h}]", f"period {p!r} is not one of the {n_periods} periods")
    return [list(r) for r in rows]


def _tiers(tiers: list[dict[str, Any]], where: str, field: str,
           units: tuple[str, ...]) -> tuple[list[dict[str, str]], str]:
    """Tiers of one period as model tiers, and the unit of their limits."""
    out: list[dict[str, str]] = []
    unit = "kWh"
    for k, t in enumerate(tiers):
        unit = str(t.get("unit", units[0]))
        if unit not in units:
            raise UrdbError(where, f"{field}[{k}].unit", f"{unit!r} is not supported (only {', '.join(units)})")
        row = {"price": _price(t)}
        if "max" in t and t["max"] is not None and k < len(tiers) - 1:
            row["limit"] = str(_dec(t["max"]))
        out.append(row)
    return out, unit


def _seasons(keys: list[tuple[Any, ...]]) -> list[tuple[str, int, list[int]]]:
    """Months grouped into seasons (cyclic runs of equal keys): (name, first month 1-12, months 0-11)."""
    starts = [m for m in range(12) if keys[m] != keys[m - 1]]
    if not starts:
        return [("all", 1, list(range(12)))]
    out = []
    for i, s in enumerate(starts):
        end = starts[(i + 1) % len(starts)]
        months = [(s + j) % 12 for j in range((end - s) % 12 or 12)]
        name = MONTHS[months[0]] if len(months) == 1 else f"{MONTHS[months[0]]}-{MONTHS[months[-1]]}"
        out.append((name, s + 1, months))
    return out


def urdb_to_dict(rec: dict[str, Any], timezone_name: str) -> dict[str, Any]:
    """The tariff document (the TOML structure) of URDB record ``rec``; local time is ``timezone_name``."""
    where = f"URDB rate {rec.get('label', '?')}"
    for key in _UNSUPPORTED:
        if rec.get(key):
            raise UrdbError(where, key, "not supported by the tariff model yet; this rate cannot be billed exactly")
    energy = rec.get("energyratestructure")
    if not isinstance(energy, list) or not energy:
        raise UrdbError(where, "energyratestructure", "missing: a rate without energy prices cannot be billed")
    wd = _schedule(rec, "energyweekdayschedule", where, len(energy))
    we = _schedule(rec, "energyweekendschedule", where, len(energy))
    demand = rec.get("demandratestructure") or []
    dwd = _schedule(rec, "demandweekdayschedule", where, len(demand)) if demand else None
    dwe = _schedule(rec, "demandweekendschedule", where, len(demand)) if demand else None
    flat = rec.get("flatdemandstructure") or []
    flat_months = rec.get("flatdemandmonths") or []
    if flat and (len(flat_months) != 12 or any(not 0 <= p < len(flat) for p in flat_months)):
        raise UrdbError(where, "flatdemandmonths", "must give 12 period indexes into flatdemandstructure")

    keys = [(tuple(wd[m]), tuple(we[m]), tuple(dwd[m]) if dwd else (), tuple(dwe[m]) if dwe else (),
             flat_months[m] if flat else None) for m in range(12)]
    seasons = _seasons(keys)

    def tou_charge(kind: str, name: str, periods: list[list[dict[str, Any]]], wdays: list[list[int]],
                   wends: list[list[int]], field: str, units: tuple[str, ...],
                   price_key: str = "rate") -> dict[str, Any]:
        used = sorted({p for s in seasons for m in s[2] for p in wdays[m] + wends[m]})
        rates, resets = [], set()
        for p in used:
            if price_key == "sell":
                tiers = [{"price": str(_dec(periods[p][0].get("sell", 0) or 0))}]
            else:
                tiers, unit = _tiers(periods[p], where, f"{field}[{p}]", units)
                resets.add("daily" if unit.endswith("daily") else "bill")
            rates.append({"name": f"period {p}", "tiers": tiers})
        schedule = {s[0]: {"weekday": [f"period {p}" for p in wdays[s[2][0]]],
                           "weekend": [f"period {p}" for p in wends[s[2][0]]]} for s in seasons}
        charge: dict[str, Any] = {"type": kind, "structure": "tou", "name": name, "rates": rates, "schedule": schedule}
        if any(len(r["tiers"]) > 1 for r in rates):
            if len(resets) > 1:
                raise UrdbError(where, field, "mixes daily and monthly tiers")
            charge["block_reset"] = resets.pop()
        return charge

    charges = [tou_charge("usage", "energy", energy, wd, we, "energyratestructure", ("kWh", "kWh daily"))]
    if demand:
        assert dwd is not None and dwe is not None
        charges.append(tou_charge("demand", "TOU demand", demand, dwd, dwe, "demandratestructure", ("kW",)))
    if flat:
        unit = str(rec.get("flatdemandunit", "kW"))
        if unit != "kW":
            raise UrdbError(where, "flatdemandunit", f"{unit!r} is not supported (only kW)")
        fwd = [[flat_months[m]] * 24 for m in range(12)]
        charges.append(tou_charge("demand", "demand", flat, fwd, fwd, "flatdemandstructure", ("kW",)))
    compensation = _COMPENSATION.get(str(rec.get("dgrules", "Net Metering")).lower())
    if compensation is None:
        raise UrdbError(where, "dgrules", f"unknown rule {rec.get('dgrules')!r}")
    if compensation in ("net_billing", "gross_metering"):
        charges.append(tou_charge("export", "export", energy, wd, we, "energyratestructure", ("kWh",), "sell"))

    fixed = []
    if rec.get("fixedchargefirstmeter"):
        units = str(rec.get("fixedchargeunits", "$/month"))
        if units not in _FIXED_UNITS:
            raise UrdbError(where, "fixedchargeunits", f"{units!r} is not supported ({', '.join(_FIXED_UNITS)})")
        fixed.append({"name": "fixed charge", "amount": str(_dec(rec["fixedchargefirstmeter"])),
                      "per": _FIXED_UNITS[units]})
    elif rec.get("fixedmonthlycharge"):
        fixed.append({"name": "fixed charge", "amount": str(_dec(rec["fixedmonthlycharge"])), "per": "month"})
    minimum = "0"
    if rec.get("mincharge"):
        if rec.get("minchargeunits") != "$/day":
            raise UrdbError(where, "minchargeunits", f"{rec.get('minchargeunits')!r}: only a minimum per day "
                                                     "($/day) is supported by the tariff model")
        minimum = str(_dec(rec["mincharge"]))

    def day(v: Any) -> date | None:
        return None if v in (None, "") else datetime.fromtimestamp(int(v), timezone.utc).date()

    country = str(rec.get("country", "USA"))
    header: dict[str, Any] = {
        "name": str(rec.get("name", rec.get("label", "URDB rate"))),
        "distributor": str(rec.get("utility", "unknown utility")),
        "network_operator": str(rec.get("utility", "")),
        "country": "US" if country == "USA" else country,
        "sector": _SECTORS.get(str(rec.get("sector", "")).lower(), "unspecified"),
        "valid_from": day(rec.get("startdate")) or date(1970, 1, 1),
        "latest": not rec.get("enddate"),
        "description": str(rec.get("description", "")),
        "billing_frequency": "monthly",
        "compensation": compensation,
        "minimum_daily_charge": minimum,
        "timezone": timezone_name,
        "prices_include_tax": True,
        "currency": "USD",
        "source": f"OpenEI URDB {rec.get('uri', rec.get('label', ''))}",
    }
    if day(rec.get("enddate")):
        header["valid_to"] = day(rec.get("enddate"))
    doc: dict[str, Any] = {"tariff": header, "charges": charges, "fixed": fixed}
    if len(seasons) > 1 or seasons[0][0] != "all":
        doc["seasons"] = [{"name": s[0], "start": f"{s[1]:02d}-01"} for s in seasons]
    return doc


def load_urdb(path: str | Path, timezone_name: str) -> Tariff:
    """Read a URDB JSON file (one record, or an API answer ``{"items": [record]}``) as a validated Tariff."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise UrdbError(str(p), "", f"cannot read the file: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UrdbError(str(p), f"line {e.lineno}", f"not valid JSON: {e.msg}") from None
    if isinstance(data, dict) and "items" in data:
        if len(data["items"]) != 1:
            raise UrdbError(str(p), "items", f"holds {len(data['items'])} rates; give a file with one")
        data = data["items"][0]
    if not isinstance(data, dict):
        raise UrdbError(str(p), "", "must hold one URDB rate record (a JSON object)")
    return tariff_from_dict(urdb_to_dict(data, timezone_name), p)
