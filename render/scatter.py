"""Scattered radiation at the detector: a thickness-dependent SPR spread by a broad kernel.

The usual fast model of scatter in projection imaging (the convolution / scatter-kernel
superposition method: Love & Kruger 1987, Boone & Seibert 1988; the standard in cone-beam CT
scatter correction): every detector pixel's primary P(x) = N0·exp(−∫μ dl) emits scatter in
proportion to the scatter-to-primary ratio of the thickness it traversed, and that scatter lands
spread by a broad, normalised kernel K::

    S(x) = Σ_x' K(x − x') · SPR(t(x')) · P(x')

For a uniform slab larger than the kernel this is exactly S = SPR·P, so the contrast of a small
detail falls by 1/(1 + SPR) (Bushberg et al., *The Essential Physics of Medical Imaging*, scatter
and grids chapter). A collimated field keeps only the kernel's part inside the field, so coning in
lowers the scatter, as on a real C-arm.

``t`` is the water-equivalent thickness ∫μ dl / μ_water(E). The SPR without a grid follows the
Berger form of a broad-beam build-up factor, SPR = a·t·exp(b·t), with a, b set by two anchors:
≈1.8 at 10 cm and ≈4.5 at 20 cm of water for a large field at 70–90 kVp (Bushberg et al.: "≈3–5
through ≈20 cm abdomen/pelvis"; the 10 cm anchor is the order of the Monte Carlo values of Chan &
Doi 1985 and Boone & Seibert 1988 — approximate, not a measured device). It gives ≈8.4 at 30 cm.
The C-arm's anti-scatter grid passes a fraction Ts of the scatter and Tp of the primary
(a 10:1 grid: Ts ≈ 0.12, Tp ≈ 0.70; Bushberg et al.), so the recorded SPR is SPR·Ts/Tp: ≈0.77
through 20 cm, inside Bushberg's "≈0.5–1 with a grid".

The kernel is a mixture of two Gaussians at the detector (σ 25 and 70 mm: a core and the long
tail of multiply-scattered photons widened by the air gap). It runs on a coarse grid (about 64²
blocks) as two small matrix products per Gaussian; block averaging and the bilinear upsampling
preserve the sum of the signal. The block means of the primary and of the transmission are
summed in one numba pass (:func:`_block_means`): at 512², 0.27 ms for the whole scatter field
(0.07 ms of it the block means, where a masked copy and two area resizes took 0.26 ms).

The field is finite (``finite_field``, the default). The anchors above are large radiographic
fields (35 × 43 cm), where nearly all the scatter a point emits lands on the receptor. A C-arm's
collimator confines the beam to the receptor's field (23 cm for a 9-inch intensifier), so no
scatter comes from beyond it, and scatter aimed past the detector's edge is lost: the kernel
runs with open boundaries at the edge of the detector. SPR therefore grows with the field size and
the air gap (the wider the kernel, the more is lost), as measured (Bushberg et al., scatter and
grids chapter: SPR rises with field size; Sorenson & Floch 1985: air-gap scatter rejection). At
the middle of a square field of side L it is SPR · Σ w·erf(L / (2√2 σ))², at the edges about
half that. ``finite_field=False`` uses mirror boundaries instead (an infinite field: exactly
SPR × primary over a uniform slab).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import cv2
import numpy as np
from numba import njit
from numpy.typing import NDArray

#: Coarse grid size the broad kernels run on (blocks per side, about).
COARSE_TARGET_PX = 64


@dataclass(frozen=True)
class ScatterModel:
    """Scatter-to-primary ratio as a function of water-equivalent thickness, and its kernel.

    ``spr_no_grid_10cm`` / ``spr_no_grid_20cm``: SPR without a grid through 10 / 20 cm of water
    (large field); ``grid_primary_transmission`` / ``grid_scatter_transmission``: Tp and Ts of
    the anti-scatter grid; ``kernel_sigmas_mm`` / ``kernel_weights``: the Gaussian mixture at
    the detector (weights normalised); ``finite_field``: scatter aimed past the detector's edge
    is lost (open boundaries; False: mirror boundaries, an infinite field).
    """

    spr_no_grid_10cm: float = 1.8
    spr_no_grid_20cm: float = 4.5
    grid_primary_transmission: float = 0.70
    grid_scatter_transmission: float = 0.12
    kernel_sigmas_mm: tuple[float, ...] = (25.0, 70.0)
    kernel_weights: tuple[float, ...] = (0.5, 0.5)
    finite_field: bool = True

    def __post_init__(self) -> None:
        checks = {
            "spr_no_grid_10cm": self.spr_no_grid_10cm > 0,
            # a·t·exp(b·t) with b ≥ 0: at least twice the 10 cm value at 20 cm
            "spr_no_grid_20cm": self.spr_no_grid_20cm >= 2 * self.spr_no_grid_10cm,
            "grid_primary_transmission": 0 < self.grid_primary_transmission <= 1,
            "grid_scatter_transmission": 0 <= self.grid_scatter_transmission <= 1,
            "kernel_sigmas_mm": len(self.kernel_sigmas_mm) > 0
            and all(s > 0 for s in self.kernel_sigmas_mm),
            "kernel_weights": len(self.kernel_weights) == len(self.kernel_sigmas_mm)
            and all(w >= 0 for w in self.kernel_weights)
            and sum(self.kernel_weights) > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"ScatterModel.{name}: out of range ({getattr(self, name)!r})")

    @property
    def berger_coefficients(self) -> tuple[float, float]:
        """(a per mm, b per mm) of SPR_no_grid(t) = a·t·exp(b·t) through the two anchors."""
        b = math.log(self.spr_no_grid_20cm / (2 * self.spr_no_grid_10cm)) / 100.0
        a = self.spr_no_grid_10cm / (100.0 * math.exp(100.0 * b))
        return a, b

    @property
    def grid_factor(self) -> float:
        """Ts / Tp: how much the grid lowers the SPR."""
        return self.grid_scatter_transmission / self.grid_primary_transmission

    def spr_no_grid(self, thickness_mm: NDArray[np.floating] | float) -> NDArray[np.float64]:
        """SPR without a grid through ``thickness_mm`` of water (infinite field)."""
        a, b = self.berger_coefficients
        t = np.maximum(np.asarray(thickness_mm, dtype=np.float64), 0.0)
        return a * t * np.exp(b * t)

    def spr(self, thickness_mm: NDArray[np.floating] | float) -> NDArray[np.float64]:
        """SPR recorded behind the grid through ``thickness_mm`` of water (infinite field)."""
        return self.spr_no_grid(thickness_mm) * self.grid_factor

    @property
    def normalised_weights(self) -> tuple[float, ...]:
        total = float(sum(self.kernel_weights))
        return tuple(float(w) / total for w in self.kernel_weights)


def coarse_factor(height: int, width: int, target_px: int = COARSE_TARGET_PX) -> int:
    """Block size for the coarse grid: the largest common divisor of both sides giving at least
    ``target_px`` blocks along the shorter side (1 for a small image)."""
    best = 1
    limit = max(1, min(height, width) // target_px)
    for factor in range(1, limit + 1):
        if height % factor == 0 and width % factor == 0:
            best = factor
    return best


def downsample_area(image: NDArray[np.floating], factor: int) -> NDArray[np.floating]:
    """Block means over ``factor``² blocks (the sum × 1/factor² is preserved exactly): by a
    numba pass for blocks of 4 or more (0.064 ms for 8² blocks of a 512² float32 frame against
    OpenCV's area resize's 0.128 ms), by the resize for smaller ones (0.047 ms for 2², where the
    numba pass took 0.25 ms)."""
    if factor == 1:
        return np.asarray(image)
    if factor >= 4 and image.dtype in (np.float32, np.float64):
        return _block_mean(np.ascontiguousarray(image), factor)
    height, width = image.shape
    return cast(
        NDArray[np.floating],
        cv2.resize(
            np.ascontiguousarray(image),
            (width // factor, height // factor),
            interpolation=cv2.INTER_AREA,
        ),
    )


def upsample_linear(image: NDArray[np.floating], factor: int) -> NDArray[np.floating]:
    """Bilinear upsampling by an integer factor (pixel-centre aligned, edges clamped): every
    coarse pixel's weights over the fine grid add up to factor², so the sum × factor² is kept."""
    if factor == 1:
        return np.asarray(image)
    height, width = image.shape
    return cast(
        NDArray[np.floating],
        cv2.resize(
            np.ascontiguousarray(image),
            (width * factor, height * factor),
            interpolation=cv2.INTER_LINEAR,
        ),
    )


