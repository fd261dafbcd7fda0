"""Frames, rigid transforms and units: the conventions of the README's "Development" section in code.

Patient frame (``patient``/``world``): DICOM LPS, millimetres.
    origin  the phantom's origin as stated by the phantom (for the generated patient, the centre of
            the S1 superior endplate projected onto the midline; for an imported CT, the scanner
            origin of the series),
    +x      toward the patient's Left,
    +y      toward the patient's Posterior,
    +z      toward the patient's Superior (head).
The patient lies prone on the table, so posterior (+y) points up toward the ceiling in the room.

Transforms are 4x4 homogeneous float64 arrays named ``b_from_a``: they map coordinates expressed
in frame ``a`` into frame ``b``, so ``c_from_a = c_from_b @ b_from_a`` reads right to left.
In data files they are written ``AToB`` (PLUS style) with explicit ``from``/``to``.

Units: millimetres and degrees at every boundary (``sid_mm``, ``orbital_deg``); radians appear
only inside a function.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

Matrix4 = NDArray[np.float64]

#: Unit vectors of the LPS patient frame, in that frame.
LEFT = np.array([1.0, 0.0, 0.0])
POSTERIOR = np.array([0.0, 1.0, 0.0])
SUPERIOR = np.array([0.0, 0.0, 1.0])
RIGHT = -LEFT
ANTERIOR = -POSTERIOR
INFERIOR = -SUPERIOR

#: RAS (NIfTI/3D Slicer world) from LPS (DICOM): flip x and y.
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

ORTHONORMAL_TOLERANCE = 1e-6


class FrameError(ValueError):
    """A transform or point set that breaks the frame conventions; the message names the argument."""


def deg_to_rad(angle_deg: float | ArrayLike) -> float | NDArray[np.float64]:
    """Degrees to radians (only for use inside a function)."""
    return np.deg2rad(angle_deg)


def rad_to_deg(angle_rad: float | ArrayLike) -> float | NDArray[np.float64]:
    """Radians to degrees (for values that leave a function)."""
    return np.rad2deg(angle_rad)


def identity() -> Matrix4:
    """The 4x4 identity transform."""
    return np.eye(4)


def validate_rigid(b_from_a: ArrayLike, name: str = "transform") -> Matrix4:
    """Return ``b_from_a`` as a float64 4x4 array after checking it is a proper rigid transform.

    Checks shape, finiteness, the bottom row, orthonormality of the rotation and
    right-handedness (det = +1). Raises :class:`FrameError` naming ``name`` and the failed check.
    """
    matrix = np.asarray(b_from_a, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise FrameError(f"{name}: expected a 4x4 matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise FrameError(f"{name}: contains NaN or infinite values")
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0], atol=ORTHONORMAL_TOLERANCE):
        raise FrameError(f"{name}: bottom row must be [0, 0, 0, 1], got {matrix[3].tolist()}")
    rotation = matrix[:3, :3]
    gram_error = np.abs(rotation.T @ rotation - np.eye(3)).max()
    if gram_error > ORTHONORMAL_TOLERANCE * 100:
        raise FrameError(
            f"{name}: rotation part is not orthonormal (max |RᵀR − I| = {gram_error:.2e})"
        )
    det = float(np.linalg.det(rotation))
    if det < 0:
        raise FrameError(
            f"{name}: rotation is a reflection (det = {det:.3f}); frames are right-handed"
        )
    return matrix


def rigid(rotation: ArrayLike | None = None, translation_mm: ArrayLike | None = None) -> Matrix4:
    """Build a 4x4 rigid transform from a 3x3 rotation and a translation in mm."""
    matrix = np.eye(4)
    if rotation is not None:
        matrix[:3, :3] = np.asarray(rotation, dtype=np.float64)
    if translation_mm is not None:
        matrix[:3, 3] = np.asarray(translation_mm, dtype=np.float64).reshape(3)
    return validate_rigid(matrix, "rigid(rotation, translation_mm)")


def translation(offset_mm: ArrayLike) -> Matrix4:
    """A pure translation by ``offset_mm``."""
    return rigid(None, offset_mm)


def rotation_about_axis(axis: ArrayLike, angle_deg: float) -> NDArray[np.float64]:
    """3x3 right-handed rotation by ``angle_deg`` about ``axis`` (Rodrigues)."""
    axis_vec = np.asarray(axis, dtype=np.float64).reshape(3)
    norm = np.linalg.norm(axis_vec)
    if not np.isfinite(norm) or norm == 0:
        raise FrameError(
            f"rotation_about_axis: axis must be a non-zero finite vector, got {str(axis)}"
        )
    ux, uy, uz = axis_vec / norm
    angle_rad = np.deg2rad(angle_deg)
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    cross = np.array([[0.0, -uz, uy], [uz, 0.0, -ux], [-uy, ux, 0.0]])
    outer = np.outer([ux, uy, uz], [ux, uy, uz])
    rotation: NDArray[np.float64] = c * np.eye(3) + s * cross + (1.0 - c) * outer
    return rotation


def rotation_transform(
    axis: ArrayLike, angle_deg: float, center_mm: ArrayLike | None = None
) -> Matrix4:
    """4x4 rotation by ``angle_deg`` about ``axis`` through the point ``center_mm``."""
    rot = rotation_about_axis(axis, angle_deg)
    matrix = np.eye(4)
    matrix[:3, :3] = rot
    if center_mm is not None:
        center = np.asarray(center_mm, dtype=np.float64).reshape(3)
        matrix[:3, 3] = center - rot @ center
    return matrix


def compose(*transforms: ArrayLike) -> Matrix4:
    """Matrix product of transforms, written as they read: ``compose(c_from_b, b_from_a)``."""
    if not transforms:
        return np.eye(4)
    result = np.eye(4)
    for index, transform in enumerate(transforms):
        matrix = np.asarray(transform, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise FrameError(f"compose: argument {index} is not 4x4 (shape {matrix.shape})")
        result = result @ matrix
    return result


def rigid_fit(source_points: ArrayLike, target_points: ArrayLike) -> Matrix4:
    """Least-squares rigid ``target_from_source`` taking paired points onto each other.

    Arun, Huang & Blostein 1987 / Horn 1987 (SVD of the cross-covariance) with Umeyama's 1991
    reflection fix, so the result is always a proper rotation (det +1). The one rigid fit of the
    project: tracker registration, the anatomy yardstick and the template registration use it.
    """
    source = np.asarray(source_points, dtype=np.float64)
    target = np.asarray(target_points, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3:
        raise ValueError(
            f"rigid_fit needs two (N, 3) point arrays of the same shape, got {source.shape} "
            f"and {target.shape}"
        )
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    covariance = (source - source_mean).T @ (target - target_mean)
    u, _, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rotation = vt.T @ np.diag([1.0, 1.0, sign]) @ u.T
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = target_mean - rotation @ source_mean
    return matrix


def invert_rigid(b_from_a: ArrayLike, name: str = "transform") -> Matrix4:
    """Exact inverse ``a_from_b`` of a rigid transform (Rᵀ, −Rᵀt), after validating it."""
    matrix = validate_rigid(b_from_a, name)
    inverse = np.eye(4)
    rot_t = matrix[:3, :3].T
    inverse[:3, :3] = rot_t
    inverse[:3, 3] = -rot_t @ matrix[:3, 3]
    return inverse


def apply_to_points(b_from_a: ArrayLike, points_a: ArrayLike) -> NDArray[np.float64]:
    """Map points (…, 3) in frame a into frame b (rotation and translation)."""
    matrix = np.asarray(b_from_a, dtype=np.float64)
    pts = np.asarray(points_a, dtype=np.float64)
    if pts.shape[-1] != 3:
        raise FrameError(f"apply_to_points: points must have 3 coordinates, got shape {pts.shape}")
    return pts @ matrix[:3, :3].T + matrix[:3, 3]


def apply_to_vectors(b_from_a: ArrayLike, vectors_a: ArrayLike) -> NDArray[np.float64]:
    """Map direction vectors (…, 3) from frame a into frame b (rotation only)."""
    matrix = np.asarray(b_from_a, dtype=np.float64)
    vecs = np.asarray(vectors_a, dtype=np.float64)
    if vecs.shape[-1] != 3:
        raise FrameError(f"apply_to_vectors: vectors must have 3 coordinates, got {vecs.shape}")
    return vecs @ matrix[:3, :3].T


def quaternion_to_matrix(q_wxyz: ArrayLike, name: str = "quaternion") -> NDArray[np.float64]:
    """3x3 rotation from a quaternion (w, x, y, z); normalises it, refuses a zero or NaN one."""
    q = np.asarray(q_wxyz, dtype=np.float64).reshape(4)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-9:
        raise FrameError(f"{name}: not a valid quaternion {q.tolist()}")
    w, x, y, z = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(rotation: ArrayLike) -> NDArray[np.float64]:
    """Quaternion (w, x, y, z) with w ≥ 0 of a 3x3 rotation (Shepperd's method)."""
    m = np.asarray(rotation, dtype=np.float64)[:3, :3]
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    quat = np.asarray(q)
    quat /= np.linalg.norm(quat)
    return -quat if quat[0] < 0 else quat


def unit(vector: ArrayLike, name: str = "vector") -> NDArray[np.float64]:
    """The unit vector along ``vector``; refuses a zero or non-finite one."""
    vec = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(vec)
    if not np.isfinite(norm) or norm < 1e-12:
        raise FrameError(f"{name}: cannot normalise a zero or non-finite vector {vec.tolist()}")
    return vec / norm


def angle_between_deg(u: ArrayLike, v: ArrayLike) -> float:
    """Unsigned angle between two vectors in degrees (numerically safe near 0° and 180°)."""
    a = unit(u, "u")
    b = unit(v, "v")
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), np.dot(a, b))))


