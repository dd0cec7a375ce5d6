"""The TIC reader end to end: a simulated Linky on one end of a SerialLine, the gateway's TicMeter on the other.

The line carries bytes at the sender's real speed (120 characters/s at
1200 bit/s, 960 at 9600) and garbles them when the two ends disagree on the
speed, as two UARTs would, so speed detection is tested for real. Frames are
kept short (Base or one producer frame) and detection windows small to keep
the whole file within seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cli.provision import provision_site
from gateway.config import GatewayConfig
from gateway.drivers.tic import TicMeter
from gateway.scan.tic import scan_tic
from gateway.service import Gateway
from quartier.clock import ManualClock
from quartier.errors import MeterError, MeterNotReadyError
from quartier.tic import HISTORIC, STANDARD
from simulators.profile import LoadProfile
from simulators.serial_line import SerialLine
from simulators.tic import TicNoise, TicSimulator

EPOCH = int(datetime(2026, 1, 19, tzinfo=timezone.utc).timestamp())
NOW = EPOCH + 2 * 86400 + 13 * 3600 + 17  # a Wednesday, 14:00:17 in Paris (peak hours)
METER = "021861348497"
PROFILE = LoadProfile([(0, 800.0), (6 * 3600, 2450.0), (20 * 3600, 1300.0)], 12_345_678, EPOCH)
EXPORT = LoadProfile([(0, 0.0), (9 * 3600, 3100.0), (16 * 3600, 0.0)], 4_321, EPOCH)


@pytest.fixture
def line() -> Iterator[SerialLine]:
    with SerialLine(bytesize=7, parity="E") as serial_line:
        yield serial_line


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def simulator(line: SerialLine, mode: str, contract: str = "BASE", **kwargs: object) -> TicSimulator:
    return TicSimulator(line.end_a, mode, METER, contract, PROFILE, ManualClock(NOW), **kwargs)  # type: ignore[arg-type]


def assert_exact(meter: TicMeter, sim: TicSimulator) -> None:
    """The reading equals what the simulated meter holds at NOW, to the Wh."""
    reading = meter.read(NOW)
    indexes, period = sim.model.indexes_at(NOW)
    assert reading.import_wh == PROFILE.index_wh(NOW)
    assert reading.power_w is None
    assert reading.values["apparent_power_va"] == round(PROFILE.power_w(NOW))
    assert meter.latest is not None and meter.latest.meter_id == METER
    if sim.mode == HISTORIC:
        assert dict(reading.indexes_wh) == {sim.model.schedule.periods[k].historic_index: v for k, v in indexes.items()}
    else:
        for key, value in indexes.items():
            assert reading.indexes_wh[f"EASF{sim.model.schedule.periods[key].easf:02d}"] == value


def test_auto_detects_standard_at_9600_and_reads_exact_values(line: SerialLine) -> None:
    with (
        simulator(line, STANDARD, "HC", export_profile=EXPORT) as sim,
        TicMeter("m1", line.end_b, detect_window_s=0.8) as meter,
    ):
        wait_for(lambda: meter.latest is not None, 6, "a standard frame")
        assert_exact(meter, sim)
        reading = meter.read(NOW)
        assert reading.export_wh == EXPORT.index_wh(NOW) and reading.tariff_period == "HEURE PLEINE"
        assert reading.values["apparent_power_export_va"] == 3100
        stats = meter.stats
        assert (stats.mode, stats.baudrate, stats.detections, stats.state) == (STANDARD, 9600, 1, "reading")
        assert stats.groups_bad_checksum == stats.groups_malformed == 0


def test_wrong_speed_sees_garbage_and_auto_detection_recovers_historic(line: SerialLine) -> None:
    with simulator(line, HISTORIC, "HC") as sim:
        # A reader fixed at 9600 bit/s on a 1200 bit/s line: the line garbles every character.
        with TicMeter("m1", line.end_b, mode=STANDARD) as wrong:
            wait_for(lambda: wrong.stats.bytes_received > 200, 4, "garbage at the wrong speed")
            assert wrong.stats.frames_ok == 0 and wrong.stats.bytes_discarded > 0
            with pytest.raises(MeterError, match="no valid frame yet"):
                wrong.read(NOW)
        # Auto-detection tries 9600 first (garbage), then 1200.
        with TicMeter("m1", line.end_b, detect_window_s=0.8) as meter:
            wait_for(lambda: meter.latest is not None, 8, "a historic frame after detection")
            assert_exact(meter, sim)
            stats = meter.stats
            assert (stats.mode, stats.baudrate) == (HISTORIC, 1200)
            assert stats.bytes_discarded > 0  # the 9600 bit/s probe heard garbage
            assert meter.read(NOW).tariff_period == "HP"


def test_noise_is_counted_and_values_stay_exact(line: SerialLine) -> None:
    noise = TicNoise(bit_flip_p=1.5e-3, cut_p=0.25, garbage_p=0.5, seed=11)
    with simulator(line, STANDARD, "BASE", noise=noise) as sim, TicMeter("m1", line.end_b, mode=STANDARD) as meter:

        def noisy_and_read() -> bool:
            s = meter.stats
            bad_groups = s.groups_bad_checksum + s.groups_malformed
            return meter.latest is not None and bad_groups > 0 and s.frames_cut > 0 and s.frames_incomplete > 0

        wait_for(noisy_and_read, 12, "bad groups, cut frames and a good frame")
        for _ in range(5):
            assert_exact(meter, sim)
            time.sleep(0.1)
        stats = meter.stats
        assert stats.frames_incomplete > 0 and stats.bytes_discarded > 0
        assert stats.bytes_received == stats.bytes_discarded + stats.bytes_framed + stats.bytes_pending
        assert stats.frames_started == stats.frames_ok + stats.frames_empty + stats.frames_cut + (
            stats.bytes_pending > 0
        )


def test_no_frame_then_stale_then_meter_id_mismatch(line: SerialLine) -> None:
    with TicMeter("m1", line.end_b, mode=STANDARD, timeout_s=0.5, expected_id="000000000001") as meter:
        with pytest.raises(MeterError, match=r"meter m1: TIC on /dev/.*: no valid frame yet"):
            meter.read(NOW)
        with simulator(line, STANDARD):
            wait_for(lambda: meter.latest is not None, 4, "a frame")
            with pytest.raises(
                MeterError, match=f"frames come from meter {METER}, the configuration expects 000000000001"
            ):
                meter.read(NOW)
        # The last frame may still be on the line when the simulator stops: wait until it is old.
        wait_for(lambda: (meter.stats.last_frame_age_s or 0) > 0.6, 3, "the last frame to age")
        with pytest.raises(MeterError, match=r"stale, last valid frame \d+\.\d s ago \(timeout_s = 0.5 s\)"):
            meter.read(NOW)


def test_vanished_port_does_not_kill_the_reader() -> None:
    line = SerialLine(bytesize=7, parity="E").start()
    meter = TicMeter("m1", line.end_b, mode=STANDARD, timeout_s=0.3, reopen_backoff_s=0.05).start()
    try:
        with simulator(line, STANDARD):
            wait_for(lambda: meter.latest is not None, 4, "a frame")
            line.stop()  # the cable is pulled out: both pseudo-terminals vanish
            wait_for(lambda: meter.stats.port_errors >= 2, 4, "port errors and reopen attempts")
        assert meter._thread is not None and meter._thread.is_alive()
        assert meter.stats.state == "port error" and meter.stats.last_error
        time.sleep(0.35)
        with pytest.raises(MeterError, match="stale.*port errors"):
            meter.read(NOW)
    finally:
        meter.close()


def test_scan_reports_what_talks_on_the_port(line: SerialLine) -> None:
    with simulator(line, STANDARD, "TEMPO"):
        result = scan_tic(line.end_b, listen_s=2.0)
    assert (result.mode, result.baudrate, result.meter_id, result.contract) == (STANDARD, 9600, METER, "TEMPO")
    assert {"ADSC", "EAST", "EASF01", "SINSTS", "NTARF"} <= set(result.labels)
    assert result.frames_complete >= 1 and result.problem is None and result.bytes_received > 0
    with SerialLine(bytesize=7, parity="E") as quiet_line:
        silent = scan_tic(quiet_line.end_b, listen_s=0.3)
    assert silent.mode is None and "no valid TIC group at 9600 or 1200 bit/s" in (silent.problem or "")
    with pytest.raises(MeterError, match="cannot open /dev/nonexistent-tic"):
        scan_tic("/dev/nonexistent-tic", listen_s=0.1)


@pytest.mark.slow
def test_redetects_after_a_long_silence(line: SerialLine) -> None:
    with TicMeter("m1", line.end_b, detect_window_s=0.8, redetect_after_s=3.0) as meter:  # > a historic frame
        with simulator(line, STANDARD):
            wait_for(lambda: meter.stats.mode == STANDARD, 6, "standard detected")
        # The meter is switched to historic mode (it then talks at 1200 bit/s).
        with simulator(line, HISTORIC) as sim:
            wait_for(
                lambda: meter.stats.mode == HISTORIC and meter.latest is not None and meter.latest.mode == HISTORIC,
                12,
                "historic detected again",
            )
            assert_exact(meter, sim)
            assert meter.stats.detections == 2


def test_readings_are_stamped_when_their_frame_started_not_when_polled(line: SerialLine) -> None:
    """Simulator and reader share one clock; each reading's index is the profile's index at the reading's stamp."""
    clock = ManualClock(NOW)
    with (
        TicSimulator(line.end_a, STANDARD, METER, "BASE", PROFILE, clock) as sim,
        TicMeter("m1", line.end_b, mode=STANDARD, clock=clock) as meter,
    ):
        assert sim.mode == STANDARD
        for step in range(4):
            clock.advance(60)
            moved_at = clock.now()
            # Two frames after the clock moved: the second one was surely built after the move.
            frames = meter.stats.frames_ok
            wait_for(lambda: meter.stats.frames_ok >= frames + 2, 4, "two new frames")
            reading = meter.read(moved_at + 3600)  # a poll much later: the stamp is still the frame's
            assert reading.t == moved_at, step
            assert reading.import_wh == PROFILE.index_wh(moved_at)


