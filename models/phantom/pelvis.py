"""Both hip bones (``ilium_left/right``: ilium with ischium and pubis) and the sacroiliac joint spaces.

Written in the pelvic reference frame of :mod:`models.phantom.sacrum` (origin S1 endplate centre,
x Left, y Posterior, z Superior at the reference 38° sacral slope), per side in *side-local*
coordinates (x → lateral), so one description serves both sides.

Shape:

- the wing is a curved plate around a mid-surface x = x_mid(y, z): below the arcuate line it is the
  near-sagittal pelvic side wall; above it the iliac fossa flares laterally up to the crest. The fold
  between the two is the arcuate line, whose cortex seen edge-on on a true lateral is the iliac
  cortical density (ICD) line; it runs parallel to and just caudal of the sacral ala (procedures.md);
- the plate is thick at its rim (crest, anterior border, sciatic buttress) and thin in the central
  fossa: two cortices < 5 mm apart over ≈22 cm² starting ≈14–20 mm below the crest (anatomy.md);
- the posterior ilium is a thick block whose medial face is the sacroiliac joint plane: on the
  L-shaped auricular surface it stands ``gap/2`` off the plane (1–2 mm joint space, ≈17.5 cm²),
  elsewhere it leaves the ligament gap; the block ends at the PSIS and the posterior inferior iliac
  spine, below which the greater sciatic notch opens down to the ischial spine;
- the acetabulum (a cup around the hip centre), ischium with spine and tuberosity, pubic rami and
  body complete the hip bone so that a true lateral superimposes both notches and acetabula.

Key points (approx., an average adult male at the 38° reference slope, from the S1 endplate
centre): hip centre 85 mm lateral, 28 anterior, 100 inferior (pelvic incidence ≈ 52°); ASIS
(118, −72, −30); PSIS (42, 62, −26); crest top 42 mm above the S1 endplate (near the L4–L5 disc),
62 mm with the ``high_iliac_crest`` variant (blocks the L5–S1 transforaminal approach,
procedures.md: 5–28 % of patients).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.models.phantom.parts import (
    PRIORITY_BONE,
    PRIORITY_JOINT_SPACE,
    Anchors,
    Grid,
    Painted,
    PartResult,
    PatientParameters,
)
from fluorosim.models.phantom.sacrum import (
    ANTERIOR_ILIUM_HU,
    E_A,
    E_S,
    Field,
    PelvicFrame,
    SacralShape,
    SacroiliacJoint,
    bone_hu,
    cancellous_shift_hu,
    jitter,
    sacral_shape,
    sacroiliac_joints,
    sacrum_fields,
    size_scale,
    smooth_max,
    smooth_min,
    smoothstep,
)

#: Joint space HU (articular cartilage and synovial fluid, approx.).
SIJ_SPACE_HU = 80.0
#: Posterior ilium, ischium and pubis cancellous HU (approx.; anterior ilium 230–254 anatomy.md).
POSTERIOR_ILIUM_HU = 210.0
#: Columns (along x) per slab when evaluating the shape fields.
X_CHUNK = 24
#: Raise of the crest for the ``high_iliac_crest`` variant (approx.: crest top at the L4 body).
HIGH_CREST_RAISE_MM = 20.0
#: Slope of the arcuate (ICD) line below the S1 endplate plane, in the sagittal projection.
ICD_SLOPE_BELOW_ENDPLATE_DEG = 22.0
ICD_LENGTH_MM = 50.0
#: Where the ICD line leaves the joint: on the upper edge of the superior limb, this far behind
#: the vertex, so that on a true lateral it crosses the S1 body above the S1 foramen (the SIJ
#: fusion safe zone lies caudal to it and cranial to the foramen, procedures.md).
ICD_START_V1_MM = -15.0

#: Outline of the ilium seen from the side (y, z), side-local PRF mm: ASIS → crest → PSIS → PIIS
#: → greater sciatic notch → acetabular roof → AIIS.
OUTLINE_YZ = (
    (-72.0, -30.0),
    (-70.0, -8.0),
    (-56.0, 18.0),
    (-32.0, 36.0),
    (-5.0, 42.0),
    (20.0, 38.0),
    (42.0, 22.0),
    (56.0, 2.0),
    (62.0, -26.0),
    (58.0, -56.0),
    (46.0, -68.0),
    (26.0, -78.0),
    (14.0, -92.0),
    (4.0, -98.0),
    (-40.0, -92.0),
    (-62.0, -62.0),
    (-70.0, -45.0),
)
#: Crest line: lateral reach of the fossa at the crest along y (intercristal width ≈ 270, approx.).
CREST_Y = (-72.0, -50.0, -30.0, 0.0, 30.0, 50.0, 62.0)
CREST_X = (117.0, 130.0, 133.0, 124.0, 92.0, 62.0, 45.0)
#: Pelvic side wall below the arcuate line (pelvic inlet ≈ 130 mm wide, approx.).
WALL_Y = (-90.0, -50.0, -25.0, 0.0, 40.0)
WALL_X = (50.0, 62.0, 64.0, 60.0, 54.0)
HIP_CENTER = (85.0, -28.0, -100.0)
#: Pubic body beside the symphysis (side-local PRF centre and semi-axes, approx.): its top, the
#: superior border of the symphysis, lies ≈120 mm from the promontory along a pelvic brim inclined
#: ≈60° to the S1 axis' horizontal (standing pelvic inclination ≈60°).
PUBIC_BODY_CENTER = (9.0, -72.0, -133.0)
PUBIC_BODY_RADII = (7.0, 11.0, 19.0)
PSIS_YZ = (62.0, -26.0)
NOTCH_YZ = (26.0, -78.0)
CREST_TOP_YZ = (-5.0, 42.0)


@dataclass(frozen=True)
class IliumShape:
    """One hip bone in side-local PRF (x lateral)."""

    side: str
    sign: float
    scale: float
    width_scale: float
    outline: NDArray[np.float64]  # (N, 2) y, z
    crest_y: NDArray[np.float64]
    crest_x: NDArray[np.float64]
    crest_z: NDArray[np.float64]
    wall_y: NDArray[np.float64]
    wall_x: NDArray[np.float64]
    icd_posterior: NDArray[np.float64]  # (y, z)
    icd_direction: NDArray[np.float64]  # (dy, dz), unit
    hip_center: NDArray[np.float64]
    joint: SacroiliacJoint

    def arc_z(self, y: Field) -> Field:
        """Height of the arcuate line (the fold of the plate) at y; level behind the ICD start."""
        slope = self.icd_direction[1] / self.icd_direction[0]
        dy = np.minimum(y - self.icd_posterior[0], 0.0)
        z: Field = self.icd_posterior[1] + dy * slope
        return z

    def mid_x(self, y: Field, z: Field) -> Field:
        """Lateral position of the plate's mid-surface."""
        wall = np.interp(y, self.wall_y, self.wall_x) * self.width_scale
        crest = np.interp(y, self.crest_y, self.crest_x) * self.width_scale
        crest_z = np.interp(y, self.crest_y, self.crest_z)
        z_arc = self.arc_z(y)
        span = np.maximum(crest_z - z_arc, 10.0)
        h = np.clip((z - z_arc) / span, 0.0, 1.2)
        # At the arcuate line the fossa leaves the wall almost horizontally (x ∝ √h): that shelf,
        # seen edge-on by a lateral beam, is the iliac cortical density line.
        eps = 1.0 / span
        h = np.sqrt(h * h + eps * eps) - eps
        x: Field = wall + (crest - wall) * np.sqrt(np.maximum(h, 0.0))
        return x

    def point(self, y: float, z: float, x: float | None = None) -> NDArray[np.float64]:
        """A side-local point on the mid-surface at (y, z) (or at lateral ``x``), as PRF."""
        if x is None:
            x = float(self.mid_x(np.array(y), np.array(z)))
        return np.array([self.sign * x, y, z])


