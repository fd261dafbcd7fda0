"""Attenuation volume: CT numbers (HU) → linear attenuation μ (mm⁻¹) at the beam's effective energy.

Model (stated so that anyone can check it):

1. **Effective energy.** A filtered tungsten fluoroscopy beam is treated as monoenergetic at
   ``E_eff = kVp / 2.5`` keV, the usual rule that a filtered diagnostic spectrum's mean energy is one
   third to one half of the peak kilovoltage (Bushberg et al., *The Essential Physics of Medical
   Imaging*, 3rd ed., ch. 6). The reference μ table (reference/anatomy.md, NIST XCOM, in :mod:`models.materials`) spans
   50–80 keV, and the beam that forms the image has been hardened by the patient, so ``E_eff`` is
   clamped into that range: below 125 kVp the image is formed at 50 keV. Pass ``energy_kev`` to
   override.
2. **HU → μ.** Piecewise-linear in HU through five anchor tissues: air (−1000 HU, μ = 0),
   adipose, water (0 HU), muscle and cortical bone (the tissue table's reference materials,
   ``models.tissue.HU_ANCHOR_MATERIALS``). The anchors' HU are what a 120 kVp CT (effective
   energy ≈70 keV) reports for them, computed from the same table as HU = 1000·(μ/μ_water − 1) at
   70 keV: adipose −78, muscle +47, cortical bone (1.92 g/cm³) +1560. Their μ at ``E_eff`` is
   interpolated log-log from the table. Above the cortical anchor the bone line is extrapolated
   (denser bone). This is the bilinear (soft tissue / bone) model of public DRR software
   (Plastimatch, DeepDRR: reference/anatomy.md) made energy-dependent.

3. **Bone fraction.** Every voxel's μ splits into a soft-tissue part and a cortical-bone part:
   :func:`bone_fraction` is 0 up to ``SOFT_TISSUE_MAX_HU`` (anatomy.md: muscle and blood reach
   +60 HU, disc +100) and rises linearly to 1 at the cortical-bone anchor (more for denser bone),
   so cancellous bone of 226 HU is 9 % cortical bone and the rest water-like. A ray's ∫ bone_fraction dl is its path in
   millimetres of cortical bone, and (∫μ dl − that · μ_bone) / μ_water the water-equivalent
   rest: the two paths that the polyenergetic beam (render.spectrum) attenuates, each with its
   own energy dependence. Adipose and muscle are taken as water-like in energy dependence there
   (their μ relative to water's changes by 4 % and 1 % between 50 and 80 keV).

The volume is kept compact: μ as float32 only inside the body's bounding box (air outside is
exactly zero and is cropped away), optionally downsampled by block-averaging, which preserves line
integrals to first order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fluorosim.models import materials
from fluorosim.models.patient import Patient
from fluorosim.models.tissue import HU_ANCHOR_MATERIALS

#: The μ table's energies (models.materials: NIST XCOM values of reference/anatomy.md); the
#: effective energy is kept inside them (no extrapolation).
TABLE_ENERGIES_KEV = np.asarray(materials.TABLE_ENERGIES_KEV)
#: Effective energy of a 120 kVp CT beam, at which the anchors' HU are defined.
CT_EFFECTIVE_ENERGY_KEV = 70.0
#: HU at or below which a voxel is air (μ = 0); Plastimatch uses −800 for its cut-off.
AIR_HU = -1000.0
#: Ratio kVp / E_eff of a filtered tungsten beam (Bushberg: mean energy ≈ 1/3–1/2 of kVp).
KVP_PER_KEV = 2.5


def effective_energy_kev(kvp: float) -> float:
    """Effective beam energy in keV for a tube voltage (kVp/2.5, clamped to the 50–80 keV table)."""
    if not np.isfinite(kvp) or kvp <= 0:
        raise ValueError(f"kVp must be a positive number, got {kvp!r}")
    return float(np.clip(kvp / KVP_PER_KEV, TABLE_ENERGIES_KEV[0], TABLE_ENERGIES_KEV[-1]))


def material_mu_per_mm(material: str, energy_kev: float) -> float:
    """μ in mm⁻¹ of a tabulated material (models.materials, log-log interpolated)."""
    return float(materials.mu_per_mm(material, energy_kev))


def _anchor_hu(material: str) -> float:
    water = material_mu_per_mm("water", CT_EFFECTIVE_ENERGY_KEV)
    return 1000.0 * (material_mu_per_mm(material, CT_EFFECTIVE_ENERGY_KEV) / water - 1.0)


def hu_to_mu_anchors(energy_kev: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The (HU, μ mm⁻¹) anchor points of the piecewise-linear conversion at ``energy_kev``."""
    hu, mu = _cached_anchors(float(energy_kev))
    return hu.copy(), mu.copy()


