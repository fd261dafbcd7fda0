"""The dose-rate control's sensor: what the beam crosses where the C-arm measures.

A C-arm's automatic dose-rate control (ADRC) holds the signal in a central measuring field of
the receptor constant: it reads the mean brightness there and drives the tube current, and past
the generator's rate limit the tube voltage, until it is back at its set point, so a lateral
through the pelvis or a heavy patient gets more dose per image and a harder beam, and a thin one
less (Bushberg et al., *The Essential Physics of Medical Imaging*, fluoroscopy: automatic
brightness control).

:func:`metered_paths` is that reading's input: rays from the focal spot to a grid of points on
the measuring disc (``metering_radius_mm`` at the detector) through the patient's CT numbers
(sampled every ``step_mm`` between the ray's entry into and exit from the volume, nearest
voxel), each ray's path split into millimetres of water and of cortical bone
(render.attenuation, docstring 3). :func:`metered_technique` turns them into the mean primary
transmission of the polyenergetic beam at any kVp (render.spectrum) and lets
render.dose.automatic_technique pick the kVp and mA. It reads the patient, not a rendered frame,
so a session without images (scoring a scripted attempt) meters exactly as one with them.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import cast

import numpy as np
from numba import njit
from numpy.typing import NDArray

from fluorosim.render.attenuation import (
    CT_EFFECTIVE_ENERGY_KEV,
    bone_fraction,
    hu_to_mu,
    water_equivalent_mm,
)
from fluorosim.render.dose import Technique, automatic_technique, reference_distance_mm
from fluorosim.render.geometry import ProjectionGeometry
from fluorosim.render.spectrum import beam

#: Rays across the measuring disc's diameter (those inside the disc are used: ≈ 0.785 × n²).
METERING_RAYS_ACROSS = 13
#: Sampling step along each ray (mm): the patient's CT numbers, nearest voxel.
METERING_STEP_MM = 2.0
#: Energy at which the metered ∫μ dl is split into water and bone (any energy of the material
#: table gives the same split).
METERING_ENERGY_KEV = CT_EFFECTIVE_ENERGY_KEV


def _entry_exit(
    source: NDArray[np.float64],
    direction: NDArray[np.float64],
    low: NDArray[np.float64],
    high: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per ray, the ray parameters (mm from the source) where it enters and leaves the box
    [low, high] (slab method); enter ≥ exit when it misses."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / direction
        t_low = (low - source) * inverse
        t_high = (high - source) * inverse
    near = np.nan_to_num(np.minimum(t_low, t_high), nan=-np.inf)
    far = np.nan_to_num(np.maximum(t_low, t_high), nan=np.inf)
    return np.maximum(near.max(axis=1), 0.0), far.min(axis=1)


def metered_paths(
    hu: NDArray[np.integer] | NDArray[np.floating],
    lps_from_voxel: NDArray[np.float64],
    geometry: ProjectionGeometry,
    metering_radius_mm: float,
    rays_across: int = METERING_RAYS_ACROSS,
    step_mm: float = METERING_STEP_MM,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per ray of the measuring disc, the (water mm, cortical bone mm) the beam crosses."""
    if metering_radius_mm <= 0:
        raise ValueError("metered_paths: the metering radius must be > 0")
    offsets = np.linspace(-metering_radius_mm, metering_radius_mm, rays_across)
    du, dv = np.meshgrid(offsets, offsets)
    inside = du**2 + dv**2 <= metering_radius_mm**2 + 1e-9
    targets = (
        geometry.detector_center_lps_mm
        + du[inside][:, None] * geometry.detector_u_lps
        + dv[inside][:, None] * geometry.detector_v_lps
    )
    source = np.asarray(geometry.source_lps_mm, dtype=np.float64)
    direction = targets - source
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    voxel_from_lps = np.asarray(np.linalg.inv(lps_from_voxel), dtype=np.float64)
    shape = np.array(hu.shape)
    # the volume's box in LPS (its corners' extent: the affine may flip or permute axes)
    corners = np.array(
        [
            [i, j, k, 1.0]
            for i in (-0.5, shape[0] - 0.5)
            for j in (-0.5, shape[1] - 0.5)
            for k in (-0.5, shape[2] - 0.5)
        ]
    )
    corners_lps = (lps_from_voxel @ corners.T).T[:, :3]
    enter, leave = _entry_exit(
        np.broadcast_to(source, direction.shape), direction, corners_lps.min(0), corners_lps.max(0)
    )
    length = np.maximum(leave - enter, 0.0)
    samples = int(math.ceil(float(length.max(initial=0.0)) / step_mm))
    if samples == 0:
        zero = np.zeros(direction.shape[0])
        return zero, zero.copy()
    if hu.dtype in (np.int16, np.uint8, np.int8, np.uint16):
        # integer CT numbers: tables of every value of the type, marched once in numba
        integer_hu = cast(NDArray[np.integer], hu)
        integrals = _marched_line_integrals(
            integer_hu,
            _value_tables(integer_hu.dtype.str),
            int(np.iinfo(integer_hu.dtype).min),
            voxel_from_lps[:3],
            source,
            direction,
            enter,
            length,
            float(step_mm),
            samples,
        )
    else:
        integrals = np.stack(
            [
                _sampled_line_integrals(
                    hu, voxel_from_lps, source, direction, enter, length, step_mm, samples, quantity
                )
                for quantity in QUANTITIES
            ]
        )
    mu_integrals, bone_mm = integrals[0], integrals[1]
    water_mm = water_equivalent_mm(mu_integrals, bone_mm, METERING_ENERGY_KEV).astype(np.float64)
    return water_mm, bone_mm


