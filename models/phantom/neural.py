"""Neural structures: the thecal sac (L1 to S2), exiting roots L1–S2 with ganglia, epidural fat.

Every structure is a tube along a centre line (union of tapered capsules with elliptic cross
sections). The lumbar exiting root X leaves the sac at the level of pedicle X, turns under the
pedicle into the foramen X/Y where its dorsal root ganglion sits, and crosses the posterolateral
disc X/Y running at ``ROOT_DISC_ANGLE_DEG`` to the disc plane: this root is the hypotenuse of
Kambin's triangle (base = superior endplate of Y, height = the medial border at the traversing
root / superior articular process). The triangle's height is chosen so that the diameter of its
inscribed circle (the largest cannula that passes) matches the published sizes (procedures.md:
5.8 mm at L1-2 → 7.3–8.2 mm at L4-5; 6–8 mm cannulas are used), but kept under
the pedicle above. The L5 root then runs over the anterior surface of the sacral ala; the S1 and S2
roots leave the sacral canal through their foramina (positions from the sacrum's landmarks when it
has painted them, else from the S1 endplate frame).
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS, SIDES
from fluorosim.models.phantom.lumbar import LocalFrame, LumbarLayout, lumbar_layout, pedicle_sdf
from fluorosim.models.phantom.parts import (
    PRIORITY_NEURAL,
    PRIORITY_ORGAN,
    Anchors,
    Grid,
    Painted,
    PartResult,
    PatientParameters,
)

#: Angle between the exiting root and the disc plane at the disc (anatomy.md: ≈51°).
ROOT_DISC_ANGLE_DEG = 50.0
#: Target Kambin inscribed-circle DIAMETER L1-2…L5-S1 (procedures.md: 5.8 → 7.3–8.2 mm;
#: L2-3, L3-4 interpolated, L5-S1 approx.).
KAMBIN_INCIRCLE_DIAMETER_MM = (5.8, 6.4, 7.0, 7.7, 8.0)
ROOT_RADIUS_MM = 2.4
#: Smallest gap between an exiting root (with its ganglion) and the pedicle above it (mm): a
#: smaller one can put a root voxel face to face with a pedicle voxel (1 mm voxels).
ROOT_CLEARANCE_MM = 1.0
#: On a real skeleton the root's course past the apex keeps this gap (mm) from the real bone
#: above, moving back from the annulus in steps, at most this far.
REAL_BONE_CLEARANCE_MM = 0.5
REAL_BONE_STEP_MM = 0.5
REAL_BONE_MAX_PUSH_MM = 5.0
#: Kambin's incircle centre (the cannula's aim) keeps this gap (mm) from real bone, the triangle
#: moving at most this far along the disc's depth to find it.
CENTRE_CLEARANCE_MM = 1.0
CENTRE_MAX_SHIFT_MM = 3.0
#: ... and, where no such shift clears it, lifted at most this far off the lower endplate (mm):
#: the whole bone's endplate lies up to 1.9 mm beyond the body-only surface the base is set on.
CENTRE_MAX_LIFT_MM = 2.0
#: Kambin's triangle is never shorter than this (mm), whatever the foramen.
MIN_KAMBIN_HEIGHT_MM = 6.0
GANGLION_RADIUS_MM = 3.3
CSF_HU = 15.0
NERVE_HU = 40.0
EPIDURAL_FAT_HU = -90.0
PRIORITY_EPIDURAL_FAT = PRIORITY_ORGAN + 5
#: Fat around an exiting root in and beyond its foramen.
FORAMINAL_FAT_MM = 2.5

Point = NDArray[np.float64]


def tube_sdf(
    grid: Grid,
    box: tuple[slice, slice, slice],
    points: NDArray[np.float64],
    radii_lateral: NDArray[np.float64],
    radii_other: NDArray[np.float64] | None = None,
) -> NDArray[np.float32]:
    """Approximate SDF (mm) of a chain of tapered capsules with elliptic cross-section.

    ``radii_lateral`` is the semi-axis along LPS x (left–right), ``radii_other`` the semi-axis
    perpendicular to x and to the segment (defaults to circular).
    """
    radii_other = radii_lateral if radii_other is None else radii_other
    x, y, z = grid.coordinates(box)
    x = x.astype(np.float32)
    y = y.astype(np.float32)
    z = z.astype(np.float32)
    best = np.full(np.broadcast_shapes(x.shape, y.shape, z.shape), np.inf, dtype=np.float32)
    for n in range(len(points) - 1):
        a, b = points[n], points[n + 1]
        ab = b - a
        length2 = float(ab @ ab) or 1e-9
        px, py, pz = x - a[0], y - a[1], z - a[2]
        t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / np.float32(length2), 0.0, 1.0)
        qx, qy, qz = px - t * ab[0], py - t * ab[1], pz - t * ab[2]
        rl = radii_lateral[n] + (radii_lateral[n + 1] - radii_lateral[n]) * t
        ro = radii_other[n] + (radii_other[n + 1] - radii_other[n]) * t
        other2 = np.maximum(qy * qy + qz * qz, 0.0)
        # the lateral semi-axis applies along x; the other one to the remaining components
        radial = np.sqrt((qx / rl) ** 2 + other2 / ro**2)
        sdf = (radial - 1.0) * np.minimum(rl, ro)
        np.minimum(best, sdf.astype(np.float32), out=best)
    return best


def _tube_box(
    grid: Grid, points: NDArray[np.float64], margin_mm: float
) -> tuple[slice, slice, slice]:
    return grid.box(points.min(axis=0) - margin_mm, points.max(axis=0) + margin_mm)


def _tube_piece(
    grid: Grid,
    label: str,
    points: NDArray[np.float64],
    radii_lateral: ArrayLike,
    radii_other: ArrayLike,
    hu: float,
    priority: int,
) -> Painted:
    radii_lateral = np.asarray(radii_lateral, dtype=np.float64)
    radii_other = np.asarray(radii_other, dtype=np.float64)
    box = _tube_box(grid, points, float(max(radii_lateral.max(), radii_other.max())) + 2.0)
    sdf = tube_sdf(grid, box, points, radii_lateral, radii_other)
    return Painted(label, box, sdf <= 0, hu, priority)


def _sacral_points(anchors: Anchors, frame: LocalFrame) -> dict[str, Point]:
    """Sacral canal and foramina from the sacrum's landmarks, else typical positions (S1 frame)."""
    fallback = {
        "S1_spinal_canal_center": frame.point(0.0, 23.0, -12.0),
        "S2_spinal_canal_center": frame.point(0.0, 28.0, -42.0),
    }
    for side, sign in (("left", 1.0), ("right", -1.0)):
        fallback[f"S1_foramen_anterior_{side}"] = frame.point(sign * 20.0, -9.0, -27.0)
        fallback[f"S1_foramen_posterior_{side}"] = frame.point(sign * 17.0, 24.0, -24.0)
        fallback[f"S2_foramen_anterior_{side}"] = frame.point(sign * 18.0, -2.0, -54.0)
        fallback[f"S2_foramen_posterior_{side}"] = frame.point(sign * 15.0, 29.0, -50.0)
        fallback[f"ala_top_{side}"] = frame.point(sign * 45.0, 2.0, 2.0)
    points = {}
    for name, value in fallback.items():
        given = anchors.extra.get(name)
        points[name] = np.asarray(given, dtype=np.float64) if given is not None else value
    bodies = [anchors.extra.get(n) for n in ("S1_body_center", "S2_body_center")]
    if "S2_spinal_canal_center" not in anchors.extra and all(b is not None for b in bodies):
        # the canal lies dorsal to the S2 body as to the S1 body, a little shallower
        offset = points["S1_spinal_canal_center"] - np.asarray(bodies[0])
        points["S2_spinal_canal_center"] = np.asarray(bodies[1]) + 0.85 * offset
    if (
        "S2_foramen_posterior_left" not in anchors.extra
        and "S1_foramen_posterior_left" in anchors.extra
    ):
        for side in SIDES:
            offset = points[f"S1_foramen_posterior_{side}"] - points[f"S1_foramen_anterior_{side}"]
            points[f"S2_foramen_posterior_{side}"] = points[f"S2_foramen_anterior_{side}"] + offset
    return points