@lru_cache(maxsize=64)
def mirror_gaussian_matrix(size: int, sigma_px: float) -> NDArray[np.float64]:
    """(size, size) matrix of a 1-D Gaussian convolution with half-sample mirror boundaries.

    M[i, j] = Σ_k g(i − j − 2kN) + g(i + j + 1 − 2kN) with g sampled on the integers and
    normalised there (method of images): symmetric, every row and column sums to 1, so it keeps a
    uniform image uniform and conserves the total. Cached, read-only.
    """
    n = int(size)
    reach = int(math.ceil(6 * sigma_px)) + 1
    periods = reach // (2 * n) + 2
    offsets = np.arange(-reach, reach + 1)
    kernel = np.exp(-0.5 * (offsets / max(sigma_px, 1e-9)) ** 2)
    kernel /= kernel.sum()
    matrix = np.zeros((n, n))
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    for k in range(-periods, periods + 1):
        for shifted in (i - j - 2 * k * n, i + j + 1 - 2 * k * n):
            inside = np.abs(shifted) <= reach
            if inside.any():
                matrix[inside] += kernel[shifted[inside] + reach]
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=64)
def open_gaussian_matrix(size: int, sigma_px: float) -> NDArray[np.float64]:
    """(size, size) matrix of a 1-D Gaussian convolution with open boundaries: M[i, j] =
    g(i − j), g normalised over the whole line, so what would land beyond the edge is lost (a
    column sums to the share of its sample's spread that stays inside). Symmetric; cached,
    read-only."""
    n = int(size)
    offsets = np.arange(-(n - 1), n)
    cdf_high = np.array([math.erf((o + 0.5) / (math.sqrt(2) * sigma_px)) for o in offsets])
    cdf_low = np.array([math.erf((o - 0.5) / (math.sqrt(2) * sigma_px)) for o in offsets])
    kernel = 0.5 * (cdf_high - cdf_low)  # the Gaussian integrated over each sample's width
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    matrix: NDArray[np.float64] = kernel[i - j + n - 1]
    matrix.setflags(write=False)
    return matrix


