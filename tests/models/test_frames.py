"""Frame conventions: composition, inverse, validation messages, quaternions, LPS/RAS."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluorosim.models import frames

angles = st.floats(-360, 360, allow_nan=False)
coords = st.floats(-1000, 1000, allow_nan=False)


def random_rigid(ax: float, ay: float, az: float, t: tuple[float, float, float]) -> np.ndarray:
    rot = (
        frames.rotation_about_axis([1, 0, 0], ax)
        @ frames.rotation_about_axis([0, 1, 0], ay)
        @ frames.rotation_about_axis([0, 0, 1], az)
    )
    return frames.rigid(rot, t)


@given(angles, angles, angles, st.tuples(coords, coords, coords))
def test_inverse_composes_to_identity(ax, ay, az, t):
    b_from_a = random_rigid(ax, ay, az, t)
    a_from_b = frames.invert_rigid(b_from_a)
    assert np.allclose(frames.compose(a_from_b, b_from_a), np.eye(4), atol=1e-9)
    assert np.allclose(a_from_b, np.linalg.inv(b_from_a), atol=1e-9)


def test_compose_reads_right_to_left():
    b_from_a = frames.translation([10, 0, 0])
    c_from_b = frames.rotation_transform([0, 0, 1], 90)
    c_from_a = frames.compose(c_from_b, b_from_a)
    # the origin of a goes to (10,0,0) in b, then rotates 90° about z to (0,10,0) in c
    assert np.allclose(frames.apply_to_points(c_from_a, [0, 0, 0]), [0, 10, 0])


def test_rotation_is_right_handed():
    # +90° about +z takes +x to +y
    assert np.allclose(frames.rotation_about_axis([0, 0, 1], 90) @ [1, 0, 0], [0, 1, 0])


def test_rotation_about_center_keeps_center_fixed():
    center = np.array([5.0, -3.0, 2.0])
    matrix = frames.rotation_transform([1, 1, 0], 37, center)
    assert np.allclose(frames.apply_to_points(matrix, center), center)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.eye(3), "expected a 4x4"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.diag([1.0, 1.0, -1.0, 1.0]), "reflection"),
        (np.diag([2.0, 1.0, 1.0, 1.0]), "not orthonormal"),
        (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1.0]]), "bottom row"),
    ],
)
def test_validation_names_argument_and_problem(matrix, message):
    with pytest.raises(frames.FrameError, match=f"tracker_from_tool.*{message}"):
        frames.validate_rigid(matrix, "tracker_from_tool")


@given(angles, st.floats(-1, 1), st.floats(-1, 1), st.floats(0.1, 1))
def test_quaternion_round_trip(angle, x, y, z):
    rot = frames.rotation_about_axis([x, y, z], angle)
    q = frames.matrix_to_quaternion(rot)
    assert q[0] >= 0
    assert np.isclose(np.linalg.norm(q), 1.0)
    assert np.allclose(frames.quaternion_to_matrix(q), rot, atol=1e-9)


def test_quaternion_refuses_zero():
    with pytest.raises(frames.FrameError, match="not a valid quaternion"):
        frames.quaternion_to_matrix([0, 0, 0, 0])


def test_lps_ras_flip():
    assert np.allclose(frames.lps_to_ras([1, 2, 3]), [-1, -2, 3])
    assert np.allclose(frames.ras_to_lps(frames.lps_to_ras([4, -5, 6])), [4, -5, 6])


def test_lps_axes_are_right_handed():
    assert np.allclose(np.cross(frames.LEFT, frames.POSTERIOR), frames.SUPERIOR)


def test_record_round_trip_and_errors():
    matrix = random_rigid(10, 20, 30, (1, 2, 3))
    record = frames.transform_to_record(matrix, "NeedleTip", "Needle")
    assert record["name"] == "NeedleTipToNeedle"
    assert np.allclose(frames.transform_from_record(record), matrix)
    with pytest.raises(frames.FrameError, match="missing field 'matrix'"):
        frames.transform_from_record({"from": "A", "to": "B"}, "calibration.json")


def test_angle_between():
    assert frames.angle_between_deg([1, 0, 0], [0, 1, 0]) == pytest.approx(90)
    assert frames.angle_between_deg([1, 0, 0], [-1, 1e-9, 0]) == pytest.approx(180)
    assert frames.deg_to_rad(180) == pytest.approx(np.pi)
    assert frames.rad_to_deg(np.pi / 2) == pytest.approx(90)
