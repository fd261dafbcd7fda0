"""The mouse instrument model: fine steps, cortical resistance, tap/drill, aiming about the entry."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.haptics.mouse import MAX_STEP_MM, MouseInstrument, MouseSource, tissue_classifier
from fluorosim.haptics.source import TrackingStatus
from fluorosim.models.frames import angle_between_deg
from fluorosim.models.patient import Patient

ENTRY = np.array([20.0, 80.0, 5.0])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def layered_tissue(point):
    """Soft tissue for the first 30 mm below the entry, 2 mm cortex, then cancellous bone."""
    depth = ENTRY[1] - point[1]
    if depth < 30.0:
        return "soft_tissue"
    if depth < 32.0:
        return "cortical_bone"
    return "cancellous_bone"


def make(**kwargs):
    model = MouseInstrument(tissue_at=layered_tissue, clock=Clock(), **kwargs)
    model.set_entry(ENTRY)
    return model


def test_straight_down_is_anterior_and_steps_are_at_most_half_a_millimetre():
    model = make()
    np.testing.assert_allclose(model.direction_lps, [0.0, -1.0, 0.0])
    depths = [model.depth_mm]
    for _ in range(40):
        model.advance()
        depths.append(model.depth_mm)
    steps = np.diff(depths)
    assert steps.max() <= MAX_STEP_MM + 1e-12 and steps.min() > 0
    np.testing.assert_allclose(model.tip_lps_mm, ENTRY + [0.0, -20.0, 0.0])
    with pytest.raises(ValueError, match="step_mm"):
        MouseInstrument(step_mm=1.0)


def test_cortical_bone_slows_advance_and_tap_passes_it():
    model = make()
    model.advance(60)  # 30 mm of soft tissue at 0.5 mm a step
    assert model.depth_mm == pytest.approx(30.0)
    moved = model.advance(5)
    assert moved == pytest.approx(5 * 0.1) and model.last_tissue == "cortical_bone"
    assert model.resisted_steps == 5
    # keep pushing: the step is probed at its midpoint, so the cortex resists until the probe
    # (depth + 0.25 mm) leaves it at 31.75 mm: 18 resisted steps in all instead of 4 free ones
    model.advance(13)
    assert model.depth_mm == pytest.approx(31.8) and model.resisted_steps == 18
    model.advance(2)
    assert model.depth_mm == pytest.approx(32.8) and model.last_tissue == "cancellous_bone"

    tapped = make()
    tapped.advance(60)
    tapped.key("t")  # tap on
    assert tapped.driver == "tap"
    assert tapped.advance(4) == pytest.approx(2.0)
    assert tapped.depth_mm == pytest.approx(32.0) and tapped.resisted_steps == 0


def test_aim_keeps_entry_fixed_and_moves_tip_on_a_sphere():
    model = make()
    model.advance(40)
    depth = model.depth_mm
    model.aim(20.0, -10.0)
    tip = model.tip_lps_mm
    assert np.linalg.norm(tip - ENTRY) == pytest.approx(depth)
    np.testing.assert_allclose(model.entry_lps_mm, ENTRY)
    assert angle_between_deg(model.direction_lps, [0, -1, 0]) == pytest.approx(
        np.degrees(np.arccos(np.cos(np.radians(20)) * np.cos(np.radians(10))))
    )
    assert tip[0] > ENTRY[0] and tip[2] < ENTRY[2]  # yaw + → left, pitch − → caudal
    model.drag(50, 0)  # 50 px × 0.2°/px
    assert model.yaw_deg == pytest.approx(30.0)
    model.set_aim(200.0, 0.0)
    assert model.yaw_deg == 85.0


def test_withdraw_wheel_roll_and_buttons():
    model = make()
    assert model.wheel(10) == pytest.approx(5.0)
    assert model.wheel(-4) == pytest.approx(-2.0)
    assert (
        model.withdraw(100) == pytest.approx(3.0) and model.depth_mm == 0.0
    )  # never past the skin
    model.key("e")
    assert model.roll_deg == 5.0
    model.rotate_shaft(-190.0)
    assert model.roll_deg == pytest.approx(175.0)
    model.key("space", pressed=True)
    assert model.sample().buttons == frozenset({"pedal"})
    model.key("space", pressed=False)
    assert model.sample().buttons == frozenset()
    assert model.key("F12") is None
    model.key("shift+up")
    assert model.depth_mm == pytest.approx(0.1)


def test_source_reports_changes_with_injected_time():
    clock = Clock()
    model = MouseInstrument(clock=clock)
    source = MouseSource(model)
    with source:
        first = source.poll()
        assert first.status is TrackingStatus.MISSING and first.tip_lps_mm is None
        assert source.poll() is None  # nothing changed
        model.set_entry(ENTRY)
        clock.now = 1.25
        sample = source.poll()
        assert sample.status is TrackingStatus.OK and sample.t_s == 1.25 and sample.has_pose
        np.testing.assert_allclose(sample.tip_lps_mm, ENTRY)
    assert source.poll() is None and source.status is TrackingStatus.DISCONNECTED


def test_tissue_classifier_on_a_small_patient():
    labels = np.zeros((10, 10, 10), dtype=np.uint8)
    hu = np.full((10, 10, 10), -1000, dtype=np.int16)
    labels[:, :, 0:3] = 1  # muscle
    hu[:, :, 0:3] = 40
    labels[:, :, 3:5] = 2  # L5_body cortex
    hu[:, :, 3:5] = 1200
    labels[:, :, 5:7] = 2  # L5_body cancellous
    hu[:, :, 5:7] = 200
    labels[:, :, 7:9] = 3
    hu[:, :, 7:9] = 80
    patient = Patient(
        hu, labels, np.eye(4), {"background": 0, "muscle": 1, "L5_body": 2, "disc_L4_L5": 3}, {}
    )
    tissue_at = tissue_classifier(patient)
    assert [tissue_at(np.array([5.0, 5.0, k])) for k in (1, 4, 6, 8, 9)] == [
        "soft_tissue",
        "cortical_bone",
        "cancellous_bone",
        "disc",
        "air",
    ]
    assert tissue_at(np.array([50.0, 5.0, 1.0])) == "air"  # outside the volume


def test_point_along_inverts_the_aim_angles():
    model = make()
    model.set_aim(25.0, -40.0)
    direction = model.direction_lps
    other = make()
    other.point_along(direction * 3.0)
    assert (other.yaw_deg, other.pitch_deg) == pytest.approx((25.0, -40.0))
    with pytest.raises(ValueError, match="non-zero"):
        other.point_along([0.0, 0.0, 0.0])
