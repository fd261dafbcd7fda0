"""The real skeleton: L1–L5, sacrum with coccyx and both hip bones from the real-anatomy template.

The bones are the Visible Human Male's surfaces (models/template, shipped in assets/anatomy),
placed for the patient by the template warp (models/template/warp.py: a smooth landmark-driven
thin-plate spline to dimensions drawn from the published distributions, per-level placement for
lordosis and sacral slope); when the warp is not available the template is used as scanned.

Each bone is voxelised as a signed distance (models/template/voxelise.py) and given HU by
models/template/bone_density.py: a cortical shell of regional thickness (thin body wall, endplates
with dense ring apophyses, pedicle rings, thin sacral ala, thick sciatic buttress along the arcuate
line — the iliac cortical density —, thin iliac wing) over textured cancellous bone, with
partial-volume edges. The painter mixes each edge voxel with the soft tissue under it.

Labels keep the primitive generator's names: ``L4_body`` (inside the template's body surface),
``L4_pedicle_left/right`` (the narrow bridge behind the body, up to just past the isthmus),
``L4_posterior_elements`` (the rest), ``sacrum``, ``coccyx``, ``ilium_left/right`` (the whole hip
bone), the discs ``disc_X_Y`` between the real endplates inside the bodies' outlines, and
``sij_space_left/right``: a 1.5 mm joint space carved between the real auricular surfaces.

Landmarks: every name the primitive lumbar, sacrum and pelvis parts published, from the bones
themselves (body and endplate centres, pedicle isthmus centres, spinous tips, facet joints, the
SIJ surface) or from the warped template landmarks (sacral foramina, iliac spines, the iliac
cortical density line). Anchors: the lumbar poses other parts read (``layout_anchors`` names) plus
``acetabulum_center_side`` / ``acetabulum_radius_mm_side`` for the femoral heads and a
:class:`~models.phantom.lumbar.LumbarLayout` measured on the real bones for the neural part.

Frame: LPS mm, origin at the S1 superior endplate centre (the template's origin), patient prone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS, SIDES
from fluorosim.models.phantom.lumbar import (
    DISC_HU_ANNULUS,
    DISC_HU_NUCLEUS,
    PEDICLE_ANGLE_DEG,
    DiscDims,
    LevelDims,
    LocalFrame,
    LumbarLayout,
)
from fluorosim.models.phantom.parts import (
    PRIORITY_BONE,
    Anchors,
    Grid,
    Painted,
    PartResult,
    PatientParameters,
)
from fluorosim.models.template import bone_density as bd
from fluorosim.models.template.asset import BoneTemplate, TriangleMesh, load_template
from fluorosim.models.template.landmarks import RayCaster
from fluorosim.models.template.voxelise import MeshVolume, voxelise_mesh
from fluorosim.models.template.warp_geometry import endplate_vertex_centres, vertex_normals

log = logging.getLogger(__name__)

Array = NDArray[np.float32]
Vec = NDArray[np.float64]
#: A triangle surface as arrays: vertices (N,3) LPS mm and faces (M,3).
MeshArrays = tuple[Vec, NDArray[np.int32]]
#: A sub-box of the grid (index slices).
Box = tuple[slice, slice, slice]

#: Discs and joint spaces are painted just under the bone, so the bone's partial-volume edge voxels
#: mix with disc or joint fluid rather than being overwritten by them.
PRIORITY_SOFT_JOINT = PRIORITY_BONE - 2
#: Sacroiliac joint space: two cartilage layers, 1–2 mm wide on CT (approx.); HU of cartilage and
#: synovial fluid (as the primitive pelvis).
SIJ_GAP_MM = 1.5
SIJ_SPACE_HU = 80.0
#: The joint surfaces are where the sacrum and ilium come within this distance of each other.
SIJ_REACH_MM = 4.0
#: Where the real surfaces lie farther apart than the carved gap, the cleft between them up to this
#: width is joint space too (cartilage, synovia and, dorsally, the interosseous ligament; never
#: muscle): the sacroiliac joint space is 1.72 ± 0.57 mm wide on CT, 0.77–4.39 mm (Demir et al.,
#: Kobe J Med Sci 2007, 400 adults).
SIJ_MAX_WIDTH_MM = 4.4
#: Cancellous HU at 50 years by site (anatomy.md: S1 body 280, S2 192, anterior ilium 230–254,
#: sacral ala ≈150 below the ilium); lower sacrum and posterior ilium approx.
S1_BODY_HU = 280.0
S2_BODY_HU = 192.0
ILIUM_HU = 242.0
ALA_HU = ILIUM_HU - 150.0
LOWER_SACRUM_HU = 170.0
POSTERIOR_ILIUM_HU = 210.0
#: Posterior elements are denser than the body's cancellous core (as the primitive lumbar part).
POSTERIOR_ELEMENTS_EXTRA_HU = 120.0
#: Acetabular radius search range (adult acetabulum ≈ 22–29 mm; approx.).
ACETABULUM_RADII_MM = (21.0, 23.0, 25.0, 27.0, 29.0)
#: Bone inside the body's outline up to this far beyond its endplate centres is labelled body:
#: the bone's endplates (and their rims, higher than the centres) lie beyond the body-only surface.
BODY_ENDPLATE_REACH_MM = 6.0
#: A pedicle's label begins this far in front of the body's posterior wall (body-frame v).
PEDICLE_WALL_OVERLAP_MM = 2.0
#: Pedicle: searched from the body's posterior wall back this far for the isthmus (narrowest).
PEDICLE_SEARCH_MM = 11.0
#: Pedicle convergence angles tried for the chord across the pedicle (deg; Zindrick et al. 1987:
#: transverse angle ≈11° at L1 rising to ≈30° at L5) and the rays' reach (mm).
PEDICLE_CHORD_ANGLES_DEG = np.arange(-10.0, 46.0, 2.0)
PEDICLE_RAY_REACH_MM = 45.0
#: The pedicle's medial wall: where the canal is within this of its widest at the pedicle (mm).
PEDICLE_WALL_BAND_MM = 2.0
#: Kambin's triangle lies on the annulus: its surface is measured this far lateral of the
#: triangle's medial side (about the incentre's offset at L4-5, procedures.md: inscribed circle
#: 7.3–8.2 mm).
KAMBIN_SURFACE_INSET_MM = 3.0


@dataclass(frozen=True)
class Mesh:
    """A placed triangle surface (LPS mm)."""

    vertices_mm: Vec
    faces: NDArray[np.int32]


@dataclass
class PlacedSkeleton:
    """The template bones and landmarks placed for one patient (LPS mm)."""

    bones: dict[str, Mesh]
    bodies: dict[str, Mesh]
    landmarks: dict[str, Vec]
    frames: dict[str, LocalFrame] = field(default_factory=dict)
    half_heights_mm: dict[str, float] = field(default_factory=dict)
    endplates: dict[str, tuple[Vec, Vec]] = field(default_factory=dict)
    #: Ray casters on the bones, built when first needed (pedicle measurements).
    casters: dict[str, RayCaster] = field(default_factory=dict, repr=False, compare=False)
    #: Signed-distance functions of the bones (VTK), built when first needed (root clearance).
    distances: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def caster(self, bone: str) -> RayCaster:
        """A ray caster on the bone ``bone`` (built once per placed skeleton)."""
        if bone not in self.casters:
            mesh = self.bones[bone]
            self.casters[bone] = RayCaster(TriangleMesh(mesh.vertices_mm, mesh.faces))
        return self.casters[bone]

    def signed_distance(self, bone: str, points_mm: Vec) -> Vec:
        """Signed distance (mm, negative inside) of LPS points to the bone ``bone``."""
        return self._distance(bone, self.bones[bone], points_mm)

    def body_distance(self, level: str, points_mm: Vec) -> Vec:
        """Signed distance (mm, negative inside) of LPS points to vertebra ``level``'s body."""
        return self._distance(f"{level}_body", self.bodies[level], points_mm)

    def _distance(self, key: str, mesh: Mesh, points_mm: Vec) -> Vec:
        if key not in self.distances:
            import vtk

            from fluorosim.models.template.convert import to_polydata

            implicit = vtk.vtkImplicitPolyDataDistance()
            implicit.SetInput(to_polydata(TriangleMesh(mesh.vertices_mm, mesh.faces)))
            self.distances[key] = implicit
        implicit = self.distances[key]
        return np.array([implicit.EvaluateFunction(*map(float, p)) for p in points_mm])


