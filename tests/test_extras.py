"""Each pip extra installs and runs alone: ``quartier`` loads a part only when its subcommand runs.

The fast tests keep :data:`cli.main.COMMANDS` and :data:`cli.main.EXTRAS` in step with the parts' ``add_parser``
functions and with pyproject.toml, and check that building the parser imports no part. The venv tests install
the built wheel with only ``[gateway]``, or only ``[cloud]``, into fresh virtualenvs (from the local package
mirrors, about 15 s in all) and run the commands there: each part's own commands work, the others say in one
line which extra to install.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
import types
from dataclasses import dataclass, replace
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from cli import main as cli_main
from cli.main import COMMANDS, EXTRAS, Command, main, missing_dependency
from cloud.stores.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("gateway", "cloud", "simulators")
THIRD_PARTY = tuple(EXTRAS["all"])


def _subcommands(module: str) -> dict[str, str | None]:
    """The subcommands that ``module``'s ``add_parser`` adds: name -> one-line help."""
    sub = argparse.ArgumentParser(prog="quartier").add_subparsers(dest="cmd")
    importlib.import_module(module).add_parser(sub)
    return {a.dest: a.help for a in sub._choices_actions}


def test_the_table_lists_every_subcommand_of_every_part_with_its_help() -> None:
    modules = {c.module for c in COMMANDS.values()}
    part_commands = {".".join(p.relative_to(ROOT).with_suffix("").parts)
                     for part in PARTS for p in (ROOT / part).rglob("command.py")}
    assert part_commands <= modules, f"not wired into cli/main.py COMMANDS: {sorted(part_commands - modules)}"
    defined: dict[str, str | None] = {}
    for module in sorted(modules):
        added = _subcommands(module)
        listed = {name for name, c in COMMANDS.items() if c.module == module}
        assert set(added) == listed, f"{module} adds {sorted(added)}, cli/main.py COMMANDS lists {sorted(listed)}"
        defined.update(added)
    assert {name: c.help for name, c in COMMANDS.items()} == defined


