"""SerialStp1Source against the pty emulator and a scripted fake port: samples, faults, unplug."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import serial

from fluorosim.haptics import stp1
from fluorosim.haptics.emulators import make_emulator
from fluorosim.haptics.rig_models import GimbalRig, gimbal_direction
from fluorosim.haptics.serial_source import (
    SerialStp1Source,
    buttons_from_mask,
    describe_open_error,
    tissue_to_haptic_level,
)
from fluorosim.haptics.source import TrackingStatus
from fluorosim.models import frames


def wait_for(condition, timeout_s: float = 15.0, what: str = "condition") -> None:
    """Wait (real time) until ``condition()``; fails with ``what`` if it never happens."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class FakeClock:
    """A host clock the test moves by hand."""

    def __init__(self) -> None:
        self.t_s = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.t_s

    def advance(self, dt_s: float) -> None:
        with self.lock:
            self.t_s += dt_s


class FakePort:
    """A serial port whose incoming bytes the test scripts; can be 'unplugged'."""

    def __init__(self) -> None:
        self.incoming = bytearray()
        self.written = bytearray()
        self.lock = threading.Lock()
        self.unplugged = False

    def feed(self, data: bytes) -> None:
        with self.lock:
            self.incoming += data

    @property
    def in_waiting(self) -> int:
        return len(self.incoming)

    def read(self, size: int) -> bytes:
        if self.unplugged:
            raise serial.SerialException("read failed: [Errno 5] Input/output error")
        with self.lock:
            data = bytes(self.incoming[:size])
            del self.incoming[:size]
        if not data:
            time.sleep(0.002)
        return data

    def write(self, data: bytes) -> int:
        if self.unplugged:
            raise serial.SerialException("write failed: [Errno 5] Input/output error")
        self.written += data
        return len(data)

    def close(self) -> None:
        pass


def gimb(seq: int, t_ms: int, depth: float = 30.0, status: str = "OK") -> bytes:
    return stp1.encode(f"GIMB,{seq},{t_ms},{status},10.00,-30.00,0.00,{depth:.2f}")


@pytest.fixture
def fake():
    """A source on a FakePort with a hand-moved clock and an identity-calibrated gimbal."""
    port, clock, recorded = FakePort(), FakeClock(), []
    source = SerialStp1Source(
        "/dev/fake0",
        rig=GimbalRig(frames.identity()),
        clock=clock,
        recorder=recorded.append,
        serial_factory=lambda *a, **k: port,
        reconnect=False,
    )
    source.start()
    yield source, port, clock, recorded
    source.close()


def test_source_sends_id_and_stream_on_connect(fake):
    source, port, _, _ = fake
    wait_for(lambda: stp1.cmd_stream(True) in port.written, what="STREAM,1")
    assert port.written.startswith(stp1.cmd_id())


def test_samples_follow_device_time_and_the_rig(fake):
    source, port, clock, recorded = fake
    for i in range(5):
        port.feed(gimb(i, 1000 + 10 * i))
    wait_for(lambda: source.counters.get("samples", 0) == 5, what="5 samples")
    sample = source.poll()
    assert sample.status == TrackingStatus.OK
    assert source.poll() is None  # nothing new
    assert [r.raw["seq"] for r in recorded] == [0, 1, 2, 3, 4]
    # t_s = device time + one offset: 10 ms apart exactly, whatever the host clock did
    assert np.diff([r.t_s for r in recorded]) == pytest.approx([0.01] * 4)
    assert recorded[0].tip_lps_mm == pytest.approx(30.0 * gimbal_direction(10.0, -30.0))


