"""A simulated Linky's customer tele-information (TIC) output: real frames on a real serial port.

:class:`LinkyModel` (pure) builds the frame a Linky would send at a given
time, in historic or standard mode, for the main contracts; its energy
indexes come from a :class:`simulators.profile.LoadProfile`.
:class:`TicSimulator` writes those frames continuously on a serial port
(pyserial, 7E1, 1200 bit/s historic or 9600 bit/s standard), optionally
with line noise (:class:`TicNoise`), for the gateway's TIC reader to read
through :class:`simulators.serial_line.SerialLine`.

Tariff periods (local legal time, Europe/Paris through :mod:`zoneinfo`, so
the periods follow daylight-saving changes):

- ``BASE``: one period all day (PTEC ``TH..``, index BASE / EASF01).
- ``HC`` (heures creuses): off-peak from 22:00 to 06:00 by default
  (``offpeak``), peak otherwise. Indexes HCHC/HCHP, EASF01 (HC) / EASF02 (HP).
- ``EJP``: "pointe mobile" from 07:00 to 01:00 the next day on the days
  listed in ``ejp_days`` (local dates), "heures normales" otherwise.
  Indexes EJPHN/EJPHPM, EASF01 (HN) / EASF02 (PM).
- ``TEMPO``: a Tempo day runs from 06:00 to 06:00 the next day; its colour
  comes from ``tempo_calendar`` (local date of the day's start -> ``BLEU``,
  ``BLANC`` or ``ROUGE``), ``BLEU`` for dates not listed; off-peak hours as
  for ``HC``. Indexes BBRHCJB...BBRHPJR, EASF01..06 in that order. DEMAIN
  (historic) gives the next day's colour when the calendar lists it, else
  ``----``.

Energy accounting, like a real meter: the whole-Wh total is
``profile.index_wh(t)``; every Wh goes to the index of the period running
when it is counted, so the indexes are integers that sum exactly to the
total at any time (at the profile's epoch the whole initial index is on the
period running then). Standard mode sends EAST = that total, EASF = the
per-period indexes, EASD01 = EAST (a single distributor index; EASD02..04 = 0,
a simplification), and, for a producer (``export_profile``), EAIT and
SINSTI.

Powers: the TIC has no active power; the simulator takes a unity power
factor, so apparent power [VA] = the profile's power [W] (PAPP, SINSTS,
SINSTI), and the current [A] = VA / 230 V rounded (IINST, IRMS1).

Labels NGTF/LTARF texts are the simulator's own plausible choices, not
copied from a meter.
"""

from __future__ import annotations

import logging
import random
import termios
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from quartier.clock import Clock
from quartier.series import PARIS
from quartier.tic import BAUDRATES, HISTORIC, MODES, GroupSpec, encode_frame, format_horodate
from simulators.profile import LoadProfile, parse_hhmm

if TYPE_CHECKING:
    import serial  # imported when a simulator starts: pyserial is in the sim extra

log = logging.getLogger(__name__)

CONTRACTS = ("BASE", "HC", "EJP", "TEMPO")
TEMPO_COLOURS = ("BLEU", "BLANC", "ROUGE")
#: Bits on the line per character in 7E1: start + 7 data + parity + stop.
BITS_PER_CHAR = 10


@dataclass(frozen=True)
class Period:
    """One tariff period of a contract.

    Attributes:
        key: the period's name (``TH``, ``HC``, ``HP``, ``HN``, ``PM``, ``HCJB``...).
        historic_index: the historic index label counting in it (``HCHC``...).
        ptec: its historic PTEC value (4 characters).
        easf: its standard supplier index number (EASF01 = 1).
        ltarf: its standard LTARF text.
    """

    key: str
    historic_index: str
    ptec: str
    easf: int
    ltarf: str


