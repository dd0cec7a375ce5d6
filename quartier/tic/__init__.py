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

Modules: :mod:`~quartier.tic.groups` (modes, checksums, groups), :mod:`~quartier.tic.frames` (frames, the
assembler, mode detection), :mod:`~quartier.tic.labels` (horodate, labels to :class:`TicReading`).
"""

from __future__ import annotations

from quartier.tic.frames import (
    AssemblerStats,
    Frame,
    FrameAssembler,
    count_valid_groups,
    decode_frame_body,
    detect_mode,
    parse_frame,
)
from quartier.tic.groups import (
    BAUDRATES,
    CR,
    EOT,
    ETX,
    HISTORIC,
    HT,
    LF,
    MAX_FRAME_BYTES,
    MAX_GROUP_BYTES,
    MAX_LABEL_CHARS,
    MODES,
    SEPARATORS,
    SP,
    STANDARD,
    STX,
    Group,
    GroupSpec,
    TicDataError,
    TicGroupError,
    checksum,
    encode_frame,
    encode_group,
    historic_checksum,
    parse_group,
    split_groups,
    standard_checksum,
)
from quartier.tic.labels import (
    HISTORIC_INDEX_LABELS,
    PTEC_INDEX,
    STANDARD_INDEX_LABELS,
    Horodate,
    TicReading,
    format_horodate,
    parse_horodate,
    tic_reading,
)

__all__ = [
    "AssemblerStats",
    "BAUDRATES",
    "CR",
    "EOT",
    "ETX",
    "Frame",
    "FrameAssembler",
    "Group",
    "GroupSpec",
    "HISTORIC",
    "HISTORIC_INDEX_LABELS",
    "HT",
    "Horodate",
    "LF",
    "MAX_FRAME_BYTES",
    "MAX_GROUP_BYTES",
    "MAX_LABEL_CHARS",
    "MODES",
    "PTEC_INDEX",
    "SEPARATORS",
    "SP",
    "STANDARD",
    "STANDARD_INDEX_LABELS",
    "STX",
    "TicDataError",
    "TicGroupError",
    "TicReading",
    "checksum",
    "count_valid_groups",
    "decode_frame_body",
    "detect_mode",
    "encode_frame",
    "encode_group",
    "format_horodate",
    "historic_checksum",
    "parse_frame",
    "parse_group",
    "parse_horodate",
    "split_groups",
    "standard_checksum",
    "tic_reading",
]
