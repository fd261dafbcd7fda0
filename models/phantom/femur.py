"""Both proximal femora (``femur_left/right``): head in the acetabulum, neck, trochanters, shaft.

The femoral head centre is the hip centre of :mod:`models.phantom.pelvis` (its ``IliumShape``,
imported read-only), taken through the :class:`~models.phantom.sacrum.PelvicFrame`, so the femora
move with the pelvis. The legs themselves lie straight on the table (prone, hips extended): the
shaft orientation is fixed in LPS, not in the pelvic frame.

Shape (side-local LPS axes: lateral, posterior, superior; approx. adult values, scaled by the
hip bone's size factor ``k``):

- head: a sphere of radius ``ACETABULUM_RADIUS_MM·k − JOINT_SPACE_MM`` (≈22.5 mm for the average
  male: femoral head radius ≈22–25 mm) concentric with the acetabular socket, leaving a
  ``JOINT_SPACE_MM`` (2.5 mm) cartilage/joint space to the ilium;
- neck: a tapered capsule from the head centre to the shaft axis at the neck-shaft angle
  ``NECK_SHAFT_ANGLE_DEG`` (130°) and anteverted by ``ANTEVERSION_DEG`` (12°), with a femoral
  offset (head centre to shaft axis) of ``FEMORAL_OFFSET_MM`` (≈41 mm);
- shaft: the anatomical axis inclined ``SHAFT_ADDUCTION_DEG`` (7°) from vertical in the coronal
  plane (distal end medial), radius 17 mm at the trochanters tapering to 14 mm in the diaphysis,
  down to the grid's lower edge;
- greater trochanter: a lateral, superior-posterior bump whose tip lies at about the height of the
  head centre; lesser trochanter: a posteromedial bump ≈35 mm below the neck axis; the
  intertrochanteric crest joins them posteriorly.

HU (anatomy.md): cortical shell ``CORTICAL_HU`` (1100; cortical +700…+1900), 1.5 mm thick
around the head, neck and trochanters, thickening to ≈6 mm in the diaphysis; cancellous bone like
the anterior ilium (230–254 HU, −2.5 HU/year); the diaphyseal medullary canal holds marrow
(``MARROW_HU`` ≈ +20, approx.).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.models.phantom.parts import (
    PRIORITY_BONE,
    Anchors,
    Grid,
    Painted,
    PartResult,
    PatientParameters,
)
from fluorosim.models.phantom.pelvis import ilium_shape
from fluorosim.models.phantom.sacrum import (
    ANTERIOR_ILIUM_HU,
    CORTICAL_HU,
    MIN_CANCELLOUS_HU,
    Field,
    PelvicFrame,
    cancellous_shift_hu,
    sacroiliac_joints,
    smooth_min,
    smoothstep,
)

#: Radius of the acetabular socket carved by pelvis.py (25 mm × the hip bone's size factor).
ACETABULUM_RADIUS_MM = 25.0
#: Hip joint space (two layers of articular cartilage, ≈1.2 mm each; approx.).
JOINT_SPACE_MM = 2.5
#: Neck-shaft (caput-collum-diaphyseal) angle, adults ≈125–135° (approx.).
NECK_SHAFT_ANGLE_DEG = 130.0
#: Femoral anteversion, adults ≈10–15° (approx.).
ANTEVERSION_DEG = 12.0
#: Femoral offset: head centre to the shaft axis, adults ≈40–45 mm (approx.).
FEMORAL_OFFSET_MM = 41.0
#: Anatomical femoral axis against the vertical in the coronal plane (distal end medial, approx.).
SHAFT_ADDUCTION_DEG = 7.0
NECK_RADIUS_HEAD_MM = 15.0
NECK_RADIUS_BASE_MM = 18.0
SHAFT_RADIUS_PROXIMAL_MM = 17.0
SHAFT_RADIUS_DIAPHYSIS_MM = 14.0
#: Cortical thickness near the joint and in the diaphysis (approx.).
CORTEX_PROXIMAL_MM = 1.5
CORTEX_DIAPHYSIS_MM = 6.0
#: Medullary canal contents (mixed red/yellow marrow, approx.).
MARROW_HU = 20.0
#: Greater trochanter ellipsoid: centre (lateral, posterior, along the shaft from the neck-axis
#: junction) and semi-axes (lateral, anteroposterior, along the shaft), mm.
GREATER_TROCHANTER_CENTER = (10.0, 5.0, 22.0)
GREATER_TROCHANTER_RADII = (11.0, 16.0, 17.0)
#: Lesser trochanter: centre (medial, posterior, along the shaft) and radius, mm.
LESSER_TROCHANTER_CENTER = (12.0, 9.0, -35.0)
LESSER_TROCHANTER_RADIUS_MM = 9.0
SHAFT_LENGTH_MM = 450.0
SIDES = ("left", "right")


@dataclass(frozen=True)
class FemurShape:
    """One proximal femur in LPS mm: the points and axes that define it."""

    side: str
    scale: float
    head_center: NDArray[np.float64]
    head_radius_mm: float
    #: Unit vectors (LPS): shaft axis pointing proximally, the side's lateral direction
    #: perpendicular to it, posterior, and the neck axis pointing from the shaft to the head.
    shaft_up: NDArray[np.float64]
    lateral: NDArray[np.float64]
    posterior: NDArray[np.float64]
    neck_axis: NDArray[np.float64]
    #: Where the neck axis meets the shaft axis.
    junction: NDArray[np.float64]

    def local(self, lateral: float, posterior: float, up: float) -> NDArray[np.float64]:
        """The LPS point at (lateral, posterior, along-shaft) mm from the neck-shaft junction."""
        return (
            self.junction + lateral * self.lateral + posterior * self.posterior + up * self.shaft_up
        )

    @property
    def greater_trochanter_center(self) -> NDArray[np.float64]:
        return self.local(*(np.array(GREATER_TROCHANTER_CENTER) * self.scale))

    @property
    def greater_trochanter_tip(self) -> NDArray[np.float64]:
        """The top of the greater trochanter (1 mm inside its surface)."""
        reach = GREATER_TROCHANTER_RADII[2] * self.scale - 1.0
        return self.greater_trochanter_center + reach * self.shaft_up

    @property
    def lesser_trochanter_center(self) -> NDArray[np.float64]:
        c = np.array(LESSER_TROCHANTER_CENTER) * self.scale
        return self.local(-c[0], c[1], c[2])

    @property
    def neck_shaft_angle_deg(self) -> float:
        """Angle between the neck axis (toward the head) and the shaft axis (toward the knee)."""
        cos = float(np.dot(self.neck_axis, -self.shaft_up))
        return math.degrees(math.acos(np.clip(cos, -1.0, 1.0)))


def femur_shape(
    params: PatientParameters,
    side: str,
    frame: PelvicFrame,
    hip_center_ref: ArrayLike,
    scale: float,
) -> FemurShape:
    """The side's femur around the hip centre (side-local PRF, x lateral) of the hip bone."""
    sign = 1.0 if side == "left" else -1.0
    hc = np.asarray(hip_center_ref, dtype=np.float64)
    head = frame.lps_from_ref(np.array([sign * hc[0], hc[1], hc[2]]))
    alpha = math.radians(SHAFT_ADDUCTION_DEG)
    up = np.array([sign * math.sin(alpha), 0.0, math.cos(alpha)])
    lateral = np.array([sign * math.cos(alpha), 0.0, -math.sin(alpha)])
    posterior = np.array([0.0, 1.0, 0.0])
    tilt = math.radians(180.0 - NECK_SHAFT_ANGLE_DEG)
    av = math.radians(ANTEVERSION_DEG)
    across = math.cos(av) * -lateral + math.sin(av) * -posterior  # medial and anterior
    neck = math.cos(tilt) * up + math.sin(tilt) * across
    neck_length = FEMORAL_OFFSET_MM * scale / math.sin(tilt)
    return FemurShape(
        side=side,
        scale=scale,
        head_center=head,
        head_radius_mm=ACETABULUM_RADIUS_MM * scale - JOINT_SPACE_MM,
        shaft_up=up,
        lateral=lateral,
        posterior=posterior,
        neck_axis=neck,
        junction=head - neck_length * neck,
    )


