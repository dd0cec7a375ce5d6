"""Throughput of Quartier's data path, each figure as a ratio to a raw baseline measured in the same run.

Run from the repository root: ``python bench/pipeline.py`` (about 30-60 s on 2 cores).

What is measured (best of a few repeats, ``time.perf_counter``):

1. Store writes: intervals/s through ``SqliteStore.write_intervals`` in batches of
   100, against plain ``sqlite3`` ``executemany`` INSERTs of the same rows, also
   100 per transaction, into a bare table (no key) of a fresh WAL file opened
   with synchronous=NORMAL like the store. Same for
   ``InfluxStore`` against raw HTTP POSTs of prebuilt line-protocol bodies (100
   points each) to ``/write`` on an ``influxd`` this script starts (skipped when
   ``influxd`` is not installed).
2. Sealing: batches/s of ``envelope.seal`` + ``envelope.open_verified`` of a
   3-interval payload, against JSON encoding + decoding of the same payload.
3. Whole path: intervals/s from the first poll of 10 simulated SDM630 meters
   (Modbus TCP, one simulator, ManualClock, poll_interval_s = 900 so every poll is
   a quarter-hour boundary, 96 quarters) through the gateway, a real Mosquitto and
   the cloud into the SQLite store (and the InfluxDB store when ``influxd`` is
   there), until ``gateway.drain`` sees an empty outbox; every stored interval is
   checked. Best of 3 runs, each on a fresh site and broker. Baseline: QoS 1
   messages of a real 10-interval envelope's size published by one paho client
   and counted by another on the same broker, times 10 intervals per message.
   Time spent in the gateway's and the cloud's steps is printed below the table.

How to read the ratios: ratio = result rate / baseline rate. 1.0 means the
product runs as fast as the raw mechanism beneath it; 0.25 means it reaches a
quarter of it (the product's own overhead costs 3/4 of the time). For sealing,
the ratio is the share of time left once the crypto is added (1/ratio = how many
times slower than JSON alone).
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
import requests  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from cli.devservers import free_port  # noqa: E402
from cli.devservers.influxd import Influxd  # noqa: E402
from cli.devservers.mosquitto import Mosquitto  # noqa: E402
from cli.provision import provision_site  # noqa: E402
from cloud.config import CloudConfig  # noqa: E402
from cloud.service import Cloud  # noqa: E402
from cloud.stores.influx import InfluxStore  # noqa: E402
from cloud.stores.sqlite import SqliteStore  # noqa: E402
from gateway.config import GatewayConfig  # noqa: E402
from gateway.service import Gateway  # noqa: E402
from quartier import batch, envelope  # noqa: E402
from quartier.clock import ManualClock  # noqa: E402
from quartier.series import Interval, Quality  # noqa: E402
from simulators.site import build_simulators  # noqa: E402

T0 = 1_768_780_800  # 2026-01-19T00:00:00Z
GATEWAY = "gw-bench"
STORE_ROWS = 20_000
STORE_BATCH = 100
METERS = 10
QUARTERS = 96
REPEATS = 5
PATH_REPEATS = 3


@dataclass
class Row:
    name: str
    result: float
    unit: str
    baseline_name: str
    baseline: float

    @property
    def ratio(self) -> float:
        return self.result / self.baseline


def best_time(fn: Callable[[], Any], repeats: int = REPEATS, setup: Callable[[], Any] | None = None) -> float:
    """Shortest wall time of ``fn()`` over ``repeats`` runs; ``setup()`` runs untimed before each. [s]"""
    best = float("inf")
    for _ in range(repeats):
        if setup is not None:
            setup()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def make_intervals(n: int, meters: int = METERS) -> list[Interval]:
    """``n`` measured intervals spread over ``meters`` meters, consecutive quarter-hours per meter."""
    out = []
    for k in range(n):
        m, q = k % meters, k // meters
        wh = 250 * (m + 1)
        i0 = 1_000_000 + q * wh
        out.append(Interval(f"m{m:02d}", T0 + 900 * q, wh, i0, i0 + wh, Quality.MEASURED))
    return out


def chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


# --- 1. stores -------------------------------------------------------------------------------------------------


def bench_sqlite(tmp: Path) -> Row:
    ivs = make_intervals(STORE_ROWS)
    rows = [(GATEWAY, i.meter_id, i.start, i.energy_wh, i.index_start_wh, i.index_end_wh, i.quality.value) for i in ivs]
    run = iter(range(10**6))
    state: dict[str, Any] = {}

    def fresh(kind: str) -> Path:
        return tmp / f"{kind}-{next(run)}.sqlite"

    def store_setup() -> None:
        state["store"] = SqliteStore(str(fresh("store")))

    def store_run() -> None:
        for c in chunks(ivs, STORE_BATCH):
            state["store"].write_intervals(GATEWAY, c)
        state["store"].close()

    def raw_setup() -> None:
        conn = sqlite3.connect(fresh("raw"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # as quartier/sqlite.py opens the store
        conn.execute("CREATE TABLE t (gateway_id, meter_id, start, energy_wh, index_start_wh, index_end_wh, quality)")
        state["conn"] = conn

    def raw_run() -> None:
        conn = state["conn"]
        for c in chunks(rows, STORE_BATCH):
            with conn:
                conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", c)
        conn.close()

    t_store = best_time(store_run, setup=store_setup)
    t_raw = best_time(raw_run, setup=raw_setup)
    return Row("store write: SqliteStore, 100/batch", STORE_ROWS / t_store, "intervals/s",
               "sqlite3 executemany, bare WAL table", STORE_ROWS / t_raw)


@contextmanager
def influxd(tmp: Path) -> Iterator[str | None]:
    """A throw-away ``influxd`` (cli.devservers.influxd, as the tests use); yields its URL, or None if absent."""
    if not Influxd.available():
        yield None
        return
    server = Influxd(tmp / "influxd").start()
    try:
        yield server.url
    finally:
        server.stop()


def line_protocol(iv: Interval) -> str:
    return (
        f"energy_interval,gateway={GATEWAY},meter={iv.meter_id} wh={iv.energy_wh}i,"
        f'index_start_wh={iv.index_start_wh}i,index_end_wh={iv.index_end_wh}i,quality="{iv.quality.value}" {iv.start}'
    )


def bench_influx(url: str) -> Row:
    ivs = make_intervals(STORE_ROWS)
    bodies = ["\n".join(line_protocol(i) for i in c).encode() for c in chunks(ivs, STORE_BATCH)]
    run = iter(range(10**6))
    session = requests.Session()
    state: dict[str, Any] = {}

    def store_setup() -> None:
        state["store"] = InfluxStore(url, f"bench_store_{next(run)}")  # creates the database

    def store_run() -> None:
        for c in chunks(ivs, STORE_BATCH):
            state["store"].write_intervals(GATEWAY, c)
        state["store"].close()

    def raw_setup() -> None:
        state["db"] = db = f"bench_raw_{next(run)}"
        session.post(f"{url}/query", params={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()

    def raw_run() -> None:
        for body in bodies:
            r = session.post(f"{url}/write", params={"db": state["db"], "precision": "s"}, data=body)
            if r.status_code != 204:
                raise RuntimeError(f"raw write failed: {r.status_code} {r.text}")

    t_store = best_time(store_run, setup=store_setup)
    t_raw = best_time(raw_run, setup=raw_setup)
    session.close()
    return Row("store write: InfluxStore, 100/batch", STORE_ROWS / t_store, "intervals/s",
               "HTTP POST /write, prebuilt lines", STORE_ROWS / t_raw)


# --- 2. sealing -------------------------------------------------------------------------------------------------


def bench_sealing() -> tuple[Row, dict[str, float]]:
    sign, cloud = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    verify_key, cloud_pub = sign.public_key(), cloud.public_key()
    payload = batch.encode(GATEWAY, 1, make_intervals(3))
    doc = json.loads(payload)
    n_seal, n_json = 300, 20_000

    def seal_one() -> bytes:
        return envelope.seal(payload, gateway_id=GATEWAY, seq=1, created_ms=T0 * 1000,
                             signing_key=sign, cloud_public_key=cloud_pub)

    sealed = seal_one()
    assert envelope.open_verified(sealed, verify_key, cloud)[1] == payload

    def crypto() -> None:
        for _ in range(n_seal):
            envelope.open_verified(seal_one(), verify_key, cloud)

    def plain_json() -> None:
        for _ in range(n_json):
            json.loads(json.dumps(doc, separators=(",", ":")).encode())

    def seal_only() -> None:
        for _ in range(n_seal):
            seal_one()

    def open_only() -> None:
        for _ in range(n_seal):
            envelope.open_verified(sealed, verify_key, cloud)

    row = Row("seal + open_verified, 3 intervals", n_seal / best_time(crypto), "batches/s",
              "json dumps + loads of the payload", n_json / best_time(plain_json))
    parts = {"seal": best_time(seal_only) / n_seal * 1e6, "open_verified": best_time(open_only) / n_seal * 1e6,
             "json": 1e6 / row.baseline}
    return row, parts


# --- 3. whole path ----------------------------------------------------------------------------------------------


def envelope_size(n_intervals: int) -> int:
    """Size of a real sealed batch of ``n_intervals`` intervals. [bytes]"""
    payload = batch.encode(GATEWAY, 1, make_intervals(n_intervals))
    return len(envelope.seal(payload, gateway_id=GATEWAY, seq=1, created_ms=T0 * 1000,
                             signing_key=Ed25519PrivateKey.generate(),
                             cloud_public_key=X25519PrivateKey.generate().public_key()))


def mqtt_rate(port: int, size: int, n: int = 2000) -> float:
    """QoS 1 messages/s of ``size`` bytes from one paho client to another through the broker."""
    got, done = [0], threading.Event()

    def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        got[0] += 1
        if got[0] == n:
            done.set()

    def client(name: str) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=paho.MQTTv311)
        connected = threading.Event()
        c.on_connect = lambda *a: connected.set()
        c.connect("127.0.0.1", port)
        c.loop_start()
        if not connected.wait(10):
            raise RuntimeError("paho client did not connect")
        return c

    sub, pub = client("bench-sub"), client("bench-pub")
    sub.on_message = on_message
    sub.subscribe("bench/raw", qos=1)
    time.sleep(0.2)  # let the SUBACK arrive
    payload = os.urandom(size)
    best = float("inf")
    for _ in range(REPEATS):
        got[0] = 0
        done.clear()
        t = time.perf_counter()
        for _ in range(n):
            pub.publish("bench/raw", payload, qos=1)
        if not done.wait(60):
            raise RuntimeError(f"raw MQTT: only {got[0]} of {n} messages arrived")
        best = min(best, time.perf_counter() - t)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return n / best


GATEWAY_PARTS = (
    "gateway: Modbus meter reads",
    "  of which Modbus requests",
    "gateway: batch encode + seal + outbox commit",
    "gateway: publish_due",
)
CLOUD_PARTS = ("cloud: ingest (verify, decrypt, store, ledger)", "  of which store writes")


class Timers:
    """Accumulated wall time per label, by wrapping bound methods on instances (product code untouched)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def wrap(self, obj: Any, method: str, label: str) -> None:
        inner = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                with self._lock:
                    self.total[label] += time.perf_counter() - t
                    self.calls[label] += 1

        setattr(obj, method, timed)


