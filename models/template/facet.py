"""The template's facet joints, and the smooth twist that turns each to its target angle.

The Visible Human Male's lumbar facet joints are sagittal: the angle between the joint plane and
the sagittal plane (the axial view; 0° sagittal, 90° coronal) reads 23–26° at L2/3 and L3/4 and
16–17° at L4/5 once warped, where Jentzsch et al. (Radiol Res Pract 2013, CT of 620 patients)
give 30.4, 38.7, 47.0° (and 47.3° at L5/S1). A sagittal joint changes what the oblique
("Scotty dog") view shows and where the superior articular process, the landmark of the
transforaminal approach, stands.

:func:`joint_angle_deg` measures a joint as :func:`models.phantom.measure.facet_angle_deg` does on
a label volume, here on 1 mm solids of the two bones (:func:`joint_solids`: where the template's
facets interpenetrate, the voxel is the lower bone's, as the painter labels it): the points of each
process within FACET_RADIUS_MM of the joint centre whose partner on the other process is within
CONTACT_MM, the midpoints of those pairs (the joint's mid-surface), the normal of their
least-squares plane (SVD), and its angle to the sagittal plane in the disc's frame (w from the
lower to the upper endplate centre, u left ⟂ w).

:class:`JointTwist` turns space about the joint's vertical axis (through the joint centre, along
the disc's w) by an angle that is full within FULL_RADIUS_MM of the centre and falls to zero
(smoothstep, C¹) over FADE_MM more: a *twist*, whose angle depends only on the distance to a point
of its axis, so it moves every point along its circle about the axis and keeps volume (Jacobian
determinant 1, whatever the angle): nothing folds. Both processes of a joint (the upper vertebra's
inferior one, the lower vertebra's superior one) take the same twist in the patient, so the joint
stays congruent (its gap neither opens nor closes); the fade runs over the pars, the lamina and the
pedicle's root, and ends short of both vertebral bodies (BODY_CLEARANCE_MM; a shorter reach
shortens the full radius first): the bodies keep their fitted shape. :class:`FacetTurn` is one
vertebra's twists (up to two joints a side), applied in its target body frame after the spline, the
pedicle lift and the canal shift (:class:`models.template.warp.VertebraMap`).
:func:`fit_facet_turns` sets each twist's angle to target − the angle of the splined, placed
(un-turned) joint, then corrects it three times by what the turned joint measures (the fade reaches
into the measured patch's rim).

L5/S1 (Jentzsch 2013: 47.3°; the template's reads 32–37°) is turned alike: L5's inferior process
by a twist in L5's FacetTurn, the sacrum's superior process (the sacrum's mesh stands for "S1",
its body mesh for the S1 body) by the same twist in the patient frame after the pelvic map
(:class:`models.template.warp.PatientWarp`'s ``sacral_turn``), fitted once the pelvis is final. Its
reach stays out of the L5 and S1 bodies and short of L5's pedicle centres (the template marks no
S1 pedicle) and of the hip bones (the sacroiliac joint stays congruent).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from fluorosim.models.labels import SIDES
from fluorosim.models.template.asset import BoneTemplate, TriangleMesh
from fluorosim.models.template.landmarks import signed_distance
from fluorosim.models.template.warp_geometry import smoothstep

Points = NDArray[np.float64]

#: The measured patch: points of each process this close to the joint centre (as
#: models.phantom.measure.FACET_RADIUS_MM), paired with a partner on the other process this close.
FACET_RADIUS_MM = 10.0
CONTACT_MM = 3.1
#: The real skeleton's joint centre: upper vertices this close to the lower bone
#: (models.phantom.real_skeleton.facet_joints), here within JOINT_SEARCH_MM of the joint.
JOINT_CONTACT_MM = 4.0
JOINT_SEARCH_MM = 15.0
#: Voxel of the solids measured (the phantom's default voxel) and the pair distance of
#: models.phantom.measure.facet_angle_deg.
VOXEL_MM = 1.0
#: The twist is full within this distance of the joint centre and fades out over FADE_MM more:
#: the measured patch turns whole, the pedicle's centre (13–18 mm from the joint centre in the
#: template) by a fifth of the angle or less, the other joint of the same side (30–39 mm away) not.
FULL_RADIUS_MM = 10.0
FADE_MM = 8.0
#: The twist stays out of the vertebral bodies: its reach (full radius + fade) ends this far short
#: of the nearest body vertex of the joint's two vertebrae (the L2/3 joint's 18 mm reach entered
#: L3's posterior wall, 14–15 mm from the joint centre, and made that body up to 2.2 mm deep), and
#: where that shortens it the full radius gives way first, down to a fade of MIN_FADE_MM (a 4 mm
#: fade turned an L4 face inside out under seed 3's 31° L4/5 twist; 6 mm keeps every face). The
#: reach ends at the nearest pedicle centre too: reaching past it, the L2/3 and L3/4 twists
#: sheared L3's isthmus 0.25–0.75 mm wider (labels 13.5–14.0 mm, over Zindrick's 10.3 + 30 %).
BODY_CLEARANCE_MM = 0.5
MIN_FADE_MM = 6.0
#: Corrections of the twist by what the turned joint measures.
REFITS = 3


@dataclass(frozen=True)
class JointTwist:
    """A turn by ``angle_deg`` about the axis through ``centre_mm`` along ``axis`` (right-handed),
    full within ``full_radius_mm`` of the centre, fading to zero over ``fade_mm`` more."""

    centre_mm: Points
    axis: Points
    angle_deg: float
    full_radius_mm: float = FULL_RADIUS_MM
    fade_mm: float = FADE_MM

    def weight(self, points: Points) -> Points:
        distance = np.linalg.norm(np.asarray(points) - self.centre_mm, axis=1)
        weight: Points = 1.0 - smoothstep((distance - self.full_radius_mm) / self.fade_mm)
        return weight

    def __call__(self, points: Points) -> Points:
        rel = np.asarray(points, dtype=np.float64) - self.centre_mm
        angle = math.radians(self.angle_deg) * self.weight(points)
        along = (rel @ self.axis)[:, None] * self.axis
        across = rel - along
        turned: Points = (
            self.centre_mm
            + along
            + across * np.cos(angle)[:, None]
            + np.cross(self.axis, across) * np.sin(angle)[:, None]
        )
        return turned

    def moved(self, b_from_a: NDArray[np.float64]) -> JointTwist:
        """The same twist expressed in frame b (``b_from_a`` rigid, 4×4)."""
        rotation = b_from_a[:3, :3]
        return JointTwist(
            rotation @ self.centre_mm + b_from_a[:3, 3],
            rotation @ self.axis,
            self.angle_deg,
            self.full_radius_mm,
            self.fade_mm,
        )


@dataclass(frozen=True)
class FacetTurn:
    """One vertebra's joint twists in its target body frame, applied in turn."""

    twists: tuple[JointTwist, ...]

    def __call__(self, points: Points) -> Points:
        for twist in self.twists:
            points = twist(points)
        return points


