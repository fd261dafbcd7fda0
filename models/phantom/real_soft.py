"""Where the soft tissue and great vessels go on the real skeleton: landmarks measured on its bones.

With ``PatientParameters(skeleton="real")`` the psoas, paraspinals, bowel cavity and vessels are
placed from the placed template bones (:func:`models.phantom.real_skeleton.placed_skeleton`), never
from constants tied to one geometry, so they follow the warp (lordosis, sacral slope, size):

- *psoas*: per lumbar level, against the body's lateral surface (its outline at mid-height) and in
  front of the transverse process; over the pelvic brim (the arcuate line's anterior end) and in
  front of the femoral head toward the lesser trochanter (Gray's Anatomy, 42nd ed., psoas major:
  origin from the lateral surfaces of the bodies T12–L5 and the transverse processes, passes
  beneath the inguinal ligament anterior to the hip joint to the lesser trochanter);
- *paraspinals* (erector spinae + multifidus): in the laminar gutter, from the dorsal surface of
  the laminae and articular processes back to the level of the spinous tips, down over the
  sacral dorsum (Gray's Anatomy, 42nd ed., deep muscles of the back);
- *vessels*: aorta left-anterior and IVC right-anterior on the bodies, the bifurcation in front of
  lower L4 (anatomy.md: most often at L4), the common iliac arteries dividing in front of the
  SI joints, the right one ≈7 mm from the L5 body (anatomy.md), internal iliacs toward the greater
  sciatic notch, external iliacs along the pelvic brim to the mid-inguinal point (midway between
  the ASIS and the pubic symphysis);
- *cavity and bowel*: in front of the real bodies and the sacrum's anterior surface, as wide as
  the pelvic brim in the true pelvis, up to the iliac crests' height for the false pelvis.

Every tube is then pushed out of the bones (:class:`BoneDistance`, a signed distance from the
placed surfaces) so no vessel or muscle centreline runs inside bone whatever the warp does.

Soft-tissue CT numbers and bowel-gas statistics measured once on the real abdominal-pelvic CT
shipped with the real-anatomy data (TotalSegmentator example CT, Wasserthal et al., Radiology: AI
2023, CC BY 4.0; 3 mm voxels, L1 to the femoral heads), by the script in this docstring's spirit:
body = largest connected region above −300 HU with holes filled, eroded 2 voxels; histograms
inside it; gas = HU < −500 inside it, below the top of the L1 mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from fluorosim.models.labels import LUMBAR_LEVELS, SIDES
from fluorosim.models.phantom.real_skeleton import (
    PlacedSkeleton,
    _local,
    outline_radius,
    radial_outline,
)
from fluorosim.models.template.warp_geometry import vertex_normals

Vec = NDArray[np.float64]

# --- numbers measured on the real CT (TotalSegmentator example CT; see the module docstring) -------
#: Fat: histogram peak −102 HU, median −95 HU (IQR −110…−73) of −200…−30 HU voxels inside the body.
CT_FAT_HU = -95.0
#: Soft tissue (0…100 HU voxels inside the body): median +32 HU (IQR 18…46); at 3 mm voxels the
#: muscles are partial-volumed with fat, so muscle keeps anatomy.md's +40…+60 (50).
CT_SOFT_TISSUE_HU = 32.0
#: Bowel gas: median −971 HU of the gas voxels.
CT_BOWEL_GAS_HU = -971.0
#: Gas area as a fraction of the body's cross-section, L2–L4 level: 2–5.6 % (mean ≈ 4 %); in the
#: true pelvis of that patient < 1 %.
CT_GAS_SECTION_FRACTION = 0.04
#: Gas pockets: 124 pockets; equivalent diameters median ≈ 4 mm (single 3 mm voxels), 90th
#: percentile 11 mm, the largest (colon) ≈ 70 mm.
CT_GAS_POCKET_P90_MM = 11.0
#: The share of the bowel that is gas so that gas ≈ CT_GAS_SECTION_FRACTION of the section when
#: the bowel fills ≈ 60 % of a cavity of ≈ 40 % of the section (≈ 17 % of the bowel).
REAL_GAS_FRACTION_OF_BOWEL = CT_GAS_SECTION_FRACTION / (0.6 * 0.4)
#: Gas area as a fraction of the body's cross-section by height above the S1 superior endplate
#: (mm): the same CT in 10 mm slabs (body = largest region above −500 HU, holes filled), smoothed
#: over two slabs. The colon and small bowel of the abdomen hold the gas (4.6–5.2 % at L2–L3,
#: 1–1.4 % at L4); the true pelvis, filled by the bladder, the rectum and the sigmoid, holds
#: almost none (0.01–0.06 % from 50 mm under S1 down to the femoral heads; 0.15–0.5 % at S1–S2).
CT_GAS_PROFILE_ABOVE_S1_MM = (-60.0, -40.0, -20.0, 0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0)
CT_GAS_PROFILE_SECTION_FRACTION = (
    0.0005,
    0.003,
    0.003,
    0.005,
    0.011,
    0.025,
    0.046,
    0.051,
    0.047,
    0.029,
    0.028,
)


def ct_gas_section_fraction(above_s1_mm: NDArray[np.floating[Any]]) -> Vec:
    """The real CT's gas share of the body's section at heights above the S1 endplate (mm),
    held at the ends of the measured range."""
    fraction: Vec = np.interp(
        above_s1_mm, CT_GAS_PROFILE_ABOVE_S1_MM, CT_GAS_PROFILE_SECTION_FRACTION
    ).astype(np.float64)
    return fraction


#: Psoas radius at L1…L5 (approx.; a tube of ≈ 14 cm² at L5 in an average adult).
PSOAS_RADII_MM = (6.0, 9.0, 14.0, 18.0, 21.0)
#: Gap kept between a tube's wall and the nearest bone surface (mesh sampling ≈ 1 mm).
BONE_CLEARANCE_MM = 1.5
#: Right common iliac artery to the L5 body (anatomy.md: on average 7 mm).
RIGHT_CIA_TO_L5_MM = 7.0


class BoneDistance:
    """Signed distance (mm, < 0 inside) to the placed bone surfaces, from their vertices and
    normals (mesh vertices ≈ 2–3 mm apart: accurate to ≈ 1 mm), plus optional spheres (the femoral
    heads in the acetabula, which the skeleton does not carry as meshes)."""

    def __init__(
        self, skeleton: PlacedSkeleton, spheres: list[tuple[Vec, float]] | None = None
    ) -> None:
        vertices, normals = [], []
        for mesh in skeleton.bones.values():
            vertices.append(mesh.vertices_mm)
            normals.append(vertex_normals(mesh.vertices_mm, mesh.faces))
        self.vertices = np.vstack(vertices)
        self.normals = np.vstack(normals)
        self.tree = cKDTree(self.vertices)
        self.spheres = spheres or []

    def __call__(self, points: NDArray[np.float64]) -> tuple[Vec, Vec]:
        """(signed distance, outward unit direction) at each point."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        distance, nearest = self.tree.query(points)
        offset = points - self.vertices[nearest]
        normal = self.normals[nearest]
        sign = np.where(np.einsum("ij,ij->i", offset, normal) >= 0.0, 1.0, -1.0)
        signed = sign * distance
        outward = np.where(
            (distance > 1e-6)[:, None], sign[:, None] * offset / (distance[:, None] + 1e-12), normal
        )
        for centre, radius in self.spheres:
            rel = points - centre
            d = np.linalg.norm(rel, axis=1)
            s = d - radius
            closer = s < signed
            signed = np.where(closer, s, signed)
            outward = np.where(closer[:, None], rel / (d[:, None] + 1e-12), outward)
        return signed, outward


