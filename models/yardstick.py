"""Real-anatomy yardstick: a generated lumbar vertebra against the population-mean L2–L5 shape.

The reference is the mean surface of the statistical shape model of Clouthier et al. (J Biomech
2023;146:111421; CT of 87 patients; MIT licence), read from ``../shared/data/lumbar-mean-shape/``
(never copied into the repository). Its mesh holds four connected components, L2 on top (largest z)
to L5, with axes +x anterior, y left–right, +z superior. The right-handed frame with those x and z
has +y = z × x = the patient's Left, so ``LPS = (y, −x, z)`` is a proper rotation
(:data:`LPS_FROM_MEAN_SHAPE`).

Comparison of one level:

1. the generated surface is the union of ``X_body``, ``X_pedicle_left/right`` and
   ``X_posterior_elements`` (:func:`models.io.meshes.structure_mesh`);
2. rigid alignment: centroids, then principal axes (every proper sign choice, plus the anatomical
   LPS orientation both meshes already share) each refined by symmetric point-to-point ICP
   (Besl & McKay 1992; Kabsch rotation, no scaling); the start with the lowest residual wins;
3. symmetric surface distance: area-uniform samples on each surface, exact distance to the other
   surface (VTK cell locator), pooled; report mean, 95th percentile and maximum (mm);
4. the same mean with size removed (a similarity alignment): the aligned surface scaled about
   its centroid to the reference's centroid size (RMS distance of area-uniform samples from their
   centroid), refined by ICP again. A patient drawn larger or smaller than the population mean
   lies further from the mean shape rigidly than its shape alone does; ``size_ratio`` says by how
   much it was drawn larger;
5. dimensions of both, measured identically from the surface alone (:func:`measure_vertebra`).

Run ``python -m fluorosim.models.yardstick [--seed N]`` for the table of the default generated patient.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from numpy.typing import NDArray

from fluorosim.models import frames
from fluorosim.models.patient import Patient
from fluorosim.models.template.warp_geometry import mean_body_width_mm

if TYPE_CHECKING:
    import pyvista as pv

LEVELS = ("L2", "L3", "L4", "L5")
VERTEBRA_PARTS = ("body", "pedicle_left", "pedicle_right", "posterior_elements")
#: LPS from the mean-shape axes (+x anterior, +y left, +z superior): L = y, P = −x, S = z.
LPS_FROM_MEAN_SHAPE = np.array(
    [[0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
#: Issue #3's target for the mean symmetric surface distance after rigid alignment (mm).
TARGET_MEAN_DISTANCE_MM = 2.0
#: Surface samples used for alignment and for distances.
ICP_SAMPLES = 4000
DISTANCE_SAMPLES = 20000
ICP_ITERATIONS = 60
#: Grid step of the solid used for measuring dimensions (mm).
MEASURE_VOXEL_MM = 0.5
#: The anterior fraction of the antero-posterior length that is vertebral body only.
BODY_FRACTION = 0.3
#: Half-width (mm) of the midline band behind the canal counted as spinous process.
SPINOUS_HALF_WIDTH_MM = 8.0
#: Regions of the reference vertebra used to say where the shapes differ.
REGIONS = ("body", "arch", "spinous")
#: Smallest axial hole (mm²) taken as the canal rather than a gap between processes.
MIN_CANAL_AREA_MM2 = 20.0
#: Reference values (mean, range over L2–L5, mm), Clouthier et al. 2023 (reference/anatomy.md).
LITERATURE_MM = {
    "body_mean_width_mm": (46.7, 39.4, 58.8),
    "body_depth_mm": (35.0, 29.5, 42.0),
    "body_height_mm": (27.8, 23.5, 32.3),
    "canal_width_mm": (26.7, 21.5, 31.8),
    "canal_depth_mm": (16.7, 13.0, 20.4),
}
#: Clouthier et al. give spinous length 51.6 (43–61) mm measured differently (not from the
#: spinolaminar line as here); the table shows it for orientation only.
SPINOUS_LITERATURE_MM = (51.6, 43.0, 61.0)


@dataclass(frozen=True)
class VertebraDimensions:
    """Dimensions of one vertebra in its own anatomical frame (mm); see :func:`measure_vertebra`."""

    body_width_mm: float
    body_mean_width_mm: float
    body_depth_mm: float
    body_height_mm: float
    canal_width_mm: float
    canal_depth_mm: float
    spinous_length_mm: float


@dataclass(frozen=True)
class RegionDistance:
    """Distances within one region of the reference vertebra (mm).

    ``mean_signed_mm`` > 0 means the generated surface lies outside the reference there (the
    generated part is too big), < 0 inside (too small).
    """

    mean_mm: float
    p95_mm: float
    mean_signed_mm: float
    fraction_of_area: float


@dataclass(frozen=True)
class VertebraComparison:
    """One level: surface distances after rigid alignment and the dimensions of both shapes."""

    level: str
    mean_distance_mm: float
    p95_distance_mm: float
    max_distance_mm: float
    #: mean symmetric distance after scaling to the reference's centroid size (size removed)
    shape_mean_distance_mm: float
    #: generated centroid size / reference centroid size
    size_ratio: float
    generated: VertebraDimensions
    reference: VertebraDimensions
    reference_from_generated: NDArray[np.float64]
    regions: dict[str, RegionDistance]


# --------------------------------------------------------------------------- reference data


def load_mean_shape(folder: str | Path) -> dict[str, object]:
    """The four mean-shape vertebrae as pyvista.PolyData in LPS mm, keyed ``"L2"`` … ``"L5"``."""
    import pyvista as pv

    folder = Path(folder)
    vertices = np.loadtxt(folder / "meanMesh_vertices.csv.gz", delimiter=",", dtype=np.float64)
    faces = np.loadtxt(folder / "meanMesh_faces.csv.gz", delimiter=",", dtype=np.int64) - 1
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"{folder}: face indices do not match the {len(vertices)} vertices")
    points_lps = vertices @ LPS_FROM_MEAN_SHAPE[:3, :3].T
    cells = np.hstack([np.full((len(faces), 1), 3, np.int64), faces]).ravel()
    mesh = pv.PolyData(points_lps, cells)
    labelled = mesh.connectivity("all")
    region = np.asarray(labelled.point_data["RegionId"])
    components = []
    for region_id in np.unique(region):
        part = labelled.extract_points(region == region_id, adjacent_cells=False)
        surface = part.extract_surface(algorithm="dataset_surface").clean()
        components.append(surface)
    if len(components) != len(LEVELS):
        raise ValueError(f"{folder}: expected 4 vertebrae, found {len(components)} components")
    components.sort(key=lambda surface: -float(np.mean(surface.points[:, 2])))
    return dict(zip(LEVELS, components, strict=True))


def vertebra_surface(patient: Patient, level: str) -> pv.PolyData:
    """The generated vertebra ``level`` (body + pedicles + posterior elements) as a closed mesh."""
    from fluorosim.models.io.meshes import structure_mesh

    names = [
        f"{level}_{part}" for part in VERTEBRA_PARTS if f"{level}_{part}" in patient.label_table
    ]
    if not names:
        raise KeyError(f"patient has no labels for vertebra {level}")
    return structure_mesh(patient, names)


# --------------------------------------------------------------------------- geometry helpers


def _triangles(
    mesh: pv.PolyData,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    faces = mesh.triangulate().faces.reshape(-1, 4)[:, 1:]
    return mesh.points[faces[:, 0]], mesh.points[faces[:, 1]], mesh.points[faces[:, 2]]


def sample_surface(
    mesh: pv.PolyData, n_points: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``n_points`` points uniformly distributed over the area of a triangle mesh."""
    a, b, c = _triangles(mesh)
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    chosen = rng.choice(len(areas), size=n_points, p=areas / areas.sum())
    u, v = rng.random(n_points), rng.random(n_points)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    points: NDArray[np.float64] = (
        a[chosen] + u[:, None] * (b[chosen] - a[chosen]) + v[:, None] * (c[chosen] - a[chosen])
    )
    return points


