"""Template landmarks computed by geometric rules on the real-anatomy meshes.

Every name of the providers [lumbar], [sacrum] and [pelvis] in models/landmarks.py is computed
here from the template's bones and vertebral-body meshes (LPS mm, origin the S1 superior endplate
centre), plus extra keys that the warp and the other parts use (never renaming a table name):
``X_axis``, ``X_superior_endplate_normal``, ``X_inferior_endplate_normal``,
``S1_superior_endplate_normal``, ``facet_X_Y_side_normal``, ``S2_spinal_canal_center``,
``S2_foramen_posterior_side``, ``S1_foramen_anterior_side_axis`` (and the other foramina's axes).

The rules (one function each below):

- *endplate centre*: the vertebral-body mesh (ArtiSynth, flat endplates) has a planar cranial and
  a planar caudal face; their area-weighted centroid, moved along the plane normal onto the bone
  surface (the first bone surface a ray along the normal meets). Body centre = midpoint of the two
  endplate centres; disc centre = midpoint of the adjacent endplate centres.
- *vertebral frame*: ``w`` = mean endplate normal (cranial), ``v`` = posterior (from the body
  centre toward the spinous tip, orthogonal to ``w``), ``u = v × w`` = the patient's left.
- *pedicle centre*: coronal sections (normal ``v``) of the vertebra from the body's posterior wall
  backward; on each side the section's area outside the body and canal is smallest at the
  isthmus; its centroid there.
- *spinous tip*: the most posterior vertex (along ``v``) within 6 mm of the mid-sagittal plane.
- *facet joint centre*: the closest-approach patch between the upper vertebra's inferior
  articular process and the lower bone, posterior to the body, on each side: midpoint between
  the patch on the upper bone and its closest points on the lower one.
- *sacral foramina*: depth maps of the sacrum seen along the sacral antero-posterior axis (from
  the front for the anterior foramina, from the back for the posterior ones): a foramen is a pit
  (white top-hat of depth ≥ 5 mm, ≥ 12 mm²) lateral to the midline; per side, the pits sorted
  cranio-caudally are S1, S2, …; centre = the pit's centroid on the plane of its rim.
- *anterior S1 cortex* (``S1_anterior_cortex_midline``): the anterior midline surface of the
  sacrum at the caudal end of the S1 body's anterior cortex (the S1–S2 junction, one L5 body
  height below the S1 endplate centre; S1 is about as tall as L5, approx.), reached by a ray from
  the body axis forward. With the promontory it gives the inlet beam: the line promontory → this
  point runs along the anterior cortex of the S1 body, so the anterior cortices of S1 and S2
  superimpose (the inlet end point, Eastman & Routt 2015). A point just under the promontory
  would follow the rounded rim lip instead, ≈25° steeper than the cortex.
- *sacroiliac joint*: the sacral surface facing the ilium within 3 mm of it (samples); the centre
  is the sample nearest the samples' mean.
- *hip bone points*: crest top = most cranial vertex; ASIS = most anterior vertex of the upper
  half; PSIS = most posterior vertex above the SIJ centre; sciatic notch apex = deepest point of
  the posterior outline (seen from the side) below its convex hull; symphysis top = the highest
  point of the two hip bones within 3 mm of the mid-sagittal plane.
- *ICD line* (the arcuate line seen edge-on): posterior end = the most anterior point of the hip
  bone's auricular surface (within 3 mm of the sacrum), where the arcuate line leaves the joint;
  anterior end = 40 mm further forward, the most medial hip-bone point of that coronal slab
  within 40 mm below the start.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS, SIDES
from fluorosim.models.template.asset import TriangleMesh

Vector = NDArray[np.float64]
#: Lower-bone vertices this close to the upper bone form the facet's articular surface (mm).
FACET_CONTACT_MM = 4.0
SIDE_SIGN = {"left": 1.0, "right": -1.0}


# --------------------------------------------------------------------------------------------
# Small geometry helpers
# --------------------------------------------------------------------------------------------


def _unit(vector: Vector) -> Vector:
    vector = np.asarray(vector, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def face_normals_areas(mesh: TriangleMesh) -> tuple[Vector, Vector, Vector]:
    """Unit normals, areas and centroids of a mesh's triangles."""
    v = np.asarray(mesh.vertices_mm, dtype=np.float64)
    a, b, c = (v[mesh.faces[:, i]] for i in range(3))
    cross = np.cross(b - a, c - a)
    double_area = np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(double_area, 1e-12)[:, None]
    return normals, 0.5 * double_area, (a + b + c) / 3.0