def test_meter_time_source_stamps_with_the_linky_date(line: SerialLine) -> None:
    """With time_source = "meter", the reading's time is the DATE horodate the simulated Linky sampled at."""
    sim_clock, gateway_clock = ManualClock(NOW), ManualClock(NOW + 3 * 3600)  # the gateway's clock is wrong
    with (
        TicSimulator(line.end_a, STANDARD, METER, "BASE", PROFILE, sim_clock),
        TicMeter("m1", line.end_b, mode=STANDARD, clock=gateway_clock, time_source="meter") as meter,
    ):
        wait_for(lambda: meter.latest is not None, 4, "a frame")
        reading = meter.read(gateway_clock.now())
        assert reading.t == NOW and reading.import_wh == PROFILE.index_wh(NOW)
        assert meter.stats.frames_without_meter_time == 0


@pytest.mark.parametrize("mode", [HISTORIC, STANDARD])
@pytest.mark.parametrize("contract", ["BASE", "HC", "EJP", "TEMPO"])
def test_every_mode_and_contract_over_a_serial_line(mode: str, contract: str) -> None:
    """Each contract's frame crosses a pty at its mode's speed and reads back to the Wh (unpaced: content only)."""
    with SerialLine(default_baudrate=1200 if mode == HISTORIC else 9600, bytesize=7, parity="E", pace=False) as fast:
        with simulator(fast, mode, contract) as sim, TicMeter("m1", fast.end_b, mode=mode) as meter:
            wait_for(lambda: meter.latest is not None, 5, f"a {mode} {contract} frame")
            assert_exact(meter, sim)
            latest = meter.latest
            assert latest is not None and latest.mode == mode
            assert meter.stats.groups_bad_checksum == meter.stats.groups_malformed == 0