#: The template loader (a module attribute so a test can hand in another template).
TEMPLATE_LOADER: Callable[[], BoneTemplate] = load_template


def _warp(
    template: BoneTemplate, params: PatientParameters
) -> tuple[dict[str, MeshArrays], dict[str, MeshArrays], dict[str, Vec], tuple[Vec, Vec] | None]:
    """(bones, bodies, landmarks, S1 superior endplate (centre, normal) or None) warped for the
    patient; the template as scanned without a warp."""
    try:  # the warp (models/template/warp.py) is optional until it lands
        from fluorosim.models.template.targets import patient_targets
        from fluorosim.models.template.warp import patient_warp
    except ImportError:
        log.warning(
            "fluorosim.models.template.warp is not available: the template is used as scanned"
        )
        bones = {k: (np.asarray(m.vertices_mm, float), m.faces) for k, m in template.bones.items()}
        bodies = {
            k: (np.asarray(m.vertices_mm, float), m.faces) for k, m in template.body_meshes.items()
        }
        landmarks = {k: np.asarray(v, float) for k, v in template.landmarks.items()}
        return bones, bodies, landmarks, None
    warp = patient_warp(template, patient_targets(params))
    bones = {}
    for name in template.bones:
        mesh = warp.warp_bone(name)
        bones[name] = (np.asarray(mesh.vertices_mm, float), mesh.faces)
    bodies = {}
    for name in template.body_meshes:
        mesh = warp.warp_body(name)
        bodies[name] = (np.asarray(mesh.vertices_mm, float), mesh.faces)
    landmarks = {k: np.asarray(v, float) for k, v in warp.landmarks.items()}
    centre, normal = warp.endplate("S1", "superior")
    return bones, bodies, landmarks, (np.asarray(centre, float), np.asarray(normal, float))


def body_frame(body: Mesh) -> tuple[LocalFrame, Vec, Vec]:
    """(frame at the midpoint of the endplate centres, superior, inferior endplate centre).

    The axis is the body's thinnest principal direction, refined to run from the inferior to the
    superior endplate centre (each the mean of the vertices facing along the axis).
    """
    superior, inferior = endplate_vertex_centres(body.vertices_mm, body.faces)
    axis = (superior - inferior) / np.linalg.norm(superior - inferior)
    centre = 0.5 * (superior + inferior)
    posterior = np.array([0.0, 1.0, 0.0]) - axis[1] * axis
    posterior /= np.linalg.norm(posterior)
    left = np.cross(posterior, axis)
    return LocalFrame(centre, left, posterior, axis), superior, inferior


def s1_frame_from_endplate(
    body: Mesh, endplate: tuple[Vec, Vec] | None
) -> tuple[LocalFrame, Vec, Vec]:
    """(frame, superior endplate centre, a point below it) of the S1 body.

    The template's S1 body is cut off below (no inferior endplate): the frame stands on the
    superior endplate the warp placed (centre and normal), else on the template's origin with
    the normal of the body's up-facing vertices; its origin is the body's centroid height.
    """
    v = body.vertices_mm
    if endplate is not None:
        superior, axis = endplate[0], endplate[1] / np.linalg.norm(endplate[1])
    else:
        normals = vertex_normals(v, body.faces)
        near = np.linalg.norm(v, axis=1) < 15.0
        up = near & (normals[:, 2] > 0.5)
        axis = normals[up].mean(axis=0) if up.any() else np.array([0.0, 0.0, 1.0])
        axis /= np.linalg.norm(axis)
        superior = np.zeros(3)
    depth = float((superior - v.mean(axis=0)) @ axis)
    origin = superior - axis * depth
    posterior = np.array([0.0, 1.0, 0.0]) - axis[1] * axis
    posterior /= np.linalg.norm(posterior)
    frame = LocalFrame(origin, np.cross(posterior, axis), posterior, axis)
    return frame, np.asarray(superior, float), 2.0 * origin - superior


def radial_outline(body: Mesh, frame: LocalFrame, bins: int = 48) -> tuple[Vec, Vec]:
    """(bin angles, largest distance from the axis per bin) of a body in its frame."""
    rel = body.vertices_mm - frame.origin
    u, v = rel @ frame.eu, rel @ frame.ev
    theta = np.arctan2(v, u)
    radius = np.hypot(u, v)
    edges = np.linspace(-math.pi, math.pi, bins + 1)
    which = np.clip(np.digitize(theta, edges) - 1, 0, bins - 1)
    outline = np.zeros(bins)
    np.maximum.at(outline, which, radius)
    outline = np.where(outline > 0, outline, np.median(outline[outline > 0]))
    return 0.5 * (edges[1:] + edges[:-1]), outline


def outline_radius(theta: Array, angles: Vec, outline: Vec) -> Array:
    """The body outline's radius at polar angles ``theta`` (periodic interpolation)."""
    return np.interp(theta, angles, outline, period=2 * math.pi).astype(np.float32)


@lru_cache(maxsize=4)
def placed_skeleton(params: PatientParameters) -> PlacedSkeleton:
    """The template placed for ``params`` with its per-level body frames (cached)."""
    bones, bodies, landmarks, s1_endplate = _warp(TEMPLATE_LOADER(), params)
    skeleton = PlacedSkeleton(
        bones={k: Mesh(v, np.asarray(f, np.int32)) for k, (v, f) in bones.items()},
        bodies={k: Mesh(v, np.asarray(f, np.int32)) for k, (v, f) in bodies.items()},
        landmarks=landmarks,
    )
    for name in (*LUMBAR_LEVELS, "S1"):
        if name == "S1":
            frame, superior, inferior = s1_frame_from_endplate(skeleton.bodies[name], s1_endplate)
        else:
            frame, superior, inferior = body_frame(skeleton.bodies[name])
        skeleton.frames[name] = frame
        skeleton.endplates[name] = (superior, inferior)
        skeleton.half_heights_mm[name] = float(np.linalg.norm(superior - inferior) / 2)
    return skeleton


# --- geometry of the placed bones ---------------------------------------------------------------


def _local(frame: LocalFrame, points: Vec) -> Vec:
    rel = np.asarray(points) - frame.origin
    return np.stack([rel @ frame.eu, rel @ frame.ev, rel @ frame.ew], axis=-1)