def distances_to_surface(points: NDArray[np.float64], mesh: pv.PolyData) -> NDArray[np.float64]:
    """Exact distance (mm) from each point to the closest point of a triangle mesh."""
    _, closest = mesh.find_closest_cell(
        np.asarray(points, dtype=np.float64), return_closest_point=True
    )
    distances: NDArray[np.float64] = np.linalg.norm(np.asarray(points) - closest, axis=1)
    return distances


def _apply(transform: NDArray[np.float64], points: NDArray[np.float64]) -> NDArray[np.float64]:
    return points @ transform[:3, :3].T + transform[:3, 3]


def icp(
    moving: NDArray[np.float64],
    fixed: NDArray[np.float64],
    fixed_from_moving: NDArray[np.float64],
    iterations: int = ICP_ITERATIONS,
) -> tuple[NDArray[np.float64], float]:
    """Symmetric point-to-point ICP from a starting transform; returns (transform, RMS mm)."""
    from scipy.spatial import cKDTree

    fixed_tree = cKDTree(fixed)
    transform = fixed_from_moving.copy()
    previous = np.inf
    rms = np.inf
    for _ in range(iterations):
        moved = _apply(transform, moving)
        d_forward, to_fixed = fixed_tree.query(moved)
        d_backward, to_moving = cKDTree(moved).query(fixed)
        source = np.vstack([moved, moved[to_moving]])
        target = np.vstack([fixed[to_fixed], fixed])
        transform = frames.rigid_fit(source, target) @ transform
        rms = float(np.sqrt(np.mean(np.concatenate([d_forward, d_backward]) ** 2)))
        if previous - rms < 1e-4:
            break
        previous = rms
    return transform, rms


