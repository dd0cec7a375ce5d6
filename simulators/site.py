"""A simulated site from one TOML file: every meter, served on its real protocol and bus.

``site.toml``::

    # Serial cables (two pseudo-terminals joined by a paced relay, see serial_line.py).
    # The simulated meters hold one end; the gateway opens ``link``, a symlink to the other
    # end (relative to this file's folder), exactly as it would open /dev/ttyUSB0.
    [[lines]]
    name = "rs485"
    link = "rs485"            # optional; without it, read the pty path from SimulatedSite.device_of
    baudrate = 9600           # Modbus RTU speed; a TIC line takes its mode's speed
    parity = "N"

    [[lines]]
    name = "tic"
    link = "tic"

    [[meters]]                # Modbus TCP (a charger, or a TCP-to-RS485 gateway)
    id = "cp1"
    model = "alfen_eve"       # a register map in quartier/meters/
    host = "127.0.0.1"
    port = 5020               # meters sharing host:port share one Modbus TCP server
    unit = 1
    initial_index_wh = 5000000
    epoch = "2026-01-19T00:00:00Z"
    profile = [{at = "00:00", power_w = 0}, {at = "08:00", power_w = 7400}]
    # optional: a bidirectional meter's export (injection) index, same epoch
    export = {initial_index_wh = 0, profile = [{at = "00:00", power_w = 0}, {at = "11:00", power_w = 3000}]}

    [[meters]]                # Modbus RTU on a line
    id = "pv"
    model = "sdm72dm2"
    line = "rs485"
    unit = 2
    ...profile keys...

    [[meters]]                # a Linky's TIC output, alone on its line
    id = "linky"
    tic = "standard"          # or "historic"
    contract = "HC"           # BASE, HC, EJP, TEMPO
    meter_id = "021861348497" # ADSC / ADCO
    line = "tic"
    ...profile keys (and export for a producer)...

The gateway's ``[[meters]]`` tables for the same site come from
:meth:`SimulatedSite.gateway_meters`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quartier.clock import Clock
from quartier.config import Table, load_toml
from quartier.errors import ConfigError
from quartier.registermap import available_models, load_model
from simulators.modbus_rtu import ModbusRtuSimulator
from simulators.modbus_tcp import ModbusTcpSimulator, SimulatedMeter
from simulators.profile import LoadProfile
from simulators.serial_line import SerialLine
from simulators.tic import CONTRACTS, TicSimulator

_PROFILE_KEYS = ("initial_index_wh", "epoch", "profile")
_TIC_MODES = ("historic", "standard")
_PARITIES = ("N", "E", "O")


@dataclass
class LineSpec:
    """One ``[[lines]]`` table."""

    name: str
    link: Path | None
    baudrate: int
    parity: str


@dataclass
class _Line:
    spec: LineSpec
    rtu: list[SimulatedMeter] = field(default_factory=list)
    tic: dict[str, Any] | None = None
    cable: SerialLine | None = None


def _profiles(t: Table, m: Mapping[str, Any], path: str) -> tuple[LoadProfile, LoadProfile | None]:
    profile = LoadProfile.from_config({k: m[k] for k in _PROFILE_KEYS if k in m}, path, t.prefix)
    export = None
    if "export" in m:
        e = t.table("export")
        export = LoadProfile.from_config({"epoch": m.get("epoch"), **e.raw()}, path, e.prefix)
    t.accept(*_PROFILE_KEYS)
    return profile, export


class SimulatedSite:
    """Every simulated meter of a site, on its bus; :meth:`start` serves them all.

    Args:
        meters: the ``[[meters]]`` tables (see the module docstring).
        clock: the time every simulated meter follows.
        lines: the ``[[lines]]`` tables.
        path: the site file (locates errors; relative links start from its folder).
        pace: pace serial lines at their baud rate (False only for content tests).

    Raises:
        ConfigError: naming the table and key at fault.
    """

    def __init__(
        self,
        meters: Sequence[Mapping[str, Any]],
        clock: Clock,
        lines: Sequence[Mapping[str, Any]] = (),
        path: str = "<site>",
        pace: bool = True,
    ) -> None:
        self.path = path
        self.clock = clock
        self.pace = pace
        base = Path(path).parent if path != "<site>" else Path.cwd()
        self._lines: dict[str, _Line] = {}
        for n, raw in enumerate(lines):
            t = Table(raw, Path(path), f"lines[{n}]")
            name = t.str("name")
            if name in self._lines:
                raise t.error("name", f"duplicate line name {name!r}")
            link = t.str("link", None)
            spec = LineSpec(
                name=name,
                link=(base / link) if link else None,
                baudrate=t.int("baudrate", 9600, 1200, 115200),
                parity=t.str("parity", "N", choices=_PARITIES),
            )
            t.done()
            self._lines[name] = _Line(spec)
        self._tcp: dict[tuple[str, int], list[SimulatedMeter]] = {}
        self.meters: list[dict[str, Any]] = []  # each meter's table, for gateway_meters
        for n, raw in enumerate(meters):
            self._add_meter(Table(raw, Path(path), f"meters[{n}]"), raw)
        self.servers: list[ModbusTcpSimulator | ModbusRtuSimulator | TicSimulator] = []
        self._started = False

    def _add_meter(self, t: Table, m: Mapping[str, Any]) -> None:
        meter_id = t.str("id")
        if any(existing["id"] == meter_id for existing in self.meters):
            raise t.error("id", f"duplicate meter id {meter_id!r}")
        line_name = t.str("line", None)
        line = None
        if line_name is not None:
            line = self._lines.get(line_name)
            if line is None:
                raise t.error("line", f"no [[lines]] named {line_name!r}; lines: {sorted(self._lines)}")
        if "tic" in m:
            mode = t.str("tic", choices=_TIC_MODES)
            contract = t.str("contract", "BASE", choices=CONTRACTS)
            tic_id = t.str("meter_id", "021861348497")
            if not (len(tic_id) == 12 and tic_id.isdigit()):
                raise t.error("meter_id", f"{tic_id!r} must be the meter's 12-digit address")
            profile, export = _profiles(t, m, self.path)
            t.done()
            if line is None:
                raise t.error("line", "a TIC meter needs a [[lines]] of its own")
            if line.tic is not None or line.rtu:
                raise t.error("line", f"line {line.spec.name!r} already carries another meter; a TIC line has one")
            line.tic = {"mode": mode, "contract": contract, "meter_id": tic_id, "profile": profile, "export": export}
            self.meters.append({"id": meter_id, "driver": "tic", "line": line.spec.name, "mode": mode,
                                "adsc" if mode == "standard" else "adco": tic_id})
            return
        model = t.str("model", choices=tuple(available_models()))
        unit = t.int("unit", 1, 1, 247)
        if line is not None:
            profile, export = _profiles(t, m, self.path)
            t.done()
            if line.tic is not None:
                raise t.error("line", f"line {line.spec.name!r} carries a TIC meter; Modbus needs its own line")
            if any(s.unit == unit for s in line.rtu):
                raise t.error("unit", f"unit {unit} is used twice on line {line.spec.name!r}")
            line.rtu.append(SimulatedMeter(load_model(model), profile, self.clock, unit=unit, export_profile=export))
            self.meters.append({"id": meter_id, "driver": "modbus", "model": model, "line": line.spec.name,
                                "unit": unit})
            return
        host = t.str("host", "127.0.0.1")
        port = t.int("port", 0, 0, 65535)
        profile, export = _profiles(t, m, self.path)
        t.done()
        sims = self._tcp.setdefault((host, port), [])
        if port == 0 and sims:
            raise t.error("port", "give a port when several meters share a server")
        if any(s.unit == unit for s in sims):
            raise t.error("unit", f"unit {unit} is used twice on {host}:{port}")
        sims.append(SimulatedMeter(load_model(model), profile, self.clock, unit=unit, export_profile=export))
        self.meters.append({"id": meter_id, "driver": "modbus", "model": model, "host": host, "port": port,
                            "unit": unit, "_server": (host, port)})

    def start(self) -> SimulatedSite:
        """Create the serial lines and their links, start every server; returns self."""
        if self._started:
            raise RuntimeError("site already started")
        self._started = True
        try:
            for (host, port), sims in self._tcp.items():
                server = ModbusTcpSimulator(sims, host=host, port=port)
                server.start()
                self.servers.append(server)
            for line in self._lines.values():
                self._start_line(line)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_line(self, line: _Line) -> None:
        spec = line.spec
        if line.tic is not None:
            mode = line.tic["mode"]
            line.cable = SerialLine(default_baudrate=1200 if mode == "historic" else 9600, bytesize=7, parity="E",
                                    pace=self.pace).start()
        else:
            line.cable = SerialLine(default_baudrate=spec.baudrate, parity=spec.parity, pace=self.pace).start()
        if spec.link is not None:
            if spec.link.is_symlink():
                spec.link.unlink()
            elif spec.link.exists():
                raise ConfigError(self.path, f"lines[{spec.name}].link", f"{spec.link} exists and is not a symlink")
            spec.link.parent.mkdir(parents=True, exist_ok=True)
            spec.link.symlink_to(line.cable.end_b)
        if line.tic is not None:
            tic = line.tic
            sim = TicSimulator(line.cable.end_a, tic["mode"], tic["meter_id"], tic["contract"], tic["profile"],
                               self.clock, export_profile=tic["export"])
            sim.start()
            self.servers.append(sim)
        elif line.rtu:
            rtu = ModbusRtuSimulator(line.rtu, line.cable.end_a, baudrate=spec.baudrate, parity=spec.parity)
            rtu.start()
            self.servers.append(rtu)

    def stop(self) -> None:
        """Stop every server, close the lines and remove their links."""
        for server in reversed(self.servers):
            try:
                server.stop()
            except RuntimeError:
                pass
        self.servers.clear()
        for line in self._lines.values():
            if line.cable is not None:
                line.cable.stop()
                line.cable = None
            if line.spec.link is not None and line.spec.link.is_symlink():
                line.spec.link.unlink()
        self._started = False

    def __enter__(self) -> SimulatedSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def device_of(self, line_name: str) -> str:
        """The path the gateway opens for ``line_name``: its link, or the pty itself without one."""
        line = self._lines[line_name]
        if line.spec.link is not None:
            return str(line.spec.link)
        if line.cable is None:
            raise RuntimeError(f"line {line_name!r} has no device until the site is started")
        return line.cable.end_b

    def tcp_port(self, host: str, port: int) -> int:
        """The port the TCP server for ``host:port`` listens on (the chosen one when 0 was asked)."""
        for server in self.servers:
            if isinstance(server, ModbusTcpSimulator) and server.host == host and server._requested_port == port:
                return server.port
        raise KeyError(f"no Modbus TCP server for {host}:{port}")

    def gateway_meters(self, timeout_s: float = 1.0) -> list[dict[str, Any]]:
        """The gateway's ``[[meters]]`` tables that read this site (after :meth:`start`)."""
        out: list[dict[str, Any]] = []
        for m in self.meters:
            g = {k: v for k, v in m.items() if k not in ("line", "_server")}
            if m["driver"] == "modbus":
                g["timeout_s"] = timeout_s
            if "line" in m:
                spec = self._lines[m["line"]].spec
                g["device"] = self.device_of(m["line"])
                if m["driver"] == "modbus":
                    g["baudrate"], g["parity"] = spec.baudrate, spec.parity
            if "_server" in m:
                g["port"] = self.tcp_port(*m["_server"])
            out.append(g)
        return out

    def simulated(self, meter_id: str) -> SimulatedMeter | TicSimulator:
        """The simulator of one meter (its profile is the truth to compare with)."""
        index = [m["id"] for m in self.meters].index(meter_id)
        m = self.meters[index]
        if m["driver"] == "tic":
            return next(s for s in self.servers if isinstance(s, TicSimulator)
                        and s.port_path == self._lines[m["line"]].cable.end_a)  # type: ignore[union-attr]
        sims = self._lines[m["line"]].rtu if "line" in m else self._tcp[m["_server"]]
        return next(s for s in sims if s.unit == m["unit"])