def facet_joints(skeleton: PlacedSkeleton) -> dict[str, tuple[Vec, Vec]]:
    """Facet joint centre and unit normal (toward the lower vertebra's SAP) per ``X_Y_side``.

    The joint is where the upper vertebra's inferior articular process comes within 4 mm of the
    lower bone behind the canal: the centre is the midpoint of the closest vertex pairs, the
    normal runs from the upper to the lower articular surface.
    """
    joints: dict[str, tuple[Vec, Vec]] = {}
    for upper, lower in DISC_LEVELS:
        lower_bone = skeleton.bones["sacrum" if lower == "S1" else lower].vertices_mm
        upper_bone = skeleton.bones[upper].vertices_mm
        frame = skeleton.frames[upper]
        local = _local(frame, upper_bone)
        tree = cKDTree(lower_bone)
        distance, nearest = tree.query(upper_bone, k=1)
        for side in SIDES:
            sign = 1.0 if side == "left" else -1.0
            pick = (distance < 4.0) & (sign * local[:, 0] > 5.0) & (local[:, 1] > 20.0)
            if pick.sum() < 3:
                pick = (sign * local[:, 0] > 5.0) & (local[:, 1] > 20.0)
                order = np.argsort(np.where(pick, distance, np.inf))[:20]
                pick = np.zeros(len(upper_bone), bool)
                pick[order] = True
            a, b = upper_bone[pick], lower_bone[nearest[pick]]
            centre = 0.5 * (a.mean(axis=0) + b.mean(axis=0))
            normal = (b - a).mean(axis=0)
            if np.linalg.norm(normal) < 1e-6:
                normal = frame.vector(sign * 0.7, -0.7, 0.0)
            joints[f"{upper}_{lower}_{side}"] = (centre, normal / np.linalg.norm(normal))
    return joints


def acetabulum(hip: Mesh, side: str, s1_height_mm: float) -> tuple[Vec, float]:
    """(centre, radius) of the acetabulum: the concave sphere the hip bone's surface votes for.

    Each vertex below the sacral promontory votes for the point one radius out along its
    normal (Hough transform over ACETABULUM_RADII_MM); the strongest 2 mm cell is refined by a
    least-squares sphere fit to the vertices near it.
    """
    v, n = hip.vertices_mm, vertex_normals(hip.vertices_mm, hip.faces)
    lateral = np.abs(v[:, 0]) > 40.0
    low = v[:, 2] < s1_height_mm - 40.0
    candidates = lateral & low
    best: tuple[int, Vec | None, float | None] = (-1, None, None)
    for radius in ACETABULUM_RADII_MM:
        votes = v[candidates] + n[candidates] * radius  # the socket lies outside the bone
        cells = np.round(votes / 2.0).astype(np.int64)
        keys, counts = np.unique(cells, axis=0, return_counts=True)
        smooth: dict[tuple[int, ...], int] = {}
        for key, count in zip(map(tuple, keys), counts, strict=True):
            smooth[key] = int(count)
        top = int(np.argmax(counts))
        score = sum(
            smooth.get((keys[top][0] + i, keys[top][1] + j, keys[top][2] + k), 0)
            for i in (-1, 0, 1)
            for j in (-1, 0, 1)
            for k in (-1, 0, 1)
        )
        if score > best[0]:
            best = (score, keys[top] * 2.0, radius)
    if best[1] is None or best[2] is None:
        raise ValueError("no acetabulum candidates on the hip bone")
    centre, radius = np.asarray(best[1], float), float(best[2])
    for _ in range(3):
        d = np.linalg.norm(v - centre, axis=1)
        facing = np.einsum("ij,ij->i", -(v - centre) / d[:, None], n) > 0.5
        near = (np.abs(d - radius) < 4.0) & facing
        if near.sum() < 10:
            break
        p = v[near]
        # algebraic sphere fit: |p|² = 2 c·p + (r² − |c|²)
        a = np.column_stack([2 * p, np.ones(len(p))])
        solution, *_ = np.linalg.lstsq(a, (p * p).sum(axis=1), rcond=None)
        centre = solution[:3]
        radius = float(math.sqrt(max(solution[3] + centre @ centre, 1.0)))
    del side
    return centre, radius


@dataclass(frozen=True)
class PedicleGeometry:
    """A pedicle's isthmus in its vertebra's body frame (mm): centre (u, v, w), width, height and
    the distance of its medial wall from the midline (the canal's half-width at the pedicle)."""

    centre_local: Vec
    width_mm: float
    height_mm: float
    medial_wall_u_mm: float = 0.0


def posterior_wall_v(skeleton: PlacedSkeleton, level: str) -> float:
    """Body-frame v of the body's posterior wall (its back surface beside the midline)."""
    frame = skeleton.frames[level]
    local = _local(frame, skeleton.bodies[level].vertices_mm)
    half_h = skeleton.half_heights_mm[level]
    near_mid = np.abs(local[:, 2]) < half_h * 0.6
    return float(np.percentile(local[near_mid, 1], 97))


def pedicle_label_start_v(wall_v: float, pedicle: PedicleGeometry) -> float:
    """Body-frame v where a pedicle's label begins: in front of the body's posterior wall, or in
    front of the pedicle's centre where that lies at the wall (L5's splayed pedicles), so the
    centre landmark always lies on its pedicle."""
    return min(wall_v, float(pedicle.centre_local[1])) - PEDICLE_WALL_OVERLAP_MM


def in_pedicle_label_region(
    u: NDArray[np.floating[Any]],
    v: NDArray[np.floating[Any]],
    w: NDArray[np.floating[Any]],
    pedicle: PedicleGeometry,
    start_v: float,
) -> NDArray[np.bool_]:
    """Body-frame points where bone (not the body's) is labelled this pedicle: from ``start_v``
    to 3 mm behind the isthmus centre, within 3 mm beyond its half-width and half-height."""
    u_c, v_c, w_c = (float(x) for x in pedicle.centre_local)
    reach_u = pedicle.width_mm / 2 + 3.0
    reach_w = pedicle.height_mm / 2 + 3.0
    inside: NDArray[np.bool_] = (
        (v >= start_v)
        & (v <= v_c + 3.0)
        & (((u - u_c) / reach_u) ** 2 + ((w - w_c) / reach_w) ** 2 <= 1)
    )
    return inside


def pedicle_surface_points(skeleton: PlacedSkeleton, level: str, side: str) -> Vec:
    """LPS points (about 1 mm apart) on the bone's surface where it is labelled the pedicle
    (:func:`in_pedicle_label_region`, not within 0.7 mm of the body's surface, as
    :func:`_vertebra_pieces` labels it): what an exiting root must clear."""
    bone, frame = skeleton.bones[level], skeleton.frames[level]
    corners = bone.vertices_mm[bone.faces]
    # each triangle sampled at its corners, edge thirds and centre (its edges are 1.4 mm, median)
    weights = (
        np.array([(a, b, 3 - a - b) for a in range(4) for b in range(4 - a)], dtype=np.float64)
        / 3.0
    )
    points = np.einsum("kc,fcx->fkx", weights, corners).reshape(-1, 3)
    points = np.unique(np.round(points, 3), axis=0)
    local = _local(frame, points)
    pedicle = pedicle_geometry(skeleton, level, side)
    start = pedicle_label_start_v(posterior_wall_v(skeleton, level), pedicle)
    region = in_pedicle_label_region(local[:, 0], local[:, 1], local[:, 2], pedicle, start)
    points = points[region]
    if len(points) == 0:
        return points
    off_body = skeleton.body_distance(level, points) >= 0.7
    result: Vec = points[off_body]
    return result


def _first_hit_mm(caster: RayCaster, frame: LocalFrame, start: Vec, direction: Vec) -> float | None:
    """Distance (mm) from ``start`` to the first surface crossing along ``direction`` (both in
    body-frame coordinates), or None within the search reach."""
    origin = frame.point(*start)
    heading = frame.vector(*direction)
    hits = caster.hits(origin, origin + heading * PEDICLE_RAY_REACH_MM)
    return float(np.linalg.norm(hits[0] - origin)) if len(hits) else None


