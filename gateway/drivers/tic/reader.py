"""The TIC meter: a reader thread on the serial port that keeps the latest complete frame."""

from __future__ import annotations

import logging
import termios
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import serial

from gateway.drivers.base import Reading
from gateway.drivers.tic.port import _READ_CHUNK, AUTO, DETECT_ORDER, DETECT_WINDOW_S, SerialFactory, open_serial, probe
from quartier.clock import Clock, SystemClock
from quartier.errors import MeterError, MeterNotReadyError
from quartier.tic import (
    BAUDRATES,
    MODES,
    AssemblerStats,
    Frame,
    FrameAssembler,
    TicDataError,
    TicReading,
    tic_reading,
)

log = logging.getLogger("gateway.drivers.tic")

#: Where a reading's time comes from (see :class:`TicMeter`).
TIME_SOURCES = ("gateway", "meter")


def reading_of(tic: TicReading, t: float) -> Reading:
    """The gateway's :class:`~gateway.drivers.base.Reading` of one frame, stamped ``t`` [s].

    ``power_w`` is None: the TIC gives apparent power only, never passed off as active power.
    """
    return Reading(
        t=t,
        import_wh=tic.import_wh,
        export_wh=tic.export_wh,
        power_w=None,
        values=dict(tic.values),
        indexes_wh=dict(tic.indexes_wh),
        tariff_period=tic.tariff_period,
    )


@dataclass(frozen=True)
class TicReaderStats:
    """A snapshot of a :class:`TicMeter`'s counters.

    Attributes:
        device: the serial port.
        state: ``starting``, ``detecting``, ``reading``, ``port error`` or ``closed``.
        mode: the mode in use (None while detecting).
        baudrate: the speed in use (None while detecting). [bit/s]
        bytes_received ... groups_malformed: the frame assembler's counters
            (:class:`quartier.tic.AssemblerStats`), over every speed tried;
            bytes read by a detection that failed count as discarded, so
            ``bytes_received == bytes_discarded + bytes_framed + bytes_pending``
            and ``frames_started == frames_ok + frames_empty + frames_cut + (bytes_pending > 0)``.
        bytes_pending: bytes of the frame being received (its STX included).
        frames_incomplete: returned frames with a dropped group (not used).
        frames_unusable: complete frames that make no reading (no index, a
            non-numeric index...).
        detections: successful detections.
        detection_failures: detection rounds (every speed tried) that found nothing.
        port_errors: failures to open or read the port.
        frames_without_meter_time: with ``time_source = "meter"``, frames
            stamped with the gateway clock for want of a synchronised DATE.
        last_error: the last port error's text.
        last_frame_age_s: age of the latest usable frame, if any. [s]
    """

    device: str
    state: str
    mode: str | None
    baudrate: int | None
    bytes_received: int
    bytes_discarded: int
    bytes_framed: int
    bytes_pending: int
    frames_started: int
    frames_ok: int
    frames_empty: int
    frames_cut: int
    groups_ok: int
    groups_bad_checksum: int
    groups_malformed: int
    frames_incomplete: int
    frames_unusable: int
    detections: int
    detection_failures: int
    port_errors: int
    frames_without_meter_time: int
    last_error: str | None
    last_frame_age_s: float | None

    def summary(self) -> str:
        """One line for error messages and logs."""
        mode = f"{self.mode} at {self.baudrate} bit/s" if self.mode else "mode not detected"
        text = (
            f"{self.state}, {mode}; {self.bytes_received} bytes ({self.bytes_discarded} discarded), "
            f"{self.frames_ok} frames ({self.frames_incomplete} incomplete, {self.frames_cut} cut), "
            f"{self.groups_bad_checksum} bad checksums, {self.groups_malformed} malformed groups"
        )
        if self.port_errors:
            text += f"; {self.port_errors} port errors, last: {self.last_error}"
        return text


def _add_stats(total: AssemblerStats, part: AssemblerStats) -> None:
    for name, value in asdict(part).items():
        setattr(total, name, getattr(total, name) + value)