def polygon_sdf(y: Field, z: Field, vertices: NDArray[np.float64]) -> NDArray[np.float32]:
    """Signed distance of 2-D points to a closed polygon (negative inside), vectorised."""
    d2 = np.full(np.broadcast(y, z).shape, np.inf, dtype=np.float32)
    sign = np.ones_like(d2)
    n = len(vertices)
    for i in range(n):
        a = vertices[i]
        b = vertices[i - 1]
        ey, ez = b[0] - a[0], b[1] - a[1]
        wy, wz = y - a[0], z - a[1]
        h = np.clip((wy * ey + wz * ez) / (ey * ey + ez * ez), 0.0, 1.0)
        dy, dz = wy - ey * h, wz - ez * h
        d2 = np.minimum(d2, dy * dy + dz * dz)
        c1 = z >= a[1]
        c2 = z < b[1]
        c3 = ey * wz > ez * wy
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        sign = np.where(flip, -sign, sign)
    return (sign * np.sqrt(d2)).astype(np.float32)


def ilium_shape(params: PatientParameters, side: str, joint: SacroiliacJoint) -> IliumShape:
    """The side's hip bone from the seeded ``"ilium_<side>"`` stream."""
    rng = params.rng(f"ilium_{side}")
    k = size_scale(params) * jitter(rng, 0.04)
    width = (1.06 if params.sex == "female" else 1.0) * jitter(rng, 0.03)
    raise_mm = HIGH_CREST_RAISE_MM if params.variant == "high_iliac_crest" else 0.0
    crest_jitter = 4.0 * float(np.clip(rng.standard_normal(), -2, 2))

    def lift(zv: ArrayLike) -> Field:
        return (raise_mm + crest_jitter) * smoothstep(np.asarray(zv), -30.0, 30.0)

    outline = np.array(OUTLINE_YZ) * k
    outline[:, 1] += lift(outline[:, 1])
    crest_y = np.array(CREST_Y) * k
    crest_z = np.interp(crest_y, outline[:9, 0], outline[:9, 1])
    # The arcuate line starts on the upper margin of the auricular surface.
    start = joint.point_ref(ICD_START_V1_MM, joint.half_width_mm)
    angle = math.radians(ICD_SLOPE_BELOW_ENDPLATE_DEG)
    direction = math.cos(angle) * E_A - math.sin(angle) * E_S
    wall_x = np.array(WALL_X) * k
    # The wall meets the joint plane at the start of the arcuate line.
    wall_x += abs(start[0]) - float(np.interp(start[1], np.array(WALL_Y) * k, wall_x))
    return IliumShape(
        side=side,
        sign=1.0 if side == "left" else -1.0,
        scale=k,
        width_scale=width,
        outline=outline,
        crest_y=crest_y,
        crest_x=np.array(CREST_X) * k,
        crest_z=crest_z,
        wall_y=np.array(WALL_Y) * k,
        wall_x=wall_x,
        icd_posterior=np.array([start[1], start[2]]),
        icd_direction=direction / np.linalg.norm(direction),
        hip_center=np.array(HIP_CENTER) * k * np.array([width, 1.0, 1.0]),
        joint=joint,
    )