def test_stale_then_lost_after_250_ms_then_reacquired(fake):
    source, port, clock, _ = fake
    for i in range(5):
        port.feed(gimb(i, 1000 + 10 * i))
    wait_for(lambda: source.counters.get("samples", 0) == 5, what="samples")
    assert source.status == TrackingStatus.OK
    clock.advance(0.1)  # the device went silent 100 ms ago (host clock)
    wait_for(lambda: source.status == TrackingStatus.STALE, what="STALE")
    held = source.poll()
    assert held.status == TrackingStatus.STALE and held.tip_lps_mm is not None
    clock.advance(0.2)  # 300 ms > 250 ms
    wait_for(lambda: source.status == TrackingStatus.MISSING, what="MISSING")
    lost = source.poll()
    assert lost.tip_lps_mm is None  # never a zero pose
    port.feed(gimb(5, 1400, depth=60.0))
    wait_for(lambda: source.status == TrackingStatus.OK, what="reacquired")
    back = source.poll()
    assert np.linalg.norm(back.tip_lps_mm) == pytest.approx(60.0)  # filter reset: no lag
    assert [s for _, s in source.status_changes] == [
        TrackingStatus.OK,
        TrackingStatus.STALE,
        TrackingStatus.MISSING,
        TrackingStatus.OK,
    ]


def test_device_miss_and_buttons(fake):
    source, port, clock, _ = fake
    port.feed(gimb(0, 0) + stp1.encode("BTN,1,5,05"))
    wait_for(lambda: source.counters.get("samples", 0) == 1, what="sample")
    wait_for(lambda: (s := source.poll()) is not None and s.buttons == {"pedal", "tap"})
    assert buttons_from_mask(0x05) == {"pedal", "tap"}
    assert buttons_from_mask(0x12) == {"drill", "button4"}
    port.feed(gimb(2, 400, status="MISS"))  # device: tool not seen, 400 ms later
    wait_for(lambda: source.status == TrackingStatus.MISSING, what="MISSING from MISS line")


def test_unplugged_fake_port_is_disconnected_at_once_and_keeps_the_record(fake):
    source, port, clock, recorded = fake
    for i in range(3):
        port.feed(gimb(i, 10 * i))
    wait_for(lambda: len(recorded) == 3, what="3 recorded")
    port.unplugged = True
    wait_for(lambda: source.status == TrackingStatus.DISCONNECTED, what="DISCONNECTED")
    assert "disconnected" in source.message
    assert len(recorded) == 3 and source.counters["disconnects"] == 1


def test_haptic_level_goes_out_through_the_reader_thread(fake):
    source, port, _, _ = fake
    source.send_haptic(300)  # clipped to 255
    wait_for(lambda: stp1.cmd_hapt(255) in port.written, what="HAPT")


def test_tissue_to_haptic_level_orders_tissues_by_stiffness():
    levels = [
        tissue_to_haptic_level(t)
        for t in ("air", "soft_tissue", "disc", "cancellous_bone", "cortical_bone")
    ]
    assert levels == sorted(levels) and levels[0] == 0 and levels[-1] == 255
    assert len(set(levels)) == 5
    assert tissue_to_haptic_level("L4_pedicle_left") == 255
    assert tissue_to_haptic_level("disc_L4_L5") == tissue_to_haptic_level("disc")
    assert tissue_to_haptic_level("L5_body") == tissue_to_haptic_level("cancellous_bone")
    assert tissue_to_haptic_level("psoas_left") == tissue_to_haptic_level("soft_tissue")


# ----------------------------------------------------------------------- open errors


def test_permission_denied_gives_a_message_not_a_traceback():
    def denied(port, **kwargs):
        raise serial.SerialException(
            13, f"could not open port {port}: [Errno 13] Permission denied"
        )

    source = SerialStp1Source("/dev/ttyUSB7", serial_factory=denied, reconnect=False)
    source.start()
    wait_for(lambda: bool(source.message), what="message")
    source.close()
    assert "permission denied" in source.message and "/dev/ttyUSB7" in source.message
    assert "dialout" in source.message
    assert source.status == TrackingStatus.DISCONNECTED
    assert source.poll().status == TrackingStatus.DISCONNECTED


def test_missing_port_gives_a_message():
    source = SerialStp1Source("/dev/does-not-exist-fluorosim", reconnect=False)
    source.start()
    wait_for(lambda: bool(source.message), what="message")
    source.close()
    assert source.message.startswith("no device at /dev/does-not-exist-fluorosim")


