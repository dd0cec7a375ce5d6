"""A folder of tariff files as the guide's tariff database: filter, order by popularity, pick the default, and
say when a tariff is applied outside its validity (pure over loaded tariffs, plus :func:`load_folder`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from cloud.tariffs.model import Sector, Tariff, load_tariff
from quartier.errors import QuartierError


@dataclass(frozen=True)
class Entry:
    """One tariff of a folder: its file and the loaded tariff, or the error that refused it."""

    path: Path
    tariff: Tariff | None
    error: str = ""


def load_folder(folder: str | Path) -> list[Entry]:
    """Every ``*.toml`` of ``folder`` (not recursive), in file name order; a file that does not load is kept
    with its error so that a listing shows it instead of hiding it."""
    out = []
    for p in sorted(Path(folder).glob("*.toml")):
        try:
            out.append(Entry(p, load_tariff(p)))
        except QuartierError as e:
            out.append(Entry(p, None, str(e)))
    return out


def applicable(t: Tariff, country: str | None = None, sector: Sector | None = None, on: date | None = None,
               latest_only: bool = False) -> bool:
    """True when ``t`` matches the filters: country, sector (an ``unspecified`` tariff matches any sector), in
    force ``on`` that local date (valid_from <= on <= valid_to), and, with ``latest_only``, the latest version."""
    if country is not None and t.country != country:
        return False
    if sector is not None and t.sector not in (sector, Sector.UNSPECIFIED):
        return False
    if on is not None and (on < t.valid_from or (t.valid_to is not None and on > t.valid_to)):
        return False
    return t.latest or not latest_only


def by_popularity(tariffs: Sequence[Tariff]) -> list[Tariff]:
    """Most popular first (the guide: the higher the popularity, the likelier the default); ties by name."""
    return sorted(tariffs, key=lambda t: (-t.popularity, t.name))


def default_tariff(tariffs: Sequence[Tariff]) -> Tariff | None:
    """The tariff a new project starts with: one at popularity 100 is always the default (the guide); else
    the most popular; None for no tariff. Two tariffs at 100 are ambiguous: the first by name is taken."""
    ordered = by_popularity(tariffs)
    return ordered[0] if ordered else None


def validity_warnings(t: Tariff, start: date, end: date) -> tuple[str, ...]:
    """Warnings for billing local dates [start, end) under ``t``: days outside valid_from/valid_to, and a
    tariff that is not the latest version. Such a bill is a what-if: the prices were not in force then."""
    out = []
    last = end - timedelta(days=1)
    if start < t.valid_from:
        out.append(f"tariff valid from {t.valid_from}: days before it ({start} onwards) are billed at prices "
                   "not yet in force")
    if t.valid_to is not None and last > t.valid_to:
        out.append(f"tariff valid until {t.valid_to}: days after it (to {last}) are billed at prices no longer "
                   "in force")
    if not t.latest:
        out.append("not the latest version of this tariff (latest = false)")
    return tuple(out)


def with_validity_warnings(t: Tariff, start: date, end: date) -> Tariff:
    """``t`` with :func:`validity_warnings` added to its warnings (shown with every bill)."""
    extra = validity_warnings(t, start, end)
    return replace(t, warnings=t.warnings + extra) if extra else t
