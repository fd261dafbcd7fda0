"""Fast DRR for interaction: Joseph's method (Joseph 1982) on slice-ordered copies of the μ volume.

Each pixel's ray is sampled once per voxel slice along its dominant axis (the voxel axis it
advances fastest along); in each slice μ is bilinearly interpolated and weighted by the ray's
length per slice. Compared with Siddon's exact traversal this reads 4 neighbouring voxels per
slice with no branching, and — because every volume copy stores its slicing axis contiguously —
successive samples of a ray are adjacent in memory.

:class:`FastDRR` holds the three copies (each zero-padded by one voxel in the two in-slice axes so
that bilinear reads never leave the array) and renders a :class:`ProjectionGeometry` in parallel
over image rows. For display it renders at a lower resolution and upsamples bilinearly
(:func:`upsample`), the pixel centres of both grids covering the same detector area
(:meth:`ProjectionGeometry.resized`).
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from render.attenuation import AttenuationVolume
from render.geometry import ProjectionGeometry


@njit(cache=True, nogil=True)
def _joseph_ray(
    vol: NDArray,
    sb: float,
    sc: float,
    sa: float,
    db: float,
    dc: float,
    da: float,
    length_mm: float,
) -> float:
    """One ray through a slice-ordered copy ``vol[b + 1, c + 1, a]`` (padded by 1 in b and c)."""
    nb = vol.shape[0] - 2
    nc = vol.shape[1] - 2
    na = vol.shape[2]
    # parametric range where the sample lies inside the padded in-slice extent and t ∈ [0, 1]
    t0 = 0.0
    t1 = 1.0
    for s, d, n in ((sb, db, nb), (sc, dc, nc)):
        if abs(d) < 1e-12:
            if s <= -1.0 or s >= n:
                return 0.0
        else:
            ta = (-1.0 - s) / d
            tb = (n - s) / d
            if ta > tb:
                ta, tb = tb, ta
            t0 = max(t0, ta)
            t1 = min(t1, tb)
    if t0 >= t1:
        return 0.0
    ka = sa + t0 * da
    kb = sa + t1 * da
    if ka > kb:
        ka, kb = kb, ka
    k_first = max(int(np.ceil(ka)), 0)
    k_last = min(int(np.floor(kb)), na - 1)
    if k_last < k_first:
        return 0.0
    inv_da = 1.0 / da
    total = 0.0
    for k in range(k_first, k_last + 1):
        t = (k - sa) * inv_da
        xb = sb + t * db + 1.0
        xc = sc + t * dc + 1.0
        ib = int(xb)  # xb > 0 inside the padded range, so int() floors
        ic = int(xc)
        if ib < 0 or ic < 0 or ib > nb or ic > nc:
            continue
        fb = xb - ib
        fc = xc - ic
        v00 = np.float32(vol[ib, ic, k])
        v10 = np.float32(vol[ib + 1, ic, k])
        v01 = np.float32(vol[ib, ic + 1, k])
        v11 = np.float32(vol[ib + 1, ic + 1, k])
        total += (1.0 - fb) * ((1.0 - fc) * v00 + fc * v01) + fb * ((1.0 - fc) * v10 + fc * v11)
    return total * length_mm * abs(inv_da)


@njit(cache=True, nogil=True, parallel=True)
def _joseph_image(
    vol_i: NDArray,
    vol_j: NDArray,
    vol_k: NDArray,
    scale: float,
    voxel_from_lps: NDArray[np.float64],
    source: NDArray[np.float64],
    origin: NDArray[np.float64],
    u: NDArray[np.float64],
    v: NDArray[np.float64],
    pixel_mm: float,
    height: int,
    width: int,
) -> NDArray[np.float32]:
    out = np.empty((height, width), np.float32)
    A = voxel_from_lps
    s = np.empty(3)
    for a in range(3):
        s[a] = A[a, 0] * source[0] + A[a, 1] * source[1] + A[a, 2] * source[2] + A[a, 3]
    for r in prange(height):
        p = np.empty(3)
        e = np.empty(3)
        d = np.empty(3)
        for c in range(width):
            for a in range(3):
                p[a] = origin[a] + (c * u[a] + r * v[a]) * pixel_mm
            length = np.sqrt(
                (p[0] - source[0]) ** 2 + (p[1] - source[1]) ** 2 + (p[2] - source[2]) ** 2
            )
            for a in range(3):
                e[a] = A[a, 0] * p[0] + A[a, 1] * p[1] + A[a, 2] * p[2] + A[a, 3]
                d[a] = e[a] - s[a]
            ad0 = abs(d[0])
            ad1 = abs(d[1])
            ad2 = abs(d[2])
            if ad0 >= ad1 and ad0 >= ad2:
                value = _joseph_ray(vol_i, s[1], s[2], s[0], d[1], d[2], d[0], length)
            elif ad1 >= ad2:
                value = _joseph_ray(vol_j, s[0], s[2], s[1], d[0], d[2], d[1], length)
            else:
                value = _joseph_ray(vol_k, s[0], s[1], s[2], d[0], d[1], d[2], length)
            out[r, c] = value * scale
    return out


def _slice_ordered(mu: NDArray, axis: int) -> NDArray:
    """Copy with ``axis`` last (contiguous) and the other two axes zero-padded by one voxel."""
    others = [a for a in range(3) if a != axis]
    moved = np.transpose(mu, (*others, axis))
    return np.ascontiguousarray(np.pad(moved, ((1, 1), (1, 1), (0, 0))))


#: uint16 quantisation: μ step = max μ / 65535 (≈1.5e-6 mm⁻¹ for bone at 0.1 mm⁻¹, < 0.01 % of
#: water), halving the memory each ray streams through compared with float32.
QUANTISATION_LEVELS = 65535


class FastDRR:
    """Joseph-method line integrals of one attenuation volume; thread-safe, GIL released."""

    def __init__(self, volume: AttenuationVolume, quantise: bool = True) -> None:
        self.volume = volume
        self.voxel_from_lps = np.ascontiguousarray(np.linalg.inv(volume.lps_from_voxel)[:3, :])
        mu = volume.mu
        self.scale = 1.0
        if quantise:
            top = float(mu.max()) if mu.size else 0.0
            self.scale = top / QUANTISATION_LEVELS if top > 0 else 1.0
            mu = np.rint(np.clip(mu, 0.0, None) / self.scale).astype(np.uint16)
        self._copies = tuple(_slice_ordered(mu, axis) for axis in range(3))

    @property
    def nbytes(self) -> int:
        """Memory held by the three slice-ordered copies."""
        return int(sum(c.nbytes for c in self._copies))

    def line_integrals(self, geometry: ProjectionGeometry) -> NDArray[np.float32]:
        """(H, W) float32 ∫μ dl from the source to every pixel centre of ``geometry``."""
        return _joseph_image(
            self._copies[0],
            self._copies[1],
            self._copies[2],
            self.scale,
            self.voxel_from_lps,
            np.asarray(geometry.source_lps_mm, dtype=np.float64),
            np.asarray(geometry.detector_origin_lps_mm, dtype=np.float64),
            np.asarray(geometry.detector_u_lps, dtype=np.float64),
            np.asarray(geometry.detector_v_lps, dtype=np.float64),
            float(geometry.pixel_mm),
            int(geometry.height_px),
            int(geometry.width_px),
        )


def upsample(image: NDArray[np.float32], width_px: int, height_px: int) -> NDArray[np.float32]:
    """Bilinear resize with pixel centres covering the same area (matches ``geometry.resized``)."""
    if image.shape == (height_px, width_px):
        return image
    return cv2.resize(
        np.ascontiguousarray(image, dtype=np.float32),
        (width_px, height_px),
        interpolation=cv2.INTER_LINEAR,
    )