def pedicle_geometry(skeleton: PlacedSkeleton, level: str, side: str) -> PedicleGeometry:
    """The pedicle isthmus measured on the bone surface, in the axial plane at its mid-height.

    The pedicle is the bridge between the body and the posterior elements: from the canal's
    midline a ray outward meets its medial wall (cortex facing the canal); from that wall the
    chord across the pedicle perpendicular to its axis (the shortest over convergence angles, so
    the transverse process behind it is not counted) is the transverse width (Zindrick et al.
    1987 measure the isthmus perpendicular to the pedicle axis); the narrowest such chord along
    the canal wall is the isthmus. Height: the shortest vertical chord from there back. The
    canal's half-width is the widest medial-wall distance (the wall is concave toward the canal).
    Starts from the template's pedicle centre; the mid-height is refined twice.
    """
    frame = skeleton.frames[level]
    half_h = skeleton.half_heights_mm[level]
    wall = posterior_wall_v(skeleton, level)
    sign = 1.0 if side == "left" else -1.0
    fallback = PedicleGeometry(np.array([sign * 18.0, wall + 6.0, half_h * 0.3]), 9.0, 14.0, 9.0)
    seed_name = f"{level}_pedicle_center_{side}"
    if seed_name in skeleton.landmarks:
        seed = _local(frame, skeleton.landmarks[seed_name])
    else:
        seed = fallback.centre_local
    caster = skeleton.caster(level)
    angles = np.radians(PEDICLE_CHORD_ANGLES_DEG)
    w_mid = float(seed[2])
    best: PedicleGeometry | None = None
    for _ in range(2):
        walls: list[tuple[float, float]] = []
        for v in np.arange(wall, wall + PEDICLE_SEARCH_MM, 0.5):
            reach = _first_hit_mm(caster, frame, np.array([0.0, v, w_mid]), np.array([sign, 0, 0]))
            # the medial wall lies between the midline and the pedicle's centre
            if reach is not None and 3.0 < reach < abs(float(seed[0])):
                walls.append((float(v), reach))
        if not walls:
            return best or fallback
        canal_half = max(reach for _, reach in walls)
        isthmus: tuple[float, Vec] | None = None
        # the pedicle's own wall: the concave stretch of the canal wall (not the body's corner in
        # front of it nor the lamina behind it, where the wall turns toward the midline)
        for v, reach in walls:
            if reach < canal_half - PEDICLE_WALL_BAND_MM:
                continue
            medial = np.array([sign * reach, v, w_mid])
            for angle in angles:
                across = np.array([sign * math.cos(angle), -math.sin(angle), 0.0])
                exit_mm = _first_hit_mm(caster, frame, medial + 0.3 * across, across)
                if exit_mm is None or exit_mm < 2.0:
                    continue
                chord = exit_mm + 0.3
                if isthmus is None or chord < isthmus[0]:
                    isthmus = (chord, medial + 0.5 * chord * across)
        if isthmus is None:
            return best or fallback
        width, centre = isthmus
        # height: the shortest vertical chord along the pedicle from the isthmus centre back
        # (the chord at the centre itself can still run through the body's corner)
        tallest: tuple[float, Vec] | None = None
        for back in np.arange(0.0, 6.5, 1.0):
            point = centre + np.array([0.0, back, 0.0])
            up = _first_hit_mm(caster, frame, point, np.array([0.0, 0.0, 1.0]))
            down = _first_hit_mm(caster, frame, point, np.array([0.0, 0.0, -1.0]))
            if up is not None and down is not None and (tallest is None or up + down < tallest[0]):
                tallest = (up + down, np.array([0.0, 0.0, 0.5 * (up - down)]))
        if tallest is None:
            return best or PedicleGeometry(centre, width, fallback.height_mm, canal_half)
        centre = centre + tallest[1]
        best = PedicleGeometry(centre, width, tallest[0], canal_half)
        w_mid = float(centre[2])
    assert best is not None
    return best


class RealLevelDims(LevelDims):
    """LevelDims whose pedicle centre is the measured one (not derived from the canal width)."""

    def __init__(self, pedicle_u_mm: float, pedicle_w_mm: float, **dims: float) -> None:
        super().__init__(**dims)
        object.__setattr__(self, "_pedicle_u_mm", pedicle_u_mm)
        object.__setattr__(self, "_pedicle_w_mm", pedicle_w_mm)

    @property
    def pedicle_center_u_mm(self) -> float:
        return float(self._pedicle_u_mm)  # type: ignore[attr-defined]

    @property
    def pedicle_center_w_mm(self) -> float:
        return float(self._pedicle_w_mm)  # type: ignore[attr-defined]


def _disc_back_surface(
    skeleton: PlacedSkeleton, upper: str, lower: str, frame: LocalFrame, u_mm: float
) -> list[Vec]:
    """The disc's posterior surface ``u_mm`` either side of the midline (world points, mid-disc):
    where the line u = ±u_mm leaves the disc's outline (the smaller of the two bodies' outlines
    plus 0.5 mm, as :func:`_disc_piece` paints it)."""
    a_up, r_up = radial_outline(skeleton.bodies[upper], frame)
    a_low, r_low = radial_outline(skeleton.bodies[lower], frame)
    points = []
    v = np.arange(0.0, 45.0, 0.1)
    for sign in (1.0, -1.0):
        u = np.full_like(v, sign * u_mm)
        theta = np.arctan2(v, u)
        outline = np.minimum(outline_radius(theta, a_up, r_up), outline_radius(theta, a_low, r_low))
        inside = np.hypot(u, v) <= outline + 0.5
        back = float(v[inside].max()) if inside.any() else 0.0
        points.append(frame.point(sign * u_mm, back, 0.0))
    return points


def _facet_angle_deg(normal: Vec, frame: LocalFrame) -> float:
    """Facet joint angle to the sagittal plane from its normal (u, v components)."""
    return math.degrees(math.atan2(abs(float(normal @ frame.ev)), abs(float(normal @ frame.eu))))


