"""Tariff files: loading, and every validation error as ``FILE: dotted.key: problem``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cloud.tariffs.errors import TariffFileError
from cloud.tariffs.model import BlockReset, ChargeType, Compensation, Structure, load_tariff
from quartier.errors import QuartierError

DATA = Path(__file__).parent / "data" / "tariffs"

HEAD = """
[tariff]
name = "T"
distributor = "D"
country = "FR"
valid_from = 2026-01-01
billing_frequency = "monthly"
compensation = "net_billing"
prices_include_tax = true
"""
EXPORT = """
[[charges]]
type = "export"
structure = "flat"
price = 0.1
"""
FLAT = """
[[charges]]
type = "usage"
structure = "flat"
price = 0.2516
"""


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    p = tmp_path / "t.toml"
    p.write_text(text)
    return load_tariff(p)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(TariffFileError) as e:
        load(tmp_path, text)
    assert isinstance(e.value, QuartierError)
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "t.toml") + ": ")
    return msg[len(str(tmp_path / "t.toml")) + 2:]


def test_test_tariff_loads_with_every_field() -> None:
    t = load_tariff(DATA / "tou_block_demand.toml")
    assert t.network_operator == "Enedis" and t.country == "FR" and t.timezone == "Europe/Paris"
    assert t.compensation is Compensation.NET_BILLING and t.minimum_daily_charge == Decimal("0.50")
    assert t.tax_percent == Decimal(20) and t.prices_include_tax
    assert [s.name for s in t.seasons] == ["summer", "winter"]
    usage = t.charges_of(ChargeType.USAGE)[0]
    assert usage.structure is Structure.TOU and usage.block_reset is BlockReset.DAILY and usage.tiered
    assert [r.name for r in usage.rates] == ["HP", "HC"]
    assert usage.rates[0].tiers[0].limit == Decimal(5) and usage.rates[0].tiers[1].limit is None
    assert len(usage.schedule) == 4  # 2 seasons x weekday/weekend


def test_prices_are_exact_decimals(tmp_path: Path) -> None:
    t = load(tmp_path, HEAD + FLAT + EXPORT)
    assert t.charges[0].rates[0].tiers[0].price == Decimal("0.2516")  # not 0.25159999...
    assert t.charges[1].rates[0].tiers[0].price == Decimal("0.1")


def test_last_block_with_a_limit_is_refused(tmp_path: Path) -> None:
    text = HEAD + EXPORT + """