def test_a_silent_line_is_starting_first_then_a_failure(line: SerialLine) -> None:
    """No frame yet within the detection windows and one timeout: starting (not an ERROR); after it: a failure."""
    with TicMeter("m1", line.end_b, detect_window_s=0.2, timeout_s=0.3) as meter:
        assert meter.startup_s == pytest.approx(0.7)
        with pytest.raises(MeterNotReadyError, match="no valid frame yet, still starting"):
            meter.read(NOW)
        time.sleep(0.8)
        with pytest.raises(MeterError, match="no valid frame yet") as late:
            meter.read(NOW)
        assert not isinstance(late.value, MeterNotReadyError)


def test_the_gateway_says_a_starting_linky_once_at_info_not_as_a_failure(
    line: SerialLine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = provision_site(tmp_path, gateway_id="gw-t", mqtt_port=1883,
                          meters=[{"id": "linky", "driver": "tic", "device": line.end_b}])
    with TicMeter("linky", line.end_b, detect_window_s=5.0) as meter:
        gw = Gateway(GatewayConfig.load(site.gateway_config), ManualClock(NOW), meters=[meter])
        try:
            with caplog.at_level(logging.INFO, logger="gateway.service"):
                gw.poll_once()
                gw.poll_once()
        finally:
            gw._readers.shutdown(wait=True)
            gw.outbox.close()
    said = [(r.levelname, getattr(r, "event", None)) for r in caplog.records if r.name == "gateway.service"]
    assert said == [("INFO", "meter-starting")]
    assert gw.stats.read_errors == {} and gw.health()["failing_meters"] == []