_PERIODS: dict[str, tuple[Period, ...]] = {
    "BASE": (Period("TH", "BASE", "TH..", 1, "BASE"),),
    "HC": (
        Period("HC", "HCHC", "HC..", 1, "HEURE CREUSE"),
        Period("HP", "HCHP", "HP..", 2, "HEURE PLEINE"),
    ),
    "EJP": (
        Period("HN", "EJPHN", "HN..", 1, "HEURE NORMALE"),
        Period("PM", "EJPHPM", "PM..", 2, "POINTE MOBILE"),
    ),
    "TEMPO": (
        Period("HCJB", "BBRHCJB", "HCJB", 1, "HC BLEU"),
        Period("HPJB", "BBRHPJB", "HPJB", 2, "HP BLEU"),
        Period("HCJW", "BBRHCJW", "HCJW", 3, "HC BLANC"),
        Period("HPJW", "BBRHPJW", "HPJW", 4, "HP BLANC"),
        Period("HCJR", "BBRHCJR", "HCJR", 5, "HC ROUGE"),
        Period("HPJR", "BBRHPJR", "HPJR", 6, "HP ROUGE"),
    ),
}
_OPTARIF = {"BASE": "BASE", "HC": "HC..", "EJP": "EJP.", "TEMPO": "BBR("}
_NGTF = {"BASE": "BASE", "HC": "H PLEINE/CREUSE", "EJP": "EJP", "TEMPO": "TEMPO"}
_DEMAIN = {"BLEU": "BLEU", "BLANC": "BLAN", "ROUGE": "ROUG"}
_TEMPO_LETTER = {"BLEU": "B", "BLANC": "W", "ROUGE": "R"}