def _capsule(
    x: Field, y: Field, z: Field, a: Iterable[float], b: Iterable[float], radius: float
) -> Field:
    """Signed distance to a 3-D capsule from a to b (python floats keep float32 arrays float32)."""
    a0, a1, a2 = (float(v) for v in a)
    b0, b1, b2 = (float(v) - w for v, w in zip(b, (a0, a1, a2), strict=True))
    length2 = b0 * b0 + b1 * b1 + b2 * b2
    wx, wy, wz = x - a0, y - a1, z - a2
    h = np.clip((wx * b0 + wy * b1 + wz * b2) / length2, 0.0, 1.0)
    sdf: Field = np.sqrt((wx - h * b0) ** 2 + (wy - h * b1) ** 2 + (wz - h * b2) ** 2) - float(
        radius
    )
    return sdf


def _ellipsoid(
    x: Field, y: Field, z: Field, center: Iterable[float], radii: Iterable[float]
) -> Field:
    """Approximate signed distance to an axis-aligned ellipsoid."""
    c0, c1, c2 = (float(v) for v in center)
    r0, r1, r2 = (float(v) for v in radii)
    q = np.sqrt(((x - c0) / r0) ** 2 + ((y - c1) / r1) ** 2 + ((z - c2) / r2) ** 2)
    sdf: Field = (q - 1.0) * min(r0, r1, r2)
    return sdf