def _incenter(a: Point, b: Point, c: Point) -> Point:
    la, lb, lc = np.linalg.norm(b - c), np.linalg.norm(c - a), np.linalg.norm(a - b)
    centre: Point = (la * a + lb * b + lc * c) / (la + lb + lc)
    return centre


RootGeometry = tuple[tuple[Point, Point, Point], list[Point], list[float]]


def _root_geometry(
    frame: LocalFrame,
    sign: float,
    canal_half: float,
    v_k: float,
    w_end: float,
    height: float,
    angle: float,
    take_off: Point,
) -> RootGeometry:
    """Kambin corners and the root centre line for a triangle of ``height``.

    The triangle's hypotenuse is the root's lower-medial EDGE, so the centre line runs parallel
    to it, offset away from the triangle by the root (or ganglion) radius plus 0.6 mm.
    """
    apex = frame.point(sign * canal_half, v_k, w_end + height)
    base_medial = frame.point(sign * canal_half, v_k, w_end)
    base_lateral = frame.point(sign * (canal_half + height / math.tan(angle)), v_k, w_end)
    down = (base_lateral - apex) / np.linalg.norm(base_lateral - apex)
    away = frame.vector(sign * math.sin(angle), 0.0, math.cos(angle))
    behind = frame.vector(0.0, 1.0, 0.0)  # the root lies on, not in, the annulus
    root_offset = away * (ROOT_RADIUS_MM + 0.3) + behind * 1.5
    path = [
        take_off,
        apex + root_offset - down * 2.0,
        apex + down * 6.0 + away * (ROOT_RADIUS_MM + 0.3 + 0.5) + behind * 1.5,
        base_lateral + root_offset,
    ]
    radii = [2.2, ROOT_RADIUS_MM, GANGLION_RADIUS_MM, ROOT_RADIUS_MM]
    return (apex, base_medial, base_lateral), path, radii