def smooth_mixture(
    image: NDArray[np.floating],
    sigmas_px: tuple[float, ...],
    weights: tuple[float, ...],
    open_boundaries: bool = False,
) -> NDArray[np.floating]:
    """Σ w·(Gaussian σ ⊛ image) as separable matrix products: with mirror boundaries (the sum
    of the image is conserved when the weights add up to 1) or open ones (what spreads past
    the edge is lost)."""
    height, width = image.shape
    dtype: type[np.floating] = np.float32 if image.dtype == np.float32 else np.float64
    out = np.zeros((height, width), dtype)
    matrix_for = open_gaussian_matrix if open_boundaries else mirror_gaussian_matrix
    for sigma, weight in zip(sigmas_px, weights, strict=True):
        rows = matrix_for(height, float(sigma)).astype(dtype, copy=False)
        cols = matrix_for(width, float(sigma)).astype(dtype, copy=False)
        out += dtype(weight) * (rows @ image @ cols)  # cols is symmetric: cols == cols.T
    return out


@njit(cache=True, nogil=True)
def _block_mean(image: NDArray[np.floating], factor: int) -> NDArray[np.floating]:
    """Means over ``factor``² blocks (rows summed into a column buffer, then its blocks)."""
    height, width = image.shape
    blocks_h, blocks_w = height // factor, width // factor
    out = np.empty((blocks_h, blocks_w), image.dtype)
    columns = np.empty(width, image.dtype)
    scale = 1.0 / (factor * factor)
    for block_r in range(blocks_h):
        columns[:] = 0.0
        for r in range(block_r * factor, (block_r + 1) * factor):
            for c in range(width):
                columns[c] += image[r, c]
        for block_c in range(blocks_w):
            total = 0.0
            for c in range(block_c * factor, (block_c + 1) * factor):
                total += columns[c]
            out[block_r, block_c] = total * scale
    return out