@lru_cache(maxsize=32)
def _cached_anchors(energy_kev: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`hu_to_mu_anchors`, computed once per energy (a dozen material-table look-ups,
    ≈0.1 ms each, that a new pose's dose-rate metering would otherwise repeat); read-only."""
    anchors = HU_ANCHOR_MATERIALS  # adipose, water, muscle, cortical bone (models.tissue)
    hu = np.array([AIR_HU] + [_anchor_hu(m) for m in anchors])
    mu = np.array([0.0] + [material_mu_per_mm(m, energy_kev) for m in anchors])
    hu.setflags(write=False)
    mu.setflags(write=False)
    return hu, mu


def hu_to_mu(hu: NDArray[Any], energy_kev: float) -> NDArray[np.float32]:
    """μ (mm⁻¹, float32) of CT numbers at ``energy_kev``; ≤ −1000 HU gives exactly 0."""
    anchors_hu, anchors_mu = _cached_anchors(float(energy_kev))
    values = np.asarray(hu, dtype=np.float32)
    mu = np.interp(values, anchors_hu, anchors_mu).astype(np.float32)
    bone_slope = (anchors_mu[-1] - anchors_mu[-2]) / (anchors_hu[-1] - anchors_hu[-2])
    above = values > anchors_hu[-1]
    if np.any(above):
        mu[above] = (anchors_mu[-1] + bone_slope * (values[above] - anchors_hu[-1])).astype(
            np.float32
        )
    return mu


#: The highest CT number of soft tissue (anatomy.md: disc ≈ +70 to +100 HU): no bone below it.
SOFT_TISSUE_MAX_HU = 100.0


def bone_fraction(hu: NDArray[Any]) -> NDArray[np.float32]:
    """Cortical-bone weight (float32) of CT numbers (docstring 3): (HU − SOFT_TISSUE_MAX_HU) /
    (HU_cortical − SOFT_TISSUE_MAX_HU) above soft tissue, else 0."""
    anchors_hu, _ = _cached_anchors(CT_EFFECTIVE_ENERGY_KEV)
    bone_hu = float(anchors_hu[-1])
    values = np.asarray(hu, dtype=np.float32)
    fraction: NDArray[np.float32] = (values - np.float32(SOFT_TISSUE_MAX_HU)) * np.float32(
        1.0 / (bone_hu - SOFT_TISSUE_MAX_HU)
    )
    return np.maximum(fraction, np.float32(0.0), out=fraction)


def water_equivalent_mm(
    line_integrals: NDArray[np.floating], bone_mm: NDArray[np.floating], energy_kev: float
) -> NDArray[np.float32]:
    """The water-equivalent path (mm) that remains of ∫μ dl at ``energy_kev`` once ``bone_mm`` of
    cortical bone is taken out (docstring 3); never negative."""
    mu_water = material_mu_per_mm("water", energy_kev)
    mu_bone = material_mu_per_mm("cortical_bone", energy_kev)
    soft = (np.asarray(line_integrals, np.float32) - np.float32(mu_bone) * bone_mm) * np.float32(
        1.0 / mu_water
    )
    return np.maximum(soft, np.float32(0.0)).astype(np.float32, copy=False)


@dataclass(frozen=True)
class AttenuationVolume:
    """μ in mm⁻¹ on a regular grid, ``lps_from_voxel`` giving voxel centres in LPS mm.

    ``mu[i, j, k]`` is C-contiguous float32. ``energy_kev`` is the effective energy it was built at.
    The grid is the patient's grid cropped to the body (and optionally block-averaged).
    """

    mu: NDArray[np.float32]
    lps_from_voxel: NDArray[np.float64]
    energy_kev: float

    @property
    def spacing_mm(self) -> NDArray[np.float64]:
        """Voxel edge lengths along i, j, k in mm."""
        spacing: NDArray[np.float64] = np.linalg.norm(self.lps_from_voxel[:3, :3], axis=0)
        return spacing

    @property
    def is_axis_aligned(self) -> bool:
        """Whether the voxel axes are the LPS axes (the DRR kernels require it)."""
        off_diagonal = self.lps_from_voxel[:3, :3] - np.diag(np.diag(self.lps_from_voxel[:3, :3]))
        return bool(np.allclose(off_diagonal, 0.0))

    @property
    def nbytes(self) -> int:
        """Memory held by the μ array."""
        return int(self.mu.nbytes)


def _body_box(hu: NDArray[Any], threshold_hu: float) -> tuple[slice, slice, slice]:
    """Index slices of the smallest box holding every voxel above ``threshold_hu``."""
    slices = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        occupied = np.flatnonzero(np.any(hu > threshold_hu, axis=other))
        if occupied.size == 0:
            slices.append(slice(0, 1))
        else:
            slices.append(slice(int(occupied[0]), int(occupied[-1]) + 1))
    return tuple(slices)  # type: ignore[return-value]


def _block_average(volume: NDArray[np.float32], factor: int) -> NDArray[np.float32]:
    """Mean over factor³ blocks (the volume is zero-padded up to a multiple of ``factor``)."""
    pad = [(0, (-n) % factor) for n in volume.shape]
    padded = np.pad(volume, pad)
    a, b, c = (n // factor for n in padded.shape)
    blocks = padded.reshape(a, factor, b, factor, c, factor)
    return np.ascontiguousarray(blocks.mean(axis=(1, 3, 5), dtype=np.float32))


def build_attenuation_volume(
    patient: Patient,
    kvp: float = 75.0,
    energy_kev: float | None = None,
    downsample: int = 1,
) -> AttenuationVolume:
    """The patient's μ volume at the beam's effective energy, cropped to the body.

    ``downsample`` > 1 block-averages that many voxels per axis (μ averages keep line integrals).
    """
    if downsample < 1:
        raise ValueError(f"downsample must be ≥ 1, got {downsample}")
    energy = effective_energy_kev(kvp) if energy_kev is None else float(energy_kev)
    box = _body_box(patient.hu, AIR_HU)
    mu = np.ascontiguousarray(hu_to_mu(patient.hu[box], energy))
    offset = np.array([s.start for s in box], dtype=np.float64)
    lps_from_voxel = patient.lps_from_voxel.copy()
    lps_from_voxel[:3, 3] = patient.lps_from_voxel[:3, :3] @ offset + patient.lps_from_voxel[:3, 3]
    volume = AttenuationVolume(mu=mu, lps_from_voxel=lps_from_voxel, energy_kev=energy)
    return downsample_volume(volume, downsample)


def build_bone_volume(patient: Patient, downsample: int = 1, align: int = 1) -> AttenuationVolume:
    """The patient's :func:`bone_fraction` on its grid, cropped to the voxels that hold bone: a
    volume whose line integral is the path in millimetres of cortical bone (``energy_kev`` 0:
    it does not depend on the beam).

    The crop starts a multiple of ``align`` × ``downsample`` voxels from the start of
    :func:`build_attenuation_volume`'s crop (widened toward it), so after downsampling the bone
    grid sits a multiple of ``align`` voxels from the μ grid: block averages (downsampling, the
    fast DRR's slab copies) then group the same voxels in both.
    """
    if downsample < 1:
        raise ValueError(f"downsample must be ≥ 1, got {downsample}")
    if align < 1:
        raise ValueError(f"align must be ≥ 1, got {align}")
    body = _body_box(patient.hu, AIR_HU)
    step = align * downsample
    box = []
    for bone, outer in zip(_body_box(patient.hu, SOFT_TISSUE_MAX_HU), body, strict=True):
        start = outer.start + max(bone.start - outer.start, 0) // step * step
        box.append(slice(start, max(bone.stop, start + 1)))
    fraction = np.ascontiguousarray(bone_fraction(patient.hu[tuple(box)]))
    offset = np.array([s.start for s in box], dtype=np.float64)
    lps_from_voxel = patient.lps_from_voxel.copy()
    lps_from_voxel[:3, 3] = patient.lps_from_voxel[:3, :3] @ offset + patient.lps_from_voxel[:3, 3]
    volume = AttenuationVolume(mu=fraction, lps_from_voxel=lps_from_voxel, energy_kev=0.0)
    return downsample_volume(volume, downsample)


def downsample_volume(volume: AttenuationVolume, factor: int) -> AttenuationVolume:
    """Block-average ``factor``³ voxels (keeps line integrals to first order); 1 returns it."""
    if factor < 1:
        raise ValueError(f"downsample factor must be ≥ 1, got {factor}")
    if factor == 1:
        return volume
    scale = np.diag([factor, factor, factor, 1.0]).astype(np.float64)
    # new voxel 0 centre sits at old index (factor − 1)/2
    shift = np.eye(4)
    shift[:3, 3] = (factor - 1) / 2.0
    return AttenuationVolume(
        mu=_block_average(volume.mu, factor),
        lps_from_voxel=volume.lps_from_voxel @ shift @ scale,
        energy_kev=volume.energy_kev,
    )


def grid_offset_voxels(
    volume: AttenuationVolume, reference: AttenuationVolume
) -> NDArray[np.int64]:
    """Index on ``reference``'s grid of ``volume``'s voxel 0, per axis.

    Raises ValueError unless the two grids share their voxel axes and spacing and are offset by
    whole voxels (volumes cropped from one patient grid, or block-averaged alike from such).
    """
    if not np.allclose(volume.lps_from_voxel[:3, :3], reference.lps_from_voxel[:3, :3]):
        raise ValueError("the two volumes' voxel axes or spacings differ")
    offset = np.linalg.solve(
        reference.lps_from_voxel[:3, :3],
        volume.lps_from_voxel[:3, 3] - reference.lps_from_voxel[:3, 3],
    )
    whole = np.rint(offset)
    if not np.allclose(offset, whole, atol=1e-6):
        raise ValueError(f"the volumes' grids are offset by {offset} voxels, not whole voxels")
    index: NDArray[np.int64] = whole.astype(np.int64)
    return index


def align_to_grid(
    volume: AttenuationVolume, reference: AttenuationVolume, multiple: int
) -> AttenuationVolume:
    """``volume`` with zero voxels put before it along each axis so that its voxel 0 sits at a
    multiple of ``multiple`` on ``reference``'s grid (:func:`grid_offset_voxels`).

    Then averaging blocks of ``multiple`` voxels (downsampling, or the fast DRR's slab copies)
    groups the same voxels in both volumes. Line integrals are unchanged: only zeros are added.
    """
    offset = grid_offset_voxels(volume, reference)
    lead = offset % int(multiple)
    if not lead.any():
        return volume
    shift = np.eye(4)
    shift[:3, 3] = -lead
    return AttenuationVolume(
        mu=np.ascontiguousarray(np.pad(volume.mu, [(int(n), 0) for n in lead])),
        lps_from_voxel=volume.lps_from_voxel @ shift,
        energy_kev=volume.energy_kev,
    )
