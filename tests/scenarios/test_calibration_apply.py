"""Applying the wizard's calibrations to a device, and a status that tells the truth
(scenarios.calibration_apply), headless."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.haptics.calibration import Calibration, load_calibration, register_paired_points
from fluorosim.haptics.rig_models import GimbalRig, PoseRig
from fluorosim.haptics.serial_source import SerialStp1Source
from fluorosim.scenarios.calibration_apply import DeviceCalibrations

LANDMARKS = np.array([[0, 0, 0], [100, 0, 0], [0, 80, 0], [0, 0, 60], [40, 30, 20]], float)


def registration() -> Calibration:
    """Tracker → phantom: turned 90° about z and shifted (a real paired-point fit)."""
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    phantom = LANDMARKS @ turn.T + [10.0, -20.0, 5.0]
    return register_paired_points(LANDMARKS, phantom)


def pivot() -> Calibration:
    tool_from_tip = np.eye(4)
    tool_from_tip[:3, 3] = [0.0, 0.0, 150.0]
    return Calibration("StylusTip", "Stylus", tool_from_tip, 0.4, "2026-12-05", "pivot")


def test_registration_without_a_pivot_is_saved_but_not_said_to_be_applied(tmp_path):
    source = SerialStp1Source("loop://")  # never started: no port is opened
    calibrations = DeviceCalibrations()
    outcome = calibrations.apply(registration(), source, directory=tmp_path)
    assert not outcome.applied
    assert source.rig is None
    assert "applied (" not in outcome.message
    assert "not applied" in outcome.message and "pivot" in outcome.message
    assert load_calibration(outcome.saved_to).matrix == pytest.approx(registration().matrix)
    # the pivot completes it: the rig now uses both transforms, and the status says so
    outcome = calibrations.apply(pivot(), source, directory=tmp_path)
    assert outcome.applied and "applied (error 0.40 mm)" in outcome.message
    assert isinstance(source.rig, PoseRig)
    assert source.rig.patient_from_tracker == pytest.approx(registration().matrix)
    assert source.rig.tool_from_tip == pytest.approx(pivot().matrix)


def test_a_tracker_source_takes_each_transform_as_it_comes(tmp_path):
    class Tracker:  # the attributes NDI and OpenIGTLink sources apply to every sample
        name = "NDI tracker"
        tool_from_tip = None
        patient_from_tracker = None

    tracker = Tracker()
    outcome = DeviceCalibrations().apply(registration(), tracker, directory=tmp_path)
    assert outcome.applied and tracker.patient_from_tracker == pytest.approx(registration().matrix)
    assert tracker.tool_from_tip is None


def test_sources_that_take_no_calibration_say_so(tmp_path):
    class Mouse:
        name = "mouse and keyboard"

    outcome = DeviceCalibrations().apply(pivot(), Mouse(), directory=tmp_path)
    assert not outcome.applied and "mouse and keyboard takes no calibration" in outcome.message
    gimbal = Calibration("Gimbal", "Rig", np.eye(4), 0.0, "2026-12-05", "gimbal", {})
    outcome = DeviceCalibrations().apply(gimbal, Mouse(), directory=tmp_path)
    assert not outcome.applied and "STP/1 gimbal only" in outcome.message


def test_a_gimbal_calibration_rebuilds_the_gimbal_at_its_mount(tmp_path):
    source = SerialStp1Source("loop://")
    mount = np.eye(4)
    mount[:3, 3] = [12.0, 80.0, -40.0]
    gimbal = Calibration(
        "Gimbal",
        "Rig",
        np.eye(4),
        0.0,
        "2026-12-05",
        "gimbal",
        {"zero_yaw_deg": 3.0, "zero_pitch_deg": -2.0, "zero_depth": 1.5},
    )
    outcome = DeviceCalibrations().apply(gimbal, source, mount, directory=tmp_path)
    assert outcome.applied and isinstance(source.rig, GimbalRig)
    assert (source.rig.yaw_zero_deg, source.rig.pitch_zero_deg, source.rig.depth_zero_mm) == (
        3.0,
        -2.0,
        1.5,
    )
    assert source.rig.patient_from_rig == pytest.approx(mount)