def real_lumbar_layout(skeleton: PlacedSkeleton) -> LumbarLayout:
    """A :class:`LumbarLayout` measured on the placed real bones (for the neural part).

    Body frames and heights from the body surfaces, depth = twice the posterior wall's distance
    from the body centre (so the canal starts at the real wall), width from the outline, pedicle
    isthmus centre, width and height from the surface (:func:`pedicle_geometry`), canal width
    between the pedicles' medial walls (not the body's back wall beside them), canal depth from
    the wall to the lamina in the midline, discs from the endplates.
    """
    levels: dict[str, LevelDims] = {}
    for n, level in enumerate(LUMBAR_LEVELS):
        frame = skeleton.frames[level]
        angles, outline = radial_outline(skeleton.bodies[level], frame)
        wall = posterior_wall_v(skeleton, level)
        pedicles = {side: pedicle_geometry(skeleton, level, side) for side in SIDES}
        u_c = 0.5 * (abs(pedicles["left"].centre_local[0]) + abs(pedicles["right"].centre_local[0]))
        canal_half = 0.5 * (pedicles["left"].medial_wall_u_mm + pedicles["right"].medial_wall_u_mm)
        width = 0.5 * (pedicles["left"].width_mm + pedicles["right"].width_mm)
        height = 0.5 * (pedicles["left"].height_mm + pedicles["right"].height_mm)
        v_c = 0.5 * (pedicles["left"].centre_local[1] + pedicles["right"].centre_local[1])
        w_c = 0.5 * (pedicles["left"].centre_local[2] + pedicles["right"].centre_local[2])
        local = _local(frame, skeleton.bones[level].vertices_mm)
        behind = (np.abs(local[:, 0]) < 4.0) & (local[:, 1] > wall + 6.0)
        behind &= np.abs(local[:, 2] - w_c) < 10.0
        lamina_v = float(local[behind, 1].min()) if behind.any() else wall + 16.0
        tip = local[np.abs(local[:, 0]) < 6.0, 1].max()
        tp_span = float(np.abs(local[:, 0]).max())
        levels[level] = RealLevelDims(
            pedicle_u_mm=u_c,
            pedicle_w_mm=w_c,
            body_width_mm=float(
                np.interp(0.0, angles, outline)
                + np.interp(math.pi, angles, outline, period=2 * math.pi)
            ),
            body_depth_mm=2.0 * wall,
            body_height_mm=2.0 * skeleton.half_heights_mm[level],
            body_wedge_deg=0.0,
            pedicle_width_mm=width,
            pedicle_height_mm=height,
            pedicle_angle_deg=PEDICLE_ANGLE_DEG[n],
            pedicle_length_mm=max(4.0, 2.0 * (v_c - wall)),
            canal_width_mm=max(10.0, 2.0 * canal_half),
            canal_depth_mm=max(8.0, lamina_v - wall),
            spinous_length_mm=float(tip - wall),
            spinous_height_mm=20.0,
            transverse_half_span_mm=tp_span,
        )
    discs: dict[str, DiscDims] = {}
    disc_frames: dict[str, LocalFrame] = {}
    facets = facet_joints(skeleton)
    s1 = skeleton.frames["S1"]
    s1_frame = LocalFrame(skeleton.endplates["S1"][0].copy(), s1.eu, s1.ev, s1.ew)
    for upper, lower in DISC_LEVELS:
        top = skeleton.endplates[upper][1]
        bottom = skeleton.endplates[lower][0]
        axis = (top - bottom) / np.linalg.norm(top - bottom)
        up_frame, low_frame = skeleton.frames[upper], skeleton.frames[lower]
        posterior = up_frame.ev - (up_frame.ev @ axis) * axis
        posterior /= np.linalg.norm(posterior)
        disc_frames[f"{upper}_{lower}"] = LocalFrame(
            0.5 * (top + bottom), np.cross(posterior, axis), posterior, axis
        )
        wedge = math.degrees(math.acos(float(np.clip(up_frame.ew @ low_frame.ew, -1, 1))))
        normal = facets[f"{upper}_{lower}_left"][1]
        disc_frame = disc_frames[f"{upper}_{lower}"]
        below = levels[lower] if lower in levels else levels["L5"]
        # the triangle's medial side is 1 mm inside the narrower canal (models/phantom/neural.py)
        kambin_u = min(levels[upper].canal_width_mm, below.canal_width_mm) / 2 - 1.0
        kambin_u += KAMBIN_SURFACE_INSET_MM
        surface = _disc_back_surface(skeleton, upper, lower, disc_frame, kambin_u)
        # below L5 kambin_v is measured in the layout's s1_frame, as neural.py reads it
        lower_frame = s1_frame if lower == "S1" else skeleton.frames[lower]
        discs[f"{upper}_{lower}"] = DiscDims(
            kambin_v_mm=float(np.mean([_local(lower_frame, p)[1] for p in surface])),
            mid_height_mm=float(np.linalg.norm(top - bottom)),
            wedge_deg=wedge,
            depth_mm=0.5
            * (levels[upper].body_depth_mm + levels.get(lower, levels["L5"]).body_depth_mm),
            facet_angle_deg=_facet_angle_deg(normal, up_frame),
        )
    return LumbarLayout(
        levels=levels,
        discs=discs,
        body_frames={lv: skeleton.frames[lv] for lv in LUMBAR_LEVELS},
        disc_frames=disc_frames,
        facets=facets,
        s1_frame=s1_frame,
        bone_distance=skeleton.signed_distance,
        pedicle_distance=_pedicle_distance(skeleton),
    )


def _pedicle_distance(
    skeleton: PlacedSkeleton,
) -> Callable[[str, str, Vec], Vec]:
    """(level, side, LPS points) → distance (mm) to that pedicle's labelled bone surface
    (:func:`pedicle_surface_points`; each pedicle's points found when first asked for)."""
    trees: dict[tuple[str, str], cKDTree | None] = {}

    def distance(level: str, side: str, points_mm: Vec) -> Vec:
        if (level, side) not in trees:
            surface = pedicle_surface_points(skeleton, level, side)
            trees[level, side] = cKDTree(surface) if len(surface) else None
        tree = trees[level, side]
        points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
        if tree is None:
            return np.full(len(points), np.inf)
        found: Vec = tree.query(points)[0]
        return found

    return distance


def real_anchors(skeleton: PlacedSkeleton) -> dict[str, Vec]:
    """The poses other parts read: the ``layout_anchors`` names plus acetabula and extents."""
    extra: dict[str, Vec] = {}
    for level in LUMBAR_LEVELS:
        frame = skeleton.frames[level]
        superior, inferior = skeleton.endplates[level]
        extra[f"{level}_body_center"] = frame.origin.copy()
        extra[f"{level}_superior_endplate_center"] = superior.copy()
        extra[f"{level}_inferior_endplate_center"] = inferior.copy()
        extra[f"{level}_axis"] = frame.ew.copy()
    for name, (centre, normal) in facet_joints(skeleton).items():
        extra[f"facet_{name}_center"] = centre.copy()
        extra[f"facet_{name}_normal"] = normal.copy()
    s1_top = skeleton.endplates["S1"][0]
    for side in SIDES:
        centre, radius = acetabulum(skeleton.bones[f"hip_{side}"], side, float(s1_top[2]))
        extra[f"acetabulum_center_{side}"] = centre
        extra[f"acetabulum_radius_mm_{side}"] = np.array(radius)
    return extra


def skeleton_extent(skeleton: PlacedSkeleton) -> tuple[float, float]:
    """(top of L1's superior endplate, most posterior point of the lumbar spinous processes, the
    sacral dorsum and the coccyx) in LPS mm: the grid's reach (the body's back skin lies behind
    all of them)."""
    top = max(float(skeleton.endplates[lv][0][2]) for lv in LUMBAR_LEVELS)
    spinous = max(
        float(skeleton.bones[name].vertices_mm[:, 1].max())
        for name in (*LUMBAR_LEVELS, "sacrum", "coccyx")
    )
    return top, spinous


def front_spinous_y(skeleton: PlacedSkeleton) -> float:
    """LPS y of the most anterior lumbar spinous tip (the lordotic upper lumbar spine's): where
    the back comes farthest forward, and so the belly in front of it (the grid's front)."""
    return min(float(skeleton.landmarks[f"{lv}_spinous_tip"][1]) for lv in LUMBAR_LEVELS)


def s1_normal(skeleton: PlacedSkeleton) -> Vec:
    """Unit normal of the S1 superior endplate (superior)."""
    return skeleton.frames["S1"].ew.copy()


# --- painting -----------------------------------------------------------------------------------


def _world(grid: Grid, box: Box) -> tuple[Array, Array, Array]:
    x, y, z = grid.coordinates(box)
    return x.astype(np.float32), y.astype(np.float32), z.astype(np.float32)


def _frame_coordinates(
    frame: LocalFrame, world: tuple[Array, Array, Array]
) -> tuple[Array, Array, Array]:
    u, v, w = frame.to_local(*world)
    shape = np.broadcast_shapes(u.shape, v.shape, w.shape)
    return tuple(np.broadcast_to(a, shape) for a in (u, v, w))  # type: ignore[return-value]


def _sub(volume: MeshVolume, box: Box) -> Box:
    """Index slices of ``box`` within the volume's own box (box ⊂ volume.box)."""
    return tuple(
        slice(b.start - a.start, b.stop - a.start) for a, b in zip(volume.box, box, strict=True)
    )  # type: ignore[return-value]


