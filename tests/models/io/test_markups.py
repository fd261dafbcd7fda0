"""Landmark files: Slicer .mrk.json and landmarks.json round trips, RAS input, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fluorosim.models.io import PatientFileError
from fluorosim.models.io.markups import (
    MARKUPS_SCHEMA,
    read_landmarks,
    read_landmarks_json,
    read_markups,
    write_landmarks_json,
    write_markups,
)


def assert_same_landmarks(a, b):
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_allclose(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)
        assert np.asarray(a[name]).shape == np.asarray(b[name]).shape, name


def test_markups_file_follows_slicer_schema_and_round_trips(tmp_path, patient):
    path = write_markups(tmp_path / "landmarks.mrk.json", patient.landmarks)
    payload = json.loads(path.read_text())
    assert payload["@schema"] == MARKUPS_SCHEMA
    (markup,) = payload["markups"]
    assert markup["type"] == "Fiducial"
    assert markup["coordinateSystem"] == "LPS" and markup["coordinateUnits"] == "mm"
    labels = [p["label"] for p in markup["controlPoints"]]
    # 2 single landmarks + a 3-point set
    assert len(labels) == 5 and "L4_body_center" in labels and "sij_surface_left:2" in labels
    centre = next(p for p in markup["controlPoints"] if p["label"] == "L4_body_center")
    assert centre["position"] == [0.0, -5.0, 40.0] and centre["positionStatus"] == "defined"
    assert_same_landmarks(read_markups(path), patient.landmarks)


def test_landmarks_json_states_frame_and_units_and_round_trips(tmp_path, patient):
    path = write_landmarks_json(tmp_path / "landmarks.json", patient.landmarks)
    payload = json.loads(path.read_text())
    assert payload["frame"] == "LPS" and payload["units"] == "mm"
    assert payload["landmarks"]["L4_spinous_tip"] == [0.0, 20.0, 40.0]
    assert_same_landmarks(read_landmarks_json(path), patient.landmarks)
    assert_same_landmarks(read_landmarks(path), patient.landmarks)


def test_ras_markups_from_slicer_are_converted_to_lps(tmp_path):
    payload = {
        "@schema": MARKUPS_SCHEMA,
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": "RAS",
                "controlPoints": [
                    {"label": "F-1", "position": [10.0, 20.0, 30.0], "positionStatus": "defined"},
                    {"label": "F-2", "position": [0.0, 0.0, 0.0], "positionStatus": "undefined"},
                ],
            },
            {"type": "Line", "coordinateSystem": "LPS", "controlPoints": []},
        ],
    }
    (tmp_path / "slicer.mrk.json").write_text(json.dumps(payload))
    landmarks = read_landmarks(tmp_path / "slicer.mrk.json")
    assert list(landmarks) == ["F-1"]
    np.testing.assert_allclose(landmarks["F-1"], [-10.0, -20.0, 30.0])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "line 1"),
        ('{"markups": [{"type": "Fiducial", "controlPoints": [{"label": "a"}]}]}', "position"),
        (
            '{"markups": [{"type": "Fiducial", "controlPoints": '
            '[{"label": "a", "position": [1, "x", 3]}]}]}',
            "position",
        ),
        ('{"markups": [{"type": "Fiducial", "coordinateSystem": "XYZ"}]}', "XYZ"),
        ('{"landmarks": {"a": [1, 2]}}', "landmark 'a'"),
        ('{"landmarks": {"a": [1, 2, 3]}, "units": "cm"}', "units"),
        ("[1, 2, 3]", "neither"),
    ],
)
def test_bad_landmark_files_name_the_file_and_problem(tmp_path, text, problem):
    path = tmp_path / "bad.mrk.json"
    path.write_text(text)
    with pytest.raises(PatientFileError, match="bad.mrk.json") as error:
        read_landmarks(path)
    assert problem in str(error.value)


def test_binary_garbage_is_a_clear_error(tmp_path):
    path = tmp_path / "garbage.json"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(PatientFileError, match="garbage.json"):
        read_landmarks(path)
