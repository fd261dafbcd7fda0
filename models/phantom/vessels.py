"""Great vessels in front of the lumbar spine and the SI joints, as tubes along smooth centrelines.

Aorta (left of the midline, on the vertebral bodies) down to its bifurcation at L4; inferior vena
cava on the right; common iliac arteries to their division in front of each sacroiliac joint;
internal iliac arteries diving posteriorly toward the greater sciatic notch; external iliac
arteries along the pelvic brim to the mid-inguinal point; common iliac veins behind the arteries,
the left one crossing in front of L5 to the caval confluence (where it is compressed, ≈8.5 mm).

Numbers (anatomy.md): bifurcation most often at L4; common iliac arteries 10–12 mm in diameter,
≈41–44 mm long, dividing in front of the SI joints; left common iliac vein ≈8.5 mm; the right
common iliac artery lies on average 7 mm from the L5 body. Aorta ≈20 mm, IVC ≈22 mm, internal
iliac ≈7 mm, external iliac ≈8 mm (approx.). Unenhanced blood: +40…+60 HU.

Positions come from the lumbar layout in ``anchors.extra`` (``L1_body_center``…``L5_body_center``,
``L4_inferior_endplate_center``) when present, otherwise from a nominal spine stacked on the S1
endplate; the iliac vessels use the pelvic frame and joints of :mod:`models.phantom.sacrum`.
With ``skeleton="real"`` every control point comes from the placed real bones instead
(models.phantom.real_soft) and each sampled centreline is pushed out of the bones.
Tubes are painted by stamping balls of the local radius every 0.5 mm along a Catmull–Rom spline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.labels import SIDES
from fluorosim.models.phantom.parts import (
    PRIORITY_VESSEL,
    Anchors,
    Grid,
    Painted,
    PartResult,
    PatientParameters,
)
from fluorosim.models.phantom.pelvis import HIP_CENTER
from fluorosim.models.phantom.sacrum import PelvicFrame, jitter, sacroiliac_joints, size_scale

BLOOD_HU = 50.0
AORTA_DIAMETER_MM = 20.0
IVC_DIAMETER_MM = 22.0
COMMON_ILIAC_ARTERY_DIAMETER_MM = 11.0
INTERNAL_ILIAC_ARTERY_DIAMETER_MM = 7.0
EXTERNAL_ILIAC_ARTERY_DIAMETER_MM = 8.0
COMMON_ILIAC_VEIN_DIAMETER_MM = {"left": 8.5, "right": 12.0}
#: Gap between the right common iliac artery wall and the L5 body (anatomy.md: on average 7 mm).
RIGHT_CIA_TO_L5_MM = 7.0
#: Nominal L5 body half width / half depth (anatomy.md: L5 endplate depth 35.7; width ≈49) used to
#: place the right common iliac artery when the lumbar part does not publish the body outline.
L5_HALF_WIDTH_MM = 24.75
L5_HALF_DEPTH_MM = 17.75
#: Direction (from anterior, toward the right) at which the right CIA passes the L5 body: anterolateral,
#: clear of the caval confluence in front of the body.
RIGHT_CIA_PASS_DEG = 55.0
LEVELS = ("L1", "L2", "L3", "L4", "L5")
#: Height of the common iliac division above the joint's anterior-superior corner (in front of
#: the upper SI joint; higher sends the internal iliac through the ala).
DIVISION_ABOVE_JOINT_MM = 10.0
#: Where the internal iliac artery ends on the real skeleton, from the deepest point of the
#: greater sciatic notch (medial, anterior, cranial mm): at the upper margin of the greater sciatic
#: foramen, where it divides (Gray's Anatomy 2020), inside the pelvic wall. Ending 15 mm anterior
#: and 12 mm above the notch left it running in front of the SI joint, barely deeper than the
#: external iliac at the division.
INTERNAL_ILIAC_END_FROM_NOTCH_MM = (12.0, 6.0, 4.0)
VEINS = frozenset({"vena_cava", "common_iliac_vein_left", "common_iliac_vein_right"})

Vec = NDArray[np.float64]
#: A sampled centreline: points (N,3) LPS mm and the radius at each.
Centerline = tuple[NDArray[np.float64], NDArray[np.float64]]


@dataclass(frozen=True)
class Vessel:
    """A labelled tube: control points (LPS mm) and the radius at each control point."""

    label: str
    points: NDArray[np.float64]
    radii: NDArray[np.float64]
    #: Centreline samples (every ≈0.5 mm) and radii already placed (on the real skeleton: pushed
    #: out of the bones); None → the spline through ``points``.
    samples: Centerline | None = None

    def centerline(self, step_mm: float = 0.5) -> Centerline:
        """Points every ≈step_mm along the Catmull–Rom spline, with interpolated radii."""
        if self.samples is not None:
            return self.samples
        return catmull_rom(self.points, self.radii, step_mm)


def catmull_rom(
    points: NDArray[np.float64], radii: NDArray[np.float64], step_mm: float
) -> Centerline:
    """A centripetal-free (uniform) Catmull–Rom spline through ``points``, sampled every step."""
    p = np.asarray(points, dtype=np.float64)
    r = np.asarray(radii, dtype=np.float64)
    padded = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out_p, out_r = [], []
    for i in range(len(p) - 1):
        p0, p1, p2, p3 = padded[i : i + 4]
        n = max(2, int(math.ceil(np.linalg.norm(p2 - p1) / step_mm)))
        t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
        seg = 0.5 * (
            2 * p1
            + (-p0 + p2) * t
            + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
            + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
        )
        out_p.append(seg)
        out_r.append(r[i] + (r[i + 1] - r[i]) * t[:, 0])
    out_p.append(p[-1:])
    out_r.append(r[-1:])
    return np.vstack(out_p), np.concatenate(out_r)


def stamp_tube(
    grid: Grid, centers: NDArray[np.float64], radii: NDArray[np.float64]
) -> tuple[tuple[slice, slice, slice], NDArray[np.bool_]] | None:
    """(box, mask) of the voxels within the local radius of a sampled centreline, or None."""
    voxel = grid.voxel_mm
    origin = np.array([grid.x_mm[0], grid.y_mm[0], grid.z_mm[0]])
    shape = np.array(grid.shape)
    reach = int(math.ceil(float(radii.max()) / voxel)) + 1
    lo = np.floor((centers.min(axis=0) - origin) / voxel).astype(int) - reach
    hi = np.ceil((centers.max(axis=0) - origin) / voxel).astype(int) + reach + 1
    lo = np.clip(lo, 0, shape)
    hi = np.clip(hi, 0, shape)
    if np.any(hi <= lo):
        return None
    # Balls closer than a quarter radius apart add nothing visible (scallops < 1.5 % of r).
    keep = [0]
    for i in range(1, len(centers)):
        spacing = np.linalg.norm(centers[i] - centers[keep[-1]])
        if spacing >= max(0.25 * radii[i], 0.5 * voxel) or i == len(centers) - 1:
            keep.append(i)
    centers, radii = centers[keep], radii[keep]
    mask = np.zeros(tuple(hi - lo), dtype=bool)
    g = np.arange(-reach, reach + 1)
    offsets = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    for center, radius in zip(centers, radii, strict=True):
        base = np.rint((center - origin) / voxel).astype(int)
        idx = base + offsets
        delta = origin + idx * voxel - center
        inside = np.einsum("ij,ij->i", delta, delta) <= radius * radius
        idx = idx[inside] - lo
        ok = np.all((idx >= 0) & (idx < hi - lo), axis=1)
        idx = idx[ok]
        mask[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    if not mask.any():
        return None
    sx, sy, sz = (slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    return (sx, sy, sz), mask


def _spine_centres(anchors: Anchors) -> dict[str, NDArray[np.float64]]:
    """Body centres L1–L5 from the lumbar anchors, or a nominal stack on the S1 endplate."""
    extra = anchors.extra
    if all(f"{lv}_body_center" in extra for lv in LEVELS):
        return {lv: np.asarray(extra[f"{lv}_body_center"], dtype=np.float64) for lv in LEVELS}
    origin = np.asarray(anchors.s1_endplate_center_mm, dtype=np.float64)
    normal = np.asarray(anchors.s1_endplate_normal, dtype=np.float64)
    normal = normal / np.linalg.norm(normal)
    centres = {}
    point = origin + 27.0 * normal  # L5-S1 disc 13 + half the L5 body 14 (anatomy.md)
    axis = normal
    for level in reversed(LEVELS):
        centres[level] = point.copy()
        # Each level up turns posteriorly by ≈10° (lordosis) and rises 42 mm (body + disc).
        c, s = math.cos(math.radians(10.0)), math.sin(math.radians(10.0))
        axis = np.array([0.0, c * axis[1] + s * axis[2], -s * axis[1] + c * axis[2]])
        point = point + 42.0 * axis
    return centres


#: Exponent of the anterior half of the lumbar body's superelliptic cross-section (lumbar.py).
L5_OUTLINE_EXPONENT = 2.3


def _superellipse_radius(half_width: float, half_depth: float, angle_deg: float) -> float:
    """Radius of the body outline at ``angle_deg`` from anterior toward the side."""
    a = math.radians(angle_deg)
    p = L5_OUTLINE_EXPONENT
    radius: float = (abs(math.sin(a) / half_width) ** p + abs(math.cos(a) / half_depth) ** p) ** (
        -1 / p
    )
    return radius


def l5_body_outline(
    params: PatientParameters, anchors: Anchors, centre: NDArray[np.float64]
) -> tuple[Vec, Vec, Vec, float, float]:
    """(centre, left axis, posterior axis, half width, half depth) of the L5 body's cross-section.

    The lumbar part's own layout when it is the one the anchors came from (same L5 centre),
    otherwise the nominal L5 (anatomy.md) around ``centre`` on the anchors' L5 or S1 axis.
    """
    try:
        from fluorosim.models.phantom.lumbar import lumbar_layout

        layout = lumbar_layout(params)
        frame, dims = layout.body_frames["L5"], layout.levels["L5"]
        if np.linalg.norm(np.asarray(frame.origin) - centre) < 1.0:
            return (
                np.asarray(frame.origin, dtype=np.float64),
                np.asarray(frame.eu, dtype=np.float64),
                np.asarray(frame.ev, dtype=np.float64),
                dims.body_width_mm / 2,
                dims.body_depth_mm / 2,
            )
    except (ImportError, AttributeError, KeyError):
        pass
    axis = anchors.extra.get("L5_axis", anchors.s1_endplate_normal)
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    left = np.array([1.0, 0.0, 0.0])
    posterior = np.cross(axis, left)
    k = size_scale(params)
    return centre, left, posterior, L5_HALF_WIDTH_MM * k, L5_HALF_DEPTH_MM * k


def vessel_tree(params: PatientParameters, anchors: Anchors) -> tuple[list[Vessel], dict[str, Vec]]:
    """The vessels' centrelines (LPS) and the landmarks they define."""
    if params.skeleton == "real":
        return _real_vessel_tree(params, anchors)
    rng = params.rng("vessels")
    k = size_scale(params)
    frame = PelvicFrame.from_anchors(anchors)
    joints = sacroiliac_joints(params)
    centres = _spine_centres(anchors)
    l4, l5 = centres["L4"], centres["L5"]
    front = L5_HALF_DEPTH_MM * k

    r_aorta = AORTA_DIAMETER_MM / 2 * k * jitter(rng, 0.08)
    r_ivc = IVC_DIAMETER_MM / 2 * k * jitter(rng, 0.08)
    r_cia = COMMON_ILIAC_ARTERY_DIAMETER_MM / 2 * k * jitter(rng, 0.05)
    r_iia = INTERNAL_ILIAC_ARTERY_DIAMETER_MM / 2 * k * jitter(rng, 0.08)
    r_eia = EXTERNAL_ILIAC_ARTERY_DIAMETER_MM / 2 * k * jitter(rng, 0.08)
    gap = float(np.clip(RIGHT_CIA_TO_L5_MM + 1.0 * rng.standard_normal(), 5.0, 9.0))

    # Aorta: anterior-left on the bodies, from above L1 to the bifurcation at lower L4.
    def anterior_of(centre: Vec, x_mm: float, radius: float, extra_mm: float = 2.0) -> Vec:
        point: Vec = centre + np.array([x_mm, -(front + extra_mm + radius), 0.0])
        return point

    l4_low = anchors.extra.get("L4_inferior_endplate_center")
    bif_z = (float(l4_low[2]) + 4.0) if l4_low is not None else float(l4[2]) - 10.0
    bif_z += 4.0 * float(np.clip(rng.standard_normal(), -2, 2))
    bifurcation = np.array([l4[0] + 4.0, l4[1] - (front + gap + r_cia), bif_z])
    aorta_points = [anterior_of(centres[lv], 12.0, r_aorta) for lv in ("L1", "L2", "L3")]
    aorta_points.insert(0, aorta_points[0] + (aorta_points[0] - aorta_points[1]) * 0.7)
    aorta_points.append(bifurcation + np.array([2.0, -(r_aorta - r_cia), 8.0]))
    aorta_points.append(bifurcation)
    vessels = [
        Vessel("aorta", np.array(aorta_points), np.r_[[r_aorta] * 5, r_aorta * 0.85]),
    ]

    # Division points in front of each SI joint (anterior-superior margin of the joint, 16 mm
    # anterior, 8 mm medial and DIVISION_ABOVE_JOINT_MM cranial of it), the internal iliac toward
    # the sciatic notch, the external iliac along the brim to the mid-inguinal point.
    landmarks: dict[str, NDArray[np.float64]] = {"aortic_bifurcation": bifurcation}
    division = {}
    for side, joint in joints.items():
        sign = 1.0 if side == "left" else -1.0
        corner = frame.lps_from_ref(joint.point_ref(joint.half_width_mm, joint.half_width_mm))
        division[side] = corner + np.array([-sign * 8.0, -16.0 * k, DIVISION_ABOVE_JOINT_MM * k])
        # The internal iliac ends medial to the pelvic wall at the top of the sciatic notch.
        notch = frame.lps_from_ref(np.array([sign * 40.0 * k, 14.0 * k, -74.0 * k]))
        hip = np.array(HIP_CENTER) * k
        inguinal = frame.lps_from_ref(
            np.array([sign * (hip[0] - 20.0), hip[1] - 45.0, hip[2] + 5.0])
        )
        brim = frame.lps_from_ref(np.array([sign * (hip[0] - 38.0), hip[1] - 18.0, hip[2] + 45.0]))
        internal = np.array([division[side], 0.5 * (division[side] + notch) + [0, 6.0, 4.0], notch])
        vessels.append(
            Vessel(
                f"internal_iliac_artery_{side}",
                internal,
                np.array([r_iia * 1.1, r_iia, r_iia * 0.8]),
            )
        )
        vessels.append(
            Vessel(
                f"external_iliac_artery_{side}",
                np.array([division[side], brim, inguinal]),
                np.array([r_eia, r_eia, r_eia * 0.95]),
            )
        )

    # Common iliac arteries: the right one passes the L5 body at ``gap`` from its surface.
    angle = RIGHT_CIA_PASS_DEG
    centre5, left5, posterior5, half_w5, half_d5 = l5_body_outline(params, anchors, l5)
    # +1 mm: the spline between the pass points cuts ≈1 mm inside the convex body outline.
    reach = _superellipse_radius(half_w5, half_d5, angle) + gap + r_cia + 1.0
    a = math.radians(angle)
    past_l5 = centre5 + reach * (-math.sin(a) * left5 - math.cos(a) * posterior5)
    # …and keeps that gap over the top of L5 (the upper endplate rim bulges forward).
    a_top = math.radians(20.0)
    reach_top = _superellipse_radius(half_w5, half_d5, 20.0) + gap + r_cia + 1.0
    axis5 = np.cross(left5, posterior5)
    over_top = (
        centre5
        + 12.0 * k * axis5
        + reach_top * (-math.sin(a_top) * left5 - math.cos(a_top) * posterior5)
    )
    a_mid = math.radians(0.5 * (20.0 + angle))
    reach_mid = _superellipse_radius(half_w5, half_d5, math.degrees(a_mid)) + gap + r_cia + 1.5
    between = (
        centre5
        + 6.0 * k * axis5
        + reach_mid * (-math.sin(a_mid) * left5 - math.cos(a_mid) * posterior5)
    )
    vessels.append(
        Vessel(
            "common_iliac_artery_right",
            np.array([bifurcation, over_top, between, past_l5, division["right"]]),
            np.full(5, r_cia),
        )
    )
    left_mid = 0.5 * (bifurcation + division["left"]) + np.array([4.0, -4.0, 0.0])
    vessels.append(
        Vessel(
            "common_iliac_artery_left",
            np.array([bifurcation, left_mid, division["left"]]),
            np.full(3, r_cia),
        )
    )
    landmarks["common_iliac_artery_right_at_L5"] = past_l5

    # Veins: IVC right of the aorta; confluence at L5, to the right of the midline; the left
    # common iliac vein crosses in front of lower L5, behind the right common iliac artery.
    r_civ = {
        s: COMMON_ILIAC_VEIN_DIAMETER_MM[s] / 2 * k * jitter(rng, 0.06) for s in ("left", "right")
    }
    confluence = np.array([l5[0] - 6.0, l5[1] - (front + 1.0 + r_ivc * 0.8), l5[2] - 12.0])
    ivc_points = [anterior_of(centres[lv], -20.0, r_ivc, 1.0) for lv in ("L1", "L2", "L3", "L4")]
    ivc_points.insert(0, ivc_points[0] + (ivc_points[0] - ivc_points[1]) * 0.7)
    ivc_points.append(confluence)
    vessels.append(Vessel("vena_cava", np.array(ivc_points), np.full(len(ivc_points), r_ivc)))
    for side in ("left", "right"):
        sign = 1.0 if side == "left" else -1.0
        end = division[side] + np.array([-sign * 5.0, 12.0, -6.0])
        if side == "left":
            across = l5 + np.array([-2.0, -(front + 1.0 + r_civ[side]), -10.0])
            points = np.array([confluence, across, 0.5 * (across + end) + [8.0, 0, 0], end])
        else:
            points = np.array([confluence, 0.5 * (confluence + end) + [0.0, -2.0, 0], end])
        vessels.append(
            Vessel(f"common_iliac_vein_{side}", points, np.full(len(points), r_civ[side]))
        )
    return vessels, landmarks


