"""OpenEI URDB import: a real record (PG&E A-10) imported and billed against a hand computation."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from cloud.tariffs.bill import Series, bill
from cloud.tariffs.calendar import interval_starts
from cloud.tariffs.errors import UrdbError
from cloud.tariffs.model import ChargeType, Compensation
from cloud.tariffs.urdb import load_urdb, urdb_to_dict

# Real URDB record 6758b27bd731a5d4d806802e, "A-10 Medium General Demand Service TOU (Secondary Voltage)",
# Pacific Gas & Electric Co, https://apps.openei.org/IURDB/rate/view/6758b27bd731a5d4d806802e
# (copy found in the public repository erock25/urdb-tariff-viewer_v2, tariffs/PGE_A-10.json)
A10 = Path(__file__).parent / "data" / "tariffs" / "urdb_pge_a10.json"
D = Decimal
LA = "America/Los_Angeles"


def test_a10_imports_with_its_seasons_periods_demand_and_fixed_charge() -> None:
    t = load_urdb(A10, LA)
    assert t.currency == "USD" and t.country == "US" and t.compensation is Compensation.NET_METERING
    assert t.valid_from == date(2024, 10, 1) and t.sector.value == "commercial"
    # May-Oct (summer) and Nov-Apr (winter) schedules
    assert [(s.name, s.start_month, s.start_day) for s in t.seasons] == [("may-oct", 5, 1), ("nov-apr", 11, 1)]
    usage = t.charges_of(ChargeType.USAGE)[0]
    assert [(r.name, r.tiers[0].price) for r in usage.rates] == [
        ("period 0", D("0.24653")), ("period 1", D("0.24724")), ("period 2", D("0.27092")),
        ("period 3", D("0.29771")), ("period 4", D("0.29771"))]
    assert [r.tiers[0].price for r in t.charges_of(ChargeType.DEMAND)[0].rates] == [D("24.38")]
    assert [(f.amount, f.per.value) for f in t.fixed] == [(D("11.51068"), "day")]


def test_a10_july_bill_matches_a_hand_computation() -> None:
    t = load_urdb(A10, LA)
    # July 2025, constant 10 kW (2500 Wh every quarter-hour, no export). July 2025: 23 weekdays, 8 weekend days.
    # Summer weekday: 00-08 period 2 (8 h), 08-12 period 3 (4 h), 12-18 period 4 (6 h), 18-21 period 3 (3 h),
    # 21-24 period 2 (3 h); summer weekend: period 2 all day.
    # period 2: (23 x 11 + 8 x 24) h x 10 kW = 4450 kWh x 0.27092 = 1205.594 -> 1205.59
    # period 3: 23 x 7 h x 10 kW = 1610 kWh x 0.29771 = 479.3131 -> 479.31
    # period 4: 23 x 6 h x 10 kW = 1380 kWh x 0.29771 = 410.8398 -> 410.84
    # flat demand: 10 kW x 24.38 = 243.80 ; fixed: 31 days x 11.51068 = 356.83108 -> 356.83
    # total 2696.37 USD
    starts = interval_starts(date(2025, 7, 1), date(2025, 8, 1), LA)
    la = Series(starts, np.full(starts.size, 2500, dtype=np.int64), np.zeros(starts.size, dtype=np.int64))
    [b] = bill(t, la, date(2025, 7, 1), date(2025, 8, 1))
    assert {i.label: (i.quantity, i.amount) for i in b.items} == {
        "energy period 2": (D("4450"), D("1205.59")),
        "energy period 3": (D("1610"), D("479.31")),
        "energy period 4": (D("1380"), D("410.84")),
        "demand period 0": (D("10"), D("243.80")),
        "fixed charge": (D("31.0000"), D("356.83")),
    }
    assert b.total == D("2696.37")


def test_tiers_sell_rates_and_unsupported_fields(tmp_path: Path) -> None:
    rec = json.loads(A10.read_text())
    rec["energyratestructure"][0] = [{"rate": 0.1, "max": 500, "unit": "kWh", "sell": 0.03},
                                     {"rate": 0.2, "adj": 0.01, "unit": "kWh"}]
    rec["dgrules"] = "Net Billing Instantaneous"
    doc = urdb_to_dict(rec, LA)
    energy = doc["charges"][0]
    assert energy["rates"][0]["tiers"] == [{"price": "0.1", "limit": "500"}, {"price": "0.21"}]
    assert energy["block_reset"] == "bill"
    assert doc["charges"][-1]["type"] == "export" and doc["charges"][-1]["rates"][0]["tiers"] == [{"price": "0.03"}]
    rec["mincharge"], rec["minchargeunits"] = 10, "$/month"
    with pytest.raises(UrdbError, match="URDB rate 6758b27bd731a5d4d806802e: minchargeunits: '\\$/month'"):
        urdb_to_dict(rec, LA)
    del rec["mincharge"]
    rec["energyratestructure"][1][0]["unit"] = "kWh/kW"
    with pytest.raises(UrdbError, match=r"energyratestructure\[1\]\[0\].unit: 'kWh/kW' is not supported"):
        urdb_to_dict(rec, LA)
    rec["energyratestructure"][1][0]["unit"] = "kWh"
    rec["energyweekdayschedule"][3][5] = 9
    with pytest.raises(UrdbError, match=r"energyweekdayschedule\[3\]\[5\]: period 9 is not one of the 5 periods"):
        urdb_to_dict(rec, LA)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UrdbError, match="not valid JSON"):
        load_urdb(tmp_path / "bad.json", LA)
