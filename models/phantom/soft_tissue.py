"""Body outline and soft tissue: skin, subcutaneous fat, muscle wall, psoas, paraspinals and bowel.

Layers, from outside in, per axial slice (LPS, painted in z-chunks so no full-volume float array is
ever held):

- ``skin``: the outer 2 mm of a superelliptic body outline whose size comes from the assembly's
  body box (``anchors.extra["body_outline_low_mm"/"_high_mm"]``, which grows with BMI and
  body_scale) or, standalone, from the same formula; the outline always encloses L1 to the coccyx
  and both iliac crests with ≥ 20 mm margin; with the real skeleton its back follows the spinous
  tips and its front keeps the trunk's depth in front of the back (the belly does not stop at one
  plane set by the buttocks, which left the upper lumbar spine 55 mm behind the skin);
- ``fat``: subcutaneous fat between the skin and the lean body, thickness from BMI (approx.:
  4 mm + 2.2 mm per BMI point above 18 posteriorly, ×1.2 laterally, ×1.4 over the abdomen);
  visceral fat fills the abdominal/pelvic cavity between the bowel loops;
- ``muscle``: the lean body outside the cavity (abdominal wall, quadratus lumborum, gluteals);
- ``psoas_left/right``: tubes from L1 (r ≈ 9 mm) widening along the vertebral bodies to L5
  (r ≈ 22 mm), over the pelvic brim to the groin;
- ``paraspinal_left/right``: erector spinae + multifidus, an ellipse each side behind the laminae
  from above L1 down over the sacral dorsum;
- ``bowel``: loops filling ≈60 % of the cavity (a seeded sum of plane waves thresholded), fluid
  +35 HU with gas pockets (−900 HU) — including the paracolic gutters anterolateral to the psoas,
  which a too-lateral transforaminal needle meets.

With ``skeleton="real"`` the spine profile, crests, pelvic brim, laminar gutters, psoas path, back
skin and pelvic floor are measured on the placed real bones (models.phantom.real_soft), the psoas
gets a retroperitoneal fat sheath, and fat and gas HU come from the real CT. So does the gas's
share of each slice's section by height above S1 (the abdomen's colon and small bowel hold the
gas, the true pelvis almost none) and gas stays out of the bladder's half of the true pelvis
(numbers and provenance in real_soft.py).

CT numbers (anatomy.md): fat −120…−50, muscle/soft tissue +40…+60, air −1000.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, special, stats

from fluorosim.models.phantom.parts import (
    PRIORITY_FAT,
    PRIORITY_MUSCLE,
    PRIORITY_ORGAN,
    PRIORITY_SKIN,
    Anchors,
    Grid,
    Painted,
    PartResult,
    PatientParameters,
    back_skin_y_mm,
    trunk_depth_mm,
)
from fluorosim.models.phantom.pelvis import CREST_X, HIP_CENTER
from fluorosim.models.phantom.real_soft import BoneDistance, push_out_of_bone
from fluorosim.models.phantom.sacrum import PelvicFrame, sacral_shape, size_scale, smoothstep
from fluorosim.models.phantom.vessels import _spine_centres, catmull_rom, stamp_tube

SKIN_MM = 2.0
SKIN_HU = 40.0
SUBCUTANEOUS_FAT_HU = -100.0
VISCERAL_FAT_HU = -90.0
MUSCLE_HU = 50.0
BOWEL_FLUID_HU = 35.0
BOWEL_GAS_HU = -900.0
#: Abdominal wall muscle thickness (rectus/obliques, approx.).
ABDOMINAL_WALL_MM = 12.0
#: Cranio-caudal run over which the back's contour swells from the sacral crest (at the PSIS) to
#: the buttocks' prominence (approx.: the gluteal prominence lies about at the level of the
#: greater trochanters, ≈80–100 mm below the PSIS).
BUTTOCK_RISE_MM = 80.0

#: Superellipse exponent of the body outline (a rounded rectangle-ish trunk).
OUTLINE_EXPONENT = 2.4
CHUNK_SLICES = 24
#: Bowel gas: plane waves of the gas field's coarse part (pockets and loops) and of its fine part
#: (bubbles in stool, lobulated, haustrated edges), and the fine part's weight. Many directions
#: make the level sets round and irregular (8 waves gave polygon-edged pockets); the sum is scaled
#: back to unit variance so GAS_THRESHOLD keeps its meaning.
GAS_WAVES = 24
GAS_FINE_WAVELENGTH_MM = (6.0, 12.0)
GAS_FINE_WEIGHT = 0.5
#: Gas pockets: where a second unit-variance wave field exceeds this (≈5 % of the bowel volume;
#: enough to mottle the image as real bowel gas does without hiding the bones, approx.).
GAS_THRESHOLD = 1.6
#: Where the bowel holds less gas than usual (the bladder's half of the true pelvis) the gas
#: fraction thins out over this distance (mm), pockets growing rarer and smaller.
GAS_FADE_MM = 40.0
#: Most of a slice's bowel that may be gas however little bowel the slice holds (a gas-filled
#: loop, approx.).
MAX_GAS_SHARE_OF_BOWEL = 0.45
LEVELS = ("L1", "L2", "L3", "L4", "L5")

Vec = NDArray[np.float64]
#: float32 coordinates of the voxels of a slab (broadcastable x, y, z) or of chosen voxels.
Coords = NDArray[np.float32]
#: A field on a slab: float32 or float64 as numpy's promotion of the operands gives it.
Field = NDArray[np.floating[Any]]
#: Plane waves: (wave vectors (n,3) rad/mm, phases (n,)).
Waves = tuple[NDArray[np.float64], NDArray[np.float64]]
#: The paraspinals at heights z: (centre |x|, centre y, half width, half depth, present).
Paraspinal = tuple[float | Field, Field, float | Field, float | Field, NDArray[np.bool_]]


def fat_thickness_mm(bmi: float) -> float:
    """Posterior subcutaneous fat thickness (approx.): 4 mm + 2.2 mm per BMI point above 18."""
    return float(np.clip(4.0 + 2.2 * (bmi - 18.0), 3.0, 70.0))


def body_box_mm(params: PatientParameters, anchors: Anchors) -> tuple[Vec, Vec]:
    """(low, high) LPS corners of the body outline including skin.

    From the assembly when it published them, else the same rule (models.phantom.assembly:
    ≈350 mm wide at BMI 25, depth 235·(BMI/25)^0.7, posterior skin 12 mm + 2.5 mm/BMI point above
    18 behind the spinous tips). Widened if needed so that both iliac crests keep ≥ 20 mm margin.
    """
    k = size_scale(params)
    if "body_outline_low_mm" in anchors.extra and "body_outline_high_mm" in anchors.extra:
        low = np.asarray(anchors.extra["body_outline_low_mm"], dtype=np.float64).copy()
        high = np.asarray(anchors.extra["body_outline_high_mm"], dtype=np.float64).copy()
    else:
        centres = _spine_centres(anchors)
        spinous_y = max(c[1] for c in centres.values()) + 17.75 + 51.6 * k
        top_z = centres["L1"][2] + 14.0 + 25.0
        half_width = 175.0 * math.sqrt(params.bmi / 25.0) * params.body_scale
        half_width *= 1.04 if params.sex == "female" else 1.0
        posterior = back_skin_y_mm(params, spinous_y)
        depth = trunk_depth_mm(params)
        low = np.array([-half_width, posterior - depth, -170.0 * params.body_scale])
        high = np.array([half_width, posterior, top_z])
    if params.skeleton == "real":
        from fluorosim.models.phantom.real_skeleton import placed_skeleton

        hips = np.vstack(
            [placed_skeleton(params).bones[f"hip_{side}"].vertices_mm for side in ("left", "right")]
        )
        crest = float(np.abs(hips[:, 0]).max()) + 20.0
    else:
        crest = max(CREST_X) * k * 1.06 + 20.0
    low[0], high[0] = min(low[0], -crest), max(high[0], crest)
    return low, high


def _spine_profile(params: PatientParameters, anchors: Anchors) -> tuple[Vec, Vec]:
    """(z, y) of the spinal column's body centres, L1 down the sacrum (for paraspinals/cavity)."""
    frame = PelvicFrame.from_anchors(anchors)
    shape = sacral_shape(params)
    points = [_spine_centres(anchors)[lv] for lv in LEVELS]
    points.append(frame.lps_from_ref(np.zeros(3)))
    for t in (30.0, 60.0, 90.0, shape.length_mm + shape.coccyx_length_mm):
        points.append(frame.lps_from_ref(shape.point_ref(0.0, 0.0, t)))
    pts = np.array(points)
    order = np.argsort(pts[:, 2])
    return pts[order, 2], pts[order, 1]