def vessels_part(grid: Grid, params: PatientParameters, anchors: Anchors) -> PartResult:
    """Paint the aorta, vena cava and iliac vessels; landmark ``aortic_bifurcation``."""
    vessels, landmarks = vessel_tree(params, anchors)
    result = PartResult(landmarks={"aortic_bifurcation": landmarks["aortic_bifurcation"]})
    for vessel in vessels:
        centers, radii = vessel.centerline(0.5)
        stamped = stamp_tube(grid, centers, radii)
        if stamped is None:
            continue
        box, mask = stamped
        # Arteries win over veins where they touch: the artery indents the vein (as the right
        # common iliac artery compresses the left common iliac vein).
        priority = PRIORITY_VESSEL if vessel.label in VEINS else PRIORITY_VESSEL + 1
        result.pieces.append(Painted(vessel.label, box, mask, BLOOD_HU, priority))
    return result


def _real_vessel_tree(
    params: PatientParameters, anchors: Anchors
) -> tuple[list[Vessel], dict[str, Vec]]:
    """The vessels on the real skeleton: every control point from the placed bones
    (models.phantom.real_soft), then each centreline pushed out of the bones."""
    from fluorosim.models.phantom.real_skeleton import placed_skeleton
    from fluorosim.models.phantom.real_soft import (
        BoneDistance,
        acetabula,
        body_front,
        front_y_at,
        l5_pass_point,
        push_out_of_bone,
        sij_front_corner,
    )

    skeleton = placed_skeleton(params)
    frames = skeleton.frames
    marks = skeleton.landmarks
    rng = params.rng("vessels")
    k = size_scale(params)
    r_aorta = AORTA_DIAMETER_MM / 2 * k * jitter(rng, 0.08)
    r_ivc = IVC_DIAMETER_MM / 2 * k * jitter(rng, 0.08)
    r_cia = COMMON_ILIAC_ARTERY_DIAMETER_MM / 2 * k * jitter(rng, 0.05)
    r_iia = INTERNAL_ILIAC_ARTERY_DIAMETER_MM / 2 * k * jitter(rng, 0.08)
    r_eia = EXTERNAL_ILIAC_ARTERY_DIAMETER_MM / 2 * k * jitter(rng, 0.08)
    gap = float(np.clip(RIGHT_CIA_TO_L5_MM + 1.0 * rng.standard_normal(), 5.0, 9.0))
    bif_jitter = 4.0 * float(np.clip(rng.standard_normal(), -2, 2))

    def on_front(level: str, u_mm: float, radius: float, extra_mm: float = 2.0) -> Vec:
        v = body_front(skeleton, level, u_mm) - extra_mm - radius
        return frames[level].point(u_mm, v, 0.0)

    # Bifurcation in front of the lower L4 body (anatomy.md: most often at L4), slightly left:
    # 4 mm above the L4 inferior endplate centre's height (± jitter), in front of the bone there.
    l4 = frames["L4"]
    bif_z = float(skeleton.endplates["L4"][1][2]) + 4.0 + bif_jitter
    bifurcation = np.array([4.0, front_y_at(skeleton, 4.0, bif_z) - (gap + r_cia), bif_z])
    aorta_points = [on_front(lv, 12.0, r_aorta) for lv in ("L1", "L2", "L3")]
    aorta_points.insert(0, aorta_points[0] + (aorta_points[0] - aorta_points[1]) * 0.7)
    aorta_points.append(bifurcation + l4.vector(2.0, -(r_aorta - r_cia), 8.0))
    aorta_points.append(bifurcation)
    vessels = [Vessel("aorta", np.array(aorta_points), np.r_[[r_aorta] * 5, r_aorta * 0.85])]
    landmarks: dict[str, NDArray[np.float64]] = {"aortic_bifurcation": bifurcation}

    division = {}
    for side in SIDES:
        sign = 1.0 if side == "left" else -1.0
        corner = sij_front_corner(skeleton, side)
        division[side] = corner + np.array([-sign * 8.0, -16.0 * k, DIVISION_ABOVE_JOINT_MM * k])
        notch = np.asarray(marks[f"sciatic_notch_{side}"], float)
        # the internal iliac ends at the upper margin of the greater sciatic foramen, medial to
        # the pelvic wall (then pushed clear of the bone with everything else)
        medial, anterior, cranial = INTERNAL_ILIAC_END_FROM_NOTCH_MM
        notch_in = notch + np.array([-sign * medial, -anterior, cranial])
        asis = np.asarray(marks[f"asis_{side}"], float)
        symphysis = np.asarray(marks["pubic_symphysis_superior"], float)
        inguinal = 0.5 * (asis + symphysis) + np.array([0.0, 4.0, -6.0])
        brim_mark = marks.get(f"icd_line_{side}_anterior")
        brim = (
            np.asarray(brim_mark, float) + np.array([-sign * 6.0, -12.0, 10.0])
            if brim_mark is not None
            else 0.5 * (division[side] + inguinal) + np.array([0.0, -10.0, 0.0])
        )
        # …descending in front of the SI joint (not into the joint's cleft)
        internal = np.array(
            [division[side], 0.5 * (division[side] + notch_in) + [-sign * 4.0, -8.0, 0.0], notch_in]
        )
        vessels.append(
            Vessel(
                f"internal_iliac_artery_{side}",
                internal,
                np.array([r_iia * 1.1, r_iia, r_iia * 0.8]),
            )
        )
        vessels.append(
            Vessel(
                f"external_iliac_artery_{side}",
                np.array([division[side], brim, inguinal]),
                np.array([r_eia, r_eia, r_eia * 0.95]),
            )
        )

    # Right common iliac artery: passes the real L5 body at ``gap`` from its surface (+3 mm: the
    # spline between the pass points cuts inside the real, less convex outline).
    past_l5 = l5_pass_point(skeleton, RIGHT_CIA_PASS_DEG, gap + r_cia + 3.0)
    between = l5_pass_point(skeleton, 0.5 * (20.0 + RIGHT_CIA_PASS_DEG), gap + r_cia + 3.5, 6.0 * k)
    over_top = l5_pass_point(skeleton, 20.0, gap + r_cia + 3.0, 12.0 * k)
    vessels.append(
        Vessel(
            "common_iliac_artery_right",
            np.array([bifurcation, over_top, between, past_l5, division["right"]]),
            np.full(5, r_cia),
        )
    )
    left_mid = 0.5 * (bifurcation + division["left"]) + np.array([4.0, -4.0, 0.0])
    vessels.append(
        Vessel(
            "common_iliac_artery_left",
            np.array([bifurcation, left_mid, division["left"]]),
            np.full(3, r_cia),
        )
    )
    landmarks["common_iliac_artery_right_at_L5"] = past_l5

    # Veins: IVC right-anterior on the bodies; the confluence in front of L5 right of the
    # midline; the left common iliac vein crosses in front of lower L5 behind the right CIA.
    r_civ = {
        s: COMMON_ILIAC_VEIN_DIAMETER_MM[s] / 2 * k * jitter(rng, 0.06) for s in ("left", "right")
    }
    l5 = frames["L5"]
    confluence = l5.point(-6.0, body_front(skeleton, "L5", -6.0) - 1.0 - r_ivc * 0.8, -12.0 * k)
    ivc_points = [on_front(lv, -20.0, r_ivc, 1.0) for lv in ("L1", "L2", "L3", "L4")]
    ivc_points.insert(0, ivc_points[0] + (ivc_points[0] - ivc_points[1]) * 0.7)
    ivc_points.append(confluence)
    vessels.append(Vessel("vena_cava", np.array(ivc_points), np.full(len(ivc_points), r_ivc)))
    for side in SIDES:
        sign = 1.0 if side == "left" else -1.0
        end = division[side] + np.array([-sign * 5.0, 12.0, -6.0])
        if side == "left":
            across = l5.point(-2.0, body_front(skeleton, "L5", -2.0) - 1.0 - r_civ[side], -10.0)
            points = np.array([confluence, across, 0.5 * (across + end) + [8.0, 0, 0], end])
        else:
            points = np.array([confluence, 0.5 * (confluence + end) + [0.0, -2.0, 0], end])
        vessels.append(
            Vessel(f"common_iliac_vein_{side}", points, np.full(len(points), r_civ[side]))
        )

    # the femoral heads fill the acetabula (radius + 1 mm of cartilage)
    bones = BoneDistance(skeleton, [(c, r + 1.0) for c, r in acetabula(anchors.extra).values()])
    placed = []
    for vessel in vessels:
        centers, radii = vessel.centerline(0.5)
        samples = (push_out_of_bone(bones, centers, radii), radii)
        placed.append(replace(vessel, samples=samples))
    return placed, landmarks