def lps_to_ras(points_lps: ArrayLike) -> NDArray[np.float64]:
    """Points from DICOM LPS to NIfTI/Slicer RAS (x and y negated)."""
    return apply_to_points(RAS_FROM_LPS, points_lps)


def ras_to_lps(points_ras: ArrayLike) -> NDArray[np.float64]:
    """Points from NIfTI/Slicer RAS to DICOM LPS (the same flip; it is its own inverse)."""
    return apply_to_points(RAS_FROM_LPS, points_ras)


def transform_to_record(b_from_a: ArrayLike, from_frame: str, to_frame: str) -> dict[str, Any]:
    """A data-file record ``{"name": "AToB", "from", "to", "matrix"}`` for a validated transform."""
    matrix = validate_rigid(b_from_a, f"{from_frame}To{to_frame}")
    return {
        "name": f"{from_frame}To{to_frame}",
        "from": from_frame,
        "to": to_frame,
        "matrix": [[float(value) for value in row] for row in matrix],
    }


def transform_from_record(record: dict[str, Any], where: str = "transform record") -> Matrix4:
    """Read back a record written by :func:`transform_to_record`, validating it."""
    for key in ("from", "to", "matrix"):
        if key not in record:
            raise FrameError(f"{where}: missing field '{key}'")
    name = f"{record['from']}To{record['to']}"
    return validate_rigid(record["matrix"], f"{where} {name}")


def bounding_box_mm(points: Iterable[ArrayLike]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Axis-aligned bounds (min, max) of a set of points in mm."""
    pts = np.asarray(list(points), dtype=np.float64).reshape(-1, 3)
    return pts.min(axis=0), pts.max(axis=0)