class RayCaster:
    """Segment–surface intersections on one mesh (VTK's OBB tree)."""

    def __init__(self, mesh: TriangleMesh) -> None:
        import vtk

        from fluorosim.models.template.convert import to_polydata

        self._poly = to_polydata(mesh)
        self._tree = vtk.vtkOBBTree()
        self._tree.SetDataSet(self._poly)
        self._tree.BuildLocator()

    def hits(self, start: Vector, end: Vector) -> NDArray[np.float64]:
        """Intersection points of the segment start→end, ordered from ``start``; (K,3)."""
        import vtk

        points = vtk.vtkPoints()
        self._tree.IntersectWithLine(
            np.asarray(start, float).tolist(), np.asarray(end, float).tolist(), points, None
        )
        found = np.array([points.GetPoint(i) for i in range(points.GetNumberOfPoints())])
        if not len(found):
            return np.zeros((0, 3))
        order = np.argsort(np.linalg.norm(found - np.asarray(start, float), axis=1))
        return found[order]


def signed_distance(points: Vector, mesh: TriangleMesh) -> NDArray[np.float64]:
    """Signed distance of points to a closed mesh, mm (negative inside)."""
    import pyvista as pv

    from fluorosim.models.template.convert import to_polydata

    result = pv.PolyData(np.asarray(points, dtype=np.float64)).compute_implicit_distance(
        to_polydata(mesh)
    )
    return np.asarray(result["implicit_distance"], dtype=np.float64)


def closest_points(points: Vector, mesh: TriangleMesh) -> NDArray[np.float64]:
    """Closest point on the mesh surface to each point."""
    import vtk

    from fluorosim.models.template.convert import to_polydata

    locator = vtk.vtkCellLocator()
    locator.SetDataSet(to_polydata(mesh))
    locator.BuildLocator()
    out = np.empty((len(points), 3))
    closest = [0.0, 0.0, 0.0]
    cell, sub = vtk.reference(0), vtk.reference(0)
    dist2 = vtk.reference(0.0)
    for i, p in enumerate(np.asarray(points, dtype=np.float64)):
        locator.FindClosestPoint(p.tolist(), closest, cell, sub, dist2)
        out[i] = closest
    return out


# --------------------------------------------------------------------------------------------
# Vertebral bodies
# --------------------------------------------------------------------------------------------


def _planar_face(body: TriangleMesh, guess: Vector) -> tuple[Vector, Vector]:
    """Area-weighted centroid and mean normal of the body mesh's face toward ``guess``.

    The faces within 30° of the mean direction of all faces facing ``guess`` (within 60°): the
    endplate, without the rounded rim where it turns into the body's wall.
    """
    normals, areas, centroids = face_normals_areas(body)
    candidates = normals @ guess > 0.5
    normal = _unit((normals[candidates] * areas[candidates, None]).sum(axis=0))
    for _ in range(3):
        near = normals @ normal > np.cos(np.radians(30.0))
        normal = _unit((normals[near] * areas[near, None]).sum(axis=0))
    near = normals @ normal > np.cos(np.radians(30.0))
    centre = (centroids[near] * areas[near, None]).sum(axis=0) / areas[near].sum()
    return centre, normal


def endplate_center(
    body: TriangleMesh, bone: TriangleMesh, superior: bool, caster: RayCaster | None = None
) -> tuple[Vector, Vector]:
    """Centre of the superior (or inferior) endplate on the bone surface, and its outward normal."""
    guess = np.array([0.0, 0.0, 1.0 if superior else -1.0])
    centre, normal = _planar_face(body, guess)
    caster = caster or RayCaster(bone)
    hits = caster.hits(centre + 20.0 * normal, centre - 10.0 * normal)
    return (hits[0] if len(hits) else centre), normal


