"""Measurements on triangle meshes that the warp and its tests share: endplates, body frames, FPS.

Everything is in the template (or patient) LPS frame, millimetres. Sagittal quantities assume the
bones are symmetric about the plane x = 0 (the template is symmetrised), so a tilt is a rotation
about the left–right (+x) axis:

- *tilt* of a unit normal n = the angle from +z towards −y (anterior): ``atan2(-n_y, n_z)``; an S1
  endplate normal's tilt is the sacral slope; the segmental lordosis X-Y is tilt(Y superior endplate)
  − tilt(X superior endplate).
- an *endplate* is the area-weighted mean of the faces of the vertebral body whose normals lie
  within 30° of the endplate's direction (found iteratively from a seed direction), on the cranial
  or caudal side of the body: its centroid and its (cranially pointing) normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.template.asset import TriangleMesh

Points = NDArray[np.float64]
#: A local v coordinate (or an array of them): the endplate lines map floats to floats.
Coord = TypeVar("Coord", float, NDArray[np.float64])

#: Faces whose normals lie within this angle of the endplate direction form the endplate.
ENDPLATE_CONE_DEG = 30.0
#: Half thickness of the midsagittal slab in which depths and rims are measured.
MIDSAGITTAL_HALF_MM = 3.0


def smoothstep(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """0 below 0, 1 above 1, the C¹ ramp 3x² − 2x³ between (the warp's and the pedicle lift's
    blends)."""
    t = np.clip(x, 0.0, 1.0)
    ramp: NDArray[np.float64] = t * t * (3.0 - 2.0 * t)
    return ramp


def face_geometry(mesh: TriangleMesh) -> tuple[Points, NDArray[np.float64], Points]:
    """Unit normals, areas and centroids of the faces of a mesh."""
    v = np.asarray(mesh.vertices_mm, dtype=np.float64)
    f = np.asarray(mesh.faces)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    double_area = np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(double_area, 1e-12)[:, None]
    return normals, 0.5 * double_area, (a + b + c) / 3.0


def signed_volume_mm3(mesh: TriangleMesh) -> float:
    """Enclosed volume by the divergence theorem (positive for a closed, outward-facing surface)."""
    v = np.asarray(mesh.vertices_mm, dtype=np.float64)
    f = np.asarray(mesh.faces)
    return float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0)


def tilt_deg(normal: Points) -> float:
    """Sagittal tilt of a cranially pointing normal: degrees from +z towards anterior (−y)."""
    return math.degrees(math.atan2(-float(normal[1]), float(normal[2])))


def rotation_x(angle_rad: float) -> NDArray[np.float64]:
    """Rotation about +x (positive turns +z towards −y, i.e. tilts anteriorly)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def normal_at_tilt(tilt_rad: float) -> Points:
    return np.array([0.0, -math.sin(tilt_rad), math.cos(tilt_rad)])


def anterior_at_tilt(tilt_rad: float) -> Points:
    """The in-plane anterior direction of an endplate of this tilt (⟂ its normal, sagittal)."""
    return np.array([0.0, -math.cos(tilt_rad), -math.sin(tilt_rad)])


@dataclass(frozen=True)
class Endplate:
    """An endplate: centroid and unit normal (pointing cranially for both endplates of a body)."""

    center_mm: Points
    normal: Points
    face_mask: NDArray[np.bool_]


def fit_endplate(mesh: TriangleMesh, seed: Points, cranial: bool) -> Endplate:
    """The superior (``cranial``) or inferior endplate of a vertebral body mesh.

    ``seed`` is a rough cranial direction of that endplate (within ≈35°). Raises ``ValueError`` if no
    face qualifies (a seed far off, or not a vertebral body).
    """
    normals, areas, centroids = face_geometry(mesh)
    middle = (centroids * areas[:, None]).sum(axis=0) / areas.sum()
    outward = np.asarray(seed, dtype=np.float64) / np.linalg.norm(seed)
    if not cranial:
        outward = -outward
    cos_cone = math.cos(math.radians(ENDPLATE_CONE_DEG))
    mask = np.zeros(len(areas), dtype=bool)
    for _ in range(4):
        mask = (normals @ outward > cos_cone) & ((centroids - middle) @ outward > 0)
        if not mask.any():
            raise ValueError("no endplate faces found near the seed direction")
        mean = (normals[mask] * areas[mask, None]).sum(axis=0)
        mean[0] = 0.0  # sagittal by symmetry
        outward = mean / np.linalg.norm(mean)
    center = (centroids[mask] * areas[mask, None]).sum(axis=0) / areas[mask].sum()
    normal = outward if cranial else -outward
    return Endplate(center_mm=center, normal=normal, face_mask=mask)