def test_extras_table_matches_pyproject() -> None:
    def normal(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    dists = packages_distributions()
    for extra in ("gateway", "cloud", "sim"):
        declared = {normal(re.split(r"[^A-Za-z0-9._-]", req)[0]) for req in extras[extra]}
        provided = {normal(d) for module in EXTRAS[extra] for d in dists[module]}
        assert provided == declared, f"cli/main.py EXTRAS[{extra!r}] imports {sorted(provided)}, pyproject {declared}"
    assert set(EXTRAS["all"]) == set(EXTRAS["gateway"]) | set(EXTRAS["cloud"]) | set(EXTRAS["sim"])
    for name, c in COMMANDS.items():  # installing any extra the message names is enough
        for extra in c.extras:
            assert set(c.required_modules()) <= set(EXTRAS[extra]), (name, extra)


def _modules_loaded_by(argv: list[str]) -> list[str]:
    code = (
        "import json, sys\nfrom cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [m for m in json.loads(out.splitlines()[-1]) if m.partition(".")[0] in PARTS + THIRD_PARTY]


def test_help_imports_no_part_and_no_third_party_module() -> None:
    assert _modules_loaded_by(["--help"]) == []
    assert _modules_loaded_by(["keys", "gateway", "--help"]) == []
    loaded = {m.partition(".")[0] for m in _modules_loaded_by(["share", "--help"])}
    assert {"cloud", "numpy"} <= loaded and not loaded & {"gateway", "simulators", "pymodbus", "serial"}


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name, c in COMMANDS.items():
        assert re.search(rf"^ +{re.escape(name)} +{re.escape(c.help[:30])}", out, re.M), name


def test_global_options_come_before_the_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v", "--log-format", "json", "keys", "cloud", "--dir", str(tmp_path)]) == 0
    assert "cloud decryption key" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["--log-format", "xml", "keys", "cloud", "--dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_a_missing_extra_is_one_line_before_anything_is_imported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # find_spec("numpy") is then None
    assert main(["share", "--help"]) == 2
    assert capsys.readouterr().err == ("quartier: error: 'quartier share' needs the cloud part "
                                       "(No module named 'numpy'): pip install 'quartier[cloud]'\n")
    monkeypatch.setitem(sys.modules, "cryptography", None)
    assert main(["keys", "list", "--registry", "gateways.json"]) == 2
    assert capsys.readouterr().err == (
        "quartier: error: 'quartier keys' needs the gateway part or the cloud part (No module named 'cryptography'): "
        "pip install 'quartier[gateway]' or 'quartier[cloud]'\n"
    )


def _fake_command(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    """A ``fake`` subcommand of the cloud part whose handler finds ``missing`` not installed."""

    def run(args: argparse.Namespace) -> int:
        raise ModuleNotFoundError(f"No module named '{missing}'", name=missing)

    def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        sub.add_parser("fake", help="a fake").set_defaults(func=run)

    module = types.ModuleType("quartier_fake_command")
    module.add_parser = add_parser  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(COMMANDS, "fake", Command(module.__name__, ("cloud",), "a fake", needs=()))


def test_a_module_missing_when_the_handler_runs_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_command(monkeypatch, "openpyxl.reader")
    assert main(["fake"]) == 2
    assert capsys.readouterr().err == ("quartier: error: 'quartier fake' needs the cloud part "
                                       "(No module named 'openpyxl.reader'): pip install 'quartier[cloud]'\n")


def test_a_module_of_ours_missing_is_a_bug_and_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_command(monkeypatch, "cloud.no_such_module")
    with pytest.raises(ModuleNotFoundError, match="cloud.no_such_module"):
        main(["fake"])


def test_a_subcommand_module_that_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(COMMANDS, "share", replace(COMMANDS["share"], needs=()))
    monkeypatch.setitem(sys.modules, "cloud.sharing.command", None)  # what a bug in our tree looks like
    with pytest.raises(ModuleNotFoundError):
        main(["share", "--help"])
    monkeypatch.setitem(COMMANDS, "share", replace(COMMANDS["share"], module="quartier_absent_part"))
    assert main(["share", "--help"]) == 2
    assert "(No module named 'quartier_absent_part'): pip install 'quartier[cloud]'" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "expected"), [
    ("numpy", True), ("paho.mqtt.client", True), ("cloud.no_such_module", False), ("quartier", False),
    ("_sqlite3", False), ("tomllib", False), (None, False),
])
def test_missing_dependency(name: str | None, expected: bool) -> None:
    assert missing_dependency(ModuleNotFoundError("gone", name=name)) is expected


def test_a_part_missing_from_the_install_is_a_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main.importlib.util, "find_spec", lambda name: None)
    assert missing_dependency(ModuleNotFoundError("gone", name="simulators.site"))


# --- fresh virtualenvs, one extra each ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Venv:
    """A virtualenv with the built wheel and one extra."""

    root: Path

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``quartier ARGS`` there; no output may hold a traceback."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        result = subprocess.run([str(self.root / "bin" / "quartier"), *args], cwd=cwd or self.root, env=env,
                                capture_output=True, text=True, timeout=120, check=False)
        assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
        return result

    def can_import(self, module: str) -> bool:
        code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
        return subprocess.run([str(self.root / "bin" / "python"), "-c", code], check=False).returncode == 0


def _pip(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"pip {' '.join(args)} failed:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the source (the build writes nothing into the working tree)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in ("quartier", "cli", *PARTS):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    _pip("wheel", "-q", "--no-deps", str(src), "-w", str(base / "dist"))
    (built,) = (base / "dist").glob("quartier-*.whl")
    return built


def _venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path, extra: str) -> Venv:
    root = tmp_path_factory.mktemp(f"venv-{extra}")
    # From this interpreter's base python (the system python3 .ci/setup made .venv from); pip runs from here.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    _pip("--python", str(root / "bin" / "python"), "install", "-q", f"{wheel}[{extra}]")
    return Venv(root)


