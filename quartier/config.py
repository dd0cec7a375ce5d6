"""TOML configuration files, validated at start.

Every error names the file, the key (dotted, with ``[i]`` for array entries)
and the problem, and unknown keys are refused so a typo never passes silently.
"""

from __future__ import annotations

import builtins
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quartier.errors import ConfigError

_REQUIRED: Any = object()


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; ConfigError with the line and column of a syntax error."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(p, "", f"cannot read the file: {e.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(p, "", f"not valid TOML: {e}") from None


class Table:
    """A TOML table being validated; remembers which keys were read."""

    def __init__(self, data: Mapping[str, Any], path: Path, prefix: str = "") -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, prefix, f"must be a table, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.prefix = prefix
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), problem)

    def _get(self, name: str, default: Any, types: tuple[type, ...], kind: str) -> Any:
        self._seen.add(name)
        if name not in self.data:
            if default is _REQUIRED:
                raise self.error(name, f"missing (a {kind} is required)")
            return default
        v = self.data[name]
        if isinstance(v, bool) and bool not in types:
            raise self.error(name, f"must be a {kind}, got {v!r}")
        if not isinstance(v, types):
            raise self.error(name, f"must be a {kind}, got {v!r}")
        return v

    def str(self, name: str, default: Any = _REQUIRED, choices: tuple[str, ...] | None = None) -> Any:
        v = self._get(name, default, (str,), "string")
        if v is not None and choices is not None and v not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}; got {v!r}")
        if v == "" and default is _REQUIRED:
            raise self.error(name, "must not be empty")
        return v

    def int(self, name: builtins.str, default: Any = _REQUIRED, lo: int | None = None, hi: int | None = None) -> Any:
        v = self._get(name, default, (int,), "whole number")
        if v is not None and ((lo is not None and v < lo) or (hi is not None and v > hi)):
            raise self.error(name, f"must be between {lo} and {hi}, got {v}")
        return v

    def float(self, name: builtins.str, default: Any = _REQUIRED, lo: float | None = None) -> Any:
        v = self._get(name, default, (int, float), "number")
        if v is not None and lo is not None and v < lo:
            raise self.error(name, f"must be at least {lo}, got {v}")
        return None if v is None else float(v)

    def bool(self, name: builtins.str, default: Any = _REQUIRED) -> Any:
        return self._get(name, default, (bool,), "boolean (true or false)")

    def path_(self, name: builtins.str, default: Any = _REQUIRED) -> Any:
        """A file path; relative paths are taken from the config file's folder."""
        v = self.str(name, default)
        if v is None:
            return None
        p = Path(v).expanduser()
        return p if p.is_absolute() else (self.path.parent / p)

    def table(self, name: builtins.str, required: builtins.bool = True) -> Table:
        v = self._get(name, _REQUIRED if required else {}, (dict,), "table")
        return Table(v, self.path, self.key(name))

    def tables(self, name: builtins.str, required: builtins.bool = True) -> list[Table]:
        v = self._get(name, _REQUIRED if required else [], (list,), "array of tables ([[...]])")
        return [Table(item, self.path, f"{self.key(name)}[{i}]") for i, item in enumerate(v)]

    def accept(self, *names: builtins.str) -> None:
        """Mark keys as read: another component validates them."""
        self._seen.update(names)

    def raw(self) -> dict[builtins.str, Any]:
        """The table as a plain dict (for drivers that validate their own options)."""
        self._seen.update(self.data)
        return dict(self.data)

    def done(self) -> None:
        """Refuse keys that were never read."""
        extra = sorted(set(self.data) - self._seen)
        if extra:
            raise self.error(extra[0], "unknown key (check the spelling; see docs/operations.md)")


@dataclass(frozen=True)
class MqttConfig:
    """``[mqtt]``: the broker's address, keepalive in seconds, and optional TLS files.

    ``tls_ca`` (the CA that signed the broker's certificate), ``tls_cert`` and ``tls_key`` (this client's
    certificate and private key, whose CN is the MQTT identity) go together: all three or none. Relative paths
    start at the config file's folder. With TLS the port defaults to 8883.
    """

    host: str = "127.0.0.1"
    port: int = 1883
    keepalive_s: int = 30
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None

    @classmethod
    def from_table(cls, t: Table) -> MqttConfig:
        host = t.str("host", "127.0.0.1")
        files = {name: t.path_(name, None) for name in ("tls_ca", "tls_cert", "tls_key")}
        given = [name for name, v in files.items() if v is not None]
        if given and len(given) != 3:
            missing = [name for name in files if files[name] is None]
            raise t.error(
                missing[0],
                f"missing: TLS needs tls_ca, tls_cert and tls_key together (got only {', '.join(given)}); "
                "see docs/operations.md, 'MQTT security'",
            )
        for name, v in files.items():
            if v is not None and not v.is_file():
                raise t.error(name, f"file {v} does not exist (relative paths start at {t.path.parent})")
        port = t.int("port", 8883 if given else 1883, 1, 65535)
        c = cls(host, port, t.int("keepalive_s", 30, 5, 3600), files["tls_ca"], files["tls_cert"], files["tls_key"])
        t.done()
        return c
