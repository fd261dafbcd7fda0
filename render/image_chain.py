"""The fluoroscopy image chain: line integrals → photons → noise → blur → intensifier → display.

Entry point (called by render/renderer.py; keep this signature)::

    apply_image_chain(line_integrals (H, W) float32, geometry, settings: ChainSettings | None,
                      exposure: Exposure | None, rng: numpy.random.Generator, model=None)
        -> uint8 (H, W)

(settings None → ``ChainSettings.for_model(model)``; exposure None → continuous fluoroscopy with
the automatic dose-rate control's tube current for the field.)

Each stage is a pure function (randomness only through the injected ``rng``), following
reference/carm.md "Image chain":

1. ``beer_lambert``: transmission T = exp(−∫μ dl) (line integrals of anatomy and metal add).
2. ``photons_per_pixel``: unattenuated photons per pixel for one displayed image, from the air
   kerma of the exposure (render.dose) carried to the detector by inverse square, converted to
   fluence with the air mass energy-absorption coefficient (NIST, Hubbell & Seltzer) at the
   renderer's effective energy (render.attenuation.effective_energy_kev), times the detector's quantum efficiency and the pixel area. A displayed
   fluoroscopy image integrates ``display_integration_s`` of exposure (≈0.2 s, the eye's and the
   recursive filter's temporal integration; at least one pulse), so pulsed and low-dose modes,
   which deliver less dose per second, look noisier.
3. ``add_quantum_noise``: Poisson counts (its normal limit above 100 expected photons); the
   normalised signal has variance T/N.
4. ``blur``: Gaussian of ``blur_fwhm_mm`` at the detector (focal spot + detector).
5. Image intensifier only: ``apply_vignetting`` (brightness falls as 1 − v·(r/R)² to the edge of
   the field radius R) and ``pincushion_distort`` (a point at radius r is shown at
   r·(1 + k·(r/R)²): outward by k·R at the edge). A flat panel has neither.
6. Collimation: outside the receptor field (II circle / FPD square), iris and shutters there is no
   primary beam (zero photons), so the shutters show as dark edges.
7. ``auto_window``: automatic brightness control in the log domain, from the exposed field only:
   its mean displayed grey is held at mid-grey and its robust spread sets the contrast, so a
   lateral or an obese patient is not simply dark.
8. ``to_display``: dense structures dark, metal black; ``invert`` makes bone white. Outside an
   intensifier's circle the monitor is black in both. ``LastImageHold`` keeps the last frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from numba import njit
from numpy.typing import NDArray

from render.attenuation import effective_energy_kev
from render.dose import (
    DEFAULT_KVP,
    DoseRecord,
    dose_for_exposure,
    frame_air_kerma_mgy,
    reference_distance_mm,
    typical_tube_current_ma,
)
from render.exposure import Collimation, Exposure, exposed_field_mask
from render.geometry import ProjectionGeometry

DETECTOR_KINDS = ("ii", "fpd")
#: Air mass energy-absorption coefficient μen/ρ (cm²/g), NIST (Hubbell & Seltzer, NISTIR 5632).
_AIR_MU_EN_RHO: tuple[tuple[float, float], ...] = (
    (40.0, 0.06833),
    (50.0, 0.04098),
    (60.0, 0.03041),
    (80.0, 0.02407),
    (100.0, 0.02325),
)
_KEV_TO_J = 1.602176634e-16


@dataclass(frozen=True)
class ChainSettings:
    """How the C-arm turns photons into the monitor image.

    ``field_mm``: receptor field at the detector (II circle diameter for the current
    magnification mode, FPD square side); None = the whole geometry detector.
    ``magnification_mode`` is the name of that mode (shown and recorded, e.g. "normal", "mag1").
    ``vignetting``: fractional brightness loss at the II field edge; ``pincushion``: fractional
    outward displacement at the II field edge (both ignored for a flat panel; typical-order
    teaching values, not measured on a specific device).
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
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"ChainSettings.{name}: out of range ({getattr(self, name)!r})")

    @classmethod
    def for_model(cls, model: Any, **overrides: Any) -> ChainSettings:
        """Settings for a render.carm.CArmModel: "image_intensifier" → "ii", else "fpd".

        The receptor field defaults to the geometry's detector (carm_geometry sizes the detector
        to the magnification mode's field), so ``field_mm`` stays None unless overridden.
        """
        kind = (
            "ii"
            if getattr(model, "detector", "image_intensifier") == "image_intensifier"
            else "fpd"
        )
        overrides.setdefault("detector_kind", kind)
        return cls(**overrides)

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
    """Photon fluence per air kerma, Φ/K = 1 / (E · (μen/ρ)air), in photons/(mm²·µGy)."""
    energies, coefficients = zip(*_AIR_MU_EN_RHO, strict=True)
    mu_en_rho = math.exp(np.interp(math.log(energy_kev), np.log(energies), np.log(coefficients)))
    gy_m2_per_photon = energy_kev * _KEV_TO_J * mu_en_rho * 0.1  # cm²/g → m²/kg
    return 1.0 / gy_m2_per_photon * 1e-6 * 1e-6  # per Gy·m² → per µGy·mm²