class TariffSchedule:
    """Which period of a contract runs at a given time (local Europe/Paris time; see the module doc).

    Args:
        contract: ``BASE``, ``HC``, ``EJP`` or ``TEMPO``.
        offpeak: off-peak ranges ``("HH:MM", "HH:MM")`` in local time (HC, TEMPO);
            a range whose end is before its start runs over midnight.
        tempo_calendar: local date -> ``BLEU``/``BLANC``/``ROUGE`` (TEMPO).
        ejp_days: local dates with "pointe mobile" (EJP).

    Raises:
        ValueError: unknown contract, bad time, unknown colour.
    """

    def __init__(
        self,
        contract: str,
        offpeak: Iterable[tuple[str, str]] = (("22:00", "06:00"),),
        tempo_calendar: Mapping[date, str] | None = None,
        ejp_days: Iterable[date] = (),
    ) -> None:
        if contract not in CONTRACTS:
            raise ValueError(f"contract {contract!r} must be one of {CONTRACTS}")
        self.contract = contract
        self.offpeak = tuple((parse_hhmm(a), parse_hhmm(b)) for a, b in offpeak)
        self.tempo_calendar = dict(tempo_calendar or {})
        for day, colour in self.tempo_calendar.items():
            if colour not in TEMPO_COLOURS:
                raise ValueError(f"tempo_calendar[{day}] = {colour!r} must be one of {TEMPO_COLOURS}")
        self.ejp_days = frozenset(ejp_days)
        self.periods = {p.key: p for p in _PERIODS[contract]}
        if contract in ("HC", "TEMPO"):
            seconds = {s for r in self.offpeak for s in r} | ({6 * 3600} if contract == "TEMPO" else set())
        elif contract == "EJP":
            seconds = {3600, 7 * 3600}
        else:
            seconds = set()
        self._boundary_seconds = sorted(seconds)

    def _offpeak(self, second_of_day: int) -> bool:
        for start, end in self.offpeak:
            if start <= end:
                if start <= second_of_day < end:
                    return True
            elif second_of_day >= start or second_of_day < end:
                return True
        return False

    def tempo_colour(self, t: float) -> str:
        """The colour of the Tempo day running at ``t`` [s] (days start at 06:00 local)."""
        local = datetime.fromtimestamp(t, PARIS)
        return self.tempo_calendar.get((local - timedelta(hours=6)).date(), "BLEU")

    def tomorrow_colour(self, t: float) -> str | None:
        """The colour of the next Tempo day if the calendar lists it, else None."""
        local = datetime.fromtimestamp(t, PARIS)
        return self.tempo_calendar.get((local - timedelta(hours=6)).date() + timedelta(days=1))

    def period_at(self, t: float) -> Period:
        """The period running at UTC time ``t`` [s since epoch]; a boundary instant belongs to the new period."""
        local = datetime.fromtimestamp(t, PARIS)
        second = local.hour * 3600 + local.minute * 60 + local.second
        if self.contract == "BASE":
            return self.periods["TH"]
        if self.contract == "HC":
            return self.periods["HC" if self._offpeak(second) else "HP"]
        if self.contract == "EJP":
            today_peak = local.date() in self.ejp_days and second >= 7 * 3600
            carried = (local.date() - timedelta(days=1)) in self.ejp_days and second < 3600
            return self.periods["PM" if today_peak or carried else "HN"]
        colour = _TEMPO_LETTER[self.tempo_colour(t)]
        return self.periods[("HC" if self._offpeak(second) else "HP") + "J" + colour]

    def next_boundary(self, t: float) -> float | None:
        """The first instant after ``t`` [s] at which the period may change, or None (BASE). [s]"""
        if not self._boundary_seconds:
            return None
        day = datetime.fromtimestamp(t, PARIS).date() - timedelta(days=1)
        for _ in range(4):
            for second in self._boundary_seconds:
                local = datetime(day.year, day.month, day.day, second // 3600, second % 3600 // 60, tzinfo=PARIS)
                ts = local.timestamp()
                if ts > t:
                    return ts
            day += timedelta(days=1)
        raise AssertionError("no boundary within three days")  # pragma: no cover


class PeriodIndexes:
    """Per-period whole-Wh indexes that sum to ``profile.index_wh(t)``, as a meter keeps them.

    Walks the period boundaries from the profile's epoch (or from the last
    time asked, when time moves forward): at each boundary the period that
    ends keeps ``index_wh(boundary) - (the other periods' indexes)``.
    """

    def __init__(self, profile: LoadProfile, schedule: TariffSchedule) -> None:
        self.profile = profile
        self.schedule = schedule
        self._reset()

    def _reset(self) -> None:
        start = float(self.profile.epoch)
        self._t = start
        self._period = self.schedule.period_at(start).key
        self._indexes = {key: 0 for key in self.schedule.periods}
        self._indexes[self._period] = self.profile.initial_index_wh

    def at(self, t: float) -> tuple[dict[str, int], Period]:
        """The index of every period key at ``t`` [s], and the running period.

        Raises:
            ValueError: ``t`` before the profile's epoch.
        """
        if t < self.profile.epoch:
            raise ValueError(f"t = {t} s is before the profile's epoch {self.profile.epoch} s")
        if t < self._t:
            self._reset()
        while True:
            boundary = self.schedule.next_boundary(self._t)
            if boundary is None or boundary > t:
                break
            self._close_period(boundary)
        indexes = dict(self._indexes)
        indexes[self._period] = self.profile.index_wh(t) - sum(v for k, v in indexes.items() if k != self._period)
        return indexes, self.schedule.periods[self._period]

    def _close_period(self, boundary: float) -> None:
        total = self.profile.index_wh(boundary)
        others = sum(v for k, v in self._indexes.items() if k != self._period)
        self._indexes[self._period] = total - others
        self._t = boundary
        self._period = self.schedule.period_at(boundary).key


class LinkyModel:
    """What a Linky sends at a given time: pure, no I/O.

    Args:
        mode: ``historic`` or ``standard``.
        meter_id: ADCO / ADSC, 12 digits.
        contract: ``BASE``, ``HC``, ``EJP`` or ``TEMPO``.
        profile: imported power and energy.
        export_profile: exported power and energy (a producer; standard mode only).
        schedule: the tariff schedule (default: the contract's with 22:00-06:00 off-peak).
        subscribed_kva: subscribed apparent power (PREF, PCOUP; ISOUSC = 5 A per kVA). [kVA, 1..99]

    Raises:
        ValueError: bad mode, contract, meter id, or an export profile in historic mode.
    """

    def __init__(
        self,
        mode: str,
        meter_id: str,
        contract: str,
        profile: LoadProfile,
        export_profile: LoadProfile | None = None,
        schedule: TariffSchedule | None = None,
        subscribed_kva: int = 9,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} must be one of {MODES}")
        if not (isinstance(meter_id, str) and len(meter_id) == 12 and meter_id.isascii() and meter_id.isdigit()):
            raise ValueError(f"meter_id {meter_id!r} must be 12 digits")
        if export_profile is not None and mode == HISTORIC:
            raise ValueError("historic mode has no injection index: give export_profile in standard mode only")
        if not 1 <= subscribed_kva <= 99:
            raise ValueError(f"subscribed_kva {subscribed_kva!r} must be in 1..99")
        self.mode = mode
        self.meter_id = meter_id
        self.contract = contract
        self.profile = profile
        self.export_profile = export_profile
        self.schedule = schedule or TariffSchedule(contract)
        if self.schedule.contract != contract:
            raise ValueError(f"schedule is for {self.schedule.contract}, not {contract}")
        self.subscribed_kva = subscribed_kva
        self._indexes = PeriodIndexes(profile, self.schedule)
        self._lock = threading.Lock()

    def indexes_at(self, t: float) -> tuple[dict[str, int], Period]:
        """Per-period indexes by period key and the running period at ``t`` [s]."""
        with self._lock:
            return self._indexes.at(t)

    def groups(self, t: float) -> list[GroupSpec]:
        """The groups of the frame at ``t`` [s], in sending order."""
        return self._historic_groups(t) if self.mode == HISTORIC else self._standard_groups(t)

    def frame(self, t: float) -> bytes:
        """The encoded frame (STX ... ETX) at ``t`` [s]."""
        return encode_frame(self.groups(t), self.mode)

    def _power_va(self, t: float) -> int:
        return min(99999, round(self.profile.power_w(t)))

    def _historic_groups(self, t: float) -> list[GroupSpec]:
        indexes, period = self.indexes_at(t)
        va = self._power_va(t)
        groups: list[GroupSpec] = [
            ("ADCO", self.meter_id),
            ("OPTARIF", _OPTARIF[self.contract]),
            ("ISOUSC", f"{min(99, self.subscribed_kva * 5):02d}"),
        ]
        for p in _PERIODS[self.contract]:
            groups.append((p.historic_index, f"{indexes[p.key]:09d}"))
        groups.append(("PTEC", period.ptec))
        if self.contract == "TEMPO":
            tomorrow = self.schedule.tomorrow_colour(t)
            groups.append(("DEMAIN", _DEMAIN[tomorrow] if tomorrow else "----"))
        groups += [
            ("IINST", f"{min(999, round(va / 230)):03d}"),
            ("IMAX", "090"),
            ("PAPP", f"{va:05d}"),
            ("HHPHC", "A"),
            ("MOTDETAT", "000000"),
        ]
        return groups

    def _standard_groups(self, t: float) -> list[GroupSpec]:
        indexes, period = self.indexes_at(t)
        total = sum(indexes.values())
        va = self._power_va(t)
        easf = {p.easf: indexes[p.key] for p in _PERIODS[self.contract]}
        groups: list[GroupSpec] = [
            ("ADSC", self.meter_id),
            ("VTIC", "02"),
            ("DATE", format_horodate(t), ""),
            ("NGTF", f"{_NGTF[self.contract]:<16}"),
            ("LTARF", f"{period.ltarf:<16}"),
            ("EAST", f"{total:09d}"),
        ]
        groups += [(f"EASF{i:02d}", f"{easf.get(i, 0):09d}") for i in range(1, 11)]
        groups += [(f"EASD{i:02d}", f"{total if i == 1 else 0:09d}") for i in range(1, 5)]
        if self.export_profile is not None:
            groups.append(("EAIT", f"{self.export_profile.index_wh(t):09d}"))
        groups += [
            ("IRMS1", f"{min(999, round(va / 230)):03d}"),
            ("URMS1", "230"),
            ("PREF", f"{self.subscribed_kva:02d}"),
            ("PCOUP", f"{self.subscribed_kva:02d}"),
            ("SINSTS", f"{va:05d}"),
        ]
        if self.export_profile is not None:
            groups.append(("SINSTI", f"{min(99999, round(self.export_profile.power_w(t))):05d}"))
        groups += [
            ("STGE", "003A0001"),
            ("MSG1", f"{'PAS DE':<16}{'MESSAGE':<16}"),
            ("NTARF", f"{period.easf:02d}"),
            ("NJOURF", "00"),
            ("NJOURF+1", "00"),
        ]
        return groups


@dataclass(frozen=True)
class TicNoise:
    """Line faults for tests, drawn from a seeded RNG so a run is repeatable.

    Attributes:
        bit_flip_p: probability that a byte has one of its 7 data bits
            flipped. [0..1, per byte]
        cut_p: probability that a frame is cut at a random point, ended by an
            EOT (half the time) or by nothing (a missing ETX). [0..1, per frame]
        garbage_p: probability of 1..16 random 7-bit bytes before a frame. [0..1, per frame]
        seed: the RNG seed.
    """

    bit_flip_p: float = 0.0
    cut_p: float = 0.0
    garbage_p: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("bit_flip_p", "cut_p", "garbage_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} = {value!r} must be a probability in [0, 1]")


def apply_noise(frame: bytes, noise: TicNoise, rng: random.Random) -> bytes:
    """``frame`` as the line may deliver it: garbage before it, bit flips in it, cut short."""
    out = bytearray()
    if noise.garbage_p and rng.random() < noise.garbage_p:
        out += bytes(rng.randrange(0x80) for _ in range(rng.randint(1, 16)))
    body = bytearray(frame)
    if noise.bit_flip_p:
        for i in range(len(body)):
            if rng.random() < noise.bit_flip_p:
                body[i] ^= 1 << rng.randrange(7)
    if noise.cut_p and len(body) > 1 and rng.random() < noise.cut_p:
        body = body[: rng.randrange(1, len(body))] + (b"\x04" if rng.random() < 0.5 else b"")
    out += body
    return bytes(out)


class TicSimulator:
    """A Linky writing frames continuously on a serial port (a thread; see the module doc).

    Each frame is built at ``clock.now()`` when it is sent. After writing a
    frame the simulator waits the frame's line time (10 bits per character
    at the mode's speed) plus ``frame_gap_s``, as a meter sends back to back:
    a short historic frame takes ~1.5 s at 1200 bit/s, a standard one ~0.6 s
    at 9600 bit/s.

    Args:
        port_path: the serial port (e.g. :attr:`SerialLine.end_a`).
        mode, meter_id, contract, profile, export_profile, schedule: see :class:`LinkyModel`.
        clock: the time written in frames.
        noise: optional line faults.
        frame_gap_s: silence between frames (the documents give 16.7..33.4 ms). [s]

    Attributes:
        frames_sent: frames written so far.
        last_frame_t: the clock time of the last frame written. [s]
    """

    def __init__(
        self,
        port_path: str,
        mode: str,
        meter_id: str,
        contract: str,
        profile: LoadProfile,
        clock: Clock,
        export_profile: LoadProfile | None = None,
        schedule: TariffSchedule | None = None,
        noise: TicNoise | None = None,
        frame_gap_s: float = 0.03,
    ) -> None:
        self.model = LinkyModel(mode, meter_id, contract, profile, export_profile, schedule)
        self.port_path = port_path
        self.clock = clock
        self.noise = noise
        self.frame_gap_s = frame_gap_s
        self.baudrate = BAUDRATES[mode]
        self.frames_sent = 0
        self.last_frame_t: float | None = None
        self._rng = random.Random(noise.seed if noise else 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: serial.Serial | None = None

    @property
    def mode(self) -> str:
        return self.model.mode

    def start(self) -> TicSimulator:
        """Open the port and start sending; returns self.

        Raises:
            serial.SerialException: the port cannot be opened.
        """
        import serial

        if self._thread is not None:
            raise RuntimeError("TIC simulator already started")
        try:
            self._port = serial.Serial(
                self.port_path,
                self.baudrate,
                bytesize=serial.SEVENBITS,
                parity=serial.PARITY_EVEN,
                stopbits=serial.STOPBITS_ONE,
                timeout=0,
                write_timeout=2,
            )
        except (serial.SerialException, termios.error):
            # A pseudo-terminal forces CS8 and refuses (EINVAL) a 7E1 setup that changes nothing else; the
            # bytes written are 7-bit ASCII either way and the line (SerialLine) applies its own format.
            self._port = serial.Serial(self.port_path, self.baudrate, timeout=0, write_timeout=2)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"tic-simulator-{self.model.meter_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._port is not None:
            try:
                self._port.close()
            except Exception:  # noqa: BLE001 - closing a vanished port
                pass
            self._port = None

    def __enter__(self) -> TicSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        port = self._port
        assert port is not None
        while not self._stop.is_set():
            t = self.clock.now()
            wire = self.model.frame(t)
            if self.noise is not None:
                wire = apply_noise(wire, self.noise, self._rng)
            started = time.monotonic()
            try:
                port.write(wire)
            except Exception as exc:  # noqa: BLE001 - the port vanished: stop like an unplugged meter
                log.warning("TIC simulator on %s stopped: %s", self.port_path, exc)
                return
            self.frames_sent += 1
            self.last_frame_t = t
            line_time = len(wire) * BITS_PER_CHAR / self.baudrate
            self._stop.wait(max(0.0, started + line_time + self.frame_gap_s - time.monotonic()))