def femur_shapes(params: PatientParameters, anchors: Anchors) -> dict[str, FemurShape]:
    """Both femora, their heads in the acetabula of the hip bones built for ``params``.

    With the real skeleton the anchors carry each acetabulum's centre and radius
    (``acetabulum_center_side``, ``acetabulum_radius_mm_side``): the head sits there, sized to it.
    """
    frame = PelvicFrame.from_anchors(anchors)
    shapes = {}
    for side, joint in sacroiliac_joints(params).items():
        ilium = ilium_shape(params, side, joint)
        shape = femur_shape(params, side, frame, ilium.hip_center, ilium.scale)
        acetabulum = anchors.extra.get(f"acetabulum_center_{side}")
        radius = anchors.extra.get(f"acetabulum_radius_mm_{side}")
        if acetabulum is not None and radius is not None:
            # a real hip bone (models/phantom/real_skeleton.py): the head in its acetabulum
            scale = float(radius) / ACETABULUM_RADIUS_MM
            shape = femur_shape(params, side, frame, ilium.hip_center, scale)
            shift = np.asarray(acetabulum, dtype=np.float64) - shape.head_center
            shape = replace(
                shape,
                head_center=shape.head_center + shift,
                junction=shape.junction + shift,
                head_radius_mm=float(radius) - JOINT_SPACE_MM,
            )
        shapes[side] = shape
    return shapes


