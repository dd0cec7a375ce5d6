"""Parsing of single spreadsheet/CSV cells: dates, kWh quantities, booleans.

Each parser returns the value or raises ValueError with a short problem
text; callers add the file, row and column. kWh are rounded to the Wh
(3 decimals, half up): the one rounding point of the CarbuRe part.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

KWH = Decimal("0.001")

_TRUE = {"oui", "o", "yes", "y", "true", "vrai", "1", "x"}
_FALSE = {"non", "n", "no", "false", "faux", "0", ""}


def is_blank(v: object) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def text(v: object) -> str:
    """A cell as stripped text (numbers without a trailing ``.0``)."""
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def parse_date(v: object) -> date:
    """A date cell: an Excel date, ``JJ/MM/AAAA`` or ISO ``AAAA-MM-JJ``."""
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    s = text(v)
    if not s:
        raise ValueError("missing date (write it JJ/MM/AAAA)")
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(s).date()
    except ValueError:
        raise ValueError(f"{s!r} is not a date (write it JJ/MM/AAAA or AAAA-MM-JJ)") from None


def parse_decimal(v: object, what: str) -> Decimal:
    """A non-negative number cell (``1234.5`` or ``1234,5``)."""
    if isinstance(v, bool):
        raise ValueError(f"{what} must be a number, got {v!r}")
    if isinstance(v, (int, float)):
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    else:
        s = text(v).replace("\u202f", "").replace(" ", "").replace(",", ".")
        if not s:
            raise ValueError(f"missing {what}")
        try:
            d = Decimal(s)
        except InvalidOperation:
            raise ValueError(f"{what} must be a number, got {text(v)!r}") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"{what} must be a non-negative number, got {text(v)!r}")
    return d


def kwh_to_wh(v: object, what: str = "energy [kWh]") -> int:
    """A kWh cell to whole Wh (rounded half up to 3 decimals). [Wh]"""
    d = parse_decimal(v, what).quantize(KWH, rounding=ROUND_HALF_UP)
    return int(d * 1000)


def wh_to_kwh(wh: int) -> Decimal:
    """Whole Wh as kWh with exactly 3 decimals. [kWh]"""
    return (Decimal(wh) / 1000).quantize(KWH)


def parse_bool(v: object) -> bool:
    """oui/non (also yes/no, true/false, 1/0); blank is non."""
    if isinstance(v, bool):
        return v
    s = text(v).lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"must be oui or non, got {text(v)!r}")
