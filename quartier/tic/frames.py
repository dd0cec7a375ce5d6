"""TIC frames: assembling them from line bytes (never raising on line data), and detecting the mode."""

from __future__ import annotations

import re
from dataclasses import dataclass

from quartier.tic.groups import (
    EOT,
    ETX,
    HISTORIC,
    MAX_FRAME_BYTES,
    MODES,
    STANDARD,
    STX,
    Group,
    TicDataError,
    TicGroupError,
    parse_group,
    split_groups,
)


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
