"""A meter read over Modbus through its register map, with backoff when it stops answering (:class:`ModbusMeter`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime

from gateway.drivers.base import Reading
from gateway.drivers.modbus.bus import ModbusBus, _is_int, _span
from gateway.drivers.modbus.errors import (
    ILLEGAL_ADDRESS,
    BadFrameError,
    MeterSkippedError,
    ModbusExceptionError,
    NoAnswerError,
)
from gateway.drivers.modbus.plan import MAX_GAP, Request, plan_requests
from gateway.drivers.modbus.pool import BusPool
from quartier.errors import MeterError, RegisterMapError
from quartier.registermap import MeterModel, Register, decode, rollover_wh

# The driver's logger, named after the package as before its split into modules (log lines keep their name).
log = logging.getLogger("gateway.drivers.modbus")

#: Quantities that have a field of their own in a :class:`Reading`; ``import_energy`` is required.
READ_QUANTITIES = ("import_energy", "export_energy", "power")
#: Most polls a meter that does not answer is skipped for, between two attempts.
BACKOFF_MAX_POLLS = 32


class ModbusMeter:
    """A meter read over Modbus through its model's register map (implements ``gateway.drivers.base.Meter``).

    Reads every quantity of the model (:attr:`quantities`) with as few
    requests as :func:`plan_requests` allows: ``import_energy`` (required),
    ``export_energy`` and ``power`` go to their own :class:`Reading` fields,
    every other quantity (per-phase power, voltage and current, frequency,
    total_energy, ...) to :attr:`Reading.values`, in canonical units.

    Refused reads: some meters refuse (ILLEGAL_ADDRESS) a read that bridges
    holes in their map, a few even a read spanning two mapped registers, and
    some firmware lacks a register its model's map lists. On ILLEGAL_ADDRESS
    the meter steps, at once and for good, from bridged requests to requests
    of adjacent mapped registers, then to one request per register; a
    register still refused then is dropped from :attr:`quantities` (logged),
    unless it is ``import_energy``, which makes the read fail.

    Backoff: after a read that got no valid answer (timeout, garbled answer,
    no connection; an exception response is an answer), the meter skips
    the bus for its next 1, 2, 4, ... polls, at most ``backoff_max_polls``:
    :meth:`read` then raises :class:`MeterSkippedError` at once, without bus
    traffic, so that a dead meter does not eat the line time of the others.
    Any read that gets an answer resets it.

    Args:
        meter_id: the meter's id in the gateway configuration.
        bus: the bus the meter is on.
        model: its register map.
        unit: its Modbus unit id. [``bus.units``: 0..255 on TCP, 1..247 on RTU]
        pool: the pool ``bus`` was acquired from; :meth:`close` releases it
            there. Without a pool the caller owns the bus and closes it.
        backoff_max_polls: most polls skipped between two attempts; 0
            disables the backoff. [polls, >= 0]
        drop_refused: drop a register the device refuses (see above); False
            makes such a read fail with the ILLEGAL_ADDRESS exception instead
            (``quartier scan`` uses it: a device lacking registers of a map is
            not that model).

    Raises:
        RegisterMapError: the model has no ``import_energy`` register.
        ValueError: unit or backoff_max_polls out of range.
    """

    def __init__(
        self,
        meter_id: str,
        bus: ModbusBus,
        model: MeterModel,
        unit: int = 1,
        pool: BusPool | None = None,
        backoff_max_polls: int = BACKOFF_MAX_POLLS,
        drop_refused: bool = True,
    ) -> None:
        if "import_energy" not in model.registers:
            raise RegisterMapError(f"model {model.name!r}: no import_energy register; a meter needs one to be read")
        if not _is_int(unit) or unit not in bus.units:
            raise ValueError(f"unit {unit!r} must be an integer in {_span(bus.units)}")
        if not _is_int(backoff_max_polls) or backoff_max_polls < 0:
            raise ValueError(f"backoff_max_polls {backoff_max_polls!r} must be an integer >= 0")
        self.meter_id = meter_id
        self.bus = bus
        self.model = model
        self.unit = unit
        self.backoff_max_polls = backoff_max_polls
        self.drop_refused = drop_refused
        self._pool = pool
        self._registers: dict[str, Register] = dict(model.registers)
        self._max_gap: int | None = MAX_GAP  # None: one request per register
        self._plan = self._make_plan()
        self._failures = 0  # reads in a row without an answer
        self._skip = 0  # polls still to skip
        self._silent_since: float | None = None  # poll time of the first read without an answer
        self._last_problem = ""

    @property
    def quantities(self) -> frozenset[str]:
        """The quantities this meter offers: its model's, less any its device refused."""
        return frozenset(self._registers)

    @property
    def index_wrap_wh(self) -> int | None:
        """Where the import index rolls over to 0: 2^bits x scale x unit of an integer register, None for floats. [Wh]

        (2^31 for a signed int32: the meter counts up to its largest positive value.)
        """
        return rollover_wh(self.model.registers["import_energy"])

    @property
    def requests_per_read(self) -> int:
        """Requests one successful read takes now."""
        return len(self._plan)

    def _make_plan(self) -> list[Request]:
        wanted = [(r.function, r.address, r.count) for r in self._registers.values()]
        if self._max_gap is None:
            return sorted(set(wanted))
        return plan_requests(wanted, max_gap=self._max_gap)

    def read(self, t: float) -> Reading:
        """Poll the meter; ``t`` [s since epoch] is stamped on the reading.

        Energies of the dedicated fields are rounded to whole Wh, power is in
        W, :attr:`Reading.values` holds the other quantities in Wh, W, V, A,
        Hz. A non-finite value of a quantity other than import/export energy
        and power is left out of :attr:`Reading.values` (a phase a meter does
        not measure must not cost the energy reading).

        Raises:
            MeterSkippedError: the meter is in backoff; nothing was sent.
            ModbusExceptionError: the meter answered with an exception.
            MeterError: no valid answer (also :class:`NoAnswerError`,
                :class:`BadFrameError`), or a non-finite or negative energy,
                or a non-finite power.
        """
        if self._skip > 0:
            self._skip -= 1
            raise self._skipped()
        try:
            words = self._read_words()
        except ModbusExceptionError as exc:
            self._answered()
            raise ModbusExceptionError(f"meter {self.meter_id}: {exc}", exc.code) from exc
        except MeterError as exc:
            self._not_answered(t, exc)
            error = type(exc) if type(exc) in (NoAnswerError, BadFrameError) else MeterError
            raise error(f"meter {self.meter_id}: {exc}") from exc
        self._answered()
        values: dict[str, float] = {}
        for quantity, register in self._registers.items():
            value = decode(register, words[register.function, register.address])
            if not math.isfinite(value):
                if quantity in READ_QUANTITIES:
                    raise MeterError(f"meter {self.meter_id}: {quantity} is {value}, not a number")
                continue
            values[quantity] = value
        import_wh = self._energy_wh(values, "import_energy")
        export_wh = self._energy_wh(values, "export_energy") if "export_energy" in values else None
        power_w = values.get("power")
        for quantity in READ_QUANTITIES:
            values.pop(quantity, None)
        return Reading(t=t, import_wh=import_wh, export_wh=export_wh, power_w=power_w, values=values)

    def _skipped(self) -> MeterSkippedError:
        since = datetime.fromtimestamp(self._silent_since or 0.0, UTC).isoformat(timespec="seconds")
        polls_left = self._skip + 1
        return MeterSkippedError(
            f"meter {self.meter_id}: skipped, no answer since {since} ({self._failures} failed "
            f"read{'s' if self._failures > 1 else ''}, last: {self._last_problem}); next attempt in {polls_left} "
            f"poll{'s' if polls_left > 1 else ''}",
            polls_left,
        )

    def _not_answered(self, t: float, exc: MeterError) -> None:
        self._failures += 1
        if self._silent_since is None:
            self._silent_since = t
        self._last_problem = str(exc)
        if self.backoff_max_polls:
            self._skip = min(2 ** min(self._failures - 1, 30), self.backoff_max_polls)

    def _answered(self) -> None:
        self._failures = self._skip = 0
        self._silent_since = None
        self._last_problem = ""

    def _read_words(self) -> dict[tuple[int, int], list[int]]:
        """The words of each wanted register, by ``(function, address)``, adapting the plan to refusals."""
        while True:
            words: dict[tuple[int, int], list[int]] = {}
            for function, start, count in self._plan:
                try:
                    block = self.bus.read_registers(function, start, count, self.unit)
                except ModbusExceptionError as exc:
                    if exc.code == ILLEGAL_ADDRESS and self._adapt((function, start, count)):
                        break  # read again with the new plan
                    raise
                for register in self._registers.values():
                    offset = register.address - start
                    if register.function == function and 0 <= offset and offset + register.count <= count:
                        words[function, register.address] = block[offset : offset + register.count]
            else:
                return words

    def _adapt(self, refused: Request) -> bool:
        """Change the plan after ILLEGAL_ADDRESS for ``refused``; False when nothing is left to try."""
        plan = self._plan
        while self._max_gap is not None:
            self._max_gap = 0 if self._max_gap > 0 else None
            self._plan = self._make_plan()
            if self._plan != plan:
                function, address, count = refused
                log.info("meter %s: %s refused a read of %d registers from address %d (function %d, %s; "
                         "ILLEGAL_ADDRESS: some of them do not exist on this device); reading with %d smaller "
                         "requests now", self.meter_id, self.bus.endpoint, count, address, function,
                         "holding registers" if function == 3 else "input registers", len(self._plan))
                return True
        function, address, _ = refused
        dropped = [q for q, r in self._registers.items() if (r.function, r.address) == (function, address)]
        if not dropped or "import_energy" in dropped or not self.drop_refused:
            return False
        for quantity in dropped:
            del self._registers[quantity]
        self._plan = self._make_plan()
        log.warning("meter %s: the device refuses %s (function %d address %d, ILLEGAL_ADDRESS); no longer read",
                    self.meter_id, ", ".join(dropped), function, address)
        return True

    def _energy_wh(self, values: Mapping[str, float], quantity: str) -> int:
        value = values[quantity]
        if value < 0:
            raise MeterError(f"meter {self.meter_id}: {quantity} is negative ({value} Wh)")
        return round(value)

    def close(self) -> None:
        """Release this meter's share of its bus (only when it came from a pool)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.release(self.bus)

    def __repr__(self) -> str:
        return f"ModbusMeter({self.meter_id!r}, {self.bus.endpoint}, model={self.model.name!r}, unit={self.unit})"

