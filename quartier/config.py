"""TOML configuration files, validated at start.

Every error names the file, the key (dotted, with ``[i]`` for array entries)
and the problem, and unknown keys are refused so a typo never passes silently.
"""

from __future__ import annotations

import builtins
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class GatewayConfig:
    """``gateway.toml``: identity, keys, broker, polling and the meters."""

    path: Path
    gateway_id: str
    state_dir: Path
    signing_key: Path
    cloud_public_key: Path
    poll_interval_s: int
    max_gap_s: int
    max_estimate_gap_s: int
    live_values: bool
    resend_after_s: float
    outbox_budget_mb: float
    require_time_sync: bool
    max_in_flight: int
    backlog_batches_per_s: float
    mqtt: MqttConfig
    meters: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> GatewayConfig:
        from quartier.keys import check_gateway_id

        p = Path(path)
        root = Table(load_toml(p), p)
        g = root.table("gateway")
        gid = g.str("id")
        try:
            check_gateway_id(gid)
        except ValueError as e:
            raise g.error("id", str(e)) from None
        poll = g.int("poll_interval_s", 10, 1, 900)
        if 900 % poll:
            raise g.error("poll_interval_s", f"must divide 900 so that a poll falls on every quarter-hour; got {poll}")
        cfg = cls(
            path=p,
            gateway_id=gid,
            state_dir=g.path_("state_dir"),
            signing_key=g.path_("signing_key"),
            cloud_public_key=g.path_("cloud_public_key"),
            poll_interval_s=poll,
            max_gap_s=g.int("max_gap_s", 1800, 1),
            max_estimate_gap_s=g.int("max_estimate_gap_s", 86_400, 0),
            live_values=g.bool("live_values", True),
            resend_after_s=g.float("resend_after_s", 30.0, 0.1),
            outbox_budget_mb=g.float("outbox_budget_mb", 1024.0, 0.01),
            require_time_sync=g.bool("require_time_sync", True),
            max_in_flight=g.int("max_in_flight", 50, 1, 10000),
            backlog_batches_per_s=g.float("backlog_batches_per_s", 20.0, 0.01),
            mqtt=MqttConfig.from_table(root.table("mqtt", required=False)),
            meters=[],
        )
        g.done()
        ids: set[str] = set()
        for m in root.tables("meters"):
            mid = m.str("id")
            if mid in ids:
                raise m.error("id", f"duplicate meter id {mid!r}")
            ids.add(mid)
            raw = m.raw()
            # Read by the gateway's interval builder, whatever the driver: the meter's largest credible power.
            limit = raw.get("max_power_w")
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0):
                raise m.error("max_power_w", f"{limit!r} must be a positive number of watts (the most this meter "
                                             "can carry; a faster index rise is a discontinuity, not energy)")
            cfg.meters.append(raw)
        if not cfg.meters:
            raise root.error("meters", "at least one [[meters]] entry is required")
        root.done()
        return cfg


@dataclass(frozen=True)
class CloudConfig:
    """``cloud.toml``: keys, gateway registry, broker and the series store."""

    path: Path
    state_dir: Path
    private_key: Path
    gateways: Path
    mqtt: MqttConfig
    store: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> CloudConfig:
        p = Path(path)
        root = Table(load_toml(p), p)
        c = root.table("cloud")
        store = root.table("store", required=False)
        options = store.raw()
        backend = options.get("backend", "sqlite")
        if backend == "sqlite" and "path" in options:
            options["path"] = str(store.path_("path"))
        cfg = cls(
            path=p,
            state_dir=c.path_("state_dir"),
            private_key=c.path_("private_key"),
            gateways=c.path_("gateways"),
            mqtt=MqttConfig.from_table(root.table("mqtt", required=False)),
            store=options,
        )
        c.done()
        root.done()
        return cfg
