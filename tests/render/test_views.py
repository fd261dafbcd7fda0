"""Named views for a patient: ideal joints follow its landmarks; pose_error is zero there and grows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fluorosim.render.carm import beam_direction, carm_geometry
from fluorosim.render.views import (
    ViewSpecError,
    home_isocenter_lps,
    ideal_joints,
    pose_error,
    view_spec,
)
from tests.render.synthetic_patient import (
    default_patient,
    make_synthetic_patient,
    phantom_available,
)

ALL_VIEWS = [
    ("ap", {}),
    ("ap", {"level": "L3"}),
    ("lateral", {"level": "L4_L5"}),
    ("true_lateral_sacrum", {}),
    ("inlet", {}),
    ("outlet", {}),
    ("oblique", {"side": "left", "level": "L4"}),
    ("oblique", {"side": "right", "level": "L4_L5"}),
    ("ferguson", {"level": "L5_S1"}),
    ("contralateral_oblique", {"side": "left"}),
    ("contralateral_oblique", {"side": "right"}),
]


@pytest.fixture(scope="module")
def patient():
    return make_synthetic_patient()


@pytest.mark.parametrize(("view", "kwargs"), ALL_VIEWS)
def test_pose_error_is_zero_at_the_ideal_pose_and_grows_with_offsets(patient, view, kwargs):
    joints = ideal_joints(patient, view, **kwargs)
    error = pose_error(patient, joints, view, **kwargs)
    assert error.angle_deg == pytest.approx(0.0, abs=1e-6)
    assert error.position_mm == pytest.approx(0.0, abs=1e-6)
    # near a lateral the angulation only spins the image (as on a real C-arm): use the wig-wag
    if abs(joints.orbital_deg) < 45.0:
        tilt = joints.moved(angular_deg=joints.angular_deg + 5.0)
    else:
        tilt = joints.moved(wigwag_deg=joints.wigwag_deg + 5.0)
    tilted = pose_error(patient, tilt, view, **kwargs)
    assert 2.0 < tilted.angle_deg <= 5.0 + 1e-9
    turned = pose_error(patient, joints.moved(orbital_deg=joints.orbital_deg + 8.0), view, **kwargs)
    assert turned.angle_deg == pytest.approx(8.0, abs=1e-6)
    shifted = pose_error(
        patient,
        joints.moved(table_longitudinal_mm=joints.table_longitudinal_mm + 12.0),
        view,
        **kwargs,
    )
    beam = beam_direction(joints)
    # a 12 mm move along S, seen off the central ray: 12 · |sin(angle between S and the beam)|
    assert shifted.position_mm == pytest.approx(12.0 * np.sqrt(1 - beam[2] ** 2), rel=1e-9)
    assert shifted.angle_deg == pytest.approx(0.0, abs=1e-9)


def test_the_target_sits_at_the_image_centre(patient):
    for view, kwargs in ALL_VIEWS:
        joints = ideal_joints(patient, view, **kwargs)
        geometry = carm_geometry(joints, "ii9", home_isocenter_lps(patient), size_px=65)
        target = view_spec(patient, view, **kwargs).target_lps_mm
        assert np.allclose(geometry.project(target), [32, 32], atol=1e-6), view


def test_views_follow_the_landmarks_of_the_synthetic_patient(patient):
    # the synthetic patient's anterior S1 cortex runs 25° caudal, its S1 foramina 40° cranial
    assert ideal_joints(patient, "inlet").angular_deg == pytest.approx(-25.0, abs=1e-6)
    assert ideal_joints(patient, "outlet").angular_deg == pytest.approx(40.0, abs=1e-6)
    lateral = ideal_joints(patient, "lateral")
    assert lateral.orbital_deg == pytest.approx(90.0) and lateral.wigwag_deg == pytest.approx(0.0)
    assert ideal_joints(patient, "ap").orbital_deg == pytest.approx(0.0)
    # Scotty dog: the pedicle (the dog's eye) projects onto the body centre; sides mirror
    left = ideal_joints(patient, "oblique", side="left", level="L4")
    right = ideal_joints(patient, "oblique", side="right", level="L4")
    assert left.orbital_deg == pytest.approx(-right.orbital_deg)
    assert left.orbital_deg < 0  # toward the patient's left: the beam gains +L
    beam = beam_direction(left)
    eye = patient.landmark("L4_pedicle_center_left") - patient.landmark("L4_body_center")
    eye[2] = 0
    assert np.linalg.norm(np.cross(beam, eye)) == pytest.approx(0.0, abs=1e-9)
    # Ferguson: the beam lies in the disc's plane
    ferguson = beam_direction(ideal_joints(patient, "ferguson", level="L4_L5"))
    disc_axis = patient.landmark("L4_inferior_endplate_center") - patient.landmark(
        "L5_superior_endplate_center"
    )
    assert abs(np.dot(ferguson, disc_axis)) < 1e-9
    # SI joint: contralateral oblique; the beam is tangent to the joint surface
    co_left = ideal_joints(patient, "contralateral_oblique", side="left")
    assert co_left.orbital_deg > 5.0  # detector toward the right (contralateral) side
    surface = patient.landmark("sij_surface_left")
    tangent = surface[1] - surface[0]
    normal = np.cross(tangent, surface[6] - surface[0])
    assert abs(np.dot(beam_direction(co_left), normal / np.linalg.norm(normal))) < 1e-6


def with_landmarks(patient, **extra):
    """A copy of the synthetic patient with extra landmarks (same volume)."""
    landmarks = dict(patient.landmarks)
    landmarks.update({name: np.asarray(p, dtype=np.float64) for name, p in extra.items()})
    return dataclasses.replace(patient, landmarks=landmarks)


def test_outlet_puts_the_symphysis_top_over_s2(patient):
    """Outlet end point (Rotter 2014; Eastman & Routt 2015): symphysis over the S2 body."""
    s2 = patient.landmark("S2_body_center")
    # 90 mm anterior and 75 mm caudal of S2: the beam must run 39.8° cranial (atan 75/90)
    symphysis = s2 + np.array([0.0, -90.0, -75.0])
    moved = with_landmarks(patient, pubic_symphysis_superior=symphysis)
    joints = ideal_joints(moved, "outlet")
    assert joints.angular_deg == pytest.approx(np.degrees(np.arctan2(75.0, 90.0)), abs=1e-6)
    assert joints.orbital_deg == pytest.approx(0.0, abs=1e-9)
    # the central ray is parallel to symphysis → S2 (they superimpose along it)
    line = (s2 - symphysis) / np.linalg.norm(s2 - symphysis)
    assert np.allclose(beam_direction(joints), line, atol=1e-9)


def test_scotty_dog_puts_the_superior_articular_process_over_the_target(patient):
    """With facet landmarks the dog's ear (the lower vertebra's SAP) projects on the target."""
    disc = patient.landmark("disc_L4_L5_center")
    facet = disc + np.array([25.0, 30.0, 4.0])  # 25 mm lateral, 30 mm posterior: 39.8°
    moved = with_landmarks(patient, facet_L4_L5_left=facet, facet_L4_L5_right=facet * [-1, 1, 1])
    left = ideal_joints(moved, "oblique", side="left", level="L4_L5")
    right = ideal_joints(moved, "oblique", side="right", level="L4_L5")
    assert left.orbital_deg == pytest.approx(-np.degrees(np.arctan2(25.0, 30.0)), abs=1e-6)
    assert right.orbital_deg == pytest.approx(-left.orbital_deg, abs=1e-6)
    geometry = carm_geometry(left, "ii9", home_isocenter_lps(moved), size_px=65)
    ear, target = geometry.project(facet), geometry.project(disc)
    assert abs(ear[0] - target[0]) < 1e-6  # same image column: the ear over the body's middle


def test_views_refuse_missing_or_unknown_choices(patient):
    with pytest.raises(ViewSpecError, match="needs --side"):
        ideal_joints(patient, "oblique", level="L4")
    with pytest.raises(ViewSpecError, match="unknown view 'swimmer'"):
        ideal_joints(patient, "swimmer")
    with pytest.raises(ViewSpecError, match="unknown level 'L7'"):
        ideal_joints(patient, "ap", level="L7")
    with pytest.raises(ViewSpecError, match="unknown level 'L4'"):
        ideal_joints(patient, "ferguson", level="L4")


@pytest.mark.slow
def test_ideal_views_of_the_generated_patient_are_plausible():
    if not phantom_available():
        pytest.skip("fluorosim.models.phantom.load_or_build_patient not available yet")
    patient = default_patient()
    inlet = ideal_joints(patient, "inlet")
    outlet = ideal_joints(patient, "outlet")
    lateral = ideal_joints(patient, "lateral")
    assert -38.0 <= inlet.angular_deg <= -12.0, f"inlet tilt {inlet.angular_deg:.1f}°"
    assert 29.0 <= outlet.angular_deg <= 52.0, f"outlet tilt {outlet.angular_deg:.1f}°"
    assert abs(lateral.orbital_deg - 90.0) < 5.0
    # Scotty dog for a transforaminal approach: procedures.md 25–35° (±5° for patient variation)
    for level in ("L3_L4", "L4_L5"):
        for side, sign in (("left", -1.0), ("right", 1.0)):
            oblique = ideal_joints(patient, "oblique", side=side, level=level)
            assert 20.0 <= sign * oblique.orbital_deg <= 40.0, (level, side, oblique.orbital_deg)