def _inside(points: Vector, mesh: TriangleMesh) -> NDArray[np.bool_]:
    return signed_distance(points, mesh) < 0.0


class VertebralFrame:
    """Endplates and axes of one vertebra: ``w`` cranial, ``v`` posterior, ``u`` = left."""

    def __init__(self, body: TriangleMesh, bone: TriangleMesh, caster: RayCaster) -> None:
        self.superior, self.superior_normal = endplate_center(body, bone, True, caster)
        self.inferior, self.inferior_normal = endplate_center(body, bone, False, caster)
        self.centre = 0.5 * (self.superior + self.inferior)
        self.w = _unit(self.superior_normal - self.inferior_normal)
        posterior = np.array([0.0, 1.0, 0.0])
        self.v = _unit(posterior - (posterior @ self.w) * self.w)
        self.u = np.cross(self.v, self.w)
        body_local = self.local(body.vertices_mm)
        midline = np.abs(body_local[:, 0]) < 8.0
        self.body_back_v = float(np.percentile(body_local[midline, 1], 95))

    def local(self, points: Vector) -> NDArray[np.float64]:
        """(u, v, w) coordinates of LPS points."""
        d = np.asarray(points, dtype=np.float64) - self.centre
        return np.stack([d @ self.u, d @ self.v, d @ self.w], axis=-1)

    def lps(self, local: Vector) -> NDArray[np.float64]:
        """LPS points of (u, v, w) coordinates."""
        local = np.asarray(local, dtype=np.float64)
        return (
            self.centre
            + local[..., :1] * self.u
            + local[..., 1:2] * self.v
            + local[..., 2:] * self.w
        )


def pedicle_center(frame: VertebralFrame, bone: TriangleMesh, sign: float) -> Vector:
    """Centroid of the smallest coronal section of the pedicle behind the body (the isthmus)."""
    from scipy import ndimage

    step = 0.6
    us = sign * np.arange(3.0, 36.0, step)
    ws = np.arange(-22.0, 22.0, step)
    vs = frame.body_back_v + np.arange(1.0, 15.0, 0.5)
    grid_v, grid_u, grid_w = np.meshgrid(vs, us, ws, indexing="ij")
    local = np.stack([grid_u, grid_v, grid_w], axis=-1).reshape(-1, 3)
    inside = _inside(frame.lps(local), bone).reshape(grid_v.shape)
    best: tuple[float, Vector] | None = None
    for k in range(len(vs)):
        labels, count = ndimage.label(inside[k])
        if count == 0:
            continue
        index = np.arange(1, count + 1)
        sizes = np.asarray(ndimage.sum(np.ones_like(labels), labels, index=index))
        u_centres = np.asarray(ndimage.mean(np.abs(us)[:, None] + 0 * ws, labels, index=index))
        sizes[u_centres < 10.0] = 0.0  # the lamina and spinous process near the midline
        largest = int(np.argmax(sizes)) + 1
        area = float(sizes[largest - 1]) * step * step
        if area < 15.0:
            continue
        iu, iw = np.nonzero(labels == largest)
        centre = frame.lps(np.array([us[iu].mean(), vs[k], ws[iw].mean()]))
        if best is None or area < best[0]:
            best = (area, centre)
    if best is None:
        raise ValueError("no pedicle section found")
    return best[1]


def facet_center(
    upper: VertebralFrame, upper_bone: TriangleMesh, lower_bone: TriangleMesh, sign: float
) -> tuple[Vector, Vector]:
    """Centre and normal of the facet joint: the closest-approach patch behind the body."""
    vertices = np.asarray(upper_bone.vertices_mm, dtype=np.float64)
    local = upper.local(vertices)
    side = (
        (sign * local[:, 0] > 6.0)
        & (sign * local[:, 0] < 35.0)
        & (local[:, 1] > upper.body_back_v + 6.0)
        & (local[:, 1] < upper.body_back_v + 40.0)
        & (local[:, 2] < 10.0)
    )
    candidates = vertices[side]
    distance = signed_distance(candidates, lower_bone)
    patch = candidates[distance < distance.min() + 2.5]
    partner = closest_points(patch, lower_bone)
    centre = 0.5 * (patch + partner).mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((patch - patch.mean(axis=0)).T))
    normal = vectors[:, 0] * np.sign(vectors[:, 0] @ (partner - patch).mean(axis=0) or 1.0)
    return centre, normal


