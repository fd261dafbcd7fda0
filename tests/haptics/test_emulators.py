"""STP/1 emulators: command answers, stream rate, scripts, rig consistency, pty plug cycles."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from fluorosim.haptics import stp1
from fluorosim.haptics.emulators import (
    FaultPlan,
    MotionScript,
    PtyTransport,
    Stp1Device,
    default_sweep,
    make_emulator,
)
from fluorosim.haptics.rig_models import GimbalRig, ImuRig, PoseRig, gimbal_direction
from fluorosim.haptics.stp1 import Ack, Command, Gimb, Hello, Imuq, Nak, Pose, Stp1Parser
from fluorosim.models import frames


def host_parse(data: bytes) -> list:
    return Stp1Parser().feed(data)


def test_device_answers_host_commands():
    device = Stp1Device("gimbal")
    replies = host_parse(device.handle(stp1.cmd_id() + stp1.cmd_rate(250) + stp1.cmd_zero(), 0.0))
    assert isinstance(replies[0], Hello) and replies[0].kind == "GIMB"
    assert replies[1:] == [Ack("RATE"), Ack("ZERO")]
    assert device.rate_hz == 250
    assert host_parse(device.handle(stp1.cmd_hapt(99), 0.0)) == [Ack("HAPT")]
    assert device.haptic_level == 99
    pose = Stp1Device("pose")
    assert host_parse(pose.handle(stp1.cmd_hapt(99), 0.0)) == [Nak("HAPT", "no actuator")]
    assert device.commands[:2] == [Command("ID?"), Command("RATE", 250)]


def test_heartbeat_when_idle_and_stream_at_the_set_rate():
    device = Stp1Device("gimbal", rate_hz=100, noise_mm=0.0)
    idle = host_parse(device.step(0.0) + device.step(0.2) + device.step(0.5))
    assert [type(m).__name__ for m in idle] == ["Hb", "Hb"]  # 2 Hz when idle
    device.handle(stp1.cmd_stream(True), 1.0)
    lines = []
    for i in range(101):
        lines += host_parse(device.step(1.0 + i * 0.01))
    gimbs = [m for m in lines if isinstance(m, Gimb)]
    assert len(gimbs) == 101  # 1.00 s … 2.00 s inclusive at 100 Hz
    assert np.diff([m.t_ms for m in gimbs]) == pytest.approx([10] * 100)
    state = default_sweep(1.5)
    assert gimbs[50].depth_mm == pytest.approx(state.depth_mm, abs=0.01)


def test_zero_tares_yaw_and_depth():
    device = Stp1Device("gimbal", noise_mm=0.0, streaming=True)
    device.handle(stp1.cmd_zero(), 2.0)
    (msg,) = [m for m in host_parse(device.step(2.0)) if isinstance(m, Gimb)]
    assert msg.yaw_deg == pytest.approx(0.0, abs=0.01)
    assert msg.depth_mm == pytest.approx(0.0, abs=0.01)


def test_motion_script_interpolates_and_reports_bad_files(tmp_path):
    script = MotionScript(
        [{"t_s": 0, "yaw": 0, "depth": 10}, {"t_s": 2, "yaw": 20, "depth": 30, "buttons": 1}]
    )
    mid = script(1.0)
    assert (mid.yaw_deg, mid.depth_mm, mid.buttons) == (10.0, 20.0, 0)
    assert script(5.0).buttons == 1 and script(5.0).depth_mm == 30.0
    bad = tmp_path / "bad.json"
    bad.write_text('[{"yaw": 1}]')
    with pytest.raises(ValueError, match="bad.json.*t_s"):
        MotionScript.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        MotionScript.load(bad)
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan.parse("garbage,flood")


def _first(kind: str, cls):
    device = Stp1Device(
        kind,
        noise_mm=0.0,
        streaming=True,
        motion=MotionScript([{"t_s": 0, "yaw": 15, "pitch": -40, "depth": 35}]),
    )
    return next(m for m in host_parse(device.step(0.0)) if isinstance(m, cls))


def test_pose_and_imu_emulators_agree_with_the_rig_models():
    expected_direction = gimbal_direction(15.0, -40.0)
    gimbal = GimbalRig(frames.identity()).sample(_first("gimbal", Gimb))
    assert gimbal.direction_lps == pytest.approx(expected_direction, abs=1e-4)
    pose_rig = PoseRig(
        frames.translation([0, 0, 1000.0]), tool_from_tip=frames.translation([0, 0, 150.0])
    )
    pose = pose_rig.sample(_first("pose", Pose))
    assert pose.direction_lps == pytest.approx(expected_direction, abs=1e-4)
    assert pose.tip_lps_mm == pytest.approx(35.0 * expected_direction, abs=0.02)
    imu = ImuRig(frames.identity(), depth_mm=35.0).sample(_first("imu", Imuq))
    assert imu.direction_lps == pytest.approx(expected_direction, abs=1e-4)


def test_faults_are_counted_by_the_device():
    device = Stp1Device(
        "gimbal",
        rng=np.random.default_rng(5),
        streaming=True,
        faults=FaultPlan(garbage=True, checksum=True, gaps=True),
    )
    parser = Stp1Parser()
    for i in range(2000):
        parser.feed(device.step(i * 0.01))
    device.faults = FaultPlan()  # one clean line so a fault on the last line is seen as a gap
    parser.feed(device.step(20.0))
    assert device.injected["checksum"] > 10 and device.injected["gaps"] > 10
    assert parser.dropped == {"checksum": device.injected["checksum"]}
    assert parser.noise_bytes == device.injected["garbage_bytes"]
    assert parser.seq_gaps == device.injected["gaps"] + device.injected["checksum"]


def test_pty_transport_replug_gives_a_new_pty_behind_the_same_path(tmp_path):
    transport = PtyTransport(tmp_path)
    transport.plug()
    first = transport.slave_path
    assert os.path.realpath(transport.path) == first
    transport.unplug()
    assert not os.path.exists(transport.path)
    transport.plug()
    assert os.path.realpath(transport.path) == transport.slave_path
    transport.close()


def test_make_emulator_refuses_unknown_kind_and_bad_script(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        make_emulator("laser")
    script = tmp_path / "s.json"
    script.write_text(json.dumps([]))
    with pytest.raises(ValueError, match="non-empty"):
        make_emulator("gimbal", script=script)
