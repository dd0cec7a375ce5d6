"""Meter-side costs: Modbus request coalescing and TIC parsing, each as a ratio to a baseline from the same run.

Run from the repository root: ``python bench/meters.py`` (about 30 s on 2 cores; ``--quick``: a few seconds,
a smoke run whose timings mean little).

What is measured:

1. Modbus requests per poll cycle, from the shipped register maps: for every
   model, the requests :func:`gateway.drivers.modbus.plan_requests` makes for all its
   registers (``MAX_GAP`` = 8, what :class:`ModbusMeter` uses) against one
   request per register (the baseline), with the adjacent-only plan a meter
   falls back to when a device refuses bridged reads (gap 0) and the fewest
   requests any gap would allow (the 125-register limit only), and the time
   the requests and answers take on an RS485 wire at 9600 8N1 (characters x
   10 bits / 9600 + a 3.5-character gap per request; no device turnaround).
   Totals for a mixed site (:data:`SITE`).
2. The same, for real: ``METERS_ON_LINE`` simulated meters of one model
   (default sdm630) on one bus, read in full every poll cycle by the gateway's
   :class:`ModbusMeter` (coalesced) and by a naive reader issuing one
   ``read_registers`` per register on the same bus object (the baseline), the
   two interleaved cycle by cycle. Over Modbus RTU through a paced
   :class:`SerialLine` (9600 and 19200 baud, 8N1), and over Modbus TCP to the
   in-process simulator. Median wall time per cycle; ratio = naive / coalesced.
   For RTU, the characters on the line (``SerialLine.stats``) and the wire
   floor they imply (characters x character time + one inter-frame gap per
   request) are printed too: see "SerialLine and short frames" below.
3. TIC parsing: a stream of a few hundred Linky frames (Tempo contract, built
   by :class:`simulators.tic.LinkyModel`, optionally with line noise) fed to
   :class:`FrameAssembler` in 64-byte chunks, :func:`tic_reading` on every
   complete frame, as the gateway's TIC reader does. Best of a few repeats;
   bytes parsed per second against the line's own rate (7E1 = 10 bits per
   character: 960 bytes/s in standard mode at 9600 bit/s, 120 bytes/s in
   historic mode at 1200 bit/s). 1 / ratio = the share of one core of this
   machine that parsing a live Linky takes.

SerialLine and short frames: the line's relay sends in 10 ms slices and
delivers the first slice of a burst as soon as it is read, so a frame of up to
9 characters at 9600 baud (19 at 19200) crosses the simulated line in no time
instead of its transmission time. Modbus read requests are 8 characters and
the answer to a one-register-value read 9: the naive reader's frames are
almost all free, the coalesced reader's long answers are not. The measured
RTU ratio therefore understates what coalescing saves on a real wire; the
wire-floor ratio is the physical one (a real meter's turnaround time, paid
once per request, adds to it further).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.drivers.modbus import (  # noqa: E402
    MAX_GAP,
    MAX_REGISTERS_PER_REQUEST,
    ModbusBus,
    ModbusMeter,
    ModbusRtuBus,
    ModbusTcpBus,
    plan_requests,
)
from quartier.clock import ManualClock  # noqa: E402
from quartier.registermap import MeterModel, available_models, decode, load_model  # noqa: E402
from quartier.series import PARIS  # noqa: E402
from quartier.tic import HISTORIC, STANDARD, FrameAssembler, TicDataError, tic_reading  # noqa: E402
from simulators.modbus_rtu import ModbusRtuSimulator  # noqa: E402
from simulators.modbus_tcp import ModbusTcpSimulator, SimulatedMeter  # noqa: E402
from simulators.profile import LoadProfile  # noqa: E402
from simulators.serial_line import SerialLine  # noqa: E402
from simulators.tic import LinkyModel, TariffSchedule, TicNoise, apply_noise  # noqa: E402

T0 = 1_768_780_800  # 2026-01-19T00:00:00Z
MODEL = "sdm630"
METERS_ON_LINE = 3
RTU_BAUDRATES = (9600, 19200)
#: A mixed site: a small apartment building with PV and two charge-point sockets. (model, meters)
SITE: tuple[tuple[str, int], ...] = (
    ("sdm72dm2", 8),  # flats
    ("sdm72dm", 1),  # garage, first-generation SDM72D-M
    ("sdm630", 2),  # heat pump, common services
    ("abb_b23", 1),  # building main
    ("iem3155", 1),  # lift
    ("em340", 1),  # PV inverter output
    ("alfen_eve", 2),  # charge point, two sockets (Modbus TCP)
)
#: Wire the request table is costed on: 9600 baud 8N1.
WIRE_BAUD = 9600
WIRE_CHAR_S = 10 / WIRE_BAUD
WIRE_GAP_S = 3.5 * WIRE_CHAR_S
TIC_CHUNK = 64
TIC_LINE_RATES = {STANDARD: 9600 / 10, HISTORIC: 1200 / 10}  # 7E1 = 10 bits per character [bytes/s]
TIC_NOISE = TicNoise(bit_flip_p=2e-4, cut_p=0.02, garbage_p=0.05, seed=7)


@dataclass(frozen=True)
class Settings:
    rtu_cycles: int = 10
    tcp_cycles: int = 60
    tic_frames: int = 300
    tic_repeats: int = 5


QUICK = Settings(rtu_cycles=2, tcp_cycles=5, tic_frames=40, tic_repeats=1)


def print_table(title: str, head: Sequence[str], lines: Sequence[Sequence[str]], left: Sequence[int] = (0,)) -> None:
    """A plain-text table; columns in ``left`` are left-aligned, the others right-aligned."""
    widths = [max(len(str(x[i])) for x in (head, *lines)) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i in left else '>'}{w}}}" for i, w in enumerate(widths))
    print(f"\n{title}")
    print(fmt.format(*head))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt.format(*line))


# --- 1. request plans ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    registers: int  # one request each: the baseline
    adjacent: int  # plan_requests(max_gap=0): a meter refusing bridged reads
    coalesced: int  # plan_requests(max_gap=MAX_GAP): what ModbusMeter sends
    fewest: int  # any gap, 125 registers per request at most
    words_wanted: int
    words_read: int  # coalesced, bridged registers included
    wire_naive_s: float
    wire_coalesced_s: float


def wire_time(requests: Sequence[tuple[int, int, int]]) -> float:
    """Time ``requests`` and their answers take on a 9600 8N1 wire: 8-char request, 5 + 2n-char answer, one gap each."""
    return sum((8 + 5 + 2 * count) * WIRE_CHAR_S + WIRE_GAP_S for _, _, count in requests)


def plan_of(model: MeterModel) -> Plan:
    wanted = [(r.function, r.address, r.count) for r in model.registers.values()]
    coalesced = plan_requests(wanted, max_gap=MAX_GAP)
    return Plan(
        registers=len(wanted),
        adjacent=len(plan_requests(wanted, max_gap=0)),
        coalesced=len(coalesced),
        fewest=len(plan_requests(wanted, max_gap=MAX_REGISTERS_PER_REQUEST)),
        words_wanted=sum(c for _, _, c in wanted),
        words_read=sum(c for _, _, c in coalesced),
        wire_naive_s=wire_time(sorted(wanted)),
        wire_coalesced_s=wire_time(coalesced),
    )


def bench_plans() -> dict[str, Plan]:
    plans = {name: plan_of(load_model(name)) for name in available_models()}
    lines = []
    for name, p in plans.items():
        lines.append(plan_line(name, p))
    site = Plan(*(sum(getattr(plans[m], f) * n for m, n in SITE) for f in Plan.__dataclass_fields__))
    lines.append(plan_line(f"site, {sum(n for _, n in SITE)} meters", site))
    print_table(
        f"1. Modbus requests for one full read, from the register maps (plan_requests, MAX_GAP = {MAX_GAP})",
        ("model", "1/register", "gap 0", f"gap {MAX_GAP}", "ratio", "any gap", "words read / wanted",
         "wire ms 1/register", f"wire ms gap {MAX_GAP}", "wire ratio"),
        lines,
    )
    print("   columns 1/register .. any gap are requests per full read of one meter (site: of all its meters).")
    print("   1/register (baseline) = one request per register; gap 0 = adjacent registers only (ModbusMeter's")
    print(f"   fallback when a device refuses bridged reads); gap {MAX_GAP} = what ModbusMeter sends; ratio = "
          f"1/register / gap {MAX_GAP};")
    print("   any gap = the fewest possible, limited only by 125 registers per request; words read = registers")
    print("   the gap-8 plan reads (bridged ones included) / registers wanted; wire ms = requests and answers at")
    print("   9600 8N1 plus a 3.5-character gap each, computed, without the meters' turnaround time.")
    print("   site = " + ", ".join(f"{n} x {m}" for m, n in SITE) + " (alfen_eve is Modbus TCP; counted all the same)")
    return plans


def plan_line(name: str, p: Plan) -> tuple[str, ...]:
    return (name, str(p.registers), str(p.adjacent), str(p.coalesced),
            f"{p.registers / p.coalesced:.2f}", str(p.fewest), f"{p.words_read} / {p.words_wanted}",
            f"{1e3 * p.wire_naive_s:.0f}", f"{1e3 * p.wire_coalesced_s:.0f}",
            f"{p.wire_naive_s / p.wire_coalesced_s:.2f}")


# --- 2. poll cycles on a bus ------------------------------------------------------------------------------------


def naive_read(bus: ModbusBus, model: MeterModel, unit: int) -> dict[str, float]:
    """The baseline reader: one ``read_registers`` per register, decoded like ModbusMeter does."""
    return {q: decode(r, bus.read_registers(r.function, r.address, r.count, unit)) for q, r in model.registers.items()}


@dataclass
class CycleResult:
    label: str
    cycles: int
    requests: tuple[float, float]  # per cycle: naive, coalesced
    seconds: tuple[float, float]  # median per cycle: naive, coalesced
    chars: tuple[float, float] | None = None  # on the line per cycle, both directions (RTU)
    floor_s: tuple[float, float] | None = None  # wire floor per cycle (RTU)

    @property
    def ratio(self) -> float:
        return self.seconds[0] / self.seconds[1]


def sim_meters(model: MeterModel, clock: ManualClock) -> list[SimulatedMeter]:
    return [SimulatedMeter(model, LoadProfile.constant(1000.0 * (k + 1), 1_000_000 * k, T0), clock, unit=k + 1)
            for k in range(METERS_ON_LINE)]


def run_cycles(
    bus: ModbusBus,
    model: MeterModel,
    cycles: int,
    counters: Callable[[], tuple[int, int]],
) -> tuple[list[float], list[float], list[tuple[int, int]], list[tuple[int, int]]]:
    """Interleaved poll cycles of every meter: coalesced (ModbusMeter) then naive, ``cycles`` times each.

    ``counters()`` gives (requests, characters) so far; returns the per-cycle times and counter deltas of both.
    """
    meters = [ModbusMeter(f"m{k + 1}", bus, model, unit=k + 1, backoff_max_polls=0) for k in range(METERS_ON_LINE)]
    expected = [m.read(T0) for m in meters]  # warm-up (connects, opens the port, adapts a refused plan)
    for k, m in enumerate(meters):
        got = naive_read(bus, model, k + 1)
        if round(got["import_energy"]) != expected[k].import_wh:
            raise RuntimeError(f"naive reader got {got['import_energy']} Wh, ModbusMeter {expected[k].import_wh}")
    times: dict[str, list[float]] = {"naive": [], "coalesced": []}
    deltas: dict[str, list[tuple[int, int]]] = {"naive": [], "coalesced": []}

    def one(kind: str) -> None:
        before = counters()
        t = time.perf_counter()
        if kind == "coalesced":
            for m in meters:
                m.read(T0)
        else:
            for k in range(METERS_ON_LINE):
                naive_read(bus, model, k + 1)
        times[kind].append(time.perf_counter() - t)
        after = counters()
        deltas[kind].append((after[0] - before[0], after[1] - before[1]))

    for _ in range(cycles):
        one("coalesced")
        one("naive")
    return times["naive"], times["coalesced"], deltas["naive"], deltas["coalesced"]


def bench_rtu(model: MeterModel, baud: int, cycles: int) -> CycleResult:
    clock = ManualClock(T0)
    with SerialLine(baud, pace=True) as line:
        sim = ModbusRtuSimulator(sim_meters(model, clock), line.end_a, baud)
        sim.start()
        bus = ModbusRtuBus(line.end_b, baud, timeout_s=1.0, retries=1)
        try:
            def counters() -> tuple[int, int]:
                return bus.stats.requests, line.stats["a>b"].sent + line.stats["b>a"].sent

            naive_t, coal_t, naive_d, coal_d = run_cycles(bus, model, cycles, counters)
        finally:
            bus.close()
            sim.stop()
        if bus.stats.timeouts or bus.stats.rejected_frames or bus.stats.stray_bytes:
            raise RuntimeError(f"RTU line at {baud} was not clean: {bus.stats}")
    req = (statistics.mean(d[0] for d in naive_d), statistics.mean(d[0] for d in coal_d))
    chars = (statistics.mean(d[1] for d in naive_d), statistics.mean(d[1] for d in coal_d))
    floor = (chars[0] * bus.char_time_s + req[0] * bus.gap_s, chars[1] * bus.char_time_s + req[1] * bus.gap_s)
    seconds = (statistics.median(naive_t), statistics.median(coal_t))
    return CycleResult(f"RTU {baud} 8N1, SerialLine", cycles, req, seconds, chars, floor)


def bench_tcp(model: MeterModel, cycles: int) -> CycleResult:
    clock = ManualClock(T0)
    sim = ModbusTcpSimulator(sim_meters(model, clock), port=0)
    sim.start()
    bus = ModbusTcpBus("127.0.0.1", sim.port, timeout_s=1.0, retries=1)
    sent = [0]
    inner = bus.read_registers

    def counted(*args: object, **kwargs: object) -> list[int]:
        sent[0] += 1
        return inner(*args, **kwargs)  # type: ignore[arg-type]

    bus.read_registers = counted  # type: ignore[method-assign]
    try:
        naive_t, coal_t, naive_d, coal_d = run_cycles(bus, model, cycles, lambda: (sent[0], 0))
    finally:
        bus.close()
        sim.stop()
    req = (statistics.mean(d[0] for d in naive_d), statistics.mean(d[0] for d in coal_d))
    seconds = (statistics.median(naive_t), statistics.median(coal_t))
    return CycleResult("TCP, in-process simulator", cycles, req, seconds)


def print_cycles(model: MeterModel, results: list[CycleResult], planned: int) -> None:
    lines = []
    for r in results:
        chars = f"{r.chars[0]:.0f} / {r.chars[1]:.0f}" if r.chars else "-"
        floor = f"{1e3 * r.floor_s[0]:.0f} / {1e3 * r.floor_s[1]:.0f}" if r.floor_s else "-"
        floor_ratio = f"{r.floor_s[0] / r.floor_s[1]:.2f}" if r.floor_s else "-"
        lines.append((r.label, str(r.cycles), f"{r.requests[0]:.0f} / {r.requests[1]:.0f}", chars,
                      f"{1e3 * r.seconds[0]:.1f}", f"{1e3 * r.seconds[1]:.1f}", f"{r.ratio:.2f}", floor, floor_ratio))
    print_table(
        f"2. Modbus poll cycle, {METERS_ON_LINE} x {model.name} on one bus, all {len(model.registers)} quantities each "
        "(median per cycle)",
        ("bus", "cycles", "requests naive / coal.", "chars naive / coal.", "naive ms", "coalesced ms", "ratio",
         "wire floor ms naive / coal.", "floor ratio"),
        lines,
    )
    print("   naive (baseline) = one read_registers per register on the same bus; coalesced = ModbusMeter.read;")
    print("   ratio = naive time / coalesced time (how many times faster a poll cycle is with coalescing);")
    print("   chars = bytes on the line per cycle, both directions (SerialLine.stats); wire floor = chars x character")
    print("   time + one 3.5-character gap per request: the least a real wire takes, before the meters' turnaround.")
    if any(r.requests[1] > METERS_ON_LINE * planned for r in results):
        print("   The simulator refuses reads that bridge unmapped registers (ILLEGAL_ADDRESS), as some meters do:")
        print(f"   ModbusMeter fell back from {planned} requests to its adjacent-only plan (table 1, gap 0) at once.")
    under = [r.label for r in results if r.floor_s and r.seconds[1] < r.floor_s[1]]
    if under:
        print("   Coalesced cycles measured below the wire floor on: " + "; ".join(under) + ".")
        print("   SerialLine delivers the first 10 ms slice of each burst at once, so short frames (requests,")
        print("   one-value answers) cross it for free: the measured RTU ratio understates the saving on a real")
        print("   wire, where the floor ratio is the least it can be.")


# --- 3. TIC parsing ---------------------------------------------------------------------------------------------


def tic_stream(mode: str, frames: int, noise: TicNoise | None) -> tuple[bytes, int]:
    """``frames`` consecutive Tempo frames of one Linky over two days (periods and colours change), as one stream.

    Returns the bytes and the number of frames built.
    """
    d0 = datetime.fromtimestamp(T0, PARIS).date()
    calendar = {d0: "BLEU", d0 + timedelta(days=1): "BLANC", d0 + timedelta(days=2): "ROUGE"}
    linky = LinkyModel(mode, "041234567890", "TEMPO", LoadProfile.constant(2300.0, 12_345_678, T0),
                       schedule=TariffSchedule("TEMPO", tempo_calendar=calendar))
    rng = random.Random(noise.seed if noise else 0)
    step = 2 * 86400 / frames  # spread over two days
    out = bytearray()
    for k in range(frames):
        frame = linky.frame(T0 + k * step)
        out += apply_noise(frame, noise, rng) if noise else frame
    return bytes(out), frames


@dataclass
class TicResult:
    label: str
    mode: str
    chunk: int
    size: int
    frames_built: int
    frames_ok: int
    readings: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.size / self.seconds

    @property
    def ratio(self) -> float:
        return self.rate / TIC_LINE_RATES[self.mode]


def parse_stream(data: bytes, mode: str, chunk: int) -> tuple[int, int]:
    """Feed ``data`` to a FrameAssembler in ``chunk``-byte pieces; tic_reading on each complete frame.

    Returns (frames returned, readings made).
    """
    assembler = FrameAssembler(mode)
    frames = readings = 0
    for i in range(0, len(data), chunk):
        for frame in assembler.feed(data[i : i + chunk]):
            frames += 1
            if not frame.complete:
                continue  # the gateway's TIC reader skips these too
            try:
                tic_reading(frame)
            except TicDataError:
                continue
            readings += 1
    return frames, readings


def bench_tic_case(label: str, mode: str, frames: int, noise: TicNoise | None, chunk: int, repeats: int) -> TicResult:
    data, built = tic_stream(mode, frames, noise)
    best = float("inf")
    counts = (0, 0)
    for _ in range(repeats):
        t = time.perf_counter()
        counts = parse_stream(data, mode, chunk)
        best = min(best, time.perf_counter() - t)
    return TicResult(label, mode, chunk, len(data), built, counts[0], counts[1], best)


def bench_tic(settings: Settings) -> list[TicResult]:
    n, r = settings.tic_frames, settings.tic_repeats
    return [
        bench_tic_case("standard, Tempo", STANDARD, n, None, TIC_CHUNK, r),
        bench_tic_case("standard, Tempo, noisy", STANDARD, n, TIC_NOISE, TIC_CHUNK, r),
        bench_tic_case("standard, Tempo, 1-byte reads", STANDARD, n, None, 1, r),
        bench_tic_case("historic, Tempo", HISTORIC, n, None, TIC_CHUNK, r),
        bench_tic_case("historic, Tempo, noisy", HISTORIC, n, TIC_NOISE, TIC_CHUNK, r),
    ]


def print_tic(results: list[TicResult]) -> None:
    lines = [
        (r.label, str(r.chunk), f"{r.size:,}", f"{r.frames_ok} / {r.frames_built}", str(r.readings),
         f"{r.size / r.frames_built:.0f}", f"{1e6 * r.seconds / r.frames_ok:.0f}", f"{r.rate:,.0f}",
         f"{TIC_LINE_RATES[r.mode]:.0f}", f"{r.ratio:,.0f}", f"{100 / r.ratio:.3f} %")
        for r in results
    ]
    print_table(
        "3. TIC parsing: FrameAssembler.feed + tic_reading, best of repeats",
        ("stream", "chunk B", "bytes", "frames out / in", "readings", "B/frame", "us/frame", "parsed B/s",
         "line B/s", "ratio", "CPU at line rate"),
        lines,
    )
    print("   line B/s (baseline) = the Linky's own rate, 7E1 = 10 bits per character: 9600 bit/s standard, 1200 bit/s")
    print("   historic; ratio = parsed B/s / line B/s; CPU at line rate = 1 / ratio = share of one core of this")
    print("   machine a live Linky keeps busy. noisy = simulators.tic.apply_noise with bit_flip_p = "
          f"{TIC_NOISE.bit_flip_p:g},")
    print(f"   cut_p = {TIC_NOISE.cut_p:g}, garbage_p = {TIC_NOISE.garbage_p:g}; frames out = frames the assembler "
          "returned; readings = complete")
    print("   frames that made a reading (the gateway skips incomplete ones too).")


# --- report -----------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few iterations only (smoke run; timings are rough)")
    parser.add_argument("--model", default=MODEL, choices=available_models(),
                        help=f"meter model of the measured poll cycles (default {MODEL})")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    started = time.perf_counter()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
          f"{' (--quick)' if args.quick else ''}", flush=True)

    plans = bench_plans()
    model = load_model(args.model)
    results = [bench_rtu(model, baud, settings.rtu_cycles) for baud in RTU_BAUDRATES]
    results.append(bench_tcp(model, settings.tcp_cycles))
    print_cycles(model, results, plans[args.model].coalesced)
    tic = bench_tic(settings)
    print_tic(tic)

    site_plan = Plan(*(sum(getattr(plans[m], f) * n for m, n in SITE) for f in Plan.__dataclass_fields__))
    print("\nsummary:")
    print(f"  requests per full read, coalesced vs one per register: {plans[args.model].registers} -> "
          f"{plans[args.model].coalesced} for {args.model}; {site_plan.registers} -> {site_plan.coalesced} "
          f"(x{site_plan.registers / site_plan.coalesced:.2f}) for the {sum(n for _, n in SITE)}-meter site")
    for r in results:
        floor = f", wire floor x{r.floor_s[0] / r.floor_s[1]:.2f}" if r.floor_s else ""
        print(f"  poll cycle, {r.label}: {1e3 * r.seconds[1]:.1f} ms coalesced vs {1e3 * r.seconds[0]:.1f} ms naive"
              f" (x{r.ratio:.2f}{floor})")
    for t in tic:
        if t.chunk == TIC_CHUNK and "noisy" not in t.label:
            print(f"  TIC {t.mode}: parsed {t.ratio:,.0f}x faster than the line delivers "
                  f"({100 / t.ratio:.2f} % of one core of this machine)")
    print(f"\nbench ran in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
