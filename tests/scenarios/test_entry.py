"""Where the instrument meets the skin: a click on the monitor, the planned corridor, the start pose
(scenarios.entry, headless)."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.render import carm, views
from fluorosim.render.carm import CArmJoints, MonitorOrientation
from fluorosim.scenarios import entry
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.scoring.steps import step_geometry


def distance_to_line(point, a, b) -> float:
    """Perpendicular distance (mm) of ``point`` from the line through a and b."""
    d = (b - a) / np.linalg.norm(b - a)
    offset = point - a
    return float(np.linalg.norm(offset - np.dot(offset, d) * d))


def shown_position(raw_col, raw_row, shape, orientation):
    """Where the monitor shows raw continuous position (col, row): found by marking the pixel."""
    marker = np.zeros(shape, np.uint8)
    marker[int(raw_row), int(raw_col)] = 255
    row, col = np.argwhere(orientation.apply(marker) == 255)[0]
    return float(col) + 0.5, float(row) + 0.5


@pytest.mark.parametrize(
    "orientation",
    [
        MonitorOrientation(),
        MonitorOrientation(flip_horizontal=True),
        MonitorOrientation(True, True, 1),
    ],
)
@pytest.mark.parametrize("orbital_deg", [0.0, 90.0])
def test_a_click_on_the_pixel_of_a_point_lands_on_the_ray_through_it(
    synthetic_patient, orientation, orbital_deg
):
    """The renderer puts the detector origin at the centre of pixel (0, 0): the clicked pixel's
    centre must be the pixel centre the renderer's ray goes through (no half-pixel slip)."""
    patient = synthetic_patient
    geometry = carm.carm_geometry(
        CArmJoints(orbital_deg=orbital_deg), "ii9", views.home_isocenter_lps(patient), size_px=64
    )
    centre = np.mean(patient.bounds_lps_mm(), axis=0)
    # a point inside the body whose projection is the centre of raw pixel (col 37, row 21)
    pixel_centre = (
        geometry.detector_origin_lps_mm
        + 37 * geometry.pixel_mm * geometry.detector_u_lps
        + 21 * geometry.pixel_mm * geometry.detector_v_lps
    )
    source = geometry.source_lps_mm
    t = np.dot(centre - source, pixel_centre - source) / np.sum((pixel_centre - source) ** 2)
    point = source + t * (pixel_centre - source)
    assert geometry.project(point) == pytest.approx([37.0, 21.0], abs=1e-9)
    col, row = shown_position(37.5, 21.5, (64, 64), orientation)
    skin = entry.picked_skin_entry(patient, geometry, (64, 64), orientation, col, row, None)
    assert skin is not None
    assert distance_to_line(skin, source, point) < 1e-6
    # the pixel stays the same pixel: a slip of half a pixel would be this far off at that depth
    slip_mm = 0.5 * geometry.pixel_mm * np.linalg.norm(skin - source) / geometry.sid_mm
    assert slip_mm > 0.1
    # and the point found is the skin: inside the body, the step before it outside
    direction = (point - source) / np.linalg.norm(point - source)
    assert patient.labels_at(skin[None, :])[0] != 0
    assert patient.labels_at((skin - direction)[None, :])[0] == 0


def test_detector_point_is_the_inverse_of_the_projection(synthetic_patient):
    geometry = carm.carm_geometry(
        CArmJoints(angular_deg=20.0), "ii9", views.home_isocenter_lps(synthetic_patient), size_px=48
    )
    point = np.mean(synthetic_patient.bounds_lps_mm(), axis=0) + [7.0, -3.0, 11.0]
    col, row = geometry.project(point)
    on_detector = entry.detector_point_lps(geometry, col + 0.5, row + 0.5)
    assert distance_to_line(on_detector, geometry.source_lps_mm, point) < 1e-6


def test_planned_corridor_is_the_scoring_corridor_continued_to_the_skin(synthetic_patient):
    scenario = load_shipped("sij-lateral")
    corridor = entry.planned_corridor(scenario, synthetic_patient)
    step = next(s for s in scenario.steps if s.kind == "trajectory")
    plan = step_geometry(synthetic_patient, scenario, step)
    assert corridor.direction_lps == pytest.approx(plan.direction_lps)
    # the skin point is on the corridor's line, outside the planned entry, just outside the body
    assert distance_to_line(corridor.skin_lps_mm, plan.entry_lps_mm, plan.target_lps_mm) < 1e-6
    assert np.dot(corridor.skin_lps_mm - plan.entry_lps_mm, plan.direction_lps) <= 0
    inward = corridor.skin_lps_mm + corridor.direction_lps
    assert synthetic_patient.labels_at(corridor.skin_lps_mm[None, :])[0] == 0
    assert synthetic_patient.labels_at(inward[None, :])[0] != 0


def test_mouse_start_pose_aims_along_the_corridor_and_exam_mode_misaims_it(synthetic_patient):
    scenario = load_shipped("sij-lateral")
    corridor = entry.planned_corridor(scenario, synthetic_patient)
    learning = entry.mouse_start_pose(scenario, synthetic_patient, "learning", 5)
    yaw, pitch = entry.aim_angles_deg(corridor.direction_lps)
    assert (learning.yaw_deg, learning.pitch_deg) == pytest.approx((yaw, pitch))
    assert learning.entry_lps_mm == pytest.approx(corridor.skin_lps_mm)
    exam = entry.mouse_start_pose(scenario, synthetic_patient, "exam", 5)
    again = entry.mouse_start_pose(scenario, synthetic_patient, "exam", 5)
    assert (exam.yaw_deg, exam.pitch_deg) == (again.yaw_deg, again.pitch_deg)  # seeded
    off = (abs(exam.yaw_deg - yaw), abs(exam.pitch_deg - pitch))
    assert max(off) > 0 and max(off) <= entry.EXAM_AIM_JITTER_DEG


def test_aim_angles_of_the_mouse_model():
    assert entry.aim_angles_deg(np.array([0.0, -1.0, 0.0])) == pytest.approx((0.0, 0.0))
    assert entry.aim_angles_deg(np.array([1.0, 0.0, 0.0])) == pytest.approx((90.0, 0.0))
    assert entry.aim_angles_deg(np.array([0.0, -1.0, 1.0])) == pytest.approx((0.0, 45.0))


def test_gimbal_mount_sits_at_the_skin_entry_facing_the_approach(synthetic_patient):
    scenario = load_shipped("sij-lateral")
    corridor = entry.planned_corridor(scenario, synthetic_patient)
    patient_from_rig = entry.gimbal_mount(scenario, synthetic_patient)
    assert patient_from_rig[:3, 3] == pytest.approx(corridor.skin_lps_mm)
    forward = patient_from_rig[:3, 0]
    horizontal = corridor.direction_lps - corridor.direction_lps[1] * np.array([0.0, 1.0, 0.0])
    assert forward == pytest.approx(horizontal / np.linalg.norm(horizontal))
