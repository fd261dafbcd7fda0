"""The fluoroscopy image chain: line integrals → photons (+ scatter) → noise → blur → glare →
intensifier → display.

Entry point (called by render/renderer.py; keep this signature)::

    apply_image_chain(line_integrals (H, W) float32, geometry, settings: ChainSettings | None,
                      exposure: Exposure | None, rng: numpy.random.Generator, model=None)
        -> uint8 (H, W)

(settings None → ``ChainSettings.for_model(model)``; exposure None → continuous fluoroscopy with
the automatic dose-rate control's tube current for the field.)

Each stage is a pure function (randomness only through the injected ``rng``), following
reference/carm.md "Image chain" and reference/anatomy.md "Scatter and the image intensifier":

1. ``beer_lambert``: primary transmission T = exp(−∫μ dl) (line integrals of anatomy and metal
   add); no primary outside the collimated field.
2. ``render.scatter.scatter_fraction``: scatter S = K ⊛ (SPR(t)·T), the scatter-to-primary ratio
   of the water-equivalent thickness t traversed (behind the anti-scatter grid: ≈0.3 through
   10 cm, ≈0.8 through 20 cm, ≈2.4 through 40 cm in a large field), spread by a broad kernel
   (σ 25 and 70 mm) that loses what it aims past the receptor's edge (a 9-inch field keeps ≈0.9
   of that at its middle, about half at its rim), so the contrast of a detail falls by
   1/(1 + SPR) and a thick pelvis or a lateral is greyer.
3. ``photons_per_pixel``: unattenuated photons per pixel for one displayed image, from the air
   kerma of the exposure (render.dose) carried to the detector by inverse square, converted to
   fluence with the air mass energy-absorption coefficient (NIST, Hubbell & Seltzer) over the
   exposure's kVp spectrum (render.spectrum), times the detector's quantum efficiency and the
   pixel area. The line integrals the chain receives are the polyenergetic beam's −ln T
   (render.spectrum.Beam.transmission_line_integrals), so exp(−·) is its primary transmission. A displayed fluoroscopy image integrates
   ``display_integration_s`` of exposure (≈0.2 s, the eye's and the recursive filter's temporal
   integration; at least one pulse), so pulsed and low-dose modes, which deliver less dose per
   second, look noisier.
4. ``add_quantum_noise``: Poisson counts of primary + scatter quanta at the input phosphor (its
   normal limit above ``POISSON_NORMAL_LIMIT`` expected photons): scatter adds quanta, and noise.
5. ``blur``: Gaussian of ``blur_fwhm_mm`` at the detector (focal spot + detector).
6. ``render.glare.apply_veiling_glare``: a fraction g of the light spread by a long-range kernel
   (image intensifier g ≈ 7 %, flat panel 1 %); it conserves the signal.
7. Collimation shown dark: the monitor masks the unexposed area (``shutter_masking``; without it
   the scatter and glare glow under the shutters shows as a dim grey).
8. Image intensifier only: ``apply_vignetting`` (brightness falls as 1 − v·(r/R)² to the edge of
   the field radius R) and ``pincushion_distort`` (a point at radius r is shown at
   r·(1 + k·(r/R)²): outward by k·R at the edge). A flat panel has neither.
9. ``render.processing.process``: the system's digital processing of the camera signal —
   equalization (a fraction of the log background of a 20 mm low-pass pulled to its field mean,
   so the thick pelvis and the thin flank both show detail) and edge enhancement (unsharp masking
   of 2 mm, gain 0.5: cortices and wires crisper, noise with them).
10. ``auto_window``: automatic brightness control in the log domain, from the central measuring
   field of the exposed area, air (direct exposure) left out: its mean displayed grey is held at
   mid-grey and its robust spread sets the contrast, so a lateral or an obese patient is not
   simply dark, and air beside the body burns out white.
11. ``to_display``: the monitor's characteristic S-curve of log exposure (toe: bone dark and metal
    black; straight part: soft tissue grey; shoulder: air white), gamma-encoded for a γ 2.2
    monitor; ``invert`` makes bone white. Outside an intensifier's circle the monitor is black in
    both. ``LastImageHold`` keeps the last frame.

``detector_signal`` runs stages 1–8 (before the processing and the log) one by one; the default
fused path does the same in float32 with the per-geometry masks, maps and spans cached:

- OpenCV's float32 ``exp`` for the transmission (0.075 ms at 512², numpy's took 0.42 ms);
- the scatter's block means in one numba pass (render.scatter);
- one serial numba noise pass (``_noisy_signal``) that draws each row's ziggurat deviates from the
  generator's words in the same order as ``standard_normal_deviates`` (so both paths see the same
  deviates), then every pixel's normal-limit count in a branch-free, vectorised loop, and recounts
  exactly only the pixels under ``POISSON_NORMAL_LIMIT``;
- OpenCV's blur and remap; the veiling glare's mix, the vignetting and shutter gain, the log's
  floor and the processing's masked copy in one numba pass (``_shown_signal``); the automatic
  window from a 17 156-pixel sample by one partition and one numba call;
- the processing's final combination and the display curve in one pass that never writes the
  processed image: the curve is a step function of the linear signal, so each pixel counts the
  255 signal thresholds below it (``display_thresholds``), found through a table of up to 65 536
  buckets indexed by the float's bits, fine enough that the compare after the read is
  predictable; an intensifier's pass skips the pixels beyond its circle.

Measured with the default patient's AP frame and a guide pin at 512² on the shared 2-core machine
(load ≈2, hot caches, stage by stage): noise pass 1.3 ms (deviates + counts were 1.95 ms in two
passes), display 0.75 ms (1.15 ms), window 0.26 ms (0.33 ms), scatter 0.27 ms.
Threads: the passes stay serial — a two-thread numba count pass measured no faster than the serial
one under the other jobs' load (1.19–1.33 ms against 1.19–1.22 ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

import cv2
import numpy as np
from numba import njit
from numpy.typing import NDArray

from fluorosim.render.carm import CArmModel
from fluorosim.render.dose import (
    DEFAULT_KVP,
    DoseRecord,
    dose_for_exposure,
    frame_air_kerma_mgy,
    reference_distance_mm,
    typical_tube_current_ma,
)
from fluorosim.render.exposure import Collimation, Exposure, exposed_field_mask
from fluorosim.render.geometry import ProjectionGeometry
from fluorosim.render.glare import (
    GLARE_FRACTION,
    GLARE_SIGMAS_MM,
    GLARE_WEIGHTS,
    apply_veiling_glare,
    glare_halo,
)
from fluorosim.render.processing import (
    ProcessingInputs,
    ProcessingPlan,
    processed_value,
    processing_inputs,
    processing_plan,
)
from fluorosim.render.processing import process as _process
from fluorosim.render.scatter import ScatterModel, scatter_fraction
from fluorosim.render.spectrum import air_kerma_per_photon_ugy_mm2, beam

DETECTOR_KINDS = ("ii", "fpd")
#: Water thickness (mm) through which the scatter model's water equivalence takes the beam's
#: effective μ (:func:`water_mu_per_mm`): the reference patient's (render.dose).
SCATTER_WATER_REFERENCE_MM = 200.0


@dataclass(frozen=True)
class ChainSettings:
    """How the C-arm turns photons into the monitor image.

    ``field_mm``: receptor field at the detector (II circle diameter for the current
    magnification mode, FPD square side); None = the whole geometry detector.
    ``magnification_mode`` is the name of that mode (shown and recorded, e.g. "normal", "mag1").
    ``vignetting``: fractional brightness loss at the II field edge; ``pincushion``: fractional
    outward displacement at the II field edge (both ignored for a flat panel; typical-order
    teaching values, not measured on a specific device).
    ``scatter``: the render.scatter.ScatterModel (None: no scatter, a DRR-like chain);
    ``glare_fraction``: veiling glare fraction (None: the detector's, render.glare) with its
    kernel ``glare_sigmas_mm`` / ``glare_weights``; ``display_gamma``: the monitor gamma the
    display curve is encoded for; ``shutter_masking``: show the unexposed area black (False:
    the dim scatter and glare glow there); ``metering_fraction``: the automatic brightness
    measures the central disc of this fraction of the receptor field radius (an intensifier's
    brightness sensor and a panel's dose-measuring field look at the middle of the image).
    ``equalization`` (fraction of the log background removed, 0 = none) of a Gaussian of
    ``equalization_mm``, and ``edge_enhancement`` (unsharp-mask gain, 0 = none) of a Gaussian of
    ``edge_mm``: the system's digital processing (render.processing); both 0 show the detector's
    signal as it is.
    """

    detector_kind: str = "ii"
    field_mm: float | None = None
    magnification_mode: str = "normal"
    collimation: Collimation = field(default_factory=Collimation)
    invert: bool = False
    blur_fwhm_mm: float = 0.45
    vignetting: float = 0.25
    pincushion: float = 0.03
    detector_efficiency: float = 0.65  # quantum detection efficiency, CsI input ≈0.6–0.7 at 60 keV
    display_integration_s: float = 0.2
    scatter: ScatterModel | None = field(default_factory=ScatterModel)
    glare_fraction: float | None = None
    glare_sigmas_mm: tuple[float, ...] = GLARE_SIGMAS_MM
    glare_weights: tuple[float, ...] = GLARE_WEIGHTS
    display_gamma: float = 2.2
    shutter_masking: bool = True
    metering_fraction: float = 0.5
    equalization: float = 0.6
    equalization_mm: float = 20.0
    edge_enhancement: float = 0.5
    edge_mm: float = 2.0

    def __post_init__(self) -> None:
        if self.detector_kind not in DETECTOR_KINDS:
            raise ValueError(
                f"ChainSettings.detector_kind: expected 'ii' or 'fpd', got {self.detector_kind!r}"
            )
        checks = {
            "blur_fwhm_mm": self.blur_fwhm_mm >= 0,
            "vignetting": 0 <= self.vignetting < 1,
            "pincushion": 0 <= self.pincushion < 0.3,
            "detector_efficiency": 0 < self.detector_efficiency <= 1,
            "display_integration_s": self.display_integration_s > 0,
            "field_mm": self.field_mm is None or self.field_mm > 0,
            "glare_fraction": self.glare_fraction is None or 0 <= self.glare_fraction < 0.5,
            "glare_weights": len(self.glare_weights) == len(self.glare_sigmas_mm)
            and sum(self.glare_weights) > 0,
            "glare_sigmas_mm": all(s > 0 for s in self.glare_sigmas_mm),
            "display_gamma": 0.5 <= self.display_gamma <= 4,
            "metering_fraction": 0 < self.metering_fraction <= 1.5,
            "equalization": 0 <= self.equalization < 1,
            "equalization_mm": self.equalization_mm > 0,
            "edge_enhancement": 0 <= self.edge_enhancement <= 3,
            "edge_mm": self.edge_mm > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"ChainSettings.{name}: out of range ({getattr(self, name)!r})")

    @classmethod
    def for_model(cls, model: CArmModel | None, **overrides: Any) -> ChainSettings:
        """Settings for a render.carm.CArmModel: "image_intensifier" → "ii", else "fpd".

        The receptor field defaults to the geometry's detector (carm_geometry sizes the detector
        to the magnification mode's field), so ``field_mm`` stays None unless overridden.
        """
        kind = "ii" if model is None or model.detector == "image_intensifier" else "fpd"
        overrides.setdefault("detector_kind", kind)
        return cls(**overrides)

    @property
    def effective_glare_fraction(self) -> float:
        """``glare_fraction``, or the detector's typical value (render.glare.GLARE_FRACTION)."""
        if self.glare_fraction is not None:
            return float(self.glare_fraction)
        return GLARE_FRACTION[self.detector_kind]

    @property
    def field_shape(self) -> str:
        """'circle' for an image intensifier, 'square' for a flat panel."""
        return "circle" if self.detector_kind == "ii" else "square"

    def receptor_field_mm(self, geometry: ProjectionGeometry) -> float:
        """Receptor field diameter/side at the detector (the smaller detector side if unset)."""
        if self.field_mm is not None:
            return self.field_mm
        return min(geometry.width_px, geometry.height_px) * geometry.pixel_mm

    def exposed_mask(self, geometry: ProjectionGeometry) -> NDArray[np.bool_]:
        """(H, W) pixels reached by the primary beam (receptor field ∩ iris ∩ shutters)."""
        return exposed_field_mask(
            geometry, self.collimation, self.field_shape, self.receptor_field_mm(geometry)
        )

    def field_radius_px(self, geometry: ProjectionGeometry) -> float:
        """Radius of the receptor field in pixels."""
        return self.receptor_field_mm(geometry) / 2 / geometry.pixel_mm

    def dose_record(self, exposure: Exposure, geometry: ProjectionGeometry) -> DoseRecord:
        """The dose of ``exposure`` with this receptor field and collimation (render.dose)."""
        return dose_for_exposure(
            exposure, geometry, self.collimation, self.field_shape, self.receptor_field_mm(geometry)
        )


def photons_per_mm2_per_ugy(energy_kev: float) -> float:
    """Photon fluence per air kerma of one energy, Φ/K = 1 / (E · (μen/ρ)air), photons/(mm²·µGy)."""
    return float(1.0 / air_kerma_per_photon_ugy_mm2(np.asarray(energy_kev, np.float64)))


def photons_per_pixel(
    exposure: Exposure, geometry: ProjectionGeometry, settings: ChainSettings
) -> float:
    """Detected photons per pixel of one displayed image with nothing in the beam."""
    scale = reference_distance_mm(geometry) / geometry.sid_mm
    kerma_detector_ugy = frame_air_kerma_mgy(exposure, geometry) * scale**2 * 1000.0
    rate = exposure.frame_rate_hz
    images_integrated = 1.0 if rate is None else max(1.0, settings.display_integration_s * rate)
    fluence = beam(exposure.kvp).photons_per_mm2_per_ugy()
    return (
        kerma_detector_ugy
        * images_integrated
        * fluence
        * settings.detector_efficiency
        * geometry.pixel_mm**2
    )


def beer_lambert(line_integrals: NDArray[np.floating]) -> NDArray[np.float64]:
    """Transmission I/I0 = exp(−∫μ dl)."""
    return np.exp(-np.asarray(line_integrals, dtype=np.float64))


#: Above this expected count a Poisson count is drawn from its Cornish–Fisher normal
#: approximation (below); under it, exactly, by inversion. Issue #4 suggests ~20 photons.
POISSON_NORMAL_LIMIT = 20.0


@njit(cache=True, nogil=True, inline="always")
def _count_from_normal(expected: float, z: float) -> float:
    """One photon count from one standard normal deviate ``z``.

    λ ≥ ``POISSON_NORMAL_LIMIT``: λ + √λ·z + (z² − 1)/6, the Cornish–Fisher expansion of the
    Poisson quantile to first order in the skewness 1/√λ (Johnson, Kemp & Kotz, *Univariate
    Discrete Distributions*, 3rd ed., §4.5): mean λ, third central moment λ as for Poisson,
    variance λ + 1/18 (0.3 % high at λ = 20), clipped at 0 (P < 1e-5 at λ = 20).
    Below: the exact Poisson count by inversion — u = Φ(z) is uniform on (0, 1), and the smallest
    k with F(k; λ) ≥ u is Poisson(λ) distributed (Devroye 1986, ch. X.3, sequential search).
    One normal draw per pixel serves both regimes, so the fused and the stage-by-stage chains
    consume ``rng`` alike.
    """
    if expected <= 0.0:
        return 0.0
    if expected >= POISSON_NORMAL_LIMIT:
        return max(expected + math.sqrt(expected) * z + (z * z - 1.0) / 6.0, 0.0)
    u = 0.5 * math.erfc(-z * 0.7071067811865476)
    k = 0
    p = math.exp(-expected)
    cdf = p
    k_max = int(expected + 40.0 * math.sqrt(expected) + 40.0)  # F(k_max) = 1 in float64
    while u > cdf and k < k_max:
        k += 1
        p *= expected / k
        cdf += p
    return float(k)


#: Layers of the ziggurat (Marsaglia & Tsang 2000): the right edge of the base strip, its area
#: per layer and the number of layers (their 128-layer normal table).
_ZIGGURAT_R = 3.442619855899
_ZIGGURAT_AREA = 9.91256303526217e-3
_ZIGGURAT_LAYERS = 128


def _ziggurat_edges() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(x, f(x)) of the layers' right edges, f(x) = exp(−x²/2): x[0] = area / f(r) (the base
    strip with the tail folded in), x[1] = r, x[k + 1] = f⁻¹(area / x[k] + f(x[k])), x[128] = 0;
    each layer holds the same area."""
    x = np.empty(_ZIGGURAT_LAYERS + 1)
    x[0] = _ZIGGURAT_AREA / math.exp(-0.5 * _ZIGGURAT_R**2)
    x[1] = _ZIGGURAT_R
    for k in range(1, _ZIGGURAT_LAYERS - 1):
        x[k + 1] = math.sqrt(-2.0 * math.log(_ZIGGURAT_AREA / x[k] + math.exp(-0.5 * x[k] ** 2)))
    x[_ZIGGURAT_LAYERS] = 0.0
    return x, np.exp(-0.5 * x * x)


_ZIGGURAT_X, _ZIGGURAT_F = _ziggurat_edges()


@njit(cache=True, nogil=True, inline="always")
def _splitmix64(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """(next state, 64 random bits) of SplitMix64 (Steele, Lea & Flood 2014)."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _ziggurat_slow(
    word: int,
    state: np.uint64,
    x: NDArray[np.float64],
    f: NDArray[np.float64],
) -> tuple[float, np.uint64]:
    """(|deviate|, stream state) for a word the fast path rejected: the wedge test, the tail
    beyond r (Marsaglia 1964) or a fresh word from the SplitMix64 stream."""
    scale = 1.0 / 16777216.0  # 2^-24
    while True:
        layer = word & 127
        value = float(word >> 8) * scale * x[layer]
        if value < x[layer + 1]:
            return value, state
        state, bits = _splitmix64(state)
        if layer == 0:  # the tail beyond r
            while True:
                state, bits = _splitmix64(state)
                u1 = (float(bits >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)
                state, bits = _splitmix64(state)
                u2 = (float(bits >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)
                a = -math.log(u1) / x[1]
                if -2.0 * math.log(u2) > a * a:
                    return x[1] + a, state
        u = float(bits >> np.uint64(11)) * (1.0 / 9007199254740992.0)
        if f[layer] + u * (f[layer + 1] - f[layer]) < math.exp(-0.5 * value * value):
            return value, state  # under the curve in the wedge
        state, bits = _splitmix64(state)
        word = int(bits >> np.uint64(32))  # rejected: a fresh word (its bit 7 unused)


@njit(cache=True, nogil=True)
def _ziggurat_normals(
    words: NDArray[np.uint32],
    seed: np.uint64,
    x: NDArray[np.float64],
    f: NDArray[np.float64],
) -> NDArray[np.float32]:
    """One standard normal per 32-bit word by the ziggurat (Marsaglia & Tsang 2000, with
    independent bit fields as Doornik 2005 recommends): bits 0–6 pick a layer, bit 7 the sign,
    bits 8–31 a uniform u, and |z| = u·x[layer] is accepted at once when it lies under the next
    layer's edge (98.8 % of words). The rest (:func:`_ziggurat_slow`: the wedges and the tail)
    draw what more they need from a SplitMix64 stream seeded by ``seed``; the sign bit takes no
    part in the acceptance, so it stays the word's."""
    out = np.empty(words.size, np.float32)
    state = seed
    scale = 1.0 / 16777216.0  # 2^-24
    for n in range(words.size):
        word = int(words[n])  # signed (int64): a fast conversion to float
        layer = word & 127
        value = float(word >> 8) * scale * x[layer]
        if value >= x[layer + 1]:
            value, state = _ziggurat_slow(word, state, x, f)
        out[n] = value * (1.0 - 2.0 * ((word >> 7) & 1))  # branch-free: the sign is a coin toss
    return out


def standard_normal_deviates(
    rng: np.random.Generator, shape: tuple[int, ...]
) -> NDArray[np.float32]:
    """Standard normal float32 deviates by the ziggurat method (Marsaglia & Tsang 2000).

    One 32-bit word per deviate from ``rng``'s bit generator (``random_raw``: half a 64-bit draw
    each) plus one 64-bit seed for the ≈1.2 % that fall in a wedge or the tail
    (:func:`_ziggurat_normals`): exact normals (24-bit uniforms; the tail unbounded) with no
    logarithm or sine on the common path. Measured interleaved on the loaded 2-core machine, a
    512² draw takes 1.3 ms CPU against 1.6 ms for the Box–Muller transform from numpy's SIMD
    log/sin/cos this replaced (0.6 ms of which was the float32 uniforms alone).
    """
    size = int(np.prod(shape))
    raw = rng.bit_generator.random_raw((size + 1) // 2 + 1)
    words = raw[1:].view(np.uint32)[:size]
    normals = _ziggurat_normals(words, np.uint64(raw[0]), _ZIGGURAT_X, _ZIGGURAT_F)
    return cast(NDArray[np.float32], normals.reshape(shape))


@njit(cache=True, nogil=True)
def _low_counts(expected: NDArray[np.float64], z: NDArray[np.float32]) -> NDArray[np.float64]:
    out = np.empty(expected.size, np.float64)
    for index in range(expected.size):
        out[index] = _count_from_normal(expected[index], z[index])
    return out


def add_quantum_noise(
    expected_counts: NDArray[np.floating], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Photon counts with Poisson statistics (mean = variance = the expected count).

    One float32 standard normal per pixel from ``rng``: the skew-corrected normal limit above
    ``POISSON_NORMAL_LIMIT`` expected photons, exact Poisson by inversion of Φ(z) below (see
    :func:`_count_from_normal`).
    """
    expected = np.clip(np.asarray(expected_counts, dtype=np.float64), 0.0, None)
    z = standard_normal_deviates(rng, expected.shape)
    counts = expected + np.sqrt(expected) * z + (np.square(z, dtype=np.float64) - 1.0) / 6.0
    low = expected < POISSON_NORMAL_LIMIT
    if low.any():
        counts[low] = _low_counts(expected[low], z[low])
    return np.maximum(counts, 0.0)


def blur(image: NDArray[np.floating], fwhm_mm: float, pixel_mm: float) -> NDArray[np.float64]:
    """Gaussian blur of ``fwhm_mm`` full width at half maximum (at the detector)."""
    if fwhm_mm <= 0:
        return np.asarray(image, dtype=np.float64)
    sigma_px = fwhm_mm / (2 * math.sqrt(2 * math.log(2))) / pixel_mm
    return cast(
        NDArray[np.float64],
        cv2.GaussianBlur(
            np.asarray(image, dtype=np.float64), (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT
        ),
    )


@lru_cache(maxsize=8)
def _radius_px(shape: tuple[int, int]) -> NDArray[np.float64]:
    """Distance of every pixel centre from the image centre (px); cached, read-only."""
    height, width = shape
    y = np.arange(height) - (height - 1) / 2
    x = np.arange(width) - (width - 1) / 2
    radius: NDArray[np.float64] = np.hypot(x[None, :], y[:, None])
    radius.setflags(write=False)
    return radius


def apply_vignetting(
    image: NDArray[np.floating], field_radius_px: float, strength: float
) -> NDArray[np.float64]:
    """Multiply by 1 − strength·(r/R)² (intensifier brightness fall-off toward the field edge)."""
    height, width = image.shape[:2]
    gain = _vignetting_gain(height, width, float(field_radius_px), float(strength))
    vignetted: NDArray[np.float64] = np.asarray(image, dtype=np.float64) * gain
    return vignetted


@lru_cache(maxsize=8)
def _vignetting_gain(
    height: int, width: int, field_radius_px: float, strength: float
) -> NDArray[np.float64]:
    ratio = np.clip(_radius_px((height, width)) / field_radius_px, 0.0, 1.0)
    gain: NDArray[np.float64] = 1.0 - strength * ratio**2
    gain.setflags(write=False)
    return gain


def pincushion_radius(
    radius_px: NDArray[np.floating] | float, field_radius_px: float, k: float
) -> NDArray[np.float64]:
    """Where a point at ``radius_px`` from the centre is displayed: r·(1 + k·(r/R)²)."""
    r = np.asarray(radius_px, dtype=np.float64)
    return r * (1.0 + k * (r / field_radius_px) ** 2)


@lru_cache(maxsize=8)
def _pincushion_maps(
    height: int, width: int, field_radius_px: float, k: float
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """cv2.remap maps: for each displayed pixel, the undistorted source position."""
    cy, cx = (height - 1) / 2, (width - 1) / 2
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    shown = np.hypot(x - cx, y - cy)
    source = shown.copy()
    for _ in range(8):  # Newton on r(1 + k r²/R²) = shown
        f = source * (1 + k * (source / field_radius_px) ** 2) - shown
        source -= f / (1 + 3 * k * (source / field_radius_px) ** 2)
    scale = np.divide(source, shown, out=np.ones_like(shown), where=shown > 0)
    return (
        (cx + (x - cx) * scale).astype(np.float32),
        (cy + (y - cy) * scale).astype(np.float32),
    )


def pincushion_distort(
    image: NDArray[np.floating] | NDArray[np.uint8], field_radius_px: float, k: float
) -> NDArray[Any]:
    """Radial pincushion distortion of an intensifier about the image centre (k = 0: identity)."""
    if k == 0:
        return image
    height, width = image.shape[:2]
    map_x, map_y = _pincushion_maps(height, width, float(field_radius_px), float(k))
    return cv2.remap(
        image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


#: Signal (fraction of the unattenuated beam) above which a pixel counts as direct exposure (air:
#: less than ≈3 cm of water in the way) and is left out of the automatic window's statistics.
DIRECT_EXPOSURE_FRACTION = 0.5
#: ... unless less than this fraction of the field is body.
MIN_BODY_FRACTION = 0.1
#: Gamma of the monitor the display curve is encoded for (sRGB / a CRT: ≈2.2, IEC 61966-2-1).
DISPLAY_GAMMA = 2.2


def auto_window(
    log_signal: NDArray[np.floating],
    exposed: NDArray[np.bool_],
    spread_percentiles: tuple[float, float] = (5.0, 95.0),
    min_half_width: float = 0.2,
    gamma: float = DISPLAY_GAMMA,
    unprocessed_log_signal: NDArray[np.floating] | None = None,
) -> tuple[float, float]:
    """(level, half_width) in the log domain from the exposed field (automatic brightness).

    Pixels of direct exposure — signal above ``DIRECT_EXPOSURE_FRACTION`` of the unattenuated
    beam, i.e. air beside the body — are left out of the statistics when the body fills at least
    ``MIN_BODY_FRACTION`` of the field (the histogram segmentation of digital radiography, as for
    the exposure index of IEC 62494-1): the window is set on the anatomy and the air burns out
    white, as on a C-arm monitor, instead of the air–body step eating the contrast.
    The half width is 0.625 × the distance between the remaining values' 5th and 95th
    percentiles (shown through the S-curve of :func:`to_display`), so metal covering a few per
    cent of the field does not flatten the anatomy, but is at least ``min_half_width`` so a
    featureless field does not turn into amplified noise. The level is then found by bisection
    so that their mean displayed grey is mid-grey (127.5), as a brightness feedback loop
    settles; metal far below the level goes black.

    ``unprocessed_log_signal``: the log of the signal before the system's processing
    (render.processing), when ``log_signal`` is processed: air is told from the body on it, since
    equalization moves the processed values of both.
    """
    sample = _window_sample(exposed)
    values = np.asarray(log_signal).ravel()[sample]
    unprocessed = None
    if unprocessed_log_signal is not None:
        unprocessed = np.asarray(unprocessed_log_signal).ravel()[sample]
    return _window_from_values(values, spread_percentiles, min_half_width, gamma, unprocessed)


def _window_sample(exposed: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Flat indices of the exposed pixels :func:`auto_window` reads: all of them, or an even
    subsample of at least 16384 (statistics from it are as good and faster)."""
    indices = np.flatnonzero(exposed)
    if indices.size > 16384:
        indices = indices[:: indices.size // 16384]
    return indices


def _window_from_values(
    values: NDArray[np.floating],
    spread_percentiles: tuple[float, float] = (5.0, 95.0),
    min_half_width: float = 0.2,
    gamma: float = DISPLAY_GAMMA,
    unprocessed: NDArray[np.floating] | None = None,
) -> tuple[float, float]:
    """:func:`auto_window` on the sampled exposed values (``unprocessed``: the same pixels' log
    signal before the processing, which tells air from the body)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return 0.0, 1.0
    raw = values if unprocessed is None else np.asarray(unprocessed, dtype=np.float64).ravel()
    body = values[raw < math.log(DIRECT_EXPOSURE_FRACTION)]
    if body.size >= MIN_BODY_FRACTION * values.size:
        values = body
    p_low, p_high = _percentiles(values, spread_percentiles)
    half_width = max(0.625 * (p_high - p_low), min_half_width)
    return _mid_grey_window(values, half_width, float(gamma)), half_width


def _percentiles(values: NDArray[np.float64], percentiles: tuple[float, ...]) -> list[float]:
    """``np.percentile(values, percentiles)`` (linear) from one partition around the order
    statistics it needs instead of numpy's general path (half the time on 17 000 values)."""
    last = values.size - 1
    positions = [float(p) / 100.0 * last for p in percentiles]
    below = [min(int(math.floor(position)), last) for position in positions]
    needed = sorted({k for b in below for k in (b, min(b + 1, last))})
    ordered = np.partition(values, needed)
    result = []
    for position, low in zip(positions, below, strict=True):
        a, b = float(ordered[low]), float(ordered[min(low + 1, last)])
        fraction = position - low
        # numpy's linear interpolation, from the nearer end
        result.append(b - (b - a) * (1.0 - fraction) if fraction >= 0.5 else a + (b - a) * fraction)
    return result


@njit(cache=True, nogil=True)
def _mid_grey_window(values: NDArray[np.float64], half_width: float, gamma: float) -> float:
    """The level at which the mean displayed grey of ``values`` is mid-grey (127.5): over a
    1024-bin histogram of the values (bins ≤ 1/1000 of the range: the mean moves by far less
    than a grey level), which makes each of :func:`_mid_grey_level`'s steps cheap."""
    smallest, largest = values.min(), values.max()
    span = max(largest - smallest, 1e-9)
    counts = np.zeros(1024, np.float64)
    for value in values:
        counts[min(int((value - smallest) * (1024 / span)), 1023)] += 1.0
    occupied = np.flatnonzero(counts)
    weights = counts[occupied] / counts.sum()
    centres = smallest + (occupied + 0.5) * (span / 1024)
    low, high = smallest - half_width, largest + half_width
    # start where the mean value would show mid-grey (Y^(1/γ) = ½): fewer Newton steps
    start = float(centres @ weights) - half_width * math.atanh(2.0 * 0.5**gamma - 1.0)
    start = min(max(start, low), high)
    return _mid_grey_level(centres, weights, half_width, gamma, low, high, start)


@njit(cache=True, nogil=True)
def _mid_grey_level(
    centres: NDArray[np.float64],
    weights: NDArray[np.float64],
    half_width: float,
    gamma: float,
    low: float,
    high: float,
    start: float,
) -> float:
    """The level in [low, high] at which the weighted mean grey of ``centres`` is 127.5.

    The displayed mean falls monotonically as the level rises, so Newton's method on it, kept
    inside a shrinking bisection bracket (Press et al., *Numerical Recipes*, rtsafe), finds the
    level to 1e-9 of the bracket from ``start`` in a few evaluations where bisection took 30. The
    slope is analytic: with Y = 1 / (1 + exp(−2(c − level)/w)), d(Y^a)/d level = −2a·Y^a·(1 − Y)/w.
    """
    exponent = 1.0 / gamma
    tolerance = 1e-9 * (high - low)
    level = start
    for _ in range(100):  # ≤ 100 bisections would reach 2^-100 of the bracket: never runs out
        mean = 0.0
        slope_sum = 0.0
        for k in range(centres.size):
            luminance = 0.5 + 0.5 * math.tanh((centres[k] - level) / half_width)
            encoded = luminance**exponent
            mean += encoded * weights[k]
            slope_sum += encoded * (1.0 - luminance) * weights[k]
        excess = 255.0 * mean - 127.5
        if excess > 0:
            low = level
        elif excess < 0:
            high = level
        else:
            return level
        slope = -510.0 * exponent / half_width * slope_sum
        step = -excess / slope if slope < 0 else math.nan
        if abs(step) < tolerance:  # converged (the bracket may end exactly at the root)
            return level + step
        if low < level + step < high:
            level += step
        else:
            level = 0.5 * (low + high)
        if high - low < tolerance:
            break
    return 0.5 * (low + high)


def _grey(
    log_signal: NDArray[np.floating],
    level: float,
    half_width: float,
    gamma: float = DISPLAY_GAMMA,
) -> NDArray[np.floating]:
    """The display curve: 255 · Y^(1/γ), Y = (1 + tanh((s − level) / half_width)) / 2.

    Y is the monitor's luminance (0 black … 1 peak white) as a characteristic S-curve of the log
    exposure s, like a film's or a fluoroscopy LUT's: a toe (dense bone, metal), a straight part
    (soft tissue) and a shoulder (air burns out white). Unlike a hard clip it keeps metal over
    bone darker than the bone beside it. The pixel value is Y gamma-encoded for a monitor of
    gamma γ (:data:`DISPLAY_GAMMA`), so the light the monitor emits follows the S-curve: its toe
    is long in pixel values (bone keeps its grey gradations), its shoulder short (air saturates).
    γ = 1 is the plain 127.5 + 127.5·tanh curve.
    """
    scaled = (np.asarray(log_signal, dtype=np.float32) - np.float32(level)) / np.float32(half_width)
    luminance = 0.5 + 0.5 * np.tanh(scaled)
    grey: NDArray[np.floating]
    if gamma == 1.0:
        grey = 255.0 * luminance
    else:
        grey = 255.0 * np.power(luminance, np.float32(1.0 / gamma))
    return grey


def to_display(
    log_signal: NDArray[np.floating],
    level: float,
    half_width: float,
    invert: bool = False,
    gamma: float = DISPLAY_GAMMA,
) -> NDArray[np.uint8]:
    """Map the log signal through the display curve (low signal = dense = dark); invert makes
    dense structures white."""
    grey: NDArray[np.uint8] = np.clip(
        np.rint(_grey(log_signal, level, half_width, gamma)), 0, 255
    ).astype(np.uint8)
    return 255 - grey if invert else grey


def apply_image_chain(
    line_integrals: NDArray[np.floating],
    geometry: ProjectionGeometry,
    settings: ChainSettings | None = None,
    exposure: Exposure | None = None,
    rng: np.random.Generator | None = None,
    model: CArmModel | None = None,
    fused: bool = True,
) -> NDArray[np.uint8]:
    """Monitor image (uint8, H × W) of one displayed frame from the total line integrals.

    ``settings`` None → :meth:`ChainSettings.for_model` of ``model`` (a render.carm.CArmModel).
    ``exposure`` None → continuous fluoroscopy at DEFAULT_KVP with the tube current
    render.dose.typical_tube_current_ma picks for the field. ``rng`` must be injected.

    ``fused`` (default) runs the same stages in float32 in serial numba passes around
    OpenCV's exp, blur and remap, with the per-geometry masks and maps cached (module docstring);
    ``fused=False`` calls the stage functions one by one (float64). Both draw the same normal
    deviates from ``rng``, so on one seed they agree to rounding (tests/render/test_image_chain.py).
    """
    if rng is None:
        raise ValueError("apply_image_chain: inject a numpy.random.Generator (rng) for the noise")
    if settings is None:
        settings = ChainSettings.for_model(model)
    if exposure is None:
        field_mm = settings.receptor_field_mm(geometry)
        exposure = Exposure(DEFAULT_KVP, typical_tube_current_ma(field_mm, DEFAULT_KVP))
    integrals = np.asarray(line_integrals)
    if integrals.shape != (geometry.height_px, geometry.width_px):
        raise ValueError(
            f"apply_image_chain: line integrals {integrals.shape} do not match the detector "
            f"({geometry.height_px}, {geometry.width_px})"
        )
    n0 = photons_per_pixel(exposure, geometry, settings)
    mu_water = water_mu_per_mm(float(exposure.kvp))
    if fused:
        return _fused_chain(integrals, geometry, settings, n0, mu_water, rng)
    signal = np.maximum(detector_signal(integrals, geometry, settings, n0, mu_water, rng), 0.5 / n0)
    intensifier = settings.detector_kind == "ii"
    radius_px = settings.field_radius_px(geometry)
    processed = process_signal(signal, geometry, settings, 0.5 / n0)
    log_signal = np.log(processed)
    # statistics away from the blurred collimator edges
    level, half_width = auto_window(
        log_signal,
        _window_mask(geometry, settings),
        gamma=settings.display_gamma,
        unprocessed_log_signal=np.log(signal),
    )
    display = to_display(log_signal, level, half_width, settings.invert, settings.display_gamma)
    if intensifier:
        display = pincushion_distort(display, radius_px, settings.pincushion)
        outside = _radius_px(display.shape) > radius_px
        display[outside] = 0
    return display


def detector_signal(
    line_integrals: NDArray[np.floating],
    geometry: ProjectionGeometry,
    settings: ChainSettings,
    n0: float,
    mu_water_per_mm: float,
    rng: np.random.Generator | None,
) -> NDArray[np.float64]:
    """Stages 1–6 one by one (float64): the receptor's output in units of the unattenuated
    primary, before the log and the display.

    Primary exp(−∫μ dl) inside the exposed field + scatter (render.scatter) → Poisson counts of
    both (the quanta absorbed at the input phosphor; ``rng`` None: the noiseless expectation) →
    blur → veiling glare (render.glare) → shutter masking → vignetting.
    """
    exposed = settings.exposed_mask(geometry)
    transmission = beer_lambert(line_integrals)
    expected = transmission * exposed  # primary: none outside the collimated field
    if settings.scatter is not None:
        expected += scatter_fraction(
            transmission, exposed, geometry.pixel_mm, mu_water_per_mm, settings.scatter
        )
    if rng is not None:
        expected = add_quantum_noise(n0 * expected, rng) / n0  # quanta at the input phosphor
    signal: NDArray[np.floating] = blur(expected, settings.blur_fwhm_mm, geometry.pixel_mm)
    signal = apply_veiling_glare(
        signal,
        settings.effective_glare_fraction,
        geometry.pixel_mm,
        settings.glare_sigmas_mm,
        settings.glare_weights,
    )
    if settings.shutter_masking:
        signal = signal * exposed
    if settings.detector_kind == "ii" and settings.vignetting > 0:
        radius_px = settings.field_radius_px(geometry)
        signal = apply_vignetting(signal, radius_px, settings.vignetting)
    return cast(NDArray[np.float64], signal)  # float64 throughout: blur's output, glare keeps it


def process_signal(
    signal: NDArray[np.floating],
    geometry: ProjectionGeometry,
    settings: ChainSettings,
    floor: float,
) -> NDArray[np.floating]:
    """Stage 9: the system's equalization and edge enhancement (render.processing) of the
    receptor's output inside the exposed field (the signal itself when both are off)."""
    plan = settings_plan(settings.exposed_mask(geometry), geometry.pixel_mm, settings, np.float64)
    return _process(np.asarray(signal, dtype=np.float64), plan, floor)


def settings_plan(
    exposed: NDArray[np.bool_],
    pixel_mm: float,
    settings: ChainSettings,
    dtype: type[np.floating] = np.float32,
) -> ProcessingPlan:
    """The processing plan of ``settings`` for the exposed field on a grid of ``pixel_mm``."""
    return processing_plan(
        exposed,
        pixel_mm,
        settings.equalization,
        settings.equalization_mm,
        settings.edge_enhancement,
        settings.edge_mm,
        dtype,
    )


@lru_cache(maxsize=64)
def water_mu_per_mm(kvp: float) -> float:
    """The beam's effective μ of water through SCATTER_WATER_REFERENCE_MM (the scatter model's
    water equivalence: thickness = −ln T / μ)."""
    return beam(kvp).effective_water_mu_per_mm(SCATTER_WATER_REFERENCE_MM)


def _window_mask(geometry: ProjectionGeometry, settings: ChainSettings) -> NDArray[np.bool_]:
    """The automatic brightness's measuring field: the exposed field eroded by 2 px (away from
    the blurred collimator edges) within ``metering_fraction`` of the receptor field radius
    (unless the collimation leaves less than a tenth of the field there); cached."""
    grid = (geometry.height_px, geometry.width_px, float(geometry.pixel_mm), settings)
    try:
        return _cached_window_mask(*grid)
    except TypeError:  # settings holding an unhashable value (e.g. a list): compute, uncached
        return _cached_window_mask.__wrapped__(*grid)


@lru_cache(maxsize=16)
def _cached_window_mask(
    height: int, width: int, pixel_mm: float, settings: ChainSettings
) -> NDArray[np.bool_]:
    geometry = _grid_only(height, width, pixel_mm)
    exposed = settings.exposed_mask(geometry)
    core = cv2.erode(exposed.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    mask = core if core.any() else exposed
    metering_radius_px = settings.metering_fraction * settings.field_radius_px(geometry)
    metered = mask & (_radius_px((height, width)) <= metering_radius_px)
    if np.count_nonzero(metered) >= 0.1 * np.count_nonzero(mask):
        mask = metered
    mask.setflags(write=False)
    return mask


def _grid_only(height: int, width: int, pixel_mm: float) -> ProjectionGeometry:
    """A detector grid of the given size (the masks depend on nothing else)."""
    return ProjectionGeometry(
        source_lps_mm=np.array([0.0, 0.0, -1000.0]),
        detector_origin_lps_mm=np.zeros(3),
        detector_u_lps=np.array([1.0, 0.0, 0.0]),
        detector_v_lps=np.array([0.0, 1.0, 0.0]),
        pixel_mm=pixel_mm,
        width_px=width,
        height_px=height,
    )


@lru_cache(maxsize=16)
def _fused_constants(
    height: int, width: int, pixel_mm: float, settings: ChainSettings
) -> tuple[
    NDArray[np.bool_],
    NDArray[np.intp],
    NDArray[np.float32],
    tuple[tuple[NDArray[np.float32], NDArray[np.float32]] | None, NDArray[np.uint8]] | None,
    ProcessingPlan,
]:
    """Per detector grid and settings: exposed mask, auto-window sample indices, vignetting gain
    (× the exposed mask with shutter masking), (pincushion remap maps, 255 inside the circle and
    0 outside) for an intensifier, the processing plan."""
    geometry = _grid_only(height, width, pixel_mm)
    exposed = np.ascontiguousarray(settings.exposed_mask(geometry))
    window = _window_sample(_window_mask(geometry, settings))
    radius_px = settings.field_radius_px(geometry)
    intensifier = settings.detector_kind == "ii"
    gain: NDArray[np.float32]
    if intensifier and settings.vignetting > 0:
        gain64 = _vignetting_gain(height, width, float(radius_px), float(settings.vignetting))
        gain = np.array(gain64, dtype=np.float32)
    else:
        gain = np.ones((height, width), np.float32)
    if settings.shutter_masking:
        gain *= exposed
    gain.setflags(write=False)
    distortion = None
    if intensifier:
        maps = None
        if settings.pincushion != 0:
            maps = _pincushion_maps(height, width, float(radius_px), float(settings.pincushion))
        inside = np.where(_radius_px((height, width)) > radius_px, 0, 255).astype(np.uint8)
        inside.setflags(write=False)
        distortion = (maps, inside)
    return exposed, window, gain, distortion, settings_plan(exposed, pixel_mm, settings)


@njit(cache=True, nogil=True)
def _noisy_signal(
    transmission: NDArray[np.float32],
    exposed: NDArray[np.bool_],
    scatter: NDArray[np.float32],
    words: NDArray[np.uint32],
    seed: np.uint64,
    x: NDArray[np.float64],
    f: NDArray[np.float64],
    n0: float,
) -> NDArray[np.float32]:
    """Normalised noisy signal counts / N0 from the transmission and the scatter: collimation
    and Poisson noise of primary + scatter quanta, the deviates drawn from ``words`` in raster
    order exactly as :func:`_ziggurat_normals` draws them (the stage-by-stage chain's deviates).

    Row by row: the ziggurat's deviates into a row buffer, then the normal-limit count of every
    pixel in a branch-free loop the compiler vectorises, then the rare pixels under
    ``POISSON_NORMAL_LIMIT`` (metal, the unexposed rim) recounted exactly by
    :func:`_count_from_normal`. Serial: parallel passes of ~1 ms lose on a shared 2-core machine.
    """
    height, width = transmission.shape
    out = np.empty((height, width), np.float32)
    z_row = np.empty(width, np.float32)
    expected_row = np.empty(width, np.float64)
    inv_n0 = 1.0 / n0
    state = seed
    scale = 1.0 / 16777216.0  # 2^-24
    for r in range(height):
        start = r * width
        for c in range(width):
            word = int(words[start + c])
            layer = word & 127
            value = float(word >> 8) * scale * x[layer]
            if value >= x[layer + 1]:
                value, state = _ziggurat_slow(word, state, x, f)
            z_row[c] = value * (1.0 - 2.0 * ((word >> 7) & 1))
        low = 0
        for c in range(width):
            primary = float(transmission[r, c]) if exposed[r, c] else 0.0
            expected = n0 * (float(scatter[r, c]) + primary)
            expected_row[c] = expected
            z = float(z_row[c])
            count = expected + math.sqrt(max(expected, 0.0)) * z + (z * z - 1.0) / 6.0
            out[r, c] = max(count, 0.0) * inv_n0
            low += expected < POISSON_NORMAL_LIMIT
        if low:
            for c in range(width):
                if expected_row[c] < POISSON_NORMAL_LIMIT:
                    out[r, c] = _count_from_normal(expected_row[c], float(z_row[c])) * inv_n0
    return out


@njit(cache=True, nogil=True)
def _shown_signal(
    signal: NDArray[np.float32],
    halo: NDArray[np.float32],
    fraction: float,
    gain: NDArray[np.float32],
    weight: NDArray[np.float32],
    floor: float,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(shown, shown × weight): shown = max(((1 − fraction)·signal + fraction·halo) · gain,
    floor) — veiling glare (render.glare), vignetting and shutter masking and the log's floor —
    and the processing's masked copy, in one pass where OpenCV's addWeighted, multiply and max
    and numpy's product made four (under other jobs' memory traffic each full-frame pass costs)."""
    height, width = signal.shape
    shown = np.empty((height, width), np.float32)
    masked = np.empty((height, width), np.float32)
    keep = np.float32(1.0 - fraction)
    spread = np.float32(fraction)
    lowest = np.float32(floor)
    for r in range(height):
        for c in range(width):
            value = (signal[r, c] * keep + halo[r, c] * spread) * gain[r, c]
            value = max(value, lowest)
            shown[r, c] = value
            masked[r, c] = value * weight[r, c]
    return shown, masked


def display_thresholds(level: float, half_width: float, gamma: float) -> NDArray[np.float64]:
    """Where :func:`to_display` (not inverted) steps up, as linear signal values (255, float64).

    Grey rint(255·Y^(1/γ)) ≥ g exactly when Y ≥ y_g = ((g − ½)/255)^γ, and with
    Y = 1 / (1 + exp(−2(ln s − level)/half_width)) that is s ≥ t_g =
    exp(level − half_width/2 · ln(1/y_g − 1)); ``t[g − 1]`` = t_g for g = 1 … 255, increasing.
    So the grey of a signal is the number of thresholds at or below it: no log, tanh or power
    per pixel (halfway ties, a set of measure zero, round up instead of to even).
    """
    luminance = ((np.arange(1, 256, dtype=np.float64) - 0.5) / 255.0) ** float(gamma)
    with np.errstate(over="ignore"):
        return cast(
            NDArray[np.float64],
            np.exp(level - 0.5 * half_width * np.log(1.0 / luminance - 1.0)),
        )


#: Buckets of the display lookup's index, at most (see :func:`_grey_lookup`): fine enough that a
#: bucket rarely holds a threshold, so the compare after the table read is predictable (with 4096
#: buckets, one or two thresholds each, the display pass took 1.1 ms at 512², with 65536 0.67 ms).
_GREY_LOOKUP_SIZE = 65536


def _grey_lookup(
    thresholds: NDArray[np.float64],
) -> tuple[int, int, NDArray[np.uint8], NDArray[np.float64]]:
    """An index into ``thresholds`` by the bits of a positive float32 signal (monotone in its
    value): buckets of 2^shift consecutive float32 values from ``low_bits``, each holding the grey
    at its lowest value, so a pixel needs a table read and a compare or two (:func:`_grey_of`).
    Returns (low_bits, shift, table, the thresholds followed by +inf)."""
    low = np.float32(thresholds[0])
    if float(low) > thresholds[0]:
        low = np.nextafter(low, np.float32(0.0))
    low_bits = int(np.array(low, np.float32).view(np.int32))
    top = np.float32(min(float(thresholds[-1]), float(np.finfo(np.float32).max)))
    high_bits = int(np.array(top, np.float32).view(np.int32))
    shift = 0
    while (high_bits - low_bits) >> shift >= _GREY_LOOKUP_SIZE:
        shift += 1
    buckets = ((high_bits - low_bits) >> shift) + 1
    table = _grey_table(thresholds, low_bits, shift, buckets)
    return low_bits, shift, table, np.append(thresholds, np.inf)


@njit(cache=True, nogil=True)
def _grey_table(
    thresholds: NDArray[np.float64], low_bits: int, shift: int, buckets: int
) -> NDArray[np.uint8]:
    """The number of ``thresholds`` (ascending) at or below each bucket's lowest float32 value
    (``np.searchsorted(..., side="right")`` of the buckets' edges, by one merge walk)."""
    edges = np.empty(buckets, np.int32)
    for b in range(buckets):
        edges[b] = low_bits + (b << shift)
    values = edges.view(np.float32)
    table = np.empty(buckets, np.uint8)
    grey = 0
    for b in range(buckets):
        edge = float(values[b])
        while grey < thresholds.size and thresholds[grey] <= edge:
            grey += 1
        table[b] = grey
    return table


@njit(cache=True, nogil=True, inline="always")
def _grey_of(
    value: float,
    bits: int,
    low_bits: int,
    shift: int,
    table: NDArray[np.uint8],
    bounded: NDArray[np.float64],
) -> int:
    """The number of thresholds ≤ ``value`` (its grey level; ``bits``: its float32 bits;
    ``bounded``: the thresholds followed by +inf, so the count stops at 255 by itself)."""
    bucket = (bits - low_bits) >> shift
    if bucket < 0:
        bucket = 0
    elif bucket >= table.size:
        bucket = table.size - 1
    grey = np.intp(table[bucket])
    while value >= bounded[grey]:
        grey += 1
    return int(grey)


@njit(cache=True, nogil=True)
def _processed_display(
    signal: NDArray[np.float32],
    exposed: NDArray[np.bool_],
    blurred: NDArray[np.float32],
    edge_norm: NDArray[np.float32],
    gain: NDArray[np.float32],
    use_gain: bool,
    edge_gain: float,
    floor: float,
    low_bits: int,
    shift: int,
    table: NDArray[np.uint8],
    bounded: NDArray[np.float64],
    spans: NDArray[np.intp],
) -> NDArray[np.uint8]:
    """The processed signal (render.processing) through the display curve, in one pass: grey
    levels (uint8, not inverted) without writing the processed image; in row r only columns
    ``spans[r, 0]`` to ``spans[r, 1]`` (the rest 0). Serial: under other jobs' load a parallel
    pass this short waited on its slowest thread (CPU and wall ×2 measured)."""
    height, width = signal.shape
    out = np.zeros((height, width), np.uint8)
    row = np.empty(width, np.float32)
    row_bits = row.view(np.int32)
    for r in range(height):
        start, stop = spans[r, 0], spans[r, 1]
        for c in range(start, stop):
            row[c] = processed_value(
                signal[r, c],
                exposed[r, c],
                blurred[r, c],
                edge_norm[r, c],
                gain[r, c],
                use_gain,
                edge_gain,
                floor,
            )
        for c in range(start, stop):
            out[r, c] = _grey_of(float(row[c]), int(row_bits[c]), low_bits, shift, table, bounded)
    return out


@lru_cache(maxsize=16)
def _display_spans(height: int, width: int, radius_px: float | None) -> NDArray[np.intp]:
    """(height, 2) first and past-the-last column of each row the display pass computes: the
    pixels within ``radius_px`` + 2 of the centre (None: all). An intensifier's monitor is black
    beyond its circle, and the pincushion remap samples a shown pixel within its radius + √2 (a
    point is shown at a radius at least its own), so nothing beyond is ever seen. Cached."""
    spans = np.zeros((height, 2), np.intp)
    spans[:, 1] = width
    if radius_px is not None:
        inside = _radius_px((height, width)) <= radius_px + 2.0
        for r in range(height):
            columns = np.flatnonzero(inside[r])
            spans[r] = (columns[0], columns[-1] + 1) if columns.size else (0, 0)
    spans.setflags(write=False)
    return spans


def _display_processed(
    inputs: ProcessingInputs,
    level: float,
    half_width: float,
    gamma: float,
    spans: NDArray[np.intp],
) -> NDArray[np.uint8]:
    """:func:`to_display` (not inverted) of the log of the processed signal ``inputs``, within
    the ``spans`` of :func:`_display_spans` (0 beyond)."""
    low_bits, shift, table, bounded = _grey_lookup(display_thresholds(level, half_width, gamma))
    display: NDArray[np.uint8] = _processed_display(
        np.asarray(inputs.signal, dtype=np.float32),
        inputs.exposed,
        np.asarray(inputs.blurred, dtype=np.float32),
        np.asarray(inputs.edge_norm, dtype=np.float32),
        np.asarray(inputs.gain, dtype=np.float32),
        inputs.use_gain,
        float(inputs.edge_gain),
        float(inputs.floor),
        low_bits,
        shift,
        table,
        bounded,
        spans,
    )
    return display


def _fused_chain(
    integrals: NDArray[np.floating],
    geometry: ProjectionGeometry,
    settings: ChainSettings,
    n0: float,
    mu_water_per_mm: float,
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    """The stages of :func:`apply_image_chain` fused (see there)."""
    grid = (geometry.height_px, geometry.width_px, float(geometry.pixel_mm), settings)
    try:
        exposed, window, gain, distortion, plan = _fused_constants(*grid)
    except TypeError:  # settings holding an unhashable value (e.g. a list): compute, uncached
        exposed, window, gain, distortion, plan = _fused_constants.__wrapped__(*grid)
    height, width = integrals.shape
    size = height * width
    raw = rng.bit_generator.random_raw((size + 1) // 2 + 1)  # as standard_normal_deviates draws
    transmission = np.negative(integrals, dtype=np.float32)
    # OpenCV's float32 exp: 0.075 ms at 512² where numpy's took 0.42 ms (and numba's 0.72 ms);
    # within 4e-7 relative of numpy's, the same zeros and infinities
    transmission = cast(NDArray[np.float32], cv2.exp(transmission, dst=transmission))
    if settings.scatter is not None:
        scatter = scatter_fraction(
            transmission, exposed, geometry.pixel_mm, mu_water_per_mm, settings.scatter
        )
    else:
        scatter = np.zeros_like(transmission)
    signal = _noisy_signal(
        transmission,
        exposed,
        np.asarray(scatter, dtype=np.float32),
        raw[1:].view(np.uint32)[:size],
        np.uint64(raw[0]),
        _ZIGGURAT_X,
        _ZIGGURAT_F,
        float(n0),
    )
    if settings.blur_fwhm_mm > 0:
        sigma_px = settings.blur_fwhm_mm / (2 * math.sqrt(2 * math.log(2))) / geometry.pixel_mm
        signal = cast(
            NDArray[np.float32],
            cv2.GaussianBlur(signal, (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT),
        )
    signal = np.asarray(signal, dtype=np.float32)
    fraction = settings.effective_glare_fraction
    halo = signal  # (unused at fraction 0)
    if fraction > 0:
        halo = np.asarray(
            glare_halo(signal, geometry.pixel_mm, settings.glare_sigmas_mm, settings.glare_weights),
            dtype=np.float32,
        )
    # veiling glare, vignetting and shutter masking (gain 1 without either), the floor, and the
    # processing's masked copy in one pass
    shown, masked = _shown_signal(
        signal,
        halo,
        float(fraction) if fraction > 0 else 0.0,
        gain,
        np.asarray(plan.weight, dtype=np.float32),
        float(np.float32(0.5 / n0)),
    )
    inputs = processing_inputs(shown, plan, 0.5 / n0, masked)
    gamma = settings.display_gamma
    # the window needs the processed signal and its log only at its sample pixels; the display
    # curve is then evaluated on the linear processed signal as it is computed (see
    # display_thresholds): no full-image processed array, log, tanh or power
    log_processed, log_shown = inputs.logs_at(window)
    level, half_width = _window_from_values(log_processed, gamma=gamma, unprocessed=log_shown)
    circle_px = settings.field_radius_px(geometry) if distortion is not None else None
    spans = _display_spans(height, width, None if circle_px is None else float(circle_px))
    display = _display_processed(inputs, level, half_width, gamma, spans)
    if distortion is not None:
        maps, outside = distortion
        if maps is not None:
            display = cast(
                NDArray[np.uint8],
                cv2.remap(
                    display, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
                ),
            )
    if settings.invert:  # after the (linear) remap, so inverted = 255 − normal exactly
        np.subtract(np.uint8(255), display, out=display)
    if distortion is not None:  # black outside the circle: an AND with 0 / 255 (0.02 ms at
        # 512², where assigning through the boolean mask took 0.1 ms)
        display = cast(NDArray[np.uint8], cv2.bitwise_and(display, distortion[1], dst=display))
    return display


@dataclass
class LastImageHold:
    """Keeps the last displayed frame on screen when the pedal is released (LIH)."""

    image: NDArray[np.uint8] | None = None
    frames_shown: int = 0

    def show(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """A new frame reaches the monitor; it becomes the held image."""
        self.image = np.array(image, copy=True)
        self.frames_shown += 1
        return self.image

    def held(self) -> NDArray[np.uint8] | None:
        """What the monitor shows with the beam off (None before the first frame)."""
        return self.image

    def clear(self) -> None:
        """Blank the monitor (new patient or case)."""
        self.image = None