def photons_per_pixel(
    exposure: Exposure, geometry: ProjectionGeometry, settings: ChainSettings
) -> float:
    """Detected photons per pixel of one displayed image with nothing in the beam."""
    scale = reference_distance_mm(geometry) / geometry.sid_mm
    kerma_detector_ugy = frame_air_kerma_mgy(exposure, geometry) * scale**2 * 1000.0
    rate = exposure.frame_rate_hz
    images_integrated = 1.0 if rate is None else max(1.0, settings.display_integration_s * rate)
    fluence = photons_per_mm2_per_ugy(effective_energy_kev(exposure.kvp))
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


def standard_normal_deviates(
    rng: np.random.Generator, shape: tuple[int, ...]
) -> NDArray[np.float32]:
    """Standard normal float32 deviates by the Box–Muller transform (Box & Muller 1958).

    z₁, z₂ = √(−2 ln u₁)·(cos 2πu₂, sin 2πu₂) from uniform float32 pairs: exact normals (tails
    beyond 5.7 σ, probability < 1e-8, cut by the float32 uniforms), about twice as fast as
    ``rng.standard_normal`` here because numpy evaluates the log/sin/cos in SIMD.
    """
    size = int(np.prod(shape))
    half = (size + 1) // 2
    uniform = rng.random((2, half), dtype=np.float32)
    radius = np.subtract(np.float32(1.0), uniform[0])  # (0, 1]: the log stays finite
    np.log(radius, out=radius)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    angle = uniform[1]
    angle *= np.float32(2.0 * math.pi)
    z = np.empty(2 * half, np.float32)
    np.cos(angle, out=z[:half])
    np.sin(angle, out=z[half:])
    z[:half] *= radius
    z[half:] *= radius
    return z[:size].reshape(shape)


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
    return cv2.GaussianBlur(
        np.asarray(image, dtype=np.float64), (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT
    )


@lru_cache(maxsize=8)
def _radius_px(shape: tuple[int, int]) -> NDArray[np.float64]:
    """Distance of every pixel centre from the image centre (px); cached, read-only."""
    height, width = shape
    y = np.arange(height) - (height - 1) / 2
    x = np.arange(width) - (width - 1) / 2
    radius = np.hypot(x[None, :], y[:, None])
    radius.setflags(write=False)
    return radius


def apply_vignetting(
    image: NDArray[np.floating], field_radius_px: float, strength: float
) -> NDArray[np.float64]:
    """Multiply by 1 − strength·(r/R)² (intensifier brightness fall-off toward the field edge)."""
    height, width = image.shape[:2]
    gain = _vignetting_gain(height, width, float(field_radius_px), float(strength))
    return np.asarray(image, dtype=np.float64) * gain


@lru_cache(maxsize=8)
def _vignetting_gain(height: int, width: int, field_radius_px: float, strength: float) -> NDArray:
    ratio = np.clip(_radius_px((height, width)) / field_radius_px, 0.0, 1.0)
    gain = 1.0 - strength * ratio**2
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
) -> NDArray:
    """Radial pincushion distortion of an intensifier about the image centre (k = 0: identity)."""
    if k == 0:
        return image
    height, width = image.shape[:2]
    map_x, map_y = _pincushion_maps(height, width, float(field_radius_px), float(k))
    return cv2.remap(
        image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def auto_window(
    log_signal: NDArray[np.floating],
    exposed: NDArray[np.bool_],
    spread_percentiles: tuple[float, float] = (5.0, 95.0),
    min_half_width: float = 0.2,
) -> tuple[float, float]:
    """(level, half_width) in the log domain from the exposed field (automatic brightness).

    The half width is 0.625 × the distance between the field's 5th and 95th percentiles (shown
    through the tanh display curve of :func:`to_display`), so metal covering a few per cent of the field does not flatten the
    anatomy, but is at least ``min_half_width`` so a featureless field does not turn into
    amplified noise. The level is then found by bisection
    so that the mean displayed grey of the exposed field is mid-grey (127.5), as a brightness
    feedback loop settles; metal far below the level goes black.
    """
    values = np.asarray(log_signal).ravel()[_window_sample(exposed)]
    return _window_from_values(values, spread_percentiles, min_half_width)


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
) -> tuple[float, float]:
    """:func:`auto_window` on the sampled exposed values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return 0.0, 1.0
    p_low, p_high = np.percentile(values, spread_percentiles)
    half_width = max(0.625 * float(p_high - p_low), min_half_width)
    low, high = float(values.min()) - half_width, float(values.max()) + half_width
    for _ in range(30):  # displayed mean falls monotonically as the level rises
        level = 0.5 * (low + high)
        grey = _grey(values, level, half_width)
        if grey.mean() > 127.5:
            low = level
        else:
            high = level
    return 0.5 * (low + high), half_width


def _grey(
    log_signal: NDArray[np.floating], level: float, half_width: float
) -> NDArray[np.floating]:
    """The display curve: 127.5 + 127.5·tanh((s − level) / half_width), a soft-shouldered S.

    Unlike a hard clip it keeps metal over bone darker than the bone beside it.
    """
    scaled = (np.asarray(log_signal, dtype=np.float32) - np.float32(level)) / np.float32(half_width)
    return 127.5 + 127.5 * np.tanh(scaled)


def to_display(
    log_signal: NDArray[np.floating], level: float, half_width: float, invert: bool = False
) -> NDArray[np.uint8]:
    """Map the log signal through the display curve (low signal = dense = dark); invert makes
    dense structures white."""
    grey = np.clip(np.rint(_grey(log_signal, level, half_width)), 0, 255).astype(np.uint8)
    return 255 - grey if invert else grey


def apply_image_chain(
    line_integrals: NDArray[np.floating],
    geometry: ProjectionGeometry,
    settings: ChainSettings | None = None,
    exposure: Exposure | None = None,
    rng: np.random.Generator | None = None,
    model: Any = None,
    fused: bool = True,
) -> NDArray[np.uint8]:
    """Monitor image (uint8, H × W) of one displayed frame from the total line integrals.

    ``settings`` None → :meth:`ChainSettings.for_model` of ``model`` (a render.carm.CArmModel).
    ``exposure`` None → continuous fluoroscopy at DEFAULT_KVP with the tube current
    render.dose.typical_tube_current_ma picks for the field. ``rng`` must be injected.

    ``fused`` (default) runs the same stages in float32 in two serial numba passes around
    OpenCV's blur and remap, with the per-geometry masks and maps cached;
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
    if fused:
        return _fused_chain(integrals, geometry, settings, n0, rng)
    exposed = settings.exposed_mask(geometry)
    counts = add_quantum_noise(n0 * beer_lambert(integrals) * exposed, rng)
    signal = blur(counts / n0, settings.blur_fwhm_mm, geometry.pixel_mm)
    intensifier = settings.detector_kind == "ii"
    radius_px = settings.field_radius_px(geometry)
    if intensifier and settings.vignetting > 0:
        signal = apply_vignetting(signal, radius_px, settings.vignetting)
    log_signal = np.log(np.maximum(signal, 0.5 / n0))
    # statistics away from the blurred collimator edges
    level, half_width = auto_window(log_signal, _window_mask(geometry, settings))
    display = to_display(log_signal, level, half_width, settings.invert)
    if intensifier:
        display = pincushion_distort(display, radius_px, settings.pincushion)
        outside = _radius_px(display.shape) > radius_px
        display[outside] = 0
    return display