def push_out_of_bone(
    bones: BoneDistance, centers: Vec, radii: Vec, clearance_mm: float = BONE_CLEARANCE_MM
) -> Vec:
    """Move centreline samples so each tube keeps ``radius + clearance`` from every bone surface.

    Each step moves a sample that is too close up the signed distance's gradient (central
    differences, 1 mm: in the gap between two bones it points to the middle of the gap rather
    than into the other bone) by its deficit; then a light smoothing that never moves a sample
    back too close.
    """
    centers = np.array(centers, dtype=np.float64)
    offsets = np.vstack([np.eye(3), -np.eye(3)])
    for _ in range(40):
        signed, _ = bones(centers)
        deficit = radii + clearance_mm - signed
        short = deficit > 0.05
        if not short.any():
            break
        probe = centers[short][:, None, :] + offsets[None, :, :]
        d, _ = bones(probe.reshape(-1, 3))
        d = d.reshape(-1, 6)
        gradient = 0.5 * (d[:, :3] - d[:, 3:])
        gradient /= np.linalg.norm(gradient, axis=1, keepdims=True) + 1e-9
        centers[short] += np.clip(deficit[short], 0.0, 4.0)[:, None] * gradient
        if len(centers) > 4:
            smoothed = centers.copy()
            smoothed[1:-1] = 0.25 * centers[:-2] + 0.5 * centers[1:-1] + 0.25 * centers[2:]
            signed_s, _ = bones(smoothed)
            ok = signed_s >= radii + clearance_mm
            centers = np.where(ok[:, None], smoothed, centers)
    return centers


