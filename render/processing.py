"""The C-arm's digital image processing: equalization and edge enhancement of the camera signal.

Every digital fluoroscopy system processes the camera's (or panel's) signal before the monitor's
display curve (Seibert, *Digital fluoroscopic imaging: acquisition, processing and display*, AAPM;
Bushberg et al., *The Essential Physics of Medical Imaging*, digital image processing):

- **Equalization** (dynamic-range compression, "harmonization"): the image's large-scale
  brightness variation — thick pelvis against thin flank, the iliac wings against the sacrum on a
  lateral — is partly removed, so dense and lucent regions both show their detail in one window.
  Here the log of the signal's background (a Gaussian low-pass of ``equalization_mm`` at the
  detector) is pulled toward its field mean by the fraction ``equalization``: a step between two
  regions far wider than the kernel keeps ``1 − equalization`` of its log contrast, while a detail
  far smaller than the kernel keeps all of its contrast.
- **Edge enhancement** (unsharp masking, a high-pass boost): the signal plus ``gain`` × (signal −
  its Gaussian blur of ``edge_mm``), which raises the contrast of details smaller than the kernel
  — a cortex, a guidewire — by up to ``1 + gain`` (Jabri & Wilson 2002, J Opt Soc Am A 19:1297:
  unsharp masking doubled a 0.46 mm guidewire's contrast and improved its detection in sequences)
  and amplifies the quantum noise with it, as on a real monitor.

Both act only inside the exposed field: the low-passes are normalised convolutions over the field
(the black beyond the collimator and the intensifier's circle does not leak in), and the signal
stays above the ``floor`` the log needs. Parameters are typical-order teaching values, not a
specific vendor's (their algorithms are proprietary).

The two are applied together, as ``gain_eq × (s + g·(s − K₂ ⊛ s))``: the equalization gain varies
over 20 mm and the unsharp mask over 2 mm, so enhancing the edges before or after multiplying by
the gain differs only by the gain's change across 2 mm. What depends only on the detector grid
and the field — the field's weights after each low-pass — is computed once in a
:class:`ProcessingPlan` (the fused chain caches it per geometry). The background low-pass runs on
the coarse grid of :mod:`render.scatter` (block means, small matrix products, bilinear
upsampling), the unsharp mask's blur at half resolution (:func:`_edge_blur`; the equalization's
block means are taken from the same 2 × 2 block means), the rest in one numba pass. At 512² on the
default patient's AP frame the low-passes (:func:`processing_inputs`) took 0.55 ms on one core
(hot caches, load ≈2); the fused chain then evaluates the combination inside its display pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar, cast

import cv2
import numpy as np
from numba import njit
from numpy.typing import NDArray

from fluorosim.render.scatter import coarse_factor, downsample_area, smooth_mixture, upsample_linear

#: Smallest field weight a normalised convolution divides by (outside the field: no correction).
_MIN_WEIGHT = 1e-3
#: Variance (full-resolution px²) the half-resolution blur's 2 × 2 block means (0.25) and bilinear
#: upsampling (≈0.67) add.
_HALF_RES_VARIANCE_PX2 = 0.92

Signal = TypeVar("Signal", NDArray[np.float32], NDArray[np.float64])


@dataclass(frozen=True)
class ProcessingPlan:
    """What the processing needs of the detector grid and the field, computed once.

    ``weight``: the exposed field as 0/1; ``coarse_weight`` its block means on the coarse grid
    (block size ``factor``) and ``coarse_norm`` their Gaussian low-pass (the normalisation of
    the background's low-pass); ``edge_norm``: 1 / the field weight after the unsharp mask's blur.
    """

    exposed: NDArray[np.bool_]
    weight: NDArray[np.floating]
    factor: int
    coarse_weight: NDArray[np.floating]
    coarse_norm: NDArray[np.floating]
    edge_norm: NDArray[np.floating]
    equalization: float
    equalization_sigma_px: float
    edge_gain: float
    edge_sigma_px: float


def processing_plan(
    exposed: NDArray[np.bool_],
    pixel_mm: float,
    equalization: float,
    equalization_mm: float,
    edge_gain: float,
    edge_mm: float,
    dtype: type[np.floating] = np.float32,
) -> ProcessingPlan:
    """The :class:`ProcessingPlan` of a field on a detector grid of ``pixel_mm`` (low-pass σ
    ``equalization_mm`` and ``edge_mm`` at the detector)."""
    weight = exposed.astype(dtype)
    factor = coarse_factor(*exposed.shape)
    coarse_weight = downsample_area(weight, factor)
    equalization_sigma_px = equalization_mm / pixel_mm / factor
    coarse_norm = smooth_mixture(coarse_weight, (equalization_sigma_px,), (1.0,))
    edge_sigma_px = edge_mm / pixel_mm
    edge_norm = 1.0 / np.maximum(_edge_blur(weight, edge_sigma_px), _MIN_WEIGHT)
    for array in (weight, coarse_weight, coarse_norm, edge_norm):
        array.setflags(write=False)
    return ProcessingPlan(
        exposed=exposed,
        weight=weight,
        factor=factor,
        coarse_weight=coarse_weight,
        coarse_norm=coarse_norm,
        edge_norm=edge_norm.astype(dtype),
        equalization=float(equalization),
        equalization_sigma_px=float(equalization_sigma_px),
        edge_gain=float(edge_gain),
        edge_sigma_px=float(edge_sigma_px),
    )


def _half_resolution(image: NDArray[np.floating], sigma_px: float) -> NDArray[np.floating] | None:
    """The 2 × 2 block means :func:`_edge_blur` starts from when a kernel of ``sigma_px`` runs
    at half resolution (None when it runs at full resolution)."""
    height, width = image.shape
    if sigma_px < 2.0 or height % 2 or width % 2:
        return None
    return cast(
        NDArray[np.floating],
        cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA),
    )


def _edge_blur(
    image: NDArray[np.floating], sigma_px: float, half: NDArray[np.floating] | None = None
) -> NDArray[np.floating]:
    """The unsharp mask's Gaussian of ``sigma_px``, truncated at 3 σ.

    A kernel of 2 px or more runs at half resolution (2 × 2 block means — ``half``, if already
    computed by :func:`_half_resolution` —, the Gaussian, bilinear upsampling; the blocks and the
    interpolation add ≈0.25 + 0.67 px² of variance, taken off the Gaussian's): the same low-pass
    within a few per cent, a third of the time.
    """
    height, width = image.shape
    if half is None:
        half = _half_resolution(image, sigma_px)
    if half is None:
        size = 2 * int(math.ceil(3 * sigma_px)) + 1
        return cast(
            NDArray[np.floating],
            cv2.GaussianBlur(image, (size, size), sigma_px, borderType=cv2.BORDER_REFLECT),
        )
    sigma_half = math.sqrt(sigma_px * sigma_px - _HALF_RES_VARIANCE_PX2) / 2
    size = 2 * int(math.ceil(3 * sigma_half)) + 1
    blurred = cv2.GaussianBlur(half, (size, size), sigma_half, borderType=cv2.BORDER_REFLECT)
    return cast(
        NDArray[np.floating],
        cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR),
    )


def _equalization_gain(
    masked: NDArray[np.floating],
    plan: ProcessingPlan,
    floor: float,
    half: NDArray[np.floating] | None = None,
) -> NDArray[np.floating] | None:
    """exp(−strength · (B − B̄)) on the full grid (None when equalization is off).

    B: the log of the field's block means, low-passed over the field; B̄ its field mean. The
    block means come from ``half`` (the 2 × 2 block means of ``masked``) when given and the
    blocks are of an even size: a quarter of the pixels to sum, the same means to rounding.
    """
    if plan.equalization == 0:
        return None
    if half is not None and plan.factor % 2 == 0:
        coarse_sum = downsample_area(half, plan.factor // 2)
    else:
        coarse_sum = downsample_area(masked, plan.factor)
    inside = plan.coarse_weight > _MIN_WEIGHT
    coarse_mean = np.where(inside, coarse_sum / np.maximum(plan.coarse_weight, _MIN_WEIGHT), 1.0)
    log_mean = np.log(np.maximum(coarse_mean, floor)) * plan.coarse_weight
    smoothed = smooth_mixture(log_mean, (plan.equalization_sigma_px,), (1.0,))
    background = smoothed / np.maximum(plan.coarse_norm, _MIN_WEIGHT)
    total = max(float(plan.coarse_weight.sum()), 1e-9)
    field_mean = float((background * plan.coarse_weight).sum()) / total
    coarse_gain = np.exp(-plan.equalization * (background - field_mean))
    return upsample_linear(coarse_gain.astype(masked.dtype), plan.factor)


@njit(cache=True, nogil=True, inline="always")
def processed_value(
    value: float,
    inside: bool,
    blurred: float,
    edge_norm: float,
    gain: float,
    use_gain: bool,
    edge_gain: float,
    floor: float,
) -> float:
    """One pixel of the processed signal: max(floor, gain · (s + g·(s − blurred·norm))) inside
    the field, s outside (shared by :func:`process` and the fused chain's display pass)."""
    if inside:
        value = value + edge_gain * (value - blurred * edge_norm)
        if use_gain:
            value = value * gain
        value = max(value, floor)
    return value


@njit(cache=True, nogil=True)
def _combine(
    signal: NDArray[np.floating],
    exposed: NDArray[np.bool_],
    blurred: NDArray[np.floating],
    edge_norm: NDArray[np.floating],
    gain: NDArray[np.floating],
    use_gain: bool,
    edge_gain: float,
    floor: float,
    out: NDArray[np.floating],
) -> None:
    """out = max(floor, gain · (s + g·(s − blurred·norm))) inside the field, s outside."""
    height, width = signal.shape
    for r in range(height):
        for c in range(width):
            out[r, c] = processed_value(
                signal[r, c],
                exposed[r, c],
                blurred[r, c],
                edge_norm[r, c],
                gain[r, c],
                use_gain,
                edge_gain,
                floor,
            )


@njit(cache=True, nogil=True)
def _logs_at(
    signal: NDArray[np.floating],
    exposed: NDArray[np.bool_],
    blurred: NDArray[np.floating],
    edge_norm: NDArray[np.floating],
    gain: NDArray[np.floating],
    use_gain: bool,
    edge_gain: float,
    floor: float,
    active: bool,
    indices: NDArray[np.intp],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(log processed, log signal) at the flat ``indices`` (processed = signal when not
    ``active``)."""
    width = signal.shape[1]
    processed = np.empty(indices.size, np.float64)
    raw = np.empty(indices.size, np.float64)
    for n in range(indices.size):
        r, c = divmod(indices[n], width)
        value = float(signal[r, c])
        raw[n] = math.log(value)
        if active:
            value = processed_value(
                signal[r, c],
                exposed[r, c],
                blurred[r, c],
                edge_norm[r, c],
                gain[r, c],
                use_gain,
                edge_gain,
                floor,
            )
        processed[n] = math.log(value)
    return processed, raw


@dataclass(frozen=True)
class ProcessingInputs:
    """What :func:`_combine` reads for one signal: the processed signal is
    ``processed_value(signal, exposed, blurred, edge_norm, gain, use_gain, edge_gain, floor)``
    per pixel (see :func:`processing_inputs`); ``active`` False means no processing (the signal
    itself)."""

    signal: NDArray[np.floating]
    exposed: NDArray[np.bool_]
    blurred: NDArray[np.floating]
    edge_norm: NDArray[np.floating]
    gain: NDArray[np.floating]
    use_gain: bool
    edge_gain: float
    floor: float
    active: bool

    def logs_at(self, indices: NDArray[np.intp]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(log of the processed signal, log of the signal) at the flat ``indices``, in one
        numba call (the automatic window's inputs)."""
        return _logs_at(
            self.signal,
            self.exposed,
            self.blurred,
            self.edge_norm,
            self.gain,
            self.use_gain,
            self.edge_gain,
            self.floor,
            self.active,
            indices,
        )


def processing_inputs(
    signal: Signal, plan: ProcessingPlan, floor: float, masked: Signal | None = None
) -> ProcessingInputs:
    """The low-passes :func:`process` combines with the signal, computed but not yet combined:
    the fused chain evaluates the combination where it needs it (the window's sample, then the
    display pass) instead of writing the whole processed image. ``masked``: signal × the field's
    weight, if the caller has it already."""
    enhancing = plan.edge_gain != 0 and plan.edge_sigma_px > 0
    if (plan.equalization == 0 and not enhancing) or not plan.exposed.any():
        return ProcessingInputs(
            signal, plan.exposed, signal, signal, signal, False, 0.0, floor, active=False
        )
    if masked is None:
        masked = signal * plan.weight.astype(signal.dtype, copy=False)
    half = _half_resolution(masked, plan.edge_sigma_px) if enhancing else None
    gain = _equalization_gain(masked, plan, floor, half)
    blurred = _edge_blur(masked, plan.edge_sigma_px, half) if enhancing else masked
    return ProcessingInputs(
        signal,
        plan.exposed,
        blurred,
        plan.edge_norm.astype(signal.dtype, copy=False),
        gain if gain is not None else masked,
        gain is not None,
        plan.edge_gain if enhancing else 0.0,
        float(floor),
        active=True,
    )


def process(signal: Signal, plan: ProcessingPlan, floor: float) -> Signal:
    """Equalization and edge enhancement of ``signal`` (the field's part; see the module doc).

    The signal itself when both are off; otherwise a new array of the same dtype, never below
    ``floor`` inside the field.
    """
    inputs = processing_inputs(signal, plan, floor)
    if not inputs.active:
        return signal
    out = np.empty_like(signal)
    _combine(
        inputs.signal,
        inputs.exposed,
        inputs.blurred,
        inputs.edge_norm,
        inputs.gain,
        inputs.use_gain,
        inputs.edge_gain,
        inputs.floor,
        out,
    )
    return out
