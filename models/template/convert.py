"""Build the shipped bone template from the real-anatomy source folder.

Run ``python -m fluorosim.models.template.convert /path/to/shared/data/real-anatomy [--out assets/anatomy]``.

Sources (see the folder's README and assets/anatomy/README.md):

- ``artisynth-lumbosacral/`` (BSD-3, Remus et al. 2021): L1–L5 (``L*_Schrumpfverpacken``), the
  vertebral bodies alone (``L*_body``, ``S1_body``), the sacrum with coccyx
  (``S1_Schrumpfverpacken``, foramina closed) and ``Pelvis`` (both hip bones as one solid). Metres;
  ``+x`` anterior, ``y`` lateral (symmetry plane ``y = 0``), ``+z`` superior.
- ``denver-visible-human/`` (CC BY 4.0, Andreassen et al. 2022): the same man's sacrum and coccyx
  with open foramina (``VHM_Left_Bone_{Sacrum,Coccyx}_smooth``), millimetres, scanner frame.

What is done:

1. the Denver sacrum + coccyx are registered rigidly onto the ArtiSynth sacrum (VTK's iterative
   closest point from four principal-axis starts, the best kept; uniform scale was tried and left
   out: it lowered the RMS by only 3 % and pushed the sacrum ≈1 mm further into both ilia);
2. the pelvis is cut at the mid-sagittal plane ``y = 0`` and each half capped; by shape the
   ``y > 0`` half is a LEFT hip bone when the ArtiSynth frame is read as right-handed (its
   acetabulum faces ``+y``, the ASIS ``+x``, the crest ``+z``: det[A, S, lateral] = −1, the sign of
   a left hip bone), so the rigid map below puts it on the patient's left;
3. every bone is remeshed moderately (Loop subdivision where the source is coarse, Taubin
   smoothing that keeps volume, quadric decimation to the target edge length) and checked
   watertight with the foramina and canal still open (its genus is unchanged);
4. ArtiSynth (x, y, z) m → LPS mm: ``x_L = 1000·y``, ``y_P = −1000·x``, ``z_S = 1000·z`` (a proper
   rotation), then shifted so that the centre of the S1 superior endplate is the origin;
5. template landmarks are computed by the rules of :mod:`models.template.landmarks` and saved.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.template.asset import (
    BODY_NAMES,
    DEFAULT_TEMPLATE_PATH,
    FORMAT_NAME,
    FORMAT_VERSION,
    TriangleMesh,
)

if TYPE_CHECKING:  # imported lazily at run time: only the converter needs pyvista
    import pyvista as pv

#: (N,3) points, mm; (M,3) triangle vertex indices.
Points = NDArray[np.float64]
Faces = NDArray[np.integer[Any]]

ARTISYNTH = "artisynth-lumbosacral"
DENVER = "denver-visible-human"
LUMBAR = ("L1", "L2", "L3", "L4", "L5")

#: ArtiSynth frame (metres, +x anterior, +y the left side, +z superior) → LPS mm, before the
#: origin shift. A proper rotation (det +1) times 1000.
LPS_FROM_ARTISYNTH = np.array(
    [
        [0.0, 1000.0, 0.0, 0.0],
        [-1000.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1000.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)

#: Target median edge length after remeshing, mm (vertebrae and sacrum ≈1.5, hip bones ≈2.5).
EDGE_VERTEBRA_MM = 1.6
EDGE_SACRUM_MM = 1.6
EDGE_HIP_MM = 2.6
#: The small, tightly curved coccyx keeps finer triangles.
EDGE_COCCYX_MM = 1.2

SOURCE_LINE = (
    "Visible Human Male: L1-L5, hip bones and vertebral bodies from the ArtiSynth lumbosacral "
    "model (Remus et al. 2021, BSD-3, RemusR9/artisynth_lumbosacralSpineModel@bb81cb1); sacrum "
    "and coccyx from the University of Denver VHM surfaces (Andreassen et al. 2022, CC BY 4.0, "
    "ingvilddevold/muscle-growth@e299f62); registered, remeshed, LPS mm, origin S1 endplate centre"
)


class ConversionError(RuntimeError):
    """The source folder cannot be converted; the message names the file and the problem."""


@dataclass(frozen=True)
class ConversionResult:
    """Meshes in the template frame plus the numbers the README and the report quote."""

    bones: dict[str, TriangleMesh]
    body_meshes: dict[str, TriangleMesh]
    registration_rms_mm: float
    registration_median_mm: float
    registration_p95_mm: float
    origin_in_lps_before_shift_mm: NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# Reading and mesh utilities (pyvista/VTK are imported lazily: only the converter needs them)
# --------------------------------------------------------------------------------------------


def read_surface(path: Path, scale: float = 1.0) -> pv.PolyData:
    """Read a gzipped OBJ/STL surface as a cleaned triangle PolyData, coordinates × ``scale``."""
    import pyvista as pv

    if not path.is_file():
        raise ConversionError(f"{path}: source surface not found")
    suffix = "." + path.name.removesuffix(".gz").rsplit(".", 1)[-1].lower()
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as error:
        raise ConversionError(f"{path}: not a readable gzip file ({error})") from None
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / f"surface{suffix}"
        plain.write_bytes(data)
        mesh = pv.read(plain)
    mesh = mesh.extract_surface(algorithm=None).triangulate()
    # OBJ files duplicate vertices per face (normals, uv): merge them before anything else.
    mesh = pv.PolyData(np.asarray(mesh.points, dtype=np.float64) * scale, mesh.faces).clean()
    if mesh.n_cells == 0:
        raise ConversionError(f"{path}: no triangles in the surface")
    return mesh


def faces_of(mesh: pv.PolyData) -> NDArray[np.int32]:
    """The (M,3) triangle index array of a triangulated PolyData."""
    return np.asarray(mesh.faces).reshape(-1, 4)[:, 1:].astype(np.int32)


def to_polydata(mesh: TriangleMesh) -> pv.PolyData:
    """A pyvista PolyData of a :class:`TriangleMesh`."""
    import pyvista as pv

    faces = np.hstack([np.full((len(mesh.faces), 1), 3), mesh.faces]).astype(np.int64)
    return pv.PolyData(np.asarray(mesh.vertices_mm, dtype=np.float64), faces.ravel())


def edge_lengths(vertices: Points, faces: Faces) -> NDArray[np.float64]:
    """Length of every undirected edge of a triangle mesh."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    edges = np.unique(edges, axis=0)
    lengths: NDArray[np.float64] = np.linalg.norm(
        vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1
    )
    return lengths