@dataclass(frozen=True)
class RealSoftLayout:
    """Positions measured on the real bones for the soft-tissue part (LPS mm)."""

    #: (z, y) of the anterior column's centre line, L1 down the sacrum to the coccyx tip (sorted
    #: by z); on the sacrum it is 18 mm behind the anterior surface, as the bodies' centres are.
    spine_z_mm: Vec
    spine_y_mm: Vec
    #: mean height of the iliac crest tops.
    crest_z_mm: float
    #: the S1 superior endplate's height (where the false pelvis narrows to the true pelvis).
    s1_z_mm: float
    #: half width of the true pelvis at the brim (the arcuate lines' anterior ends).
    inlet_half_width_mm: float
    #: the bones' lateral reach (both hip bones) and lowest point.
    lateral_reach_mm: float
    bottom_z_mm: float
    #: the pelvic floor (levator ani, pubis to coccyx): the coccyx tip's height; the pelvic brim's
    #: height (the promontory) and the symphysis's y (the bladder lies behind it).
    pelvic_floor_z_mm: float
    brim_z_mm: float
    symphysis_y_mm: float
    #: laminar gutter: (z, front y, back y) sorted by z, and the lateral centre |x|.
    gutter_z_mm: Vec
    gutter_front_y_mm: Vec
    gutter_back_y_mm: Vec
    gutter_x_mm: Vec
    gutter_half_width_mm: Vec


def _slab(points: Vec, z: float, half_mm: float) -> Vec:
    return points[np.abs(points[:, 2] - z) < half_mm]


def sacrum_front_profile(skeleton: PlacedSkeleton, step_mm: float = 6.0) -> tuple[Vec, Vec]:
    """(z, y) of the sacrum's (and coccyx's) anterior surface in the midline, top to tip."""
    points = np.vstack([skeleton.bones["sacrum"].vertices_mm, skeleton.bones["coccyx"].vertices_mm])
    mid = points[np.abs(points[:, 0]) < 12.0]
    top = float(skeleton.endplates["S1"][0][2])
    zs, ys = [], []
    for z in np.arange(top - 4.0, mid[:, 2].min(), -step_mm):
        slab = _slab(mid, z, step_mm / 2)
        if len(slab):
            zs.append(z)
            ys.append(float(slab[:, 1].min()))
    return np.array(zs), np.array(ys)


def gutter_profile(skeleton: PlacedSkeleton) -> tuple[Vec, Vec, Vec, Vec, Vec]:
    """(z, front y, back y, centre |x|, half width) of the paraspinal muscles per level and down
    the sacrum.

    Front: the dorsal surface of the laminae and articular processes (the most posterior bone
    10–35 mm from the midline in a 20 mm slab at the level); back: 8 mm behind the spinous tip
    (the erectors bulge past the tips, which sit in the groove between them); across: from the
    spinous process (6 mm from the midline) to 15 mm beyond the transverse process tip
    (iliocostalis lateral to it) (approx.).
    """
    rows = []
    for level in LUMBAR_LEVELS:
        bone = skeleton.bones[level].vertices_mm
        frame = skeleton.frames[level]
        local = _local(frame, bone)
        tip = skeleton.landmarks.get(f"{level}_spinous_tip")
        if tip is None:
            mid = np.abs(local[:, 0]) < 6.0
            tip = bone[mid][np.argmax(local[mid, 1])]
        gutter = (np.abs(bone[:, 0]) > 10.0) & (np.abs(bone[:, 0]) < 35.0)
        gutter &= bone[:, 1] > frame.origin[1] + 10.0
        z = float(frame.origin[2])
        slab = _slab(bone[gutter], z + 4.0, 10.0)
        if not len(slab):
            continue
        front = float(slab[:, 1].max())
        back = max(float(tip[1]) + 8.0, front + 20.0)
        tp = float(np.abs(local[:, 0]).max())
        rows.append((z, front, back, 0.5 * (6.0 + tp + 15.0), 0.5 * (tp + 9.0)))
    sacrum = skeleton.bones["sacrum"].vertices_mm
    top = float(skeleton.endplates["S1"][0][2])
    for depth in (10.0, 30.0, 50.0, 70.0):
        z = top - depth
        slab = _slab(sacrum[(np.abs(sacrum[:, 0]) > 8.0) & (np.abs(sacrum[:, 0]) < 35.0)], z, 6.0)
        if not len(slab):
            continue
        front = float(slab[:, 1].max())
        thick = max(10.0, 28.0 - 0.3 * depth)
        centre = 28.0 - 0.12 * depth
        rows.append((z, front, front + thick, centre, centre - 6.0))
    rows.sort()
    table = np.array(rows)
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4]


