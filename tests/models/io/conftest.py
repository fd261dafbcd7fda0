"""A small synthetic patient (ellipsoids with labels and landmarks) on an anisotropic, offset grid."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.patient import Patient

SPACING_MM = (1.5, 1.25, 2.0)
ORIGIN_LPS_MM = (-30.0, -25.0, 10.0)
SHAPE = (40, 36, 30)


def ellipsoid(center_lps, radii_mm, lps_from_voxel, shape):
    """Boolean mask of voxels whose centres fall inside an axis-aligned LPS ellipsoid."""
    i, j, k = np.indices(shape)
    ijk1 = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(float)
    lps = ijk1 @ lps_from_voxel[:3].T
    return (((lps - np.asarray(center_lps)) / np.asarray(radii_mm)) ** 2).sum(axis=-1) <= 1.0


def make_patient() -> Patient:
    lps_from_voxel = np.diag([*SPACING_MM, 1.0])
    lps_from_voxel[:3, 3] = ORIGIN_LPS_MM
    labels = np.zeros(SHAPE, np.uint8)
    table = {
        "background": 0,
        "fat": 1,
        "L4_body": 2,
        "L4_pedicle_left": 3,
        "L4_pedicle_right": 4,
        "L4_posterior_elements": 5,
        "aorta": 6,
    }
    labels[ellipsoid([0, 0, 40], [27, 20, 26], lps_from_voxel, SHAPE)] = 1
    labels[ellipsoid([0, -5, 40], [12, 9, 10], lps_from_voxel, SHAPE)] = 2
    labels[ellipsoid([8, 8, 40], [3, 5, 4], lps_from_voxel, SHAPE)] = 3
    labels[ellipsoid([-8, 8, 40], [3, 5, 4], lps_from_voxel, SHAPE)] = 4
    labels[ellipsoid([0, 16, 40], [3, 4, 6], lps_from_voxel, SHAPE)] = 5
    labels[ellipsoid([5, -18, 40], [3, 3, 16], lps_from_voxel, SHAPE)] = 6
    hu_by_label = np.array([-1000, -100, 400, 700, 700, 650, 40], np.int16)
    hu = hu_by_label[labels]
    landmarks = {
        "L4_body_center": [0.0, -5.0, 40.0],
        "L4_spinous_tip": [0.0, 20.0, 40.0],
        "sij_surface_left": [[10.0, 1.0, 30.0], [11.0, 2.0, 32.0], [12.5, 3.0, 34.0]],
    }
    return Patient(hu, labels, lps_from_voxel, table, landmarks, {"seed": 7, "sex": "F"})


@pytest.fixture
def patient() -> Patient:
    """The synthetic patient (rebuilt per test so tests may modify it)."""
    return make_patient()
