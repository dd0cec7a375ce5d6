"""The architecture contract as a test, so CI's one command (pytest) enforces it: import-linter's ``lint-imports``.

The contracts live in pyproject.toml (``[tool.importlinter]``): the floors (cli, then gateway | cloud | simulators,
then the quartier core) and the core's ban on third-party packages only one part needs. import-linter is pinned
in the dev extra. It is run without its cache, so it writes nothing into the tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("quartier", "gateway", "cloud", "simulators", "cli")
#: Contract id to its name, as lint-imports prints it.
CONTRACTS: dict[str, str] = {
    c["id"]: c["name"]
    for c in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` (what its console script runs) on the packages and pyproject.toml in ``cwd``."""
    # Wide, so that rich does not wrap contract names or import chains in the output.
    env = {**os.environ, "COLUMNS": "240", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-cache", "--no-logo"],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, f"lint-imports failed:\n{result.stdout}{result.stderr}"
    for name in CONTRACTS.values():
        assert f"{name} KEPT" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "chain"),
    [
        # The core importing a part (upward).
        ("quartier/series.py", "import gateway.service", "floors", "quartier.series -> gateway.service"),
        # One part importing another on its floor.
        ("simulators/site.py", "import gateway.service", "floors", "simulators.site -> gateway.service"),
        ("gateway/service.py", "from cloud import ingest", "floors", "gateway.service -> cloud.ingest"),
        # Anything importing the top floor.
        ("cloud/arrays.py", "import cli.main", "floors", "cloud.arrays -> cli.main"),
        # The core importing a package only one part needs, even lazily.
        ("quartier/series.py", "def _lazy() -> None:\n    import numpy", "core-third-party",
         "quartier.series -> numpy"),
    ],
)
def test_a_violation_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str, chain: str) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    text = target.read_text(encoding="utf-8")
    target.write_text(f"{text.rstrip()}\n\n\n{line}\n", encoding="utf-8")
    lineno = len(target.read_text(encoding="utf-8").splitlines())

    result = lint_imports(tmp_path)

    out = result.stdout
    assert result.returncode == 1, f"lint-imports should have failed:\n{out}{result.stderr}"
    assert f"{CONTRACTS[contract]} BROKEN" in out, out
    assert f"{chain} (l.{lineno})" in out, out