def topology(vertices: Points, faces: Faces) -> tuple[int, int, int]:
    """(edges used by other than two triangles, connected components, genus) of a triangle mesh.

    A closed 2-manifold has 0 bad edges; its genus g follows from V − E + F = 2(C − g).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    bad = int(np.count_nonzero(counts != 2))
    used = np.unique(faces)
    graph = coo_matrix(
        (np.ones(len(unique)), (unique[:, 0], unique[:, 1])), shape=(len(vertices),) * 2
    )
    n_comp, labels = connected_components(graph, directed=False)
    components = len(np.unique(labels[used]))
    euler = len(used) - len(unique) + len(faces)
    genus = (2 * components - euler) // 2
    return bad, components, int(genus)


def signed_volume_mm3(vertices: Points, faces: Faces) -> float:
    """Signed enclosed volume (positive when the triangles face outward)."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def remesh(
    mesh: pv.PolyData,
    target_edge_mm: float,
    subdivide: bool,
    name: str,
    smooth_iterations: int = 30,
) -> pv.PolyData:
    """Smooth, evenly sized, watertight surface of the same shape and topology.

    Loop subdivision (when the source is coarse) and Taubin smoothing (no shrinkage) take out the
    facets; quadric decimation with volume preservation brings the median edge to about
    ``target_edge_mm``. Raises :class:`ConversionError` if the topology changed.
    """
    import pyvista as pv

    before = topology(np.asarray(mesh.points), faces_of(mesh))
    if subdivide:
        mesh = mesh.subdivide(1, subfilter="loop")
    mesh = mesh.smooth_taubin(
        n_iter=smooth_iterations,
        pass_band=0.05,
        boundary_smoothing=False,
        feature_smoothing=False,
        non_manifold_smoothing=False,
        normalize_coordinates=True,
    )
    edge = float(np.median(edge_lengths(np.asarray(mesh.points), faces_of(mesh))))
    reduction = 1.0 - (edge / target_edge_mm) ** 2
    if reduction > 0.02:
        mesh = mesh.decimate(reduction, volume_preservation=True)
        mesh = mesh.smooth_taubin(n_iter=10, pass_band=0.1, normalize_coordinates=True)
    mesh = pv.PolyData(np.asarray(mesh.points, dtype=np.float64), mesh.faces).clean()
    vertices, faces = np.asarray(mesh.points), faces_of(mesh)
    after = topology(vertices, faces)
    if after != before or after[0] != 0:
        raise ConversionError(
            f"{name}: remeshing changed the topology (bad edges, components, genus "
            f"{before} → {after})"
        )
    if signed_volume_mm3(vertices, faces) < 0:
        mesh = pv.PolyData(vertices, np.hstack([np.full((len(faces), 1), 3), faces[:, ::-1]]))
    return mesh


