"""Linky / French electronic meter "télé-information client" (TIC): pure decoding, no I/O.

References (Enedis, public):

- **Enedis-NOI-CPT_54E** "Sorties de télé-information client des appareils de
  comptage Linky utilisés en généralisation par Enedis": the two modes of a
  Linky (historic, standard), their speeds, group layout, checksums, labels.
- **ERDF-NOI-CPT_02E** (later Enedis-NOI-CPT_02E) for the electronic meters
  before Linky: the historic mode, which a Linky reproduces by default.

Section numbers are not quoted here because they differ between editions;
the topics are named instead ("frame", "information group", "checksum",
"list of labels").

Transmission (both documents, "physical layer"): asynchronous serial, 7 data
bits, even parity, 1 stop bit (7E1); **1200 bit/s in historic mode**,
**9600 bit/s in standard mode**.

Frame ("trame")::

    STX (0x02) | group | group | ... | ETX (0x03)

A meter that must interrupt a frame sends EOT (0x04) and starts the next frame
with a new STX.

Information group ("groupe d'information")::

    historic:  LF label SP data SP checksum CR
    standard:  LF label HT [horodate HT] data HT checksum CR

Checksum ("checksum" paragraph of each mode): ``(S & 0x3F) + 0x20``, where S
is the sum of the ASCII codes of

- **historic**: the label's first character to the data's last character,
  i.e. ``label SP data`` -- the separator *before* the checksum is **not**
  included (ERDF-NOI-CPT_02E's "mode de calcul n°1");
- **standard**: the label's first character through the HT *preceding* the
  checksum, i.e. ``label HT [horodate HT] data HT`` -- that last HT **is**
  included ("mode de calcul n°2").

The checksum is therefore always a printable character in 0x20..0x5F (it may
be a space). A flip of bit 6 (0x40) of one character changes S by ±64 and
leaves the checksum unchanged: this module therefore also checks the format
of what it decodes, which catches that flip wherever a number or a label is
concerned: an upper-case letter becomes a control character (refused), a
digit, "+" or "-" becomes a lower-case letter (refused in labels, in indexes,
ids and numeric values, and in the horodate). Only free text (contract and
tariff names, messages) can carry an undetected flip.

Horodate (standard mode, "horodate" paragraph): 13 characters, the season
(``E`` summer/daylight-saving time = UTC+2, ``H`` winter = UTC+1, lowercase
when the meter's clock is not synchronised, a space when unknown) followed by
``YYMMDDhhmmss`` in local legal time.

This module decodes (:func:`parse_group`, :class:`FrameAssembler`,
:func:`detect_mode`, :func:`tic_reading`) and encodes (:func:`encode_group`,
:func:`encode_frame`, for the simulator) and never raises on line data in
the assembler: bad groups are counted and skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from quartier.series import PARIS

#: Mode names.
HISTORIC = "historic"
STANDARD = "standard"
MODES = (HISTORIC, STANDARD)
#: Line speed of each mode. [bit/s]
BAUDRATES: dict[str, int] = {STANDARD: 9600, HISTORIC: 1200}
#: Field separator of each mode.
SEPARATORS: dict[str, int] = {HISTORIC: 0x20, STANDARD: 0x09}

STX = 0x02
ETX = 0x03
EOT = 0x04
LF = 0x0A
CR = 0x0D
SP = 0x20
HT = 0x09

#: Longest frame the assembler keeps before it declares the frame cut (a
#: standard frame with every label is ~1.3 kB). [bytes, between STX and ETX]
MAX_FRAME_BYTES = 4096
#: Longest group body (label + separators + horodate + data + checksum): the
#: longest standard data is 98 characters (PJOURF+1, PPOINTE). [bytes]
MAX_GROUP_BYTES = 160
#: Longest label (``SMAXSN1-1`` has 9 characters).
MAX_LABEL_CHARS = 16

_HORODATE_RE = re.compile(r"^[EeHh ]\d{12}$")
#: Labels are upper-case letters, digits, "+" and "-" (``NJOURF+1``, ``SMAXSN-1``). A lower-case letter in a
#: label is a digit, "+" or "-" whose bit 6 flipped, which the checksum cannot see.
_LABEL_RE = re.compile(r"^[A-Z0-9+\-]+$")


class TicGroupError(ValueError):
    """One information group is unusable.

    Attributes:
        kind: ``checksum`` (well formed, wrong checksum), ``malformed``
            (layout, characters, horodate) or ``mode`` (the separator of the
            other mode).
    """

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class TicDataError(ValueError):
    """A frame's groups are valid but cannot make a reading (missing index, non-numeric energy...)."""


