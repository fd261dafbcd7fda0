"""Instrument geometry against the patient: the shaft in tissue, tip-to-target, trajectory angles.

The shaft is sampled from the tip back toward the handle every ``step_mm`` (≤ 0.5 mm, the issue's
rule) until it leaves the body (label ``background``) or the instrument ends. Trajectory errors are
the angle between the actual and the planned direction in the axial plane (x–y) and the
difference of their cranio-caudal tilts (the sagittal error), as read on axial CT and the lateral.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from fluorosim.models.patient import Patient

SHAFT_STEP_MM = 0.5


def shaft_points(
    patient: Patient,
    tip_lps_mm: NDArray[np.float64],
    direction_lps: NDArray[np.float64],
    length_mm: float,
    step_mm: float = SHAFT_STEP_MM,
) -> NDArray[np.float64]:
    """(N, 3) points tip → back along the shaft, stopping where the shaft leaves the body.

    The first point is the tip. Points behind the skin entry are dropped: the part of the
    instrument in air does not count as a path in tissue.
    """
    tip = np.asarray(tip_lps_mm, dtype=np.float64)
    direction = np.asarray(direction_lps, dtype=np.float64)
    count = max(1, int(math.floor(length_mm / step_mm)) + 1)
    distances = np.arange(count) * step_mm
    points = tip[None, :] - distances[:, None] * direction[None, :]
    labels = patient.labels_at(points)
    outside = np.nonzero(labels == 0)[0]
    if len(outside) == 0:
        return points
    first_out = int(outside[0])
    # the tip itself may be outside (not yet in the body): keep only the tip then
    return points[: max(1, first_out)]


def path_in_tissue_mm(points: NDArray[np.float64], step_mm: float = SHAFT_STEP_MM) -> float:
    """Length of the sampled shaft inside the body (tip to skin entry)."""
    return max(0.0, (len(points) - 1) * step_mm)


def tip_to_target_mm(tip_lps_mm: NDArray[np.float64], target_lps_mm: NDArray[np.float64]) -> float:
    """Euclidean distance from the tip to the target."""
    return float(np.linalg.norm(np.asarray(tip_lps_mm) - np.asarray(target_lps_mm)))


def _plane_angle_deg(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-9 or nb < 1e-9:
        return 0.0
    cosine = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return math.degrees(math.acos(cosine))


def trajectory_errors_deg(
    direction_lps: NDArray[np.float64], planned_lps: NDArray[np.float64]
) -> tuple[float, float]:
    """(axial, sagittal) trajectory errors in degrees against the planned direction.

    Axial: the angle between the two directions projected onto the axial plane (x–y), what an
    axial CT slice shows. Sagittal: the difference of their cranio-caudal tilts (elevation out of
    the axial plane, asin of the S component), what a lateral view shows. Both stay defined for
    lateral (SIJ pin) and posterior (endoscopic) trajectories alike.
    """
    d = np.asarray(direction_lps, dtype=np.float64)
    p = np.asarray(planned_lps, dtype=np.float64)
    d = d / np.linalg.norm(d)
    p = p / np.linalg.norm(p)
    axial = _plane_angle_deg(d[[0, 1]], p[[0, 1]])
    sagittal = abs(
        math.degrees(math.asin(float(np.clip(d[2], -1, 1))))
        - math.degrees(math.asin(float(np.clip(p[2], -1, 1))))
    )
    return axial, sagittal


def distance_to_labels_mm(
    patient: Patient,
    points_lps: NDArray[np.float64],
    label_values: list[int],
    cap_mm: float = 30.0,
) -> float:
    """Shortest distance (mm) from any of the points to a voxel of the given labels.

    Exact Euclidean distance transform (voxel-centre accuracy, anisotropic spacing respected) on
    a crop around the points padded by ``cap_mm``; returns ``cap_mm`` when nothing is that close,
    0 when a point lies inside the structure.
    """
    points = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
    if not label_values or len(points) == 0:
        return cap_mm
    spacing = patient.spacing_mm
    ijk = points @ patient.voxel_from_lps[:3, :3].T + patient.voxel_from_lps[:3, 3]
    pad = np.ceil(cap_mm / spacing).astype(int) + 1
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - pad, 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + pad + 1, np.array(patient.shape))
    if np.any(hi <= lo):
        return cap_mm
    crop = patient.labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    mask = np.isin(crop, label_values)
    if not mask.any():
        return cap_mm
    distance = ndimage.distance_transform_edt(~mask, sampling=spacing)
    idx = np.rint(ijk).astype(int) - lo
    idx = np.clip(idx, 0, np.array(crop.shape) - 1)
    return float(min(cap_mm, distance[idx[:, 0], idx[:, 1], idx[:, 2]].min()))


def segment_distance_mm(
    a0: NDArray[np.float64],
    a1: NDArray[np.float64],
    b0: NDArray[np.float64],
    b1: NDArray[np.float64],
) -> float:
    """Exact shortest distance between segments a0–a1 and b0–b1 (closest points, clamped)."""
    a0, a1, b0, b1 = (np.asarray(v, dtype=np.float64) for v in (a0, a1, b0, b1))
    u, v, w = a1 - a0, b1 - b0, a0 - b0
    a, b, c, d, e = u @ u, u @ v, v @ v, u @ w, v @ w
    denom = a * c - b * b
    candidates = []
    if denom > 1e-12:
        s = float(np.clip((b * e - c * d) / denom, 0.0, 1.0))
        t = float(np.clip((b * s + e) / c, 0.0, 1.0))
        s = float(np.clip((b * t - d) / a, 0.0, 1.0)) if a > 1e-12 else 0.0
        candidates.append(np.linalg.norm(w + s * u - t * v))
    # end points against the other segment (covers parallel and clamped cases)
    for p, q0, q in ((a0, b0, v), (a1, b0, v), (b0, a0, u), (b1, a0, u)):
        qq = q @ q
        t = float(np.clip(((p - q0) @ q) / qq, 0.0, 1.0)) if qq > 1e-12 else 0.0
        candidates.append(np.linalg.norm(p - (q0 + t * q)))
    return float(min(candidates))
