"""Simulated Modbus TCP meters: real Modbus over real TCP, values from a load profile.

Each :class:`SimulatedMeter` is one pymodbus ``SimDevice`` laid out from the
meter model's register map (the same map the gateway reads with). Register
values are computed when a request arrives, from the clock and the profile,
so a gateway polling with a :class:`quartier.clock.ManualClock` sees exactly
the index the profile gives for that instant.

Like a real meter, the simulator answers ILLEGAL_ADDRESS for addresses that
are not in the map (also inside a read that bridges a hole in the map) and
ILLEGAL_FUNCTION for coil and discrete-input reads. A request to a unit id
that no simulated meter has gets GATEWAY_NO_RESPONSE (exception 0x0B), what a
Modbus TCP-to-RS485 gateway answers when no device on its line replies.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from types import TracebackType

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from quartier.clock import Clock
from quartier.registermap import MeterModel, encode
from simulators.profile import LoadProfile

log = logging.getLogger(__name__)

#: Line-to-neutral voltage every simulated phase reports. [V]
VOLTAGE_V = 230.0
#: Supply frequency the simulated meters report. [Hz]
FREQUENCY_HZ = 50.0
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0

Producer = Callable[[float, float, float], float]
"""f(import index [Wh], export index [Wh], net power [W]) -> a quantity in its canonical unit."""
_PRODUCERS: dict[str, Producer] = {
    "import_energy": lambda imported, exported, power: imported,
    "export_energy": lambda imported, exported, power: exported,
    "total_energy": lambda imported, exported, power: imported + exported,
    "power": lambda imported, exported, power: power,
    "frequency": lambda imported, exported, power: FREQUENCY_HZ,
}
for _phase in ("l1", "l2", "l3"):
    _PRODUCERS[f"power_{_phase}"] = lambda imported, exported, power: power / 3
    _PRODUCERS[f"current_{_phase}"] = lambda imported, exported, power: abs(power) / 3 / VOLTAGE_V
    _PRODUCERS[f"voltage_{_phase}"] = lambda imported, exported, power: VOLTAGE_V


class SimulatedMeter:
    """A three-phase meter whose registers follow a load profile.

    Quantities (canonical units): ``import_energy`` = import profile index
    [Wh]; ``export_energy`` = export profile index, 0 without one [Wh];
    ``total_energy`` = import + export [Wh]; ``power`` = import power - export
    power [W]; ``power_l1..3`` = power / 3 [W]; ``current_l1..3`` =
    abs(power) / 3 / 230 V [A]; ``voltage_l1..3`` = 230 [V]; ``frequency`` = 50 [Hz].

    Args:
        model: the register map to serve.
        profile: the import (consumption) profile.
        clock: where the time of each read comes from.
        unit: Modbus unit id. [1..247]
        export_profile: optional export (injection) profile.

    Raises:
        ValueError: unit out of range, or the model holds a quantity the
            simulator cannot produce.
    """

    def __init__(
        self,
        model: MeterModel,
        profile: LoadProfile,
        clock: Clock,
        unit: int = 1,
        export_profile: LoadProfile | None = None,
    ) -> None:
        if isinstance(unit, bool) or not isinstance(unit, int) or not 1 <= unit <= 247:
            raise ValueError(f"unit {unit!r} must be a Modbus device id in 1..247")
        unsupported = sorted(set(model.registers) - set(_PRODUCERS))
        if unsupported:
            raise ValueError(
                f"model {model.name!r}: the simulator cannot produce {unsupported}; it knows {sorted(_PRODUCERS)}"
            )
        self.model = model
        self.profile = profile
        self.export_profile = export_profile
        self.clock = clock
        self.unit = unit

    def values(self, t: float) -> dict[str, float]:
        """Every quantity of the model at time ``t`` [s since epoch], in canonical units (Wh, W, V, A, Hz).

        Raises:
            ValueError: ``t`` is before a profile's epoch.
        """
        imported = float(self.profile.index_wh(t))
        exported = float(self.export_profile.index_wh(t)) if self.export_profile else 0.0
        power = self.profile.power_w(t) - (self.export_profile.power_w(t) if self.export_profile else 0.0)
        return {quantity: _PRODUCERS[quantity](imported, exported, power) for quantity in self.model.registers}

    def device(self) -> SimDevice:
        """The pymodbus device serving this meter's registers (separate holding and input tables)."""
        tables: dict[int, list[SimData]] = {3: [], 4: []}
        for register in self.model.registers.values():
            tables[register.function].append(
                SimData(
                    address=register.address,
                    values=[0] * register.count,
                    datatype=DataType.REGISTERS,
                    readonly=True,
                )
            )
        # pymodbus needs at least one entry per table: an invalid register answers ILLEGAL_ADDRESS.
        holding = tables[3] or [SimData(address=0, datatype=DataType.INVALID)]
        inputs = tables[4] or [SimData(address=0, datatype=DataType.INVALID)]
        # Bit tables must hold BITS entries; reads of them are refused by _action.
        coils = [SimData(address=0, values=False, datatype=DataType.BITS)]
        discrete = [SimData(address=0, values=False, datatype=DataType.BITS)]
        return SimDevice(id=self.unit, simdata=(coils, discrete, holding, inputs), action=self._action)

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus hook, run before each response: write the values of this instant into the table."""
        if function_code not in (3, 4):
            return ExcCodes.ILLEGAL_FUNCTION
        try:
            values = self.values(self.clock.now())
            for register in self.model.registers.values():
                if register.function != function_code:
                    continue
                if register.address + register.count <= address or register.address >= address + count:
                    continue
                offset = register.address - start_address
                current_registers[offset : offset + register.count] = encode(register, values[register.quantity])
        except ValueError as exc:
            log.warning("simulated meter unit %d cannot answer: %s", self.unit, exc)
            return ExcCodes.DEVICE_FAILURE
        return None

    def __repr__(self) -> str:
        return f"SimulatedMeter(model={self.model.name!r}, unit={self.unit}, profile={self.profile!r})"


async def _no_device(
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    current_registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    return ExcCodes.GATEWAY_NO_RESPONSE


def _absent_units_device() -> SimDevice:
    """Device id 0, which pymodbus uses for every unit id without a device of its own."""
    # Covers every address so the request reaches the action whatever it asks for.
    return SimDevice(id=0, simdata=[SimData(address=0, count=65536, datatype=DataType.REGISTERS)], action=_no_device)


class ModbusTcpSimulator:
    """A Modbus TCP server, in a background thread, serving simulated meters by unit id.

    Args:
        meters: the meters, each with a distinct unit id.
        host: address to listen on.
        port: TCP port; 0 picks a free one (read it from :attr:`port` after :meth:`start`).

    Raises:
        ValueError: no meters, or two meters with the same unit id.
    """

    def __init__(self, meters: list[SimulatedMeter], host: str = "127.0.0.1", port: int = 0) -> None:
        if not meters:
            raise ValueError("a simulator needs at least one meter")
        units = [meter.unit for meter in meters]
        duplicates = sorted({unit for unit in units if units.count(unit) > 1})
        if duplicates:
            raise ValueError(f"unit ids {duplicates} are used by more than one simulated meter")
        self.meters = list(meters)
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (the one the OS chose when 0 was asked).

        Raises:
            RuntimeError: port 0 was asked and the server has not started.
        """
        if self._port is not None:
            return self._port
        if self._requested_port:
            return self._requested_port
        raise RuntimeError("the simulator picks its port when started; call start() first")

    @property
    def endpoint(self) -> str:
        """``host:port`` of the running server."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving; returns once the server listens.

        Raises:
            RuntimeError: already started, or the server could not listen
                (address in use, ...) within 10 s.
        """
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._ready.clear()
        self._error = None
        where = f"{self.host}:{self._requested_port}"
        self._thread = threading.Thread(target=self._run, name=f"modbus-sim-{where}", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError(f"Modbus simulator on {where} did not start within {_START_TIMEOUT_S} s")
        if self._error is not None:
            self._thread.join(_STOP_TIMEOUT_S)
            self._thread = None
            raise RuntimeError(f"Modbus simulator cannot listen on {where}: {self._error}") from self._error

    def stop(self) -> None:
        """Stop serving and close every client connection; does nothing when not running."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:  # the loop closed in between
                pass
        thread.join(_STOP_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError(f"Modbus simulator on {self.endpoint} did not stop within {_STOP_TIMEOUT_S} s")
        self._thread = self._loop = self._stop_event = None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), which waits for _ready
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        devices = [meter.device() for meter in self.meters] + [_absent_units_device()]
        server = ModbusTcpServer(devices, address=(self.host, self._requested_port))
        await server.serve_forever(background=True)
        # For a TCP server, pymodbus keeps the asyncio.Server returned by loop.create_server in .transport.
        self._port = int(server.transport.sockets[0].getsockname()[1])
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await server.shutdown()

    def __enter__(self) -> ModbusTcpSimulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        units = [meter.unit for meter in self.meters]
        return f"ModbusTcpSimulator({self.host}:{self._port or self._requested_port}, units={units})"
