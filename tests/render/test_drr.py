"""DRR physics: slab → μ·L, sphere → chord, 180° mirror, marker at a landmark, fast vs exact."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.render.attenuation import (
    AttenuationVolume,
    build_attenuation_volume,
    effective_energy_kev,
    hu_to_mu,
    material_mu_per_mm,
)
from fluorosim.render.carm import CArmJoints, carm_geometry
from fluorosim.render.drr_exact import line_integrals_exact, segment_line_integrals
from fluorosim.render.drr_fast import FastDRR
from fluorosim.render.views import home_isocenter_lps, ideal_joints
from tests.render.synthetic_patient import default_patient, phantom_available

MU = 0.02  # mm⁻¹, about water at 50 keV


def cube_volume(mu: np.ndarray, spacing_mm: float = 1.0) -> AttenuationVolume:
    """A volume centred on the LPS origin."""
    lps_from_voxel = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    lps_from_voxel[:3, 3] = -spacing_mm * (np.array(mu.shape) - 1) / 2.0
    return AttenuationVolume(np.ascontiguousarray(mu, dtype=np.float32), lps_from_voxel, 50.0)


def coordinates(shape: tuple[int, int, int], spacing_mm: float = 1.0):
    axes = [spacing_mm * (np.arange(n) - (n - 1) / 2.0) for n in shape]
    return np.meshgrid(*axes, indexing="ij")


def test_uniform_slab_gives_mu_times_path_length():
    # slab 100 mm thick along P (y), wide in L and S: every ray crosses both faces
    shape = (200, 100, 200)
    volume = cube_volume(np.full(shape, MU, np.float32))
    geometry = carm_geometry(CArmJoints(angular_deg=10.0), "ii9", np.zeros(3), size_px=64)
    directions = geometry.ray_directions()
    expected = MU * 100.0 / np.abs(directions[..., 1])
    exact = line_integrals_exact(volume, geometry)
    fast = FastDRR(volume).line_integrals(geometry)
    assert np.allclose(exact, expected, rtol=1e-5)
    assert np.allclose(fast, expected, rtol=1e-3)


def test_single_segment_through_a_voxel_grid_is_exact():
    volume = cube_volume(np.full((10, 10, 10), MU, np.float32))
    starts = np.array([[-20.0, 0.3, 0.1], [-20.0, -20.0, -20.0]])
    ends = np.array([[20.0, 0.3, 0.1], [20.0, 20.0, 20.0]])
    values = segment_line_integrals(volume, starts, ends)
    assert values == pytest.approx([MU * 10.0, MU * 10.0 * np.sqrt(3.0)], rel=1e-6)


def test_sphere_gives_chord_length():
    radius = 40.0
    shape = (101, 101, 101)
    gx, gy, gz = coordinates(shape)
    volume = cube_volume((gx**2 + gy**2 + gz**2 <= radius**2).astype(np.float32) * MU)
    geometry = carm_geometry(
        CArmJoints(orbital_deg=30.0, angular_deg=-20.0), "ii9", np.zeros(3), size_px=96
    )
    source = geometry.source_lps_mm
    directions = geometry.ray_directions()
    b = directions @ source
    disc = b**2 - (source @ source - radius**2)
    chord = MU * 2.0 * np.sqrt(np.clip(disc, 0.0, None))
    inside = chord > MU * 20.0  # rays with a chord longer than 20 mm
    exact = line_integrals_exact(volume, geometry)
    fast = FastDRR(volume).line_integrals(geometry)
    for image in (exact, fast):
        relative = np.abs(image - chord)[inside] / chord[inside]
        assert relative.mean() < 0.01
        assert abs(image.sum() - chord.sum()) / chord.sum() < 0.01  # volume of the sphere kept
    miss_mm = np.sqrt(np.clip(source @ source - b**2, 0.0, None))  # ray-to-centre distance
    assert np.all(exact[miss_mm > radius + np.sqrt(3.0) / 2.0] == 0.0)  # beyond every voxel corner


def test_180_degree_orbital_turn_mirrors_the_image():
    # an object mirror-symmetric about the plane through the isocentre ⟂ to the beam (y = 0) but
    # not left-right: each 180° ray is the mirror image through that plane of a 0° ray
    shape = (81, 81, 81)
    gx, gy, gz = coordinates(shape)
    mu = ((gx - 10) ** 2 + gy**2 + (gz - 5) ** 2 <= 20**2) * MU
    mu = mu + ((np.abs(gx + 20) < 5) & (np.abs(gy) < 15) & (np.abs(gz) < 30)) * 3 * MU
    volume = cube_volume(mu.astype(np.float32))
    fast = FastDRR(volume, slab_voxels=1)
    slabbed = FastDRR(volume)  # slab pairs (0, 1), (2, 3)… are not mirror-symmetric: ≈ only
    images = {}
    for orbital in (0.0, 180.0):
        geometry = carm_geometry(
            CArmJoints(orbital_deg=orbital),
            "ii9",
            np.zeros(3),
            size_px=64,
            enforce_limits=False,
        )
        images[orbital] = (
            line_integrals_exact(volume, geometry),
            fast.line_integrals(geometry),
            slabbed.line_integrals(geometry),
        )
    assert images[0.0][0].max() > 1.0  # the object is in the field
    assert np.allclose(images[180.0][0], images[0.0][0][:, ::-1], atol=1e-5)
    assert np.allclose(images[180.0][1], images[0.0][1][:, ::-1], atol=1e-4)
    mirrored = images[0.0][2][:, ::-1]
    assert np.abs(images[180.0][2] - mirrored).max() < 0.02 * mirrored.max()
    assert not np.allclose(images[0.0][0], images[0.0][0][:, ::-1], atol=0.05)


def test_landmark_projects_where_a_dense_marker_appears():
    shape = (121, 121, 121)
    gx, gy, gz = coordinates(shape)
    background = ((gx**2 + gy**2) <= 55**2) * MU
    marker_lps = np.array([12.0, -7.0, 18.0])
    marker = (
        (
            (np.abs(gx - marker_lps[0]) <= 1.0)
            & (np.abs(gy - marker_lps[1]) <= 1.0)
            & (np.abs(gz - marker_lps[2]) <= 1.0)
        )
        * 50
        * MU
    )
    plain = cube_volume(background.astype(np.float32))
    marked = cube_volume((background + marker).astype(np.float32))
    for joints in (CArmJoints(), CArmJoints(orbital_deg=35.0, angular_deg=-20.0)):
        geometry = carm_geometry(joints, "ii9", np.array([5.0, 0.0, 5.0]), size_px=128)
        difference = line_integrals_exact(marked, geometry) - line_integrals_exact(plain, geometry)
        row, col = np.unravel_index(np.argmax(difference), difference.shape)
        # centroid of the marker's footprint
        weights = np.clip(difference, 0, None) * (difference > 0.5 * difference.max())
        rows, cols = np.indices(difference.shape)
        centroid = np.array([(weights * cols).sum(), (weights * rows).sum()]) / weights.sum()
        projected = geometry.project(marker_lps)
        assert np.linalg.norm(centroid - projected) < 0.6
        assert abs(col - projected[0]) <= 1.5 and abs(row - projected[1]) <= 1.5  # 3 mm ≈ 3 px


def test_hu_to_mu_follows_the_reference_table():
    energy = effective_energy_kev(75.0)
    assert energy == 50.0  # 75 kVp / 2.5 = 30 keV, clamped into the 50–80 keV table
    assert effective_energy_kev(175.0) == pytest.approx(70.0)
    mu = hu_to_mu(np.array([-1000, 0, 2000]), 60.0)
    assert mu[0] == 0.0
    assert mu[1] == pytest.approx(0.0206, rel=1e-6)  # water at 60 keV, 0.206 cm⁻¹
    water = material_mu_per_mm("water", 60.0)
    bone = material_mu_per_mm("cortical_bone", 60.0)
    assert water < mu[2] and mu[2] > bone  # 2000 HU is denser than the cortical anchor
    with pytest.raises(ValueError, match="kVp"):
        effective_energy_kev(-5.0)


def test_attenuation_volume_crops_air_and_keeps_line_integrals():
    patient = default_patient()
    full = build_attenuation_volume(patient)
    coarse = build_attenuation_volume(patient, downsample=2)
    assert full.mu.dtype == np.float32 and full.is_axis_aligned
    assert all(c <= n for c, n in zip(full.mu.shape, patient.shape, strict=True))
    # block averaging keeps the total attenuation (μ × voxel volume)
    total_full = full.mu.sum(dtype=np.float64) * np.prod(full.spacing_mm)
    total_coarse = coarse.mu.sum(dtype=np.float64) * np.prod(coarse.spacing_mm)
    assert total_coarse == pytest.approx(total_full, rel=1e-5)
    # the same body point maps to the same μ neighbourhood in both
    point = home_isocenter_lps(patient)
    ijk_full = np.linalg.inv(full.lps_from_voxel) @ np.append(point, 1.0)
    ijk_coarse = np.linalg.inv(coarse.lps_from_voxel) @ np.append(point, 1.0)
    assert np.allclose(ijk_coarse[:3], (ijk_full[:3] - 0.5) / 2.0, atol=1e-9)


def test_fast_projector_is_consistent_with_siddon_on_a_random_volume():
    # white noise is the harshest case: any half-voxel offset or wrong slab weight decorrelates it
    rng = np.random.default_rng(7)
    volume = cube_volume(rng.uniform(0.0, 2 * MU, (60, 50, 70)).astype(np.float32))
    nearest = FastDRR(volume, interpolation="nearest", slab_voxels=1)
    for joints in (CArmJoints(), CArmJoints(orbital_deg=90.0), CArmJoints(angular_deg=-40.0)):
        geometry = carm_geometry(joints, "ii9", np.zeros(3), size_px=160, mode="4.5in")
        exact = line_integrals_exact(volume, geometry)
        inside = exact > 0.5 * exact.max()
        approx = nearest.line_integrals(geometry)
        assert np.corrcoef(approx[inside], exact[inside])[0, 1] > 0.95  # 0.5 mm shift: ≈0.5
        assert np.mean(np.abs(approx - exact)[inside] / exact[inside]) < 0.05
        for fast in (FastDRR(volume), FastDRR(volume, slab_voxels=1)):
            linear = fast.line_integrals(geometry)  # interpolates: smoother, same mean
            assert abs(linear[inside].mean() / exact[inside].mean() - 1) < 0.005


def test_trilinear_reference_integrates_the_interpolant_exactly():
    rng = np.random.default_rng(1)
    values = rng.uniform(0.0, 1.0, (5, 6, 7)).astype(np.float32)
    volume = cube_volume(values)
    y0, z0 = volume.lps_from_voxel[1, 3] + 2.0, volume.lps_from_voxel[2, 3] + 3.0
    # along a line of voxel centres the interpolant is piecewise linear: the integral is the sum
    along = segment_line_integrals(
        volume, np.array([[-20.0, y0, z0]]), np.array([[20.0, y0, z0]]), "trilinear"
    )
    assert along[0] == pytest.approx(values[:, 2, 3].sum(), rel=1e-6)
    uniform = cube_volume(np.full((10, 10, 10), MU, np.float32))
    diagonal = segment_line_integrals(
        uniform, np.array([[-30.0, -0.2, 0.3]]), np.array([[30.0, 0.4, -0.1]]), "trilinear"
    )
    # ramps of one voxel at each face: the integral through the flat middle plus two half voxels
    assert diagonal[0] == pytest.approx(MU * 10.0 * np.linalg.norm([60, 0.6, -0.4]) / 60, rel=1e-6)
    with pytest.raises(ValueError, match="volume model"):
        segment_line_integrals(uniform, np.zeros((1, 3)), np.ones((1, 3)), "cubic")


FIVE_VIEWS = [
    ("ap", {}),
    ("lateral", {}),
    ("oblique", {"side": "left", "level": "L4"}),
    ("inlet", {}),
    ("outlet", {}),
]


@pytest.fixture(scope="module")
def generated_renderer():
    if not phantom_available():
        pytest.skip("fluorosim.models.phantom.load_or_build_patient not available yet")
    from fluorosim.render.renderer import FluoroRenderer

    return FluoroRenderer(default_patient(), model="ii9", display_px=256)


@pytest.mark.slow
@pytest.mark.parametrize(("view", "kwargs"), FIVE_VIEWS, ids=[v for v, _ in FIVE_VIEWS])
def test_fast_renderer_agrees_with_the_exact_reference(generated_renderer, view, kwargs):
    """Displayed line integrals (rendered at the volume's resolution, upsampled) against the exact
    integral of the same continuous volume at every display pixel."""
    renderer = generated_renderer
    joints = ideal_joints(renderer.patient, view, **kwargs)
    geometry, fast = renderer.anatomy_line_integrals(joints)
    exact = line_integrals_exact(renderer.volume, geometry, model="trilinear")
    significant = exact > 0.1 * exact.max()
    relative = np.abs(fast - exact)[significant] / exact[significant]
    similarity = float(np.corrcoef(fast.ravel(), exact.ravel())[0, 1])
    assert similarity >= 0.999, f"{view}: NCC {similarity:.5f}"
    assert relative.mean() <= 0.01, f"{view}: mean relative difference {relative.mean():.4f}"