[[charges]]
type = "usage"
structure = "block"
tiers = [{price = 0.1, limit = 100}, {price = 0.2, limit = 200}]
"""
    msg = error(tmp_path, text)
    assert msg.startswith("charges[1].tiers[1].limit: the last tier must have no limit")
    assert "0 EUR" in msg


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("tiers = [{price = 0.1}, {price = 0.2}]", "charges[1].tiers[0].limit: missing: every tier but the last"),
        ("tiers = [{price = 0.1, limit = 100}, {price = 0.2, limit = 50}, {price = 0.3}]",
         "charges[1].tiers[1].limit: must be greater than the previous tier's limit (100)"),
        ("tiers = [{price = 0.1, limit = 1.0005}, {price = 0.2}]", "charges[1].tiers[0].limit: at most 3 decimals"),
        ("tiers = [{price = 0.1}]", "charges[1].tiers: a block charge needs at least two tiers"),
        ("tiers = [{price = \"abc\", limit = 1}, {price = 0.2}]", "charges[1].tiers[0].price: must be a decimal"),
        ("tiers = [{price = 0.1, limit = 1, colour = 1}, {price = 0.2}]", "charges[1].tiers[0].colour: unknown key"),
        ("price = 0.1\ntiers = [{price = 0.1}]", "charges[1].tiers: give either price"),
    ],
)
def test_block_errors(tmp_path: Path, snippet: str, expected: str) -> None:
    text = HEAD + EXPORT + '\n[[charges]]\ntype = "usage"\nstructure = "block"\n' + snippet + "\n"
    assert error(tmp_path, text).startswith(expected)


TOU = HEAD + EXPORT + """
[[seasons]]
name = "summer"
start = "04-01"
[[seasons]]
name = "winter"
start = "10-01"
[[charges]]
type = "usage"
structure = "tou"
rates = [{name = "HP", price = 0.3}, {name = "HC", price = 0.2}]
"""


def test_tou_calendar_must_cover_every_season(tmp_path: Path) -> None:
    text = TOU + '[charges.schedule.summer]\nweekday = "HP"\nweekend = "HC"\n'
    assert error(tmp_path, text).startswith("charges[1].schedule.winter: missing: season 'winter' has no schedule")


def test_tou_calendar_must_cover_every_day_type(tmp_path: Path) -> None:
    text = TOU + '[charges.schedule.summer]\nweekday = "HP"\nweekend = "HC"\n' \
                 '[charges.schedule.winter]\nweekday = "HP"\n'
    assert error(tmp_path, text).startswith("charges[1].schedule.winter.weekend: missing")


def test_tou_calendar_must_cover_every_hour(tmp_path: Path) -> None:
    hours = ", ".join(['"HP"'] * 23)
    text = TOU + f'[charges.schedule.summer]\nweekday = [{hours}]\nweekend = "HC"\n' \
                 '[charges.schedule.winter]\nweekday = "HP"\nweekend = "HC"\n'
    assert error(tmp_path, text).startswith("charges[1].schedule.summer.weekday: must have 24 (hours), 48 or 96 "
                                            "entries, got 23")


def test_tou_unknown_rate_and_unused_rate(tmp_path: Path) -> None:
    text = TOU + '[charges.schedule.summer]\nweekday = "HP"\nweekend = "HX"\n' \
                 '[charges.schedule.winter]\nweekday = "HP"\nweekend = "HC"\n'
    assert error(tmp_path, text).startswith("charges[1].schedule.summer.weekend[0]: unknown rate 'HX'; the rates are "
                                            "HP, HC")
    text = TOU + '[charges.schedule.summer]\nweekday = "HP"\nweekend = "HP"\n' \
                 '[charges.schedule.winter]\nweekday = "HP"\nweekend = "HP"\n'
    assert error(tmp_path, text) == "charges[1].rates: rate 'HC' is never used by the schedule"


def test_schedule_for_an_unknown_season_is_refused(tmp_path: Path) -> None:
    text = TOU + '[charges.schedule.summer]\nweekday = "HP"\nweekend = "HC"\n' \
                 '[charges.schedule.winter]\nweekday = "HP"\nweekend = "HC"\n' \
                 '[charges.schedule.spring]\nweekday = "HP"\nweekend = "HC"\n'
    assert error(tmp_path, text).startswith("charges[1].schedule.spring: unknown key")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("prices_include_tax = true", "prices_include_tax = false", "tariff.prices_include_tax: must be true"),
        ("prices_include_tax = true", "", "tariff.prices_include_tax: missing"),
        ('billing_frequency = "monthly"', 'billing_frequency = "weekly"',
         "tariff.billing_frequency: must be one of monthly, bimonthly, quarterly; got 'weekly'"),
        ('compensation = "net_billing"', 'compensation = "feed_in"', "tariff.compensation: must be one of"),
        ('country = "FR"', 'country = "France"', "tariff.country: must be an ISO 3166-1 alpha-2 code"),
        ('name = "T"', 'name = "T"\nnmae = "x"', "tariff.nmae: unknown key"),
        ('name = "T"', 'name = "T"\npopularity = 101', "tariff.popularity: must be between 0 and 100"),
        ('name = "T"', 'name = "T"\ntimezone = "Europe/Pariss"', "tariff.timezone: unknown time zone"),
        ('name = "T"', 'name = "T"\nvalid_to = 2025-01-01', "tariff.valid_to: is before valid_from"),
        ('name = "T"', 'name = "T"\nminimum_daily_charge = -1', "tariff.minimum_daily_charge: must be at least 0"),
        ("valid_from = 2026-01-01", 'valid_from = "2026"', "tariff.valid_from: must be a date"),
        ("valid_from = 2026-01-01", "valid_from = 2026-01-01T00:00:00", "tariff.valid_from: must be a date without"),
        ('name = "T"', 'name = "T"\ncurrency = "euro"', "tariff.currency: must be an ISO 4217 code"),
    ],
)
def test_header_errors(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert error(tmp_path, HEAD.replace(old, new) + FLAT + EXPORT).startswith(expected)


def test_structural_errors(tmp_path: Path) -> None:
    assert error(tmp_path, HEAD + EXPORT).startswith('charges: at least one charge of type "usage"')
    assert error(tmp_path, HEAD + FLAT).startswith('charges: compensation \'net_billing\' credits exports')
    assert error(tmp_path, HEAD + FLAT + EXPORT + "[extra]\ntax_percent = 120\n").startswith(
        "extra.tax_percent: must be at most 100")
    assert error(tmp_path, HEAD + FLAT + EXPORT + '[[fixed]]\nname = "x"\namount = 1\nper = "week"\n').startswith(
        "fixed[0].per: must be one of day, month, quarter, year")
    assert error(tmp_path, HEAD + FLAT + EXPORT + "[net_metering]\nadjustment_month = 3\n").startswith(
        'net_metering: only for compensation = "net_metering"')
    flat_tiers = FLAT.replace("price = 0.2516", "tiers = [{price = 0.1, limit = 1}, {price = 0.2}]")
    assert error(tmp_path, HEAD + flat_tiers + EXPORT).startswith("charges[0].tiers: a flat charge has one price")
    assert error(tmp_path, HEAD + FLAT + EXPORT + "[[seasons]]\nname = \"s\"\nstart = \"02-30\"\n").startswith(
        'seasons[0].start: must be a month-day such as "11-01"')


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in error(tmp_path, "[tariff\n")
    with pytest.raises(TariffFileError, match="cannot read the file"):
        load_tariff(tmp_path / "nope.toml")