def _segment(
    x: Field, y: Field, z: Field, a: NDArray[np.float64], b: NDArray[np.float64]
) -> tuple[Field, Field]:
    """Distance to the segment a→b and the clipped fraction along it (float32 arrays)."""
    a0, a1, a2 = (float(v) for v in a)
    b0, b1, b2 = (float(v) - w for v, w in zip(b, (a0, a1, a2), strict=True))
    length2 = b0 * b0 + b1 * b1 + b2 * b2
    wx, wy, wz = x - a0, y - a1, z - a2
    h = np.clip((wx * b0 + wy * b1 + wz * b2) / length2, 0.0, 1.0)
    distance = np.sqrt((wx - h * b0) ** 2 + (wy - h * b1) ** 2 + (wz - h * b2) ** 2)
    return distance, h


def _ellipsoid(
    x: Field,
    y: Field,
    z: Field,
    center: NDArray[np.float64],
    axes: tuple[NDArray[np.float64], ...],
    radii: NDArray[np.float64],
) -> Field:
    """Approximate signed distance to an ellipsoid with orthonormal ``axes`` and ``radii``."""
    q2: Field | float = 0.0
    for axis, radius in zip(axes, radii, strict=True):
        t = (
            (x - float(center[0])) * float(axis[0])
            + (y - float(center[1])) * float(axis[1])
            + (z - float(center[2])) * float(axis[2])
        )
        q2 = q2 + (t / float(radius)) ** 2
    sdf: Field = (np.sqrt(q2) - 1.0) * float(min(radii))
    return sdf