def disc_axes(axis: Points) -> tuple[Points, Points, Points]:
    """(u, v, w) of a disc frame whose w is ``axis``, as models.phantom.measure builds it: u the
    left–right axis made ⟂ w, v = w × u (posterior)."""
    w = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    u = np.array([1.0, 0.0, 0.0]) - w[0] * w
    u /= np.linalg.norm(u)
    return u, np.cross(w, u), w


def joint_centre(upper: TriangleMesh, lower: TriangleMesh, hint_mm: Points) -> Points:
    """The joint's centre as the real skeleton finds it (models.phantom.real_skeleton.facet_joints):
    the midpoint of the upper bone's vertices within JOINT_CONTACT_MM of the lower bone and their
    nearest lower vertices, here only those within JOINT_SEARCH_MM of ``hint_mm`` (this joint);
    ``hint_mm`` itself where the bones come no that close."""
    upper_vertices = np.asarray(upper.vertices_mm, dtype=np.float64)
    lower_vertices = np.asarray(lower.vertices_mm, dtype=np.float64)
    near = upper_vertices[np.linalg.norm(upper_vertices - hint_mm, axis=1) < JOINT_SEARCH_MM]
    distance, index = cKDTree(lower_vertices).query(near)
    close = distance < JOINT_CONTACT_MM
    if close.sum() < 3:
        return np.asarray(hint_mm, dtype=np.float64)
    centre: Points = 0.5 * (near[close].mean(axis=0) + lower_vertices[index[close]].mean(axis=0))
    return centre