def _hip_bone_sdf(
    shape: IliumShape, xl: Field, y: Field, z: Field, voxel: float
) -> tuple[Field, tuple[Field, Field, Field]]:
    """Signed distance of the hip bone (side-local x ``xl``); also the wing/auricular weight."""
    k = shape.scale
    joint = shape.joint
    outline = polygon_sdf(y, z, shape.outline)
    mid = shape.mid_x(y, z).astype(np.float32)
    if mid.ndim == 3 and min(mid.shape[-2:]) > 1:
        gy, gz = np.gradient(mid[0], voxel)
        slope = np.sqrt(1.0 + gy**2 + gz**2)[None].astype(np.float32)
    else:
        slope = 1.0
    z_arc = shape.arc_z(y)
    thickness = (
        2.4
        + 9.0 * np.exp(np.minimum(outline, 0.0) / 7.0)
        + 5.0 * np.exp(-np.abs(z - z_arc) / 5.0)
        + 12.0 * smoothstep(-z, 55.0 * k, 85.0 * k)
    )
    thickness = thickness.astype(np.float32)
    wing = smooth_max((np.abs(xl - mid) - thickness / 2) / slope, outline, 2.0)

    # Posterior block on the joint plane (auricular part and iliac tuberosity).
    xr = shape.sign * xl  # back to PRF x for the joint (defined in PRF)
    d, v1, v2 = joint.plane_coordinates(xr, y, z)
    gap = joint.half_gap(v1, v2)
    # 17 mm thick behind the joint's anterior margin, tapering to nothing 8 mm in front of it.
    taper = 1.0 - smoothstep(v1, joint.half_width_mm - 10.0, joint.half_width_mm + 8.0)
    block = np.maximum(gap - d, d - gap - (2.0 + 15.0 * taper) * k)
    block = np.maximum(block, v1 - joint.half_width_mm - 8.0)
    block = smooth_max(block, outline, 3.0)
    bone = smooth_min(wing, block, 5.0)

    # Acetabulum: a thick cup around the hip centre.
    hc = shape.hip_center
    cup = _ellipsoid(xl, y, z, hc + np.array([-12.0, 0.0, 8.0]) * k, np.array([24, 30, 32]) * k)
    h0, h1, h2 = (float(v) for v in hc)
    socket = np.sqrt((xl - h0) ** 2 + (y - h1) ** 2 + (z - h2) ** 2) - 25.0 * k
    cup = np.maximum(cup, -socket)
    bone = smooth_min(bone, cup, 6.0)
    # Ischium with its spine and tuberosity; pubic rami and body.
    parts = [
        _capsule(
            xl, y, z, hc + np.array([-10, 26, -8]) * k, hc + np.array([-19, 40, -58]) * k, 12 * k
        ),
        _ellipsoid(xl, y, z, hc + np.array([-21, 42, -60]) * k, np.array([13, 16, 14]) * k),
        _capsule(
            xl, y, z, hc + np.array([-15, 36, -10]) * k, hc + np.array([-33, 62, -20]) * k, 4.5 * k
        ),
        _capsule(xl, y, z, hc + np.array([-17, -20, 2]) * k, np.array([14, -70, -128]) * k, 9 * k),
        _ellipsoid(xl, y, z, np.array(PUBIC_BODY_CENTER) * k, np.array(PUBIC_BODY_RADII) * k),
        _capsule(xl, y, z, np.array([10, -66, -150]) * k, hc + np.array([-24, 34, -60]) * k, 7 * k),
    ]
    for part in parts:
        bone = np.minimum(bone, part)
    bone = np.maximum(bone, -socket)  # keep the socket open
    bone = np.maximum(bone, 2.0 - xl)  # the pubic symphysis: a 4 mm gap at the midline
    return bone, (d, v1, v2)


