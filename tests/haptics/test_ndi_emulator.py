"""NdiSource against the NDI emulator over a pty (and TCP): bring-up, tracking, loss, faults.

Waiting loops below bound how long a test waits for the reader thread; they assert behaviour,
never speed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from fluorosim.haptics.ndi import FrameClock, NdiSource, parse_url, pose_matrix
from fluorosim.haptics.ndi_emulator import Faults, NdiEmulator, ToolState, circle_script, serve
from fluorosim.haptics.ndi_protocol import frame_command, parse_reply
from fluorosim.haptics.source import TrackingStatus

HANDLE = 0x0A


def emulate(**options):
    """An emulator whose frame advances once per TX/BX, so tests do not depend on host speed."""
    options.setdefault("frame_clock", None)
    return serve(**options)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def collect(source, count, wait_s=15.0, until=None):
    """Poll until ``count`` samples (or ``until(sample)``) arrive; fails if they never do."""
    samples = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        sample = source.poll()
        if sample is not None:
            samples.append(sample)
            if until is not None and until(sample):
                return samples
            if until is None and len(samples) >= count:
                return samples
        time.sleep(0.005)
    raise AssertionError(f"only {len(samples)} samples arrived; message={source.message!r}")


def expected_pose(script, frame):
    state = script(frame)[HANDLE]
    return pose_matrix(state.quaternion_wxyz, state.position_mm)


def test_bring_up_sequence_and_tracking_over_pty():
    script = circle_script(HANDLE)
    with emulate(script=script) as emulator:
        source = NdiSource(f"ndi:{emulator.port_path}")
        source.start()
        assert source.wait_until_tracking(10.0), source.message
        samples = collect(source, 10)
        source.stop()
        names = emulator.commands
    assert names[:10] == [
        "INIT",
        "COMM",
        "VER",
        "PHSR",
        "PINIT",
        "PHSR",
        "PHSR",
        "PENA",
        "PHSR",
        "TSTART",
    ]
    assert set(names[10:-1]) == {"TX"} and names[-1] == "TSTOP"
    assert source.rate_hz == 60.0 and "Polaris" in source.version_text
    first_frame = None
    for sample in samples:
        assert sample.status is TrackingStatus.UNCALIBRATED  # no registration given
        frame = sample.raw["frame_number"]
        first_frame = first_frame or frame
        truth = expected_pose(script, frame)
        # TX carries 0.01 mm positions and 1e-4 quaternion components
        np.testing.assert_allclose(sample.tip_lps_mm, truth[:3, 3], atol=0.006)
        np.testing.assert_allclose(
            sample.raw["tracker_from_tool"][:3, :3], truth[:3, :3], atol=2e-4
        )
        np.testing.assert_allclose(sample.direction_lps, truth[:3, 2], atol=2e-4)
    # time comes from device frames at 60 Hz, not from the host clock
    frames = np.array([s.raw["frame_number"] for s in samples])
    times = np.array([s.t_s for s in samples])
    np.testing.assert_allclose(np.diff(times), np.diff(frames) / 60.0)
    assert source.status is TrackingStatus.DISCONNECTED


def test_bx_mode_with_tip_calibration_and_registration():
    script = circle_script(HANDLE)
    tool_from_tip = np.eye(4)
    tool_from_tip[:3, 3] = [0.0, 0.0, 120.0]
    patient_from_tracker = np.eye(4)
    patient_from_tracker[:3, 3] = [5.0, -7.0, 1000.0]
    with emulate(script=script) as emulator:
        source = NdiSource(
            f"ndi:{emulator.port_path}",
            mode="BX",
            tool_from_tip=tool_from_tip,
            patient_from_tracker=patient_from_tracker,
        )
        with source:
            samples = collect(source, 5)
        assert "BX" in emulator.commands and "TX" not in emulator.commands
    for sample in samples:
        assert sample.status is TrackingStatus.OK and sample.has_pose
        truth = (
            patient_from_tracker @ expected_pose(script, sample.raw["frame_number"]) @ tool_from_tip
        )
        np.testing.assert_allclose(
            sample.tip_lps_mm, truth[:3, 3], atol=1e-3
        )  # float32 on the wire
        np.testing.assert_allclose(sample.direction_lps, truth[:3, 2], atol=1e-5)


def test_missing_tool_and_out_of_volume():
    """The device clock is stepped by the test, so each state is seen whatever the host load."""
    start = 1000
    script = circle_script(
        HANDLE,
        missing_frames=range(start + 20, start + 40),
        out_of_volume_frames=range(start + 60, start + 80),
    )
    device_clock = FakeClock()
    expected = {
        0: TrackingStatus.UNCALIBRATED,
        30: TrackingStatus.MISSING,
        70: TrackingStatus.OUT_OF_VOLUME,
        100: TrackingStatus.UNCALIBRATED,
    }
    seen = {}
    with (
        emulate(script=script, start_frame=start, frame_clock=device_clock) as emulator,
        NdiSource(f"ndi:{emulator.port_path}") as source,
    ):
        for offset in expected:
            device_clock.now = (offset + 0.5) / 60.0
            frame = start + offset
            seen[offset] = collect(
                source, 0, until=lambda s, f=frame: s.raw.get("frame_number") == f
            )[-1]
    for offset, status in expected.items():
        sample = seen[offset]
        assert sample.status is status
        assert sample.t_s == pytest.approx(offset / 60.0)
        if status in (TrackingStatus.MISSING, TrackingStatus.OUT_OF_VOLUME):
            assert sample.tip_lps_mm is None and not sample.has_pose  # never a zero pose
        else:
            assert sample.tip_lps_mm is not None
    assert seen[70].raw["port_status"] & 0x40


def test_corrupt_replies_are_counted_never_turned_into_poses():
    script = circle_script(HANDLE)
    with (
        emulate(script=script, faults=Faults(bad_crc_every=3)) as emulator,
        NdiSource(f"ndi:{emulator.port_path}") as source,
    ):
        samples = collect(source, 15)
        counters = dict(source.counters)
    assert counters["crc_errors"] >= 3
    for sample in samples:
        truth = expected_pose(script, sample.raw["frame_number"])
        np.testing.assert_allclose(sample.tip_lps_mm, truth[:3, 3], atol=0.006)


def test_unplugged_adapter_reports_disconnected_with_the_port_name():
    with emulate(faults=Faults(unplug_after_replies=5)) as emulator:
        source = NdiSource(f"ndi:{emulator.port_path}")
        source.start()
        samples = collect(source, 0, until=lambda s: s.status is TrackingStatus.DISCONNECTED)
        assert samples[-1].tip_lps_mm is None
        assert source.status is TrackingStatus.DISCONNECTED
        assert emulator.port_path in source.message and "connection lost" in source.message
        source.close()


def test_missing_port_is_a_message_not_a_traceback():
    source = NdiSource("ndi:/dev/does-not-exist-ttyUSB9")
    source.start()
    assert not source.wait_until_tracking(5.0)
    assert "/dev/does-not-exist-ttyUSB9" in source.message
    assert source.status is TrackingStatus.DISCONNECTED and source.poll() is None
    source.close()


def test_vega_over_tcp_skips_serial_steps_and_reports_a_dropped_link():
    emulator = emulate(tcp_port=0)
    source = NdiSource(f"ndi+tcp://127.0.0.1:{emulator.tcp_port}")
    try:
        source.start()
        collect(source, 3)
        assert "COMM" not in emulator.commands and emulator.commands[0] == "INIT"
        emulator.stop()  # the Vega goes away (network cable, power)
        last = collect(source, 0, until=lambda s: s.status is TrackingStatus.DISCONNECTED)[-1]
        assert last.tip_lps_mm is None and "connection lost" in source.message
    finally:
        source.close()
        emulator.stop()


def test_aurora_rate_from_version_reply():
    with emulate(device="Aurora") as emulator, NdiSource(f"ndi:{emulator.port_path}") as source:
        samples = collect(source, 4)
    assert source.rate_hz == 40.0
    frames = np.array([s.raw["frame_number"] for s in samples])
    np.testing.assert_allclose(np.diff([s.t_s for s in samples]), np.diff(frames) / 40.0)


def test_unknown_tool_handle_is_refused_by_name():
    with emulate() as emulator:
        source = NdiSource(f"ndi:{emulator.port_path}", tool_handle=0x33)
        source.start()
        assert not source.wait_until_tracking(10.0)
        assert "33" in source.message and "0A" in source.message
        source.close()


def test_emulator_answers_commands_directly():
    emulator = NdiEmulator(script=lambda frame: {1: ToolState()})
    assert parse_reply(emulator.answer(frame_command("INIT")[:-1])).kind == "OKAY"
    assert parse_reply(emulator.answer(b"INIT:FFFF")).error_code == 0x04  # bad command CRC
    assert (
        parse_reply(emulator.answer(frame_command("TX", "0801")[:-1])).kind == "ERROR"
    )  # before TSTART
    assert parse_reply(emulator.answer(frame_command("RESET")[:-1])).kind == "RESET"
    assert parse_reply(emulator.answer(b"\xff\xfe")).kind == "ERROR"


def test_ndicapi_reads_the_emulator_replies():
    """ndicapy (the C library maintained with PLUS) is an independent parser of our TX/BX bytes."""
    ndicapy = pytest.importorskip("ndicapy")
    script = circle_script(HANDLE)
    with emulate(script=script) as emulator:
        device = ndicapy.ndiOpen(emulator.port_path)
        assert device is not None
        try:
            for command in ("INIT:", "PHSR:02", "PINIT:0A", "PENA:0AD", "TSTART:"):
                assert ndicapy.ndiCommand(device, command) is not None
            ndicapy.ndiCommand(device, "TX:0801")
            handle = bytes([HANDLE])
            frame = ndicapy.ndiGetTXFrame(device, handle)
            q0, qx, qy, qz, x, y, z, rms = ndicapy.ndiGetTXTransform(device, handle)
            truth = script(frame)[HANDLE]
            np.testing.assert_allclose((q0, qx, qy, qz), truth.quaternion_wxyz, atol=1e-4)
            np.testing.assert_allclose((x, y, z), truth.position_mm, atol=0.006)
            assert ndicapy.ndiGetTXPortStatus(device, handle) == 0x31
            ndicapy.ndiCommand(device, "BX:0801")
            frame = ndicapy.ndiGetBXFrame(device, handle)
            values = ndicapy.ndiGetBXTransform(device, handle)
            truth = script(frame)[HANDLE]
            np.testing.assert_allclose(values[4:7], truth.position_mm, atol=1e-3)
            assert ndicapy.ndiGetError(device) == 0
            ndicapy.ndiCommand(device, "TSTOP:")
        finally:
            ndicapy.ndiClose(device)


def test_frame_clock_unwraps_the_32_bit_counter():
    clock = FrameClock(60.0)
    assert clock(2**32 - 2) == 0.0
    assert clock(1) == pytest.approx(3 / 60.0)


def test_url_parsing():
    assert parse_url("ndi:/dev/ttyUSB0") == ("serial", "/dev/ttyUSB0")
    assert parse_url("ndi+tcp://10.0.0.5") == ("tcp", "socket://10.0.0.5:8765")
    with pytest.raises(ValueError, match="must start with"):
        parse_url("stp1:/dev/ttyACM0")


def test_passive_tool_rom_is_loaded_before_tracking(tmp_path):
    rom = tmp_path / "8700339.rom"
    rom_bytes = bytes(range(256)) * 3 + b"tail"  # 772 bytes → 13 PVWR chunks
    rom.write_bytes(rom_bytes)
    script = circle_script(0x01)
    with emulate(script=script, wired_handles=[]) as emulator:
        with NdiSource(f"ndi:{emulator.port_path}", rom_files=[rom]) as source:
            samples = collect(source, 3)
        assert emulator.commands.count("PVWR") == 13
        assert emulator.commands.index("PHRQ") < emulator.commands.index("PINIT")
        written = bytes(emulator.roms[0x01])
    assert written[: len(rom_bytes)] == rom_bytes and not any(written[len(rom_bytes) :])
    assert samples[-1].raw["handle"] == 0x01 and samples[-1].tip_lps_mm is not None


def test_missing_rom_file_is_named(tmp_path):
    with emulate(wired_handles=[]) as emulator:
        source = NdiSource(f"ndi:{emulator.port_path}", rom_files=[tmp_path / "absent.rom"])
        source.start()
        assert not source.wait_until_tracking(10.0)
        assert "absent.rom" in source.message
        source.close()


def test_realtime_frames_follow_the_device_clock():
    device_clock = FakeClock()
    with (
        emulate(frame_clock=device_clock, start_frame=1000) as emulator,
        NdiSource(f"ndi:{emulator.port_path}") as source,
    ):
        (first,) = collect(source, 1)
        assert first.raw["frame_number"] == 1000 and first.t_s == 0.0
        deadline = time.monotonic() + 10.0
        while source.counters.get("duplicate_frames", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source.poll() is None  # the same device frame is never handed out twice
        device_clock.now = 0.5
        later = collect(source, 0, until=lambda s: s.raw["frame_number"] != 1000)[-1]
    assert later.raw["frame_number"] == 1030 and later.t_s == pytest.approx(0.5)


@pytest.mark.parametrize("mode", ["TX", "BX"])
def test_line_noise_before_replies_is_skipped(mode):
    script = circle_script(HANDLE)
    noise = Faults(garbage_before_reply=b"\x00\xff\x13junk\xfe")
    with (
        emulate(script=script, faults=noise) as emulator,
        NdiSource(f"ndi:{emulator.port_path}", mode=mode) as source,
    ):
        samples = collect(source, 5)
        counters = dict(source.counters)
    assert counters["noise_bytes_skipped"] >= 5
    for sample in samples:
        truth = expected_pose(script, sample.raw["frame_number"])
        np.testing.assert_allclose(sample.tip_lps_mm, truth[:3, 3], atol=0.006)


def test_source_can_be_stopped_and_started_again():
    with emulate() as emulator:
        source = NdiSource(f"ndi:{emulator.port_path}")
        try:
            source.start()
            collect(source, 2)
            source.stop()
            assert source.status is TrackingStatus.DISCONNECTED
            source.start()
            again = collect(source, 2)
            assert again[-1].tip_lps_mm is not None and source.counters["tracking_started"] == 2
        finally:
            source.close()
        assert emulator.commands.count("TSTOP") >= 1 and emulator.commands.count("INIT") == 2
