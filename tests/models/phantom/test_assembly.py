"""The assembled patient: deterministic, complete labels/landmarks, landmarks inside their structures."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.labels import DISC_LEVELS, LABEL_TABLE, LUMBAR_LEVELS, ROOT_LEVELS, SIDES
from fluorosim.models.landmarks import landmark_names
from fluorosim.models.phantom import PatientParameters, build_patient, load_or_build_patient


@pytest.fixture(scope="module")
def patient():
    return load_or_build_patient(PatientParameters())


def test_volume_is_lps_grid_with_the_fixed_label_table(patient):
    assert patient.hu.dtype == np.int16 and patient.labels.dtype == np.uint8
    assert np.allclose(patient.spacing_mm, 1.0)
    assert patient.label_table == LABEL_TABLE
    # i → left, j → posterior, k → superior: the matrix is diagonal with positive spacing
    assert np.allclose(patient.lps_from_voxel[:3, :3], np.eye(3))


def test_every_lumbar_and_neural_label_is_painted(patient):
    present = set(np.unique(patient.labels).tolist())
    names = [f"{lv}_body" for lv in LUMBAR_LEVELS]
    names += [f"{lv}_pedicle_{s}" for lv in LUMBAR_LEVELS for s in SIDES]
    names += [f"{lv}_posterior_elements" for lv in LUMBAR_LEVELS]
    names += [f"disc_{a}_{b}" for a, b in DISC_LEVELS]
    names += ["thecal_sac"] + [f"root_{lv}_{s}" for lv in ROOT_LEVELS for s in SIDES]
    missing = [n for n in names if LABEL_TABLE[n] not in present]
    assert missing == []


def test_all_lumbar_and_neural_landmarks_present_and_inside(patient):
    names = landmark_names("lumbar") + landmark_names("neural")
    missing = [n for n in names if n not in patient.landmarks]
    assert missing == []
    points = np.array([patient.landmarks[n] for n in names])
    assert patient.inside(points).all()


@pytest.mark.parametrize("level", LUMBAR_LEVELS)
def test_landmarks_sit_in_their_structures(patient, level):
    assert patient.label_name(patient.labels_at(patient.landmark(f"{level}_body_center"))) == (
        f"{level}_body"
    )
    for side in SIDES:
        point = patient.landmark(f"{level}_pedicle_center_{side}")
        assert patient.label_name(patient.labels_at(point)) == f"{level}_pedicle_{side}"


@pytest.mark.parametrize(("upper", "lower"), DISC_LEVELS)
def test_disc_center_is_disc(patient, upper, lower):
    point = patient.landmark(f"disc_{upper}_{lower}_center")
    assert patient.label_name(patient.labels_at(point)) == f"disc_{upper}_{lower}"


def test_spine_is_ordered_cranio_caudally_and_left_is_plus_x(patient):
    z = [patient.landmark(f"{lv}_body_center")[2] for lv in LUMBAR_LEVELS]
    assert all(a > b for a, b in zip(z, z[1:], strict=False))
    for level in LUMBAR_LEVELS:
        left = patient.landmark(f"{level}_pedicle_center_left")
        right = patient.landmark(f"{level}_pedicle_center_right")
        assert left[0] > 0 > right[0]
        # spinous tip is posterior (+y) of the body
        assert (
            patient.landmark(f"{level}_spinous_tip")[1]
            > patient.landmark(f"{level}_body_center")[1] + 40
        )


def test_same_parameters_same_patient_different_seed_differs():
    small = dict(voxel_mm=2.0)
    a = build_patient(PatientParameters(seed=3, **small))
    b = build_patient(PatientParameters(seed=3, **small))
    c = build_patient(PatientParameters(seed=4, **small))
    assert np.array_equal(a.hu, b.hu) and np.array_equal(a.labels, b.labels)
    assert a.landmarks.keys() == b.landmarks.keys()
    assert all(np.array_equal(a.landmarks[k], b.landmarks[k]) for k in a.landmarks)
    assert not np.array_equal(a.labels, c.labels) if a.shape == c.shape else True
    assert not np.allclose(a.landmarks["L1_body_center"], c.landmarks["L1_body_center"])


def test_every_part_is_present_and_every_agreed_label_painted(patient):
    assert patient.parameters["missing_parts"] == []
    present = set(np.unique(patient.labels).tolist())
    missing = [name for name, value in LABEL_TABLE.items() if value not in present]
    # every label of the table is painted by some part (coccyx included)
    assert missing == []
    for name in landmark_names():
        assert name in patient.landmarks, name


def test_generated_grid_covers_l1_to_coccyx_and_both_iliac_crests(patient):
    low, high = patient.bounds_lps_mm()
    assert high[2] > patient.landmark("L1_superior_endplate_center")[2] + 10.0
    for side in ("left", "right"):
        crest = patient.landmark(f"iliac_crest_top_{side}")
        assert patient.inside(crest[None, :]).all()
    # skin all round: the outermost voxels are air
    assert patient.labels[0].max() == 0 and patient.labels[-1].max() == 0
    assert patient.labels[:, 0].max() == 0 and patient.labels[:, -1].max() == 0