def _window_mask(geometry: ProjectionGeometry, settings: ChainSettings) -> NDArray[np.bool_]:
    """Exposed field eroded by 2 px (statistics away from blurred collimator edges); cached."""
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
) -> tuple[NDArray, NDArray, NDArray, tuple | None]:
    """Per detector grid and settings: exposed mask, auto-window sample indices, vignetting gain,
    (pincushion remap maps, outside-the-circle mask) for an intensifier."""
    geometry = _grid_only(height, width, pixel_mm)
    exposed = np.ascontiguousarray(settings.exposed_mask(geometry))
    window = _window_sample(_window_mask(geometry, settings))
    radius_px = settings.field_radius_px(geometry)
    intensifier = settings.detector_kind == "ii"
    if intensifier and settings.vignetting > 0:
        gain = _vignetting_gain(height, width, float(radius_px), float(settings.vignetting))
        gain = np.ascontiguousarray(gain, dtype=np.float32)
    else:
        gain = np.ones((height, width), np.float32)
    distortion = None
    if intensifier:
        maps = None
        if settings.pincushion != 0:
            maps = _pincushion_maps(height, width, float(radius_px), float(settings.pincushion))
        distortion = (maps, _radius_px((height, width)) > radius_px)
    return exposed, window, gain, distortion


