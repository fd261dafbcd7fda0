"""C-arm kinematics: where the source and detector go for joint values, limits, presets, monitor."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.render.carm import (
    CARM_MODELS,
    CArmJoints,
    CArmLimitError,
    MonitorOrientation,
    beam_direction,
    carm_geometry,
    check_limits,
    isocenter_position_lps,
    joints_for_beam,
)

ISO = np.array([3.0, -20.0, 40.0])


def test_zero_pose_is_an_ap_with_the_source_under_the_table():
    geometry = carm_geometry(CArmJoints(), "ii9", ISO, size_px=101)
    model = CARM_MODELS["ii9"]
    assert np.allclose(beam_direction(CArmJoints()), [0, 1, 0])
    assert np.allclose(geometry.source_lps_mm, ISO - [0, model.source_isocenter_mm, 0])
    assert geometry.sid_mm == pytest.approx(model.sid_mm)
    assert geometry.magnification_at(ISO) == pytest.approx(model.sid_mm / model.source_isocenter_mm)
    centre = geometry.project(ISO)
    assert np.allclose(centre, [50, 50])
    # patient's left on the screen's right, head up
    left = geometry.project(ISO + [20, 0, 0])
    head = geometry.project(ISO + [0, 0, 20])
    assert left[0] > centre[0] + 5 and abs(left[1] - centre[1]) < 1e-9
    assert head[1] < centre[1] - 5


def test_orbital_90_is_a_lateral_with_anterior_on_the_left():
    joints = CArmJoints(orbital_deg=90.0)
    geometry = carm_geometry(joints, "ii9", ISO, size_px=101)
    assert np.allclose(beam_direction(joints), [-1, 0, 0], atol=1e-12)  # left → right
    assert geometry.source_lps_mm[0] > ISO[0]  # source on the patient's left
    anterior = geometry.project(ISO + [0, -20, 0])
    assert anterior[0] < 50 - 5
    assert geometry.project(ISO + [0, 0, 20])[1] < 50 - 5  # head still up


def test_angular_tilts_the_beam_cranially_and_wigwag_turns_about_the_vertical():
    cranial = beam_direction(CArmJoints(angular_deg=30.0))
    assert np.allclose(cranial, [0, np.cos(np.radians(30)), np.sin(np.radians(30))])
    caudal = beam_direction(CArmJoints(angular_deg=-25.0))
    assert caudal[2] < 0
    lateral_wig = beam_direction(CArmJoints(orbital_deg=90.0, wigwag_deg=10.0))
    assert lateral_wig[1] == pytest.approx(0.0, abs=1e-12)  # stays horizontal
    assert abs(lateral_wig[2]) == pytest.approx(np.sin(np.radians(10.0)))


def test_translations_move_the_isocentre_the_way_the_readouts_say():
    home = np.zeros(3)
    assert np.allclose(isocenter_position_lps(CArmJoints(lift_mm=30), home), [0, 30, 0])
    assert np.allclose(isocenter_position_lps(CArmJoints(horizontal_mm=15), home), [15, 0, 0])
    # table (with the patient) toward the head: the beam lands more caudally on the patient
    assert np.allclose(
        isocenter_position_lps(CArmJoints(table_longitudinal_mm=50), home), [0, 0, -50]
    )
    assert np.allclose(isocenter_position_lps(CArmJoints(table_height_mm=10), home), [0, -10, 0])
    geometry = carm_geometry(CArmJoints(lift_mm=30, orbital_deg=20), "fpd30", home)
    assert np.allclose(geometry.project([0, 30, 0]), [255.5, 255.5])


def test_joint_limits_are_refused_with_a_message_naming_the_joint():
    with pytest.raises(CArmLimitError, match=r"orbital_deg=150 outside its travel \[-95, 110\]"):
        carm_geometry(CArmJoints(orbital_deg=150.0), "ii9", ISO)
    with pytest.raises(CArmLimitError, match="angular_deg"):
        check_limits(CArmJoints(angular_deg=-70.0))
    with pytest.raises(CArmLimitError, match="lift_mm=nan is not a number"):
        check_limits(CArmJoints(lift_mm=float("nan")))
    with pytest.raises(CArmLimitError, match="unknown C-arm joint"):
        CArmJoints.from_dict({"orbit": 3.0})
    assert check_limits(CArmJoints(orbital_deg=110.0)).orbital_deg == 110.0


def test_presets_and_magnification_modes_set_the_field():
    assert set(CARM_MODELS) == {"ii9", "ii12", "fpd30"}
    ii9 = CARM_MODELS["ii9"]
    assert (
        ii9.field_mm() == 230.0 and ii9.field_mm("6in") == 150.0 and ii9.field_mm("4.5in") == 110.0
    )
    assert CARM_MODELS["ii12"].field_mm() == 300.0
    assert CARM_MODELS["fpd30"].detector == "flat_panel"
    wide = carm_geometry(CArmJoints(), "ii9", ISO, size_px=200)
    magnified = carm_geometry(CArmJoints(), "ii9", ISO, size_px=200, mode="4.5in")
    assert wide.pixel_mm * 200 == pytest.approx(230.0)
    assert magnified.pixel_mm * 200 == pytest.approx(110.0)
    with pytest.raises(KeyError, match="no magnification mode '7in'"):
        carm_geometry(CArmJoints(), "ii9", ISO, mode="7in")
    with pytest.raises(KeyError, match="presets"):
        carm_geometry(CArmJoints(), "ii7", ISO)


@pytest.mark.parametrize(
    "direction",
    [[0, 1, 0], [0.2, 0.9, -0.3], [-0.5, 0.8, 0.3], [-0.97, 0.2, 0.1], [0.95, 0.05, -0.2]],
)
def test_joints_for_a_beam_reproduce_that_beam_through_the_target(direction):
    target = np.array([10.0, -5.0, 60.0])
    joints = joints_for_beam(np.array(direction, float), target, ISO)
    d = np.array(direction, float) / np.linalg.norm(direction)
    assert np.allclose(beam_direction(joints), d, atol=1e-9)
    geometry = carm_geometry(joints, "ii9", ISO, size_px=64, enforce_limits=False)
    assert np.allclose(geometry.project(target), [31.5, 31.5], atol=1e-9)


def test_monitor_orientation_is_a_visible_setting():
    image = np.arange(6).reshape(2, 3)
    assert np.array_equal(MonitorOrientation().apply(image), image)
    assert "standard" in MonitorOrientation().describe()
    flipped = MonitorOrientation(flip_horizontal=True)
    assert np.array_equal(flipped.apply(image), image[:, ::-1])
    assert "flipped left-right" in flipped.describe()
    turned = MonitorOrientation(rotate_quarter_turns=1)
    assert turned.apply(image).shape == (3, 2)