def _psoas_paths(params: PatientParameters, anchors: Anchors) -> dict[str, tuple[Vec, Vec]]:
    """Control points and radii of both psoas muscles (LPS)."""
    k = size_scale(params)
    frame = PelvicFrame.from_anchors(anchors)
    centres = _spine_centres(anchors)
    hip = np.array(HIP_CENTER) * k
    paths = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        up = centres["L1"] - centres["L2"]
        points = [
            centres["L1"] + np.array([sign * 22.0 * k, 4.0, 0.0]) + 0.6 * up,
            centres["L1"] + np.array([sign * 24.0 * k, 4.0, 0.0]),
            centres["L3"] + np.array([sign * 32.0 * k, 0.0, 0.0]),
            centres["L5"] + np.array([sign * 42.0 * k, -6.0, 0.0]),
            frame.lps_from_ref(np.array([sign * 60.0 * k, -34.0 * k, -45.0 * k])),
            frame.lps_from_ref(np.array([sign * (hip[0] - 10.0), hip[1] - 40.0, hip[2] + 5.0])),
        ]
        radii = np.array([6.0, 9.0, 16.0, 21.0, 18.0, 13.0]) * k
        paths[side] = (np.array(points), radii)
    return paths


def _outline_fields(
    x: Coords,
    y: Coords,
    box_low: Vec | tuple[float, Coords, float],
    box_high: Vec | tuple[float, Coords, float],
    z_weight: Field,
    fat_mm: float,
) -> tuple[Field, Field, Field | float, Field]:
    """Outer and lean superellipse fields (< 1 inside) for one slab."""
    half_width = 0.5 * (box_high[0] - box_low[0]) * z_weight
    centre_y = 0.5 * (box_high[1] + box_low[1])
    half_depth = 0.5 * (box_high[1] - box_low[1])
    p = OUTLINE_EXPONENT
    # ρ^p of the superellipse (< 1 inside); the root is not needed to compare with 1.
    outer = np.abs(x / half_width) ** p + np.abs((y - centre_y) / half_depth) ** p
    lean_back = box_high[1] - fat_mm
    lean_front = box_low[1] + 1.4 * fat_mm
    lean_hw = half_width - 1.2 * fat_mm
    lean_c = 0.5 * (lean_back + lean_front)
    lean_hd = 0.5 * (lean_back - lean_front)
    lean = np.abs(x / lean_hw) ** p + np.abs((y - lean_c) / lean_hd) ** p
    return outer, lean, lean_front, lean_hw


