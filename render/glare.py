"""Veiling glare: light of the receptor spread far from where the x-rays struck.

In an image intensifier, light scattered in the output window and the optics (and electrons and
x-rays scattered inside the tube) spreads a fraction g of the signal over long distances: a
point-spread function with a sharp core and a low, wide skirt (Seibert, Nalcioglu & Roeck 1985,
who measured and deconvolved it; glare fractions of a few to ~15 %, reference anatomy.md). It
lowers the contrast of dark details in bright surroundings — a dense bone beside air, the inside
of a collimated strip — and fills the dark gaps of the image with a faint haze. A flat panel's
(CsI on a photodiode array) long-range spread is far smaller.

The model, in the detector plane on the signal after the quantum noise::

    glare(I) = (1 − g)·I + g·(K ⊛ I),   K = Σ w_k Gaussian(σ_k), Σ w_k = 1

It conserves the total signal (the kernel is normalised; the coarse-grid convolution of
render/scatter.py conserves sums exactly) and leaves a uniform field unchanged. The default
II kernel (σ 15 and 60 mm, equal weights; g = 0.07) and the flat panel's g = 0.01 are
typical-order values, approximate, not a measured device.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from fluorosim.render.scatter import coarse_factor, downsample_area, smooth_mixture, upsample_linear

#: Glare fraction g of an image intensifier and of a flat panel (typical order, approximate).
GLARE_FRACTION = {"ii": 0.07, "fpd": 0.01}
#: Gaussian mixture of the long-range glare kernel at the detector (mm, weights).
GLARE_SIGMAS_MM: tuple[float, ...] = (15.0, 60.0)
GLARE_WEIGHTS: tuple[float, ...] = (0.5, 0.5)


def glare_halo(
    signal: NDArray[np.floating],
    pixel_mm: float,
    sigmas_mm: tuple[float, ...] = GLARE_SIGMAS_MM,
    weights: tuple[float, ...] = GLARE_WEIGHTS,
) -> NDArray[np.floating]:
    """K ⊛ signal: the normalised long-range kernel on the coarse grid, upsampled (float32 in →
    float32 out)."""
    height, width = signal.shape
    factor = coarse_factor(height, width)
    coarse = downsample_area(signal, factor)
    total = float(sum(weights))
    sigmas = tuple(s / (pixel_mm * factor) for s in sigmas_mm)
    spread = smooth_mixture(coarse, sigmas, tuple(float(w) / total for w in weights))
    return upsample_linear(spread, factor)


def apply_veiling_glare(
    signal: NDArray[np.floating],
    fraction: float,
    pixel_mm: float,
    sigmas_mm: tuple[float, ...] = GLARE_SIGMAS_MM,
    weights: tuple[float, ...] = GLARE_WEIGHTS,
) -> NDArray[np.floating]:
    """(1 − fraction)·signal + fraction·(K ⊛ signal); fraction 0 returns the signal unchanged."""
    if fraction <= 0:
        return signal
    halo = glare_halo(signal, pixel_mm, sigmas_mm, weights)
    if signal.dtype == np.float32 and halo.dtype == np.float32:  # one pass (the fused chain)
        return cast(
            NDArray[np.floating], cv2.addWeighted(signal, 1.0 - fraction, halo, fraction, 0.0)
        )
    return signal * (1.0 - fraction) + halo * fraction