def _side_box(frame: PelvicFrame, grid: Grid, shape: IliumShape) -> tuple[slice, slice, slice]:
    k = shape.scale
    lo_x, hi_x = 0.0, 150.0 * k * shape.width_scale
    if shape.sign < 0:
        lo_x, hi_x = -hi_x, -lo_x
    top = float(shape.outline[:, 1].max()) + 8.0
    return frame.box(grid, (lo_x, -110.0 * k, -185.0 * k), (hi_x, 80.0 * k, top))


def ilia_part(grid: Grid, params: PatientParameters, anchors: Anchors) -> PartResult:
    """Paint ``ilium_left/right`` and ``sij_space_left/right``; return ilium and SIJ landmarks."""
    frame = PelvicFrame.from_anchors(anchors)
    joints = sacroiliac_joints(params)
    sacrum = sacral_shape(params)
    result = PartResult()
    shift = cancellous_shift_hu(params.age_years)
    voxel = grid.voxel_mm
    symphysis = []
    for side, joint in joints.items():
        shape = ilium_shape(params, side, joint)
        result.landmarks.update(_landmarks(frame, shape))
        symphysis.append(frame.lps_from_ref(symphysis_superior_ref(shape.scale)))
        if len(symphysis) == len(joints):
            result.landmarks["pubic_symphysis_superior"] = np.mean(symphysis, axis=0)
        box = _side_box(frame, grid, shape)
        if any(s.stop <= s.start for s in box):
            continue
        # Slabs of X_CHUNK columns bound the memory of the float32 fields (all but x are 2-D).
        shape3 = tuple(sl.stop - sl.start for sl in box)
        mask = np.zeros(shape3, dtype=bool)
        slab = np.zeros(shape3, dtype=bool)
        half = max(joint.gap_mm / 2.0, 0.55 * voxel)
        for i0 in range(0, shape3[0], X_CHUNK):
            sub = (
                slice(box[0].start + i0, min(box[0].start + i0 + X_CHUNK, box[0].stop)),
                box[1],
                box[2],
            )
            x, y, z = frame.coordinates(grid, sub)
            bone, (d, v1, v2) = _hip_bone_sdf(shape, shape.sign * x, y, z, voxel)
            rows = slice(i0, i0 + bone.shape[0])
            mask[rows] = bone <= 0
            # Joint space: the slab between the auricular surfaces, where sacrum and ilium face.
            slab[rows] = _joint_space(shape, sacrum, x, y, z, d, v1, v2, half, voxel)
        y, z = frame.coordinates(grid, box)[1:]
        anterior = smoothstep(-y, 0.0, 40.0)
        cancellous = POSTERIOR_ILIUM_HU + (ANTERIOR_ILIUM_HU - POSTERIOR_ILIUM_HU) * anterior
        cancellous = np.broadcast_to((cancellous + shift).astype(np.float32), shape3)
        hu = bone_hu(mask, cancellous, voxel)
        result.pieces.append(Painted(f"ilium_{side}", box, mask, hu, PRIORITY_BONE))
        if slab.any():
            result.pieces.append(
                Painted(f"sij_space_{side}", box, slab, SIJ_SPACE_HU, PRIORITY_JOINT_SPACE)
            )
    return result