def test_describe_open_error_cases():
    assert "busy" in describe_open_error(
        "/dev/x", serial.SerialException(11, "Could not exclusively lock port /dev/x")
    )
    assert "nothing is listening" in describe_open_error(
        "socket://127.0.0.1:9", ConnectionRefusedError(111, "Connection refused")
    )


# ----------------------------------------------------------------------- against the pty emulator


def test_pty_port_busy_when_another_program_holds_it(tmp_path):
    with make_emulator("gimbal", link_dir=tmp_path) as emu:
        holder = serial.Serial(emu.path, exclusive=True)
        try:
            source = SerialStp1Source(emu.path, reconnect=False)
            source.start()
            wait_for(lambda: bool(source.message), what="message")
            source.close()
            assert "is busy" in source.message and emu.path in source.message
        finally:
            holder.close()


def test_pty_emulator_gimbal_stream_matches_the_script(tmp_path):
    script = tmp_path / "motion.json"
    script.write_text(
        json.dumps(
            [
                {"t_s": 0, "yaw": 5, "pitch": -40, "depth": 20},
                {"t_s": 100, "yaw": 5, "pitch": -40, "depth": 20, "buttons": 1},
            ]
        )
    )
    entry = np.array([30.0, 80.0, 10.0])
    rig = GimbalRig(frames.translation(entry))
    with (
        make_emulator("gimbal", link_dir=tmp_path, script=script, rate_hz=200, noise_mm=0.0) as emu,
        SerialStp1Source(emu.path, rig=rig, rate_hz=200) as source,
    ):
        wait_for(lambda: source.counters.get("samples", 0) >= 50, what="50 samples")
        wait_for(lambda: (s := source.poll()) is not None and s.status == TrackingStatus.OK)
        sample = source.guard.last_output
        expected = entry + 20.0 * gimbal_direction(5.0, -40.0)
        assert sample.tip_lps_mm == pytest.approx(expected, abs=1e-6)
        assert source.hello.kind == "GIMB" and source.hello.rate_hz == 200
        assert stp1.Command("RATE", 200) in emu.device.commands
        source.send_haptic(tissue_to_haptic_level("cortical_bone"))
        wait_for(lambda: emu.device.haptic_level == 255, what="HAPT at the device")


def test_pty_faults_are_counted_exactly_as_injected(tmp_path):
    with (
        make_emulator(
            "gimbal", link_dir=tmp_path, faults="garbage,checksum,gaps", rate_hz=250, seed=3
        ) as emu,
        SerialStp1Source(emu.path) as source,
    ):
        wait_for(lambda: source.counters.get("lines_ok", 0) >= 400, what="400 lines")
        emu.device.streaming = False  # freeze the device, then let the host drain
        time.sleep(0.1)  # let a step already under way finish before counting
        injected = dict(emu.injected())
        wait_for(
            lambda: (
                source.counters.get("dropped_checksum", 0) == injected["checksum"]
                and source.counters.get("noise_bytes", 0) == injected["garbage_bytes"]
            ),
            what="counters to catch up",
        )
        counters = dict(source.counters)
    assert injected["checksum"] > 0 and injected["gaps"] > 0 and injected["garbage_bytes"] > 0
    assert counters["dropped_checksum"] == injected["checksum"]
    assert counters["noise_bytes"] == injected["garbage_bytes"]
    # a line with a broken checksum is a lost line too
    assert counters["seq_gaps"] == injected["gaps"] + injected["checksum"]
    assert sum(v for k, v in counters.items() if k.startswith("dropped_")) == injected["checksum"]