def real_soft_layout(skeleton: PlacedSkeleton) -> RealSoftLayout:
    """The soft-tissue part's positions measured on the placed real bones."""
    marks = skeleton.landmarks
    zs = [float(skeleton.frames[lv].origin[2]) for lv in LUMBAR_LEVELS]
    ys = [float(skeleton.frames[lv].origin[1]) for lv in LUMBAR_LEVELS]
    front_z, front_y = sacrum_front_profile(skeleton)
    zs += list(front_z)
    ys += list(front_y + 18.0)
    order = np.argsort(zs)
    crest = [
        float(marks[f"iliac_crest_top_{s}"][2]) for s in SIDES if f"iliac_crest_top_{s}" in marks
    ]
    if not crest:
        crest = [float(skeleton.bones[f"hip_{s}"].vertices_mm[:, 2].max()) for s in SIDES]
    brim = [
        abs(float(marks[f"icd_line_{s}_anterior"][0]))
        for s in SIDES
        if f"icd_line_{s}_anterior" in marks
    ]
    hips = np.vstack([skeleton.bones[f"hip_{s}"].vertices_mm for s in SIDES])
    all_bone = np.vstack([m.vertices_mm for m in skeleton.bones.values()])
    gz, gf, gb, gx, gw = gutter_profile(skeleton)
    return RealSoftLayout(
        spine_z_mm=np.asarray(zs, float)[order],
        spine_y_mm=np.asarray(ys, float)[order],
        crest_z_mm=float(np.mean(crest)),
        s1_z_mm=float(skeleton.endplates["S1"][0][2]),
        inlet_half_width_mm=float(np.mean(brim)) if brim else 55.0,
        lateral_reach_mm=float(np.abs(hips[:, 0]).max()),
        bottom_z_mm=float(all_bone[:, 2].min()),
        pelvic_floor_z_mm=float(skeleton.bones["coccyx"].vertices_mm[:, 2].min()),
        brim_z_mm=float(marks.get("sacral_promontory", skeleton.endplates["S1"][0])[2]),
        symphysis_y_mm=float(
            marks.get("pubic_symphysis_superior", np.array([0.0, -60.0, -100.0]))[1]
        ),
        gutter_z_mm=gz,
        gutter_front_y_mm=gf,
        gutter_back_y_mm=gb,
        gutter_x_mm=gx,
        gutter_half_width_mm=gw,
    )


def _body_side(skeleton: PlacedSkeleton, level: str, sign: float) -> tuple[float, float]:
    """(lateral surface u, front of the transverse process v) of a level, in its body frame."""
    frame = skeleton.frames[level]
    body = _local(frame, skeleton.bodies[level].vertices_mm)
    mid = body[np.abs(body[:, 2]) < 5.0]
    lateral = float(np.max(sign * mid[:, 0]))
    bone = _local(frame, skeleton.bones[level].vertices_mm)
    tp = bone[(sign * bone[:, 0] > lateral + 8.0) & (np.abs(bone[:, 2]) < 15.0)]
    tp_front = float(tp[:, 1].min()) if len(tp) else 15.0
    return lateral, tp_front


def acetabula(anchors_extra: dict[str, Any]) -> dict[str, tuple[Vec, float]]:
    """(centre, radius) of each acetabulum from the real anchors (the femoral heads sit there)."""
    out = {}
    for side in SIDES:
        key = f"acetabulum_center_{side}"
        if key in anchors_extra:
            out[side] = (
                np.asarray(anchors_extra[key], float),
                float(anchors_extra[f"acetabulum_radius_mm_{side}"]),
            )
    return out