def _sampled(path: list[Point], radii: list[float]) -> tuple[list[Point], list[Point]]:
    """The tube's centre line sampled each 0.5 mm, segment by segment: (points, radii) lists."""
    samples, sample_radii = [], []
    for n in range(len(path) - 1):
        steps = max(2, int(np.linalg.norm(path[n + 1] - path[n]) / 0.5))
        t = np.linspace(0.0, 1.0, steps)[:, None]
        samples.append(path[n] + t * (path[n + 1] - path[n]))
        sample_radii.append(radii[n] + t[:, 0] * (radii[n + 1] - radii[n]))
    return samples, sample_radii


def _pedicle_clearance(
    layout: LumbarLayout, level: str, side: str, path: list[Point], radii: list[float]
) -> float:
    """Smallest gap (mm) between a root tube and the pedicle of ``level``: the real bone labelled
    that pedicle where the layout has it (a real skeleton), else the layout's idealised one."""
    frame, dims = layout.body_frames[level], layout.levels[level]
    samples, sample_radii = _sampled(path, radii)
    points = np.concatenate(samples)
    radius = np.concatenate(sample_radii)
    if layout.pedicle_distance is not None:
        return float(np.min(layout.pedicle_distance(level, side, points) - radius))
    u, v, w = frame.to_local(points[:, 0], points[:, 1], points[:, 2])
    return float(np.min(pedicle_sdf(u, v, w, dims, side) - radius))