def transform_points(matrix: NDArray[np.float64], points: Points) -> NDArray[np.float64]:
    """Apply a 4x4 affine transform to (N,3) points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:3, :3].T + matrix[:3, 3]


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


def _icp(source_points: Points, target: pv.PolyData, iterations: int) -> NDArray[np.float64]:
    import pyvista as pv
    import vtk

    icp = vtk.vtkIterativeClosestPointTransform()
    icp.SetSource(pv.PolyData(source_points))
    icp.SetTarget(target)
    icp.GetLandmarkTransform().SetModeToRigidBody()
    icp.SetMaximumNumberOfIterations(iterations)
    icp.SetMaximumNumberOfLandmarks(len(source_points))
    icp.StartByMatchingCentroidsOff()
    icp.CheckMeanDistanceOn()
    icp.SetMaximumMeanDistance(1e-5)
    icp.Modified()
    icp.Update()
    matrix = icp.GetMatrix()
    return np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def surface_distances(points: Points, surface: pv.PolyData) -> NDArray[np.float64]:
    """Unsigned distance of each point to a closed surface, mm."""
    import pyvista as pv

    result = pv.PolyData(np.asarray(points, dtype=np.float64)).compute_implicit_distance(surface)
    return np.abs(np.asarray(result["implicit_distance"], dtype=np.float64))


def register_rigid(
    source_points: Points, target: pv.PolyData
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Best rigid ``target_from_source`` by ICP from the four proper principal-axis alignments.

    Returns the 4x4 transform and the distances of the source points to the target afterwards.
    """
    points = np.asarray(source_points, dtype=np.float64)
    coarse, fine = points[::8], points[::2]
    target_points = np.asarray(target.points, dtype=np.float64)

    def axes(cloud: Points) -> tuple[Points, NDArray[np.float64]]:
        centre = cloud.mean(axis=0)
        _, vectors = np.linalg.eigh(np.cov((cloud - centre).T))
        return centre, vectors

    source_centre, source_axes = axes(coarse)
    target_centre, target_axes = axes(target_points)
    best: tuple[float, NDArray[np.float64]] | None = None
    for signs in itertools.product((1.0, -1.0), repeat=3):
        rotation = target_axes @ np.diag(signs) @ source_axes.T
        if np.linalg.det(rotation) < 0:
            continue
        start = np.eye(4)
        start[:3, :3] = rotation
        start[:3, 3] = target_centre - rotation @ source_centre
        matrix = _icp(transform_points(start, coarse), target, iterations=60) @ start
        distances = surface_distances(transform_points(matrix, coarse), target)
        rms = float(np.sqrt(np.mean(distances**2)))
        if best is None or rms < best[0]:
            best = (rms, matrix)
    assert best is not None
    matrix = _icp(transform_points(best[1], fine), target, iterations=100) @ best[1]
    return matrix, surface_distances(transform_points(matrix, source_points), target)