def femur_fields(
    shape: FemurShape, x: NDArray[np.float32], y: NDArray[np.float32], z: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Signed distance of the femur (mm, negative inside) and the along-shaft coordinate (mm)."""
    k = shape.scale
    hc = shape.head_center
    head = (
        np.sqrt((x - float(hc[0])) ** 2 + (y - float(hc[1])) ** 2 + (z - float(hc[2])) ** 2)
        - shape.head_radius_mm
    )
    dist, h = _segment(x, y, z, shape.junction, hc)
    neck_r = (NECK_RADIUS_BASE_MM + (NECK_RADIUS_HEAD_MM - NECK_RADIUS_BASE_MM) * h) * k
    neck = dist - neck_r
    top = shape.local(0.0, 0.0, 12.0 * k)
    bottom = shape.local(0.0, 0.0, -SHAFT_LENGTH_MM)
    dist, h = _segment(x, y, z, top, bottom)
    along = 12.0 * k - h * (12.0 * k + SHAFT_LENGTH_MM)  # + proximal, from the junction
    taper = smoothstep(-along, 30.0 * k, 90.0 * k)
    shaft_r = (
        SHAFT_RADIUS_PROXIMAL_MM + (SHAFT_RADIUS_DIAPHYSIS_MM - SHAFT_RADIUS_PROXIMAL_MM) * taper
    ) * k
    shaft = dist - shaft_r
    axes = (shape.lateral, shape.posterior, shape.shaft_up)
    greater = _ellipsoid(
        x, y, z, shape.greater_trochanter_center, axes, np.array(GREATER_TROCHANTER_RADII) * k
    )
    lt = shape.lesser_trochanter_center
    lesser = (
        np.sqrt((x - float(lt[0])) ** 2 + (y - float(lt[1])) ** 2 + (z - float(lt[2])) ** 2)
        - LESSER_TROCHANTER_RADIUS_MM * k
    )
    crest_top = shape.local(8.0 * k, 14.0 * k, 12.0 * k)
    crest, _ = _segment(x, y, z, crest_top, lt + 2.0 * k * shape.posterior)
    crest = crest - 5.0 * k
    bone = smooth_min(neck, shaft, 8.0 * k)
    bone = smooth_min(bone, greater, 6.0 * k)
    bone = smooth_min(bone, smooth_min(lesser, crest, 4.0 * k), 5.0 * k)
    # The articular head keeps its exact sphere; only its junction with the neck is rounded.
    bone = np.minimum(bone, smooth_min(head, neck, 3.0))
    return bone.astype(np.float32), along.astype(np.float32)


def femur_hu(
    sdf: NDArray[np.float32], along: NDArray[np.float32], voxel_mm: float, age_years: float
) -> NDArray[np.float32]:
    """HU inside the femur: cortical shell thickening down the shaft around cancellous/marrow."""
    diaphysis = smoothstep(-along, 45.0, 90.0).astype(np.float32)
    cortex = CORTEX_PROXIMAL_MM + (CORTEX_DIAPHYSIS_MM - CORTEX_PROXIMAL_MM) * diaphysis
    cortex = np.maximum(cortex, voxel_mm)
    cancellous = max(ANTERIOR_ILIUM_HU + cancellous_shift_hu(age_years), MIN_CANCELLOUS_HU)
    inner = cancellous + (MARROW_HU - cancellous) * diaphysis
    hu = np.where(sdf > -cortex, np.float32(CORTICAL_HU), inner)
    return np.where(sdf <= 0, hu, 0.0).astype(np.float32)


def _landmarks(shape: FemurShape) -> dict[str, NDArray[np.float64]]:
    side = shape.side
    return {
        f"femoral_head_center_{side}": shape.head_center.copy(),
        f"greater_trochanter_tip_{side}": shape.greater_trochanter_tip,
    }


def femur_part(grid: Grid, params: PatientParameters, anchors: Anchors) -> PartResult:
    """Paint ``femur_left/right`` (proximal femora down to the grid's lower edge) and landmarks."""
    result = PartResult()
    for side, shape in femur_shapes(params, anchors).items():
        result.landmarks.update(_landmarks(shape))
        k = shape.scale
        hc = shape.head_center
        sign = 1.0 if side == "left" else -1.0
        xs = (hc[0] - sign * 35.0 * k, hc[0] + sign * 90.0 * k)
        low = np.array([min(xs), hc[1] - 50.0 * k, float(grid.z_mm[0]) - 1.0])
        high = np.array([max(xs), hc[1] + 50.0 * k, hc[2] + 45.0 * k])
        box = grid.box(low, high)
        if any(s.stop <= s.start for s in box):
            continue
        x, y, z = grid.coordinates(box)
        sdf, along = femur_fields(
            shape, x.astype(np.float32), y.astype(np.float32), z.astype(np.float32)
        )
        mask = sdf <= 0
        if not mask.any():
            continue
        hu = femur_hu(sdf, along, grid.voxel_mm, params.age_years)
        result.pieces.append(Painted(f"femur_{side}", box, mask, hu, PRIORITY_BONE))
    return result