def _joint_space(
    shape: IliumShape,
    sacrum: SacralShape,
    x: Field,
    y: Field,
    z: Field,
    d: Field,
    v1: Field,
    v2: Field,
    half: float,
    voxel: float,
) -> NDArray[np.bool_]:
    """Voxels within ``half`` of the joint plane on the L-shaped surface with bone on both sides."""
    joint = shape.joint
    slab = (np.abs(d) <= half) & (joint.region_sdf(v1, v2) < 0)
    idx = np.nonzero(slab)
    if not idx[0].size:
        return slab
    n = joint.normal * (half + 1.0)
    px = np.broadcast_to(x, slab.shape)[idx]
    py = np.broadcast_to(y, slab.shape)[idx]
    pz = np.broadcast_to(z, slab.shape)[idx]
    u, t = sacrum.curved(py - n[1], pz - n[2])
    sac_sd, _, _ = sacrum_fields(sacrum, (px - n[0]).astype(np.float32), u, t)
    ili_sd, _ = _hip_bone_sdf(shape, shape.sign * (px + n[0]), py + n[1], pz + n[2], voxel)
    slab[idx] = (sac_sd <= 0) & (ili_sd <= 0)
    return slab


def _landmarks(frame: PelvicFrame, shape: IliumShape) -> dict[str, NDArray[np.float64]]:
    side = shape.side
    joint = shape.joint
    k = shape.scale
    post_yz = shape.icd_posterior
    ant_yz = post_yz + ICD_LENGTH_MM * k * shape.icd_direction

    def wall(yv: float) -> float:
        return float(np.interp(yv, shape.wall_y, shape.wall_x) * shape.width_scale)

    ref = {
        f"icd_line_{side}_posterior": shape.point(post_yz[0], post_yz[1], wall(post_yz[0])),
        f"icd_line_{side}_anterior": shape.point(ant_yz[0], ant_yz[1], wall(ant_yz[0])),
        f"psis_{side}": _on_edge(shape, np.array(PSIS_YZ) * k, x_offset=0.0),
        f"asis_{side}": shape.point(*shape.outline[0]),
        f"iliac_crest_top_{side}": _on_edge(shape, shape.outline[4], x_offset=0.0),
        f"sciatic_notch_{side}": _on_edge(shape, np.array(NOTCH_YZ) * k, x_offset=0.0),
    }
    samples = joint.surface_samples_ref(2.0)
    out = {name: frame.lps_from_ref(p) for name, p in ref.items()}
    out[f"sij_surface_{side}"] = frame.lps_from_ref(samples)
    out[f"sij_center_{side}"] = frame.lps_from_ref(samples.mean(axis=0))
    return out


def symphysis_superior_ref(scale: float) -> NDArray[np.float64]:
    """PRF point of the superior border of the pubic symphysis (midline top of the pubic body)."""
    c, r = np.array(PUBIC_BODY_CENTER) * scale, np.array(PUBIC_BODY_RADII) * scale
    return np.array([0.0, c[1], c[2] + r[2]])


def _on_edge(shape: IliumShape, yz: NDArray[np.float64], x_offset: float) -> NDArray[np.float64]:
    """The outline point (y, z) with x on the plate (or the posterior block near the joint)."""
    y, z = float(yz[0]), float(yz[1])
    joint = shape.joint
    # Lateral position of the joint plane at (y, z), plus half the posterior block.
    n = joint.normal
    v = joint.vertex_ref
    x_plane = v[0] - (n[1] * (y - v[1]) + n[2] * (z - v[2])) / n[0]
    x_mid = float(shape.mid_x(np.array(y), np.array(z)))
    x = abs(x_plane) + 12.0 * shape.scale if y > 30.0 * shape.scale else x_mid
    return np.array([shape.sign * (x + x_offset), y, z])