class TicMeter:
    """A meter read through its TIC output (implements ``gateway.drivers.base.Meter``).

    Args:
        meter_id: the meter's id in the gateway configuration.
        device: serial port path (``/dev/ttyUSB0``, ``/dev/serial0``...).
        mode: ``auto`` (detect and re-detect), ``historic`` (1200 bit/s) or ``standard`` (9600 bit/s).
        timeout_s: a reading comes from a frame at most this old. [s, > 0]
        expected_id: the meter's ADCO/ADSC; frames from another meter make
            :meth:`read` fail. None: not checked.
        detect_window_s: listening time per speed during detection (None:
            :data:`DETECT_WINDOW_S`). [s]
        redetect_after_s: in ``auto`` mode, detect again after this long
            without a valid frame. [s]
        reopen_backoff_s: first wait before reopening a failed port,
            doubled up to ``max_backoff_s``. [s]
        serial_factory: opens the port (tests may substitute it).
        clock: the gateway's clock; a reading is stamped with its time when
            the frame's STX arrived (None: the system clock).
        time_source: ``gateway`` (default): stamp readings with ``clock`` at
            the frame's STX; ``meter``: stamp them with the Linky's own DATE
            horodate (standard mode; Enedis keeps the meter's clock
            synchronised), for a gateway whose clock cannot be trusted
            (no RTC, no network time yet) or a simulation whose clock jumps.
            A frame without a synchronised DATE then falls back to ``clock``
            (counted in ``frames_without_meter_time``).

    Reading time: a Linky samples its indexes when it starts a frame, so a
    reading is stamped with the time its frame *started* to arrive (the STX),
    not with the poll time: a frame takes 0.1 to 0.5 s at 9600 bit/s and up
    to several seconds at 1200 bit/s, and polls come at any moment between
    two frames. The remaining error is the meter's own delay between
    sampling and sending (not specified by Enedis; tens of ms on captures).
    """

    def __init__(
        self,
        meter_id: str,
        device: str,
        mode: str = AUTO,
        timeout_s: float = 10.0,
        expected_id: str | None = None,
        detect_window_s: float | None = None,
        redetect_after_s: float = 30.0,
        reopen_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        serial_factory: SerialFactory = open_serial,
        clock: Clock | None = None,
        time_source: str = "gateway",
    ) -> None:
        if time_source not in TIME_SOURCES:
            raise ValueError(f"time_source {time_source!r} must be one of {TIME_SOURCES}")
        if mode not in (AUTO, *MODES):
            raise ValueError(f"mode {mode!r} must be one of {(AUTO, *MODES)}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s {timeout_s!r} must be > 0")
        self.meter_id = meter_id
        self.device = device
        self.requested_mode = mode
        self.timeout_s = float(timeout_s)
        self.expected_id = expected_id
        self.detect_window_s = dict(DETECT_WINDOW_S)
        if detect_window_s is not None:
            self.detect_window_s = {m: float(detect_window_s) for m in MODES}
        self.redetect_after_s = redetect_after_s
        self.reopen_backoff_s = reopen_backoff_s
        self.max_backoff_s = max_backoff_s
        self._serial_factory = serial_factory
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.time_source = time_source
        self._frame_started: float | None = None  # clock time of the open frame's STX
        self._started_at = time.monotonic()  # when start() ran [s, monotonic]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: Any = None
        self._mode: str | None = None if mode == AUTO else mode
        self._baudrate: int | None = None
        self._assembler: FrameAssembler | None = None
        self._past = AssemblerStats()
        self._latest: tuple[TicReading, float, float] | None = None  # reading, monotonic rx, clock time of STX
        self._last_valid_rx: float | None = None
        self._state = "starting"
        self._counters = {
            "frames_incomplete": 0,
            "frames_unusable": 0,
            "detections": 0,
            "detection_failures": 0,
            "port_errors": 0,
            "frames_without_meter_time": 0,
        }
        self._last_error: str | None = None
        self._port_error_logged = False
        self._unusable_logged = False
        self._surprise_logged = False

    # ------------------------------------------------------------------ public

    def start(self) -> TicMeter:
        """Start the reader thread (it opens the port); returns self."""
        if self._thread is not None:
            raise RuntimeError(f"TIC reader on {self.device} already started")
        self._stop.clear()
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"tic-{self.meter_id}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._close_port()
        with self._lock:
            self._state = "closed"

    def __enter__(self) -> TicMeter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    #: TIC energy indexes have 9 digits of Wh: they roll over at 10^9 Wh. [Wh]
    index_wrap_wh = 10**9

    @property
    def latest(self) -> TicReading | None:
        """The latest usable frame's content, however old."""
        with self._lock:
            return self._latest[0] if self._latest else None

    @property
    def stats(self) -> TicReaderStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            total = AssemblerStats(**asdict(self._past))
            if self._assembler is not None:
                _add_stats(total, self._assembler.stats)
            age = time.monotonic() - self._latest[1] if self._latest else None
            pending = self._assembler.pending_bytes if self._assembler is not None else 0
            return TicReaderStats(
                device=self.device,
                state=self._state,
                mode=self._mode if self._state == "reading" else None,
                baudrate=self._baudrate if self._state == "reading" else None,
                **asdict(total),
                bytes_pending=pending,
                **self._counters,
                last_error=self._last_error,
                last_frame_age_s=age,
            )

    @property
    def startup_s(self) -> float:
        """How long after :meth:`start` a missing first frame is "starting", not a failure: the detection
        windows (``auto``) and one ``timeout_s``. [s]"""
        detect = sum(self.detect_window_s.values()) if self.requested_mode == AUTO else 0.0
        return detect + self.timeout_s

    def read(self, t: float) -> Reading:
        """The reading of the latest complete frame, stamped with the time its STX arrived [s since epoch].

        ``t`` (the poll time) is not used for the stamp (see the class
        docstring); a poll that finds the same frame as the previous one gets
        the same stamp, which the interval builder ignores.

        Raises:
            MeterError: no usable frame yet, the latest one older than
                ``timeout_s``, or frames from another meter than ``expected_id``;
                the message carries the reader's counters.
        """
        with self._lock:
            latest = self._latest
        where = f"meter {self.meter_id}: TIC on {self.device}"
        if latest is None:
            if time.monotonic() - self._started_at < self.startup_s:
                raise MeterNotReadyError(f"{where}: no valid frame yet, still starting ({self.stats.summary()})")
            raise MeterError(f"{where}: no valid frame yet ({self.stats.summary()})")
        tic, received, started = latest
        age = time.monotonic() - received
        if age > self.timeout_s:
            raise MeterError(
                f"{where}: stale, last valid frame {age:.1f} s ago (timeout_s = {self.timeout_s:g} s) "
                f"({self.stats.summary()})"
            )
        if self.expected_id is not None and tic.meter_id != self.expected_id:
            raise MeterError(
                f"{where}: frames come from meter {tic.meter_id}, the configuration expects {self.expected_id}; "
                f"check the wiring or the adco/adsc option"
            )
        return reading_of(tic, started)

    def __repr__(self) -> str:
        return f"TicMeter({self.meter_id!r}, {self.device!r}, mode={self.requested_mode!r})"

    # ------------------------------------------------------------------ thread

    def _run(self) -> None:
        backoff = self.reopen_backoff_s
        while not self._stop.is_set():
            try:
                if self._port is None:
                    self._open()
                    backoff = self.reopen_backoff_s
                if self._mode is None or self._assembler is None:
                    self._detect()
                else:
                    self._read_once()
            except (serial.SerialException, OSError, ValueError, termios.error) as exc:
                self._port_failed(exc)
                self._close_port()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            except Exception as exc:  # noqa: BLE001 - the reader must outlive any surprise
                if not self._surprise_logged:
                    log.exception("%s: TIC reader error on %s; reopening the port", self.meter_id, self.device)
                    self._surprise_logged = True
                self._port_failed(exc)
                self._close_port()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _open(self) -> None:
        first = self._mode or DETECT_ORDER[0]
        port = self._serial_factory(self.device, BAUDRATES[first])
        with self._lock:
            self._port = port
            if self._port_error_logged:
                log.info("%s: TIC port %s open again", self.meter_id, self.device)
                self._port_error_logged = False
            if self.requested_mode == AUTO:
                self._retire_assembler()
                self._mode = None
            else:
                self._state = "reading"
                self._baudrate = BAUDRATES[first]
                if self._assembler is None:
                    self._assembler = FrameAssembler(first)

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - closing a vanished port
                pass

    def _port_failed(self, exc: BaseException) -> None:
        with self._lock:
            self._counters["port_errors"] += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._state = "port error"
            if self._assembler is not None:
                self._assembler.reset()
            first = not self._port_error_logged
            self._port_error_logged = True
        if first:
            log.warning("%s: TIC port %s failed (%s); retrying with backoff", self.meter_id, self.device, exc)

    def _retire_assembler(self) -> None:
        """Fold the current assembler's counters into the totals (caller holds the lock)."""
        if self._assembler is not None:
            self._assembler.reset()
            _add_stats(self._past, self._assembler.stats)
            self._assembler = None

    def _detect(self) -> None:
        with self._lock:
            self._state = "detecting"
        for mode in DETECT_ORDER:
            if self._stop.is_set():
                return
            found, data = probe(self._port, mode, self.detect_window_s[mode], self._stop)
            if found is None:
                with self._lock:
                    self._past.bytes_received += len(data)
                    self._past.bytes_discarded += len(data)
                continue
            with self._lock:
                self._retire_assembler()
                self._mode = found
                self._baudrate = BAUDRATES[mode]
                self._assembler = FrameAssembler(found)
                self._counters["detections"] += 1
                self._state = "reading"
                self._last_valid_rx = time.monotonic()
            log.info("%s: TIC on %s: %s mode at %d bit/s", self.meter_id, self.device, found, BAUDRATES[mode])
            self._consume(data)
            return
        with self._lock:
            self._counters["detection_failures"] += 1

    def _read_once(self) -> None:
        # Return as soon as a byte is there, so that a frame's start is timed to the byte, not to the read timeout.
        waiting = getattr(self._port, "in_waiting", 0) or 0
        data = self._port.read(max(1, min(waiting, _READ_CHUNK)))
        if data:
            self._consume(data)
        last = self._last_valid_rx
        if self.requested_mode == AUTO and last is not None and time.monotonic() - last > self.redetect_after_s:
            log.info(
                "%s: no valid TIC frame on %s for %.0f s; detecting the speed again",
                self.meter_id,
                self.device,
                time.monotonic() - last,
            )
            with self._lock:
                self._retire_assembler()
                self._mode = None
                self._last_valid_rx = None

    def _consume(self, data: bytes) -> None:
        now = self._clock.now()
        with self._lock:
            assembler = self._assembler
            if assembler is None:
                return
            was_open = assembler.in_frame
            started_before = assembler.stats.frames_started
            frames = assembler.feed(data)
            started_here = assembler.stats.frames_started - started_before
            # A frame open before this chunk that completes in it is the first one returned, unless it was cut.
            carried = was_open and started_here < len(frames) + assembler.in_frame
            first = self._frame_started if carried and self._frame_started is not None else now
            starts = [first] + [now] * (len(frames) - 1)
            if assembler.in_frame and started_here:
                self._frame_started = now
        for frame, started in zip(frames, starts):
            self._on_frame(frame, started)

    def _on_frame(self, frame: Frame, started: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._last_valid_rx = now
            if not frame.complete:
                self._counters["frames_incomplete"] += 1
                return
        try:
            tic = tic_reading(frame)
        except TicDataError as exc:
            with self._lock:
                self._counters["frames_unusable"] += 1
                first = not self._unusable_logged
                self._unusable_logged = True
            if first:
                log.warning("%s: TIC frame on %s makes no reading: %s", self.meter_id, self.device, exc)
            return
        if self.time_source == "meter":
            if tic.meter_time is not None:
                started = tic.meter_time
            else:
                with self._lock:
                    self._counters["frames_without_meter_time"] += 1
        with self._lock:
            self._latest = (tic, now, started)