def solid_points(mesh: TriangleMesh, centre_mm: Points, voxel_mm: float = VOXEL_MM) -> Points:
    """Centres of the ``voxel_mm`` voxels inside ``mesh`` within FACET_RADIUS_MM of ``centre_mm``
    (what a label volume holds of the bone there)."""
    steps = np.arange(-FACET_RADIUS_MM, FACET_RADIUS_MM + 1e-9, voxel_mm)
    offsets = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
    offsets = offsets[np.linalg.norm(offsets, axis=1) < FACET_RADIUS_MM]
    grid = np.asarray(centre_mm, dtype=np.float64) + offsets
    inside: Points = grid[signed_distance(grid, mesh) < 0.0]
    return inside


def joint_solids(
    upper: TriangleMesh, lower: TriangleMesh, centre_mm: Points
) -> tuple[Points, Points]:
    """The two processes' :func:`solid_points` near a joint as the label volume holds them: where
    the bones overlap (the Visible Human's facets interpenetrate by 100–250 mm³ within
    FACET_RADIUS_MM of a joint, a few tenths of a mm deep) the lower vertebra, painted after the
    upper one (models.phantom.assembly.paint, stable order L1…L5), takes the voxel. Counting those
    voxels in both bones read L2/3 5–12° more sagittal than its labels."""
    upper_points = solid_points(upper, centre_mm)
    lower_points = solid_points(lower, centre_mm)
    if len(upper_points):
        upper_points = upper_points[signed_distance(upper_points, lower) >= 0.0]
    return upper_points, lower_points


def joint_azimuth_deg(upper: Points, lower: Points, axis: Points) -> float:
    """Signed angle (deg) of the joint plane's normal (turned to point left) from u toward v in
    the disc frame of ``axis``, from the solid points of the two processes near the joint
    (:func:`solid_points`): the midpoints of the lower points and their nearest upper points within
    CONTACT_MM, their SVD plane; its absolute value is the angle to the sagittal plane. NaN when
    fewer than 6 pairs face each other."""
    if len(upper) < 3 or len(lower) < 3:
        return math.nan
    distance, index = cKDTree(upper).query(lower, distance_upper_bound=CONTACT_MM)
    close = np.isfinite(distance)
    if close.sum() < 6:
        return math.nan
    mids = 0.5 * (lower[close] + upper[index[close]])
    normal = np.linalg.svd(mids - mids.mean(axis=0), full_matrices=False)[2][-1]
    u, v, _ = disc_axes(axis)
    if normal @ u < 0:
        normal = -normal
    return math.degrees(math.atan2(float(normal @ v), float(normal @ u)))


def joint_angle_deg(
    upper: TriangleMesh, lower: TriangleMesh, hint_mm: Points, axis: Points
) -> float:
    """Angle (deg) between the facet joint plane and the sagittal plane (0° sagittal, 90°
    coronal) of two bone surfaces, measured as on a label volume (:func:`joint_azimuth_deg`)."""
    centre = joint_centre(upper, lower, hint_mm)
    return abs(joint_azimuth_deg(*joint_solids(upper, lower, centre), axis))


def _turn_for(azimuth_deg: float, target_deg: float) -> float:
    """The turn about w that brings a plane at ``azimuth_deg`` to ``target_deg`` to the sagittal."""
    return math.copysign(target_deg, azimuth_deg) - azimuth_deg