def _vertebra_pieces(
    grid: Grid,
    params: PatientParameters,
    skeleton: PlacedSkeleton,
    level: str,
    rng: np.random.Generator,
    landmarks: dict[str, Vec],
) -> list[Painted]:
    """Body, pedicles and posterior elements of one vertebra; adds its landmarks to ``landmarks``."""
    bone = skeleton.bones[level]
    volume = voxelise_mesh(
        grid, bone.vertices_mm, bone.faces, inner_band_mm=bd.VERTEBRA_DEEPEST_CORTEX_MM
    )
    if volume is None:
        return []
    body = voxelise_mesh(
        grid, skeleton.bodies[level].vertices_mm, skeleton.bodies[level].faces, box=volume.box
    )
    assert body is not None
    frame = skeleton.frames[level]
    world = _world(grid, volume.box)
    u, v, w = _frame_coordinates(frame, world)
    occ = volume.occupancy
    half_h = skeleton.half_heights_mm[level]
    # body radius relative to its outline, for the ring apophysis and the endplates' reach
    angles, outline = radial_outline(skeleton.bodies[level], frame)
    theta = np.arctan2(v, u)
    relative = np.hypot(u, v) / np.maximum(outline_radius(theta, angles, outline), 1.0)
    # posterior wall of the body (at the pedicles' distance from the midline)
    wall_v = posterior_wall_v(skeleton, level)
    pedicles = {side: pedicle_geometry(skeleton, level, side) for side in SIDES}
    pedicle_start_v = {side: pedicle_label_start_v(wall_v, p) for side, p in pedicles.items()}
    # the pedicles' labels reach this far toward the midline
    medial_u = min(abs(p.centre_local[0]) - p.width_mm / 2 - 3.0 for p in pedicles.values())
    # the body: inside its own surface (with the partial volume of its walls), and the bone's
    # endplates, which lie up to 1.9 mm beyond the body-only surface (the warp gives the whole
    # bone its target height; models.template.warp); not where the pedicles begin
    endplate_reach = (
        (relative <= 1.0)
        & (np.abs(w) <= half_h + BODY_ENDPLATE_REACH_MM)
        & ((v < min(pedicle_start_v.values())) | (np.abs(u) < medial_u))
    )
    in_body_label = (body.distance_mm < 0.7) | endplate_reach
    bone_voxel = occ >= 0.5
    pedicle_masks: dict[str, NDArray[np.bool_]] = {}
    pedicle_weight: dict[str, Array] = {}
    not_body = bone_voxel & ~in_body_label
    for side, pedicle in pedicles.items():
        centre_local = pedicle.centre_local
        landmarks[f"{level}_pedicle_center_{side}"] = frame.point(*centre_local)
        region = not_body & in_pedicle_label_region(u, v, w, pedicle, pedicle_start_v[side])
        pedicle_masks[side] = region
        pedicle_weight[side] = ndimage.gaussian_filter(region.astype(np.float32), 1.0)
    in_body = np.clip(0.5 - body.distance_mm / 2.0, 0.0, 1.0).astype(np.float32)
    normals = bd.surface_normals(volume)
    cortex = bd.vertebra_cortex_mm(
        world, normals, in_body, pedicle_weight, frame.origin, frame.ew, half_h, relative
    )
    body_hu = bd.cancellous_hu(params.age_years)
    cancellous = body_hu + POSTERIOR_ELEMENTS_EXTRA_HU * (1.0 - in_body)
    texture = bd.trabecular_texture(rng, occ.shape, grid.voxel_mm, frame.ew)
    hu, _ = bd.bone_hu(
        volume, cortex, cancellous, bd.cortical_material_hu(params.age_years), texture
    )
    pieces = []
    present = occ > 1e-3
    body_mask = present & in_body_label
    pedicle_any = np.zeros_like(present)
    for side, region in pedicle_masks.items():
        mask = present & region & ~body_mask & ~pedicle_any
        pedicle_any |= mask
        pieces.append(
            Painted(f"{level}_pedicle_{side}", volume.box, mask, hu, PRIORITY_BONE, fraction=occ)
        )
    posterior = present & ~body_mask & ~pedicle_any
    pieces.append(Painted(f"{level}_body", volume.box, body_mask, hu, PRIORITY_BONE, fraction=occ))
    pieces.append(
        Painted(
            f"{level}_posterior_elements", volume.box, posterior, hu, PRIORITY_BONE, fraction=occ
        )
    )
    # landmarks measured on the bone
    superior, inferior = skeleton.endplates[level]
    landmarks[f"{level}_body_center"] = frame.origin.copy()
    landmarks[f"{level}_superior_endplate_center"] = superior.copy()
    landmarks[f"{level}_inferior_endplate_center"] = inferior.copy()
    local_bone = _local(frame, bone.vertices_mm)
    midline = np.abs(local_bone[:, 0]) < 6.0
    tip = bone.vertices_mm[midline][np.argmax(local_bone[midline, 1])]
    landmarks[f"{level}_spinous_tip"] = tip.copy()
    return pieces


def _sacrum_hu(
    grid: Grid,
    params: PatientParameters,
    skeleton: PlacedSkeleton,
    volume: MeshVolume,
    rng: np.random.Generator,
) -> tuple[Array, Array]:
    world = _world(grid, volume.box)
    frame = skeleton.frames["S1"]
    u, v, w = _frame_coordinates(frame, world)
    s1_body = voxelise_mesh(
        grid, skeleton.bodies["S1"].vertices_mm, skeleton.bodies["S1"].faces, box=volume.box
    )
    assert s1_body is not None
    in_s1 = np.clip(0.5 - s1_body.distance_mm / 3.0, 0.0, 1.0).astype(np.float32)
    age = params.age_years
    # down the sacrum: S1 body → S2 body → lower sacrum; laterally the ala (thin, light)
    below = np.clip(-w / 30.0, 0.0, 1.0)
    lower = np.clip((-w - 30.0) / 25.0, 0.0, 1.0)
    midline = S2_BODY_HU + (LOWER_SACRUM_HU - S2_BODY_HU) * lower
    ala = bd._smoothstep(np.abs(u), 18.0, 30.0) * (1.0 - bd._smoothstep(-w, 35.0, 55.0))
    base = midline + (ALA_HU - midline) * ala
    base = base + (S1_BODY_HU - base) * in_s1 * (1.0 - below)
    cancellous = base * np.float32(bd.site_cancellous_hu(1.0, age))
    normals = bd.surface_normals(volume)
    nx, ny, nz = normals
    up = np.clip(nx * frame.ew[0] + ny * frame.ew[1] + nz * frame.ew[2], 0.0, 1.0)
    endplate = in_s1 * bd._smoothstep(up, 0.6, 0.85)
    thickness = bd.SACRUM_OTHER_MM + (bd.SACRAL_BODY_WALL_MM - bd.SACRUM_OTHER_MM) * in_s1
    thickness = thickness + (bd.SACRAL_ALA_MM - thickness) * ala
    thickness = thickness + (bd.S1_ENDPLATE_MM - thickness) * endplate
    # auricular surfaces (lateral faces at the joints) are dense
    auricular = bd._smoothstep(np.abs(u), 38.0, 48.0) * (1.0 - bd._smoothstep(-w, 55.0, 75.0))
    thickness = thickness + (bd.SACRAL_AURICULAR_MM - thickness) * auricular
    texture = bd.trabecular_texture(rng, volume.distance_mm.shape, grid.voxel_mm, frame.ew)
    return bd.bone_hu(
        volume, thickness.astype(np.float32), cancellous, bd.cortical_material_hu(age), texture
    )


