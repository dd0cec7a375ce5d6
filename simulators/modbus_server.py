"""Thread and event-loop plumbing shared by the simulated Modbus servers (TCP and RTU).

A :class:`ServerThread` runs one pymodbus server in an asyncio loop of its
own, in a daemon thread, so that a synchronous test or demo can start it,
poll it and stop it. Subclasses say what to serve (:meth:`ServerThread._devices`)
and how to build the server (:meth:`ServerThread._make_server`), and may look at it once it listens
(:meth:`ServerThread._listening`, e.g. to learn the TCP port the OS chose).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from pymodbus.simulator import SimDevice

#: How long :meth:`ServerThread.start` waits for the server to listen. [s]
START_TIMEOUT_S = 10.0
#: How long :meth:`ServerThread.stop` waits for the server thread to end. [s]
STOP_TIMEOUT_S = 5.0


def check_units(units: Sequence[int]) -> None:
    """Refuse an empty list of simulated meters or two meters with one unit id.

    Raises:
        ValueError: no meters, or duplicate unit ids (named).
    """
    if not units:
        raise ValueError("a simulator needs at least one meter")
    duplicates = sorted({unit for unit in units if list(units).count(unit) > 1})
    if duplicates:
        raise ValueError(f"unit ids {duplicates} are used by more than one simulated meter")


class ServerThread:
    """A pymodbus server in a background thread: :meth:`start`, :meth:`stop`, or use it as a context manager.

    Subclasses implement :meth:`_devices`, :meth:`_make_server` and
    :attr:`where` (used in thread names and error messages).
    """

    #: Name of the kind of server, for messages ("Modbus TCP", "Modbus RTU").
    kind = "Modbus"

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    @property
    def where(self) -> str:
        """Where the server listens (``host:port``, a serial device), for messages."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Whether the server thread runs."""
        return self._thread is not None

    def _devices(self) -> list[SimDevice]:
        """The pymodbus devices to serve (overridden by subclasses)."""
        raise NotImplementedError

    def _make_server(self, devices: list[SimDevice]) -> Any:
        """Build the (not yet listening) pymodbus server; runs inside the server's event loop."""
        raise NotImplementedError

    def _listening(self, server: Any) -> None:
        """Called in the server's loop once ``server`` listens, before :meth:`start` returns."""

    def start(self) -> None:
        """Start serving; returns once the server listens.

        Raises:
            RuntimeError: already started, or the server could not listen
                (address in use, serial device missing, ...) within 10 s.
        """
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._ready.clear()
        self._error = None
        where = self.where
        self._thread = threading.Thread(target=self._run, name=f"modbus-sim-{where}", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"{self.kind} simulator on {where} did not start within {START_TIMEOUT_S} s")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
            raise RuntimeError(f"{self.kind} simulator cannot listen on {where}: {self._error}") from self._error

    def stop(self) -> None:
        """Stop serving and close every connection or port; does nothing when not running.

        Raises:
            RuntimeError: the server thread did not end within 5 s.
        """
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:  # the loop closed in between
                pass
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError(f"{self.kind} simulator on {self.where} did not stop within {STOP_TIMEOUT_S} s")
        self._thread = self._loop = self._stop_event = None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), which waits for _ready
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        server = self._make_server(self._devices())
        await server.serve_forever(background=True)
        self._listening(server)
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await server.shutdown()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _Meter(Protocol):
    """What :func:`meter_devices` needs of a simulated meter (a :class:`simulators.modbus_tcp.SimulatedMeter`)."""

    unit: int

    def device(self) -> SimDevice: ...

    def identify_device(self) -> SimDevice | None: ...


def meter_devices(meters: Sequence[_Meter]) -> list[SimDevice]:
    """The pymodbus devices serving ``meters``: one per meter, plus the identification devices they need.

    An identification device (a model that answers its identity at another
    unit id) is added once per unit id, and never over a meter's own unit id.
    """
    devices = [meter.device() for meter in meters]
    taken = {meter.unit for meter in meters}
    for meter in meters:
        extra = meter.identify_device()
        if extra is not None and extra.id not in taken:
            devices.append(extra)
            taken.add(extra.id)
    return devices
