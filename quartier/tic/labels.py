"""What a TIC frame says: the horodate, and the labels mapped to indexes and values (:class:`TicReading`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from quartier.series import PARIS
from quartier.tic.frames import Frame
from quartier.tic.groups import _HORODATE_RE, HISTORIC, STANDARD, Group, TicDataError


@dataclass(frozen=True)
class Horodate:
    """A standard-mode horodate.

    Attributes:
        season: ``E`` (summer time, UTC+2), ``H`` (winter time, UTC+1) or
            ``""`` when the meter sent a space (unknown).
        synchronised: False when the letter was lowercase (the meter's clock
            is not synchronised to the system's).
        local: the local legal time, naive.
    """

    season: str
    synchronised: bool
    local: datetime

    def timestamp(self) -> float | None:
        """UTC seconds since the epoch, or None when the season (hence the UTC offset) is unknown. [s]"""
        if not self.season:
            return None
        offset = timedelta(hours=2 if self.season == "E" else 1)
        return self.local.replace(tzinfo=timezone(offset)).timestamp()


def parse_horodate(text: str) -> Horodate:
    """Decode ``SYYMMDDhhmmss`` (S = E, H, e, h or space).

    Raises:
        ValueError: not 13 characters of that form, or not a calendar date/time.
    """
    if not _HORODATE_RE.match(text):
        raise ValueError(f"horodate {text!r} must be [EeHh ]YYMMDDhhmmss")
    local = datetime.strptime(text[1:], "%y%m%d%H%M%S")
    letter = text[0]
    return Horodate(season=letter.upper().strip(), synchronised=letter != " " and letter.isupper(), local=local)


def format_horodate(t: float, synchronised: bool = True, tz: ZoneInfo = PARIS) -> str:
    """The horodate of UTC time ``t`` [s since epoch] in ``tz`` (Europe/Paris): E in summer time, H in winter."""
    local = datetime.fromtimestamp(t, tz)
    dst = local.dst()
    letter = "E" if dst and dst > timedelta(0) else "H"
    if not synchronised:
        letter = letter.lower()
    return letter + local.strftime("%y%m%d%H%M%S")


# --------------------------------------------------------------------------- label mapping

#: Historic-mode energy index labels [Wh, 9 digits], by option (ERDF-NOI-CPT_02E / NOI-CPT_54E label lists).
HISTORIC_INDEX_LABELS: tuple[str, ...] = (
    "BASE",  # option Base
    "HCHC", "HCHP",  # option Heures Creuses: heures creuses, heures pleines
    "EJPHN", "EJPHPM",  # option EJP: heures normales, heures de pointe mobile
    "BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR",  # Tempo: HC/HP x bleu/blanc/rouge
)  # fmt: skip
#: PTEC (période tarifaire en cours, 4 characters) -> the index label that counts during it.
PTEC_INDEX: dict[str, str] = {
    "TH..": "BASE",
    "HC..": "HCHC",
    "HP..": "HCHP",
    "HN..": "EJPHN",
    "PM..": "EJPHPM",
    "HCJB": "BBRHCJB",
    "HPJB": "BBRHPJB",
    "HCJW": "BBRHCJW",
    "HPJW": "BBRHPJW",
    "HCJR": "BBRHCJR",
    "HPJR": "BBRHPJR",
}
#: Standard-mode energy index labels [Wh, 9 digits]: supplier grid (EASF01..10), distributor grid (EASD01..04).
STANDARD_INDEX_LABELS: tuple[str, ...] = tuple(f"EASF{i:02d}" for i in range(1, 11)) + tuple(
    f"EASD{i:02d}" for i in range(1, 5)
)

# label -> (value name in Reading.values, factor to the canonical unit). Values are integers in the frame.
_HISTORIC_VALUES: dict[str, tuple[str, float]] = {
    "PAPP": ("apparent_power_va", 1.0),  # VA, 5 digits
    "IINST": ("current_l1", 1.0),  # A, 3 digits (single-phase)
    "IINST1": ("current_l1", 1.0),  # A (three-phase)
    "IINST2": ("current_l2", 1.0),
    "IINST3": ("current_l3", 1.0),
    "IMAX": ("max_current_l1", 1.0),  # A
    "IMAX1": ("max_current_l1", 1.0),
    "IMAX2": ("max_current_l2", 1.0),
    "IMAX3": ("max_current_l3", 1.0),
    "ISOUSC": ("subscribed_current", 1.0),  # A, 2 digits
}
_STANDARD_VALUES: dict[str, tuple[str, float]] = {
    "SINSTS": ("apparent_power_va", 1.0),  # VA, 5 digits
    "SINSTS1": ("apparent_power_l1_va", 1.0),
    "SINSTS2": ("apparent_power_l2_va", 1.0),
    "SINSTS3": ("apparent_power_l3_va", 1.0),
    "SINSTI": ("apparent_power_export_va", 1.0),  # VA, producers
    "IRMS1": ("current_l1", 1.0),  # A, 3 digits
    "IRMS2": ("current_l2", 1.0),
    "IRMS3": ("current_l3", 1.0),
    "URMS1": ("voltage_l1", 1.0),  # V, 3 digits
    "URMS2": ("voltage_l2", 1.0),
    "URMS3": ("voltage_l3", 1.0),
    "PREF": ("reference_apparent_power_va", 1000.0),  # kVA, 2 digits
    "PCOUP": ("cutoff_apparent_power_va", 1000.0),  # kVA, 2 digits
}


@dataclass(frozen=True)
class TicReading:
    """What one frame says, in Quartier's terms.

    Attributes:
        mode: ``historic`` or ``standard``.
        meter_id: ADCO (historic) or ADSC (standard), 12 digits.
        contract: OPTARIF (historic, e.g. ``HC..``, ``BBR(``) or NGTF
            (standard, stripped of padding), if sent.
        import_wh: cumulative imported active energy: EAST in standard mode,
            the sum of the historic indexes in historic mode. [Wh]
        export_wh: EAIT (standard, producers), else None. [Wh]
        indexes_wh: each per-period index by its label (historic
            ``BASE``/``HCHC``/...; standard ``EASF01``..``EASF10`` and
            ``EASD01``..``EASD04``: both grids, each summing to EAST). [Wh]
        tariff_period: PTEC without its padding dots (``HC``, ``HPJB``) or
            LTARF stripped, if sent.
        active_index: the index label counting now (from PTEC, or
            ``EASF<NTARF>``), if known.
        values: other quantities, canonical units, names saying the unit
            where it is not W/V/A: ``apparent_power_va`` (PAPP, SINSTS),
            ``apparent_power_export_va`` (SINSTI), ``current_l1``
            (IINST, IRMS1), ``voltage_l1`` (URMS1)... The TIC gives no active
            power: apparent power is never passed off as active power.
        meter_time: the DATE horodate as UTC seconds, if sent with a known
            season by a synchronised meter clock (uppercase letter). [s]
        labels: every label's data, as sent, stripped.
    """

    mode: str
    meter_id: str
    contract: str | None
    import_wh: int
    export_wh: int | None
    indexes_wh: Mapping[str, int]
    tariff_period: str | None
    active_index: str | None
    values: Mapping[str, float]
    meter_time: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


def _digits(label: str, data: str, width: int | None = None) -> int:
    """``data`` as an unsigned integer of only ASCII digits (of ``width`` digits when given)."""
    if not data.isascii() or not data.isdigit() or (width is not None and len(data) != width):
        size = f"{width} digits" if width else "digits"
        raise TicDataError(f"{label} = {data!r} must be {size}")
    return int(data)


def tic_reading(groups: Sequence[Group] | Frame, mode: str | None = None) -> TicReading:
    """Map a frame's groups to a :class:`TicReading`.

    Energy indexes must be exactly 9 digits and the meter id 12 digits;
    other numeric values that are not digits are left out of ``values``
    (they stay in ``labels``).

    Raises:
        TicDataError: no meter id (ADCO/ADSC), no energy (no EAST in standard
            mode, no index in historic mode), or an index / id that is not
            all digits of the right width.
    """
    if isinstance(groups, Frame):
        mode = mode or groups.mode
        groups = groups.groups
    if mode is None:
        mode = groups[0].mode if groups else HISTORIC
    labels = {g.label: g.data for g in groups}
    horodates = {g.label: g.horodate for g in groups if g.horodate is not None}
    if mode == HISTORIC:
        return _historic_reading(labels)
    return _standard_reading(labels, horodates)


def _meter_id(labels: Mapping[str, str], label: str) -> str:
    if label not in labels:
        raise TicDataError(f"no {label} (meter address) in the frame")
    data = labels[label]
    _digits(label, data, 12)
    return data


def _values(labels: Mapping[str, str], table: Mapping[str, tuple[str, float]]) -> dict[str, float]:
    values: dict[str, float] = {}
    for label, (name, factor) in table.items():
        data = labels.get(label)
        if data is not None and data.isascii() and data.isdigit():
            values[name] = int(data) * factor
    return values


def _historic_reading(labels: Mapping[str, str]) -> TicReading:
    meter_id = _meter_id(labels, "ADCO")
    indexes = {label: _digits(label, labels[label], 9) for label in HISTORIC_INDEX_LABELS if label in labels}
    if not indexes:
        raise TicDataError(f"no energy index in the frame (expected one of {', '.join(HISTORIC_INDEX_LABELS)})")
    ptec = labels.get("PTEC")
    return TicReading(
        mode=HISTORIC,
        meter_id=meter_id,
        contract=labels.get("OPTARIF"),
        import_wh=sum(indexes.values()),
        export_wh=None,
        indexes_wh=indexes,
        tariff_period=ptec.rstrip(".").strip() if ptec is not None else None,
        active_index=PTEC_INDEX.get(ptec) if ptec is not None else None,
        values=_values(labels, _HISTORIC_VALUES),
        labels={k: v.strip() for k, v in labels.items()},
    )


def _standard_reading(labels: Mapping[str, str], horodates: Mapping[str, str]) -> TicReading:
    meter_id = _meter_id(labels, "ADSC")
    if "EAST" not in labels:
        raise TicDataError("no EAST (total imported energy) in the frame")
    east = _digits("EAST", labels["EAST"], 9)
    indexes = {label: _digits(label, labels[label], 9) for label in STANDARD_INDEX_LABELS if label in labels}
    export = _digits("EAIT", labels["EAIT"], 9) if "EAIT" in labels else None
    ntarf = labels.get("NTARF")
    active = f"EASF{int(ntarf):02d}" if ntarf is not None and ntarf.isascii() and ntarf.isdigit() else None
    meter_time = None
    if "DATE" in horodates:
        try:
            date = parse_horodate(horodates["DATE"])
        except ValueError:
            date = None
        # An unsynchronised meter clock (lowercase season letter) is no time source.
        meter_time = date.timestamp() if date is not None and date.synchronised else None
    ngtf = labels.get("NGTF")
    ltarf = labels.get("LTARF")
    return TicReading(
        mode=STANDARD,
        meter_id=meter_id,
        contract=ngtf.strip() if ngtf is not None else None,
        import_wh=east,
        export_wh=export,
        indexes_wh=indexes,
        tariff_period=ltarf.strip() if ltarf is not None else None,
        active_index=active,
        values=_values(labels, _STANDARD_VALUES),
        meter_time=meter_time,
        labels={k: v.strip() for k, v in labels.items()},
    )