def _outer_edge_fraction(
    x: Coords,
    y: Coords,
    box_low: Vec | tuple[float, Coords, float],
    box_high: Vec | tuple[float, Coords, float],
    z_weight: Field,
    voxel_mm: float,
    outer: Field,
) -> Field:
    """How much of each voxel lies inside the outline of :func:`_outline_fields` (0…1), given its
    field ``outer`` (ρ^p): near the skin the superellipse radius ρ turned into a signed distance
    (ρ − 1)/|∇ρ| in the slice (ρ^p = |x/a|^p + |(y − c)/b|^p, so
    |∇ρ| = ρ^(1−p)·√((|x/a|^(p−1)/a)² + (|(y − c)/b|^(p−1)/b)²)), then the voxel's share on the
    inside, 1/2 − distance/voxel, clipped; whole voxels elsewhere (only the edge band is computed:
    |∇ρ| < 1.5/min(a, b), so |ρ − 1| ≥ 2 voxels/min(a, b) is at least half a voxel away)."""
    p = OUTLINE_EXPONENT
    a = np.broadcast_to(0.5 * (box_high[0] - box_low[0]) * z_weight, outer.shape)
    b = np.broadcast_to(np.asarray(0.5 * (box_high[1] - box_low[1])), outer.shape)
    centre_y = np.broadcast_to(np.asarray(0.5 * (box_high[1] + box_low[1])), outer.shape)
    reach = 2.0 * voxel_mm / float(min(a.min(), b.min()))
    fraction: Field = (outer <= 1.0).astype(np.float32)
    near = (outer > max(1.0 - reach, 0.0) ** p) & (outer < (1.0 + reach) ** p)
    a, b = a[near], b[near]
    u = np.abs(np.broadcast_to(x, outer.shape)[near] / a)
    v = np.abs((np.broadcast_to(y, outer.shape)[near] - centre_y[near]) / b)
    rho = np.maximum(outer[near] ** (1.0 / p), 1e-6)
    gradient = rho ** (1.0 - p) * np.sqrt((u ** (p - 1.0) / a) ** 2 + (v ** (p - 1.0) / b) ** 2)
    distance = (rho - 1.0) / np.maximum(gradient, 1e-9)
    fraction[near] = np.clip(0.5 - distance / voxel_mm, 0.0, 1.0)
    return fraction