def psoas_paths(
    skeleton: PlacedSkeleton, acetabulum: dict[str, tuple[Vec, float]], scale: float = 1.0
) -> dict[str, tuple[Vec, Vec]]:
    """Control points and radii of each psoas on the real bones (before the push out of bone)."""
    marks = skeleton.landmarks
    paths = {}
    for side in SIDES:
        sign = 1.0 if side == "left" else -1.0
        points, radii = [], []
        for n, level in enumerate(LUMBAR_LEVELS):
            r = PSOAS_RADII_MM[n] * scale
            frame = skeleton.frames[level]
            lateral, tp_front = _body_side(skeleton, level, sign)
            v = float(np.clip(tp_front - r, -0.6 * r, 6.0))
            if n == 0:
                up = frame.ew * (skeleton.half_heights_mm[level] + 10.0)
                points.append(frame.point(sign * (lateral + 0.6 * r), v, 0.0) + up)
                radii.append(0.6 * r)
            points.append(frame.point(sign * (lateral + r + 1.0), v, 0.0))
            radii.append(r)
        r_brim = 0.85 * PSOAS_RADII_MM[-1] * scale
        brim = marks.get(f"icd_line_{side}_anterior")
        centre, radius = acetabulum.get(side, (None, 25.0))
        if centre is None:
            hip = skeleton.bones[f"hip_{side}"].vertices_mm
            centre = hip[np.argmin(hip[:, 2] + 0.0)]
        if brim is None:
            brim = centre + np.array([-sign * 20.0, 0.0, 45.0])
        points.append(np.asarray(brim) + np.array([sign * 4.0, -(r_brim + 4.0), 12.0]))
        radii.append(r_brim)
        r_hip = 0.65 * PSOAS_RADII_MM[-1] * scale
        points.append(centre + np.array([-sign * 8.0, -(radius + r_hip + 6.0), 6.0]))
        radii.append(r_hip)
        points.append(centre + np.array([-sign * 14.0, -(radius + 0.5 * r_hip), -40.0]))
        radii.append(0.55 * r_hip)
        paths[side] = (np.array(points), np.array(radii))
    return paths


def l5_pass_point(
    skeleton: PlacedSkeleton, angle_deg: float, reach_extra_mm: float, height_mm: float = 0.0
) -> Vec:
    """A point ``reach_extra_mm`` outside the L5 body's outline at ``angle_deg`` from anterior
    toward the patient's right, ``height_mm`` above the body's mid-height."""
    frame = skeleton.frames["L5"]
    angles, outline = radial_outline(skeleton.bodies["L5"], frame)
    a = math.radians(angle_deg)
    u, v = -math.sin(a), -math.cos(a)
    theta = np.array([math.atan2(v, u)], dtype=np.float32)
    radius = float(outline_radius(theta, angles, outline)[0])
    reach = radius + reach_extra_mm
    return frame.point(reach * u, reach * v, height_mm)


def body_front(skeleton: PlacedSkeleton, level: str, u_mm: float) -> float:
    """Body-frame v of the body's anterior surface ``u_mm`` from the midline (mid-height)."""
    frame = skeleton.frames[level]
    body = _local(frame, skeleton.bodies[level].vertices_mm)
    near = body[(np.abs(body[:, 0] - u_mm) < 5.0) & (np.abs(body[:, 2]) < 8.0)]
    if not len(near):
        near = body[np.abs(body[:, 2]) < 8.0]
    return float(near[:, 1].min())


def sij_front_corner(skeleton: PlacedSkeleton, side: str) -> Vec:
    """The anterior-superior corner of the real SI joint (the samples' most anterior-superior)."""
    surface = skeleton.landmarks.get(f"sij_surface_{side}")
    if surface is None or np.ndim(surface) != 2:
        return np.asarray(skeleton.landmarks[f"sij_center_{side}"], float)
    surface = np.asarray(surface, float)
    score = -surface[:, 1] + 0.5 * surface[:, 2]
    return np.asarray(surface[np.argmax(score)], float)


def front_y_at(skeleton: PlacedSkeleton, x_mm: float, z_mm: float) -> float:
    """LPS y of the lumbar bodies' anterior surface at (x, z) (the discs lie within the bodies'
    outlines: between two bodies, the more anterior of their rims within 6 mm of z)."""
    points = np.vstack([skeleton.bodies[lv].vertices_mm for lv in LUMBAR_LEVELS])
    near = points[(np.abs(points[:, 0] - x_mm) < 6.0) & (np.abs(points[:, 2] - z_mm) < 6.0)]
    if not len(near):
        near = points[np.abs(points[:, 2] - z_mm) < 12.0]
    return float(near[:, 1].min())