#: What the metering integrates along each ray: μ at METERING_ENERGY_KEV, the bone fraction.
QUANTITIES = ("mu", "bone")


def _hu_values(values: NDArray[np.float32], quantity: str) -> NDArray[np.float32]:
    """μ at METERING_ENERGY_KEV (``quantity`` "mu") or the cortical-bone fraction ("bone")."""
    return hu_to_mu(values, METERING_ENERGY_KEV) if quantity == "mu" else bone_fraction(values)


def _sampled_line_integrals(
    hu: NDArray[np.integer] | NDArray[np.floating],
    voxel_from_lps: NDArray[np.float64],
    source: NDArray[np.float64],
    direction: NDArray[np.float64],
    enter: NDArray[np.float64],
    length: NDArray[np.float64],
    step_mm: float,
    samples: int,
    quantity: str,
) -> NDArray[np.float64]:
    """∫ value dl per ray (``quantity``: :func:`_hu_values`) from ``samples`` nearest-voxel
    samples every ``step_mm`` (numpy, any dtype)."""
    shape = np.array(hu.shape)
    # sample centres along each ray; beyond a ray's own exit they are masked out
    along = (np.arange(samples) + 0.5) * step_mm
    t = enter[:, None] + along[None, :]
    valid = along[None, :] < length[:, None]
    points = source + t[..., None] * direction[:, None, :]
    homogeneous = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], axis=-1)
    index = np.rint(homogeneous @ voxel_from_lps[:3].T).astype(np.intp)
    valid &= np.all((index >= 0) & (index < shape), axis=-1)
    values = np.full(valid.shape, -1000.0, dtype=np.float32)
    picked = index[valid]
    values[valid] = hu[picked[:, 0], picked[:, 1], picked[:, 2]]
    line_integrals: NDArray[np.float64] = (
        _hu_values(values, quantity).sum(axis=1, dtype=np.float64) * step_mm
    )
    return line_integrals


@lru_cache(maxsize=8)
def _value_tables(dtype: str) -> NDArray[np.float32]:
    """(len(QUANTITIES), values) float32: :func:`_hu_values` of every value of an integer
    CT-number dtype, from its minimum up."""
    info = np.iinfo(np.dtype(dtype))
    values = np.arange(info.min, info.max + 1, dtype=np.float32)
    table = np.stack([_hu_values(values, quantity) for quantity in QUANTITIES])
    table.setflags(write=False)
    return table


