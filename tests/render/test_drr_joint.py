"""Joint projection of μ and bone: equal to the two separate FastDRR projections, exact skipping."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.render.attenuation import (
    AttenuationVolume,
    align_to_grid,
    build_attenuation_volume,
    build_bone_volume,
    grid_offset_voxels,
)
from fluorosim.render.carm import CArmJoints, carm_geometry, get_model
from fluorosim.render.drr_fast import FastDRR
from fluorosim.render.drr_joint import JointDRR, brick_occupancy
from fluorosim.render.views import home_isocenter_lps, ideal_joints
from tests.render.synthetic_patient import default_patient
from tests.render.test_drr import MU, coordinates, cube_volume


@pytest.fixture(scope="module")
def patient_projectors():
    """The default patient's μ projector, its bone volume and their joint projector."""
    patient = default_patient()
    mu = FastDRR(build_attenuation_volume(patient))
    bone = build_bone_volume(patient, align=3)
    return patient, mu, bone, JointDRR(mu, bone)


def _poses(patient):
    ap = ideal_joints(patient, "ap")
    return {
        "ap": ap,  # every ray within 20° of an axis: the slab copies
        "lateral": ideal_joints(patient, "lateral"),
        "oblique": ideal_joints(patient, "oblique", side="left", level="L4"),  # full copies
        "tilted": ap.moved(orbital_deg=ap.orbital_deg + 28.0, angular_deg=-22.0),
    }


@pytest.mark.parametrize("view", ["ap", "lateral", "oblique", "tilted"])
def test_joint_projection_equals_the_two_separate_projections(patient_projectors, view):
    patient, mu, bone, joint = patient_projectors
    geometry = carm_geometry(
        _poses(patient)[view], get_model("ii9"), home_isocenter_lps(patient), size_px=144
    )
    joint_mu, joint_bone = joint.line_integrals(geometry)
    # μ: the same integer sums and float operations as FastDRR, bit for bit
    np.testing.assert_array_equal(joint_mu, mu.line_integrals(geometry))
    # bone: sampled at positions from the μ grid, its own FastDRR's from its grid: float rounding
    alone = FastDRR(bone).line_integrals(geometry)
    assert alone.max() > 10.0  # mm of cortical bone: the bone is in the field
    assert np.abs(joint_bone - alone).max() < 1e-5 * alone.max()
    np.testing.assert_array_equal(joint.companion.line_integrals(geometry), alone)


def test_bone_volume_crop_is_aligned_to_the_mu_grid(patient_projectors):
    patient, mu, bone, joint = patient_projectors
    assert (grid_offset_voxels(bone, mu.volume) % 3 == 0).all()
    assert joint.companion.volume is bone  # already aligned: no copy padded
    unaligned = build_bone_volume(patient)
    padded = align_to_grid(unaligned, mu.volume, 3)  # zeros put before it: the same voxels
    assert (grid_offset_voxels(padded, mu.volume) % 3 == 0).all()
    lead = np.subtract(padded.mu.shape, unaligned.mu.shape)
    np.testing.assert_array_equal(padded.mu[lead[0] :, lead[1] :, lead[2] :], unaligned.mu)
    assert padded.mu.sum(dtype=np.float64) == unaligned.mu.sum(dtype=np.float64)
    # the joint keeps one set of bone copies (plus a small brick grid), like a separate FastDRR
    assert joint.companion_nbytes < 1.02 * FastDRR(unaligned).nbytes  # + the aligning zeros


def _sparse_pair() -> tuple[AttenuationVolume, AttenuationVolume]:
    """A soft-tissue ellipsoid holding two small dense blobs, and the blobs alone (cropped)."""
    x, y, z = coordinates((60, 52, 70))
    body = ((x / 28) ** 2 + (y / 22) ** 2 + (z / 32) ** 2 < 1).astype(np.float32) * MU
    blobs = np.zeros_like(body)
    blobs[20:26, 30:34, 10:18] = 0.7
    blobs[40:43, 12:20, 50:53] = 1.0
    primary = cube_volume(body + blobs * 3 * MU)
    crop = (slice(19, 44), slice(11, 35), slice(9, 54))
    companion = AttenuationVolume(
        np.ascontiguousarray(blobs[crop]),
        primary.lps_from_voxel @ _translation([s.start for s in crop]),
        0.0,
    )
    return primary, companion


def _translation(offset_voxels) -> np.ndarray:
    shift = np.eye(4)
    shift[:3, 3] = offset_voxels
    return shift


def test_skipping_empty_bricks_changes_no_sum():
    primary, companion = _sparse_pair()
    joint = JointDRR(FastDRR(primary), companion)
    assert joint._bricks.mean() < 0.5  # most bricks are empty
    every = JointDRR(FastDRR(primary), companion)
    every._bricks[:] = 1  # no brick skipped
    for joints in (
        CArmJoints(),
        CArmJoints(orbital_deg=90.0),
        CArmJoints(orbital_deg=35.0, angular_deg=-25.0),
        CArmJoints(angular_deg=50.0),
        CArmJoints(orbital_deg=20.0),  # slab and full copies across the image: mixed tiles
    ):
        geometry = carm_geometry(joints, "ii9", np.zeros(3), size_px=96, mode="4.5in")
        skipped = joint.line_integrals(geometry)
        full = every.line_integrals(geometry)
        assert skipped[1].max() > 1.0
        np.testing.assert_array_equal(skipped[0], full[0])
        np.testing.assert_array_equal(skipped[1], full[1])
        alone = FastDRR(joint.companion.volume).line_integrals(geometry)
        assert np.abs(skipped[1] - alone).max() < 1e-5 * alone.max()


def test_brick_occupancy_marks_bricks_holding_non_zero_voxels():
    copy = np.zeros((20, 9, 17), np.uint16)
    copy[9, 0, 16] = 3
    occupied = brick_occupancy(copy)
    assert occupied.shape == (3, 3, 2)  # slice blocks of 8, in-slice tiles of 8
    assert occupied.sum() == 1 and occupied[2, 1, 0] == 1


def test_joint_refuses_a_companion_off_the_grid_or_outside_the_primary():
    primary, companion = _sparse_pair()
    drr = FastDRR(primary)
    shifted = AttenuationVolume(
        companion.mu, companion.lps_from_voxel @ _translation([0.5, 0.0, 0.0]), 0.0
    )
    with pytest.raises(ValueError, match="whole voxels"):
        JointDRR(drr, shifted)
    outside = AttenuationVolume(
        np.ones((4, 4, 4), np.float32), primary.lps_from_voxel @ _translation([1, 1, 1]), 0.0
    )
    with pytest.raises(ValueError, match="where the primary volume is zero"):
        JointDRR(drr, outside)
    with pytest.raises(ValueError, match="quantised"):
        JointDRR(FastDRR(primary, quantise=False), companion)