def fit_facet_turns(
    template: BoneTemplate,
    maps: Mapping[str, Callable[[Points], Points]],
    final_from_local: Mapping[str, NDArray[np.float64]],
    targets_deg: Mapping[str, Mapping[str, float]],
    meshes_of: Mapping[str, str] | None = None,
    clear_of: Mapping[str, Callable[[Points], Points]] | None = None,
) -> dict[str, FacetTurn]:
    """Per vertebra, the twists that turn its joints to their target angles.

    ``maps`` take a vertebra's template points into the patient (un-turned), ``final_from_local``
    is each vertebra's rigid placement of its target body frame (the identity for a bone turned in
    the patient frame), ``targets_deg`` the angle per joint ("L2_L3") and side. Joints whose bones
    are not both in ``maps`` are left alone. ``meshes_of`` names the template bone of a level
    whose mesh has another name ({"S1": "sacrum"}); ``clear_of`` maps other template bones
    (the hip bones) into the patient: every twist's reach ends short of them.
    """
    twists: dict[str, list[JointTwist]] = {}
    meshes: dict[str, TriangleMesh] = {}
    bodies: dict[str, cKDTree] = {}
    mesh_names = dict(meshes_of or {})
    others = [
        cKDTree(to_patient(np.asarray(template.bones[bone].vertices_mm)))
        for bone, to_patient in (clear_of or {}).items()
    ]

    def placed(bone: str) -> TriangleMesh:
        if bone not in meshes:
            mesh = template.bones[mesh_names.get(bone, bone)]
            meshes[bone] = TriangleMesh(maps[bone](np.asarray(mesh.vertices_mm)), mesh.faces)
        return meshes[bone]

    def body_tree(bone: str) -> cKDTree:
        if bone not in bodies:
            body = template.body_meshes.get(bone)
            vertices = np.empty((0, 3)) if body is None else np.asarray(body.vertices_mm)
            bodies[bone] = cKDTree(maps[bone](vertices) if len(vertices) else vertices)
        return bodies[bone]

    def reach(centre: Points, *bones: str) -> tuple[float, float]:
        """(full radius, fade) of a twist about ``centre`` that stays out of ``bones``' bodies
        and pedicles and of the ``clear_of`` bones."""
        nearest = min(
            (float(body_tree(bone).query(centre)[0]) for bone in bones if body_tree(bone).n),
            default=math.inf,
        )
        nearest = min([nearest, *(float(tree.query(centre)[0]) for tree in others)])
        pedicles = [
            maps[bone](np.asarray(template.landmarks[name], float)[None])[0]
            for bone in bones
            for side in SIDES
            if (name := f"{bone}_pedicle_center_{side}") in template.landmarks
        ]
        to_pedicle = min((float(np.linalg.norm(p - centre)) for p in pedicles), default=math.inf)
        span = min(FULL_RADIUS_MM + FADE_MM, nearest - BODY_CLEARANCE_MM, to_pedicle)
        full = max(min(FULL_RADIUS_MM, span - MIN_FADE_MM), 0.0)
        return full, max(span - full, 1.0)

    for joint, sides in targets_deg.items():
        upper, lower = joint.split("_")
        if upper not in maps or lower not in maps:
            continue
        upper_map, lower_map = maps[upper], maps[lower]
        top = np.asarray(template.landmarks[f"{upper}_inferior_endplate_center"], float)
        bottom = np.asarray(template.landmarks[f"{lower}_superior_endplate_center"], float)
        axis = upper_map(top[None])[0] - lower_map(bottom[None])[0]
        axis /= np.linalg.norm(axis)
        for side in SIDES:
            if side not in sides:
                continue
            joint_template = np.asarray(template.landmarks[f"facet_{joint}_{side}"], float)[None]
            hint = 0.5 * (upper_map(joint_template)[0] + lower_map(joint_template)[0])
            centre = joint_centre(placed(upper), placed(lower), hint)
            azimuth = joint_azimuth_deg(*joint_solids(placed(upper), placed(lower), centre), axis)
            if not math.isfinite(azimuth):
                continue
            target = float(sides[side])
            full, fade = reach(centre, upper, lower)
            twist = JointTwist(centre, axis, _turn_for(azimuth, target), full, fade)
            for _ in range(REFITS):
                turned = [
                    TriangleMesh(twist(np.asarray(placed(bone).vertices_mm)), placed(bone).faces)
                    for bone in (upper, lower)
                ]
                moved_centre = joint_centre(turned[0], turned[1], centre)
                after = joint_azimuth_deg(*joint_solids(turned[0], turned[1], moved_centre), axis)
                if not math.isfinite(after):
                    break
                twist = replace(twist, angle_deg=twist.angle_deg + _turn_for(after, target))
            for bone in (upper, lower):
                local_from_final = np.asarray(np.linalg.inv(final_from_local[bone]), np.float64)
                twists.setdefault(bone, []).append(twist.moved(local_from_final))
    return {bone: FacetTurn(tuple(found)) for bone, found in twists.items()}