# --------------------------------------------------------------------------------------------
# The conversion
# --------------------------------------------------------------------------------------------


def _mesh_from(poly: pv.PolyData, matrix: NDArray[np.float64]) -> TriangleMesh:
    vertices = transform_points(matrix, np.asarray(poly.points))
    return TriangleMesh(vertices_mm=vertices, faces=faces_of(poly))


def _shift(mesh: TriangleMesh, offset: Points) -> TriangleMesh:
    return TriangleMesh(vertices_mm=mesh.vertices_mm - offset, faces=mesh.faces)


def split_pelvis(pelvis: pv.PolyData) -> tuple[pv.PolyData, pv.PolyData]:
    """Cut the one-solid pelvis at ``y = 0`` and cap each half; returns (y > 0 half, y < 0 half)."""
    halves = []
    for normal in ((0.0, -1.0, 0.0), (0.0, 1.0, 0.0)):
        half = pelvis.clip_closed_surface(normal=normal, origin=(0.0, 0.0, 0.0)).triangulate()
        halves.append(half.clean())
    halves.sort(key=lambda h: -float(np.mean(np.asarray(h.points)[:, 1])))
    return halves[0], halves[1]


def build_meshes(source: Path) -> ConversionResult:
    """Read, register, split, remesh and place every bone in the template frame."""
    from fluorosim.models.template.landmarks import endplate_center

    art, den = source / ARTISYNTH, source / DENVER
    mm = 1000.0
    # Registration: the Denver sacrum + coccyx onto the ArtiSynth sacrum (ArtiSynth frame, mm).
    art_sacrum = read_surface(art / "S1_Schrumpfverpacken.obj.gz", mm)
    den_sacrum = read_surface(den / "VHM_Left_Bone_Sacrum_smooth.stl.gz")
    den_coccyx = read_surface(den / "VHM_Left_Bone_Coccyx_smooth.stl.gz")
    both = np.vstack([np.asarray(den_sacrum.points), np.asarray(den_coccyx.points)])
    art_from_den, distances = register_rigid(both, art_sacrum)

    lps_from_art = LPS_FROM_ARTISYNTH.copy()
    lps_from_art[:3, :3] /= mm  # the ArtiSynth meshes below are already in mm
    lps_from_den = lps_from_art @ art_from_den

    bones_raw: dict[str, tuple[pv.PolyData, NDArray[np.float64]]] = {}
    for level in LUMBAR:
        vertebra = read_surface(art / f"{level}_Schrumpfverpacken.obj.gz", mm)
        bones_raw[level] = (remesh(vertebra, EDGE_VERTEBRA_MM, True, level), lps_from_art)
    bones_raw["sacrum"] = (remesh(den_sacrum, EDGE_SACRUM_MM, False, "sacrum"), lps_from_den)
    bones_raw["coccyx"] = (
        remesh(den_coccyx, EDGE_COCCYX_MM, True, "coccyx"),
        lps_from_den,
    )
    pelvis = read_surface(art / "Pelvis.obj.gz", mm)
    plus_y, minus_y = split_pelvis(pelvis)
    bones_raw["hip_left"] = (remesh(plus_y, EDGE_HIP_MM, True, "hip_left"), lps_from_art)
    bones_raw["hip_right"] = (remesh(minus_y, EDGE_HIP_MM, True, "hip_right"), lps_from_art)
    bones = {name: _mesh_from(poly, matrix) for name, (poly, matrix) in bones_raw.items()}
    bodies = {
        name: _mesh_from(read_surface(art / f"{name}_body.obj.gz", mm), lps_from_art)
        for name in BODY_NAMES
    }
    origin = endplate_center(bodies["S1"], bones["sacrum"], superior=True)[0]
    return ConversionResult(
        bones={name: _shift(mesh, origin) for name, mesh in bones.items()},
        body_meshes={name: _shift(mesh, origin) for name, mesh in bodies.items()},
        registration_rms_mm=float(np.sqrt(np.mean(distances**2))),
        registration_median_mm=float(np.median(distances)),
        registration_p95_mm=float(np.percentile(distances, 95)),
        origin_in_lps_before_shift_mm=origin,
    )


