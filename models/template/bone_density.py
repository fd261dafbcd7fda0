"""Bone HU from a voxelised surface: a cortical shell of regional thickness over textured cancellous bone.

Given a :class:`~models.template.voxelise.MeshVolume` (signed distance, negative inside), a
cortical thickness field (mm, per voxel of the box) and a cancellous HU field, each voxel of the
box gets

- its bone occupancy ``occ`` (partial volume at the surface, no staircase),
- the cortical fraction ``cort`` = the part of the voxel within ``thickness`` below the surface, and
  the cancellous fraction ``occ − cort``,
- the HU of its bone content ``(cort·HU_cortex + (occ − cort)·HU_cancellous) / occ``; the painter
  mixes it with the soft tissue already there in the proportion ``occ``.

A wall thinner than a voxel therefore shows as partial-volume density: a 0.4 mm vertebral wall adds
0.4 mm of compact bone, spread over the voxels its blurred edge covers (the occupancy's profile,
:mod:`models.template.voxelise`), as it does on a real CT (Silva et al., Bone 1994: lumbar shell
0.38 ± 0.06 mm).

Regional cortical thickness (ranges from Silva 1994; Zhao 2009 endplates; pedicle and iliac
morphometry, approximate — see the constants): thin vertebral-body wall, thicker endplates with a
dense ring apophysis at the rim, pedicle rings (medial wall thicker), posterior elements, a thin
sacral ala, a thick posterior ilium and sciatic buttress along the arcuate line (the iliac
cortical density of the lateral view), a thin iliac wing, a dense acetabular roof.

Cancellous texture: band-passed Gaussian noise, smoothed more along the body axis than across it
(vertically oriented trabeculae in vertebral bodies), so the cancellous bone is spatially
correlated and anisotropic, never white noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from fluorosim.models.template.voxelise import MeshVolume, layer_fraction

Array = NDArray[np.float32]
#: A point or direction in the patient frame (LPS mm).
Vec = NDArray[np.float64]
#: An intermediate of float32 and float64 operands (its precision follows numpy's promotion).
Floats = NDArray[np.floating[Any]]

# --- HU by age (anatomy.md, CT numbers table) ---------------------------------------------------


def cancellous_hu(age_years: float) -> float:
    """Cancellous vertebral HU: 226 at 25 y falling 2.5 HU/year to ≈89 (anatomy.md, L1 QCT)."""
    return float(np.clip(226.0 - 2.5 * (age_years - 25.0), 80.0, 240.0))


def cortical_material_hu(age_years: float) -> float:
    """HU of compact cortical bone itself (a voxel filled with it), upper part of 700–1900.

    Thick compact bone reads ≈1800–1900 HU at 120 kVp (anatomy.md range 700–1900); cortical
    porosity rises with age, lowering it (≈ −5 HU/year after 25, approx.). Thin shells read lower
    on a CT only through partial volume, which :func:`bone_hu` models explicitly.
    """
    return float(np.clip(1850.0 - 5.0 * (age_years - 25.0), 1400.0, 1900.0))


def site_cancellous_hu(site_hu_at_50: float, age_years: float) -> float:
    """A site's cancellous HU (published for middle-aged adults) scaled with age like L1's.

    anatomy.md: S1 body 280, S2 body 192, anterior ilium 230–254, sacral ala ≈150 below the ilium;
    taken as values at 50 years (approx.) and scaled by ``cancellous_hu(age)/cancellous_hu(50)``.
    """
    return float(site_hu_at_50 * cancellous_hu(age_years) / cancellous_hu(50.0))


# --- regional cortical thickness (mm) -----------------------------------------------------------
#: Lumbar body anterior/lateral wall (Silva et al. 1994: 0.38 ± 0.06).
VERTEBRAL_WALL_MM = 0.4
#: Endplate centre / endplate rim (≈0.4–0.8, thinner centrally; Zhao et al. 2009).
ENDPLATE_CENTRE_MM = 0.6
#: Ring apophysis: the dense cortical rim of the endplate (approx.).
RING_APOPHYSIS_MM = 1.8
#: Pedicle walls ≈1–2 mm, medial thicker than lateral (pedicle morphometry, approx.).
PEDICLE_LATERAL_MM = 1.1
PEDICLE_MEDIAL_MM = 2.0
#: Lamina, spinous and transverse processes, articular processes (approx.).
POSTERIOR_ELEMENTS_MM = 1.0
#: Sacrum: S1 endplate, S1 body wall, ala (thin ≈0.5–1), auricular surface, elsewhere (approx.).
S1_ENDPLATE_MM = 0.8
SACRAL_BODY_WALL_MM = 0.6
SACRAL_ALA_MM = 0.6
SACRAL_AURICULAR_MM = 1.5
SACRUM_OTHER_MM = 0.9
#: Hip bone: iliac wing tables, posterior ilium / sciatic buttress along the arcuate line (the
#: iliac cortical density), crest, acetabular roof (ilium ≈1–3 mm; approx.).
ILIAC_WING_MM = 0.9
ILIAC_BUTTRESS_MM = 3.0
ILIAC_CREST_MM = 1.8
ACETABULUM_MM = 2.2
HIP_OTHER_MM = 1.4

#: The deepest cortex of each bone (mm): how deep below its surface the exact distance must reach.
VERTEBRA_DEEPEST_CORTEX_MM = max(
    VERTEBRAL_WALL_MM,
    ENDPLATE_CENTRE_MM,
    RING_APOPHYSIS_MM,
    PEDICLE_MEDIAL_MM,
    POSTERIOR_ELEMENTS_MM,
)
SACRUM_DEEPEST_CORTEX_MM = max(
    SACRAL_BODY_WALL_MM, SACRAL_ALA_MM, SACRAL_AURICULAR_MM, SACRUM_OTHER_MM, S1_ENDPLATE_MM
)
HIP_DEEPEST_CORTEX_MM = max(
    ILIAC_WING_MM, ILIAC_BUTTRESS_MM, ILIAC_CREST_MM, ACETABULUM_MM, HIP_OTHER_MM
)

#: Cancellous texture: standard deviation (HU) and correlation lengths across / along the axis (mm).
TEXTURE_SD_HU = 40.0
TEXTURE_ACROSS_MM = 0.7
TEXTURE_ALONG_MM = 1.8


def surface_normals(volume: MeshVolume) -> tuple[Array, Array, Array]:
    """Unit outward normals (gradient of the signed distance) on the box, x/y/z components."""
    gx, gy, gz = np.gradient(volume.distance_mm, volume.voxel_mm)
    norm = np.sqrt(gx * gx + gy * gy + gz * gz) + np.float32(1e-6)
    return (
        (gx / norm).astype(np.float32),
        (gy / norm).astype(np.float32),
        (gz / norm).astype(np.float32),
    )


def _smoothstep(x: Floats | float, lo: float, hi: float) -> Array:
    t: Floats = np.clip((np.asarray(x, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def gaussian_weight(points: Sequence[Array], centre: Vec, sigma_mm: float) -> Array:
    """exp(−|p − centre|²/(2σ²)) on broadcastable coordinate arrays (x, y, z)."""
    x, y, z = points
    d2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2
    weight: Floats = np.exp(-d2 / np.float32(2.0 * sigma_mm * sigma_mm))
    return weight.astype(np.float32)


def segment_distance(points: Sequence[Array], a: Vec, b: Vec) -> Array:
    """Distance from each point to the segment a–b (mm)."""
    x, y, z = points
    ab = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    length2 = float(ab @ ab) or 1e-9
    t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / np.float32(length2)
    t = np.clip(t, 0.0, 1.0)
    dx, dy, dz = x - (a[0] + t * ab[0]), y - (a[1] + t * ab[1]), z - (a[2] + t * ab[2])
    distance: Floats = np.sqrt(dx * dx + dy * dy + dz * dz)
    return distance.astype(np.float32)


def vertebra_cortex_mm(
    points: Sequence[Array],
    normals: tuple[Array, Array, Array],
    in_body: Array,
    in_pedicle: dict[str, Array],
    body_centre: Vec,
    axis: Vec,
    half_height_mm: float,
    body_radius_mm: Floats,
) -> Array:
    """Cortical thickness of a lumbar vertebra at each voxel (used near the surface only).

    Body: a 0.4 mm wall, 0.6 mm endplates, the ring apophysis (1.8 mm) where the endplate meets
    the wall; pedicles: 1.1 mm laterally to 2 mm medially; posterior elements 1 mm.
    ``in_body``/``in_pedicle`` are 0…1 weights; ``body_radius_mm`` the distance of each voxel from
    the body axis divided by the body's radius in that direction (1 at the wall).
    """
    x, y, z = points
    nx, ny, nz = normals
    axial = np.abs(nx * axis[0] + ny * axis[1] + nz * axis[2])
    height = (
        (x - body_centre[0]) * axis[0]
        + (y - body_centre[1]) * axis[1]
        + (z - body_centre[2]) * axis[2]
    )
    endplate = _smoothstep(axial, 0.55, 0.85)
    near_level = _smoothstep(np.abs(height), half_height_mm - 6.0, half_height_mm - 1.5)
    rim = _smoothstep(body_radius_mm, 0.72, 0.92)
    ring = np.maximum(near_level * (1.0 - endplate), endplate * rim * near_level)
    body = VERTEBRAL_WALL_MM + (ENDPLATE_CENTRE_MM - VERTEBRAL_WALL_MM) * endplate
    body = body + (RING_APOPHYSIS_MM - body) * ring
    thickness: Floats = POSTERIOR_ELEMENTS_MM + (body - POSTERIOR_ELEMENTS_MM) * in_body
    for side, weight in in_pedicle.items():
        toward_midline = -1.0 if side == "left" else 1.0  # +x is the patient's left
        medial = np.clip(nx * toward_midline, 0.0, 1.0)
        pedicle = PEDICLE_LATERAL_MM + (PEDICLE_MEDIAL_MM - PEDICLE_LATERAL_MM) * medial
        thickness = thickness + (pedicle - thickness) * weight
    return thickness.astype(np.float32)


def trabecular_texture(
    rng: np.random.Generator, shape: tuple[int, int, int], voxel_mm: float, axis: Vec | None
) -> Array:
    """Zero-mean, unit-SD, spatially correlated texture; elongated along ``axis`` (≈ x, y or z).

    Band-pass (difference of Gaussians) of white noise: fine structure of the correlation length
    ``TEXTURE_ACROSS_MM`` across and ``TEXTURE_ALONG_MM`` along the axis, without the blotchy
    large-scale variation of a plain low-pass.
    """
    noise = rng.standard_normal(shape, dtype=np.float32)
    sigma = [TEXTURE_ACROSS_MM / voxel_mm] * 3
    if axis is not None:
        sigma[int(np.argmax(np.abs(axis)))] = TEXTURE_ALONG_MM / voxel_mm
    fine = ndimage.gaussian_filter(noise, sigma=sigma, mode="nearest")
    coarse = ndimage.gaussian_filter(noise, sigma=[2.5 * s for s in sigma], mode="nearest")
    band: Array = fine - 0.7 * coarse
    return (band / np.float32(float(band.std()) or 1.0)).astype(np.float32)


def bone_hu(
    volume: MeshVolume,
    cortex_mm: Array | float,
    cancellous: Array | float,
    cortical_hu_value: float,
    texture: Array | None,
    texture_sd_hu: float = TEXTURE_SD_HU,
) -> tuple[Array, Array]:
    """(HU of the bone content of each voxel, bone occupancy 0…1) on the volume's box.

    The cortical layer is ``cortex_mm`` thick below the surface; the rest of the bone is cancellous
    (``cancellous`` HU plus ``texture`` × ``texture_sd_hu``). Where the bone is thinner than
    twice its cortex it is all cortex.
    """
    occ = volume.occupancy
    cortex = np.asarray(cortex_mm, dtype=np.float32)
    cort = layer_fraction(volume.distance_mm, volume.voxel_mm, 0.0, cortex)
    canc = np.clip(occ - cort, 0.0, 1.0)
    canc_hu = np.asarray(cancellous, dtype=np.float32)
    if texture is not None:
        canc_hu = canc_hu + np.float32(texture_sd_hu) * texture
    content = cort * np.float32(cortical_hu_value) + canc * canc_hu
    hu = np.where(occ > 1e-3, content / np.maximum(occ, 1e-3), 0.0).astype(np.float32)
    return hu, occ


def angle_between_deg(a: Vec, b: Vec) -> float:
    """Angle between two vectors in degrees."""
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))
