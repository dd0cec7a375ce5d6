"""The simulated serial cable: what a UART at each end would read."""

from __future__ import annotations

import time

import serial
from hypothesis import given
from hypothesis import strategies as st

from simulators.serial_line import Framing, SerialLine, sample, serialise, translate


def test_serialise_7e1_known_bits() -> None:
    # 'A' = 0x41 = 1000001: start 0, data LSB first 1 0 0 0 0 0 1, even parity of two ones = 0, stop 1.
    assert serialise(b"A", Framing(1200, 7, "E", 1)) == [0, 1, 0, 0, 0, 0, 0, 1, 0, 1]
    # 'C' = 0x43 has three ones: odd parity bit 0, even parity bit 1; two stop bits.
    assert serialise(b"C", Framing(9600, 8, "O", 2)) == [0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1]


@given(st.binary(max_size=64), st.sampled_from([Framing(1200, 7, "E", 1), Framing(9600, 8, "N", 1),
                                                 Framing(19200, 8, "E", 2)]))
def test_same_settings_deliver_the_data_bits(data: bytes, framing: Framing) -> None:
    mask = (1 << framing.bytesize) - 1
    expected = bytes(b & mask for b in data)
    assert sample(serialise(data, framing), framing.baudrate, framing) == expected
    assert translate(data, framing, framing) == expected


def test_slow_line_read_fast_is_garbage_not_the_frame() -> None:
    frame = b"\x02\nADCO 021728123456 H\r\x03"
    got = translate(frame, Framing(1200, 7, "E", 1), Framing(9600, 7, "E", 1))
    assert got != frame and b"ADCO" not in got
    assert len(got) > len(frame)  # each slow character is seen as several fast ones


def test_fast_line_read_slow_loses_characters() -> None:
    frame = b"\x02\nADSC\t021728123456\t<\r\x03" * 4
    got = translate(frame, Framing(9600, 7, "E", 1), Framing(1200, 7, "E", 1))
    assert len(got) < len(frame) and b"ADSC" not in got


def test_pty_pair_carries_bytes_at_the_line_rate_and_garbles_a_speed_mismatch() -> None:
    with SerialLine(bytesize=7, parity="E") as line:
        sender = serial.Serial(line.end_a, 1200, bytesize=7, parity="E", timeout=0.1)
        reader = serial.Serial(line.end_b, 1200, bytesize=7, parity="E", timeout=3)
        try:
            message = b"\x02\nPAPP 01250 *\r\x03" * 4  # 72 characters: 0.6 s at 120 characters/s
            started = time.monotonic()
            sender.write(message)
            assert reader.read(len(message)) == message
            assert time.monotonic() - started >= len(message) / 120 * 0.9  # a lower bound cannot be flaky
            reader.baudrate = 9600
            sender.write(message)
            time.sleep(0.8)
            assert reader.read(4096) not in (b"", message)
            assert line.stats["a>b"].sent == 2 * len(message)
        finally:
            sender.close()
            reader.close()