def asset_arrays(
    result: ConversionResult, landmarks: dict[str, NDArray[np.float64]]
) -> dict[str, np.ndarray]:
    """The npz entries of the asset (layout in models/template/asset.py)."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int32),
        "source": np.array(SOURCE_LINE),
    }
    for group, meshes in (("bone", result.bones), ("body", result.body_meshes)):
        for name, mesh in meshes.items():
            arrays[f"{group}/{name}/vertices_mm"] = mesh.vertices_mm.astype(np.float32)
            arrays[f"{group}/{name}/faces"] = mesh.faces.astype(np.int32)
    for name, value in landmarks.items():
        arrays[f"landmark/{name}"] = np.asarray(value, dtype=np.float32)
    return arrays


def write_asset(
    source: Path, out_dir: Path
) -> tuple[Path, ConversionResult, dict[str, NDArray[np.float64]]]:
    """Convert ``source`` and write the npz, the licences and the provenance README."""
    from fluorosim.models.template.landmarks import compute_landmarks

    result = build_meshes(source)
    landmarks = compute_landmarks(result.bones, result.body_meshes)
    out_dir.mkdir(parents=True, exist_ok=True)
    asset_path = out_dir / DEFAULT_TEMPLATE_PATH.name
    np.savez_compressed(asset_path, **asset_arrays(result, landmarks))  # type: ignore[arg-type]
    licence = source / ARTISYNTH / "LICENSE"
    if not licence.is_file():
        raise ConversionError(f"{licence}: the ArtiSynth licence is missing")
    shutil.copyfile(licence, out_dir / "LICENSE-artisynth")
    attribution = source / DENVER / "README.txt"
    if not attribution.is_file():
        raise ConversionError(f"{attribution}: the Denver attribution is missing")
    (out_dir / "LICENSE-denver").write_text(
        DENVER_LICENCE_HEADER + attribution.read_text(encoding="utf-8"), encoding="utf-8"
    )
    (out_dir / "README.md").write_text(provenance_readme(result, asset_path), encoding="utf-8")
    return asset_path, result, landmarks


DENVER_LICENCE_HEADER = """\
The sacrum and coccyx surfaces in vhm_lumbosacral.npz are derived from the University of Denver
Visible Human Male surfaces and are licensed under the Creative Commons Attribution 4.0
International License (CC BY 4.0): https://creativecommons.org/licenses/by/4.0/legalcode

Changes: rigidly registered onto the ArtiSynth sacrum, remeshed (Taubin smoothing, quadric
decimation), converted to LPS millimetres; see README.md in this folder.

The original README.txt of the data set follows.
-------------------------------------------------------------------------------------------------
"""


def provenance_readme(result: ConversionResult, asset_path: Path) -> str:
    """The README.md of assets/anatomy: where the data came from and what was changed."""
    rows = []
    for group, meshes in (("bone", result.bones), ("body", result.body_meshes)):
        for name, mesh in meshes.items():
            edge = float(np.median(edge_lengths(mesh.vertices_mm, mesh.faces)))
            rows.append(
                f"| {group} | {name} | {len(mesh.vertices_mm)} | {len(mesh.faces)} | {edge:.2f} |"
            )
    size_mb = asset_path.stat().st_size / 1e6
    table = "\n".join(rows)
    return f"""# Real-anatomy bone template (`vhm_lumbosacral.npz`, {size_mb:.1f} MB)

The built-in patient's lumbar vertebrae, sacrum, coccyx and hip bones are those of the Visible
Human Male (National Library of Medicine), from two published surface sets of that one cadaver.
Written by `python -m fluorosim.models.template.convert /path/to/real-anatomy`; loaded by
`models.template.asset.load_template()`; layout in `models/template/asset.py`.

## Sources

