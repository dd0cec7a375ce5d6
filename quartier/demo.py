"""``quartier demo``: a whole simulated site on embedded defaults.

Three simulated charge-point meters (Eastron SDM630 over Modbus TCP), a local
Mosquitto, the gateway, and the cloud with its SQLite store, all on loopback,
with simulated time running ``speed`` times faster than real time. It prints
each batch as the cloud stores it, then checks every stored interval against
the energy the simulated meters actually delivered.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

from cloud.ingest import Outcome
from cloud.service import Cloud
from gateway.service import Gateway
from quartier.broker import Mosquitto, free_port
from quartier.clock import PacedClock
from quartier.config import CloudConfig, GatewayConfig
from quartier.provision import provision_site, toml_document
from quartier.series import INTERVAL_S, Quality, ceil_quarter, iso_utc
from simulators.profile import LoadProfile
from simulators.site import build_simulators


def demo_site(epoch: str) -> list[dict]:
    """Three chargers with daily profiles that change every few quarter-hours."""
    def steps(pattern: list[int], minutes: int) -> list[dict]:
        # Power changes 7 minutes past the period, never on a quarter-hour boundary,
        # so an interpolated boundary index is right to the rounding (1 Wh).
        out = [{"at": "00:00", "power_w": pattern[-1]}]
        for n, at in enumerate(range(7, 24 * 60, minutes)):
            out.append({"at": f"{at // 60:02d}:{at % 60:02d}", "power_w": pattern[n % len(pattern)]})
        return out

    return [
        {"id": "cp-ac-1", "model": "sdm630", "unit": 1, "initial_index_wh": 1_250_000, "epoch": epoch,
         "profile": steps([7400, 7400, 0, 3700], 30)},
        {"id": "cp-ac-2", "model": "sdm630", "unit": 2, "initial_index_wh": 873_420, "epoch": epoch,
         "profile": steps([0, 11000, 11000, 4600], 20)},
        {"id": "cp-dc-1", "model": "sdm630", "unit": 1, "initial_index_wh": 4_002_117, "epoch": epoch,
         "profile": steps([22000, 0, 0, 16000, 8000], 15)},
    ]


def run_demo(quarters: int = 8, speed: float = 300.0, workdir: Path | None = None) -> int:
    """Run the demo; returns 0 when every stored interval matches the simulated meters."""
    logging.getLogger("quartier.mqtt").setLevel(logging.WARNING)
    own_dir = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="quartier-demo-")) if workdir is None else workdir
    wd.mkdir(parents=True, exist_ok=True)
    print(f"demo folder: {wd}")
    # Simulated time starts 60 s before a quarter-hour boundary and moves only
    # when the gateway waits, so each poll is taken at its exact scheduled time.
    start = float(ceil_quarter(time.time()) - 60)
    clock = PacedClock(start, speed)
    epoch = iso_utc(start - start % 86400)

    broker = Mosquitto(wd / "broker").start()
    print(f"broker: mosquitto on 127.0.0.1:{broker.port}")
    port_a, port_b = free_port(), free_port()
    site = demo_site(epoch)
    site[0]["port"] = site[1]["port"] = port_a  # two chargers behind one Modbus TCP endpoint
    site[2]["port"] = port_b
    (wd / "site.toml").write_text(toml_document({"meters": site}))
    sims = build_simulators(site, clock, str(wd / "site.toml"))
    for s in sims:
        s.start()
    print(f"meters: {', '.join(m['id'] + ' (' + m['model'] + ' unit ' + str(m['unit']) + ' on :' + str(m['port']) + ')' for m in site)}")

    paths = provision_site(
        wd / "site", gateway_id="gw-demo", mqtt_port=broker.port,
        meters=[{"id": m["id"], "driver": "modbus", "model": m["model"], "host": "127.0.0.1", "port": m["port"],
                 "unit": m["unit"]} for m in site],
        gateway_options={"poll_interval_s": 10, "resend_after_s": 5.0},
    )
    print(f"configs: {paths.gateway_config}, {paths.cloud_config}")
    cloud = Cloud(CloudConfig.load(paths.cloud_config))

    def show(o: Outcome) -> None:
        if o.status == "stored":
            print(f"  cloud stored batch #{o.seq}: {o.n_intervals} intervals")

    cloud.on_outcome.append(show)
    cloud.start()
    gw = Gateway(GatewayConfig.load(paths.gateway_config), clock)
    gw.start()
    end = ceil_quarter(start) + quarters * INTERVAL_S
    print(f"running {quarters} quarter-hours of simulated time at {speed:g}x "
          f"({iso_utc(start)} to {iso_utc(end)}, about {(end - start) / speed:.0f} s)...")
    t_run = time.monotonic()
    try:
        gw.run(threading.Event(), until=end + 1)
        drained = gw.drain(timeout_s=30)
        elapsed = time.monotonic() - t_run
        print("\nstored intervals (UTC start, meter, Wh, quality) and the simulator's own figure")
        print("(interpolated: within 2 Wh, the meter's 1 Wh resolution at each boundary):")
        ok = drained
        profiles = {m["id"]: LoadProfile.from_config({k: m[k] for k in ("initial_index_wh", "epoch", "profile")})
                    for m in site}
        total = 0
        for m in site:
            for i in cloud.store.read_intervals("gw-demo", m["id"]):
                truth = profiles[m["id"]].index_wh(i.start + INTERVAL_S) - profiles[m["id"]].index_wh(i.start)
                # An interpolated boundary sits between two readings of 1 Wh resolution and is
                # rounded to 1 Wh: each boundary may be 1 Wh off, so an interval 2 Wh.
                tolerance = 0 if i.quality is Quality.MEASURED else 2
                good = i.energy_wh is not None and abs(i.energy_wh - truth) <= tolerance
                mark = "ok" if good else "DIFFERS"
                ok = ok and good
                total += 1
                print(f"  {iso_utc(i.start)}  {m['id']:8s} {i.energy_wh!s:>6} Wh  {i.quality.value:12s} "
                      f"simulator {truth:>6} Wh  {mark}")
        print(f"\n{total} intervals stored in {elapsed:.1f} s of real time; "
              f"outbox: {gw.outbox.counts()['pending_batches']} pending; "
              f"rejected messages: {sum(cloud.ledger.rejection_counts().values())}")
        print("demo result:", "every interval matches the meters" if ok else "MISMATCH")
        return 0 if ok and total == quarters * len(site) else 1
    finally:
        gw.close()
        cloud.stop()
        for s in sims:
            s.stop()
        broker.stop()
        if own_dir:
            shutil.rmtree(wd, ignore_errors=True)