@njit(cache=True, nogil=True)
def _marched_line_integrals(
    hu: NDArray[np.integer],
    value_tables: NDArray[np.float32],
    table_offset: int,
    voxel_from_lps: NDArray[np.float64],
    source: NDArray[np.float64],
    direction: NDArray[np.float64],
    enter: NDArray[np.float64],
    length: NDArray[np.float64],
    step_mm: float,
    samples: int,
) -> NDArray[np.float64]:
    """:func:`_sampled_line_integrals` for integer CT numbers and every quantity at once: the
    same sample points and nearest voxels, quantity q's value ``value_tables[q, hu −
    table_offset]``, without the (rays × samples × 4) arrays. Returns (quantities, rays)."""
    ni, nj, nk = hu.shape
    quantities = value_tables.shape[0]
    out = np.zeros((quantities, direction.shape[0]), np.float64)
    total = np.zeros(quantities, np.float64)
    for ray in range(direction.shape[0]):
        total[:] = 0.0
        for n in range(samples):
            along = (n + 0.5) * step_mm
            if not along < length[ray]:
                break
            t = enter[ray] + along
            x = source[0] + t * direction[ray, 0]
            y = source[1] + t * direction[ray, 1]
            z = source[2] + t * direction[ray, 2]
            m = voxel_from_lps
            i = np.rint(m[0, 0] * x + m[0, 1] * y + m[0, 2] * z + m[0, 3])
            j = np.rint(m[1, 0] * x + m[1, 1] * y + m[1, 2] * z + m[1, 3])
            k = np.rint(m[2, 0] * x + m[2, 1] * y + m[2, 2] * z + m[2, 3])
            if 0 <= i < ni and 0 <= j < nj and 0 <= k < nk:
                index = int(hu[int(i), int(j), int(k)]) - table_offset
                for q in range(quantities):
                    total[q] += value_tables[q, index]
        for q in range(quantities):
            out[q, ray] = total[q] * step_mm
    return out


def metered_technique(
    hu: NDArray[np.integer] | NDArray[np.floating],
    lps_from_voxel: NDArray[np.float64],
    geometry: ProjectionGeometry,
    base_kvp: float,
    field_mm: float,
    metering_fraction: float = 0.5,
) -> Technique:
    """The kVp and mA the dose-rate control settles at for this pose of this patient.

    Meters the central disc of ``metering_fraction`` of the receptor field's radius (as the
    automatic brightness does, render.image_chain.ChainSettings.metering_fraction), then
    render.dose.automatic_technique with the beam's mean transmission through those paths.
    """
    water_mm, bone_mm = metered_paths(
        hu, lps_from_voxel, geometry, metering_fraction * field_mm / 2
    )
    if water_mm.size == 0:
        water_mm, bone_mm = np.zeros(1), np.zeros(1)

    def mean_transmission(kvp: float) -> float:
        return float(np.mean(beam(kvp).transmission(water_mm, bone_mm)))

    return automatic_technique(
        field_mm, base_kvp, mean_transmission, reference_distance_mm(geometry)
    )


class DoseRateControl:
    """One patient's automatic dose-rate control: the technique per pose, metered once.

    The session (with or without images) and the renderer each hold one; ``key`` names the pose
    (joint values, magnification mode, base kVp) and ``geometry`` builds the pose's projection
    only when the key has not been metered yet. The last ``size`` poses are kept; thread-safe.
    """

    def __init__(
        self,
        hu: NDArray[np.integer] | NDArray[np.floating],
        lps_from_voxel: NDArray[np.float64],
        size: int = 64,
    ) -> None:
        self.hu = hu
        self.lps_from_voxel = lps_from_voxel
        self._size = int(size)
        self._techniques: OrderedDict[Hashable, Technique] = OrderedDict()
        self._lock = threading.Lock()

    def technique(
        self,
        key: Hashable,
        geometry: Callable[[], ProjectionGeometry],
        base_kvp: float,
        field_mm: float,
    ) -> Technique:
        """The kVp and mA for the pose ``key`` (:func:`metered_technique`)."""
        with self._lock:
            known = self._techniques.get(key)
            if known is not None:
                self._techniques.move_to_end(key)
                return known
        technique = metered_technique(self.hu, self.lps_from_voxel, geometry(), base_kvp, field_mm)
        with self._lock:
            self._techniques[key] = technique
            while len(self._techniques) > self._size:
                self._techniques.popitem(last=False)
        return technique