| bones | data set | licence | where |
|---|---|---|---|
| L1–L5, both hip bones, vertebral bodies alone (L1–L5, S1) | ArtiSynth hybrid lumbosacral spine model: Remus R, Lipphaus A, Neumann M, Bender B. "Calibration and validation of a novel hybrid model of the lumbosacral spine in ArtiSynth – The passive structures." PLoS ONE 2021;16(4):e0250456 | BSD-3-Clause, `LICENSE-artisynth` | github.com/RemusR9/artisynth_lumbosacralSpineModel @ bb81cb1, `hybrid_LSS_model/src/artisynth/models/passiveComponents_PlosOne/geometry/RB/` |
| sacrum, coccyx (open foramina and canal) | University of Denver Visible Human surfaces: Andreassen TE et al. "Three-dimensional lower extremity musculoskeletal geometry of the Visible Human Female and Male." Scientific Data 2022, doi:10.1038/s41597-022-01905-2; dataset doi:10.56902/COB.vh.2022.0 | CC BY 4.0, `LICENSE-denver` | github.com/ingvilddevold/muscle-growth @ e299f62, `data/VHM_surfaces/VHM_Left_Bone_{{Sacrum,Coccyx}}_smooth.stl` |

## What was changed

- **Registration.** The Denver sacrum + coccyx (36.8k + 1.2k vertices, mm, scanner frame) were
  registered rigidly onto the ArtiSynth sacrum (`S1_Schrumpfverpacken`) with VTK's iterative
  closest point from the four proper principal-axis starts (best kept). Distance of the Denver
  vertices to the ArtiSynth surface afterwards: RMS {result.registration_rms_mm:.2f} mm, median
  {result.registration_median_mm:.2f} mm, 95th percentile {result.registration_p95_mm:.2f} mm
  (the rest is mostly the foramina and canal walls, closed in the ArtiSynth surface). A uniform
  scale (1.023) was tried and not used: RMS only 3 % lower and the sacrum ≈1 mm deeper in the ilia.
  The ArtiSynth sacrum itself is not shipped (its foramina are closed).
- **Split.** `Pelvis` (both hip bones fused at the symphysis) was cut at the mid-sagittal plane
  y = 0 and each half capped. With the ArtiSynth frame read as right-handed, the y > 0 half has
  its acetabulum facing +y, the ASIS toward +x (anterior) and the crest toward +z: det[anterior,
  superior, lateral] = −1, the sign of a LEFT hip bone; it is `hip_left`.
- **Remeshing.** Loop subdivision (ArtiSynth vertebrae and hip bones), Taubin smoothing (volume
  kept) and quadric decimation to a median edge of ≈1.5 mm (vertebrae, sacrum) and ≈2.5 mm (hip
  bones); every surface checked closed, manifold, one piece, with its genus (open foramina and
  canal) unchanged. The vertebral-body meshes are kept as they came (flat endplates).
- **Frame.** LPS millimetres (+x patient left, +y posterior, +z superior): x = 1000·y_A,
  y = −1000·x_A, z = 1000·z_A from the ArtiSynth metres (a proper rotation), then shifted so that
  the origin is the centre of the S1 superior endplate. Orientation as the cadaver came (lordosis
  and sacral slope of the VHM); the patient generator warps it.
- **Landmarks.** `landmark/*` entries are computed on these meshes by the geometric rules in
  `models/template/landmarks.py`.

## Contents

| group | name | vertices | triangles | median edge mm |
|---|---|---|---|---|
{table}
"""


def main(argv: list[str] | None = None) -> int:
    """Command line: convert the source folder into assets/anatomy."""
    parser = argparse.ArgumentParser(
        prog="python -m fluorosim.models.template.convert",
        description="Build assets/anatomy/vhm_lumbosacral.npz from the real-anatomy folder.",
    )
    parser.add_argument("source", type=Path, help="the real-anatomy folder (shared data)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_TEMPLATE_PATH.parent, help="output folder"
    )
    args = parser.parse_args(argv)
    try:
        asset_path, result, landmarks = write_asset(args.source, args.out)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"wrote {asset_path} ({asset_path.stat().st_size / 1e6:.2f} MB, "
        f"{len(landmarks)} landmarks); registration RMS {result.registration_rms_mm:.2f} mm"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
