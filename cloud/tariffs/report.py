"""Bills as text, JSON and CSV (pure: bills in, strings out)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from cloud.tariffs.bill import Bill
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


def to_json(tariff: Tariff, bills: Sequence[Bill]) -> str:
    """Bills as JSON: amounts and quantities as decimal strings (exact); first and last day included."""
    doc: dict[str, Any] = {
        "tariff": tariff.name, "distributor": tariff.distributor, "currency": tariff.currency,
        "compensation": tariff.compensation.value, "prices_include_tax": True,
        "total": str(sum((b.total for b in bills), Decimal(0))),
        "bills": [{
            "first_day": b.start.isoformat(), "last_day": (b.end - ONE_DAY).isoformat(), "days": b.days,
            "import_kwh": str(b.import_kwh), "export_kwh": str(b.export_kwh),
            "items": [{"category": i.category, "label": i.label, "quantity": str(i.quantity), "unit": i.unit,
                       "unit_price": str(i.unit_price), "amount": str(i.amount)} for i in b.items],
            "total": str(b.total), "tax": str(b.tax),
            "statement": [{"label": label, "kwh": str(kwh)} for label, kwh in b.statement],
        } for b in bills],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def to_csv(tariff: Tariff, bills: Sequence[Bill]) -> str:
    """One row per line item (then a total row per bill), comma-separated, decimal points."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for b in bills:
        for i in b.items:
            w.writerow((tariff.name, b.start, b.end - ONE_DAY, i.category, i.label, i.quantity, i.unit, i.unit_price,
                        i.amount, tariff.currency))
        w.writerow((tariff.name, b.start, b.end - ONE_DAY, "total", "total", "", "", "", b.total, tariff.currency))
        w.writerow((tariff.name, b.start, b.end - ONE_DAY, "tax", "of which tax", "", "", "", b.tax, tariff.currency))
    return buf.getvalue()


def comparison(rows: Sequence[tuple[str, str, Decimal, str]]) -> str:
    """A table of (tariff, scenario, total, currency), cheapest first within each scenario."""
    if not rows:
        return ""
    wt = max(len(r[0]) for r in rows)
    ws = max(len(r[1]) for r in rows)
    out = [f"{'tariff':<{wt}}  {'scenario':<{ws}}  {'total':>12}"]
    for name, scenario, total, cur in sorted(rows, key=lambda r: (r[1], r[2])):
        out.append(f"{name:<{wt}}  {scenario:<{ws}}  {total:>12} {cur}")
    return "\n".join(out) + "\n"
