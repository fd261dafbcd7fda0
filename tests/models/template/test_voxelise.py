"""Voxelising a closed surface: exact volumes, partial-volume edges, cortical layers, bone HU."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from fluorosim.models.phantom.parts import Grid
from fluorosim.models.template import bone_density as bd
from fluorosim.models.template.voxelise import (
    EDGE_SIGMA_VOXELS,
    layer_fraction,
    occupancy,
    voxelise_mesh,
)

pv = pytest.importorskip("pyvista")


def _mesh(poly) -> tuple[np.ndarray, np.ndarray]:
    poly = poly.triangulate().clean()
    return np.asarray(poly.points, dtype=np.float64), poly.faces.reshape(-1, 4)[:, 1:]


def _grid(half_mm: float = 40.0, voxel_mm: float = 1.0) -> Grid:
    return Grid.covering(np.full(3, -half_mm), np.full(3, half_mm), voxel_mm)


def test_sphere_partial_volume_sum_matches_the_exact_volume() -> None:
    radius = 20.3
    sphere = pv.Sphere(
        radius=radius, center=(0.17, 0.31, 0.05), theta_resolution=300, phi_resolution=300
    )
    vertices, faces = _mesh(sphere)
    volume = voxelise_mesh(_grid(), vertices, faces)
    assert volume is not None
    exact = 4.0 / 3.0 * math.pi * radius**3
    assert volume.occupancy.sum() * volume.voxel_mm**3 == pytest.approx(exact, rel=0.01)
    # the distance is exact near the surface: voxel centres at known radii
    x, y, z = np.meshgrid(
        *(_grid().x_mm[s] for s in volume.box), indexing="ij"
    )  # cubic grid: same axes
    r = np.sqrt((x - 0.17) ** 2 + (y - 0.31) ** 2 + (z - 0.05) ** 2)
    near = np.abs(r - radius) < 1.0
    assert np.abs(volume.distance_mm[near] - (r[near] - radius)).max() < 0.05


def test_oblique_plane_edges_are_fractional_not_a_staircase() -> None:
    # a large box tilted 30° about x and 20° about z: its faces cut the voxels obliquely
    box = pv.Box(bounds=(-25, 25, -25, 25, -25, 25)).rotate_x(30).rotate_z(20)
    vertices, faces = _mesh(box.triangulate().subdivide(3))
    volume = voxelise_mesh(_grid(50.0), vertices, faces)
    assert volume is not None
    occ = volume.occupancy
    edge = (occ > 0.02) & (occ < 0.98)
    values = occ[edge]
    # many distinct fractional values, spread over the whole range (a staircase has only 0 and 1)
    assert edge.sum() > 5000
    assert np.histogram(values, bins=10, range=(0, 1))[0].min() > 0.05 * len(values) / 10
    assert occ.sum() == pytest.approx(50.0**3, rel=0.01)


def test_occupancy_of_a_plane_is_the_step_blurred_by_a_gaussian() -> None:
    voxel = 1.0
    sigma = EDGE_SIGMA_VOXELS * voxel
    d = np.array([-3 * sigma, -sigma, 0.0, sigma, 3 * sigma], dtype=np.float32)
    # Φ(−d/σ): half at the surface, 84 % one σ inside, 16 % one σ outside
    expected = [0.99865, 0.84134, 0.5, 0.15866, 0.00135]
    assert np.allclose(occupancy(d, voxel), expected, atol=1e-4)
    # symmetric about the surface: what one side lacks the other has
    many = np.linspace(-3, 3, 61, dtype=np.float32)
    assert np.allclose(occupancy(many, voxel) + occupancy(-many, voxel), 1.0, atol=1e-6)


def _edge_on_plate_peaks(occupancy_of, tilt_deg: float, thickness_mm: float) -> NDArray:
    """Darkest ray across a thin plate seen edge-on, at each position along it.

    The plate ``y = z·tan(tilt)`` (``thickness_mm`` thick, below its surface) is sampled on a 1 mm
    (y, z) grid by ``occupancy_of``; rays run along x, parallel to it, so each ray's line integral
    is the plate's length times the trilinear interpolant (what the renderer integrates) at the
    ray's (y, z). Rays every 0.05 mm across the plate, at every 0.25 mm along it, blurred across it
    by 0.2 mm (σ), the order of the image chain's own blur at the isocentre (0.45 mm FWHM at the
    detector, magnification ≈ 1.5, plus the pixel).
    """
    tilt = math.radians(tilt_deg)
    y, z = np.meshgrid(np.arange(-6.0, 7.0), np.arange(0.0, 40.0), indexing="ij")
    distance = ((y - z * math.tan(tilt)) * math.cos(tilt)).astype(np.float32)
    plate = occupancy_of(distance, 1.0) - occupancy_of(distance + thickness_mm, 1.0)
    along = np.arange(5.0, 35.0, 0.25)
    across = np.arange(-3.0, 3.0, 0.05)
    ray_y = along[:, None] * math.tan(tilt) + across[None, :] + 6.0  # grid index of y
    ray_z = np.broadcast_to(along[:, None], ray_y.shape)
    profile = ndimage.map_coordinates(plate, [ray_y.ravel(), ray_z.ravel()], order=1)
    seen = ndimage.gaussian_filter1d(profile.reshape(ray_y.shape), 0.2 / 0.05, axis=1)
    peaks: NDArray = seen.max(axis=1)
    return peaks


def test_a_thin_plate_seen_edge_on_is_an_even_line_not_a_moire() -> None:
    # a 0.6 mm cortex tilted 3° off a voxel plane: along its length it drifts through every
    # sub-voxel offset. Its edge-on line must keep an even darkness (measured: ±10 %); the plain
    # box fraction clip(0.5 − d/h, 0, 1) made it swing by ±23 %, one stripe per voxel of drift
    def box(distance: NDArray, voxel_mm: float) -> NDArray:
        return np.clip(0.5 - distance / voxel_mm, 0.0, 1.0)

    def swing(peaks: NDArray) -> float:
        return float((peaks.max() - peaks.min()) / peaks.mean())

    blurred = swing(_edge_on_plate_peaks(occupancy, 3.0, 0.6))
    assert blurred < 0.22
    assert swing(_edge_on_plate_peaks(box, 3.0, 0.6)) > 2 * blurred


@pytest.mark.parametrize("thickness_mm", [0.4, 1.0, 2.5])
def test_cortex_thickness_measured_on_a_profile(thickness_mm: float) -> None:
    # a slab x < 0 seen along a profile across its surface, offset by a fraction of a voxel:
    # the cortical fractions summed along the profile give back the shell's thickness (to 0.1 %
    # of a voxel: the Gaussian edge is band-limited, not exactly so)
    voxel = 1.0
    for offset in (0.0, 0.3, 0.77):
        distance = (np.arange(-10, 5) * voxel + offset).astype(np.float32)
        cortex = layer_fraction(distance, voxel, 0.0, thickness_mm)
        assert cortex.sum() * voxel == pytest.approx(thickness_mm, abs=1e-3)
        assert occupancy(distance, voxel).sum() * voxel == pytest.approx(
            10.0 - offset + 0.5, abs=1e-3
        )


def test_sub_voxel_wall_shows_as_partial_volume_density() -> None:
    sphere = pv.Sphere(radius=15.0, theta_resolution=200, phi_resolution=200)
    vertices, faces = _mesh(sphere)
    volume = voxelise_mesh(_grid(25.0), vertices, faces)
    assert volume is not None
    cortical = 1800.0
    cancellous = 150.0
    hu, occ = bd.bone_hu(volume, 0.4, cancellous, cortical, texture=None)
    # the bone content of the sphere: 0.4 mm of cortex over its surface, cancellous inside
    content = (hu * occ).sum()
    area = 4 * math.pi * 15.0**2
    shell = area * 0.4 * (cortical - cancellous)
    expected = 4 / 3 * math.pi * 15.0**3 * cancellous + shell
    assert content == pytest.approx(expected, rel=0.02)
    # no voxel is full cortex: the wall is thinner than a voxel
    assert hu[occ > 0.99].max() < cancellous + 0.75 * (cortical - cancellous)


def test_trabecular_texture_is_correlated_and_anisotropic() -> None:
    rng = np.random.default_rng(3)
    texture = bd.trabecular_texture(rng, (40, 40, 40), 1.0, np.array([0.0, 0.0, 1.0]))
    assert texture.std() == pytest.approx(1.0, rel=1e-3)

    def lag_correlation(axis: int) -> float:
        a = np.take(texture, range(0, 39), axis=axis).ravel()
        b = np.take(texture, range(1, 40), axis=axis).ravel()
        return float(np.corrcoef(a, b)[0, 1])

    along, across = lag_correlation(2), lag_correlation(0)
    assert across > 0.2  # not white noise
    assert along > across + 0.1  # elongated along the body axis


def test_hu_by_age_falls_and_stays_in_the_published_ranges() -> None:
    assert bd.cancellous_hu(25) == pytest.approx(226.0)
    assert bd.cancellous_hu(80) < bd.cancellous_hu(40)
    for age in (20, 50, 90):
        assert 700 <= bd.cortical_material_hu(age) <= 1900
    assert bd.site_cancellous_hu(280.0, 50.0) == pytest.approx(280.0)


def test_a_mesh_outside_the_grid_gives_none() -> None:
    vertices, faces = _mesh(pv.Sphere(radius=5.0, center=(500.0, 0.0, 0.0)))
    assert voxelise_mesh(_grid(), vertices, faces) is None