def build_simulators(
    meters: Sequence[Mapping[str, Any]], clock: Clock, path: str = "<site>"
) -> list[ModbusTcpSimulator]:
    """One (not yet started) Modbus TCP server per distinct host:port (Modbus TCP meters only)."""
    site = SimulatedSite(meters, clock, (), path)
    if len(site.meters) != sum(len(s) for s in site._tcp.values()):
        raise ConfigError(path, "meters", "build_simulators serves Modbus TCP meters only; use SimulatedSite")
    return [ModbusTcpSimulator(sims, host=h, port=p) for (h, p), sims in site._tcp.items()]


def load_site(path: Path, clock: Clock, pace: bool = True) -> SimulatedSite:
    """Read ``site.toml``; the site is not started."""
    table = Table(load_toml(path), path)
    lines = [t.raw() for t in table.tables("lines", required=False)]
    meters = [t.raw() for t in table.tables("meters")]
    table.done()
    return SimulatedSite(meters, clock, lines, str(path), pace)


def run_site_forever(path: Path, clock: Clock) -> None:
    """``quartier sim``: serve every meter of ``path`` until interrupted."""
    site = load_site(path, clock).start()
    try:
        for m in site.gateway_meters():
            where = m.get("device") or f"{m['host']}:{m['port']}"
            what = f"TIC {m['mode']}" if m["driver"] == "tic" else f"{m['model']} unit {m['unit']}"
            print(f"simulating {m['id']}: {what} on {where}", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