def _hip_hu(
    grid: Grid,
    params: PatientParameters,
    volume: MeshVolume,
    side: str,
    sij_centre: Vec,
    acetabulum_centre: Vec,
    acetabulum_radius: float,
    rng: np.random.Generator,
) -> tuple[Array, Array]:
    world = _world(grid, volume.box)
    x, y, z = world
    age = params.age_years
    anterior = bd._smoothstep(-(y - sij_centre[1]), 0.0, 40.0)
    cancellous = POSTERIOR_ILIUM_HU + (ILIUM_HU - POSTERIOR_ILIUM_HU) * anterior
    cancellous = cancellous * np.float32(bd.site_cancellous_hu(1.0, age))
    # the sciatic buttress and arcuate line: SIJ → acetabular roof carries the load
    roof = acetabulum_centre + np.array([0.0, 0.0, acetabulum_radius * 0.8])
    buttress = np.exp(-(bd.segment_distance(world, sij_centre, roof) ** 2) / (2 * 9.0**2))
    d_acet = np.sqrt(
        (x - acetabulum_centre[0]) ** 2
        + (y - acetabulum_centre[1]) ** 2
        + (z - acetabulum_centre[2]) ** 2
    )
    acet = 1.0 - bd._smoothstep(d_acet, acetabulum_radius + 4.0, acetabulum_radius + 12.0)
    wing = bd._smoothstep(z, float(acetabulum_centre[2]) + 35.0, float(acetabulum_centre[2]) + 55)
    nx, ny, nz = bd.surface_normals(volume)
    crest = wing * bd._smoothstep(nz, 0.4, 0.8)
    thickness = bd.HIP_OTHER_MM + (bd.ILIAC_WING_MM - bd.HIP_OTHER_MM) * wing
    thickness = thickness + (bd.ILIAC_CREST_MM - thickness) * crest
    thickness = thickness + (bd.ACETABULUM_MM - thickness) * acet
    thickness = thickness + (bd.ILIAC_BUTTRESS_MM - thickness) * buttress.astype(np.float32)
    texture = bd.trabecular_texture(rng, volume.distance_mm.shape, grid.voxel_mm, None)
    return bd.bone_hu(
        volume, thickness.astype(np.float32), cancellous, bd.cortical_material_hu(age), texture
    )


def _overlap(a: MeshVolume, b: MeshVolume) -> Box | None:
    sx, sy, sz = (
        slice(max(p.start, q.start), min(p.stop, q.stop)) for p, q in zip(a.box, b.box, strict=True)
    )
    box = (sx, sy, sz)
    if any(s.stop <= s.start for s in box):
        return None
    return box


def carve_joint(
    sacrum: MeshVolume, hip: MeshVolume, gap_mm: float
) -> tuple[tuple[slice, slice, slice], NDArray[np.bool_]] | None:
    """Open a ``gap_mm`` joint space between two bones that touch (or overlap) and return it.

    Near both surfaces the bones are bounded by the mid-surface between them,
    ``m = (d_sacrum − d_hip)/2``: the sacrum keeps ``m ≤ −gap/2``, the hip ``m ≥ gap/2``. The
    returned mask is the joint space: within SIJ_REACH_MM of both bones and outside both, either
    within ``gap/2`` (at least half a voxel) of the mid-surface or in the cleft where the two
    surfaces lie at most SIJ_MAX_WIDTH_MM apart (``d_sacrum + d_hip``). A pin crossing ilium →
    joint → sacrum meets no other tissue on the way (the wider cleft was painted muscle, which
    the scoring read as an exit through the inner table into the pelvis). Distances are changed
    in place.
    """
    box = _overlap(sacrum, hip)
    if box is None:
        return None
    ds = sacrum.distance_mm[_sub(sacrum, box)]
    dh = hip.distance_mm[_sub(hip, box)]
    near = (ds < SIJ_REACH_MM) & (dh < SIJ_REACH_MM)
    if not near.any():
        return None
    mid = 0.5 * (ds - dh)
    half = np.float32(gap_mm / 2)
    ds[...] = np.where(near, np.maximum(ds, mid + half), ds)
    dh[...] = np.where(near, np.maximum(dh, half - mid), dh)
    band = np.abs(mid) <= max(float(half), 0.5 * sacrum.voxel_mm)
    cleft = ds + dh <= SIJ_MAX_WIDTH_MM
    space = near & (band | cleft)
    space &= (ds > -0.5 * sacrum.voxel_mm) & (dh > -0.5 * sacrum.voxel_mm)
    return box, space


def _disc_piece(
    grid: Grid, skeleton: PlacedSkeleton, upper: str, lower: str
) -> tuple[Painted | None, Vec]:
    """The disc between two real endplates: inside the smaller of the two bodies' outlines, not
    inside either body, within the endplates' reach. Returns the piece and the disc centre."""
    up_frame = skeleton.frames[upper]
    top = skeleton.endplates[upper][1]
    bottom = skeleton.endplates[lower][0]
    centre = 0.5 * (top + bottom)
    axis = (top - bottom) / np.linalg.norm(top - bottom)
    posterior = up_frame.ev - (up_frame.ev @ axis) * axis
    posterior /= np.linalg.norm(posterior)
    frame = LocalFrame(centre, np.cross(posterior, axis), posterior, axis)
    a_up, r_up = radial_outline(skeleton.bodies[upper], frame)
    a_low, r_low = radial_outline(skeleton.bodies[lower], frame)
    reach = float(np.linalg.norm(top - bottom)) / 2 + 8.0
    span = float(max(r_up.max(), r_low.max())) + 2.0
    low, high = frame.world_box((-span, -span, -reach), (span, span, reach))
    box = grid.box(low, high)
    if any(s.stop <= s.start for s in box):
        return None, centre
    world = _world(grid, box)
    u, v, w = _frame_coordinates(frame, world)
    theta = np.arctan2(v, u)
    outline = np.minimum(outline_radius(theta, a_up, r_up), outline_radius(theta, a_low, r_low))
    inside = (np.hypot(u, v) <= outline + 0.5) & (np.abs(w) <= reach)
    for name in (upper, lower):
        body = voxelise_mesh(
            grid, skeleton.bodies[name].vertices_mm, skeleton.bodies[name].faces, box=box
        )
        if body is not None:
            # outside the body, and on the disc's side of the body's centre
            inside &= body.distance_mm > -0.5 * grid.voxel_mm
    # keep the slab connected to the disc centre (drop bits beside the bodies' far ends)
    labelled, _ = ndimage.label(inside)
    centre_index = tuple(
        int(np.clip(np.searchsorted(axis_mm[sl], c), 0, sl.stop - sl.start - 1))
        for axis_mm, sl, c in zip((grid.x_mm, grid.y_mm, grid.z_mm), box, centre, strict=True)
    )
    keep = labelled[centre_index]
    if keep == 0:
        return None, centre
    inside = labelled == keep
    scale = float(np.median(outline))
    nucleus = (u / (0.5 * scale)) ** 2 + ((v - 2.0) / (0.45 * scale)) ** 2 <= 1.0
    hu = np.where(nucleus, DISC_HU_NUCLEUS, DISC_HU_ANNULUS).astype(np.float32)
    return Painted(f"disc_{upper}_{lower}", box, inside, hu, PRIORITY_SOFT_JOINT), centre


def world_points(world: tuple[Array, Array, Array], mask: NDArray[np.bool_]) -> Vec:
    """LPS points of the voxels ``mask`` of a box given its broadcastable coordinates."""
    x, y, z = (np.broadcast_to(a, mask.shape) for a in world)
    return np.column_stack([x[mask], y[mask], z[mask]]).astype(np.float64)