# --------------------------------------------------------------------------- checksums


def checksum(data: bytes) -> int:
    """``(sum of the bytes of data & 0x3F) + 0x20``: the TIC checksum of exactly ``data``. [0x20..0x5F]"""
    return (sum(data) & 0x3F) + 0x20


def historic_checksum(label: str, data: str) -> str:
    """The historic-mode checksum character of a group: over ``label SP data`` (separator before it excluded).

    Worked example (ERDF-NOI-CPT_02E layout, values of a real meter):
    ``ADCO 050022120078``: A D C O = 65+68+67+79 = 279, SP = 32, the twelve
    digits = 12*48 + (0+5+0+0+2+2+1+2+0+0+7+8) = 603; S = 914; 914 & 63 = 18;
    18 + 32 = 50 = ``"2"``.
    """
    return chr(checksum(f"{label} {data}".encode("ascii")))


def standard_checksum(label: str, data: str, horodate: str | None = None) -> str:
    """The standard-mode checksum character: over ``label HT [horodate HT] data HT`` (last HT included).

    Worked example: ``VTIC HT 02 HT``: V T I C = 86+84+73+67 = 310, HT = 9,
    "0" "2" = 48+50 = 98, HT = 9; S = 426; 426 & 63 = 42; 42 + 32 = 74 = ``"J"``.
    """
    middle = f"{horodate}\t" if horodate is not None else ""
    return chr(checksum(f"{label}\t{middle}{data}\t".encode("ascii")))


# --------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class Group:
    """One information group whose checksum and layout are valid.

    Attributes:
        label: the label ("étiquette"), e.g. ``ADCO``, ``EAST``.
        data: the data field as sent (standard-mode text fields keep their
            padding spaces; use ``data.strip()`` for display). May be empty
            (``DATE`` in standard mode).
        horodate: the 13-character horodate of a standard-mode group that
            has one, else None.
        mode: ``historic`` or ``standard`` (from the separator).
        raw: the group's bytes between LF and CR (for logs and tests).
    """

    label: str
    data: str
    horodate: str | None
    mode: str
    raw: bytes


