"""Simulated Modbus TCP meters: real Modbus over real TCP, values from a load profile.

Each :class:`SimulatedMeter` is one pymodbus ``SimDevice`` laid out from the
meter model's register map (the same map the gateway reads with). Register
values are computed when a request arrives, from the clock and the profile,
so a gateway polling with a :class:`quartier.clock.ManualClock` sees exactly
the index the profile gives for that instant.

A model's ``[identify]`` register is served with its first accepted value,
so a bus scan can recognise the model: at the meter's own unit id, or, when
the map names another ``unit`` (an Alfen station answers at unit 200), by an
extra device for that unit id (:meth:`SimulatedMeter.identify_device`).

Like a real meter, the simulator answers ILLEGAL_ADDRESS for addresses that
are not in the map (also inside a read that bridges a hole in the map) and
ILLEGAL_FUNCTION for coil and discrete-input reads. A request to a unit id
that no simulated meter has gets GATEWAY_NO_RESPONSE (exception 0x0B), what a
Modbus TCP-to-RS485 gateway answers when no device on its line replies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimAction, SimData, SimDevice

from quartier.clock import Clock
from quartier.registermap import Identify, MeterModel, encode, rollover_wh
from simulators.faults import MeterFaults
from simulators.modbus_server import ServerThread, check_units, meter_devices
from simulators.profile import LoadProfile

log = logging.getLogger(__name__)

#: Line-to-neutral voltage every simulated phase reports. [V]
VOLTAGE_V = 230.0
#: Supply frequency the simulated meters report. [Hz]
FREQUENCY_HZ = 50.0

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
    The model's identification register, if any, holds its first accepted value.

    Args:
        model: the register map to serve.
        profile: the import (consumption) profile.
        clock: where the time of each read comes from.
        unit: Modbus unit id. [1..247]
        export_profile: optional export (injection) profile.
        faults: a timetable of silences, exception answers and a replacement
            (see :mod:`simulators.faults`); integer energy registers always roll
            over at their range, as the real counters do.

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
        faults: MeterFaults | None = None,
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
        self.faults = faults or MeterFaults()

    def values(self, t: float) -> dict[str, float]:
        """Every quantity of the model at time ``t`` [s since epoch], in canonical units (Wh, W, V, A, Hz).

        Raises:
            ValueError: ``t`` is before a profile's epoch.
        """
        imported = float(self.profile.index_wh(t))
        if self.faults.replaced_at is not None:
            swap = float(self.profile.index_wh(self.faults.replaced_at))
            imported = self.faults.import_index_wh(t, imported, swap)
        exported = float(self.export_profile.index_wh(t)) if self.export_profile else 0.0
        power = self.profile.power_w(t) - (self.export_profile.power_w(t) if self.export_profile else 0.0)
        return {quantity: _PRODUCERS[quantity](imported, exported, power) for quantity in self.model.registers}

    def device(self) -> SimDevice:
        """The pymodbus device serving this meter's registers (separate holding and input tables).

        The model's identification register is part of it when it is read at
        the meter's own unit id (see :meth:`identify_device` for the others).
        """
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
        identify = self.model.identify
        if identify is not None and identify.unit in (None, self.unit):
            tables[identify.function].append(_identify_data(identify))
        return _device(self.unit, tables, self._action)

    def identify_device(self) -> SimDevice | None:
        """A device answering at the model's identification unit id, or None if there is none to add.

        None when the model has no ``[identify]`` or reads it at the meter's own
        unit id (then :meth:`device` serves it). A server adds this device
        unless a meter or another identification device already has that
        unit id (two sockets of one station share their station's identity).
        """
        identify = self.model.identify
        if identify is None or identify.unit in (None, self.unit):
            return None
        assert identify.unit is not None
        tables: dict[int, list[SimData]] = {3: [], 4: []}
        tables[identify.function].append(_identify_data(identify))
        return _device(identify.unit, tables, _refuse_bits)

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
        now = self.clock.now()
        fault = self.faults.window_at(now)
        if fault is not None:
            if fault.kind == "timeout":
                await asyncio.sleep(fault.delay_s)
                return ExcCodes.DEVICE_FAILURE  # too late: the client has given up
            return ExcCodes.GATEWAY_NO_RESPONSE if fault.kind == "no-answer" else ExcCodes(fault.code)
        try:
            values = self.values(now)
            for register in self.model.registers.values():
                if register.function != function_code:
                    continue
                if register.address + register.count <= address or register.address >= address + count:
                    continue
                offset = register.address - start_address
                value = values[register.quantity]
                rollover = rollover_wh(register) if register.quantity.endswith("_energy") else None
                if rollover is not None:
                    value %= rollover  # the meter's counter rolls over, as the real one does
                current_registers[offset : offset + register.count] = encode(register, value)
        except ValueError as exc:
            log.warning("simulated meter unit %d cannot answer: %s", self.unit, exc)
            return ExcCodes.DEVICE_FAILURE
        return None

    def __repr__(self) -> str:
        return f"SimulatedMeter(model={self.model.name!r}, unit={self.unit}, profile={self.profile!r})"


def _identify_data(identify: Identify) -> SimData:
    """The identification registers, holding the first accepted value (constant, so no action writes them)."""
    return SimData(address=identify.address, values=identify.encode(), datatype=DataType.REGISTERS, readonly=True)


def _device(unit: int, tables: dict[int, list[SimData]], action: SimAction) -> SimDevice:
    """A device with the given holding (3) and input (4) tables and empty bit tables."""
    # pymodbus needs at least one entry per table: an invalid register answers ILLEGAL_ADDRESS.
    holding = tables[3] or [SimData(address=0, datatype=DataType.INVALID)]
    inputs = tables[4] or [SimData(address=0, datatype=DataType.INVALID)]
    # Bit tables must hold BITS entries; reads of them are refused by the action.
    coils = [SimData(address=0, values=False, datatype=DataType.BITS)]
    discrete = [SimData(address=0, values=False, datatype=DataType.BITS)]
    return SimDevice(id=unit, simdata=(coils, discrete, holding, inputs), action=action)


async def _refuse_bits(
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    current_registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    """Action of an identification-only device: registers as stored, ILLEGAL_FUNCTION for bits."""
    return None if function_code in (3, 4) else ExcCodes.ILLEGAL_FUNCTION


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
    """Device id 0, which pymodbus uses for every unit id without a device of its own; it answers 0x0B.

    A server must have one: pymodbus 3.16 falls back to device 0 for an
    unknown unit id and, without it, answers DEVICE_FAILURE (its lookup
    fails with a KeyError, whatever ``ignore_missing_devices`` says). The RTU
    simulator keeps it too and drops the answer, as a line without that
    device stays silent.
    """
    # Covers every address so the request reaches the action whatever it asks for.
    return SimDevice(id=0, simdata=[SimData(address=0, count=65536, datatype=DataType.REGISTERS)], action=_no_device)


class ModbusTcpSimulator(ServerThread):
    """A Modbus TCP server, in a background thread, serving simulated meters by unit id.

    Start and stop it with :meth:`start` and :meth:`stop`, or use it as a
    context manager (:class:`simulators.modbus_server.ServerThread`).

    Args:
        meters: the meters, each with a distinct unit id.
        host: address to listen on.
        port: TCP port; 0 picks a free one (read it from :attr:`port` after :meth:`start`).

    Raises:
        ValueError: no meters, or two meters with the same unit id.
    """

    kind = "Modbus"

    def __init__(self, meters: list[SimulatedMeter], host: str = "127.0.0.1", port: int = 0) -> None:
        check_units([meter.unit for meter in meters])
        super().__init__()
        self.meters = list(meters)
        self.host = host
        self._requested_port = port
        self._port: int | None = None

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

    @property
    def where(self) -> str:
        """``host:port``, with the port asked for until the server listens."""
        return f"{self.host}:{self._port or self._requested_port}"

    def _devices(self) -> list[SimDevice]:
        return meter_devices(self.meters) + [_absent_units_device()]

    def _make_server(self, devices: list[SimDevice]) -> ModbusTcpServer:
        return ModbusTcpServer(devices, address=(self.host, self._requested_port))

    def _listening(self, server: ModbusTcpServer) -> None:
        # For a TCP server, pymodbus keeps the asyncio.Server returned by loop.create_server in .transport.
        self._port = int(server.transport.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        units = [meter.unit for meter in self.meters]
        return f"ModbusTcpSimulator({self.where}, units={units})"