def facet_articular_plane(
    upper: VertebralFrame,
    upper_bone: TriangleMesh,
    lower_bone: TriangleMesh,
    sign: float,
    contact_mm: float = FACET_CONTACT_MM,
) -> tuple[Vector, Vector]:
    """Centre and unit normal (pointing toward the upper bone's inferior articular process) of
    the articular surface of the lower bone's superior articular process on one side.

    The articular surface is the lower bone's surface behind the body, lateral to the canal,
    within ``contact_mm`` of the upper bone (the joint space and cartilage are ≈2–4 mm, approx.);
    a least-squares plane is fitted to it twice, the second time without the rim vertices more
    than 1.5 mm off the first plane. Raises ``ValueError`` when there is no such surface.
    """
    vertices = np.asarray(lower_bone.vertices_mm, dtype=np.float64)
    local = upper.local(vertices)
    side = (
        (sign * local[:, 0] > 6.0)
        & (sign * local[:, 0] < 40.0)
        & (local[:, 1] > upper.body_back_v)
        & (local[:, 1] < upper.body_back_v + 45.0)
    )
    candidates = vertices[side]
    if not len(candidates):
        raise ValueError("no superior articular process behind the body")
    gap = np.abs(signed_distance(candidates, upper_bone))
    patch = candidates[gap < contact_mm]
    if len(patch) < 6:
        raise ValueError("no articular surface between the processes")
    centre = patch.mean(axis=0)
    normal = np.linalg.svd(patch - centre, full_matrices=False)[2][2]
    flat = np.abs((patch - centre) @ normal) < 1.5
    if flat.sum() >= 6:
        patch = patch[flat]
        centre = patch.mean(axis=0)
        normal = np.linalg.svd(patch - centre, full_matrices=False)[2][2]
    toward = closest_points(patch, upper_bone).mean(axis=0) - centre
    return centre, normal * (1.0 if normal @ toward >= 0 else -1.0)


def facet_angle_deg(normal: Vector, u: Vector, v: Vector) -> float:
    """Angle of a facet plane to the sagittal plane in the axial view (frame axes ``u`` left, ``v``
    posterior): 0° for a sagittal facet, 90° for a coronal one (Jentzsch et al. 2013)."""
    return float(np.degrees(np.arctan2(abs(float(normal @ v)), abs(float(normal @ u)))))


def _pits(
    caster: RayCaster,
    origin: Vector,
    d: Vector,
    e_u: Vector,
    e_w: Vector,
    extent: tuple[tuple[float, float], tuple[float, float]],
) -> list[tuple[Vector, float]]:
    """Foramen openings seen along ``d``: (centre on the rim plane, area mm²) per pit."""
    from scipy import ndimage

    u_range, w_range = extent
    us = np.arange(*u_range, 1.0)
    ws = np.arange(*w_range, 1.0)
    depth = np.full((len(us), len(ws)), np.nan)
    start0 = origin - 120.0 * d
    for i, u in enumerate(us):
        for j, w in enumerate(ws):
            start = start0 + u * e_u + w * e_w
            hits = caster.hits(start, start + 240.0 * d)
            if len(hits):
                depth[i, j] = float((hits[0] - start) @ d)
    hit = np.isfinite(depth)
    silhouette = ndimage.binary_fill_holes(hit)
    filled = np.where(hit, depth, 400.0)
    opened = ndimage.grey_opening(filled, footprint=_disc(5))
    pits = (filled - opened > 5.0) & ndimage.binary_erosion(silhouette, iterations=2)
    labels, count = ndimage.label(pits)
    found = []
    for k in range(1, count + 1):
        region = labels == k
        area = float(region.sum())
        if area < 12.0:
            continue
        iu, iw = np.nonzero(region)
        u_c, w_c = us[iu].mean(), ws[iw].mean()
        rim = ndimage.binary_dilation(region, iterations=2) & ~region & hit
        if not rim.any():
            continue
        rim_depth = float(np.percentile(depth[rim], 25))  # the opening, not the far wall
        found.append((start0 + u_c * e_u + w_c * e_w + rim_depth * d, area))
    return found