def _waves(rng: np.random.Generator, count: int, wavelength_mm: tuple[float, float]) -> Waves:
    directions = rng.standard_normal((count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(*wavelength_mm, size=count)
    phases = rng.uniform(0.0, 2 * math.pi, size=count)
    return directions * (2 * math.pi / wavelengths)[:, None], phases


def _gas_thresholds(
    place: _Placement,
    body: NDArray[np.bool_],
    z: Coords,
    idx: tuple[NDArray[np.intp], ...],
    is_bowel: NDArray[np.bool_],
    points: tuple[Coords, Coords, Coords],
) -> Field | float:
    """The gas field's threshold at each cavity point of a slab (``idx`` into ``body``).

    With a measured gas profile each slice's share of gas in the bowel is set so that gas is the
    profile's share of that slice's body section (a slice with little bowel holds gas more
    densely); the allowance then thins it where the bowel holds less gas than usual. The field is
    unit variance, so the threshold is the normal tail's quantile of that share.
    """
    if place.gas_section_fraction is None and place.gas_allowance is None:
        return place.gas_threshold
    if place.gas_section_fraction is None:
        slice_share: Field = np.full(body.shape[2], stats.norm.sf(place.gas_threshold))
    else:
        body_area = body.sum(axis=(0, 1))
        bowel_area = np.bincount(idx[2][is_bowel], minlength=body.shape[2])
        slice_share = place.gas_section_fraction(z.ravel()) * body_area / np.maximum(bowel_area, 1)
        slice_share = np.clip(slice_share, 1e-12, MAX_GAS_SHARE_OF_BOWEL)
    # the normal quantiles per slice, and per point only where the allowance thins the gas
    # (special.ndtri: stats.norm.isf per cavity point cost seconds of a build)
    thresholds: Field = (-special.ndtri(slice_share)).astype(np.float32)[idx[2]]
    if place.gas_allowance is not None:
        allowance = place.gas_allowance(*points)
        thinner = allowance < 1.0
        share = slice_share[idx[2][thinner]] * allowance[thinner]
        thresholds[thinner] = -special.ndtri(np.maximum(share, 1e-12))
    return thresholds


def _wave_field(waves: Waves, x: Coords, y: Coords, z: Coords) -> NDArray[np.float32]:
    """Sum of plane waves at points x, y, z (float32 arrays of one shape), unit variance."""
    vectors, phases = waves
    total = np.zeros(x.shape, dtype=np.float32)
    for kv, phase in zip(vectors, phases, strict=True):
        arg = float(kv[0]) * x + float(kv[1]) * y + float(kv[2]) * z + np.float32(phase)
        total += np.cos(arg, dtype=np.float32)
    return total / np.float32(math.sqrt(len(phases) / 2.0))


@dataclass(frozen=True)
class _Placement:
    """Where the soft tissue goes: from the primitive frame or measured on the real bones."""

    spine_z: Vec
    spine_y: Vec
    crest_z: float
    pelvic_half_width: float
    paraspinal: Callable[[Coords], Paraspinal]
    psoas: dict[str, tuple[Vec, Vec]]
    gas_threshold: float
    gas_wavelengths_mm: tuple[float, float]
    subcutaneous_fat_hu: float
    visceral_fat_hu: float
    gas_hu: float
    bones: BoneDistance | None = None
    #: posterior skin height by z (the back follows the spinous tips); None → the box's back.
    back_y: Callable[[Coords], Coords] | None = None
    #: the front of the body outline (LPS y) at heights z; None: the body box's front plane
    front_y: Callable[[Coords], Coords] | None = None
    #: the cavity's floor (None → 40 mm above the box's bottom).
    floor_z: float | None = None
    #: how much of the bowel's usual gas each bowel point (x, y, z) may hold, 0…1 (the gas fraction
    #: there is scaled by it); None → the usual fraction everywhere.
    gas_allowance: Callable[[Coords, Coords, Coords], Field] | None = None
    #: the gas share of the body's section at heights z (None → GAS_THRESHOLD's share of the
    #: bowel everywhere).
    gas_section_fraction: Callable[[Coords], Field] | None = None
    #: retroperitoneal fat around each psoas (what outlines the psoas shadow on an AP film).
    psoas_fat_mm: float = 0.0


def _primitive_placement(params: PatientParameters, anchors: Anchors) -> _Placement:
    k = size_scale(params)
    frame = PelvicFrame.from_anchors(anchors)
    spine_z, spine_y = _spine_profile(params, anchors)

    def paraspinal(z: Coords) -> Paraspinal:
        spine_y_z = np.interp(z, spine_z, spine_y).astype(np.float32)
        sacral = np.clip((frame.origin_lps[2] - z) / 60.0, 0.0, 1.0)
        para_y = spine_y_z + (55.0 - 10.0 * sacral) * k
        rx = (30.0 - 10.0 * sacral) * k
        ry = (22.0 - 10.0 * sacral) * k
        present = z > frame.origin_lps[2] - 75.0 * k
        return 36.0 * k, para_y, rx, ry, present

    return _Placement(
        spine_z=spine_z,
        spine_y=spine_y,
        crest_z=float(frame.origin_lps[2]) + 40.0 * k,
        pelvic_half_width=58.0 * k,
        paraspinal=paraspinal,
        psoas=_psoas_paths(params, anchors),
        gas_threshold=GAS_THRESHOLD,
        gas_wavelengths_mm=(16.0, 30.0),
        subcutaneous_fat_hu=SUBCUTANEOUS_FAT_HU,
        visceral_fat_hu=VISCERAL_FAT_HU,
        gas_hu=BOWEL_GAS_HU,
    )


def _real_placement(params: PatientParameters, anchors: Anchors) -> _Placement:
    """Positions measured on the real bones (models.phantom.real_soft)."""
    from fluorosim.models.phantom.real_skeleton import placed_skeleton
    from fluorosim.models.phantom.real_soft import (
        CT_BOWEL_GAS_HU,
        CT_FAT_HU,
        REAL_GAS_FRACTION_OF_BOWEL,
        BoneDistance,
        acetabula,
        ct_gas_section_fraction,
        psoas_paths,
        real_soft_layout,
    )

    skeleton = placed_skeleton(params)
    layout = real_soft_layout(skeleton)
    gz = layout.gutter_z_mm
    tips = np.array([skeleton.landmarks[f"{lv}_spinous_tip"] for lv in LEVELS])
    tips = tips[np.argsort(tips[:, 2])]
    box_low, box_high = body_box_mm(params, anchors)
    box_front, box_back = float(box_low[1]), float(box_high[1])

    # the sacral crest between the PSIS (the "dimples of Venus") continues the line of the tips
    psis = 0.5 * (skeleton.landmarks["psis_left"] + skeleton.landmarks["psis_right"])
    profile_z, profile_y = np.r_[psis[2], tips[:, 2]], np.r_[psis[1], tips[:, 1]]

    def back_y(z: Coords) -> Coords:
        # the assembly's rule (12 mm + 2.5 mm per BMI point above 18 behind the spinous tips and
        # the sacral crest) down to the PSIS, then the buttocks swell smoothly to the box's back
        # over BUTTOCK_RISE_MM (a step here showed as a band across oblique and lateral views)
        back = back_skin_y_mm(params, np.interp(z, profile_z, profile_y))
        buttock = smoothstep(psis[2] - z, 0.0, BUTTOCK_RISE_MM)
        at_z: Field = np.minimum(box_back, back + (box_back - back) * buttock)
        return at_z.astype(np.float32)

    depth = trunk_depth_mm(params)

    def front_y(z: Coords) -> Coords:
        # the belly keeps the trunk's depth in front of the back up the lordotic lumbar spine
        # (the real CT: 246–258 mm at L1–L5, the belly ≈130 mm in front of L3's body); over the
        # pelvis, where the buttocks swell the back to the box's, that is the box's own front
        at_z: Field = np.maximum(box_front, np.minimum(box_back - depth, back_y(z) - depth))
        return at_z.astype(np.float32)

    def gas_allowance(px: Coords, py: Coords, pz: Coords) -> Field:
        # below the brim the bladder fills the front of the true pelvis: gas only in the back
        # half (rectum, sigmoid), anterior to the sacrum. The gas thins out over GAS_FADE_MM
        # (down from 20 mm below the brim, forward from the middle): a hard limit there showed
        # as a straight edge across the lateral and true-lateral views.
        sacrum_front = np.interp(pz, layout.spine_z_mm, layout.spine_y_mm) - 18.0
        middle = 0.5 * (sacrum_front + layout.symphysis_y_mm)
        below = smoothstep(layout.brim_z_mm - 20.0 - pz, 0.0, GAS_FADE_MM)
        in_front = smoothstep(middle - py, 0.0, GAS_FADE_MM)
        allowance: Field = (1.0 - below * in_front).astype(np.float32)
        return allowance

    def gas_section_fraction(z: Coords) -> Field:
        # the real CT's gas by height above S1 (the abdomen's colon and small bowel hold it, the
        # true pelvis almost none), heights scaled with the patient's size
        return ct_gas_section_fraction((z - layout.s1_z_mm) / size_scale(params))

    def paraspinal(z: Coords) -> Paraspinal:
        def at(values: Vec) -> Coords:
            return np.interp(z, gz, values).astype(np.float32)

        front, back = at(layout.gutter_front_y_mm), at(layout.gutter_back_y_mm)
        present = (z > gz.min() - 10.0) & (z < gz.max() + 60.0)
        return (
            at(layout.gutter_x_mm),
            0.5 * (front + back),
            at(layout.gutter_half_width_mm),
            (0.5 * (back - front)),
            present,
        )

    return _Placement(
        spine_z=layout.spine_z_mm,
        spine_y=layout.spine_y_mm,
        crest_z=layout.crest_z_mm,
        pelvic_half_width=layout.inlet_half_width_mm,
        paraspinal=paraspinal,
        psoas=psoas_paths(skeleton, acetabula(anchors.extra), size_scale(params)),
        gas_threshold=float(stats.norm.isf(REAL_GAS_FRACTION_OF_BOWEL)),
        gas_wavelengths_mm=(20.0, 40.0),
        subcutaneous_fat_hu=CT_FAT_HU,
        visceral_fat_hu=CT_FAT_HU,
        gas_hu=CT_BOWEL_GAS_HU,
        bones=BoneDistance(skeleton, [(c, r + 1.0) for c, r in acetabula(anchors.extra).values()]),
        back_y=back_y,
        front_y=front_y,
        floor_z=layout.pelvic_floor_z_mm,
        gas_allowance=gas_allowance,
        gas_section_fraction=gas_section_fraction,
        psoas_fat_mm=float(np.clip(3.0 + 0.5 * (params.bmi - 18.0), 3.0, 15.0)),
    )


def soft_tissue_part(grid: Grid, params: PatientParameters, anchors: Anchors) -> PartResult:
    """Paint skin, fat, muscle, psoas, paraspinals and bowel (no landmarks)."""
    k = size_scale(params)
    real = params.skeleton == "real"
    place = _real_placement(params, anchors) if real else _primitive_placement(params, anchors)
    low, high = body_box_mm(params, anchors)
    fat_mm = fat_thickness_mm(params.bmi)
    spine_z, spine_y = place.spine_z, place.spine_y
    crest_z = place.crest_z
    rng = params.rng("bowel")
    loops = _waves(rng, 8, (40.0, 70.0))
    gas = _waves(rng, GAS_WAVES, place.gas_wavelengths_mm)
    gas_fine = _waves(rng, GAS_WAVES, GAS_FINE_WAVELENGTH_MM)

    result = PartResult()
    box_all = grid.box(low, high)
    x = grid.x_mm[box_all[0]].astype(np.float32)[:, None, None]
    y = grid.y_mm[box_all[1]].astype(np.float32)[None, :, None]
    skin_iterations = max(1, int(round(SKIN_MM / grid.voxel_mm)))
    structure = np.zeros((3, 3, 1), dtype=bool)
    structure[1, :, 0] = structure[:, 1, 0] = True
    k_start, k_stop = box_all[2].start, box_all[2].stop
    for k0 in range(k_start, k_stop, CHUNK_SLICES):
        k1 = min(k0 + CHUNK_SLICES, k_stop)
        box = (box_all[0], box_all[1], slice(k0, k1))
        z = grid.z_mm[k0:k1].astype(np.float32)[None, None, :]
        # Waist above the crests, hips below (approx. 0.85 → 1.0).
        z_weight = 1.0 - 0.15 * np.clip((z - crest_z) / 60.0, 0.0, 1.0)
        # Round off the ends of the trunk (top and bottom 30 mm) so the outline is closed.
        end = np.clip(np.minimum(z - low[2], high[2] - z) / 30.0, 0.0, 1.0)
        z_weight = z_weight * (0.7 + 0.3 * end)
        top = high if place.back_y is None else (high[0], place.back_y(z), high[2])
        bottom = low if place.front_y is None else (low[0], place.front_y(z), low[2])
        outer, lean, lean_front, lean_hw = _outline_fields(x, y, bottom, top, z_weight, fat_mm)
        body = outer <= 1.0
        if not body.any():
            continue
        inner = ndimage.binary_erosion(body, structure=structure, iterations=skin_iterations)
        # the skin's outer edge is partial-volumed: a binary edge stepped a whole voxel every few
        # slices where the back slopes, the patient's largest HU step drawn as a staircase
        edge = _outer_edge_fraction(x, y, bottom, top, z_weight, grid.voxel_mm, outer)
        skin = (edge > 0.0) & ~inner
        result.pieces.append(Painted("skin", box, skin, SKIN_HU, PRIORITY_SKIN, fraction=edge))
        result.pieces.append(Painted("fat", box, inner, place.subcutaneous_fat_hu, PRIORITY_FAT))

        # Cavity: inside the abdominal wall, in front of the spine (lateral gutters reach back
        # beside the psoas); in the pelvis it narrows to the inlet in front of the sacrum.
        lean_mask = (lean <= 1.0) & inner
        spine_y_z = np.interp(z, spine_z, spine_y).astype(np.float32)
        pelvic = np.clip((crest_z - z) / 100.0, 0.0, 1.0)  # 0 above the crests → 1 in the pelvis
        cavity_hw = (lean_hw - ABDOMINAL_WALL_MM) * (
            1.0 - pelvic
        ) + place.pelvic_half_width * pelvic
        lateral = np.clip((np.abs(x) - 40.0 * k) / 25.0, 0.0, 1.0)
        back_abdomen = spine_y_z - 18.0 + lateral * 43.0
        back_pelvis = spine_y_z + 30.0 - lateral * 45.0
        cavity_back = back_abdomen * (1.0 - pelvic) + back_pelvis * pelvic
        cavity_front = lean_front + ABDOMINAL_WALL_MM
        cavity_c = 0.5 * (cavity_back + cavity_front)
        cavity_hd = np.maximum(0.5 * (cavity_back - cavity_front), 1.0)
        cavity = ((x / cavity_hw) ** 2 + ((y - cavity_c) / cavity_hd) ** 2 <= 1.0) & lean_mask
        floor = low[2] + 40.0 if place.floor_z is None else place.floor_z
        cavity &= (z > floor) & (z < high[2] - 20.0)
        result.pieces.append(
            Painted("muscle", box, lean_mask & ~cavity, MUSCLE_HU, PRIORITY_MUSCLE)
        )
        if cavity.any():
            idx = np.nonzero(cavity)
            px, py, pz = (
                a.astype(np.float32)
                for a in (
                    grid.x_mm[box[0]][idx[0]],
                    grid.y_mm[box[1]][idx[1]],
                    grid.z_mm[k0:k1][idx[2]],
                )
            )
            is_bowel = _wave_field(loops, px, py, pz) > -0.25
            gas_field = _wave_field(gas, px, py, pz)
            gas_field += np.float32(GAS_FINE_WEIGHT) * _wave_field(gas_fine, px, py, pz)
            gas_field /= np.float32(math.sqrt(1.0 + GAS_FINE_WEIGHT**2))
            threshold = _gas_thresholds(place, body, z, idx, is_bowel, (px, py, pz))
            is_gas = is_bowel & (gas_field > threshold)
            bowel = np.zeros_like(cavity)
            bowel[idx] = is_bowel
            hu = np.full(cavity.shape, np.float32(BOWEL_FLUID_HU))
            hu[tuple(a[is_gas] for a in idx)] = np.float32(place.gas_hu)
            result.pieces.append(Painted("bowel", box, bowel, hu, PRIORITY_ORGAN))
            visceral = cavity & ~bowel
            result.pieces.append(
                Painted("fat", box, visceral, place.visceral_fat_hu, PRIORITY_FAT + 1)
            )

        # Paraspinals: an ellipse each side behind the laminae, thinning over the sacrum.
        para_x, para_y, rx, ry, present = place.paraspinal(z)
        present = present & (z < high[2] - 10.0)
        for side, sign in (("left", 1.0), ("right", -1.0)):
            ell = ((x - sign * para_x) / rx) ** 2 + ((y - para_y) / ry) ** 2 <= 1.0
            mask = ell & present & inner
            if mask.any():
                result.pieces.append(
                    Painted(f"paraspinal_{side}", box, mask, MUSCLE_HU, PRIORITY_ORGAN + 1)
                )

    for side, (points, radii) in place.psoas.items():
        centers, r = catmull_rom(points, radii, 1.0)
        if place.bones is not None:
            centers = push_out_of_bone(place.bones, centers, r, 0.0)
        if place.psoas_fat_mm > 0.0:
            sheath = stamp_tube(grid, centers, r + place.psoas_fat_mm)
            if sheath is not None:
                result.pieces.append(
                    Painted("fat", sheath[0], sheath[1], place.visceral_fat_hu, PRIORITY_MUSCLE + 1)
                )
        stamped = stamp_tube(grid, centers, r)
        if stamped is None:
            continue
        box, mask = stamped
        if place.bones is not None:
            # the muscle wraps the bone it arises from: never inside it
            inside = np.argwhere(mask)
            world = np.column_stack(
                [
                    axis[s][inside[:, i]]
                    for i, (axis, s) in enumerate(
                        zip((grid.x_mm, grid.y_mm, grid.z_mm), box, strict=True)
                    )
                ]
            )
            signed, _ = place.bones(world)
            drop = inside[signed < 0.0]
            mask[drop[:, 0], drop[:, 1], drop[:, 2]] = False
        result.pieces.append(Painted(f"psoas_{side}", box, mask, MUSCLE_HU, PRIORITY_ORGAN + 1))
    return result
