"""Empty-space skipping in the fast DRR: per-slice boxes of non-zero voxels change no sum."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.render.carm import CArmJoints, carm_geometry
from fluorosim.render.drr_exact import line_integrals_exact
from fluorosim.render.drr_fast import FastDRR, slice_boxes
from tests.render.test_drr import MU, coordinates, cube_volume


def test_slice_boxes_bound_the_non_zero_voxels_of_each_slice():
    copy = np.zeros((6, 5, 4), np.uint16)
    copy[2, 1, 0] = 7
    copy[4, 3, 0] = 1
    copy[1:3, 2:5, 2] = 3
    boxes = slice_boxes(copy)
    assert boxes.tolist()[0] == [2, 4, 1, 3]
    assert boxes.tolist()[2] == [1, 2, 2, 4]
    for empty in (1, 3):  # an empty slice's box is empty: no ray meets it
        assert boxes[empty, 0] > boxes[empty, 1] and boxes[empty, 2] > boxes[empty, 3]


def unbounded(drr: FastDRR) -> FastDRR:
    """The same projector with boxes covering every slice whole (no skipping)."""
    drr._boxes = tuple(
        np.tile(np.array([[-(1 << 20), 1 << 20, -(1 << 20), 1 << 20]], np.int32), (c.shape[2], 1))
        for c in drr._copies
    )
    return drr


@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
def test_skipping_empty_space_gives_the_same_line_integrals(interpolation):
    # an off-centre ellipsoid and a small dense cube in a mostly empty volume
    x, y, z = coordinates((70, 60, 80))
    mu = np.where((x - 8) ** 2 / 400 + y**2 / 225 + (z + 5) ** 2 / 900 < 1, MU, 0.0)
    mu[50:54, 10:13, 60:66] = 5 * MU
    volume = cube_volume(mu.astype(np.float32))
    for joints in (
        CArmJoints(),
        CArmJoints(orbital_deg=90.0),
        CArmJoints(orbital_deg=35.0, angular_deg=-25.0),
        CArmJoints(angular_deg=50.0),
    ):
        geometry = carm_geometry(joints, "ii9", np.zeros(3), size_px=96, mode="4.5in")
        skipping = FastDRR(volume, interpolation=interpolation).line_integrals(geometry)
        full = unbounded(FastDRR(volume, interpolation=interpolation)).line_integrals(geometry)
        np.testing.assert_array_equal(skipping, full)
        assert skipping.max() > 0
        # and it still agrees with the exact caster in total (nothing inside the body skipped)
        exact = line_integrals_exact(volume, geometry)
        assert skipping.sum() == pytest.approx(exact.sum(), rel=0.01)


def test_float_copies_sample_like_the_quantised_ones():
    # quantise=False keeps float copies (float sampler) — the same positions and weights as the
    # integer sampler of the uint16 codes, so the two differ by the quantisation alone
    rng = np.random.default_rng(3)
    volume = cube_volume(rng.uniform(0.0, 2 * MU, (40, 50, 60)).astype(np.float32))
    for joints in (CArmJoints(), CArmJoints(orbital_deg=40.0, angular_deg=-30.0)):
        geometry = carm_geometry(joints, "ii9", np.zeros(3), size_px=64, mode="4.5in")
        quantised = FastDRR(volume).line_integrals(geometry)
        floats = FastDRR(volume, quantise=False).line_integrals(geometry)
        assert quantised.max() > 0
        np.testing.assert_allclose(floats, quantised, rtol=1e-4, atol=1e-4 * quantised.max())
        exact = line_integrals_exact(volume, geometry)  # and both keep the exact mean
        inside = exact > 0.5 * exact.max()
        assert abs(floats[inside].mean() / exact[inside].mean() - 1) < 0.005


def test_rays_grazing_a_volume_filled_to_its_faces_match_the_exact_integral():
    # non-zero voxels on every face: the samples nearest the padding (steep in-slice slopes,
    # rays clipping edges and corners) read only the array and agree with Siddon's integral
    volume = cube_volume(np.full((30, 36, 42), MU, np.float32))
    for joints in (
        CArmJoints(orbital_deg=44.0, angular_deg=-40.0),
        CArmJoints(orbital_deg=-30.0, angular_deg=44.0),
        CArmJoints(orbital_deg=90.0, angular_deg=10.0),
    ):
        geometry = carm_geometry(joints, "ii9", np.zeros(3), size_px=96, mode="4.5in")
        exact = line_integrals_exact(volume, geometry, model="trilinear")
        for drr in (FastDRR(volume), FastDRR(volume, slab_voxels=1)):
            fast = drr.line_integrals(geometry)
            inside = exact > 0.5 * exact.max()
            assert inside.sum() > 100
            assert np.mean(np.abs(fast - exact)[inside] / exact[inside]) < 0.01
            assert fast.sum() == pytest.approx(exact.sum(), rel=0.01)
