"""TIC information groups: modes, separators, checksums (both calculation modes), encoding and parsing."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

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