def _disc(radius: int) -> NDArray[np.bool_]:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius


def foramina(
    sacrum: RayCaster, origin: Vector, d: Vector, e_w: Vector, levels: int
) -> dict[str, list[Vector]]:
    """Per side, the first ``levels`` foramen openings seen along ``d``, cranial first."""
    e_u = np.array([1.0, 0.0, 0.0])
    pits = _pits(sacrum, origin, d, e_u, e_w, ((-60.0, 61.0), (-110.0, 15.0)))
    out: dict[str, list[Vector]] = {}
    for side, sign in SIDE_SIGN.items():
        lateral = [p for p, _ in pits if 10.0 < sign * ((p - origin) @ e_u) < 50.0]
        lateral.sort(key=lambda p: -float((p - origin) @ e_w))
        out[side] = lateral[:levels]
    return out


def _hip_outline_notch(hip: TriangleMesh, z_low: float, z_high: float) -> Vector:
    """Apex of the greater sciatic notch: deepest point under the posterior outline's hull."""
    v = np.asarray(hip.vertices_mm, dtype=np.float64)
    zs = np.arange(z_low, z_high, 2.0)
    outline = []
    for z in zs:
        band = v[(v[:, 2] >= z) & (v[:, 2] < z + 2.0)]
        if len(band):
            outline.append(band[np.argmax(band[:, 1])])
    pts = np.array(outline)
    # upper hull of (z, y): the taut line across the notch, posterior side
    best = -1.0
    apex: Vector = pts[len(pts) // 2]
    for i in range(len(pts)):
        for j in range(i + 2, len(pts)):
            a, b = pts[i], pts[j]
            between = pts[i + 1 : j]
            t = (between[:, 2] - a[2]) / (b[2] - a[2])
            chord = a[1] + t * (b[1] - a[1])
            if np.all(chord >= between[:, 1] - 1e-9) and len(between):
                depth = chord - between[:, 1]
                k = int(np.argmax(depth))
                if depth[k] > best:
                    best, apex = float(depth[k]), between[k]
    return apex


def s1_anterior_cortex(
    sacrum: RayCaster, s1_top: Vector, n1: Vector, v1: Vector, s1_height_mm: float
) -> Vector:
    """The anterior midline cortex at the caudal end of the S1 body (module docstring)."""
    level = np.asarray(s1_top, dtype=np.float64) - s1_height_mm * np.asarray(n1)
    hits = sacrum.hits(level, level - 80.0 * np.asarray(v1))
    if not len(hits):
        raise ValueError("template: the ray forward from the S1 body axis meets no sacral surface")
    cortex: Vector = hits[0]
    return cortex


def compute_landmarks(
    bones: dict[str, TriangleMesh], bodies: dict[str, TriangleMesh]
) -> dict[str, NDArray[np.float64]]:
    """Every [lumbar], [sacrum] and [pelvis] landmark (plus extras) of the template, LPS mm."""
    marks: dict[str, NDArray[np.float64]] = {}
    casters = {name: RayCaster(mesh) for name, mesh in bones.items()}
    frames: dict[str, VertebralFrame] = {}
    for level in LUMBAR_LEVELS:
        frame = VertebralFrame(bodies[level], bones[level], casters[level])
        frames[level] = frame
        marks[f"{level}_superior_endplate_center"] = frame.superior
        marks[f"{level}_inferior_endplate_center"] = frame.inferior
        marks[f"{level}_body_center"] = frame.centre
        marks[f"{level}_superior_endplate_normal"] = frame.superior_normal
        marks[f"{level}_inferior_endplate_normal"] = frame.inferior_normal
        marks[f"{level}_axis"] = frame.w
        marks[f"{level}_posterior_axis"] = frame.v
        local = frame.local(bones[level].vertices_mm)
        midline = np.abs(local[:, 0]) < 6.0
        tip = np.argmax(np.where(midline, local[:, 1], -np.inf))
        marks[f"{level}_spinous_tip"] = np.asarray(bones[level].vertices_mm[tip], dtype=float)
        for side, sign in SIDE_SIGN.items():
            marks[f"{level}_pedicle_center_{side}"] = pedicle_center(frame, bones[level], sign)

    # Sacrum: the S1 frame from its body mesh; the endplate centre is the origin.
    sacrum, sac = bones["sacrum"], casters["sacrum"]
    s1_top, n1 = endplate_center(bodies["S1"], sacrum, True, sac)
    s1_bottom, _ = _planar_face(bodies["S1"], -n1)
    v1 = _unit(np.array([0.0, 1.0, 0.0]) - n1[1] * n1)
    marks["S1_superior_endplate_center"] = s1_top
    marks["S1_superior_endplate_normal"] = n1
    marks["S1_posterior_axis"] = v1
    s1_centre = 0.5 * (s1_top + s1_bottom)
    marks["S1_body_center"] = s1_centre
    sv = np.asarray(sacrum.vertices_mm, dtype=np.float64)
    mid = np.abs(sv[:, 0]) < 3.0
    marks["sacral_promontory"] = sv[mid][np.argmax(sv[mid] @ (n1 - v1))]
    s1_height = float(np.linalg.norm(frames["L5"].superior - frames["L5"].inferior))
    marks["S1_anterior_cortex_midline"] = s1_anterior_cortex(sac, s1_top, n1, v1, s1_height)
    # Across the canal: tilted caudally from the endplate's posterior axis, so that the ray meets
    # the S1 lamina instead of leaving through the canal's cranial opening.
    across = _unit(v1 - 0.6 * n1)
    marks["S1_canal_axis_normal"] = across
    canal = sac.hits(s1_centre, s1_centre + 80.0 * across)
    marks["S1_spinal_canal_center"] = 0.5 * (canal[0] + canal[1])
    canal_back = canal[1]

    anterior = foramina(sac, s1_top, v1, n1, 2)
    posterior = foramina(sac, s1_top, -v1, n1, 2)
    for side in SIDES:
        for k, level in enumerate(("S1", "S2")):
            marks[f"{level}_foramen_anterior_{side}"] = anterior[side][k]
            marks[f"{level}_foramen_anterior_{side}_axis"] = v1
            marks[f"{level}_foramen_posterior_{side}"] = posterior[side][k]
            marks[f"{level}_foramen_posterior_{side}_axis"] = -v1
    ring = np.mean(
        [marks[f"{lv}_foramen_anterior_{s}"] for lv in ("S1", "S2") for s in SIDES], axis=0
    )
    ring[0] = 0.0
    through = sac.hits(ring - 100.0 * across, ring + 80.0 * across)
    marks["S2_body_center"] = 0.5 * (through[0] + through[1])
    marks["S2_spinal_canal_center"] = 0.5 * (through[1] + through[2])

    half_width = float(np.abs(bodies["S1"].vertices_mm[:, 0]).max())
    for side, sign in SIDE_SIGN.items():
        above = s1_centre + sign * (half_width + 14.0) * np.array([1.0, 0.0, 0.0]) + 60.0 * n1
        marks[f"ala_top_{side}"] = sac.hits(above, above - 120.0 * n1)[0]

    l5 = np.asarray(bones["L5"].vertices_mm, dtype=np.float64)

    def band(v: Vector) -> NDArray[np.bool_]:
        """Midline points from just in front of the canal's dorsal wall to 10 mm behind it."""
        inside: NDArray[np.bool_] = (
            (np.abs(v[:, 0]) < 4.0)
            & (v[:, 1] > canal_back[1] - 3.0)
            & (v[:, 1] < canal_back[1] + 10.0)
        )
        return inside

    l5_low = l5[band(l5)][np.argmin(l5[band(l5)][:, 2])]
    s1_arch = sv[band(sv) & (sv[:, 2] > canal_back[2])]
    s1_high = s1_arch[np.argmax(s1_arch[:, 2])]
    marks["interlaminar_L5_S1_center"] = 0.5 * (l5_low + s1_high)

    for upper, lower in DISC_LEVELS:
        below = marks[f"{lower}_superior_endplate_center"]
        marks[f"disc_{upper}_{lower}_center"] = 0.5 * (
            marks[f"{upper}_inferior_endplate_center"] + below
        )
        lower_bone = bones["sacrum"] if lower == "S1" else bones[lower]
        for side, sign in SIDE_SIGN.items():
            centre, normal = facet_center(frames[upper], bones[upper], lower_bone, sign)
            marks[f"facet_{upper}_{lower}_{side}"] = centre
            marks[f"facet_{upper}_{lower}_{side}_normal"] = normal

    marks.update(pelvis_landmarks(bones, marks))
    return marks


def pelvis_landmarks(
    bones: dict[str, TriangleMesh], marks: dict[str, NDArray[np.float64]]
) -> dict[str, NDArray[np.float64]]:
    """The [pelvis] landmarks: SIJ, iliac spines, crest, notch, symphysis, ICD line."""
    from fluorosim.models.template.convert import to_polydata

    out: dict[str, NDArray[np.float64]] = {}
    sacrum = bones["sacrum"]
    both = np.vstack([bones["hip_left"].vertices_mm, bones["hip_right"].vertices_mm])
    mid = both[np.abs(both[:, 0]) < 3.0]
    symphysis = mid[np.argmax(mid[:, 2])].astype(float)
    out["pubic_symphysis_superior"] = symphysis
    sac_poly = to_polydata(sacrum).compute_normals(point_normals=True, cell_normals=False)
    sac_normals = np.asarray(sac_poly.point_data["Normals"], dtype=np.float64)
    sv = np.asarray(sacrum.vertices_mm, dtype=np.float64)
    for side, sign in SIDE_SIGN.items():
        hip = bones[f"hip_{side}"]
        hv = np.asarray(hip.vertices_mm, dtype=np.float64)
        facing = (sign * sv[:, 0] > 0) & (sign * sac_normals[:, 0] > 0.3)
        near = np.zeros(len(sv), dtype=bool)
        near[facing] = signed_distance(sv[facing], hip) < 3.0
        joint = sv[near]
        cells = np.unique(np.floor(joint / 2.0).astype(np.int64), axis=0, return_index=True)[1]
        samples = joint[np.sort(cells)]
        out[f"sij_surface_{side}"] = samples
        centre = samples[np.argmin(np.linalg.norm(samples - samples.mean(axis=0), axis=1))]
        out[f"sij_center_{side}"] = centre
        top = hv[np.argmax(hv[:, 2])]
        out[f"iliac_crest_top_{side}"] = top
        upper = hv[hv[:, 2] > 0.5 * (top[2] + symphysis[2])]
        out[f"asis_{side}"] = upper[np.argmin(upper[:, 1])]
        high = hv[hv[:, 2] > centre[2]]
        psis = high[np.argmax(high[:, 1])]
        out[f"psis_{side}"] = psis
        out[f"sciatic_notch_{side}"] = _hip_outline_notch(hip, symphysis[2] + 10.0, psis[2])
        # ICD: the arcuate line. It leaves the auricular surface at the surface's most anterior
        # point; 40 mm further forward it is the most medial point of the hip bone in that
        # coronal slab, below the start (the line descends anteriorly).
        hip_joint = hv[np.abs(signed_distance(hv, sacrum)) < 3.0]
        icd_start = hip_joint[np.argmin(hip_joint[:, 1])]
        slab = hv[
            (np.abs(hv[:, 1] - (icd_start[1] - 40.0)) < 1.5)
            & (hv[:, 2] < icd_start[2])
            & (hv[:, 2] > icd_start[2] - 40.0)
        ]
        icd_end = slab[np.argmin(sign * slab[:, 0])] if len(slab) else icd_start
        out[f"icd_line_{side}_posterior"] = icd_start
        out[f"icd_line_{side}_anterior"] = icd_end
    return out