#: Landmarks taken from the warped template (rules on the real surfaces, models/template).
TEMPLATE_LANDMARKS: tuple[str, ...] = (
    "S2_body_center",
    "sacral_promontory",
    "S1_anterior_cortex_midline",
    "S1_spinal_canal_center",
    "S2_spinal_canal_center",
    "interlaminar_L5_S1_center",
    "pubic_symphysis_superior",
    *(
        f"{name}_{side}"
        for side in SIDES
        for name in (
            "S1_foramen_anterior",
            "S1_foramen_posterior",
            "S2_foramen_anterior",
            "S2_foramen_posterior",
            "S3_foramen_anterior",
            "S4_foramen_anterior",
            "ala_top",
            "icd_line",
            "psis",
            "asis",
            "iliac_crest_top",
            "sciatic_notch",
        )
    ),
)


def real_skeleton_part(
    grid: Grid,
    params: PatientParameters,
    anchors: Anchors,
    groups: frozenset[str] | None = None,
) -> PartResult:
    """Paint L1–L5, discs, sacrum, coccyx, hip bones and SIJ spaces from the real template.

    ``groups`` limits the painting to some of "lumbar" (vertebrae, discs), "sacrum" (sacrum,
    coccyx) and "pelvis" (hip bones, SIJ spaces); landmarks are always published.
    """
    groups = frozenset(("lumbar", "sacrum", "pelvis")) if groups is None else groups
    skeleton = placed_skeleton(params)
    rng = params.rng("real_skeleton_texture")
    result = PartResult()
    marks: dict[str, Vec] = {}
    for name in TEMPLATE_LANDMARKS:
        if name.startswith("icd_line"):
            for end in ("anterior", "posterior"):
                key = f"{name}_{end}"
                if key in skeleton.landmarks:
                    marks[key] = skeleton.landmarks[key].copy()
        elif name in skeleton.landmarks:
            marks[name] = skeleton.landmarks[name].copy()

    for level in LUMBAR_LEVELS:
        pieces = _vertebra_pieces(grid, params, skeleton, level, rng, marks)
        if "lumbar" in groups:
            result.pieces += pieces
    for upper, lower in DISC_LEVELS:
        if "lumbar" in groups:
            piece, centre = _disc_piece(grid, skeleton, upper, lower)
            if piece is not None:
                result.pieces.append(piece)
        else:
            centre = 0.5 * (skeleton.endplates[upper][1] + skeleton.endplates[lower][0])
        marks[f"disc_{upper}_{lower}_center"] = centre

    s1_frame = skeleton.frames["S1"]
    marks["S1_superior_endplate_center"] = skeleton.endplates["S1"][0].copy()
    marks["S1_body_center"] = s1_frame.origin.copy()
    for name, (centre, _) in facet_joints(skeleton).items():
        marks[f"facet_{name}"] = centre.copy()

    sacrum_mesh = skeleton.bones["sacrum"]
    sacrum = voxelise_mesh(
        grid, sacrum_mesh.vertices_mm, sacrum_mesh.faces, inner_band_mm=bd.SACRUM_DEEPEST_CORTEX_MM
    )
    hips: dict[str, MeshVolume | None] = {
        side: voxelise_mesh(
            grid,
            skeleton.bones[f"hip_{side}"].vertices_mm,
            skeleton.bones[f"hip_{side}"].faces,
            inner_band_mm=bd.HIP_DEEPEST_CORTEX_MM,
        )
        for side in SIDES
    }
    spaces: dict[str, tuple[Box, NDArray[np.bool_]]] = {}
    if sacrum is not None:
        for side, hip in hips.items():
            if hip is None:
                continue
            carved = carve_joint(sacrum, hip, SIJ_GAP_MM)
            if carved is not None:
                spaces[side] = carved
    for side, (box, space) in spaces.items():
        if "pelvis" in groups:
            result.pieces.append(
                Painted(f"sij_space_{side}", box, space, SIJ_SPACE_HU, PRIORITY_SOFT_JOINT)
            )
        points = world_points(_world(grid, box), space)
        if len(points):
            marks[f"sij_center_{side}"] = points.mean(axis=0)
            step = max(1, len(points) // 400)
            marks[f"sij_surface_{side}"] = points[::step].copy()
    if sacrum is not None and "sacrum" in groups:
        hu, occ = _sacrum_hu(grid, params, skeleton, sacrum, rng)
        result.pieces.append(
            Painted("sacrum", sacrum.box, occ > 1e-3, hu, PRIORITY_BONE, fraction=occ)
        )
    coccyx_mesh = skeleton.bones["coccyx"]
    coccyx = voxelise_mesh(
        grid, coccyx_mesh.vertices_mm, coccyx_mesh.faces, inner_band_mm=bd.SACRUM_OTHER_MM
    )
    if coccyx is not None and "sacrum" in groups:
        hu, occ = bd.bone_hu(
            coccyx,
            bd.SACRUM_OTHER_MM,
            bd.site_cancellous_hu(LOWER_SACRUM_HU, params.age_years),
            bd.cortical_material_hu(params.age_years),
            bd.trabecular_texture(rng, coccyx.distance_mm.shape, grid.voxel_mm, None),
        )
        result.pieces.append(
            Painted("coccyx", coccyx.box, occ > 1e-3, hu, PRIORITY_BONE, fraction=occ)
        )
    s1_top = skeleton.endplates["S1"][0]
    for side, hip in hips.items():
        if hip is None or "pelvis" not in groups:
            continue
        acet_centre, acet_radius = acetabulum(skeleton.bones[f"hip_{side}"], side, float(s1_top[2]))
        sij = marks.get(f"sij_center_{side}")
        if sij is None:
            sign = 1.0 if side == "left" else -1.0
            sij = s1_frame.point(sign * 48.0, 25.0, -20.0)
        hu, occ = _hip_hu(grid, params, hip, side, sij, acet_centre, acet_radius, rng)
        result.pieces.append(
            Painted(f"ilium_{side}", hip.box, occ > 1e-3, hu, PRIORITY_BONE, fraction=occ)
        )
    _fallback_landmarks(skeleton, marks)
    result.landmarks = marks
    return result


def _fallback_landmarks(skeleton: PlacedSkeleton, marks: dict[str, Vec]) -> None:
    """Landmarks the template did not provide, by simple rules on the placed bones."""
    s1 = skeleton.frames["S1"]
    body = skeleton.bodies["S1"].vertices_mm
    local = _local(s1, body)
    mid = np.abs(local[:, 0]) < 5.0
    if "sacral_promontory" not in marks:
        score = -local[:, 1] + local[:, 2]
        marks["sacral_promontory"] = body[mid][np.argmax(score[mid])].copy()
    if "S1_anterior_cortex_midline" not in marks:
        level = mid & (np.abs(local[:, 2]) < 3.0)
        if level.any():
            marks["S1_anterior_cortex_midline"] = body[level][np.argmin(local[level, 1])].copy()
    if "S2_body_center" not in marks:
        marks["S2_body_center"] = s1.point(0.0, 6.0, -2.0 * skeleton.half_heights_mm["S1"] - 10.0)
    for side in SIDES:
        hip = skeleton.bones[f"hip_{side}"].vertices_mm
        if f"iliac_crest_top_{side}" not in marks:
            marks[f"iliac_crest_top_{side}"] = hip[np.argmax(hip[:, 2])].copy()
    if "pubic_symphysis_superior" not in marks:
        tops = []
        for side in SIDES:
            hip = skeleton.bones[f"hip_{side}"].vertices_mm
            near = np.abs(hip[:, 0]) < 12.0
            if near.any():
                tops.append(hip[near][np.argmax(hip[near, 2])])
        if len(tops) == 2:
            marks["pubic_symphysis_superior"] = np.mean(tops, axis=0)