@dataclass(frozen=True)
class BodyFrame:
    """A vertebral body measured in its local frame (origin midway between the endplate centres,
    u → Left, v → posterior, w → cranial along the bisector of the endplate normals).

    The endplate *lines* are the midsagittal traces of the fitted endplate planes,
    ``w = w0 + slope · v``; the sagittal corners lie on them at the anterior (``v_anterior``) and
    posterior (``v_posterior``) extremes of the body in the midsagittal slab.
    """

    template_from_local: NDArray[np.float64]  # 4×4
    width_mm: float
    v_anterior: float
    v_posterior: float
    superior_line: tuple[float, float]  # (w0, slope)
    inferior_line: tuple[float, float]

    @property
    def depth_mm(self) -> float:
        return self.v_posterior - self.v_anterior

    def w_superior(self, v: Coord) -> Coord:
        w0, slope = self.superior_line
        return w0 + slope * v

    def w_inferior(self, v: Coord) -> Coord:
        w0, slope = self.inferior_line
        return w0 + slope * v

    @property
    def height_anterior_mm(self) -> float:
        return float(self.w_superior(self.v_anterior) - self.w_inferior(self.v_anterior))

    @property
    def height_posterior_mm(self) -> float:
        return float(self.w_superior(self.v_posterior) - self.w_inferior(self.v_posterior))

    def to_local(self, points: Points) -> Points:
        m = self.template_from_local
        return (np.asarray(points, dtype=np.float64) - m[:3, 3]) @ m[:3, :3]

    def to_template(self, points: Points) -> Points:
        m = self.template_from_local
        return np.asarray(points, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]


def sagittal_frame(origin: Points, w_axis: Points) -> NDArray[np.float64]:
    """4×4 frame: u = +x, w = the sagittal part of ``w_axis``, v = w × u (posterior)."""
    w = np.array([0.0, w_axis[1], w_axis[2]], dtype=np.float64)
    w /= np.linalg.norm(w)
    u = np.array([1.0, 0.0, 0.0])
    v = np.cross(w, u)
    frame = np.eye(4)
    frame[:3, 0], frame[:3, 1], frame[:3, 2], frame[:3, 3] = u, v, w, origin
    return frame


def _line(endplate: Endplate, frame: BodyFrame | NDArray[np.float64]) -> tuple[float, float]:
    m = frame if isinstance(frame, np.ndarray) else frame.template_from_local
    c = (endplate.center_mm - m[:3, 3]) @ m[:3, :3]
    n = endplate.normal @ m[:3, :3]
    slope = -n[1] / n[2]
    return float(c[2] - slope * c[1]), float(slope)


def body_frame(body: TriangleMesh, superior: Endplate, inferior: Endplate) -> BodyFrame:
    """Measure a vertebral body (width, midsagittal depth, endplate lines) in its local frame."""
    origin = 0.5 * (superior.center_mm + inferior.center_mm)
    frame = sagittal_frame(origin, superior.normal + inferior.normal)
    local = (np.asarray(body.vertices_mm, dtype=np.float64) - origin) @ frame[:3, :3]
    slab = np.abs(local[:, 0]) < MIDSAGITTAL_HALF_MM
    return BodyFrame(
        template_from_local=frame,
        width_mm=float(local[:, 0].max() - local[:, 0].min()),
        v_anterior=float(local[slab, 1].min()),
        v_posterior=float(local[slab, 1].max()),
        superior_line=_line(superior, frame),
        inferior_line=_line(inferior, frame),
    )