def _principal_axes(points: NDArray[np.float64]) -> NDArray[np.float64]:
    centred = points - points.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axes = vectors[:, ::-1]
    if np.linalg.det(axes) < 0:
        axes[:, 2] *= -1
    return axes


def rigid_align(
    moving: NDArray[np.float64], fixed: NDArray[np.float64]
) -> tuple[NDArray[np.float64], float]:
    """Best rigid ``fixed_from_moving``: centroids + principal axes (or none), refined by ICP."""
    moving_centre, fixed_centre = moving.mean(axis=0), fixed.mean(axis=0)
    moving_axes, fixed_axes = _principal_axes(moving), _principal_axes(fixed)
    rotations = [np.eye(3)]
    for signs in ([1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]):
        rotations.append(fixed_axes @ np.diag(signs) @ moving_axes.T)
    best = (np.eye(4), np.inf)
    for rotation in rotations:
        start = np.eye(4)
        start[:3, :3] = rotation
        start[:3, 3] = fixed_centre - rotation @ moving_centre
        transform, rms = icp(moving, fixed, start)
        if rms < best[1]:
            best = (transform, rms)
    return best


# --------------------------------------------------------------------------- dimensions


def anatomical_frame(mesh: pv.PolyData) -> NDArray[np.float64]:
    """``lps_from_anatomical`` of a vertebra mesh lying roughly in LPS orientation.

    Superior axis: the normal direction that dominates the body's surface (its endplates; the side
    walls are parallel to the axis, so they do not tilt it), found as the eigenvector of the
    area-weighted normal scatter of the anterior body part closest to +S. Left axis: LPS +x made
    orthogonal to it. Posterior = superior × left. Origin: area centroid, so l = 0 is the midline.
    """
    a, b, c = _triangles(mesh)
    cross = np.cross(b - a, c - a)
    areas = 0.5 * np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(2.0 * areas[:, None], 1e-12)
    centres = (a + b + c) / 3.0
    origin = (centres * areas[:, None]).sum(axis=0) / areas.sum()
    superior = np.array([0.0, 0.0, 1.0])
    posterior = np.array([0.0, 1.0, 0.0])
    for _ in range(3):
        depth = centres @ posterior
        body = depth < depth.min() + BODY_FRACTION * (depth.max() - depth.min())
        scatter = (normals[body] * areas[body, None]).T @ normals[body]
        _, vectors = np.linalg.eigh(scatter)
        candidate = vectors[:, np.argmax(np.abs(vectors[2]))]
        superior = candidate * np.sign(candidate[2])
        left = np.array([1.0, 0.0, 0.0]) - superior[0] * superior
        left /= np.linalg.norm(left)
        posterior = np.cross(superior, left)
    frame = np.eye(4)
    frame[:3, 0], frame[:3, 1], frame[:3, 2] = left, posterior, superior
    frame[:3, 3] = origin
    return frame


