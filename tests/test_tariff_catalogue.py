"""A folder of tariffs as the guide's database: filters, popularity order, the default, validity warnings."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cli.main import main
from cloud.stores.sqlite import SqliteStore
from cloud.tariffs.catalogue import applicable, by_popularity, default_tariff, load_folder, validity_warnings
from cloud.tariffs.model import Sector
from quartier.series import Direction
from tests.test_tariff_bill import series
from tests.test_tariff_command import _write as _write_series

EXPORT = '[[charges]]\ntype = "usage"\nstructure = "flat"\nprice = "0.2"\n' \
         '[[charges]]\ntype = "export"\nstructure = "flat"\nprice = "0"\n'


def _write(folder: Path, stem: str, name: str, popularity: int, sector: str = "residential", country: str = "FR",
           valid: str = "valid_from = 2026-01-01", latest: bool = True) -> None:
    (folder / f"{stem}.toml").write_text(f"""[tariff]
name = "{name}"
distributor = "D"
country = "{country}"
sector = "{sector}"
{valid}
latest = {str(latest).lower()}
popularity = {popularity}
billing_frequency = "monthly"
compensation = "net_billing"
prices_include_tax = true
""" + EXPORT)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    _write(tmp_path, "a", "Pro", 100, sector="commercial")
    _write(tmp_path, "b", "Home", 80)
    _write(tmp_path, "c", "Old", 90, sector="unspecified", valid="valid_from = 2024-01-01\nvalid_to = 2025-12-31",
           latest=False)
    _write(tmp_path, "d", "Belgian", 95, country="BE")
    (tmp_path / "e.toml").write_text("[tariff]\nname = 1\n")
    return tmp_path


def test_filters_popularity_and_default(folder: Path) -> None:
    entries = load_folder(folder)
    assert [e.path.name for e in entries] == ["a.toml", "b.toml", "c.toml", "d.toml", "e.toml"]
    assert entries[4].tariff is None and "tariff.prices_include_tax: missing" in entries[4].error
    tariffs = [e.tariff for e in entries if e.tariff]
    assert [t.name for t in by_popularity(tariffs)] == ["Pro", "Belgian", "Old", "Home"]
    # popularity 100 is always the default
    assert default_tariff(tariffs).name == "Pro"  # type: ignore[union-attr]
    home = [t for t in tariffs if applicable(t, "FR", Sector.RESIDENTIAL)]
    assert [t.name for t in by_popularity(home)] == ["Old", "Home"]  # unspecified sector matches any sector
    assert default_tariff(home).name == "Old"  # type: ignore[union-attr]
    assert [t.name for t in home if applicable(t, on=date(2026, 3, 1))] == ["Home"]
    assert [t.name for t in home if applicable(t, latest_only=True)] == ["Home"]
    assert [t.name for t in tariffs if applicable(t, on=date(2025, 12, 31))] == ["Old"]
    assert default_tariff([]) is None


def test_validity_warnings(folder: Path) -> None:
    old = next(e.tariff for e in load_folder(folder) if e.tariff and e.tariff.name == "Old")
    assert validity_warnings(old, date(2025, 1, 1), date(2025, 2, 1)) == (
        "not the latest version of this tariff (latest = false)",)
    assert validity_warnings(old, date(2023, 12, 1), date(2026, 1, 2)) == (
        "tariff valid from 2024-01-01: days before it (2023-12-01 onwards) are billed at prices not yet in force",
        "tariff valid until 2025-12-31: days after it (to 2026-01-01) are billed at prices no longer in force",
        "not the latest version of this tariff (latest = false)")


def test_tariffs_command_lists_and_marks_the_default(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tariffs", "--dir", str(folder), "--country", "FR", "--sector", "residential"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"2 tariff(s) in {folder}"
    assert out[1].split()[:2] == ["c.toml", "Old"] and out[1].endswith("default for new projects")
    assert out[2].split()[:2] == ["b.toml", "Home"] and "default" not in out[2]
    assert out[3].split()[:2] == ["e.toml", "REFUSED:"]
    assert main(["tariffs", "--dir", str(folder / "nothere")]) == 2


def test_bill_warns_outside_validity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "t", "Home", 80)
    store = SqliteStore(tmp_path / "s.sqlite")
    _write_series(store, "grid", Direction.IMPORT, [100] * 96, [int(t) for t in series(
        date(2025, 12, 31), date(2026, 1, 1), lambda d: (0, 0)).starts])
    store.close()
    assert main(["bill", "--store", str(tmp_path / "s.sqlite"), "--site", "gw1/grid", "--tariff",
                 str(tmp_path / "t.toml"), "--from", "2025-12-31", "--to", "2025-12-31"]) == 0
    assert "WARNING: tariff valid from 2026-01-01: days before it (2025-12-31 onwards) are billed at prices not " \
           "yet in force" in capsys.readouterr().out