@njit(cache=True, nogil=True)
def _block_means(
    transmission: NDArray[np.floating], exposed: NDArray[np.bool_], factor: int
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """(block means of the transmission inside the exposed field, block means of the
    transmission) over ``factor``² blocks, in one pass (what a masked copy and two area resizes
    gave: the same means to rounding, 0.07 ms at 512² against 0.25 ms)."""
    height, width = transmission.shape
    blocks_h, blocks_w = height // factor, width // factor
    dtype = transmission.dtype
    primary = np.empty((blocks_h, blocks_w), dtype)
    mean = np.empty((blocks_h, blocks_w), dtype)
    column_primary = np.empty(width, dtype)
    column_all = np.empty(width, dtype)
    scale = 1.0 / (factor * factor)
    for block_r in range(blocks_h):
        column_primary[:] = 0.0
        column_all[:] = 0.0
        for r in range(block_r * factor, (block_r + 1) * factor):
            for c in range(width):
                value = transmission[r, c]
                column_all[c] += value
                column_primary[c] += value * exposed[r, c]
        for block_c in range(blocks_w):
            total_primary = 0.0
            total_all = 0.0
            for c in range(block_c * factor, (block_c + 1) * factor):
                total_primary += column_primary[c]
                total_all += column_all[c]
            primary[block_r, block_c] = total_primary * scale
            mean[block_r, block_c] = total_all * scale
    return primary, mean


def scatter_fraction(
    transmission: NDArray[np.floating],
    exposed: NDArray[np.bool_],
    pixel_mm: float,
    mu_water_per_mm: float,
    model: ScatterModel,
) -> NDArray[np.floating]:
    """Expected scatter per pixel in units of the unattenuated primary (S / N0), full grid.

    ``transmission`` = exp(−∫μ dl) on the detector grid, ``exposed`` the pixels the primary beam
    reaches (only they emit scatter). On the coarse grid each block emits SPR(t)·P̄, P̄ the block
    mean of the exposed primary and t = −ln(T̄)/μ_water the water-equivalent thickness of the
    block's mean transmission T̄ (exact for a slab; a thin metal pin lowers T̄ a little instead of
    making the whole block look metres thick); the emission is spread by the kernel (open at
    the detector's edge for a finite field) and upsampled bilinearly. float32 in → float32 out.
    """
    height, width = transmission.shape
    factor = coarse_factor(height, width)
    dtype: type[np.floating] = np.float32 if transmission.dtype == np.float32 else np.float64
    transmission = np.asarray(transmission, dtype=dtype)
    if factor > 1:
        primary, mean_transmission = _block_means(transmission, exposed, factor)
    else:
        primary = np.multiply(transmission, exposed, dtype=dtype)
        mean_transmission = transmission
    floor = np.finfo(dtype).tiny
    thickness_mm = -np.log(np.maximum(mean_transmission, floor)) / mu_water_per_mm
    emission = (model.spr(thickness_mm) * primary).astype(dtype, copy=False)
    coarse_px = pixel_mm * factor
    sigmas = tuple(s / coarse_px for s in model.kernel_sigmas_mm)
    spread = smooth_mixture(emission, sigmas, model.normalised_weights, model.finite_field)
    return upsample_linear(spread, factor)
