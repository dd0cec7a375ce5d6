"""Bills as text, JSON and CSV (pure: bills in, strings out)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from cloud.tariffs.bill import Bill, StorageStatement
from cloud.tariffs.compare import ComparisonRow
from cloud.tariffs.model import Tariff

ONE_DAY = timedelta(days=1)
CSV_HEADER = ("tariff", "first_day", "last_day", "category", "label", "quantity", "unit", "unit_price", "amount",
              "currency")


def _num(d: Decimal) -> str:
    return format(d.normalize(), "f") if d == d.to_integral_value() else format(d, "f")


def text(tariff: Tariff, bills: Sequence[Bill]) -> str:
    """A readable bill: one block per billing period (dates included), then the total."""
    cur = tariff.currency
    out = [f"{tariff.name} ({tariff.distributor}), {tariff.compensation.value.replace('_', ' ')}, "
           f"prices tax-included, {cur}"]
    out += [f"WARNING: {w}" for w in tariff.warnings]
    for b in bills:
        out.append("")
        out.append(f"Bill {b.start} to {b.end - ONE_DAY}, {b.days} days: import {_num(b.import_kwh)} kWh, "
                   f"export {_num(b.export_kwh)} kWh")
        width = max([len(i.label) for i in b.items] + [20])
        for i in b.items:
            qty = f"{_num(i.quantity)} {i.unit}"
            out.append(f"  {i.label:<{width}}  {qty:>16}  x {format(i.unit_price, 'f'):>9}  {i.amount:>10} {cur}")
        out.append(f"  {'total':<{width}}  {'':>16}    {'':>9}  {b.total:>10} {cur}")
        out.append(f"  {'of which tax':<{width}}  {'':>16}    {'':>9}  {b.tax:>10} {cur}")
        for label, kwh in b.statement:
            out.append(f"  {label:<{width}}  {_num(kwh):>16} kWh")
    total = sum((b.total for b in bills), Decimal(0))
    out.append("")
    out.append(f"Total {bills[0].start} to {bills[-1].end - ONE_DAY}: {total} {cur}" if bills else "No bill")
    return "\n".join(out) + "\n"


def to_json(tariff: Tariff, bills: Sequence[Bill], storage: Sequence[StorageStatement] = ()) -> str:
    """Bills as JSON: amounts and quantities as decimal strings (exact); first and last day included; with
    ``storage`` (virtual storage), the monthly statement under ``storage_statement``."""
    doc: dict[str, Any] = {
        "tariff": tariff.name, "distributor": tariff.distributor, "currency": tariff.currency,
        "compensation": tariff.compensation.value, "prices_include_tax": True, "warnings": list(tariff.warnings),
        "total": str(sum((b.total for b in bills), Decimal(0))),
        "bills": [{
            "first_day": b.start.isoformat(), "last_day": (b.end - ONE_DAY).isoformat(), "days": b.days,
            "import_kwh": str(b.import_kwh), "export_kwh": str(b.export_kwh),
            "items": [{"category": i.category, "label": i.label, "quantity": str(i.quantity), "unit": i.unit,
                       "unit_price": str(i.unit_price), "amount": str(i.amount)} for i in b.items],
            "bought_kwh": str(b.bought_kwh), "credited_kwh": str(b.credited_kwh),
            "total": str(b.total), "tax": str(b.tax),
            "statement": [{"label": label, "kwh": str(kwh)} for label, kwh in b.statement],
        } for b in bills],
    }
    if storage:
        doc["storage_statement"] = storage_json(storage)
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def to_csv(tariff: Tariff, bills: Sequence[Bill]) -> str:
    """One row per line item (then a total row per bill), comma-separated, decimal points; the tariff's
    warnings first, as rows of category ``warning`` (the text under ``label``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for text_ in tariff.warnings:
        w.writerow((tariff.name, "", "", "warning", text_, "", "", "", "", ""))
    for b in bills:
        for i in b.items:
            w.writerow((tariff.name, b.start, b.end - ONE_DAY, i.category, i.label, i.quantity, i.unit, i.unit_price,
                        i.amount, tariff.currency))
        w.writerow((tariff.name, b.start, b.end - ONE_DAY, "total", "total", "", "", "", b.total, tariff.currency))
        w.writerow((tariff.name, b.start, b.end - ONE_DAY, "tax", "of which tax", "", "", "", b.tax, tariff.currency))
        for label, kwh in b.statement:
            w.writerow((tariff.name, b.start, b.end - ONE_DAY, "statement", label, kwh, "kWh", "", "", ""))
    return buf.getvalue()


STORAGE_COLUMNS = ("opening", "pre-charge", "stored", "drawn", "closing", "from grid")
COMPARISON_HEADER = ("tariff", "mechanism", "scenario", "bought_kwh", "credited_kwh", "total", "difference",
                     "currency", "warnings")


def _storage_values(s: StorageStatement) -> tuple[Decimal, ...]:
    return (s.opening, s.precharge, s.stored, s.drawn, s.closing, s.grid)


def storage_text(rows: Sequence[StorageStatement]) -> str:
    """The monthly virtual storage statement as the customer sees it: one line per month [kWh]."""
    head = f"  {'month':<23}" + "".join(f"{c:>12}" for c in STORAGE_COLUMNS)
    out = ["Virtual storage statement [kWh]", head]
    for r in rows:
        days = f"{r.start} to {r.end - ONE_DAY}"
        out.append(f"  {days:<23}" + "".join(f"{_num(v):>12}" for v in _storage_values(r)))
    return "\n".join(out) + "\n"


def storage_json(rows: Sequence[StorageStatement]) -> list[dict[str, str]]:
    """The monthly statement as JSON objects (kWh as exact decimal strings; days included)."""
    return [{"first_day": r.start.isoformat(), "last_day": (r.end - ONE_DAY).isoformat(),
             "opening_kwh": str(r.opening), "precharge_kwh": str(r.precharge), "stored_kwh": str(r.stored),
             "drawn_kwh": str(r.drawn), "closing_kwh": str(r.closing), "grid_kwh": str(r.grid)} for r in rows]


def storage_csv(tariff: Tariff, rows: Sequence[StorageStatement]) -> str:
    """The monthly statement as CSV rows in the bill CSV's columns (category ``storage_statement``, unit kWh)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in rows:
        for label, kwh in r.lines():
            w.writerow((tariff.name, r.start, r.end - ONE_DAY, "storage_statement", label, kwh, "kWh", "", "", ""))
    return buf.getvalue()


def comparison(rows: Sequence[ComparisonRow]) -> str:
    """The comparison table, in the given order: energy bought and sold/credited [kWh], total and difference
    against the same tariff without solar [EUR] (``-`` without a production series)."""
    if not rows:
        return ""
    wt = max([len(r.tariff) for r in rows] + [6])
    wm = max([len(r.mechanism) for r in rows] + [9])
    out = [f"{'tariff':<{wt}}  {'mechanism':<{wm}}  {'scenario':<13}  {'bought kWh':>11}  {'credited kWh':>12}  "
           f"{'total':>10}  {'vs no solar':>11}"]
    notes: list[str] = []
    for r in rows:
        diff = "-" if r.difference is None else f"{r.difference:+}"
        marks = ""
        for w in r.warnings:
            if w not in notes:
                notes.append(w)
            marks += f" [{notes.index(w) + 1}]"
        out.append(f"{r.tariff:<{wt}}  {r.mechanism:<{wm}}  {r.scenario:<13}  {_num(r.bought_kwh):>11}  "
                   f"{_num(r.credited_kwh):>12}  {r.total:>10}  {diff:>11} {r.currency}{marks}")
    out += [f"[{i}] WARNING: {w}" for i, w in enumerate(notes, start=1)]
    return "\n".join(out) + "\n"


def comparison_json(rows: Sequence[ComparisonRow]) -> str:
    """The comparison as JSON: a list of rows, numbers as exact decimal strings, difference null if unknown."""
    doc = {"comparison": [{"tariff": r.tariff, "mechanism": r.mechanism, "scenario": r.scenario,
                           "bought_kwh": str(r.bought_kwh), "credited_kwh": str(r.credited_kwh),
                           "total": str(r.total), "difference": None if r.difference is None else str(r.difference),
                           "currency": r.currency, "warnings": list(r.warnings)} for r in rows]}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def comparison_csv(rows: Sequence[ComparisonRow]) -> str:
    """The comparison as CSV (:data:`COMPARISON_HEADER`); an unknown difference is empty; warnings are joined
    by "; "."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COMPARISON_HEADER)
    for r in rows:
        w.writerow((r.tariff, r.mechanism, r.scenario, r.bought_kwh, r.credited_kwh, r.total,
                    "" if r.difference is None else r.difference, r.currency, "; ".join(r.warnings)))
    return buf.getvalue()