def encode_group(label: str, data: str, mode: str, horodate: str | None = None) -> bytes:
    """One group with its LF, separators, checksum and CR.

    Raises:
        ValueError: unknown mode, a horodate in historic mode, characters
            outside printable ASCII, or a separator inside the label (or an
            HT in standard-mode data).
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} must be one of {MODES}")
    for name, text in (("label", label), ("data", data), ("horodate", horodate or "")):
        if any(not 0x20 <= ord(c) <= 0x7E for c in text):
            raise ValueError(f"{name} {text!r} must be printable ASCII (0x20..0x7E)")
    if not label or " " in label:
        raise ValueError(f"label {label!r} must be non-empty without spaces")
    if mode == HISTORIC:
        if horodate is not None:
            raise ValueError("historic groups carry no horodate")
        return b"\n" + f"{label} {data} {historic_checksum(label, data)}".encode("ascii") + b"\r"
    if horodate is not None and not _HORODATE_RE.match(horodate):
        raise ValueError(f"horodate {horodate!r} must be a season letter (E, H, e, h or space) and YYMMDDhhmmss")
    middle = f"{horodate}\t" if horodate is not None else ""
    body = f"{label}\t{middle}{data}\t"
    return b"\n" + body.encode("ascii") + standard_checksum(label, data, horodate).encode("ascii") + b"\r"


GroupSpec = tuple[str, str] | tuple[str, str | None, str]
"""``(label, data)`` or ``(label, horodate, data)``."""


def encode_frame(groups: Iterable[GroupSpec], mode: str) -> bytes:
    """STX, every group encoded in ``mode``, ETX."""
    out = bytearray([STX])
    for spec in groups:
        if len(spec) == 2:
            out += encode_group(spec[0], spec[1], mode)
        else:
            label, horodate, data = spec  # type: ignore[misc]
            out += encode_group(label, data, mode, horodate)
    out.append(ETX)
    return bytes(out)


def parse_group(body: bytes, mode: str | None = None) -> Group:
    """Decode one group from the bytes between its LF and its CR (both excluded).

    The separator before the checksum decides the mode (SP historic, HT
    standard); ``mode``, when given, must agree. Bytes are masked to 7 bits.

    Raises:
        TicGroupError: ``kind`` says why: ``malformed`` (too short or long,
            no separator before the checksum, a control character, an empty
            label, a standard group with other than 2 or 3 fields, a bad
            horodate), ``checksum`` or ``mode``.
    """
    body = bytes(b & 0x7F for b in body)
    if len(body) < 4:
        raise TicGroupError("malformed", f"group {body!r} is too short")
    if len(body) > MAX_GROUP_BYTES:
        raise TicGroupError("malformed", f"group of {len(body)} bytes is longer than {MAX_GROUP_BYTES}")
    separator = body[-2]
    if separator == SP:
        group_mode = HISTORIC
    elif separator == HT:
        group_mode = STANDARD
    else:
        raise TicGroupError("malformed", f"group {body!r}: no SP or HT before the checksum")
    if mode is not None and mode != group_mode:
        raise TicGroupError("mode", f"group {body!r} is a {group_mode} group, expected {mode}")
    content = body[:-2]
    allowed_ht = group_mode == STANDARD
    for b in content:
        if not (0x20 <= b <= 0x7E or (allowed_ht and b == HT)):
            raise TicGroupError("malformed", f"group {body!r}: control character 0x{b:02X}")
    covered = content if group_mode == HISTORIC else body[:-1]
    expected = checksum(covered)
    if body[-1] != expected:
        raise TicGroupError("checksum", f"group {body!r}: checksum {chr(body[-1])!r}, computed {chr(expected)!r}")
    text = content.decode("ascii")
    horodate: str | None = None
    if group_mode == HISTORIC:
        label, found, data = text.partition(" ")
        if not found:
            raise TicGroupError("malformed", f"group {body!r}: no SP between label and data")
    else:
        fields = text.split("\t")
        if len(fields) == 2:
            label, data = fields
        elif len(fields) == 3:
            label, horodate, data = fields
            if not _HORODATE_RE.match(horodate):
                raise TicGroupError("malformed", f"group {body!r}: horodate {horodate!r} is not [EeHh ]YYMMDDhhmmss")
        else:
            raise TicGroupError("malformed", f"group {body!r}: {len(fields)} HT-separated fields, expected 2 or 3")
    if len(label) > MAX_LABEL_CHARS or not _LABEL_RE.match(label):
        raise TicGroupError("malformed", f"group {body!r}: label {label!r} is not 1..{MAX_LABEL_CHARS} of A-Z 0-9 + -")
    return Group(label=label, data=data, horodate=horodate, mode=group_mode, raw=body)


def split_groups(body: bytes) -> tuple[list[bytes], int]:
    """Cut a frame's body (between STX and ETX) into group bodies.

    A group is LF ... CR. Returns the bodies between each LF and the CR that
    closes it, and the number of malformed pieces: bytes before a LF that
    closes nothing, a LF-started piece that a second LF interrupts, a CR
    without LF, or a piece left without CR before the ETX.
    """
    groups: list[bytes] = []
    junk = 0
    pieces = body.split(b"\r")
    for index, piece in enumerate(pieces):
        closed = index < len(pieces) - 1  # this piece ended with a CR
        parts = piece.split(b"\n")
        if closed:
            if len(parts) == 1:
                junk += 1  # a CR with no LF before it
                continue
            if parts[0]:
                junk += 1  # bytes before the first LF
            junk += len(parts) - 2  # LF-started pieces cut by a later LF
            groups.append(parts[-1])
        else:
            if parts[0]:
                junk += 1
            junk += len(parts) - 1  # LF-started pieces with no CR before the ETX
    return groups, junk


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    """One frame, STX to ETX, with its valid groups.

    Attributes:
        mode: ``historic`` or ``standard``.
        groups: the groups whose checksum and layout are valid, in order.
        bad_checksum: groups dropped for a wrong checksum.
        malformed: pieces dropped for their layout (or of the other mode).
    """

    mode: str
    groups: tuple[Group, ...]
    bad_checksum: int = 0
    malformed: int = 0

    @property
    def complete(self) -> bool:
        """Every group of the frame was valid (nothing was dropped)."""
        return self.bad_checksum == 0 and self.malformed == 0

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(g.label for g in self.groups)

    def get(self, label: str) -> Group | None:
        """The last group with ``label``, or None."""
        for group in reversed(self.groups):
            if group.label == label:
                return group
        return None


@dataclass
class AssemblerStats:
    """Counters of a :class:`FrameAssembler`.

    Exact accounting, at any moment:

    - ``frames_started == frames_ok + frames_empty + frames_cut + (1 if a frame is open else 0)``
    - ``bytes_received == bytes_discarded + bytes_framed + (bytes of the open frame, its STX included)``

    Attributes:
        bytes_received: every byte fed.
        bytes_discarded: bytes of no returned frame: outside any frame
            (noise, a speed mismatch, the tail of a frame joined mid-way) or
            of a frame cut or empty.
        bytes_framed: bytes of returned frames, STX and ETX included.
        frames_started: STX seen.
        frames_ok: frames returned (ETX reached, at least one valid group).
        frames_empty: ETX reached without any valid group (not returned).
        frames_cut: EOT, a new STX before the ETX, or longer than the limit.
        groups_ok: valid groups in returned frames.
        groups_bad_checksum: groups with a wrong checksum in ETX-ended frames.
        groups_malformed: malformed pieces in ETX-ended frames.
    """

    bytes_received: int = 0
    bytes_discarded: int = 0
    bytes_framed: int = 0
    frames_started: int = 0
    frames_ok: int = 0
    frames_empty: int = 0
    frames_cut: int = 0
    groups_ok: int = 0
    groups_bad_checksum: int = 0
    groups_malformed: int = 0


class FrameAssembler:
    """Build frames from a byte stream fed in chunks of any size.

    Resynchronises on the next STX after noise, a cut (EOT), a missing ETX
    (a new STX inside a frame cuts it) or an over-long frame. Bytes are
    masked to 7 bits (a port opened 8N1 on a 7E1 line delivers the parity in
    bit 7). Never raises on line data.

    Args:
        mode: ``historic``, ``standard``, or None to take each frame's mode
            from its groups (the mode of most valid groups, ties going to the
            first group's; groups of the other mode count as malformed).
        max_frame_bytes: a frame longer than this is cut. [bytes]
    """

    def __init__(self, mode: str | None = None, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode {mode!r} must be None or one of {MODES}")
        self.mode = mode
        self.max_frame_bytes = max_frame_bytes
        self.stats = AssemblerStats()
        self._buf = bytearray()
        self._in_frame = False

    @property
    def in_frame(self) -> bool:
        """An STX was seen and its frame has not ended yet."""
        return self._in_frame

    @property
    def pending_bytes(self) -> int:
        """Bytes of the open frame, STX included (0 outside a frame)."""
        return len(self._buf) + 1 if self._in_frame else 0

    def reset(self) -> None:
        """Forget the open frame (after a speed change); counted as cut."""
        if self._in_frame:
            self._drop_open()

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return the frames it completed, in order."""
        frames: list[Frame] = []
        stats = self.stats
        for raw in data:
            byte = raw & 0x7F
            stats.bytes_received += 1
            if byte == STX:
                if self._in_frame:
                    self._drop_open()
                self._in_frame = True
                self._buf.clear()
                stats.frames_started += 1
            elif not self._in_frame:
                stats.bytes_discarded += 1
            elif byte == ETX:
                frame = self._close()
                if frame is not None:
                    frames.append(frame)
            elif byte == EOT:
                self._buf.append(byte)
                self._drop_open()
            else:
                self._buf.append(byte)
                if len(self._buf) > self.max_frame_bytes:
                    self._drop_open()
        return frames

    def _drop_open(self) -> None:
        """Count the open frame as cut and its bytes (STX included) as discarded."""
        self.stats.frames_cut += 1
        self.stats.bytes_discarded += len(self._buf) + 1
        self._buf.clear()
        self._in_frame = False

    def _close(self) -> Frame | None:
        """The ETX of the open frame arrived: decode it."""
        body = bytes(self._buf)
        self._buf.clear()
        self._in_frame = False
        stats = self.stats
        frame_bytes = len(body) + 2  # STX + body + ETX
        frame = decode_frame_body(body, self.mode)
        stats.groups_bad_checksum += frame.bad_checksum
        stats.groups_malformed += frame.malformed
        if not frame.groups:
            stats.frames_empty += 1
            stats.bytes_discarded += frame_bytes
            return None
        stats.frames_ok += 1
        stats.groups_ok += len(frame.groups)
        stats.bytes_framed += frame_bytes
        return frame


def decode_frame_body(body: bytes, mode: str | None = None) -> Frame:
    """Decode the bytes between a frame's STX and ETX (see :class:`FrameAssembler` for ``mode``)."""
    bodies, malformed = split_groups(bytes(b & 0x7F for b in body))
    bad_checksum = 0
    valid: list[Group] = []
    for group_body in bodies:
        try:
            valid.append(parse_group(group_body, mode))
        except TicGroupError as exc:
            if exc.kind == "checksum":
                bad_checksum += 1
            else:
                malformed += 1
    frame_mode = mode
    if frame_mode is None:
        counts = {m: sum(g.mode == m for g in valid) for m in MODES}
        if counts[HISTORIC] == counts[STANDARD]:
            frame_mode = valid[0].mode if valid else HISTORIC
        else:
            frame_mode = max(MODES, key=lambda m: counts[m])
        others = [g for g in valid if g.mode != frame_mode]
        malformed += len(others)
        valid = [g for g in valid if g.mode == frame_mode]
    return Frame(mode=frame_mode, groups=tuple(valid), bad_checksum=bad_checksum, malformed=malformed)


def parse_frame(data: bytes, mode: str | None = None) -> Frame:
    """The single frame in ``data`` (STX ... ETX, anything around it ignored).

    Raises:
        TicDataError: ``data`` holds no complete frame with a valid group.
    """
    frames = FrameAssembler(mode).feed(data)
    if not frames:
        raise TicDataError(f"no complete frame with a valid group in {len(data)} bytes")
    return frames[0]


# --------------------------------------------------------------------------- mode detection


_GROUP_RE = re.compile(rb"\n([^\n\r]*)\r")


def count_valid_groups(data: bytes) -> dict[str, int]:
    """Valid groups of each mode in ``data`` (LF ... CR, frame boundaries ignored), bytes masked to 7 bits."""
    counts = {HISTORIC: 0, STANDARD: 0}
    masked = bytes(b & 0x7F for b in data)
    for match in _GROUP_RE.finditer(masked):
        try:
            counts[parse_group(match.group(1)).mode] += 1
        except TicGroupError:
            pass
    return counts


def detect_mode(data: bytes, min_groups: int = 3) -> str | None:
    """The TIC mode of ``data`` from its content, or None when undecided.

    Standard groups are HT-separated, historic ones SP-separated; only groups
    whose checksum is valid count. A mode is chosen when it has at least
    ``min_groups`` valid groups and more than twice as many as the other
    mode (garbage read at the wrong speed passes a checksum by chance about
    once in 64 candidate groups, and candidate groups are rare in it).
    """
    counts = count_valid_groups(data)
    for mode, other in ((STANDARD, HISTORIC), (HISTORIC, STANDARD)):
        if counts[mode] >= min_groups and counts[mode] > 2 * counts[other]:
            return mode
    return None


# --------------------------------------------------------------------------- horodate


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
