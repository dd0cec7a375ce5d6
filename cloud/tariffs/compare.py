"""The installer's comparison: one consumption under several tariffs and compensation mechanisms, with and
without solar (pure: tariffs, series and bills in, rows out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import numpy as np

from cloud.tariffs.bill import Bill, Series, bill
from cloud.tariffs.errors import BillingError
from cloud.tariffs.mechanisms import Account
from cloud.tariffs.model import ChargeType, Compensation, NetMetering, Tariff, VirtualStorage

WITH_SOLAR = "with solar"
WITHOUT_SOLAR = "without solar"


def with_mechanism(tariff: Tariff, mechanism: Compensation, withdrawal_price: Decimal | None = None) -> Tariff:
    """The same tariff under another compensation mechanism.

    * net billing, gross metering: exports are credited at the tariff's export charge; a tariff without one
      is refused (BillingError): no export price is invented.
    * net metering, virtual storage: export charges are dropped (exports are compensated in kWh). Net metering
      keeps the tariff's ``[net_metering]`` options, else the defaults (adjustment month 12, expired credits
      lost). Virtual storage uses ``withdrawal_price`` [EUR/kWh] if given, else the tariff's own, else 0
      with a warning on the tariff (shown with every bill and in the comparison).
    """
    if mechanism is tariff.compensation and withdrawal_price is None:
        return tariff
    charges = tariff.charges
    has_export = any(c.type is ChargeType.EXPORT for c in charges)
    if mechanism in (Compensation.NET_BILLING, Compensation.GROSS_METERING):
        if not has_export:
            raise BillingError(f"tariff {tariff.name!r}: {mechanism.value} credits exports at the export rate, "
                               "but the tariff has no charge of type \"export\"; add one to its file")
    else:
        charges = tuple(c for c in charges if c.type is not ChargeType.EXPORT)
    nm = (tariff.net_metering or NetMetering(12, None)) if mechanism is Compensation.NET_METERING else None
    vs = None
    warnings = tariff.warnings
    if mechanism is Compensation.VIRTUAL_STORAGE:
        if withdrawal_price is not None:
            vs = VirtualStorage(withdrawal_price, tariff.virtual_storage.precharge_price
                                if tariff.virtual_storage else None)
        elif tariff.virtual_storage is not None:
            vs = tariff.virtual_storage
        else:
            vs = VirtualStorage(Decimal(0))
            warnings += ("virtual storage withdrawal price not given: 0 EUR/kWh assumed for each kWh drawn "
                         "(give --withdrawal-price from the offer)",)
    return replace(tariff, compensation=mechanism, charges=charges, net_metering=nm, virtual_storage=vs,
                   warnings=warnings)


def without_solar(tariff: Tariff, series: Series) -> tuple[Tariff, Series]:
    """The site as if it had no solar: consumption = import + production - export is all imported, billed as
    net billing with nothing to credit (BillingError without a production series, or if export exceeds
    import + production somewhere)."""
    if series.production_wh is None:
        raise BillingError("the 'without solar' bill needs the solar production series (--production)")
    consumption = (np.asarray(series.import_wh, dtype=np.int64) + np.asarray(series.production_wh, dtype=np.int64)
                   - np.asarray(series.export_wh, dtype=np.int64))
    if consumption.size and consumption.min() < 0:
        raise BillingError("export exceeds import + production in some interval: check the production meter")
    alone = replace(tariff, compensation=Compensation.NET_BILLING, net_metering=None, virtual_storage=None)
    return alone, Series(series.starts, consumption, np.zeros_like(consumption))


@dataclass(frozen=True)
class ComparisonRow:
    """One line of the comparison, summed over the billed range.

    Attributes:
        tariff: the tariff's name. mechanism: the compensation mechanism's value (``net_billing`` ...).
        scenario: ``with solar`` (the measured series) or ``without solar``.
        bought_kwh: energy billed at the usage rates. [kWh]
        credited_kwh: energy credited at the export rate, or banked in kWh (net metering, virtual storage). [kWh]
        total: sum of the bills, tax-included. [EUR]
        difference: total minus the same tariff's ``without solar`` total (negative = saving); None when
            there is no production series. [EUR]
        currency: ISO 4217.
        warnings: the tariff's warnings (incomplete tariff, assumed price): the total may be wrong by them.
    """

    tariff: str
    mechanism: str
    scenario: str
    bought_kwh: Decimal
    credited_kwh: Decimal
    total: Decimal
    difference: Decimal | None
    currency: str
    warnings: tuple[str, ...] = ()


def _sum(bills: Sequence[Bill], field: str) -> Decimal:
    return sum((getattr(b, field) for b in bills), Decimal(0))


@dataclass(frozen=True)
class Run:
    """The bills of one tariff under one mechanism (``tariff`` is the switched tariff)."""

    tariff: Tariff
    bills: list[Bill]


def compare(tariff: Tariff, mechanisms: Sequence[Compensation], series: Series, start: date, end: date,
            account: Account, withdrawal_price: Decimal | None = None,
            after: Tariff | None = None) -> tuple[list[Run], list[ComparisonRow]]:
    """Bill ``tariff`` under each mechanism over local dates [start, end), and without solar when the series
    has production. Returns the runs (for printing and files) and the comparison rows: one per mechanism
    ``with solar``, then one ``without solar`` (its mechanism is shown as ``-``: there is nothing to
    compensate). Gross metering needs the production series.

    ``after`` is the tariff the customer moves to once solar is installed (the tariff's ``switch_to``): the
    ``with solar`` rows bill it, the ``without solar`` row still bills ``tariff`` (today's bill), and the
    difference compares the two."""
    solar = after or tariff
    runs = [Run(t, bill(t, series, start, end, account))
            for t in (with_mechanism(solar, m, withdrawal_price) for m in mechanisms)]
    base: Decimal | None = None
    tail: list[ComparisonRow] = []
    if series.production_wh is not None:
        alone, consumption = without_solar(tariff, series)
        no_solar = bill(alone, consumption, start, end, Account(subscribed_kva=account.subscribed_kva))
        base = _sum(no_solar, "total")
        tail.append(ComparisonRow(tariff.name, "-", WITHOUT_SOLAR, _sum(no_solar, "bought_kwh"), Decimal(0), base,
                                  Decimal("0.00"), tariff.currency, tariff.warnings))
    rows = [ComparisonRow(solar.name, r.tariff.compensation.value, WITH_SOLAR, _sum(r.bills, "bought_kwh"),
                          _sum(r.bills, "credited_kwh"), _sum(r.bills, "total"),
                          None if base is None else _sum(r.bills, "total") - base, solar.currency, r.tariff.warnings)
            for r in runs]
    return runs, rows + tail
