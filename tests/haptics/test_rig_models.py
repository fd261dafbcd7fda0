"""Rig models: the golden STP/1 lines give the tip and direction that the geometry says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluorosim.haptics.rig_models import (
    GimbalRig,
    ImuRig,
    PoseRig,
    gimbal_angles_deg,
    gimbal_direction,
    patient_from_rig_at,
    rig_for_kind,
)
from fluorosim.haptics.source import TrackingStatus
from fluorosim.haptics.stp1 import Stp1Parser, encode
from fluorosim.models import frames

GIMB_LINE = b"$GIMB,1042,518230,OK,12.50,-33.25,0.00,41.80*32\r\n"
POSE_LINE = b"$POSE,77,90210,OK,12.34,-56.78,123.45,0.70711,0.00000,0.70711,0.00000,0.15*3B\r\n"
IMUQ_LINE = b"$IMUQ,5,1000,OK,0.99996,0.00000,0.00873,0.00000,3*09\r\n"


def message(line: bytes):
    (msg,) = Stp1Parser().feed(line)
    return msg


def test_gimbal_direction_conventions():
    assert gimbal_direction(0, 0) == pytest.approx([1, 0, 0])
    assert gimbal_direction(90, 0) == pytest.approx([0, 1, 0])
    assert gimbal_direction(0, -90) == pytest.approx([0, 0, -1])  # straight down
    assert gimbal_angles_deg(gimbal_direction(12.5, -33.25)) == pytest.approx((12.5, -33.25))


def test_golden_gimb_line_tip_is_entry_plus_depth_along_the_shaft():
    entry = np.array([40.0, 90.0, -20.0])
    patient_from_rig = patient_from_rig_at(entry)  # forward = inferior, up = posterior
    sample = GimbalRig(patient_from_rig).sample(message(GIMB_LINE))
    assert sample.status == TrackingStatus.OK
    assert sample.t_s == pytest.approx(518.230)
    y, p = math.radians(12.5), math.radians(-33.25)
    d_rig = np.array([math.cos(p) * math.cos(y), math.cos(p) * math.sin(y), math.sin(p)])
    # rig x = inferior (0,0,-1), rig z = posterior (0,1,0), rig y = z × x = (-1,0,0) (right)
    d_lps = (
        d_rig[0] * np.array([0, 0, -1])
        + d_rig[1] * np.array([-1, 0, 0])
        + d_rig[2] * np.array([0, 1, 0])
    )
    assert sample.direction_lps == pytest.approx(d_lps)
    assert sample.tip_lps_mm == pytest.approx(entry + 41.80 * d_lps)
    assert np.linalg.norm(sample.tip_lps_mm - entry) == pytest.approx(41.80)
    assert sample.direction_lps[1] < 0  # pitched down into a prone patient = toward anterior


def test_gimbal_zero_and_depth_scale():
    rig = GimbalRig(
        frames.identity(),
        yaw_zero_deg=12.5,
        pitch_zero_deg=-33.25,
        depth_zero_mm=1.8,
        depth_scale=0.5,
    )
    sample = rig.sample(message(GIMB_LINE))
    assert sample.direction_lps == pytest.approx([1, 0, 0])
    assert sample.tip_lps_mm == pytest.approx([20.0, 0, 0])


def test_uncalibrated_gimbal_keeps_the_rig_pose_in_raw():
    sample = GimbalRig().sample(message(GIMB_LINE))
    assert sample.status == TrackingStatus.UNCALIBRATED and sample.tip_lps_mm is None
    assert np.linalg.norm(sample.raw["tip_rig_mm"]) == pytest.approx(41.8)


def test_golden_pose_line_with_tip_offset_and_registration():
    tool_from_tip = frames.translation([0.0, 0.0, 100.0])  # tip 100 mm along the tool z axis
    patient_from_tracker = frames.translation([-10.0, 5.0, 0.0])
    rig = PoseRig(patient_from_tracker, tool_from_tip)
    sample = rig.sample(message(POSE_LINE))
    # q = (√½, 0, √½, 0) is +90° about y: tool z maps to tracker x
    assert sample.tip_lps_mm == pytest.approx(
        [12.34 + 100.0 - 10.0, -56.78 + 5.0, 123.45], abs=1e-3
    )
    assert sample.direction_lps == pytest.approx([1.0, 0.0, 0.0], abs=1e-5)
    assert sample.raw["err_mm"] == 0.15


def test_pose_rig_statuses_and_missing_pose():
    rig = PoseRig(frames.identity(), shaft_axis_tool=(0, 0, 1))
    missing = rig.sample(message(encode("POSE,1,2,MISS,0,0,0,0,0,0,0,0")))
    assert missing.status == TrackingStatus.MISSING and missing.tip_lps_mm is None
    oov = rig.sample(message(encode("POSE,1,2,RANGE,0,0,0,1,0,0,0,0")))
    assert oov.status == TrackingStatus.OUT_OF_VOLUME
    with pytest.raises(ValueError, match="shaft_axis_tool"):
        PoseRig(frames.identity())


def test_golden_imuq_line_rotates_the_shaft_and_needs_calibration_2():
    rig = ImuRig(frames.translation([1.0, 2.0, 3.0]), shaft_axis_sensor=(1, 0, 0))
    rig.sample(message(encode("GIMB,1,2,OK,0.00,0.00,0.00,50.00")))  # encoder depth only
    sample = rig.sample(message(IMUQ_LINE))
    angle = 2 * math.degrees(math.atan2(0.00873, 0.99996))  # ≈1° about y
    expected = np.array([math.cos(math.radians(angle)), 0, -math.sin(math.radians(angle))])
    assert sample.direction_lps == pytest.approx(expected, abs=1e-6)
    assert sample.tip_lps_mm == pytest.approx(np.array([1.0, 2.0, 3.0]) + 50.0 * expected)
    low = rig.sample(message(encode("IMUQ,6,1010,OK,1.00000,0.00000,0.00000,0.00000,1")))
    assert low.status == TrackingStatus.UNCALIBRATED


def test_imu_yaw_tare():
    rig = ImuRig(frames.identity(), yaw_tare_deg=90.0, depth_mm=10.0)
    q = (math.cos(math.radians(45)), 0.0, 0.0, math.sin(math.radians(45)))  # sensor yawed 90°
    line = encode(f"IMUQ,1,2,OK,{q[0]:.5f},0.00000,0.00000,{q[3]:.5f},3")
    sample = rig.sample(message(line))
    assert sample.direction_lps == pytest.approx([1.0, 0.0, 0.0], abs=1e-4)


def test_rig_for_kind():
    assert isinstance(rig_for_kind("GIMB"), GimbalRig)
    assert isinstance(rig_for_kind("POSE"), PoseRig)
    assert isinstance(rig_for_kind("IMUQ"), ImuRig)
    with pytest.raises(ValueError, match="kind"):
        rig_for_kind("XYZ")