@dataclass
class PathRun:
    elapsed: float  # first poll to empty outbox [s]
    polled: float  # first poll to the end of the last poll [s]
    stored: int
    timers: Timers
    ingest_counts: dict[str, int]
    sealed: int
    publishes: int


def run_path(tmp: Path, broker: Mosquitto, store: dict[str, Any], gateway_id: str) -> PathRun:
    """One day of 15-minute polls of METERS simulated SDM630s into ``store``; checks every stored interval."""
    clock = ManualClock(T0)
    port = free_port()
    sim_meters: list[dict[str, Any]] = [
        {"id": f"m{k:02d}", "model": "sdm630", "unit": k + 1, "port": port, "initial_index_wh": 1_000_000 * k,
         "epoch": "2026-01-19T00:00:00Z", "profile": [{"at": "00:00", "power_w": 1000 * (k + 1)}]}
        for k in range(METERS)
    ]
    sims = build_simulators(sim_meters, clock)
    for s in sims:
        s.start()
    site = provision_site(
        tmp, gateway_id=gateway_id, mqtt_port=broker.port, store=store,
        meters=[{"id": m["id"], "driver": "modbus", "model": "sdm630", "host": "127.0.0.1", "port": port,
                 "unit": m["unit"], "timeout_s": 1.0} for m in sim_meters],
        gateway_options={"poll_interval_s": 900},
    )
    cloud = Cloud(CloudConfig.load(site.cloud_config))
    gw = Gateway(GatewayConfig.load(site.gateway_config), clock)
    timers = Timers()
    for meter in gw.meters:
        timers.wrap(meter, "read", GATEWAY_PARTS[0])
    timers.wrap(getattr(gw.meters[0], "bus"), "read_registers", GATEWAY_PARTS[1])  # all meters share this bus
    timers.wrap(gw.outbox, "commit", GATEWAY_PARTS[2])
    timers.wrap(gw, "publish_due", GATEWAY_PARTS[3])
    timers.wrap(cloud.ingestor, "handle", CLOUD_PARTS[0])
    timers.wrap(cloud.store, "write_intervals", CLOUD_PARTS[1])
    try:
        cloud.start()
        gw.start()
        if not (cloud.mqtt.wait_connected(10) and gw.mqtt.wait_connected(10)):
            raise RuntimeError("gateway or cloud did not connect to the broker")
        t0 = time.perf_counter()
        gw.run(threading.Event(), until=T0 + QUARTERS * 900)
        t_polled = time.perf_counter()
        if not gw.drain(timeout_s=60):
            raise RuntimeError(f"outbox not drained: {gw.outbox.counts()}")
        elapsed = time.perf_counter() - t0
        stored = 0
        for k, sim in enumerate(sim_meters):
            ivs = cloud.store.read_intervals(gateway_id, sim["id"])
            stored += len(ivs)
            wrong = [i for i in ivs if i.energy_wh != 250 * (k + 1) or i.quality is not Quality.MEASURED]
            if wrong:
                raise RuntimeError(f"{sim['id']}: {len(wrong)} intervals with wrong energy, e.g. {wrong[0]}")
        if stored != METERS * QUARTERS:
            raise RuntimeError(f"stored {stored} intervals, expected {METERS * QUARTERS}")
        if gw.stats.read_errors:
            raise RuntimeError(f"meter read errors: {gw.stats.read_errors}")
    finally:
        gw.close()
        cloud.stop()
        for s in sims:
            s.stop()
    counts = dict(cloud.ingestor.counts)
    return PathRun(elapsed, t_polled - t0, stored, timers, counts, gw.stats.batches_sealed,
                   gw.publisher.stats.publishes)


