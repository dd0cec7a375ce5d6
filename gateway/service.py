"""The gateway process: poll meters, build intervals, seal batches, publish them.

One loop on the injected clock polls every meter every ``poll_interval_s``,
on times that fall exactly on every quarter-hour boundary. New intervals go
into the outbox in one transaction with the aggregation state; the outbox is
then drained to MQTT and a batch leaves it only on the cloud's acknowledgement.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gateway.config import GatewayConfig
from gateway.drivers import MeterContext, open_meter
from gateway.drivers.base import Meter, Reading
from gateway.intervals import IntervalBuilder
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.timesync import clock_synchronised
from quartier import batch, envelope
from quartier.clock import Clock, SystemClock
from quartier.errors import MeterError, MeterNotReadyError
from quartier.keys import load_cloud_public, load_gateway_private
from quartier.mqtt import MqttLink
from quartier.series import Direction, Interval
from quartier.topics import METERS_ALARM, ack_topic, batch_topic, live_topic, status_topic

log = logging.getLogger(__name__)

#: A wall-clock step larger than this between two polls is logged as a jump. [s]
WALL_CLOCK_JUMP_S = 60.0


@dataclass
class GatewayStats:
    polls: int = 0
    read_errors: dict[str, int] = field(default_factory=dict)
    intervals_built: int = 0
    batches_sealed: int = 0
    clock_jumps: int = 0
    outbox_bytes: int = 0
    poll_overruns: int = 0
    last_cycle_s: float = 0.0


class Gateway:
    """A running gateway; :meth:`poll_once` is one whole cycle, :meth:`run` loops on the clock."""

    def __init__(self, config: GatewayConfig, clock: Clock, meters: Sequence[Meter] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.gateway_id = config.gateway_id
        self._signing_key = load_gateway_private(config.signing_key)
        self._cloud_key = load_cloud_public(config.cloud_public_key)
        self.outbox = Outbox(config.outbox_path)
        if meters is None:
            context = MeterContext(clock)  # meters on one Modbus endpoint share one bus
            meters = [open_meter(m, context=context) for m in config.meters]
        self.meters = list(meters)
        self._states = self.outbox.meter_states()
        self.builders: dict[tuple[str, Direction], IntervalBuilder] = {}
        for m in self.meters:
            self._builder(m.meter_id, Direction.IMPORT)
        # Meters on different buses are read in parallel; the meters of one bus one after the other.
        self._bus_groups = _group_by_bus(self.meters)
        self._readers = ThreadPoolExecutor(max_workers=len(self._bus_groups), thread_name_prefix="gw-bus")
        self.stats = GatewayStats()
        self.publisher = Publisher(
            self.outbox,
            lambda envelope: self.mqtt.publish(batch_topic(self.gateway_id), envelope, qos=1),
            max_in_flight=config.max_in_flight,
            resend_after_s=config.resend_after_s,
            backlog_batches_per_s=config.backlog_batches_per_s,
        )
        self._failing: set[str] = set()
        self._last_times: tuple[float, float] | None = None  # (wall, monotonic) at the last poll
        self._overrunning = False  # the last poll cycle outlasted poll_interval_s
        self._starting: set[str] = set()  # meters said to be starting (MeterNotReadyError), said once each
        self._budget_level = 0.0  # the outbox budget alarm level last reported
        self.mqtt = MqttLink(
            client_id=f"quartier-gw-{self.gateway_id}",
            host=config.mqtt.host,
            port=config.mqtt.port,
            subscriptions=[(ack_topic(self.gateway_id), 1)],
            on_message=lambda msg: self.publisher.on_ack(msg.topic, msg.payload),
            keepalive_s=config.mqtt.keepalive_s,
            tls_ca=config.mqtt.tls_ca,
            tls_cert=config.mqtt.tls_cert,
            tls_key=config.mqtt.tls_key,
            status_topic=status_topic(self.gateway_id),
            status_payload=self.status_document,
        )
        self._published_health: tuple[object, ...] | None = None
        self._written_health: tuple[object, ...] | None = None

    def start(self) -> None:
        self.mqtt.start()

    def health(self) -> dict[str, object]:
        """What the status topic says while online: alarms, failing meters, the outbox against its budget.

        ``t`` is the gateway's clock [s UTC] when the document was made: a receiver keeps the newest, since a
        message resent after a reconnection can arrive after a newer one.
        """
        budget = int(self.config.outbox_budget_mb * 1024 * 1024)
        alarms = []
        if self._budget_level:
            alarms.append(f"outbox over {self._budget_level:.0%} of its {self.config.outbox_budget_mb:g} MB budget")
        if self._failing:
            alarms.append(f"{METERS_ALARM}: {', '.join(sorted(self._failing))}")
        return {
            "state": "online",
            "t": round(self.clock.now(), 3),
            "alarms": alarms,
            "failing_meters": sorted(self._failing),
            "outbox_bytes": self.stats.outbox_bytes,
            "outbox_budget_bytes": budget,
            "clock_jumps": self.stats.clock_jumps,
        }

    def status_document(self) -> bytes:
        """The retained status message: :meth:`health` as compact JSON."""
        return json.dumps(self.health(), separators=(",", ":"), sort_keys=True).encode()

    def _publish_health_if_changed(self) -> None:
        """Publish the status when an alarm or the set of failing meters changed (not on every poll)."""
        key = (self._budget_level, tuple(sorted(self._failing)), self.stats.clock_jumps)
        if key != self._written_health:
            self._write_health()
            self._written_health = key
        if key != self._published_health and self.mqtt.publish(
            status_topic(self.gateway_id), self.status_document(), qos=0, retain=True  # see MqttLink: a state
        ):
            self._published_health = key

    def _write_health(self) -> None:
        """Keep the health document in ``state_dir`` for ``quartier gateway status`` (written when it changes)."""
        path = self.config.status_path
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_bytes(self.status_document())
            tmp.replace(path)
        except OSError as e:
            log.warning("cannot write %s: %s", path, e.strerror)

    def close(self) -> None:
        self.mqtt.stop()
        self._readers.shutdown(wait=True)
        for m in self.meters:
            m.close()
        self.outbox.close()

    def poll_once(self) -> list[Interval]:
        """Read every meter once, seal what completed, publish what is due."""
        t = self.clock.now()
        self.stats.polls += 1
        new: list[Interval] = []
        live: dict[str, dict[str, float | int | None]] = {}
        results = self._readers.map(self._read_bus, self._bus_groups)
        for group, readings in zip(self._bus_groups, results):
            for meter, reading in zip(group, readings):
                if isinstance(reading, MeterError):
                    self._meter_failed(meter.meter_id, reading)
                    continue
                live[meter.meter_id] = _live_values(reading)
                if meter.meter_id in self._failing:
                    self._failing.discard(meter.meter_id)
                    log.info("meter %s answers again", meter.meter_id,
                             extra={"event": "meter-answering", "meter": meter.meter_id})
                new.extend(self._builder(meter.meter_id, Direction.IMPORT).add(reading.t, reading.import_wh))
                if reading.export_wh is not None:
                    new.extend(self._builder(meter.meter_id, Direction.EXPORT).add(reading.t, reading.export_wh))
        states = {_state_key(mid, d): b.state() for (mid, d), b in self.builders.items()}
        if new:
            created_ms = int(t * 1000)

            def seal(seq: int) -> tuple[bytes, int, int]:
                payload = batch.encode(self.gateway_id, seq, new)
                env = envelope.seal(
                    payload,
                    gateway_id=self.gateway_id,
                    seq=seq,
                    created_ms=created_ms,
                    signing_key=self._signing_key,
                    cloud_public_key=self._cloud_key,
                )
                return env, created_ms, len(new)

            self.outbox.commit(states, seal)
            self.stats.intervals_built += len(new)
            self.stats.batches_sealed += 1
        else:
            self.outbox.commit(states)
        if live and self.config.live_values:
            # QoS 0, not retained: live curves only; a lost message is simply the next poll's business.
            payload = json.dumps({"t": round(t, 3), "meters": live}, separators=(",", ":")).encode()
            self.mqtt.publish(live_topic(self.gateway_id), payload, qos=0)
        self.publish_due()
        return new

    def _read_bus(self, meters: list[Meter]) -> list[Reading | MeterError]:
        """Read the meters of one bus in turn; a failure is returned, not raised."""
        out: list[Reading | MeterError] = []
        for meter in meters:
            try:
                # Stamp each reading with its own time: a slow bus must not skew the next meter.
                out.append(meter.read(self.clock.now()))
            except MeterError as e:
                out.append(e)
            except Exception as e:  # noqa: BLE001 - a driver's bug must not stop the other meters or the loop
                if meter.meter_id not in self._failing:
                    log.exception("meter %s: unexpected error in its driver", meter.meter_id)
                out.append(MeterError(f"meter {meter.meter_id}: unexpected driver error: {e!r}"))
        return out

    def _builder(self, meter_id: str, direction: Direction) -> IntervalBuilder:
        """The interval builder of one meter's index, created (and resumed from the outbox) on first use."""
        builder = self.builders.get((meter_id, direction))
        if builder is None:
            state = self._states.get(_state_key(meter_id, direction))
            meter = next((m for m in self.meters if m.meter_id == meter_id), None)
            builder = IntervalBuilder(
                meter_id,
                self.config.max_gap_s,
                state,
                direction,
                max_estimate_gap_s=self.config.max_estimate_gap_s,
                wrap_wh=getattr(meter, "index_wrap_wh", None),
                max_power_w=next((m.max_power_w for m in self.config.meters if m.id == meter_id), None),
            )
            self.builders[meter_id, direction] = builder
        return builder

    def publish_due(self) -> int:
        """Publish what is due (:meth:`gateway.publisher.Publisher.publish_due`); returns how many batches."""
        return self.publisher.publish_due()

    def run(self, stop: threading.Event, until: float | None = None) -> None:
        """Poll on every multiple of poll_interval_s until ``stop`` is set or the clock passes ``until``.

        On the system clock (in the field) with ``require_time_sync``, nothing is polled until the kernel
        says the clock is synchronised (a Pi without RTC boots with a wrong time: no interval may carry it).
        """
        step = self.config.poll_interval_s
        if isinstance(self.clock, SystemClock) and self.config.require_time_sync:
            self._wait_for_time_sync(stop)
        while not stop.is_set():
            now = self.clock.now()
            if until is not None and now > until:
                return
            self._check_wall_clock(now)
            self.poll_once()
            self._check_cycle_time(now, self.clock.now())
            self._check_outbox_budget()
            self._publish_health_if_changed()
            next_t = (int(now // step) + 1) * step
            wait = next_t - self.clock.now()
            # Wake at least once a real second to drain acks and resend.
            while wait > 0 and not stop.is_set():
                chunk = min(wait, self.clock.speed)
                self.clock.sleep(chunk)
                self.publish_due()
                wait = next_t - self.clock.now()

    def _check_cycle_time(self, started: float, ended: float) -> None:
        """Warn once, with the cycle time, when a poll cycle outlasts ``poll_interval_s``; say when it fits again.

        A cycle that overruns makes the next poll late (the loop waits for the next multiple of the interval, so
        whole polls are skipped); boundaries are then interpolated from polls further apart. [s of the clock]
        """
        cycle = ended - started
        self.stats.last_cycle_s = cycle
        step = self.config.poll_interval_s
        if cycle > step:
            self.stats.poll_overruns += 1
            if not self._overrunning:
                log.warning("poll cycle took %.1f s, more than poll_interval_s = %d s: polls are skipped; put fewer "
                            "meters on one line, raise its baud rate, or raise poll_interval_s (a divisor of 900)",
                            cycle, step, extra={"event": "poll-overrun", "cycle_s": round(cycle, 3)})
            self._overrunning = True
        elif self._overrunning:
            self._overrunning = False
            log.info("poll cycle back within poll_interval_s (%.1f s of %d s)", cycle, step,
                     extra={"event": "poll-overrun-cleared", "cycle_s": round(cycle, 3)})

    def _wait_for_time_sync(self, stop: threading.Event, check_every_s: float = 5.0) -> None:
        """Block until the system clock is synchronised (or the kernel cannot tell); logs once."""
        logged = False
        while not stop.is_set() and clock_synchronised() is False:
            if not logged:
                log.warning("system clock not synchronised (no NTP yet): not polling until it is, so that no "
                            "interval carries a wrong time; check network access and systemd-timesyncd")
                logged = True
            stop.wait(check_every_s)
        if logged:
            log.info("system clock synchronised; polling starts")

    def _check_wall_clock(self, now: float) -> None:
        """Log a jump of the wall clock against the monotonic clock (NTP stepping the time, a manual change)."""
        mono = time.monotonic()
        if self._last_times is not None and isinstance(self.clock, SystemClock):
            last_wall, last_mono = self._last_times
            jump = (now - last_wall) - (mono - last_mono)
            if abs(jump) > WALL_CLOCK_JUMP_S:
                self.stats.clock_jumps += 1
                log.warning("wall clock jumped by %+.0f s; readings before and after are kept in time order, "
                            "boundaries across the jump are estimated or missing", jump,
                            extra={"event": "clock-jump", "jump_s": round(jump, 3)})
        self._last_times = (now, mono)

    def _check_outbox_budget(self) -> None:
        """Alarm (log, stats) when the outbox passes half, then 90 % of its disk budget; never drops a batch."""
        used = self.outbox.size_bytes()
        budget = int(self.config.outbox_budget_mb * 1024 * 1024)
        level = next((f for f in (0.9, 0.5) if used >= f * budget), 0.0)
        if level > self._budget_level:
            counts = self.outbox.counts()
            log.error("outbox at %.0f %% of its %g MB budget (%d batches waiting): the link to the cloud has been "
                      "down long; nothing is dropped, but free disk space or restore the link",
                      100 * used / budget, self.config.outbox_budget_mb, counts["pending_batches"],
                      extra={"event": "outbox-budget", "outbox_bytes": used, "budget_bytes": budget})
        elif level < self._budget_level:
            log.info("outbox back under %.0f %% of its budget", 100 * self._budget_level,
                     extra={"event": "outbox-budget-cleared", "outbox_bytes": used, "budget_bytes": budget})
        self._budget_level = level
        self.stats.outbox_bytes = used

    def drain(self, timeout_s: float) -> bool:
        """Keep publishing until the outbox has no pending batch or ``timeout_s`` real seconds pass."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.outbox.counts()["pending_batches"] == 0:
                return True
            self.publish_due()
            time.sleep(0.05)
        return self.outbox.counts()["pending_batches"] == 0

    def _meter_failed(self, meter_id: str, err: MeterError) -> None:
        if isinstance(err, MeterNotReadyError):  # still starting (a Linky's speed being detected): not a failure
            if meter_id not in self._starting:
                self._starting.add(meter_id)
                log.info("%s", err, extra={"event": "meter-starting", "meter": meter_id})
            return
        self.stats.read_errors[meter_id] = self.stats.read_errors.get(meter_id, 0) + 1
        if meter_id not in self._failing:
            self._failing.add(meter_id)
            log.error("%s (logged once; next message when meter %s answers again)", err, meter_id,
                      extra={"event": "meter-failing", "meter": meter_id})


def _state_key(meter_id: str, direction: Direction) -> str:
    """Key of a builder's state in the outbox: ``import/cp1``, ``export/cp1``."""
    return f"{direction.value}/{meter_id}"


def _group_by_bus(meters: Sequence[Meter]) -> list[list[Meter]]:
    """The meters grouped by the bus they share (a meter without a ``bus`` attribute is alone), in order."""
    groups: dict[int, list[Meter]] = {}
    for meter in meters:
        bus = getattr(meter, "bus", None)
        groups.setdefault(id(bus) if bus is not None else id(meter), []).append(meter)
    return list(groups.values())


def _live_values(reading: Reading) -> dict[str, float | int | None]:
    """What the live topic says of one meter: power [W] (apparent power [VA] for a TIC meter) and indexes [Wh]."""
    values: dict[str, float | int | None] = {"t": round(reading.t, 3), "import_wh": reading.import_wh}
    if reading.export_wh is not None:
        values["export_wh"] = reading.export_wh
    if reading.power_w is not None:
        values["power_w"] = round(reading.power_w, 1)
    for key in ("apparent_power_va", "apparent_power_export_va"):
        if key in reading.values:
            values[key] = reading.values[key]
    return values
