"""Exact reference DRR: Siddon's ray caster (Siddon 1985; incremental form of Jacobs et al. 1998).

Every pixel's ray, from the focal spot to the pixel centre, is traced through the voxel grid plane
crossing by plane crossing; the line integral is the exact sum of μ × chord length over the voxels
it crosses, treating each voxel as a uniform box. It is slow on purpose-built terms (no
interpolation, no resampling) and is the yardstick the fast renderer is tested against.

``model="trilinear"`` integrates instead the trilinear interpolant through the voxel centres (zero
beyond the outer centres' neighbours), also exactly: Siddon's traversal of the dual grid (cells
between voxel centres), where the interpolant is a cubic of the ray parameter, so Simpson's rule
is exact per segment. That is the continuous object the fast renderer samples, so comparing the
two isolates the fast renderer's sampling error from the choice of volume model.

Rays are traced in continuous voxel-index space (voxel n covers [n − ½, n + ½] on each axis), so
any affine ``lps_from_voxel`` works; the chord length in mm is the parametric length times the
ray's length in mm.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from fluorosim.render.attenuation import AttenuationVolume
from fluorosim.render.geometry import ProjectionGeometry


@njit(cache=True, nogil=True)
def _clip_to_box(
    start: NDArray[np.float64],
    d: NDArray[np.float64],
    low: float,
    shape: tuple[int, int, int],
    high_offset: float,
) -> tuple[float, float]:
    """Parameters [t_min, t_max] ⊂ [0, 1] of start + t·d inside the box low ≤ x_a ≤ shape[a] +
    high_offset on every axis (an empty interval, t_min ≥ t_max, when the segment misses it)."""
    t_min = 0.0
    t_max = 1.0
    for a in range(3):
        high = shape[a] + high_offset
        if abs(d[a]) < 1e-12:
            if start[a] <= low or start[a] >= high:
                return 1.0, 0.0
        else:
            t0 = (low - start[a]) / d[a]
            t1 = (high - start[a]) / d[a]
            if t0 > t1:
                t0, t1 = t1, t0
            t_min = max(t_min, t0)
            t_max = min(t_max, t1)
    return t_min, t_max


@njit(cache=True, nogil=True)
def _siddon_ray(
    mu: NDArray[np.float32],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    length_mm: float,
) -> float:
    """∫μ dl along the segment start → end (voxel-index coordinates), times ``length_mm``."""
    d = end - start
    t_min, t_max = _clip_to_box(start, d, -0.5, mu.shape, -0.5)
    if t_min >= t_max:
        return 0.0
    idx = np.empty(3, np.int64)
    step = np.empty(3, np.int64)
    t_next = np.empty(3, np.float64)
    t_delta = np.empty(3, np.float64)
    t_mid = 0.5 * (t_min + min(t_max, t_min + 1e-9))
    for a in range(3):
        p = start[a] + t_mid * d[a]
        i = int(np.floor(p + 0.5))
        i = min(max(i, 0), mu.shape[a] - 1)
        idx[a] = i
        if d[a] > 1e-12:
            step[a] = 1
            t_next[a] = (i + 0.5 - start[a]) / d[a]
            t_delta[a] = 1.0 / d[a]
        elif d[a] < -1e-12:
            step[a] = -1
            t_next[a] = (i - 0.5 - start[a]) / d[a]
            t_delta[a] = -1.0 / d[a]
        else:
            step[a] = 0
            t_next[a] = np.inf
            t_delta[a] = np.inf
    total = 0.0
    t = t_min
    while t < t_max:
        a = 0
        if t_next[1] < t_next[a]:
            a = 1
        if t_next[2] < t_next[a]:
            a = 2
        t_end = min(t_next[a], t_max)
        if t_end > t:
            total += mu[idx[0], idx[1], idx[2]] * (t_end - t)
        t = t_end
        idx[a] += step[a]
        if idx[a] < 0 or idx[a] >= mu.shape[a]:
            break
        t_next[a] += t_delta[a]
    return total * length_mm


@njit(cache=True, nogil=True)
def _trilinear(mu: NDArray[np.float32], x: float, y: float, z: float) -> float:
    """Trilinear interpolant of ``mu`` (voxel values at integer indices, zero outside)."""
    i0 = int(np.floor(x))
    j0 = int(np.floor(y))
    k0 = int(np.floor(z))
    fx = x - i0
    fy = y - j0
    fz = z - k0
    total = 0.0
    for di in range(2):
        i = i0 + di
        if i < 0 or i >= mu.shape[0]:
            continue
        wx = fx if di else 1.0 - fx
        for dj in range(2):
            j = j0 + dj
            if j < 0 or j >= mu.shape[1]:
                continue
            wy = fy if dj else 1.0 - fy
            for dk in range(2):
                k = k0 + dk
                if k < 0 or k >= mu.shape[2]:
                    continue
                wz = fz if dk else 1.0 - fz
                total += wx * wy * wz * mu[i, j, k]
    return total


@njit(cache=True, nogil=True)
def _siddon_trilinear_ray(
    mu: NDArray[np.float32],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    length_mm: float,
) -> float:
    """Exact ∫ of the trilinear interpolant along start → end (voxel-index coordinates).

    Siddon's traversal of the dual grid (cells between voxel centres): inside a cell the
    interpolant is a cubic polynomial of the ray parameter, so Simpson's rule is exact per segment.
    """
    d = end - start
    t_min, t_max = _clip_to_box(start, d, -1.0, mu.shape, 0.0)
    if t_min >= t_max:
        return 0.0
    cell = np.empty(3, np.int64)
    t_next = np.empty(3, np.float64)
    t_delta = np.empty(3, np.float64)
    step = np.empty(3, np.int64)
    t_mid = t_min + 1e-9 * (t_max - t_min)
    for a in range(3):
        cell[a] = int(np.floor(start[a] + t_mid * d[a]))
        if d[a] > 1e-12:
            step[a] = 1
            t_next[a] = (cell[a] + 1 - start[a]) / d[a]
            t_delta[a] = 1.0 / d[a]
        elif d[a] < -1e-12:
            step[a] = -1
            t_next[a] = (cell[a] - start[a]) / d[a]
            t_delta[a] = -1.0 / d[a]
        else:
            step[a] = 0
            t_next[a] = np.inf
            t_delta[a] = np.inf
    t = t_min
    f_t = _trilinear(mu, start[0] + t * d[0], start[1] + t * d[1], start[2] + t * d[2])
    total = 0.0
    while t < t_max:
        a = 0
        if t_next[1] < t_next[a]:
            a = 1
        if t_next[2] < t_next[a]:
            a = 2
        t_end = min(t_next[a], t_max)
        if t_end > t:
            tm = 0.5 * (t + t_end)
            f_m = _trilinear(mu, start[0] + tm * d[0], start[1] + tm * d[1], start[2] + tm * d[2])
            f_e = _trilinear(
                mu, start[0] + t_end * d[0], start[1] + t_end * d[1], start[2] + t_end * d[2]
            )
            total += (t_end - t) * (f_t + 4.0 * f_m + f_e) / 6.0
            f_t = f_e
        t = t_end
        cell[a] += step[a]
        t_next[a] += t_delta[a]
    return total * length_mm


@njit(cache=True, nogil=True, parallel=True)
def _siddon_segments(
    mu: NDArray[np.float32],
    starts_voxel: NDArray[np.float64],
    ends_voxel: NDArray[np.float64],
    lengths_mm: NDArray[np.float64],
    trilinear: bool,
) -> NDArray[np.float64]:
    n = starts_voxel.shape[0]
    out = np.empty(n, np.float64)
    for r in prange(n):
        if trilinear:
            out[r] = _siddon_trilinear_ray(mu, starts_voxel[r], ends_voxel[r], lengths_mm[r])
        else:
            out[r] = _siddon_ray(mu, starts_voxel[r], ends_voxel[r], lengths_mm[r])
    return out


def _to_voxel(volume: AttenuationVolume, points_lps: NDArray[np.float64]) -> NDArray[np.float64]:
    voxel_from_lps = np.linalg.inv(volume.lps_from_voxel)
    points_voxel: NDArray[np.float64] = (
        points_lps @ voxel_from_lps[:3, :3].T + voxel_from_lps[:3, 3]
    )
    return points_voxel


#: Volume models the exact caster integrates: voxels as uniform boxes, or the trilinear
#: interpolant through the voxel centres (the continuous object the fast renderer samples).
MODELS = ("box", "trilinear")


def _check_model(model: str) -> bool:
    if model not in MODELS:
        raise ValueError(f"volume model must be one of {MODELS}, got {model!r}")
    return model == "trilinear"


def segment_line_integrals(
    volume: AttenuationVolume,
    starts_lps_mm: NDArray[np.float64],
    ends_lps_mm: NDArray[np.float64],
    model: str = "box",
) -> NDArray[np.float64]:
    """Exact ∫μ dl (dimensionless) along LPS segments (N, 3) → (N,), for a volume model."""
    trilinear = _check_model(model)
    starts = np.ascontiguousarray(np.asarray(starts_lps_mm, dtype=np.float64).reshape(-1, 3))
    ends = np.ascontiguousarray(np.asarray(ends_lps_mm, dtype=np.float64).reshape(-1, 3))
    lengths = np.linalg.norm(ends - starts, axis=1)
    return _siddon_segments(
        volume.mu,
        np.ascontiguousarray(_to_voxel(volume, starts)),
        np.ascontiguousarray(_to_voxel(volume, ends)),
        lengths,
        trilinear,
    )


def line_integrals_exact(
    volume: AttenuationVolume, geometry: ProjectionGeometry, model: str = "box"
) -> NDArray[np.float32]:
    """(H, W) float32 exact line integrals of μ from the source to every pixel centre."""
    ends = geometry.pixel_centers_lps().reshape(-1, 3)
    starts = np.broadcast_to(geometry.source_lps_mm, ends.shape)
    values = segment_line_integrals(volume, starts, ends, model)
    return values.reshape(geometry.height_px, geometry.width_px).astype(np.float32)