def bench_path(tmp: Path, store: dict[str, Any], label: str) -> tuple[Row, PathRun]:
    """Best of PATH_REPEATS whole-path runs, each on a fresh site and a fresh broker.

    The raw MQTT baseline is measured on each run's broker right after the run; the best is kept.
    """
    size = envelope_size(METERS)
    runs: list[PathRun] = []
    msg_rate = 0.0
    for n in range(PATH_REPEATS):
        opts = store if store["backend"] == "sqlite" else {**store, "database": f"bench_path_{label}_{n}"}
        with Mosquitto(tmp / f"{label}-{n}" / "broker") as broker:
            runs.append(run_path(tmp / f"{label}-{n}", broker, opts, f"gw-{label.lower()}-{n}"))
            msg_rate = max(msg_rate, mqtt_rate(broker.port, size))
    best = min(runs, key=lambda r: r.elapsed)
    row = Row(f"whole path -> {label}, {METERS} meters x {QUARTERS} q", best.stored / best.elapsed, "intervals/s",
              f"paho QoS1 pub->sub, {size} B, x{METERS} iv/msg", msg_rate * METERS)
    return row, best


def print_breakdown(label: str, run: PathRun) -> None:
    total = run.elapsed
    print(f"\nwhole path -> {label}: {run.stored} intervals stored and checked ({METERS} x {QUARTERS}) in "
          f"{total:.3f} s (best run); where time goes (the cloud works in parallel on its MQTT thread):")
    timed = {k: (run.timers.total[k], run.timers.calls[k]) for k in (*GATEWAY_PARTS, *CLOUD_PARTS)}
    parts = [("gateway: poll loop, total", run.polled, 0)]
    parts += [(k, *timed[k]) for k in GATEWAY_PARTS]
    parts += [("drain after the last poll (gateway.drain, 50 ms steps)", total - run.polled, 0)]
    parts += [(k, *timed[k]) for k in CLOUD_PARTS]
    for name, t, calls in parts:
        each = f"{calls:5d} calls, {1e6 * t / calls:6.0f} us each" if calls else ""
        print(f"  {name:<56} {t:7.3f} s  {100 * t / total:5.1f} %  {each}".rstrip())
    resent = run.publishes - run.sealed
    print(f"  gateway sealed {run.sealed} batches and published {run.publishes} ({resent} sent again);"
          f" cloud outcomes {run.ingest_counts}")


