"""``gateway.toml``, validated at start (errors name the file, the key and the problem)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.drivers import parse_meter
from gateway.drivers.base import MeterConfig
from quartier.config import MqttConfig, Table, load_toml


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
    meters: list[MeterConfig] = field(default_factory=list)
    """Each ``[[meters]]`` table, validated by its driver (:func:`gateway.drivers.parse_meter`)."""

    @property
    def outbox_path(self) -> Path:
        """The outbox (sealed batches and the builders' state), in ``state_dir``."""
        return self.state_dir / "outbox.sqlite"

    @property
    def status_path(self) -> Path:
        """The gateway's last health document (:meth:`gateway.service.Gateway.health`), read by ``gateway status``."""
        return self.state_dir / "status.json"

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
            limit = raw.pop("max_power_w", None)
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0):
                raise m.error("max_power_w", f"{limit!r} must be a positive number of watts (the most this meter "
                                             "can carry; a faster index rise is a discontinuity, not energy)")
            meter = parse_meter(raw, str(p))
            cfg.meters.append(replace(meter, max_power_w=None if limit is None else float(limit)))
        if not cfg.meters:
            raise root.error("meters", "at least one [[meters]] entry is required")
        root.done()
        return cfg
