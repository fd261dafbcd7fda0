"""The mean-shape yardstick: alignment recovers known motions, dimensions match analytic shapes,
the real mean shape measures inside the published ranges, and a generated patient is compared."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models import frames
from fluorosim.models.patient import Patient
from fluorosim.models.yardstick import (
    LEVELS,
    LITERATURE_MM,
    compare_vertebra,
    format_table,
    load_mean_shape,
    measure_vertebra,
    vertebra_surface,
)


def box(lps_low, lps_high, points):
    return np.all((points >= lps_low) & (points <= lps_high), axis=-1)


def block_vertebra(voxel_mm: float = 1.0) -> Patient:
    """A vertebra made of boxes with known dimensions (LPS mm, centred on the body's back wall).

    Body 40 wide × 30 deep × 25 high; canal 20 wide × 15 deep enclosed by a 28 × 19 arch 12 high;
    spinous process from the arch's back (p = 19) to p = 49, so 34 mm behind the canal.
    """
    shape = (int(70 / voxel_mm), int(90 / voxel_mm), int(40 / voxel_mm))
    lps_from_voxel = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    lps_from_voxel[:3, 3] = [-35.0, -36.0, -20.0]
    ijk = np.stack(np.indices(shape), axis=-1).reshape(-1, 3)
    pts = frames.apply_to_points(lps_from_voxel, ijk).reshape(*shape, 3)
    labels = np.zeros(shape, np.uint8)
    labels[box([-20, -30, -12.5], [20, 0, 12.5], pts)] = 1
    arch = box([-14, 0, -6], [14, 19, 6], pts) & ~box([-10, 0, -7], [10, 15, 7], pts)
    labels[arch] = 2
    labels[box([-3, 19, -5], [3, 49, 5], pts)] = 2
    table = {"background": 0, "L3_body": 1, "L3_posterior_elements": 2}
    return Patient(
        np.where(labels > 0, 700, -1000).astype(np.int16), labels, lps_from_voxel, table, {}
    )


@pytest.fixture(scope="module")
def block_mesh():
    return vertebra_surface(block_vertebra(), "L3")


def test_dimensions_of_a_block_vertebra_are_measured(block_mesh):
    mesh = block_mesh
    dims = measure_vertebra(mesh)
    # voxel-face extents of the boxes on the 1 mm grid (voxel centres on both box faces count)
    expected = {
        "body_width_mm": 41,
        "body_mean_width_mm": 41,
        "body_depth_mm": 31,
        "body_height_mm": 25,
        "canal_width_mm": 21,
        "canal_depth_mm": 15,
        "spinous_length_mm": 34,
    }
    for name, value in expected.items():
        assert getattr(dims, name) == pytest.approx(value, abs=1.0), name


def test_dimensions_do_not_depend_on_a_sagittal_tilt(block_mesh):
    mesh = block_mesh
    upright = measure_vertebra(mesh)
    tilted = mesh.copy()
    tilted.points = frames.apply_to_points(frames.rotation_transform([1, 0, 0], 20.0), mesh.points)
    leaning = measure_vertebra(tilted)
    for name in LITERATURE_MM:
        assert getattr(leaning, name) == pytest.approx(getattr(upright, name), abs=1.5), name


def test_kabsch_recovers_a_rigid_motion():
    rng = np.random.default_rng(3)
    source = rng.normal(size=(50, 3)) * 20
    motion = frames.rotation_transform([1, 2, 3], 40.0, [5, 0, 0])
    motion[:3, 3] += [3, -7, 11]
    np.testing.assert_allclose(
        frames.rigid_fit(source, frames.apply_to_points(motion, source)), motion, atol=1e-9
    )


@pytest.fixture(scope="module")
def mean_shape(request):
    from tests.conftest import SHARED_DATA

    folder = SHARED_DATA / "lumbar-mean-shape"
    if not folder.is_dir():
        pytest.skip(f"shared reference data not found at {folder}")
    return load_mean_shape(folder)


@pytest.mark.shared_data
def test_mean_shape_splits_into_four_levels_in_lps(mean_shape):
    assert list(mean_shape) == list(LEVELS)
    heights = [float(np.mean(mesh.points[:, 2])) for mesh in mean_shape.values()]
    assert heights == sorted(heights, reverse=True)  # L2 on top
    for level, mesh in mean_shape.items():
        assert mesh.n_open_edges == 0, level
        # LPS: the spinous tip (most posterior point) lies on the midline, behind the body
        tip = mesh.points[np.argmax(mesh.points[:, 1])]
        assert abs(tip[0]) < 8.0 and tip[1] > 40.0, level
        assert mesh.points[:, 1].min() < -5.0  # the body's front is anterior (−P)


@pytest.mark.shared_data
def test_mean_shape_measures_inside_the_published_ranges(mean_shape):
    """Clouthier et al. measured the same 87 CTs: their ranges must hold the mean shape."""
    for level, mesh in mean_shape.items():
        dims = measure_vertebra(mesh)
        for name, (_, low, high) in LITERATURE_MM.items():
            if level == "L5" and name == "canal_width_mm":
                continue  # L5's triangular canal: lateral recesses widen our transverse extent
            assert low <= getattr(dims, name) <= high, (level, name, getattr(dims, name))


@pytest.mark.shared_data
def test_the_body_width_targets_are_the_mean_shapes_mean_width(mean_shape):
    """The warp fits each body's drawn width as the bone's mean width through its middle; the
    population means it draws around (Clouthier's L2–L5 mean with Panjabi's level trend) must be
    what Clouthier's own mean shape reads that way (44.3 / 46.6 / 48.2 / 51.3 against 44.0 / 46.3
    / 47.7 / 48.8), not its waist (40.0 … 48.5, which the old widest-extent fit left L4 at)."""
    from fluorosim.models.labels import LUMBAR_LEVELS
    from fluorosim.models.template.targets import BODY_WIDTH_MM

    for level, mesh in mean_shape.items():
        dims = measure_vertebra(mesh)
        population = BODY_WIDTH_MM[LUMBAR_LEVELS.index(level)]
        assert abs(dims.body_mean_width_mm - population) <= 2.75, (level, dims)
        assert dims.body_width_mm < dims.body_mean_width_mm  # a waist


@pytest.mark.shared_data
def test_alignment_recovers_a_moved_copy_and_tells_levels_apart(mean_shape):
    motion = frames.rotation_transform([0.3, 1.0, 0.2], 25.0)
    motion[:3, 3] = [15.0, -8.0, 5.0]
    moved = mean_shape["L3"].copy()
    moved.points = frames.apply_to_points(motion, moved.points)
    same = compare_vertebra(moved, mean_shape["L3"], "L3", np.random.default_rng(1))
    assert same.mean_distance_mm < 0.1 and same.p95_distance_mm < 0.25
    residual = same.reference_from_generated @ motion
    assert frames.angle_between_deg(residual[:3, 0], [1, 0, 0]) < 0.5
    assert np.linalg.norm(residual[:3, 3]) < 0.3
    other = compare_vertebra(mean_shape["L5"], mean_shape["L3"], "L3", np.random.default_rng(1))
    assert other.mean_distance_mm > 0.5
    table = format_table([same, other])
    assert "L3" in table and "body_width" in table


@pytest.mark.shared_data
def test_a_bigger_copy_is_reported_as_too_big_in_every_region(mean_shape):
    reference = mean_shape["L4"]
    centre = reference.points.mean(axis=0)
    bigger = reference.copy()
    bigger.points = centre + 1.06 * (reference.points - centre)
    result = compare_vertebra(bigger, reference, "L4", np.random.default_rng(2))
    assert set(result.regions) == {"body", "arch", "spinous"}
    assert sum(r.fraction_of_area for r in result.regions.values()) == pytest.approx(1.0)
    for name, region in result.regions.items():
        # a uniformly larger shape lies outside the reference nearly everywhere
        assert region.mean_signed_mm > 0.6 * region.mean_mm > 0, name
    assert result.generated.body_width_mm > result.reference.body_width_mm
    # with size removed it is the reference again
    assert result.size_ratio == pytest.approx(1.06, abs=0.005)
    assert result.shape_mean_distance_mm < 0.1 < 0.5 < result.mean_distance_mm


@pytest.mark.shared_data
def test_size_removed_still_tells_levels_apart(mean_shape):
    """Scaling to the reference's size does not hide a different shape: L5 against L3."""
    other = compare_vertebra(mean_shape["L5"], mean_shape["L3"], "L3", np.random.default_rng(1))
    assert other.shape_mean_distance_mm > 0.5


@pytest.mark.shared_data
@pytest.mark.slow
def test_generated_lumbar_spine_against_the_mean_shape(mean_shape, capsys):
    phantom = pytest.importorskip("fluorosim.models.phantom")
    patient = phantom.load_or_build_patient()
    comparisons = [
        compare_vertebra(
            vertebra_surface(patient, level), mean_shape[level], level, np.random.default_rng(0)
        )
        for level in LEVELS
    ]
    with capsys.disabled():
        print("\n" + format_table(comparisons))
    for c in comparisons:
        # sane bound: a vertebra-shaped object of the right size (issue #3 aims at ≤ 2 mm mean)
        assert c.mean_distance_mm < 5.0, c.level
        assert c.p95_distance_mm < 15.0, c.level