def _fit_root(
    layout: LumbarLayout,
    disc: tuple[str, str],
    side: str,
    triangle: tuple[LocalFrame, float, float, float, float],
    take_off: Point,
) -> RootGeometry:
    """Kambin's triangle and its exiting root: the tallest triangle, up to the target height,
    whose root clears the pedicle above by ROOT_CLEARANCE_MM where the root finally lies: on a
    real skeleton after the triangle's centre keeps off the real bone
    (:func:`_centre_off_real_bone`) and the root past the apex clears it
    (:func:`_clear_real_bone`), which moves it back under the pedicle; and from the bone that is
    labelled the pedicle, whose base reaches 2-3 mm below the layout's idealised one (the
    label's reach, models.phantom.real_skeleton.in_pedicle_label_region). ``disc``: (upper,
    lower) levels; ``triangle``: (frame of the vertebra below, medial side's u, annulus v,
    endplate w, target height)."""
    frame, canal_half, v_k, w_end, height = triangle
    upper, lower = disc
    sign = 1.0 if side == "left" else -1.0
    angle = math.radians(ROOT_DISC_ANGLE_DEG)

    backward = frame.vector(0.0, 1.0, 0.0)
    # the root clears the body above by moving back from ITS wall: along that vertebra's own v,
    # not the lower one's, which a lordotic segment tilts up toward the pedicle (12-15 deg at L4-5)
    away_from_upper = layout.body_frames[upper].vector(0.0, 1.0, 0.0)
    bones = (upper, "sacrum" if lower == "S1" else lower)
    while True:
        fitted = _root_geometry(frame, sign, canal_half, v_k, w_end, height, angle, take_off)
        if layout.bone_distance is not None:
            # where the root will lie: behind the disc's surface and the body's corner
            fitted = _centre_off_real_bone(layout, bones, fitted, backward, frame.vector(0, 0, 1))
            fitted = _clear_real_bone(layout, upper, fitted, away_from_upper)
        clear = _pedicle_clearance(layout, upper, side, *fitted[1:]) >= ROOT_CLEARANCE_MM
        if clear or height <= MIN_KAMBIN_HEIGHT_MM:
            return fitted
        height -= 0.5