@pytest.fixture(scope="module")
def gateway_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Venv:
    """Only ``quartier[gateway]``."""
    return _venv(tmp_path_factory, wheel, "gateway")


@pytest.fixture(scope="module")
def cloud_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Venv:
    """Only ``quartier[cloud]``."""
    return _venv(tmp_path_factory, wheel, "cloud")


def test_venvs_hold_only_their_extra(gateway_venv: Venv, cloud_venv: Venv) -> None:
    assert gateway_venv.can_import("pymodbus") and gateway_venv.can_import("cryptography")
    assert not gateway_venv.can_import("numpy") and not gateway_venv.can_import("flask")
    assert cloud_venv.can_import("numpy") and cloud_venv.can_import("cryptography")
    assert not cloud_venv.can_import("pymodbus") and not cloud_venv.can_import("serial")


def test_gateway_extra_runs_the_gateway_commands(gateway_venv: Venv, tmp_path: Path) -> None:
    result = gateway_venv.run("--help")
    assert result.returncode == 0 and all(name in result.stdout for name in COMMANDS)

    result = gateway_venv.run("keys", "gateway", "--dir", str(tmp_path / "keys"))
    assert result.returncode == 0, result.stderr
    assert "gateway signing key:" in result.stdout
    assert stat.S_IMODE((tmp_path / "keys" / "gateway.key").stat().st_mode) == 0o600

    result = gateway_venv.run("gateway", "run", "--help")
    assert result.returncode == 0 and "--start" in result.stdout
    result = gateway_venv.run("scan", "--help")
    assert result.returncode == 0 and "--protocol" in result.stdout


def test_gateway_extra_names_the_cloud_extra(gateway_venv: Venv) -> None:
    result = gateway_venv.run("share", "--help")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("quartier: error: 'quartier share' needs the cloud part (No module named 'numpy'): "
                             "pip install 'quartier[cloud]'\n")


def test_cloud_extra_runs_the_cloud_commands(cloud_venv: Venv, tmp_path: Path) -> None:
    result = cloud_venv.run("--help")
    assert result.returncode == 0 and all(name in result.stdout for name in COMMANDS)
    result = cloud_venv.run("cloud", "run", "--help")
    assert result.returncode == 0 and "--config" in result.stdout

    assert cloud_venv.run("keys", "cloud", "--dir", str(tmp_path / "keys")).returncode == 0
    (tmp_path / "cloud.toml").write_text(
        '[cloud]\nstate_dir = "state"\nprivate_key = "keys/cloud.key"\ngateways = "gateways.json"\n\n'
        '[mqtt]\nhost = "127.0.0.1"\nport = 1883\n\n[store]\nbackend = "sqlite"\n'
    )
    result = cloud_venv.run("cloud", "intervals", "--config", str(tmp_path / "cloud.toml"))
    store = tmp_path / "state" / "series.sqlite"
    assert result.returncode == 2 and f"store.path: {store} does not exist" in result.stderr  # never created
    SqliteStore(str(store)).close()  # what the cloud creates when it starts
    result = cloud_venv.run("cloud", "intervals", "--config", str(tmp_path / "cloud.toml"))
    header = "gateway\tmeter\tdirection\tstart_utc\twh\tquality\tmethod\n"  # an empty store: the header alone
    assert (result.returncode, result.stdout, result.stderr) == (0, header, "")

    result = cloud_venv.run("tariffs")
    assert result.returncode == 0 and result.stdout.strip(), result.stderr
    result = cloud_venv.run("bill", "--help")
    assert result.returncode == 0 and "--config" in result.stdout


def test_cloud_extra_names_the_gateway_and_sim_extras(cloud_venv: Venv) -> None:
    result = cloud_venv.run("sim", "--help")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("quartier: error: 'quartier sim' needs the simulators (No module named 'pymodbus'): "
                             "pip install 'quartier[sim]'\n")
    result = cloud_venv.run("scan", "/dev/null")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("quartier: error: 'quartier scan' needs the gateway part (No module named 'pymodbus'): "
                             "pip install 'quartier[gateway]'\n")