def test_pty_unplug_replug_disconnects_then_recovers_without_losing_samples(tmp_path):
    recorded = []
    events = []
    with (
        make_emulator(
            "gimbal",
            link_dir=tmp_path,
            faults="unplug",
            rate_hz=100,
            on_event=events.append,
            unplug_every_s=1.0,
            unplug_for_s=0.5,
        ) as emu,
        SerialStp1Source(
            emu.path, rig=GimbalRig(frames.identity()), recorder=recorded.append
        ) as source,
    ):
        wait_for(lambda: source.counters.get("disconnects", 0) >= 1, what="a disconnect")
        before = len(recorded)
        wait_for(
            lambda: source.counters.get("connects", 0) >= 2 and source.status == TrackingStatus.OK,
            what="reconnection",
        )
        wait_for(lambda: len(recorded) > before + 10, what="samples after replug")
        statuses = [s for _, s in source.status_changes]
        counters = dict(source.counters)
    assert before > 20
    # OK, then DISCONNECTED at the unplug, then OK again (a loaded CPU may add STALE holds)
    assert statuses[0] == TrackingStatus.OK
    cut = statuses.index(TrackingStatus.DISCONNECTED)
    assert TrackingStatus.OK in statuses[cut:]
    assert set(statuses[:cut]) <= {TrackingStatus.OK, TrackingStatus.STALE, TrackingStatus.MISSING}
    assert counters["samples"] == len(recorded)  # everything received reached the recorder
    assert sum(e.startswith("plugged") for e in events) >= 2 and "unplugged" in events
    # the first session's samples are all still there, in device order
    first = [r.raw["seq"] for r in recorded[:before]]
    assert first == sorted(first)


def test_tcp_emulator_with_socket_url():
    with make_emulator("pose", tcp_port=0, rate_hz=100) as emu:
        assert emu.path.startswith("socket://127.0.0.1:")
        with SerialStp1Source(emu.path) as source:
            wait_for(lambda: source.counters.get("samples", 0) >= 10, what="10 samples")
            assert source.hello.kind == "POSE"
            assert source.status == TrackingStatus.UNCALIBRATED  # no registration given


def test_device_clock_wrap_keeps_time_monotonic(tmp_path):
    recorded = []
    emulator = make_emulator("gimbal", link_dir=tmp_path, rate_hz=100, t0_ms=2**32 - 300)
    with emulator as emu, SerialStp1Source(emu.path, recorder=recorded.append):
        wait_for(lambda: len(recorded) >= 80, what="80 samples")
    t = np.array([r.t_s for r in recorded[:80]])
    device_clock = [r.raw["t_ms"] for r in recorded[:80]]
    # the device's 32-bit millisecond counter wrapped inside the window
    assert min(device_clock) < 1000 and max(device_clock) > 2**32 - 1000
    assert np.all(np.diff(t) > 0) and np.all(np.diff(t) < 0.05)


# ----------------------------------------------------------------------- source URLs


def test_source_urls_name_the_right_kind():
    from fluorosim.haptics.urls import describe_url, parse_igtl_url

    assert describe_url("/dev/ttyACM0") == "stp1"
    assert describe_url("COM3") == "stp1"
    assert describe_url("socket://127.0.0.1:5000") == "stp1"
    assert describe_url("ndi:/dev/ttyUSB0") == "ndi"
    assert describe_url("ndi+tcp://10.0.0.2") == "ndi"
    assert describe_url("igtl://localhost") == "igtl"
    assert describe_url("take1.igs.mha#StylusToTracker") == "plus_replay"
    assert describe_url("mouse") == "mouse"
    assert parse_igtl_url("igtl://plus.local/NeedleToTracker") == (
        "plus.local",
        18944,
        "NeedleToTracker",
    )
    assert parse_igtl_url("igtl://h:1234") == ("h", 1234, None)


def test_open_source_builds_sources_without_touching_devices(tmp_path):
    from fluorosim.haptics.urls import SourceUrlError, open_source

    source = open_source("stp1:/dev/ttyACM9", rate_hz=250)
    assert isinstance(source, SerialStp1Source) and source.port == "/dev/ttyACM9"
    assert type(open_source("mouse")).__name__ == "MouseSource"
    assert type(open_source("ndi:/dev/ttyUSB3")).__name__ == "NdiSource"
    assert type(open_source("igtl://127.0.0.1:18944/StylusToTracker")).__name__ == "IgtlSource"
    with pytest.raises(SourceUrlError, match="no such PLUS sequence file"):
        open_source(str(tmp_path / "missing.mha"))
    attempt = tmp_path / "attempt.json"
    attempt.write_text("[]")
    with pytest.raises(SourceUrlError, match="fluorosim replay"):
        open_source(str(attempt))
    replay = open_source(str(attempt), attempt_loader=lambda path: [])
    assert type(replay).__name__ == "AttemptReplaySource"


