"""``quartier demo``: a whole simulated site on embedded defaults.

A mixed simulated site (an Alfen charger over Modbus TCP, an Eastron and a
Schneider meter on one RS485 line in Modbus RTU, a Linky on its TIC
output, each on its real protocol over a real socket or serial line), a local
Mosquitto (TLS, client certificates, ACL), the gateway, and the cloud with its SQLite store, all on loopback,
with simulated time running ``speed`` times faster than real time. It prints
each batch as the cloud stores it, then checks every stored interval against
the energy the simulated meters actually delivered.

It imports every part, so :mod:`cli.main` imports it only when ``quartier demo`` runs.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

from cli.devservers import free_port
from cli.devservers.mosquitto import Mosquitto
from cli.provision import provision_site, toml_document
from cloud.config import CloudConfig
from cloud.ingest import Outcome
from cloud.service import Cloud
from gateway.config import GatewayConfig
from gateway.service import Gateway
from quartier.ack import AckStatus
from quartier.clock import PacedClock
from quartier.errors import MeterError
from quartier.series import INTERVAL_S, Direction, Quality, ceil_quarter, iso_utc
from simulators.modbus_tcp import SimulatedMeter
from simulators.site import load_site

#: Gateway poll period in simulated time: each poll of the RS485 line takes about 0.25 s of real time. [s]
POLL_INTERVAL_S = 60


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``quartier demo`` to the ``quartier`` parser."""
    d = sub.add_parser("demo", help="run a whole simulated site: meters, broker, gateway, cloud")
    d.add_argument("--quarters", type=int, default=8, help="simulated quarter-hours to run (default 8)")
    d.add_argument("--speed", type=float, default=300.0, help="simulated seconds per real second (default 300)")
    d.add_argument("--workdir", help="where to put keys, configs and databases (default: a new temporary folder)")
    d.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """``quartier demo``: exit 0 when every stored interval matches the simulated meters."""
    return run_demo(quarters=args.quarters, speed=args.speed, workdir=Path(args.workdir) if args.workdir else None)


def demo_site(epoch: str) -> tuple[list[dict], list[dict]]:
    """A mixed site: ``([[lines]], [[meters]])`` tables of a site file (see simulators/site.py).

    - ``cp-ac-1``: an Alfen Eve charger read over Modbus TCP (its built-in meter).
    - ``cp-ac-2``, ``pv``: an Eastron SDM72D-M-2 under a charge point and a
      Schneider iEM3155 on the solar inverter (import and export), both on
      one RS485 line at 9600 baud (Modbus RTU).
    - ``linky``: the site's Linky, its TIC output in standard mode (9600 baud, 7E1).
    """
    def steps(pattern: list[int], minutes: int) -> list[dict]:
        # Power changes 7 minutes past the period, never on a quarter-hour boundary,
        # so an interpolated boundary index is right to the rounding (1 Wh).
        out = [{"at": "00:00", "power_w": pattern[-1]}]
        for n, at in enumerate(range(7, 24 * 60, minutes)):
            out.append({"at": f"{at // 60:02d}:{at % 60:02d}", "power_w": pattern[n % len(pattern)]})
        return out

    lines: list[dict] = [
        {"name": "rs485", "link": "rs485", "baudrate": 9600, "parity": "N"},
        {"name": "tic", "link": "tic"},
    ]
    meters: list[dict] = [
        {"id": "cp-ac-1", "model": "alfen_eve", "unit": 1, "initial_index_wh": 1_250_000, "epoch": epoch,
         "profile": steps([7400, 7400, 0, 3700], 30)},
        {"id": "cp-ac-2", "model": "sdm72dm2", "line": "rs485", "unit": 1, "initial_index_wh": 873_420,
         "epoch": epoch, "profile": steps([0, 11000, 11000, 4600], 20)},
        {"id": "pv", "model": "iem3155", "line": "rs485", "unit": 2, "initial_index_wh": 52_300, "epoch": epoch,
         "profile": steps([150, 150, 150], 60),
         "export": {"initial_index_wh": 3_402_100, "profile": steps([2400, 3100, 1800], 20)}},
        {"id": "linky", "tic": "standard", "contract": "HC", "meter_id": "021861348497", "line": "tic",
         "initial_index_wh": 18_402_551, "epoch": epoch, "profile": steps([9000, 4000, 12500, 2000], 30)},
    ]
    return lines, meters