def solid_in_frame(
    mesh: pv.PolyData, frame: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Voxelised solid (MEASURE_VOXEL_MM) of ``mesh`` in the coordinates of ``frame`` (a 4×4
    ``lps_from_anatomical``, or any mesh-from-local transform): (mask[l, p, s], grid origin)."""
    import pyvista as pv

    anatomical_from_lps = cast(NDArray[np.float64], np.linalg.inv(frame))
    local = mesh.copy()
    local.points = _apply(anatomical_from_lps, np.asarray(mesh.points))
    low = np.floor(np.asarray(local.bounds)[::2] / MEASURE_VOXEL_MM) * MEASURE_VOXEL_MM - 2.0
    high = np.asarray(local.bounds)[1::2] + 2.0
    dims = np.ceil((high - low) / MEASURE_VOXEL_MM).astype(int) + 1
    grid = pv.ImageData(dimensions=dims, spacing=(MEASURE_VOXEL_MM,) * 3, origin=low)
    mask = local.voxelize_binary_mask(reference_volume=grid)
    solid = np.asarray(mask.point_data["mask"]).reshape(tuple(dims), order="F") > 0
    return solid, low


@dataclass(frozen=True)
class CanalSection:
    """One axial slice (index ``s``) of a voxelised vertebra where the canal is an enclosed hole:
    its cells (l, p) and the p indices of those on the midline."""

    s: int
    cells: NDArray[np.intp]
    on_midline_p: NDArray[np.intp]


def canal_sections(solid: NDArray[np.bool_], low: NDArray[np.float64]) -> list[CanalSection]:
    """The axial slices of ``solid`` (from :func:`solid_in_frame`, l = 0 on the midline) where the
    canal is enclosed (pedicle level): the hole crossing the midline behind the body (holes in
    the anterior part are the concave endplates seen inside their rim), of at least
    MIN_CANAL_AREA_MM2 (smaller ones are gaps between processes)."""
    from scipy import ndimage

    step = MEASURE_VOXEL_MM
    midline = int(round(-low[0] / step))
    occupied = np.flatnonzero(solid.any(axis=(0, 2)))
    canal_min_p = occupied.min() + BODY_FRACTION * (occupied.max() - occupied.min())
    min_cells = int(MIN_CANAL_AREA_MM2 / step**2)
    sections = []
    for s in range(solid.shape[2]):
        section = solid[:, :, s]
        if not section.any():
            continue
        holes, count = ndimage.label(ndimage.binary_fill_holes(section) & ~section)
        for hole in range(1, count + 1):
            cells = np.argwhere(holes == hole)
            crosses_midline = cells[:, 0].min() <= midline <= cells[:, 0].max()
            if not crosses_midline or cells[:, 1].mean() <= canal_min_p or len(cells) < min_cells:
                continue
            on_midline = cells[np.abs(cells[:, 0] - midline) <= 1, 1]
            sections.append(CanalSection(s, cells, on_midline))
    return sections


def _extent_mm(indices: NDArray[np.intp]) -> float:
    return float((indices.max() - indices.min() + 1) * MEASURE_VOXEL_MM) if indices.size else 0.0


def measure_vertebra(mesh: pv.PolyData) -> VertebraDimensions:
    """Dimensions of a vertebra mesh in LPS orientation (mm); see :func:`_measure`."""
    return _measure(mesh)[0]


def _measure(mesh: pv.PolyData) -> tuple[VertebraDimensions, NDArray[np.float64], float, float]:
    """(dimensions, lps_from_anatomical, canal front p, canal back p); p in anatomical mm.

    Dimensions (mm) measured from the surface alone, the same way for any vertebra.

    In the :func:`anatomical_frame`, on a 0.5 mm solid: the canal is, in each axial slice where it
    is enclosed (pedicle level), the hole crossing the midline behind the body; canal depth is its
    antero-posterior extent on the midline, canal width its full left–right extent (between the
    pedicles); both are medians over those slices. The body is the bone anterior to
    the canal's anterior wall: width = left–right extent through the body's centre at mid-height,
    mean width = the mean of the left–right extents through its centre over its height (the
    coronal section's area / height, without the heights that only graze an endplate's rim:
    :func:`~models.template.warp_geometry.mean_body_width_mm`), which reads the waist and the rims'
    flare alike (Clouthier's mean shape reads 44.3 / 46.6 / 48.2 / 51.3 mm at L2–L5, mean 47.6,
    against the 46.7 they publish; its mid-height widths average 43.5, its rims 51.5–55.5),
    depth = antero-posterior extent on the midline at mid-height, height = midsagittal section
    area / depth (the mean of anterior-to-posterior heights). Spinous length runs from the canal's
    posterior wall (spinolaminar line) to the most posterior bone within 5 mm of the midline.
    """
    from scipy import ndimage

    frame = anatomical_frame(mesh)
    solid, low = solid_in_frame(mesh, frame)
    step = MEASURE_VOXEL_MM
    midline = int(round(-low[0] / step))
    sections = canal_sections(solid, low)
    widths = [_extent_mm(section.cells[:, 0]) for section in sections]
    depths = [_extent_mm(section.on_midline_p) for section in sections]
    fronts = [section.on_midline_p.min() for section in sections]
    backs = [section.on_midline_p.max() for section in sections]
    if not widths:
        raise ValueError("no enclosed vertebral canal found: is this a whole vertebra?")
    canal_front, canal_back = int(np.median(fronts)), int(np.median(backs))
    body = solid.copy()
    body[:, canal_front:, :] = False
    labelled, _ = ndimage.label(body)
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    body = labelled == np.argmax(sizes)
    body_cells = np.argwhere(body)
    mid_p, mid_s = (int(round(v)) for v in body_cells[:, 1:].mean(axis=0))
    body_width = _extent_mm(
        np.flatnonzero(body[:, mid_p - 1 : mid_p + 2, mid_s - 1 : mid_s + 2].any(axis=(1, 2)))
    )
    coronal = body[:, mid_p - 1 : mid_p + 2, :].any(axis=1)
    coronal_widths = np.array([_extent_mm(np.flatnonzero(column)) for column in coronal.T])
    central = body[midline - 1 : midline + 2, :, mid_s - 1 : mid_s + 2].any(axis=(0, 2))
    body_depth = _extent_mm(np.flatnonzero(central))
    sagittal = body[midline - 1 : midline + 2].any(axis=0)
    body_height = float(sagittal.sum() * step * step / max(body_depth, step))
    near_midline = solid[max(midline - int(5 / step), 0) : midline + int(5 / step) + 1]
    tip = np.flatnonzero(near_midline.any(axis=(0, 2))).max()
    dimensions = VertebraDimensions(
        body_width_mm=body_width,
        body_mean_width_mm=mean_body_width_mm(coronal_widths),
        body_depth_mm=body_depth,
        body_height_mm=body_height,
        canal_width_mm=float(np.median(widths)),
        canal_depth_mm=float(np.median(depths)),
        spinous_length_mm=float((tip - canal_back) * step),
    )
    # canal walls as anatomical p coordinates (mm) of the voxel faces bounding the canal
    front_mm = float(low[1] + (canal_front - 0.5) * step)
    back_mm = float(low[1] + (canal_back + 0.5) * step)
    return dimensions, frame, front_mm, back_mm


@dataclass(frozen=True)
class PosteriorArch:
    """The pedicles' height and the canal ring's height of one vertebra (mm)."""

    pedicle_height_left_mm: float
    pedicle_height_right_mm: float
    canal_ring_height_mm: float


def measure_arch(mesh: pv.PolyData) -> PosteriorArch:
    """Pedicle and canal-ring heights of a vertebra mesh, measured the same way for any vertebra.

    On the 0.5 mm solid in the :func:`anatomical_frame`: the canal ring's height is the thickness
    of the axial slices where the canal is enclosed (:func:`canal_sections`). A pedicle's height:
    in each sagittal column beside the canal (up to 14 mm lateral of its wall), the bone run
    through the median enclosed slice is followed from 2 mm in front of the canal's front wall to
    10 mm behind it and the shortest run is the isthmus; the tallest isthmus across the pedicle
    is its height (Zindrick et al. 1987 measure the isthmus's height).
    """
    frame = anatomical_frame(mesh)
    solid, low = solid_in_frame(mesh, frame)
    step = MEASURE_VOXEL_MM
    sections = canal_sections(solid, low)
    if not sections:
        raise ValueError("no enclosed vertebral canal found: is this a whole vertebra?")
    midline = int(round(-low[0] / step))
    level = int(np.median([section.s for section in sections]))
    front = int(np.median([section.on_midline_p.min() for section in sections]))
    half_width = int(np.median([section.cells[:, 0].max() - midline for section in sections]))
    heights = []
    for sign in (1, -1):
        tallest = 0.0
        for offset in range(half_width, half_width + int(14 / step)):
            column = solid[midline + sign * offset]
            runs = []
            for p in range(front - int(2 / step), front + int(10 / step)):
                if not column[p, level]:
                    continue
                run = column[p]
                bottom, top = level, level
                while bottom > 0 and run[bottom - 1]:
                    bottom -= 1
                while top < len(run) - 1 and run[top + 1]:
                    top += 1
                runs.append((top - bottom + 1) * step)
            if runs:
                tallest = max(tallest, min(runs))
        heights.append(tallest)
    return PosteriorArch(heights[0], heights[1], len(sections) * step)


# --------------------------------------------------------------------------- comparison


def compare_vertebra(
    generated: pv.PolyData,
    reference: pv.PolyData,
    level: str = "",
    rng: np.random.Generator | None = None,
) -> VertebraComparison:
    """Rigidly align ``generated`` onto ``reference`` and report distances and dimensions."""
    rng = rng if rng is not None else np.random.default_rng(0)
    moving = sample_surface(generated, ICP_SAMPLES, rng)
    fixed = sample_surface(reference, ICP_SAMPLES, rng)
    reference_from_generated, _ = rigid_align(moving, fixed)
    aligned = generated.copy()
    aligned.points = _apply(reference_from_generated, np.asarray(generated.points))
    on_generated = sample_surface(aligned, DISTANCE_SAMPLES, rng)
    on_reference = sample_surface(reference, DISTANCE_SAMPLES, rng)
    # sign: + where the generated surface lies outside the reference (generated too big)
    forward = distances_to_surface(on_generated, reference) * _outside_sign(on_generated, reference)
    backward = distances_to_surface(on_reference, aligned) * -_outside_sign(on_reference, aligned)
    signed = np.concatenate([forward, backward])
    distances = np.abs(signed)
    size_ratio, shape_mean_mm = _size_removed(
        aligned,
        reference,
        (_apply(reference_from_generated, moving), fixed),
        on_generated,
        on_reference,
    )
    reference_dims, frame, front_mm, back_mm = _measure(reference)
    anatomical = _apply(
        cast(NDArray[np.float64], np.linalg.inv(frame)), np.vstack([on_generated, on_reference])
    )
    region = np.where(
        anatomical[:, 1] < front_mm,
        0,
        np.where(
            (anatomical[:, 1] > back_mm) & (np.abs(anatomical[:, 0]) < SPINOUS_HALF_WIDTH_MM), 2, 1
        ),
    )
    regions = {}
    for index, name in enumerate(REGIONS):
        chosen = region == index
        if chosen.any():
            regions[name] = RegionDistance(
                mean_mm=float(distances[chosen].mean()),
                p95_mm=float(np.percentile(distances[chosen], 95)),
                mean_signed_mm=float(signed[chosen].mean()),
                fraction_of_area=float(chosen.mean()),
            )
    return VertebraComparison(
        level=level,
        mean_distance_mm=float(distances.mean()),
        p95_distance_mm=float(np.percentile(distances, 95)),
        max_distance_mm=float(distances.max()),
        shape_mean_distance_mm=shape_mean_mm,
        size_ratio=size_ratio,
        generated=measure_vertebra(generated),
        reference=reference_dims,
        reference_from_generated=reference_from_generated,
        regions=regions,
    )


def _centroid_size_mm(points: NDArray[np.float64]) -> float:
    """RMS distance of points from their centroid (Procrustes' centroid size for area samples)."""
    return float(np.sqrt(np.mean(np.sum((points - points.mean(axis=0)) ** 2, axis=1))))


def _size_removed(
    aligned: pv.PolyData,
    reference: pv.PolyData,
    icp_pair: tuple[NDArray[np.float64], NDArray[np.float64]],
    on_aligned: NDArray[np.float64],
    on_reference: NDArray[np.float64],
) -> tuple[float, float]:
    """(size ratio, mean symmetric distance mm) of the rigidly ``aligned`` surface scaled about
    its centroid to the reference's centroid size and aligned again by ICP. The samples already
    drawn are reused: ``icp_pair`` (the aligned surface's and the reference's ICP samples) and
    ``on_aligned`` scale with the surface and stay area-uniform, so none is drawn again."""
    ratio = _centroid_size_mm(on_aligned) / _centroid_size_mm(on_reference)
    centre = on_aligned.mean(axis=0)
    moving, fixed = icp_pair
    transform, _ = icp(centre + (moving - centre) / ratio, fixed, np.eye(4))
    scaled = aligned.copy()
    scaled.points = _apply(transform, centre + (np.asarray(aligned.points) - centre) / ratio)
    on_scaled = _apply(transform, centre + (on_aligned - centre) / ratio)
    distances = np.concatenate(
        [distances_to_surface(on_scaled, reference), distances_to_surface(on_reference, scaled)]
    )
    return ratio, float(distances.mean())


def _outside_sign(points: NDArray[np.float64], mesh: pv.PolyData) -> NDArray[np.float64]:
    """+1 for points outside the closed ``mesh``, −1 inside (VTK implicit polydata distance)."""
    import pyvista as pv

    implicit = pv.PolyData(np.asarray(points)).compute_implicit_distance(mesh)
    return np.where(np.asarray(implicit["implicit_distance"]) >= 0.0, 1.0, -1.0)


def compare_patient(
    patient: Patient,
    mean_shape_folder: str | Path,
    levels: Sequence[str] = LEVELS,
    rng: np.random.Generator | None = None,
) -> list[VertebraComparison]:
    """Compare each generated level with its mean-shape counterpart."""
    rng = rng if rng is not None else np.random.default_rng(0)
    reference = load_mean_shape(mean_shape_folder)
    return [
        compare_vertebra(vertebra_surface(patient, level), reference[level], level, rng)
        for level in levels
    ]


def format_table(comparisons: Sequence[VertebraComparison]) -> str:
    """A plain-text table: distances per level, then generated vs mean-shape dimensions."""
    lines = [
        f"Surface distance after rigid alignment (target mean ≤ {TARGET_MEAN_DISTANCE_MM:g} mm);"
        " then with size removed (scaled to the reference's centroid size)",
        f"{'level':<6}{'mean mm':>9}{'p95 mm':>9}{'max mm':>9}{'size':>8}{'shape mm':>10}",
    ]
    for c in comparisons:
        lines.append(
            f"{c.level:<6}{c.mean_distance_mm:>9.2f}{c.p95_distance_mm:>9.2f}"
            f"{c.max_distance_mm:>9.2f}{c.size_ratio:>8.3f}{c.shape_mean_distance_mm:>10.2f}"
        )
    lines.append("")
    lines.append("Where they differ: mean |d| / mean signed mm (+ = generated too big), per region")
    lines.append(f"{'region':<10}" + "".join(f"{c.level:>16}" for c in comparisons))
    for name in REGIONS:
        row = f"{name:<10}"
        for c in comparisons:
            r = c.regions.get(name)
            row += f"{r.mean_mm:>9.2f}/{r.mean_signed_mm:<+6.2f}" if r else f"{'—':>16}"
        lines.append(row)
    lines.append("")
    header = f"{'dimension (mm)':<20}"
    header += "".join(f"{c.level + ' gen/ref':>16}" for c in comparisons)
    lines.append(header + f"{'literature L2–L5':>24}")
    for field in (f.name for f in fields(VertebraDimensions)):
        row = f"{field.removesuffix('_mm'):<20}"
        for c in comparisons:
            row += f"{getattr(c.generated, field):>10.1f}/{getattr(c.reference, field):<5.1f}"
        if field in LITERATURE_MM or field == "spinous_length_mm":
            mean, lo, hi = LITERATURE_MM.get(field, SPINOUS_LITERATURE_MM)
            note = "" if field in LITERATURE_MM else " *"
            row += f"{mean:>10.1f} ({lo:.1f}–{hi:.1f}){note}"
        lines.append(row)
    lines.append("* measured from another start point in the literature; compare gen/ref only")
    lines.append("body_width is at mid-height (the waist); body_mean_width over the whole height")
    return "\n".join(lines)


def _default_data_folder() -> Path:
    """``$FLUOROSIM_SHARED_DATA/lumbar-mean-shape``, else ``../shared/data`` beside the checkout."""
    import os

    shared = os.environ.get("FLUOROSIM_SHARED_DATA")
    base = Path(shared) if shared else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "lumbar-mean-shape"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fluorosim.models.yardstick [--seed N] [--data DIR]``: print the comparison table."""
    parser = argparse.ArgumentParser(
        prog="python -m fluorosim.models.yardstick", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seed", type=int, default=0, help="patient seed (default 0)")
    parser.add_argument(
        "--data",
        type=Path,
        default=_default_data_folder(),
        help="folder with meanMesh_vertices.csv.gz and meanMesh_faces.csv.gz",
    )
    args = parser.parse_args(argv)
    if not (args.data / "meanMesh_vertices.csv.gz").is_file():
        print(f"mean-shape data not found in {args.data} (pass --data DIR)", file=sys.stderr)
        return 2
    try:
        from fluorosim.models.phantom import PatientParameters, load_or_build_patient
    except ImportError:
        print("the patient generator (models.phantom) is not available yet", file=sys.stderr)
        return 2
    patient = load_or_build_patient(PatientParameters(seed=args.seed))
    comparisons = compare_patient(patient, args.data)
    print(format_table(comparisons))
    for c in comparisons:
        print(f"{c.level} generated: {asdict(c.generated)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