# --- report -----------------------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    head = ("measurement", "result", "baseline", "baseline rate", "ratio")
    lines = [(r.name, f"{r.result:,.0f} {r.unit}", r.baseline_name, f"{r.baseline:,.0f}", f"{r.ratio:.3f}")
             for r in rows]
    widths = [max(len(x[i]) for x in (head, *lines)) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i in (0, 2) else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*head))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt.format(*line))


def main() -> int:
    started = time.perf_counter()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}", flush=True)
    rows: list[Row] = []
    notes: list[str] = []
    breakdowns: list[tuple[str, PathRun]] = []
    with tempfile.TemporaryDirectory(prefix="quartier-bench-") as d, influxd(Path(d)) as url:
        tmp = Path(d)
        if url is None:
            notes.append("InfluxDB rows skipped: influxd is not installed (apt-get install influxdb)")
        rows.append(bench_sqlite(tmp))
        if url is not None:
            rows.append(bench_influx(url))
        seal_row, seal_parts = bench_sealing()
        rows.append(seal_row)
        stores: list[tuple[str, dict[str, Any]]] = [("SQLite", {"backend": "sqlite"})]
        if url is not None:
            stores.append(("InfluxDB", {"backend": "influxdb", "url": url}))
        for label, store in stores:
            row, best = bench_path(tmp, store, label)
            rows.append(row)
            breakdowns.append((label, best))
    print()
    print_table(rows)
    print("\nratio = result rate / baseline rate (1.0 = as fast as the raw mechanism beneath it)")
    for n in notes:
        print(n)
    print(f"\nsealing, per batch: seal {seal_parts['seal']:.0f} us, open_verified {seal_parts['open_verified']:.0f} us,"
          f" json dumps+loads {seal_parts['json']:.1f} us")
    for label, run in breakdowns:
        print_breakdown(label, run)
    print(f"\nbench ran in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