def _centre_off_real_bone(
    layout: LumbarLayout,
    bones: tuple[str, str],
    fitted: RootGeometry,
    backward: Point,
    upward: Point,
) -> RootGeometry:
    """The triangle with its root moved along ``backward`` (either way, the smallest shift in
    REAL_BONE_STEP_MM steps up to CENTRE_MAX_SHIFT_MM) until the triangle's incircle centre,
    where the cannula aims, is CENTRE_CLEARANCE_MM outside the real vertebrae above and below;
    where no such shift does it, also lifted along ``upward`` (the lower vertebra's axis, in
    the same steps up to CENTRE_MAX_LIFT_MM), the least lift first.

    Measured discs put the triangle on the disc's real surface; where the lower vertebra's
    superior articular process or pedicle root stands beside that surface (upper lumbar levels),
    the centre would otherwise fall in bone. The triangle's base is the body-only surface's
    endplate centre height; the whole bone's endplate, its rim above all, lies up to 1.9 mm
    beyond it, so a short triangle's centre can lie within the rim (seed 0's L2-3)."""
    assert layout.bone_distance is not None
    corners, path, radii = fitted
    centre = _incenter(*corners)
    steps = int(CENTRE_MAX_SHIFT_MM / REAL_BONE_STEP_MM)
    for lift in range(int(CENTRE_MAX_LIFT_MM / REAL_BONE_STEP_MM) + 1):
        for k in range(2 * steps + 1):
            shift = backward * REAL_BONE_STEP_MM * ((k + 1) // 2) * (1 if k % 2 else -1)
            shift = shift + upward * REAL_BONE_STEP_MM * lift
            gap = min(
                float(layout.bone_distance(bone, (centre + shift)[None])[0]) for bone in bones
            )
            if gap >= CENTRE_CLEARANCE_MM:
                moved = tuple(corner + shift for corner in corners)
                return (moved[0], moved[1], moved[2]), [point + shift for point in path], radii
    return fitted


def _clear_real_bone(
    layout: LumbarLayout, upper: str, fitted: RootGeometry, backward: Point
) -> RootGeometry:
    """The root's course past the apex moved back (``backward``, in REAL_BONE_STEP_MM steps up
    to REAL_BONE_MAX_PUSH_MM) until it clears the real vertebra above by REAL_BONE_CLEARANCE_MM.

    The triangle is taller than the disc, so its apex lies beside the posteroinferior corner of
    the body above, whose wall (with the pedicle's flare onto it) stands behind the disc's
    surface: there the root lies on the bone, not in it. Its lateral end, in the foramen below
    the pedicle, stays where the triangle put it (the cannula's track passes beneath it).

    Where no push reaches the clearance, each point goes where the gap is largest (the least
    push of equals): behind the body's corner lie the pedicle and the articular pillar, so going
    on back can bury the ganglion deeper (seed 0's L5-S1 ganglion, 0.0 mm off L5 where the
    triangle put it, was 4.4 mm inside the bone after the full 5 mm)."""
    assert layout.bone_distance is not None
    corners, path, radii = fitted
    path = list(path)
    steps = int(REAL_BONE_MAX_PUSH_MM / REAL_BONE_STEP_MM)
    for n in (1, 2):
        tried = np.array([path[n] + backward * REAL_BONE_STEP_MM * k for k in range(steps + 1)])
        gaps = layout.bone_distance(upper, tried) - radii[n]
        clear = np.flatnonzero(gaps >= REAL_BONE_CLEARANCE_MM)
        path[n] = tried[clear[0] if len(clear) else int(np.argmax(gaps))]
    return corners, path, radii


def _lower_frame(layout: LumbarLayout, lower: str) -> tuple[LocalFrame, float, float, float]:
    """(frame, endplate w, half depth, canal half width) of the vertebra below a disc."""
    if lower == "S1":
        l5 = layout.levels["L5"]
        return layout.s1_frame, 0.0, l5.body_depth_mm / 2, l5.canal_width_mm / 2
    d = layout.levels[lower]
    return (
        layout.body_frames[lower],
        d.body_height_mm / 2,
        d.body_depth_mm / 2,
        d.canal_width_mm / 2,
    )


def neural_part(grid: Grid, params: PatientParameters, anchors: Anchors) -> PartResult:
    """Paint the thecal sac, epidural fat and the exiting roots L1–S2; neural landmarks."""
    layout = anchors.lumbar_layout or lumbar_layout(params)
    sacral = _sacral_points(anchors, layout.s1_frame)
    result = PartResult()

    # thecal sac and epidural fat along the canal centre line
    centers, rx, ry = [], [], []
    for level in LUMBAR_LEVELS:
        frame, d = layout.body_frames[level], layout.levels[level]
        v_c = d.body_depth_mm / 2 + d.canal_depth_mm / 2 + 0.5
        top = d.body_height_mm / 2 + (8.0 if level == "L1" else 0.0)
        for w in (top, 0.0, -d.body_height_mm / 2):
            centers.append(frame.point(0.0, v_c, w))
            rx.append(d.canal_width_mm / 2 - 2.5)
            ry.append(d.canal_depth_mm / 2 - 1.8)
    centers += [sacral["S1_spinal_canal_center"], sacral["S2_spinal_canal_center"]]
    rx += [7.5, 2.0]
    ry += [5.0, 1.5]
    centers_arr = np.array(centers)
    result.pieces.append(
        _tube_piece(grid, "thecal_sac", centers_arr, rx, ry, CSF_HU, PRIORITY_NEURAL)
    )
    fat_rx = np.array(rx) + 3.0
    fat_ry = np.array(ry) + 2.5
    result.pieces.append(
        _tube_piece(
            grid, "fat", centers_arr, fat_rx, fat_ry, EPIDURAL_FAT_HU, PRIORITY_EPIDURAL_FAT
        )
    )

    # lumbar exiting roots and Kambin's triangles
    angle = math.radians(ROOT_DISC_ANGLE_DEG)
    for n, (upper, lower) in enumerate(DISC_LEVELS):
        up_frame, up = layout.body_frames[upper], layout.levels[upper]
        frame, w_end, half_d, canal_half = _lower_frame(layout, lower)
        # medial border (traversing root / SAP): just medial of the upper pedicle's medial wall
        canal_half = min(canal_half, up.canal_width_mm / 2) - 1.0
        r_target = KAMBIN_INCIRCLE_DIAMETER_MM[n] / 2
        factor = (1.0 + 1.0 / math.tan(angle) - 1.0 / math.sin(angle)) / 2.0
        v_k = half_d + 2.0  # on the posterolateral disc surface (its corners bulge 2.5 mm)
        measured_v = layout.discs[f"{upper}_{lower}"].kambin_v_mm
        if measured_v is not None:  # a real disc: its measured surface
            v_k = measured_v
        for side in SIDES:
            sign = 1.0 if side == "left" else -1.0
            take_off = up_frame.point(
                sign * (up.canal_width_mm / 2 - 8.0),
                up.body_depth_mm / 2 + up.canal_depth_mm / 2 - 1.0,
                up.pedicle_center_w_mm - up.pedicle_height_mm / 2,
            )
            triangle = (frame, canal_half, v_k, w_end, r_target / factor)
            corners, path, radii = _fit_root(layout, (upper, lower), side, triangle, take_off)
            apex, base_medial, base_lateral = corners
            tag = f"kambin_{upper}_{lower}_{side}"
            result.landmarks[f"{tag}_apex"] = apex
            result.landmarks[f"{tag}_base_medial"] = base_medial
            result.landmarks[f"{tag}_base_lateral"] = base_lateral
            result.landmarks[f"{tag}_center"] = _incenter(apex, base_medial, base_lateral)
            path, radii = list(path), list(radii)
            if lower == "S1":
                ala = sacral[f"ala_top_{side}"]
                _, v_ala, w_ala = frame.to_local(*ala)
                over_ala = frame.point(
                    sign * 27.0,
                    float(cast("np.float32 | float", min(v_ala, 0.0))) - 14.0,
                    float(w_ala) - 10.0,
                )
                # then down in front of the sacrum to join S1 (lumbosacral trunk)
                s1_front = sacral[f"S1_foramen_anterior_{side}"]
                path += [over_ala, s1_front + np.array([sign * 14.0, -14.0, -14.0])]
            else:
                out = up_frame.vector(sign * 0.55, -0.55, -0.63)
                path += [path[-1] + out * 30.0]
            radii += [ROOT_RADIUS_MM + 0.3] * (len(path) - len(radii))
            result.pieces.append(
                _tube_piece(
                    grid,
                    f"root_{upper}_{side}",
                    np.array(path),
                    radii,
                    radii,
                    NERVE_HU,
                    PRIORITY_NEURAL + 1,
                )
            )
            # foraminal fat around the root (bone and disc paint over it)
            sheath = [r + FORAMINAL_FAT_MM for r in radii]
            result.pieces.append(
                _tube_piece(
                    grid,
                    "fat",
                    np.array(path[1:]),
                    sheath[1:],
                    sheath[1:],
                    EPIDURAL_FAT_HU,
                    PRIORITY_EPIDURAL_FAT,
                )
            )
            # foramen centre: between the pedicle above and the one below, behind the disc
            above = up_frame.point(
                sign * up.pedicle_center_u_mm,
                up.body_depth_mm / 2 + 3.0,
                up.pedicle_center_w_mm - up.pedicle_height_mm / 2,
            )
            if lower == "S1":
                below = frame.point(sign * up.pedicle_center_u_mm, half_d + 3.0, -4.0)
            else:
                low = layout.levels[lower]
                below = layout.body_frames[lower].point(
                    sign * low.pedicle_center_u_mm,
                    half_d + 3.0,
                    low.pedicle_center_w_mm + low.pedicle_height_mm / 2,
                )
            result.landmarks[f"foramen_{upper}_{lower}_{side}"] = 0.5 * (above + below)

    # sacral roots: from the sac through the canal, posterior → anterior foramen, then caudally
    l5_frame, l5 = layout.body_frames["L5"], layout.levels["L5"]
    for level in ("S1", "S2"):
        for side in SIDES:
            sign = 1.0 if side == "left" else -1.0
            take_off_w = -l5.body_height_mm / 2 if level == "S1" else -l5.body_height_mm / 2 - 12.0
            take_off = l5_frame.point(
                sign * 6.0, l5.body_depth_mm / 2 + l5.canal_depth_mm / 2, take_off_w
            )
            canal = sacral[f"{level}_spinal_canal_center"] + np.array([sign * 9.0, 0.0, 0.0])
            posterior = sacral[f"{level}_foramen_posterior_{side}"]
            anterior = sacral[f"{level}_foramen_anterior_{side}"]
            mid = 0.5 * (canal + anterior)
            exit_point = anterior + np.array([sign * 10.0, -14.0, -18.0])
            sacral_path = np.array([take_off, canal, mid, anterior, exit_point])
            radii = [2.0, 2.4, 3.2, 3.0, 2.6] if level == "S1" else [1.6, 2.0, 2.6, 2.4, 2.2]
            del posterior
            result.pieces.append(
                _tube_piece(
                    grid,
                    f"root_{level}_{side}",
                    sacral_path,
                    radii,
                    radii,
                    NERVE_HU,
                    PRIORITY_NEURAL + 1,
                )
            )
    return result