@njit(cache=True, nogil=True)
def _fused_signal(
    transmission: NDArray[np.float32], exposed: NDArray, z: NDArray[np.float32], n0: float
) -> NDArray[np.float32]:
    """Normalised noisy signal counts / N0 from the transmission: collimation and Poisson noise
    in one pass (numpy computes the exponential: its SIMD exp is far faster than numba's)."""
    height, width = transmission.shape
    out = np.empty((height, width), np.float32)
    inv_n0 = 1.0 / n0
    for r in range(height):  # serial: a ~1 ms pass is not worth waking the thread pool
        for c in range(width):
            if exposed[r, c]:
                expected = n0 * float(transmission[r, c])
                out[r, c] = _count_from_normal(expected, float(z[r, c])) * inv_n0
            else:
                out[r, c] = 0.0
    return out


def _display_curve(
    log_signal: NDArray[np.float32], level: float, half_width: float, invert: bool
) -> NDArray[np.uint8]:
    """:func:`to_display` in float32 with fewer temporaries."""
    grey = np.subtract(log_signal, np.float32(level), dtype=np.float32)
    grey *= np.float32(1.0 / half_width)
    np.tanh(grey, out=grey)
    grey *= np.float32(127.5)
    grey += np.float32(127.5)
    np.rint(grey, out=grey)
    display = np.clip(grey, 0, 255).astype(np.uint8)
    return 255 - display if invert else display


def _fused_chain(
    integrals: NDArray[np.floating],
    geometry: ProjectionGeometry,
    settings: ChainSettings,
    n0: float,
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    """The stages of :func:`apply_image_chain` fused (see there)."""
    grid = (geometry.height_px, geometry.width_px, float(geometry.pixel_mm), settings)
    try:
        exposed, window, gain, distortion = _fused_constants(*grid)
    except TypeError:  # settings holding an unhashable value (e.g. a list): compute, uncached
        exposed, window, gain, distortion = _fused_constants.__wrapped__(*grid)
    z = standard_normal_deviates(rng, integrals.shape)  # as add_quantum_noise draws
    transmission = np.exp(-np.asarray(integrals, dtype=np.float32))
    signal = _fused_signal(transmission, exposed, z, float(n0))
    if settings.blur_fwhm_mm > 0:
        sigma_px = settings.blur_fwhm_mm / (2 * math.sqrt(2 * math.log(2))) / geometry.pixel_mm
        signal = cv2.GaussianBlur(signal, (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT)
    log_signal = np.multiply(signal, gain, dtype=np.float32)  # vignetting (gain 1 without)
    np.maximum(log_signal, np.float32(0.5 / n0), out=log_signal)
    np.log(log_signal, out=log_signal)
    level, half_width = _window_from_values(log_signal.ravel()[window])
    display = _display_curve(log_signal, level, half_width, invert=False)
    if distortion is not None:
        maps, outside = distortion
        if maps is not None:
            display = cv2.remap(
                display, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
    if settings.invert:  # after the (linear) remap, so inverted = 255 − normal exactly
        np.subtract(np.uint8(255), display, out=display)
    if distortion is not None:
        display[distortion[1]] = 0
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