def run_demo(quarters: int = 8, speed: float = 300.0, workdir: Path | None = None) -> int:
    """Run the demo; returns 0 when every stored interval matches the simulated meters."""
    logging.getLogger("quartier.mqtt").setLevel(logging.WARNING)
    own_dir = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="quartier-demo-")) if workdir is None else workdir
    wd.mkdir(parents=True, exist_ok=True)
    print(f"demo folder: {wd}" + (" (removed at the end; keep it with --workdir DIR)" if own_dir else ""))
    # Simulated time starts 60 s before a quarter-hour boundary and moves only
    # when the gateway waits, so each poll is taken at its exact scheduled time.
    start = float(ceil_quarter(time.time()) - 60)
    clock = PacedClock(start, speed)
    epoch = iso_utc(start - start % 86400)

    lines, meters = demo_site(epoch)
    meters[0]["port"] = free_port()
    (wd / "site.toml").write_text(toml_document({"lines": lines, "meters": meters}))
    site = load_site(wd / "site.toml", clock).start()
    gateway_meters = site.gateway_meters()
    for m in gateway_meters:
        if m["driver"] == "tic":
            # Simulated time jumps while a frame crosses the line; the Linky's own DATE says when it sampled.
            m["time_source"] = "meter"
    for m in gateway_meters:
        where = f"{m['device']} ({m.get('baudrate', 9600)} baud)" if "device" in m else f"{m['host']}:{m['port']}"
        what = f"Linky TIC {m['mode']}" if m["driver"] == "tic" else f"{m['model']} unit {m['unit']}"
        print(f"meter {m['id']}: {what} on {where}")

    # As in the field: a site CA, TLS with client certificates, and the per-gateway ACL.
    paths = provision_site(
        wd / "site", gateway_id="gw-demo", mqtt_port=free_port(), meters=gateway_meters, tls=True,
        gateway_options={"poll_interval_s": POLL_INTERVAL_S, "resend_after_s": 5.0},
    )
    print(f"configs: {paths.gateway_config}, {paths.cloud_config}")
    broker = Mosquitto(wd / "broker", port=CloudConfig.load(paths.cloud_config).mqtt.port,
                       tls=paths.broker_tls()).start()
    print(f"broker: mosquitto on 127.0.0.1:{broker.port}, TLS with client certificates from {wd / 'site' / 'pki'}, "
          "per-gateway ACL")
    cloud = Cloud(CloudConfig.load(paths.cloud_config))

    def show(o: Outcome) -> None:
        if o.status is AckStatus.STORED:
            print(f"  cloud stored batch #{o.seq}: {o.n_intervals} interval{'' if o.n_intervals == 1 else 's'}")

    cloud.on_outcome.append(show)
    cloud.start()
    gw = Gateway(GatewayConfig.load(paths.gateway_config), clock)
    gw.start()
    _wait_for_meters(gw)
    end = ceil_quarter(start) + quarters * INTERVAL_S
    print(f"running {quarters} quarter-hours of simulated time at {speed:g}x "
          f"({iso_utc(start)} to {iso_utc(end)}, at least {(end - start) / speed:.0f} s: each poll of the RS485 "
          "line also takes about 0.3 s of real time)...")
    t_run = time.monotonic()
    try:
        gw.run(threading.Event(), until=end + 1)
        # Poll on past the end until every series has its last boundary: a TIC frame sampled on it
        # takes a while (real time) to cross its line, which is several simulated minutes at high speed.
        until, deadline = end + 1, time.monotonic() + 30
        while not all(b.boundary is not None and b.boundary.t >= end for b in gw.builders.values()):
            if time.monotonic() > deadline:
                late = sorted({mid for (mid, _), b in gw.builders.items() if b.boundary is None or b.boundary.t < end})
                print(f"no reading past the last boundary within 30 s from: {', '.join(late)}")
                break
            until += POLL_INTERVAL_S
            gw.run(threading.Event(), until=until)
        drained = gw.drain(timeout_s=30)
        elapsed = time.monotonic() - t_run
        print("\nstored intervals (UTC start, meter, direction, Wh, quality) and the simulator's own figure")
        print("(interpolated: within 2 Wh, the meter's 1 Wh resolution at each boundary):")
        ok = drained
        total = 0
        for m in gateway_meters:
            sim = site.simulated(m["id"])
            if isinstance(sim, SimulatedMeter):
                truths, export = {Direction.IMPORT: sim.profile}, sim.export_profile
            else:
                truths, export = {Direction.IMPORT: sim.model.profile}, sim.model.export_profile
            if export is not None:
                truths[Direction.EXPORT] = export
            for direction, profile in truths.items():
                for i in cloud.store.read_intervals("gw-demo", m["id"], direction=direction):
                    truth = profile.index_wh(i.start + INTERVAL_S) - profile.index_wh(i.start)
                    # An interpolated boundary sits between two readings of 1 Wh resolution and is
                    # rounded to 1 Wh: each boundary may be 1 Wh off, so an interval 2 Wh.
                    tolerance = 0 if i.quality is Quality.MEASURED else 2
                    good = i.energy_wh is not None and abs(i.energy_wh - truth) <= tolerance
                    mark = "ok" if good else "DIFFERS"
                    ok = ok and good
                    total += 1
                    print(f"  {iso_utc(i.start)}  {m['id']:8s} {direction.value:6s} {i.energy_wh!s:>6} Wh  "
                          f"{i.quality.value:12s} simulator {truth:>6} Wh  {mark}")
        print(f"\n{total} intervals stored in {elapsed:.1f} s of real time; "
              f"outbox: {gw.outbox.counts()['pending_batches']} pending; "
              f"rejected messages: {sum(cloud.ledger.rejection_counts().values())}")
        print("demo result:", "every interval matches the meters" if ok else "MISMATCH")
        expected = quarters * (len(gateway_meters) + 1)  # pv also exports
        return 0 if ok and total == expected else 1
    finally:
        gw.close()
        cloud.stop()
        site.stop()
        broker.stop()
        if own_dir:
            shutil.rmtree(wd, ignore_errors=True)


def _wait_for_meters(gw: Gateway, timeout_s: float = 20.0) -> None:
    """Wait (real time) until every meter answers once: the Linky's reader first detects its line's speed."""
    deadline = time.monotonic() + timeout_s
    for meter in gw.meters:
        while True:
            try:
                meter.read(gw.clock.now())
                break
            except MeterError as exc:
                if time.monotonic() > deadline:
                    print(f"meter {meter.meter_id} does not answer yet: {exc}")
                    return
                time.sleep(0.2)
