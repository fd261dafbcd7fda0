"""The Patient container: lookups by LPS point, label and landmark names, bounds."""

import numpy as np
import pytest

from fluorosim.models.patient import Patient


def small_patient() -> Patient:
    hu = np.full((10, 8, 6), -1000, np.int16)
    labels = np.zeros((10, 8, 6), np.uint8)
    hu[2:5, 2:5, 1:3] = 700
    labels[2:5, 2:5, 1:3] = 7
    lps_from_voxel = np.diag([2.0, 2.0, 3.0, 1.0])
    lps_from_voxel[:3, 3] = [-10, -8, 5]
    return Patient(hu, labels, lps_from_voxel, {"background": 0, "L4_body": 7}, {"a": [1, 2, 3]})


def test_lookup_by_lps_point():
    patient = small_patient()
    # voxel (3, 3, 2) has its centre at (-10 + 6, -8 + 6, 5 + 6)
    assert patient.labels_at([[-4.0, -2.0, 11.0]])[0] == 7
    assert patient.hu_at([-4.0, -2.0, 11.0]) == 700
    assert patient.labels_at([[500.0, 0, 0]])[0] == 0
    assert patient.hu_at([500.0, 0, 0]) == -1000


def test_spacing_bounds_and_names():
    patient = small_patient()
    assert np.allclose(patient.spacing_mm, [2, 2, 3])
    low, high = patient.bounds_lps_mm()
    assert np.allclose(low, [-11, -9, 3.5]) and np.allclose(high, [9, 7, 21.5])
    assert patient.label_name(7) == "L4_body"
    with pytest.raises(KeyError, match="unknown label 'L5_body'.*L4_body"):
        patient.label_value("L5_body")
    with pytest.raises(KeyError, match="unknown landmark"):
        patient.landmark("b")


def test_shape_mismatch_refused():
    with pytest.raises(ValueError, match="labels shape"):
        Patient(np.zeros((2, 2, 2), np.int16), np.zeros((2, 2, 3), np.uint8), np.eye(4), {}, {})
