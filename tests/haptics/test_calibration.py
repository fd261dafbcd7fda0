"""Pivot calibration, paired-point registration, gimbal/IMU helpers and calibration files.

Synthetic poses with KNOWN answers (and seeded noise) check the solvers; refusals check that bad
input is named, not silently fitted; the PLUS XML file in shared data checks the file format.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluorosim.haptics.calibration import (
    Calibration,
    CalibrationError,
    apply_gimbal_calibration,
    calibration_from_record,
    depth_scale_from_stroke,
    gimbal_calibration,
    imu_yaw_tare,
    load_calibration,
    load_calibrations,
    pivot_calibration,
    read_plus_calibrations,
    register_paired_points,
    save_calibration,
    tip_and_direction,
    write_plus_calibrations,
)
from fluorosim.models.frames import quaternion_to_matrix, rotation_about_axis

FIXED_NOW = lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # noqa: E731
TIP_TOOL = np.array([3.0, -2.0, 160.0])
PIVOT_TRACKER = np.array([100.0, -50.0, -900.0])


def _random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    return rotation_about_axis(axis, rng.uniform(-max_deg, max_deg))


def _pivot_poses(rng, count=60, max_deg=35.0, noise_mm=0.0, axis=None):
    poses = []
    base = rotation_about_axis([1.0, 0.0, 0.0], 180.0)
    for _ in range(count):
        if axis is None:
            rot = _random_rotation(rng, max_deg) @ base
        else:
            rot = rotation_about_axis(axis, rng.uniform(-max_deg, max_deg)) @ base
        pose = np.eye(4)
        pose[:3, :3] = rot
        pose[:3, 3] = PIVOT_TRACKER - rot @ TIP_TOOL + rng.normal(0.0, noise_mm, 3)
        poses.append(pose)
    return np.array(poses)


def test_pivot_recovers_known_tip_exactly_without_noise():
    cal = pivot_calibration(_pivot_poses(np.random.default_rng(1)), now=FIXED_NOW)
    np.testing.assert_allclose(cal.matrix[:3, 3], TIP_TOOL, atol=1e-9)
    np.testing.assert_allclose(cal.details["pivot_point_tracker_mm"], PIVOT_TRACKER, atol=1e-9)
    assert cal.error_mm < 1e-9
    assert cal.name == "StylusTipToStylus" and cal.kind == "pivot"
    # the tip frame's z axis points along the shaft (tool origin → tip)
    np.testing.assert_allclose(cal.matrix[:3, 2], TIP_TOOL / np.linalg.norm(TIP_TOOL), atol=1e-12)


def test_pivot_with_optical_noise_is_accurate_and_accepted():
    # 0.25 mm isotropic marker noise per axis, as a Polaris-class optical tracker (~0.25 mm RMS)
    cal = pivot_calibration(_pivot_poses(np.random.default_rng(2), 200, noise_mm=0.25))
    assert np.linalg.norm(cal.matrix[:3, 3] - TIP_TOOL) < 1.0
    # residual RMS ≈ noise·sqrt(3)·sqrt((3N−6)/3N) ≈ 0.43 mm
    assert 0.3 < cal.error_mm < 0.6
    assert cal.accepted("optical") and cal.accepted("em")


def test_pivot_with_large_noise_is_not_accepted_for_optical():
    cal = pivot_calibration(_pivot_poses(np.random.default_rng(3), 200, noise_mm=1.0))
    assert cal.error_mm > 1.0
    assert not cal.accepted("optical")


def test_pivot_refuses_rotation_about_a_single_axis():
    poses = _pivot_poses(np.random.default_rng(4), axis=[0.0, 0.0, 1.0], max_deg=40.0)
    with pytest.raises(CalibrationError, match="rank"):
        pivot_calibration(poses)


def test_pivot_refuses_too_little_orientation_spread():
    poses = _pivot_poses(np.random.default_rng(5), max_deg=3.0)
    with pytest.raises(CalibrationError, match="spread"):
        pivot_calibration(poses)


def test_pivot_refuses_too_few_poses_and_bad_shape():
    with pytest.raises(CalibrationError, match="at least 3"):
        pivot_calibration(np.tile(np.eye(4), (2, 1, 1)))
    with pytest.raises(CalibrationError, match="shape"):
        pivot_calibration(np.zeros((5, 3, 3)))


def _known_registration():
    rot = rotation_about_axis([0.3, -0.5, 0.8], 37.0)
    matrix = np.eye(4)
    matrix[:3, :3] = rot
    matrix[:3, 3] = [12.0, -340.0, 55.0]
    return matrix


LANDMARKS_TRACKER = np.array(
    [[0.0, 0.0, 0.0], [80.0, 0.0, 0.0], [0.0, 60.0, 0.0], [0.0, 0.0, 50.0], [40.0, 40.0, 20.0]]
)


def test_registration_recovers_known_transform():
    truth = _known_registration()
    phantom = LANDMARKS_TRACKER @ truth[:3, :3].T + truth[:3, 3]
    check_tracker = np.array([30.0, 20.0, 70.0])
    check_phantom = truth[:3, :3] @ check_tracker + truth[:3, 3]
    cal = register_paired_points(
        LANDMARKS_TRACKER, phantom, check_point_from=check_tracker, check_point_to=check_phantom
    )
    np.testing.assert_allclose(cal.matrix, truth, atol=1e-9)
    assert cal.error_mm < 1e-9 and cal.details["tre_mm"] < 1e-9
    assert cal.name == "TrackerToPhantom"


def test_registration_with_noise_has_expected_fre_and_tre():
    rng = np.random.default_rng(7)
    truth = _known_registration()
    sigma = 0.5
    fres, tres = [], []
    check_tracker = np.array([30.0, 20.0, 20.0])
    for _ in range(200):
        phantom = (
            LANDMARKS_TRACKER @ truth[:3, :3].T
            + truth[:3, 3]
            + rng.normal(0, sigma, LANDMARKS_TRACKER.shape)
        )
        cal = register_paired_points(
            LANDMARKS_TRACKER,
            phantom,
            check_point_from=check_tracker,
            check_point_to=truth[:3, :3] @ check_tracker + truth[:3, 3],
        )
        fres.append(cal.error_mm)
        tres.append(cal.details["tre_mm"])
    # Fitzpatrick 1998: <FRE²> = (1 − 2/N)·FLE² with FLE² = 3σ²
    expected_fre = np.sqrt((1 - 2 / 5) * 3 * sigma**2)
    assert abs(np.sqrt(np.mean(np.square(fres))) - expected_fre) < 0.1 * expected_fre
    # a target inside the fiducial configuration has TRE below FLE
    assert np.sqrt(np.mean(np.square(tres))) < np.sqrt(3) * sigma


def test_registration_handles_reflection_case():
    # coplanar landmarks: the plain SVD solution can be a reflection; the fix must return a rotation
    flat = np.array([[0, 0, 0], [50, 0, 0], [0, 50, 0], [50, 50, 0], [25, 10, 0]], dtype=float)
    truth = _known_registration()
    cal = register_paired_points(flat, flat @ truth[:3, :3].T + truth[:3, 3])
    assert np.linalg.det(cal.matrix[:3, :3]) > 0.999
    np.testing.assert_allclose(cal.matrix, truth, atol=1e-9)


def test_registration_refusals_name_the_problem():
    line = np.array([[0, 0, 0], [10, 0, 0], [20, 0, 0], [30, 0.1, 0]], dtype=float)
    with pytest.raises(CalibrationError, match="collinear"):
        register_paired_points(line, line + 5.0)
    duplicate = LANDMARKS_TRACKER.copy()
    duplicate[4] = duplicate[0] + 0.2
    with pytest.raises(CalibrationError, match="duplicates"):
        register_paired_points(duplicate, duplicate)
    with pytest.raises(CalibrationError, match="at least 4"):
        register_paired_points(LANDMARKS_TRACKER[:3], LANDMARKS_TRACKER[:3])
    with pytest.raises(CalibrationError, match="same size"):
        register_paired_points(LANDMARKS_TRACKER, LANDMARKS_TRACKER[:4])


def test_gimbal_zero_and_depth_scale():
    scale = depth_scale_from_stroke(1000.0, 3000.0, 50.0)
    assert scale == pytest.approx(0.025)
    cal = gimbal_calibration(2.0, -1.0, 0.5, 1000.0, scale)
    assert apply_gimbal_calibration(cal, 12.0, -11.0, 0.5, 2200.0) == pytest.approx(
        (10.0, -10.0, 0.0, 30.0)
    )
    with pytest.raises(CalibrationError, match="equal"):
        depth_scale_from_stroke(5.0, 5.0, 50.0)


def test_imu_yaw_tare_requires_calibrated_sensor_and_zeroes_heading():
    q = np.array([np.cos(np.radians(20) / 2), 0.0, 0.0, np.sin(np.radians(20) / 2)])
    with pytest.raises(CalibrationError, match="level 1"):
        imu_yaw_tare(q, calib_level=1)
    cal = imu_yaw_tare(q, calib_level=2)
    tared = cal.matrix[:3, :3] @ quaternion_to_matrix(q)
    np.testing.assert_allclose(tared, np.eye(3), atol=1e-12)


def test_tip_and_direction_applies_tip_offset_and_registration():
    tool = np.eye(4)
    tool[:3, :3] = rotation_about_axis([0, 1, 0], 90.0)
    tool[:3, 3] = [10.0, 0.0, 0.0]
    tip_cal = np.eye(4)
    tip_cal[:3, 3] = [0.0, 0.0, 100.0]
    patient = np.eye(4)
    patient[:3, 3] = [0.0, 5.0, 0.0]
    tip, direction = tip_and_direction(tool, tip_cal, patient)
    np.testing.assert_allclose(tip, [110.0, 5.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(direction, [1.0, 0.0, 0.0], atol=1e-12)


def test_json_round_trip_and_reload_folder(tmp_path):
    cal = pivot_calibration(_pivot_poses(np.random.default_rng(8)), now=FIXED_NOW)
    path = save_calibration(cal, tmp_path)
    assert path.name == "StylusTipToStylus.json"
    record = json.loads(path.read_text())
    assert (
        record["schema_version"] == 1 and record["from"] == "StylusTip" and record["to"] == "Stylus"
    )
    assert record["date"] == "2026-01-02T03:04:05+00:00"
    back = load_calibration(path)
    np.testing.assert_allclose(back.matrix, cal.matrix)
    assert back.error_mm == cal.error_mm and back.kind == "pivot"
    (tmp_path / "Broken.json").write_text("{not json")
    found, problems = load_calibrations(tmp_path)
    assert list(found) == ["StylusTipToStylus"]
    assert len(problems) == 1 and "Broken.json" in problems[0] and "JSON" in problems[0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"matrix": [[1, 0], [0, 1]]}, "matrix"),
        ({"matrix": np.diag([1, 1, -1, 1]).tolist()}, "matrix"),
        ({"error_mm": -1}, "error_mm"),
        ({"schema_version": 99}, "schema_version"),
        ({"from": "not a frame"}, "from"),
        ({"kind": "magic"}, "kind"),
    ],
)
def test_bad_json_file_names_file_and_field(tmp_path, change, field):
    record = Calibration("A", "B", np.eye(4), 0.1, "2026-01-01").to_record()
    record.pop("name")
    record.update(change)
    path = tmp_path / "AToB.json"
    path.write_text(json.dumps(record))
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    assert str(path) in str(info.value) and f"'{field}'" in str(info.value)


def test_missing_field_is_named(tmp_path):
    record = Calibration("A", "B", np.eye(4), 0.1, "2026-01-01").to_record()
    del record["date"]
    path = tmp_path / "AToB.json"
    path.write_text(json.dumps(record))
    with pytest.raises(CalibrationError, match="missing field 'date'"):
        load_calibration(path)


def test_read_plus_stylus_calibration(shared_data):
    (cal,) = read_plus_calibrations(shared_data / "plus-tracking" / "StylusCalibration.results.xml")
    assert (cal.from_frame, cal.to_frame) == ("StylusTip", "Stylus")
    np.testing.assert_allclose(cal.matrix[:3, 3], [210.019, -0.170252, 0.0463022])
    assert cal.error_mm == pytest.approx(0.48412) and cal.date == "052615_215714"
    assert cal.accepted("optical")  # PLUS's own pivot result passes our optical limit


def test_plus_xml_round_trip_and_bad_file(tmp_path):
    cal = pivot_calibration(_pivot_poses(np.random.default_rng(9)), now=FIXED_NOW)
    path = write_plus_calibrations([cal], tmp_path / "out.xml")
    (back,) = read_plus_calibrations(path)
    np.testing.assert_allclose(back.matrix, cal.matrix, atol=1e-9)
    assert back.name == cal.name and back.date == cal.date
    bad = tmp_path / "bad.xml"
    bad.write_text(
        '<PlusConfiguration><Transform From="A" To="B" Matrix="1 0 0"/></PlusConfiguration>'
    )
    with pytest.raises(CalibrationError, match=r"bad.xml.*AToB.*'Matrix' has 3 numbers"):
        read_plus_calibrations(bad)
    garbage = tmp_path / "garbage.xml"
    garbage.write_bytes(b"\x00\xff<<")
    with pytest.raises(CalibrationError, match="garbage.xml"):
        read_plus_calibrations(garbage)


def test_default_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FLUOROSIM_CALIBRATION_DIR", str(tmp_path / "cal"))
    cal = register_paired_points(
        LANDMARKS_TRACKER, LANDMARKS_TRACKER + [1.0, 2.0, 3.0], now=FIXED_NOW
    )
    path = save_calibration(cal)
    assert path == tmp_path / "cal" / "TrackerToPhantom.json"
    found, problems = load_calibrations()
    assert list(found) == ["TrackerToPhantom"] and problems == []
    np.testing.assert_allclose(found["TrackerToPhantom"].matrix[:3, 3], [1.0, 2.0, 3.0], atol=1e-12)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
record_fields = st.fixed_dictionaries(
    {},
    optional={
        "schema_version": st.sampled_from([1, 2, "1"]),
        "from": st.sampled_from(["Tracker", "", "a b", 3]),
        "to": st.sampled_from(["Phantom", None]),
        "matrix": st.one_of(json_values, st.just(np.eye(4).tolist())),
        "error_mm": json_values,
        "date": json_values,
        "kind": st.sampled_from(["pivot", "magic", 1]),
        "details": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, record_fields))
def test_any_json_record_is_a_calibration_or_a_clear_error(record):
    try:
        cal = calibration_from_record(record, "fuzz.json")
    except CalibrationError as error:
        assert str(error).startswith("fuzz.json")
        return
    assert cal.matrix.shape == (4, 4) and cal.error_mm >= 0