def vertex_normals(vertices: Points, faces: NDArray[np.integer]) -> Points:
    """Area-weighted outward vertex normals of a triangle surface."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_n)
    unit: Points = normals / (np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12)
    return unit


def endplate_vertex_centres(vertices: Points, faces: NDArray[np.integer]) -> tuple[Points, Points]:
    """(superior, inferior) endplate centres of a vertebral body as the placed skeleton's
    landmarks (and so the label measure's frame) take them: the body's thinnest principal
    direction, refined twice to run between the means of the vertices facing along it."""
    v = np.asarray(vertices, dtype=np.float64)
    centre = v.mean(axis=0)
    evecs = np.linalg.eigh(np.cov((v - centre).T))[1]
    axis = evecs[:, 0] * (1.0 if evecs[2, 0] > 0 else -1.0)
    normals = vertex_normals(v, np.asarray(faces))
    superior, inferior = centre, centre
    for _ in range(2):
        height = (v - centre) @ axis
        facing = normals @ axis
        superior = v[(facing > 0.7) & (height > 0)].mean(axis=0)
        inferior = v[(facing < -0.7) & (height < 0)].mean(axis=0)
        axis = (superior - inferior) / np.linalg.norm(superior - inferior)
        centre = 0.5 * (superior + inferior)
    return superior, inferior


def farthest_points(points: Points, count: int, start: int = 0) -> NDArray[np.intp]:
    """Indices of ``count`` points spread over ``points`` by farthest-point sampling."""
    points = np.asarray(points, dtype=np.float64)
    count = min(count, len(points))
    chosen = np.empty(count, dtype=np.intp)
    chosen[0] = start
    distance = np.linalg.norm(points - points[start], axis=1)
    for i in range(1, count):
        chosen[i] = int(np.argmax(distance))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[i]], axis=1))
    return chosen


#: Height step (mm) of the lines along which :func:`coronal_mean_width_mm` reads the body's width.
CORONAL_STEP_MM = 0.5
#: Heights where the body is narrower than this fraction of its widest are its endplates' edges
#: (a ray grazing the rim), not its width.
CORONAL_EDGE_FRACTION = 0.5


def coronal_widths_mm(vertices_local: Points, faces: NDArray[np.integer], v_mm: float) -> Points:
    """The body's left–right extent (mm) along the lines of the coronal plane ``v = v_mm``
    (local u, v, w), one per ``CORONAL_STEP_MM`` of height w over the height the plane cuts:
    from the triangles the plane crosses, the outermost crossings at each height."""
    v = np.asarray(vertices_local, dtype=np.float64)
    tri = v[np.asarray(faces)]  # (F, 3 corners, uvw)
    side = tri[:, :, 1] - v_mm
    crossing = (side.min(axis=1) < 0.0) & (side.max(axis=1) >= 0.0)
    segments = _plane_segments(tri[crossing], side[crossing])
    if not len(segments):
        return np.zeros(0)
    heights = np.arange(segments[:, :, 1].min(), segments[:, :, 1].max(), CORONAL_STEP_MM)
    low, high = segments[:, :, 1].min(axis=1), segments[:, :, 1].max(axis=1)
    inside = (low[:, None] <= heights[None, :]) & (high[:, None] > heights[None, :])
    dw = segments[:, 1, 1] - segments[:, 0, 1]
    t = (heights[None, :] - segments[:, 0, 1, None]) / np.where(np.abs(dw) < 1e-12, 1.0, dw)[
        :, None
    ]
    u = segments[:, 0, 0, None] + t * (segments[:, 1, 0] - segments[:, 0, 0])[:, None]
    u_max = np.where(inside, u, -np.inf).max(axis=0)
    u_min = np.where(inside, u, np.inf).min(axis=0)
    widths: Points = np.where(np.isfinite(u_max) & np.isfinite(u_min), u_max - u_min, 0.0)
    return widths


def _plane_segments(tri: Points, side: NDArray[np.float64]) -> Points:
    """(K, 2, 2) segments (u, w) where the triangles ``tri`` (already known to cross) meet the
    plane at signed distances ``side``: each triangle's two crossed edges."""
    points = np.zeros((len(tri), 2, 2))
    count = np.zeros(len(tri), dtype=np.intp)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        cut = (side[:, a] < 0.0) != (side[:, b] < 0.0)
        cut &= count < 2
        t = side[cut, a] / (side[cut, a] - side[cut, b])
        crossing = tri[cut, a] + t[:, None] * (tri[cut, b] - tri[cut, a])
        points[np.flatnonzero(cut), count[cut]] = crossing[:, [0, 2]]
        count[cut] += 1
    segments: Points = points[count == 2]
    return segments


def coronal_mean_width_mm(vertices_local: Points, faces: NDArray[np.integer], v_mm: float) -> float:
    """A vertebral body's mean width (mm): its coronal section through ``v = v_mm`` (the body's
    middle, local u, v, w), area / height, i.e. the mean of its left–right extents over its height,
    leaving out the heights where a line only grazes an endplate's edge (narrower than
    ``CORONAL_EDGE_FRACTION`` of the widest). Reads the waist and the rims' flare alike, as
    :mod:`models.yardstick` reads the body's height from its midsagittal area."""
    widths = coronal_widths_mm(vertices_local, faces, v_mm)
    if not len(widths) or widths.max() <= 0.0:
        raise ValueError(f"the plane v = {v_mm:.1f} mm does not cut the body")
    return mean_body_width_mm(widths)


def mean_body_width_mm(widths_mm: Points) -> float:
    """The mean of a body's left–right extents, one per height, leaving out the heights narrower
    than ``CORONAL_EDGE_FRACTION`` of the widest (lines that only graze an endplate's rim): the
    body width the warp fits, the yardstick and the label measure read."""
    widths = np.asarray(widths_mm, dtype=np.float64)
    return float(widths[widths >= CORONAL_EDGE_FRACTION * widths.max()].mean())