def test_device_found_again_by_vid_pid_when_its_path_is_gone(tmp_path, monkeypatch):
    """A USB adapter that comes back under another name is found by VID:PID and serial number."""
    from types import SimpleNamespace

    import serial.tools.list_ports

    with make_emulator("gimbal", link_dir=tmp_path) as emu:
        fake_ports = [
            SimpleNamespace(device="/dev/ttyS0", vid=None, pid=None, serial_number=None),
            SimpleNamespace(device=emu.path, vid=0x2341, pid=0x8036, serial_number="EMU42"),
        ]
        monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: fake_ports)
        source = SerialStp1Source(
            "/dev/ttyACM-was-here", vid_pid=(0x2341, 0x8036), serial_number="EMU42"
        )
        with source:
            wait_for(lambda: source.counters.get("samples", 0) >= 5, what="samples")
            assert source.connected_path == emu.path


def test_start_never_blocks_on_opening_the_port():
    entered, release = threading.Event(), threading.Event()
    returned = []

    def slow_open(port, **kwargs):
        entered.set()
        release.wait(10.0)
        returned.append(True)
        raise serial.SerialException(16, "Device or resource busy")

    source = SerialStp1Source("/dev/ttySLOW", serial_factory=slow_open, reconnect=False)
    source.start()  # returns while the reader thread is still inside the open call
    assert source.poll() is None
    entered.wait(10.0)
    assert entered.is_set() and not returned
    release.set()
    wait_for(lambda: bool(source.message), what="busy message")
    source.close()
    assert "busy" in source.message


def test_stop_pauses_the_stream_and_start_resumes_it(fake):
    source, port, _, _ = fake
    wait_for(lambda: stp1.cmd_stream(True) in port.written, what="STREAM,1")
    source.stop()
    wait_for(lambda: stp1.cmd_stream(False) in port.written, what="STREAM,0")
    source.start()
    wait_for(lambda: port.written.count(stp1.cmd_stream(True)) == 2, what="STREAM,1 again")


def test_late_lines_are_counted_against_the_device_clock(fake):
    source, port, clock, recorded = fake

    def deliver(lines: list[int]) -> None:
        for seq in lines:
            port.feed(gimb(seq, 10 * seq))
        wait_for(lambda: len(recorded) == lines[-1] + 1, what=f"line {lines[-1]}")

    for seq in range(5):  # on time: host clock advances with the device clock
        deliver([seq])
        clock.advance(0.01)
    clock.advance(0.075)  # lines 5..12 are held up (USB hiccup) and arrive in one burst
    deliver(list(range(5, 13)))  # lags 75, 65, 55, 45, … ms: three are later than 50 ms
    assert source.counters["late_lines"] == 3
    assert np.diff([r.t_s for r in recorded]) == pytest.approx([0.01] * 12)  # device timing kept


def test_a_failing_rig_model_is_reported_not_silently_fatal():
    class BrokenRig(GimbalRig):
        def sample(self, message, buttons=frozenset(), t_s=None):
            raise RuntimeError("rig exploded")

    port = FakePort()
    source = SerialStp1Source(
        "/dev/fake1", rig=BrokenRig(), serial_factory=lambda *a, **k: port, reconnect=False
    )
    with source:
        port.feed(gimb(0, 0))
        wait_for(lambda: source.status == TrackingStatus.DISCONNECTED and source.message)
    assert "rig exploded" in source.message and source.counters["reader_errors"] == 1


def test_a_rig_calibrated_for_another_kind_of_device_is_named(tmp_path):
    with make_emulator("imu", link_dir=tmp_path) as emu:
        source = SerialStp1Source(emu.path, rig=GimbalRig(frames.identity()))
        with source:
            wait_for(lambda: source.counters.get("rig_mismatch", 0) == 1, what="mismatch")
    assert "sends IMUQ lines but the calibrated rig reads GIMB" in source.message
