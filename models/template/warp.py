"""Warp the real-anatomy template into one patient: stacking, sacral slope, and smooth scaling.

``patient_warp(template, targets)`` returns a :class:`PatientWarp` that maps any template point of
a bone into the patient (LPS mm, origin at the S1 superior endplate centre):

1. **Each lumbar vertebra** gets a *designed* map in its own body frame (origin midway between the
   endplate centres, u → Left, v → posterior, w along the bisector of the endplate normals;
   :mod:`models.template.warp_geometry`): the body's midsagittal quadrilateral (its endplate lines
   between the anterior and posterior extremes) goes onto the target quadrilateral (target depth,
   anterior and posterior rim heights, hence the target body wedge), the width scales to the
   target width, the whole bone's mean width through the body's middle (coronal section area /
   height: :func:`~models.template.warp_geometry.coronal_mean_width_mm`; the ArtiSynth body-only
   mesh's widest extent, fitted before generator 5.9, is 2–15 % wider than the bone's and left
   L4 waisted 6 mm under the population-mean shape). The heights are the WHOLE bone's (what an
   image or a label volume shows): the template's body-only mesh, whose lines the quadrilateral
   carries, has its endplates 0.4–1.9 mm inside the bone's, so each quadrilateral height is the
   target divided by the template's ratio of the bone's chord to the body's line height, measured
   3 mm inside each wall (where :mod:`models.phantom.measure` reads body heights). The posterior elements scale about the
   middle of the posterior wall with the target width over the body-only mesh's widest extent
   (u: the scale their pedicles, canal and facets are fitted at; the body's own width blends
   into it toward the posterior wall: :class:`BodyWiden`), the posterior height ratio (w) and
   their mean (v), which meets the body map on the posterior wall (a continuous map, never a
   shear). A thin-plate spline (scipy
   ``RBFInterpolator(kernel="thin_plate_spline")``, exact at its controls) through the designed
   map at ≈60 controls (the body's corners, endplate centres and rims, the template landmarks of the
   level, farthest-point samples of the bone) makes it smooth. After the spline, two smooth
   local displacements (C¹ ramps, no spline: its sparse controls could not follow them): the
   pedicles' undersides are lifted to their target height (:mod:`models.template.pedicle`), and
   the canal is given its target width and depth as :mod:`models.yardstick` measures it
   (:class:`CanalShift`: the pedicles and the parts lateral of the canal move out, the midline
   laminae and the spinous process back, nothing moves in the body's front two thirds, each facet
   joint's two processes move together; fitted by measuring the moved bone).
2. **Stacking** from the sacrum up: the S1 superior endplate tilts to the target sacral slope; each
   disc is a wedge of the target angle (segmental lordosis − the placed body's own wedge) whose
   posterior height is the target, measured along the disc bisector between the posterior
   endplate corners, with the template's antero-posterior offset of those corners kept (George's
   line); each vertebra is placed rigidly (a rotation about the left–right axis and a translation) on its disc.
3. **The pelvic ring** (sacrum, coccyx, both hip bones) shares ONE smooth map, so the sacroiliac
   joint surfaces stay congruent: a lateral profile (S1 body width, interauricular distance, pelvic
   width) that is one function of position for both bones, the pelvic size in the sagittal plane,
   the auricular height along each joint's long axis, the sacral length below the joints, the
   iliac crest height against the L4–L5 disc (the wing above the joint stretches or shortens, the
   joint itself stays) and the variants' local features, all as smooth fields, sampled at ≈400
   controls, interpolated by a thin-plate spline, then the rigid rotation about the left–right
   axis through the origin that gives the sacral slope (trimmed so that the fitted S1 endplate
   has it exactly).

Public API (what the phantom builder calls)::

    warp = patient_warp(load_template(), patient_targets(params))
    warp.warp_bone("L4")            # TriangleMesh in the patient (same faces as the template)
    warp.warp_body("S1")            # vertebral body alone ("L1".."L5", "S1")
    warp.warp_points("hip_left", points_mm)   # template points of one bone → patient
    warp.warp_space(points_mm)      # points of no bone (discs, roots, vessels): blended maps
    warp.landmarks                  # every template landmark, mapped
    warp.endplate("L5", "superior") # (centre, cranial unit normal) in the patient
    warp.crest_top_mm               # {"left": …, "right": …}
    warp.targets                    # the PatientTargets it was built for (variants' flags)

Targets come from :mod:`models.template.targets`. The template is taken as the population-mean
male (ratios of the pelvis apply to it); vertebral bodies get absolute published dimensions.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

from fluorosim.models.labels import LUMBAR_LEVELS, SIDES
from fluorosim.models.template.asset import BoneTemplate, TriangleMesh
from fluorosim.models.template.facet import FacetTurn, fit_facet_turns
from fluorosim.models.template.landmarks import RayCaster, s1_anterior_cortex
from fluorosim.models.template.pedicle import (
    PedicleLift,
    TemplatePedicle,
    lift_for,
    measure_pedicles,
    within_stretch,
)
from fluorosim.models.template.targets import PatientTargets, VertebraTargets, disc_key
from fluorosim.models.template.warp_geometry import (
    BodyFrame,
    Endplate,
    anterior_at_tilt,
    body_frame,
    coronal_mean_width_mm,
    endplate_vertex_centres,
    farthest_points,
    fit_endplate,
    normal_at_tilt,
    rotation_x,
    smoothstep,
    tilt_deg,
)

Points = NDArray[np.float64]
#: One term of the designed pelvic field: (template points, field so far, on a hip bone) → field.
PelvicTerm = Callable[[Points, Points, NDArray[np.bool_]], Points]

PELVIC_BONES: tuple[str, ...] = ("sacrum", "coccyx", "hip_left", "hip_right")
#: Controls closer than this to an earlier one are dropped (near-duplicates make a spline ring).
CONTROL_MIN_SPACING_MM = 2.0
VERTEBRA_SAMPLES = 48
PELVIS_SAMPLES = {"sacrum": 110, "coccyx": 8, "hip_left": 80, "hip_right": 80}
#: A sacral vertex within this distance of a hip bone lies on the auricular (joint) surface.
JOINT_CONTACT_MM = 4.0
#: In front of the sacrum the pelvis takes the plain pelvic width, blended over this distance.
LATERAL_BLEND_MM = 30.0
#: Reach of the auricular-height change around each joint (Gaussian σ).
AURICULAR_REACH_MM = 45.0
#: The crest field fades out within this distance of the joint surface (the joint never moves).
CREST_JOINT_REACH_MM = 20.0
#: The crest is never lowered by more than this fraction of the wing above the ramp start.
CREST_MAX_LOWERING = 0.45
#: A higher sacral seat stretches the sacrum above its joints by at most this strain.
MAX_SEAT_STRAIN = 0.35
#: Mammillary process and tongue-in-groove reach (Gaussian σ, mm).
MAMMILLARY_REACH_MM = 6.0
TONGUE_HALF_WIDTH_MM = 5.0
TONGUE_DEPTH_REACH_MM = 9.0
#: Radius of the S1 foramen inside which the enlargement is a pure scaling.
FORAMEN_RADIUS_MM = 6.5
#: Body heights are read this far inside the anterior and posterior walls, the depth this far
#: inside the endplates (as the label measure, models.phantom.measure.body_dimensions, reads them).
HEIGHT_WALL_INSET_MM = 3.0
#: The bone's endplate is looked for within this distance beyond the body's endplate line.
ENDPLATE_SEARCH_MM = 6.0
#: The canal's posterior shift is whole within this distance of the midline (the spinous process
#: moves back as a whole) and fades out to the pedicles' medial walls.
SPINOUS_HALF_WIDTH_MM = 4.0
#: In front of where the canal's lateral shift is whole (PEDICLE_FRONT_MM) it fades in over this
#: distance (the body's posterolateral corners slide with the pedicles' roots; its middle keeps
#: its width).
BODY_FADE_MM = 8.0
#: Corrections of the canal's shift after measuring the splined bone (secant steps), and the
#: error below which none is needed (the measure's voxels are 0.5 mm).
CANAL_FIT_STEPS = 2
CANAL_TOLERANCE_MM = 0.5
#: The facet joints' share of the lateral shift starts this far behind the pedicles' centre and
#: is whole this fraction of the way to the joint's centre (over the whole articular process).
JOINT_START_MM = 3.0
JOINT_REACH = 0.4
#: Past a facet joint's centre a process's tip blends into the neighbour's shift over this
#: fraction of the pedicle-to-joint distance (:class:`JointShift`).
TIP_REACH = 0.5
#: The lateral shift is whole from this far in front of the pedicles' isthmus centre (or from the
#: body's posterior wall if that is further forward), so that each pedicle moves as a whole and
#: keeps its width and its distance from the body (L5's isthmus lies at the body's corner).
PEDICLE_FRONT_MM = 7.0
#: Corrections of a body's quadrilateral toward the whole bone's target heights (the reading frame
#: moves with the bone: one step left seed 42's L1 0.29 mm tall, two leave under 0.25).
BONE_HEIGHT_FIT_STEPS = 2

#: The body's widening fades out over this fraction of the way from its middle to its posterior
#: wall: the back corners, where the pedicles' roots join (L5's isthmus lies there) and beside
#: which the exiting roots run, keep the posterior elements' scale.
WIDEN_FADE = 0.6


def _apply(matrix: NDArray[np.float64], points: Points) -> Points:
    return np.asarray(points, dtype=np.float64) @ matrix[:3, :3].T + matrix[:3, 3]


def _dedupe(points: Points, spacing_mm: float = CONTROL_MIN_SPACING_MM) -> NDArray[np.intp]:
    """Indices of points kept in order, dropping any within ``spacing_mm`` of a kept one."""
    kept: list[int] = []
    tree_points: list[Points] = []
    for i, p in enumerate(points):
        if tree_points and np.min(np.linalg.norm(np.asarray(tree_points) - p, axis=1)) < spacing_mm:
            continue
        kept.append(i)
        tree_points.append(p)
    return np.asarray(kept, dtype=np.intp)


def _spline(sources: Points, targets: Points) -> RBFInterpolator:
    """Thin-plate spline through the displacements (exact at the controls)."""
    return RBFInterpolator(sources, targets - sources, kernel="thin_plate_spline", degree=1)


# --- what the template measures -----------------------------------------------------------------
@dataclass(frozen=True)
class JointGeometry:
    """One sacroiliac joint of the template: auricular points on both bones, centre, long axis."""

    sacral_points: Points
    iliac_points: Points
    center_mm: Points
    long_axis: Points


@dataclass(frozen=True)
class TemplateAnatomy:
    """The template measured once: endplates, body frames, S1 endplate, joints, key points."""

    superior: dict[str, Endplate]  # "L1".."L5", "S1"
    inferior: dict[str, Endplate]  # "L1".."L5"
    frames: dict[str, BodyFrame]
    s1_half_width_mm: float
    s1_v_posterior: float  # posterior extreme of S1 along its endplate (from the centre)
    s1_v_anterior: float
    joints: dict[str, JointGeometry]
    promontory_mm: Points
    apex_mm: Points
    trees: dict[str, cKDTree] = field(repr=False)
    #: per level, per side: the pedicle's isthmus chord (models.template.pedicle)
    pedicles: dict[str, dict[str, TemplatePedicle]] = field(default_factory=dict, repr=False)
    #: per level: (anterior, posterior) whole-bone chord / body line height, 3 mm inside the walls
    bone_height_ratios: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: per level: the template's canal (width, depth) as models.yardstick measures it
    canals: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def sacral_slope_deg(self) -> float:
        return tilt_deg(self.superior["S1"].normal)

    @property
    def s1_posterior_rim_mm(self) -> Points:
        return self.superior["S1"].center_mm - self.s1_v_posterior * anterior_at_tilt(
            math.radians(self.sacral_slope_deg)
        )


def measure_template(template: BoneTemplate) -> TemplateAnatomy:
    """Measure the template (endplates, bodies, S1, joints); cached per template object."""
    key = id(template)
    cached = _ANATOMY_CACHE.get(key)
    if cached is not None and cached[0] is template:
        return cached[1]
    anatomy = _measure(template)
    if len(_ANATOMY_CACHE) > 4:
        _ANATOMY_CACHE.clear()
    _ANATOMY_CACHE[key] = (template, anatomy)
    return anatomy


_ANATOMY_CACHE: dict[int, tuple[BoneTemplate, TemplateAnatomy]] = {}


def _measure(template: BoneTemplate) -> TemplateAnatomy:
    superior: dict[str, Endplate] = {}
    inferior: dict[str, Endplate] = {}
    frames: dict[str, BodyFrame] = {}
    seed = np.array([0.0, 0.0, 1.0])
    for level in LUMBAR_LEVELS:
        body = template.body_meshes[level]
        superior[level] = fit_endplate(body, seed, cranial=True)
        inferior[level] = fit_endplate(body, superior[level].normal, cranial=False)
        frames[level] = body_frame(body, superior[level], inferior[level])
        seed = inferior[level].normal
    pedicles = {level: measure_pedicles(template, level, frames[level]) for level in LUMBAR_LEVELS}
    ratios = {
        level: _bone_height_ratios(
            template.bones[level], template.body_meshes[level], frames[level]
        )
        for level in LUMBAR_LEVELS
    }
    canals = {level: canal_mm(template.bones[level]) for level in LUMBAR_LEVELS}
    s1_body = template.body_meshes["S1"]
    superior["S1"] = s1 = fit_endplate(s1_body, seed, cranial=True)
    anterior = anterior_at_tilt(math.radians(tilt_deg(s1.normal)))
    rel = np.asarray(s1_body.vertices_mm) - s1.center_mm
    near = (np.abs(rel[:, 0]) < 3.0) & (rel @ s1.normal > -8.0)
    along = rel[near] @ anterior
    face_vertices = np.unique(np.asarray(s1_body.faces)[s1.face_mask])
    s1_half_width = 0.5 * float(np.ptp(np.asarray(s1_body.vertices_mm)[face_vertices, 0]))
    # promontory: the anterior rim of S1 in the midline; apex: the sacral point farthest below.
    promontory = s1.center_mm + float(along.max()) * anterior
    sacrum = np.asarray(template.bones["sacrum"].vertices_mm)
    apex = sacrum[int(np.argmax(np.linalg.norm(sacrum - promontory, axis=1)))]
    trees = {name: cKDTree(np.asarray(mesh.vertices_mm)) for name, mesh in template.bones.items()}
    joints = {}
    for side in SIDES:
        hip = trees[f"hip_{side}"]
        sign = 1.0 if side == "left" else -1.0
        lateral = sacrum[sacrum[:, 0] * sign > 0]
        d_sacral, _ = hip.query(lateral, distance_upper_bound=JOINT_CONTACT_MM)
        sacral_points = lateral[np.isfinite(d_sacral)]
        hip_vertices = np.asarray(template.bones[f"hip_{side}"].vertices_mm)
        d_iliac, _ = trees["sacrum"].query(hip_vertices, distance_upper_bound=JOINT_CONTACT_MM)
        iliac_points = hip_vertices[np.isfinite(d_iliac)]
        if len(sacral_points) < 10 or len(iliac_points) < 10:
            raise ValueError(f"template: no sacroiliac joint found on the {side} side")
        center = 0.5 * (sacral_points.mean(axis=0) + iliac_points.mean(axis=0))
        centered = sacral_points - sacral_points.mean(axis=0)
        long_axis = np.linalg.svd(centered, full_matrices=False)[2][0]
        joints[side] = JointGeometry(sacral_points, iliac_points, center, long_axis)
    return TemplateAnatomy(
        superior=superior,
        inferior=inferior,
        frames=frames,
        s1_half_width_mm=s1_half_width,
        s1_v_posterior=float(-along.min()),
        s1_v_anterior=float(along.max()),
        joints=joints,
        promontory_mm=promontory,
        apex_mm=apex,
        trees=trees,
        pedicles=pedicles,
        bone_height_ratios=ratios,
        canals=canals,
    )


@dataclass(frozen=True)
class HeightReading:
    """Where body heights are read, as the label measure (models.phantom.measure.body_dimensions)
    reads them: a frame through the body's endplate-vertex centres (origin midway, w from the
    inferior to the superior centre, u ⟂ w toward the left, v = w × u posterior), and the v of
    the anterior and posterior chords, ``HEIGHT_WALL_INSET_MM`` inside the midsagittal depth
    measured 3 mm inside the endplates."""

    origin_mm: Points
    u: Points
    v: Points
    w: Points
    half_height_mm: float
    v_walls_mm: tuple[float, float]

    def point(self, u: float, v: float, w: float) -> Points:
        return self.origin_mm + u * self.u + v * self.v + w * self.w


def height_reading(body: TriangleMesh) -> HeightReading:
    """The height chords' frame and positions on a vertebral body mesh."""
    vertices = np.asarray(body.vertices_mm, dtype=np.float64)
    superior, inferior = endplate_vertex_centres(vertices, np.asarray(body.faces))
    w = (superior - inferior) / np.linalg.norm(superior - inferior)
    u = np.array([1.0, 0.0, 0.0]) - w[0] * w
    u /= np.linalg.norm(u)
    v = np.cross(w, u)
    origin = 0.5 * (superior + inferior)
    half = 0.5 * float(np.linalg.norm(superior - inferior))
    caster = RayCaster(body)
    depths = []
    for height in (half - HEIGHT_WALL_INSET_MM, -half + HEIGHT_WALL_INSET_MM):
        centre = origin + height * w
        hits = caster.hits(centre - 40.0 * v, centre + 40.0 * v)
        if len(hits) >= 2:
            along = (hits - origin) @ v
            depths.append(float(along.max() - along.min()))
    depth = float(np.mean(depths)) if depths else float(np.ptp((vertices - origin) @ v))
    walls = (-depth / 2 + HEIGHT_WALL_INSET_MM, depth / 2 - HEIGHT_WALL_INSET_MM)
    return HeightReading(origin, u, v, w, half, walls)


def bone_wall_heights_mm(bone: TriangleMesh, reading: HeightReading) -> tuple[float, float]:
    """(anterior, posterior) heights of the whole bone along the reading's w at its wall
    positions, averaged over u = −2…2 mm: from the bone's lowest to its highest surface crossing
    within ``ENDPLATE_SEARCH_MM`` beyond the body's half height (a vascular channel inside the
    body adds crossings between them, never beyond)."""
    caster = RayCaster(bone)
    reach = reading.half_height_mm + ENDPLATE_SEARCH_MM
    heights = []
    for v in reading.v_walls_mm:
        chords = []
        for u in (-2.0, -1.0, 0.0, 1.0, 2.0):
            start, end = reading.point(u, v, -reach), reading.point(u, v, reach)
            hits = caster.hits(start, end)
            if len(hits) >= 2:
                along = (hits - reading.origin_mm) @ reading.w
                chords.append(float(along.max() - along.min()))
        if not chords:
            raise ValueError("template: no bone crossing along a vertebral body's wall")
        heights.append(float(np.mean(chords)))
    return heights[0], heights[1]


def _bone_height_ratios(
    bone: TriangleMesh, body: TriangleMesh, frame: BodyFrame
) -> tuple[float, float]:
    """(anterior, posterior) ratio of the whole bone's height, read as the label measure reads
    it, to the height between the body's endplate lines there (≈1.05: the body-only mesh's
    endplates lie inside the bone's)."""
    reading = height_reading(body)
    bone_heights = bone_wall_heights_mm(bone, reading)
    ratios = []
    for v, bone_height in zip(reading.v_walls_mm, bone_heights, strict=True):
        local_v = float(frame.to_local(reading.point(0.0, v, 0.0)[None])[0, 1])
        ratios.append(bone_height / float(frame.w_superior(local_v) - frame.w_inferior(local_v)))
    return ratios[0], ratios[1]


def _bone_height_fit(
    template: BoneTemplate,
    level: str,
    frame: BodyFrame,
    quad: TargetQuad,
    target: VertebraTargets,
    spline: RBFInterpolator,
) -> TargetQuad:
    """``quad`` corrected once so that the splined whole bone, read where the label measure reads
    it, has the target heights there (the template's ratios are measured in the template's
    reading frame; the warp moves that frame and the bone's endplates a little)."""

    def splined(mesh: TriangleMesh) -> TriangleMesh:
        local = frame.to_local(np.asarray(mesh.vertices_mm))
        return TriangleMesh(local + spline(local), mesh.faces)

    reading = height_reading(splined(template.body_meshes[level]))
    measured = bone_wall_heights_mm(splined(template.bones[level]), reading)
    depth = quad.depth_mm
    corrected = []
    for v, height, rim in zip(
        reading.v_walls_mm,
        measured,
        (quad.height_anterior_mm, quad.height_posterior_mm),
        strict=True,
    ):
        fraction = float(reading.point(0.0, v, 0.0)[1] + depth / 2) / depth
        wanted = target.body_height_anterior_mm + fraction * (
            target.body_height_posterior_mm - target.body_height_anterior_mm
        )
        corrected.append(rim * wanted / height)
    return TargetQuad(depth, corrected[0], corrected[1])


# --- one lumbar vertebra ------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetQuad:
    """The target body in its local frame: centred, depth D, rim heights anterior/posterior."""

    depth_mm: float
    height_anterior_mm: float
    height_posterior_mm: float

    def w_superior(self, v: float | NDArray[np.float64]) -> NDArray[np.float64]:
        fraction = (np.asarray(v) + self.depth_mm / 2) / self.depth_mm
        return 0.5 * (
            self.height_anterior_mm
            + fraction * (self.height_posterior_mm - self.height_anterior_mm)
        )

    def corner(self, which: str) -> Points:
        v = -self.depth_mm / 2 if which[1] == "a" else self.depth_mm / 2
        w = self.w_superior(v) * (1.0 if which[0] == "s" else -1.0)
        return np.array([0.0, v, float(w)])

    def tilt_rad(self, superior: bool) -> float:
        """Tilt (local) of the superior or inferior endplate line's cranial normal."""
        drop = 0.5 * (self.height_posterior_mm - self.height_anterior_mm)  # w change a → p
        angle = math.atan2(drop, self.depth_mm)
        # superior line rises posteriorly by `drop`: its normal leans anteriorly by that angle
        return angle if superior else -angle


# --- the spinal canal -----------------------------------------------------------------------------
def canal_mm(bone: TriangleMesh) -> tuple[float, float]:
    """(width, depth) of a vertebra's canal as :func:`models.yardstick.measure_vertebra` measures
    it (the enclosed hole at pedicle level: its full left–right extent, its antero-posterior extent
    on the midline; medians over the slices), on a mesh in LPS orientation (or a body frame)."""
    import pyvista as pv

    from fluorosim.models import yardstick  # lazily: the yardstick module loads the patient model

    faces = np.asarray(bone.faces)
    mesh = pv.PolyData(
        np.asarray(bone.vertices_mm, dtype=np.float64), np.c_[np.full(len(faces), 3), faces].ravel()
    )
    dims = yardstick.measure_vertebra(mesh)
    return dims.canal_width_mm, dims.canal_depth_mm


@dataclass(frozen=True)
class JointShift:
    """A facet joint's lateral shift, shared by its two articular processes so that they stay
    congruent, and where the joint lies in this vertebra's frame (template-local v, w).

    ``beyond_mm`` (an upper vertebra's inferior joint only): the lower vertebra's own lateral
    shift. Past the joint's centre the inferior process's tip lies against the lower vertebra's
    lamina and the base of its superior process, so it blends into that shift over ``TIP_REACH``
    of the pedicle-to-joint distance. With the joint's shift alone, L1's inferior processes, moved
    out ≈4.8 mm a side with its widened canal, reached up to 0.27 mm further into L2's arch than
    with no canal shift; with the tip's blend 0.15 (seeds 0–2, both sexes). A superior process's
    tip lies against the upper vertebra's pars, which already moves with the joint: blending it
    into the upper's own shift pushed L5's superior processes up to 1.2 mm into L4's.
    """

    v_mm: float
    w_mm: float
    lateral_mm: float
    beyond_mm: float | None = None


@dataclass(frozen=True)
class CanalShift:
    """How one vertebra's posterior elements move so that its canal has the target width and depth:
    a smooth displacement (target mm) of template-local points, added after the spline, with no
    vertical component (the pedicles keep their heights) and none in the body's front two thirds.

    Lateral: each side moves out by ``lateral_mm``: zero in the midline (the spinous process
    stays), full from the pedicles' medial walls outward, so the pedicles, the articular pillars
    and the transverse processes move as a whole and keep their widths. It is full from
    ``PEDICLE_FRONT_MM`` in front of the pedicles' isthmus (or the body's posterior wall) backward
    and fades in over ``BODY_FADE_MM`` in front of that: the pedicles' roots and the body's
    posterolateral corners slide out (where that widens the body, the body is designed narrower:
    :meth:`PatientWarp._fit_bodies_and_canals`). Behind the pedicles, toward each facet joint
    (above or below the pedicles' middle), it blends into that joint's shift
    (:class:`JointShift`), whole over the articular process, so that the two processes of a joint
    move together (an inferior process's tip, past the joint, into the lower vertebra's shift; a
    vertebra with no drawn canal moves only its articular processes, with its neighbours').

    Posterior: the canal's back wall moves back by ``posterior_mm`` in the midline: zero at the
    body's posterior wall, full from the template canal's depth backward (the spinous process
    moves back as a whole, ``SPINOUS_HALF_WIDTH_MM`` either side of the midline), fading out
    laterally to zero at ``midline_fade_u_mm`` (the laminae meet at a more acute angle, as a
    deeper canal's do; the pedicles and the facets stay).
    """

    lateral_mm: float
    posterior_mm: float
    depth_mm: float
    #: template-local |u| of the pedicles' medial walls (the lateral shift is full from there)
    medial_wall_u_mm: float
    #: template-local |u| where the posterior shift has faded out: the same for every level (the
    #: narrowest canal's medial walls), so that an upper vertebra's inferior articular processes
    #: and the lamina below them, which touch there, move back alike
    midline_fade_u_mm: float
    #: template-local (v, w) of the pedicles' centre (the walls' own shift there)
    pedicle_vw_mm: tuple[float, float]
    superior_joint: JointShift | None = None
    inferior_joint: JointShift | None = None

    def displacement(self, frame: BodyFrame, local: Points) -> Points:
        """Target-local displacement of template-local points."""
        u, v, w = local[:, 0], local[:, 1], local[:, 2]
        lateral = np.full(len(local), self.lateral_mm)
        v_pedicle, w_pedicle = self.pedicle_vw_mm
        for joint in (self.superior_joint, self.inferior_joint):
            if joint is None or abs(joint.w_mm - w_pedicle) < 1.0:
                continue
            start = v_pedicle + JOINT_START_MM
            weight = smoothstep((v - start) / max(JOINT_REACH * (joint.v_mm - start), 1.0))
            weight *= smoothstep((w - w_pedicle) / (JOINT_REACH * (joint.w_mm - w_pedicle)))
            lateral += weight * (joint.lateral_mm - self.lateral_mm)
            if joint.beyond_mm is not None:
                past = (w - joint.w_mm) * math.copysign(1.0, joint.w_mm - w_pedicle)
                tip = smoothstep(past / (TIP_REACH * abs(joint.w_mm - w_pedicle)))
                lateral += weight * tip * (joint.beyond_mm - joint.lateral_mm)
        behind = v - frame.v_posterior
        full_v = min(frame.v_posterior, v_pedicle - PEDICLE_FRONT_MM)
        across = smoothstep(np.abs(u) / self.medial_wall_u_mm)
        across *= smoothstep((v - full_v + BODY_FADE_MM) / BODY_FADE_MM)
        midline = 1.0 - smoothstep(
            (np.abs(u) - SPINOUS_HALF_WIDTH_MM) / (self.midline_fade_u_mm - SPINOUS_HALF_WIDTH_MM)
        )
        back = smoothstep(behind / self.depth_mm) * midline
        return np.column_stack([np.sign(u) * lateral * across, self.posterior_mm * back, 0.0 * u])


def _designed_vertebra_map(
    frame: BodyFrame, quad: TargetQuad, target: VertebraTargets, local: Points
) -> Points:
    """The designed map template-local → target-local (see module docstring, step 1): u scales as
    the body-only mesh's widest extent to the target width (the scale at which the posterior
    elements' pedicles, canal and facets are fitted; the body itself is then widened or narrowed
    to its target width after the spline: :class:`BodyWiden`)."""
    u, v, w = local[:, 0], local[:, 1], local[:, 2]
    va, vp = frame.v_anterior, frame.v_posterior
    su = target.body_width_mm / frame.width_mm
    sw = quad.height_posterior_mm / frame.height_posterior_mm
    sv = 0.5 * (su + sw)
    depth = quad.depth_mm
    v_body = np.minimum(v, vp)
    fraction = (v_body - va) / (vp - va)
    v_new = -depth / 2 + fraction * depth
    w_inf, w_sup = frame.w_inferior(v_body), frame.w_superior(v_body)
    t = (w - w_inf) / (w_sup - w_inf)
    ws_new = quad.w_superior(v_new)
    w_new = -ws_new + t * 2.0 * ws_new
    posterior = v > vp
    w_mid = 0.5 * (frame.w_superior(vp) + frame.w_inferior(vp))
    v_new = np.where(posterior, depth / 2 + sv * (v - vp), v_new)
    w_new = np.where(posterior, sw * (w - w_mid), w_new)
    return np.column_stack([su * u, v_new, w_new])


@dataclass(frozen=True)
class BodyWiden:
    """The body's own width, after the spline: target-local u times ``factor`` in front of the
    body's middle (template-local ``v_middle_mm``), blending to 1 over ``WIDEN_FADE`` of the way
    to its posterior wall (``v_posterior_mm``), so that the pedicles' roots at the body's back
    corners (L5's isthmus lies there), the canal and everything behind it keep the posterior
    elements' scale.

    The designed map scales u as the ArtiSynth body-only mesh's widest extent, which is 2–15 %
    wider than the whole bone's waist; ``factor`` makes the bone's mean width through the body's
    middle (:func:`~models.template.warp_geometry.coronal_mean_width_mm`) the target's."""

    factor: float
    v_middle_mm: float
    v_posterior_mm: float

    def displacement(self, local: Points, moved: Points) -> Points:
        """Target-local displacement of template-local points ``local`` already at ``moved``."""
        weight = 1.0 - smoothstep(
            (local[:, 1] - self.v_middle_mm)
            / (WIDEN_FADE * (self.v_posterior_mm - self.v_middle_mm))
        )
        zero = np.zeros(len(local))
        return np.column_stack([(self.factor - 1.0) * weight * moved[:, 0], zero, zero])


@dataclass
class VertebraMap:
    """Template → patient map of one lumbar vertebra (template frame in, patient LPS out)."""

    frame: BodyFrame
    quad: TargetQuad
    spline: RBFInterpolator
    controls_template: Points
    controls_local_target: Points
    final_from_local: NDArray[np.float64] = field(default_factory=lambda: np.eye(4))
    #: raises the pedicles' undersides to their target height (after the spline)
    pedicle_lift: PedicleLift | None = None
    #: moves the posterior elements so that the canal has its target (after the spline)
    canal: CanalShift | None = None
    #: turns the facet joints' articular processes to their target angles (after the canal)
    facet_turn: FacetTurn | None = None
    #: widens (or narrows) the body alone to its target width (right after the spline)
    body_widen: BodyWiden | None = None

    def local_target(self, points_template: Points) -> Points:
        local = self.frame.to_local(points_template)
        return local + self.displacement(local)

    def displacement(self, local: Points) -> Points:
        """Template-local points → their target-local displacement (spline, body width, lift,
        canal, then the facet turn of where those put them)."""
        displacement: Points = self.spline(local)
        if self.body_widen is not None:
            displacement = displacement + self.body_widen.displacement(local, local + displacement)
        if self.pedicle_lift is not None:
            displacement = displacement + self.pedicle_lift(local)
        if self.canal is not None:
            displacement = displacement + self.canal.displacement(self.frame, local)
        if self.facet_turn is not None:
            turned: Points = self.facet_turn(local + displacement) - local
            return turned
        return displacement

    def __call__(self, points_template: Points) -> Points:
        return _apply(self.final_from_local, self.local_target(points_template))


def _vertebra_controls(
    template: BoneTemplate, anatomy: TemplateAnatomy, level: str
) -> tuple[Points, Points]:
    """Control points of one vertebra in template-local coordinates, and the template ones."""
    frame = anatomy.frames[level]
    va, vp = frame.v_anterior, frame.v_posterior
    key_local = [
        [0.0, va, frame.w_superior(va)],
        [0.0, vp, frame.w_superior(vp)],
        [0.0, va, frame.w_inferior(va)],
        [0.0, vp, frame.w_inferior(vp)],
        [0.0, va, 0.5 * (frame.w_superior(va) + frame.w_inferior(va))],
    ]
    key = list(frame.to_template(np.asarray(key_local)))
    key += [anatomy.superior[level].center_mm, anatomy.inferior[level].center_mm]
    body = np.asarray(template.body_meshes[level].vertices_mm)
    key += [body[int(np.argmax(body[:, 0]))], body[int(np.argmin(body[:, 0]))]]
    key += [
        np.asarray(value, dtype=np.float64)
        for name, value in sorted(template.landmarks.items())
        if name.startswith(f"{level}_") and np.shape(value) == (3,) and not is_direction(name)
    ]
    vertices = np.asarray(template.bones[level].vertices_mm)
    samples = vertices[farthest_points(vertices, VERTEBRA_SAMPLES)]
    points = np.vstack([np.asarray(key), samples])
    points = points[_dedupe(points)]
    return points, frame.to_local(points)


# --- the pelvic ring ----------------------------------------------------------------------------
@dataclass
class PelvisMap:
    """Template → patient map of the sacrum, coccyx and both hip bones (one smooth field)."""

    spline: RBFInterpolator
    rotation: NDArray[np.float64]
    controls_template: Points
    controls_target: Points  # before the rotation

    def __call__(self, points_template: Points) -> Points:
        points = np.asarray(points_template, dtype=np.float64)
        displacement: Points = self.spline(points)
        return (points + displacement) @ self.rotation.T


@dataclass
class _PelvicField:
    """The designed pelvic field, built up term by term (template frame, before the rotation)."""

    anatomy: TemplateAnatomy
    targets: PatientTargets
    rotation: NDArray[np.float64]
    joint_top_tau: float = 0.0
    terms: list[PelvicTerm] = field(default_factory=list)

    def __call__(self, points: Points, is_hip: NDArray[np.bool_]) -> Points:
        out = np.asarray(points, dtype=np.float64).copy()
        for term in self.terms:
            out = term(points, out, is_hip)
        return out


@dataclass
class _Feature:
    """A local pelvic feature: its designed term and the dense controls that let the spline follow."""

    controls: Points
    controls_on_hip: NDArray[np.bool_]
    term: PelvicTerm

    def __call__(self, points: Points, out: Points, is_hip: NDArray[np.bool_]) -> Points:
        return self.term(points, out, is_hip)


class PatientWarp:
    """One patient grown from the template. Build with :func:`patient_warp`."""

    def __init__(self, template: BoneTemplate, targets: PatientTargets) -> None:
        self.template = template
        self.targets = targets
        self.anatomy = measure_template(template)
        self._build()

    # -- public API --------------------------------------------------------------------------
    def warp_points(self, bone: str, points_mm: Points) -> Points:
        """Map template points of ``bone`` ("L1".."L5", "sacrum", "coccyx", "hip_left",
        "hip_right", or "S1" for the S1 body) into the patient (LPS mm)."""
        points = np.asarray(points_mm, dtype=np.float64)
        flat = points.reshape(-1, 3)
        if bone in self.vertebra_maps:
            out = self.vertebra_maps[bone](flat)
        elif bone in PELVIC_BONES or bone == "S1":
            out = self.pelvis_map(flat)
            if bone in ("sacrum", "S1") and self.sacral_turn is not None:
                out = self.sacral_turn(out)
        else:
            raise KeyError(f"unknown bone {bone!r}; known: {(*LUMBAR_LEVELS, *PELVIC_BONES)}")
        return out.reshape(points.shape)

    def warp_bone(self, bone: str) -> TriangleMesh:
        """The patient's surface of one bone (same faces as the template)."""
        if bone not in self._bone_cache:
            mesh = self.template.bones[bone]
            self._bone_cache[bone] = TriangleMesh(
                vertices_mm=self.warp_points(bone, np.asarray(mesh.vertices_mm)),
                faces=mesh.faces,
            )
        return self._bone_cache[bone]

    def warp_body(self, level: str) -> TriangleMesh:
        """The patient's vertebral body alone ("L1".."L5", "S1")."""
        mesh = self.template.body_meshes[level]
        return TriangleMesh(
            vertices_mm=self.warp_points(level, np.asarray(mesh.vertices_mm)), faces=mesh.faces
        )

    def warp_space(self, points_mm: Points) -> Points:
        """Map template points that belong to no single bone (discs, roots, vessels, soft tissue):
        a blend of the bone maps weighted by inverse distance⁴ to each bone group's surface."""
        points = np.asarray(points_mm, dtype=np.float64)
        flat = points.reshape(-1, 3)
        groups = {level: [level] for level in LUMBAR_LEVELS}
        groups["pelvis"] = list(PELVIC_BONES)
        distances, mapped = [], []
        for bones in groups.values():
            d = np.min([self.anatomy.trees[b].query(flat)[0] for b in bones], axis=0)
            distances.append(d)
            mapped.append(self.warp_points(bones[0], flat))
        weights = 1.0 / (np.asarray(distances) + 1.0) ** 4
        weights /= weights.sum(axis=0)
        out: Points = np.einsum("gn,gnk->nk", weights, np.asarray(mapped))
        return out.reshape(points.shape)

    @cached_property
    def landmarks(self) -> dict[str, NDArray[np.float64]]:
        """Every template landmark mapped into the patient (by its bone, or blended between)."""
        result = {}
        for name, value in refreshed_landmarks(self.template).items():
            value = np.asarray(value, dtype=np.float64)
            if is_direction(name) and value.shape == (3,):
                result[name] = self._warp_direction(name, value)
            else:
                result[name] = self._warp_landmark(name, value)
        return result

    def endplate(self, level: str, which: str) -> tuple[Points, Points]:
        """Patient endplate centre and cranial unit normal (``which``: "superior"/"inferior")."""
        plates = self.anatomy.superior if which == "superior" else self.anatomy.inferior
        plate = plates[level]
        bone = "S1" if level == "S1" else level
        center = self.warp_points(bone, plate.center_mm)
        return center, self._normals[(level, which)]

    @property
    def crest_top_mm(self) -> dict[str, Points]:
        """Most cranial point of each iliac crest in the patient."""
        tops = {}
        for side in SIDES:
            vertices = self.warp_bone(f"hip_{side}").vertices_mm
            tops[side] = vertices[int(np.argmax(vertices[:, 2]))]
        return tops

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        self._bone_cache: dict[str, TriangleMesh] = {}
        self._normals: dict[tuple[str, str], Points] = {}
        #: turns the sacrum's superior articular processes with L5's inferior ones to the L5/S1
        #: target (patient frame, after the pelvic map; the sacrum and "S1" only)
        self.sacral_turn: FacetTurn | None = None
        t = self.targets
        anatomy = self.anatomy
        slope_change = math.radians(t.sacral_slope_deg - anatomy.sacral_slope_deg)
        pelvic = _PelvicField(anatomy, t, rotation_x(slope_change))
        self._lateral_terms(pelvic)
        features = self._feature_terms(pelvic) if t.variant == "dysmorphic_upper_sacrum" else []
        controls, is_hip = self._pelvis_controls(features)
        # A preliminary pelvis carries the spine (the S1 endplate does not move with the terms
        # that follow); the crest height is then set against the stacked spine.
        self.pelvis_map = self._fit_pelvis(pelvic, controls, is_hip)
        self._stack_lumbar()
        self._height_terms(pelvic)
        for term in features:
            pelvic.terms.append(term)
        self.pelvis_map = self._fit_pelvis(pelvic, controls, is_hip)
        self._bone_cache.clear()
        self._normals[("S1", "superior")] = normal_at_tilt(math.radians(t.sacral_slope_deg))
        if t.variants.l5_transverse_half_span_mm is not None:
            self._sacralise_l5()
        self._turn_l5_s1()

    def _fit_pelvis(
        self, pelvic: _PelvicField, controls: Points, is_hip: NDArray[np.bool_]
    ) -> PelvisMap:
        """Fit the spline, then trim the rigid rotation so that the warped S1 endplate (fitted like
        every endplate) has exactly the target sacral slope (the spline may tilt it by ≈0.5°)."""
        targets = pelvic(controls, is_hip)
        spline = _spline(controls, targets)
        unrotated = PelvisMap(spline, np.eye(3), controls, targets)
        s1_body = self.template.body_meshes["S1"]
        warped = TriangleMesh(unrotated(np.asarray(s1_body.vertices_mm)), s1_body.faces)
        plate = fit_endplate(warped, self.anatomy.superior["S1"].normal, cranial=True)
        trim = math.radians(self.targets.sacral_slope_deg - tilt_deg(plate.normal))
        pelvic.rotation = rotation_x(trim)
        return PelvisMap(spline, pelvic.rotation, controls, targets)

    def _pelvis_controls(self, features: list[_Feature]) -> tuple[Points, NDArray[np.bool_]]:
        a, template = self.anatomy, self.template
        key: list[Points] = [np.zeros(3), a.superior["S1"].center_mm, a.promontory_mm, a.apex_mm]
        key.append(a.s1_posterior_rim_mm)
        key_hip: list[bool] = [False] * len(key)
        for side in SIDES:
            joint = a.joints[side]
            for points, hip in ((joint.sacral_points, False), (joint.iliac_points, True)):
                chosen = points[farthest_points(points, 12)]
                key += list(chosen)
                key_hip += [hip] * len(chosen)
        for name, value in sorted(template.landmarks.items()):
            value = np.asarray(value, dtype=np.float64)
            if value.shape != (3,) or is_direction(name):
                continue
            distance = {b: float(a.trees[b].query(value)[0]) for b in a.trees}
            nearest = min(distance, key=lambda b: distance[b])
            if nearest in PELVIC_BONES and distance[nearest] < 6.0:
                key.append(value)
                key_hip.append(nearest.startswith("hip"))
        for feature in features:
            key += list(feature.controls)
            key_hip += list(feature.controls_on_hip)
        samples, sample_hip = [], []
        for bone, count in PELVIS_SAMPLES.items():
            vertices = np.asarray(template.bones[bone].vertices_mm)
            chosen = vertices[farthest_points(vertices, count)]
            samples.append(chosen)
            sample_hip += [bone.startswith("hip")] * len(chosen)
        points = np.vstack([np.asarray(key), *samples])
        is_hip = np.asarray(key_hip + sample_hip, dtype=bool)
        keep = _dedupe(points)
        return points[keep], is_hip[keep]

    # pelvic terms --------------------------------------------------------------------------
    def _lateral_terms(self, pelvic: _PelvicField) -> None:
        """Breadths (S1 body, joints, pelvis), sagittal size and the auricular height."""
        a, t = self.anatomy, self.targets
        p = t.pelvis
        x_s1 = a.s1_half_width_mm
        x_joint = float(np.mean([abs(a.joints[s].center_mm[0]) for s in SIDES]))
        inner = p.s1_body_width_ratio
        joint_ratio = p.interauricular_ratio
        middle = (x_joint * joint_ratio - x_s1 * inner) / (x_joint - x_s1)
        if middle < 0.5:  # never fold the ala: give up a little S1 width instead
            inner = (x_joint * joint_ratio - 0.5 * (x_joint - x_s1)) / x_s1
            middle = 0.5
        outer = p.pelvic_width_scale
        sagittal = p.sagittal_scale
        self.effective_s1_width_ratio = inner
        sacrum_y = np.asarray(self.template.bones["sacrum"].vertices_mm)[:, 1]
        y_front = float(sacrum_y.min()) - LATERAL_BLEND_MM

        def lateral(points: Points, out: Points, is_hip: NDArray[np.bool_]) -> Points:
            x = points[:, 0]
            ax = np.abs(x)
            profile = np.where(
                ax <= x_s1,
                inner * ax,
                np.where(
                    ax <= x_joint,
                    x_s1 * inner + (ax - x_s1) * middle,
                    x_joint * joint_ratio + (ax - x_joint) * outer,
                ),
            )
            # one function of position for both bones (the joints stay congruent): the sacral
            # profile behind the front of the sacrum, the plain pelvic width in front of it
            behind = smoothstep((points[:, 1] - y_front) / LATERAL_BLEND_MM)
            out[:, 0] = np.sign(x) * (behind * profile + (1.0 - behind) * outer * ax)
            out[:, 1:] = points[:, 1:] * sagittal
            return out

        ratio = p.auricular_height_ratio
        n_s1 = a.superior["S1"].normal
        joint_points = np.vstack([a.joints[s].sacral_points for s in SIDES])
        tau_top = float(-a.promontory_mm @ n_s1)
        tau_joint_top = float(np.min(-(joint_points @ n_s1)))

        def auricular(points: Points, out: Points, is_hip: NDArray[np.bool_]) -> Points:
            # fades out above the joints so that the S1 endplate (the origin) never moves
            tau = -(points @ n_s1)
            fade = smoothstep((tau - tau_top) / (tau_joint_top - tau_top))
            for side in SIDES:
                joint = a.joints[side]
                rel = points - joint.center_mm
                along = rel @ joint.long_axis
                reach = fade * np.exp(-np.sum(rel**2, axis=1) / (2 * AURICULAR_REACH_MM**2))
                out = out + ((ratio - 1.0) * sagittal * along * reach)[:, None] * joint.long_axis
            return out

        pelvic.terms += [lateral, auricular]

    def _height_terms(self, pelvic: _PelvicField) -> None:
        """How high the sacrum rides between the ilia, the sacral length, the crest height."""
        a, t = self.anatomy, self.targets
        p = t.pelvis
        rotation = pelvic.rotation
        up: Points = rotation.T @ np.array([0.0, 0.0, 1.0])
        n_s1 = a.superior["S1"].normal
        joint_points = np.vstack([a.joints[s].sacral_points for s in SIDES])
        joint_tree = cKDTree(np.vstack([joint_points, *[a.joints[s].iliac_points for s in SIDES]]))
        tau_joint_bottom = float(np.max(-(joint_points @ n_s1)))
        tau_top = float(-a.promontory_mm @ n_s1)
        reference_z = self._crest_reference_z()
        tau_joint_top = float(np.min(-(joint_points @ n_s1)))
        # The joint surfaces stay congruent only if the whole joint moves with the ilium, so the
        # sacrum rides higher by stretching its upper part above the joint (limited, not folded).
        raise_mm = min(t.variants.sacrum_raise_mm, MAX_SEAT_STRAIN * (tau_joint_top - tau_top))
        self.sacrum_raise_mm = raise_mm
        if raise_mm > 0:

            def sacral_seat(points: Points, out: Points, is_hip: NDArray[np.bool_]) -> Points:
                tau = -(points @ n_s1)
                weight = smoothstep((tau - tau_top) / (tau_joint_top - tau_top))
                weight = np.where(is_hip, 1.0, weight)
                return out - (raise_mm * weight)[:, None] * up

            pelvic.terms.append(sacral_seat)
        probe = np.vstack([a.promontory_mm, a.apex_mm])
        now = pelvic(probe, np.zeros(2, dtype=bool))
        axis: Points = now[1] - now[0]
        length_now = float(np.linalg.norm(axis))
        template_length = float(np.linalg.norm(a.apex_mm - a.promontory_mm))
        change = p.sacral_height_ratio * template_length - length_now
        axis /= length_now
        tau_apex = float(-a.apex_mm @ n_s1)

        def sacral_length(points: Points, out: Points, is_hip: NDArray[np.bool_]) -> Points:
            tau = -(points @ n_s1)
            weight = smoothstep((tau - tau_joint_bottom) / (tau_apex - tau_joint_bottom))
            weight = np.where(is_hip, 0.0, weight)
            return out + (change * weight)[:, None] * axis

        pelvic.terms.append(sacral_length)
        target_z = reference_z + p.iliac_crest_offset_mm
        plans = {}
        for side in SIDES:
            iliac = a.joints[side].iliac_points
            joint_final = pelvic(iliac, np.ones(len(iliac), dtype=bool)) @ rotation.T
            z0 = float(joint_final[:, 2].mean())
            z_top = self._crest_tops(pelvic)[side]
            wing_change = max(target_z - z_top, -CREST_MAX_LOWERING * (z_top - z0))
            plans[side] = (z0, z_top, wing_change)
        self.crest_plan = plans

        def crest(points: Points, out: Points, is_hip: NDArray[np.bool_]) -> Points:
            z_final = (out @ rotation.T)[:, 2]
            away = 1.0 - np.exp(-(joint_tree.query(points)[0] ** 2) / (2 * CREST_JOINT_REACH_MM**2))
            shift: Points = np.zeros(len(points))
            for side in SIDES:
                z0, z_top, wing_change = plans[side]
                on_side = is_hip & ((points[:, 0] > 0) == (side == "left"))
                weight = smoothstep((z_final - z0) / (z_top - z0)) * away
                shift = np.where(on_side, wing_change * weight, shift)
            return out + shift[:, None] * up

        pelvic.terms.append(crest)

    def _crest_reference_z(self) -> float:
        """Height of the centre of the L4–L5 disc (the crest height is given against it)."""
        upper, _ = self.endplate("L4", "inferior")
        lower, _ = self.endplate("L5", "superior")
        return 0.5 * float(upper[2] + lower[2])

    def _crest_tops(self, pelvic: _PelvicField) -> dict[str, float]:
        """Final z of each crest top under the designed field so far."""
        tops = {}
        for side in SIDES:
            vertices = np.asarray(self.template.bones[f"hip_{side}"].vertices_mm)
            final = pelvic(vertices, np.ones(len(vertices), dtype=bool)) @ pelvic.rotation.T
            tops[side] = float(final[:, 2].max())
        return tops

    # variant features ----------------------------------------------------------------------
    def _feature_terms(self, pelvic: _PelvicField) -> list[_Feature]:
        """Dysmorphic upper sacrum: mammillary processes, tongue-in-groove joints, S1 foramina."""
        a, v = self.anatomy, self.targets.variants
        n_s1 = a.superior["S1"].normal
        sacrum = np.asarray(self.template.bones["sacrum"].vertices_mm)
        features: list[_Feature] = []
        for side in SIDES:
            sign = 1.0 if side == "left" else -1.0
            joint = a.joints[side]
            x_joint = abs(float(joint.center_mm[0]))
            lateral = sign * sacrum[:, 0]
            gap = x_joint - a.s1_half_width_mm
            band = (lateral > a.s1_half_width_mm + 0.25 * gap) & (
                lateral < a.s1_half_width_mm + 0.75 * gap
            )
            peak = sacrum[band][int(np.argmax(sacrum[band] @ n_s1))]
            features.append(self._mammillary(sacrum, peak, n_s1, v.mammillary_process_mm))
            features.append(self._tongue(joint, sign, v.tongue_in_groove_mm))
            anterior = self.template.landmarks.get(f"S1_foramen_anterior_{side}")
            if anterior is not None:
                posterior = self.template.landmarks.get(f"S1_foramen_posterior_{side}")
                features.append(
                    self._foramen(sacrum, np.asarray(anterior), posterior, n_s1, v.s1_foramen_scale)
                )
        return features

    @staticmethod
    def _mammillary(sacrum: Points, peak: Points, n_s1: Points, height_mm: float) -> _Feature:
        near = sacrum[np.linalg.norm(sacrum - peak, axis=1) < 2.5 * MAMMILLARY_REACH_MM]
        controls = np.vstack([peak, near[farthest_points(near, 24)]])

        def bump(points: Points, out: Points, is_hip: NDArray[np.bool_]) -> Points:
            weight = np.exp(-np.sum((points - peak) ** 2, axis=1) / (2 * MAMMILLARY_REACH_MM**2))
            weight = np.where(is_hip, 0.0, weight)
            return out + (height_mm * weight)[:, None] * n_s1

        return _Feature(controls, np.zeros(len(controls), dtype=bool), bump)

    @staticmethod
    def _tongue(joint: JointGeometry, sign: float, depth_mm: float) -> _Feature:
        center = joint.sacral_points.mean(axis=0)
        axes = np.linalg.svd(joint.sacral_points - center, full_matrices=False)[2]
        e_long: Points
        e_mid: Points
        e_normal: Points
        e_long, e_mid, e_normal = axes
        if e_normal[0] * sign < 0:
            e_normal = -e_normal
        half_extent = float(np.abs((joint.sacral_points - center) @ e_long).max())
        sacral = joint.sacral_points[farthest_points(joint.sacral_points, 24)]
        iliac = joint.iliac_points[farthest_points(joint.iliac_points, 24)]
        offset = 8.0 * e_normal
        controls = np.vstack([sacral, iliac, sacral - offset, iliac + offset])
        on_hip = np.array([False] * 24 + [True] * 24 + [False] * 24 + [True] * 24)[: len(controls)]

        def tongue(points: Points, out: Points, is_hip: NDArray[np.bool_]) -> Points:
            rel = points - center
            weight: Points = (
                np.exp(-((rel @ e_mid) ** 2) / (2 * TONGUE_HALF_WIDTH_MM**2))
                * np.exp(-((rel @ e_normal) ** 2) / (2 * TONGUE_DEPTH_REACH_MM**2))
                * np.exp(-(((rel @ e_long) / (0.7 * half_extent)) ** 4))
            )
            return out + (depth_mm * weight)[:, None] * e_normal

        return _Feature(controls, on_hip, tongue)

    @staticmethod
    def _foramen(
        sacrum: Points,
        anterior: Points,
        posterior: Points | None,
        n_s1: Points,
        scale: tuple[float, float],
    ) -> _Feature:
        if posterior is not None:
            axis = np.asarray(posterior, dtype=np.float64) - anterior
            length = float(np.linalg.norm(axis))
            axis /= length
        else:
            axis, length = np.array([0.0, 1.0, 0.0]), 15.0
        e_cc = n_s1 - (n_s1 @ axis) * axis
        e_cc /= np.linalg.norm(e_cc)
        e_tr = np.cross(axis, e_cc)
        middle = anterior + 0.5 * length * axis
        near = sacrum[np.linalg.norm(sacrum - middle, axis=1) < 0.5 * length + 18.0]
        controls = near[farthest_points(near, 40)] if len(near) else np.empty((0, 3))
        s_cc, s_tr = scale

        def enlarge(points: Points, out: Points, is_hip: NDArray[np.bool_]) -> Points:
            rel = points - middle
            along = rel @ axis
            across = rel - along[:, None] * axis
            radius = np.linalg.norm(across, axis=1)
            weight = np.exp(-(np.maximum(radius - FORAMEN_RADIUS_MM, 0.0) ** 2) / (2 * 5.0**2))
            weight *= np.exp(-(np.maximum(np.abs(along) - 0.5 * length, 0.0) ** 2) / (2 * 5.0**2))
            weight = np.where(is_hip, 0.0, weight)
            shift = (s_cc - 1.0) * (across @ e_cc)[:, None] * e_cc + (s_tr - 1.0) * (across @ e_tr)[
                :, None
            ] * e_tr
            return out + weight[:, None] * shift

        return _Feature(controls, np.zeros(len(controls), dtype=bool), enlarge)

    def _sacralise_l5(self) -> None:
        """Transitional L5: broad transverse processes reaching down to just above the ala."""
        v = self.targets.variants
        half_span_mm, ala_gap_mm = v.l5_transverse_half_span_mm, v.l5_transverse_to_ala_gap_mm
        if half_span_mm is None or ala_gap_mm is None:
            raise ValueError("a transitional L5 needs its transverse half span and its ala gap")
        vmap = self.vertebra_maps["L5"]
        frame = vmap.frame
        vertices = np.asarray(self.template.bones["L5"].vertices_mm)
        local = frame.to_local(vertices)
        root = 0.5 * frame.width_mm
        sacrum_final = self.warp_bone("sacrum").vertices_mm
        rotation = vmap.final_from_local[:3, :3]
        sources = [frame.to_local(vmap.controls_template)]
        targets = [vmap.controls_local_target]
        plans = {}
        for side in SIDES:
            sign = 1.0 if side == "left" else -1.0
            lateral = sign * local[:, 0]
            process = (lateral > root) & (local[:, 1] > frame.v_posterior - 5.0)
            tip_u = float(lateral[process].max())
            tip = process & (lateral > root + 0.8 * (tip_u - root))
            final_tip = vmap(vertices[tip])
            dx = sign * half_span_mm - sign * float((sign * final_tip[:, 0]).max())
            center = final_tip.mean(axis=0) + np.array([dx, 0.0, 0.0])
            column = (np.abs(sacrum_final[:, 0] - center[0]) < 8.0) & (
                np.abs(sacrum_final[:, 1] - center[1]) < 12.0
            )
            if column.any():
                ala_z = float(sacrum_final[column, 2].max())
            else:
                ala_z = float(
                    sacrum_final[np.argmin(np.linalg.norm(sacrum_final - center, axis=1)), 2]
                )
            dz = ala_z + ala_gap_mm - float(final_tip[:, 2].min())
            displacement = rotation.T @ np.array([dx, 0.0, dz])
            plans[side] = (sign, tip_u, displacement)
            samples = local[process][farthest_points(local[process], 16)]
            sources.append(samples)
            targets.append(
                _designed_vertebra_map(frame, vmap.quad, self.targets.vertebrae["L5"], samples)
            )
        sources_all = np.vstack(sources)
        base = np.vstack(targets)
        keep = _dedupe(sources_all)
        tree = cKDTree(sacrum_final)

        def refit() -> None:
            designed = base.copy()
            for sign, tip_u, displacement in plans.values():
                ramp = smoothstep((sign * sources_all[:, 0] - root) / (tip_u - root))
                ramp = np.where(sources_all[:, 1] > frame.v_posterior - 5.0, ramp, 0.0)
                designed = designed + ramp[:, None] * displacement
            vmap.spline = _spline(sources_all[keep], designed[keep])
            vmap.controls_template = frame.to_template(sources_all[keep])
            vmap.controls_local_target = designed[keep]
            if vmap.pedicle_lift is not None:  # the new spline stretches the notch too
                vmap.pedicle_lift = within_stretch(vmap.pedicle_lift, vmap.spline)

        refit()
        # the ala under the tip is not a flat floor: close the remaining gap with a second pass
        for side, (sign, tip_u, displacement) in list(plans.items()):
            process = (sign * local[:, 0] > root + 8.0) & (local[:, 1] > frame.v_posterior - 5.0)
            gap = float(tree.query(vmap(vertices[process]))[0].min())
            extra = float(np.clip(gap - ala_gap_mm, 0.0, 10.0))
            plans[side] = (sign, tip_u, displacement - extra * (rotation.T @ np.array([0, 0, 1.0])))
        refit()
        self._bone_cache.pop("L5", None)

    # lumbar ----------------------------------------------------------------------------------
    def _stack_lumbar(self) -> None:
        a, t, template = self.anatomy, self.targets, self.template
        self.vertebra_maps: dict[str, VertebraMap] = {}
        lower_tilt = math.radians(t.sacral_slope_deg)
        lower_posterior = self.pelvis_map(a.s1_posterior_rim_mm[None])[0]
        template_lower_tilt = math.radians(a.sacral_slope_deg)
        template_lower_posterior = a.s1_posterior_rim_mm
        lower_level = "S1"
        fits, canals = self._fit_bodies_and_canals()
        for level in reversed(LUMBAR_LEVELS):
            disc = t.discs[disc_key(level, lower_level)]
            frame = a.frames[level]
            fit = fits[level]
            quad, spline = fit.quad, fit.spline
            # template offset of the posterior corners along the disc (George's line)
            template_ip = frame.to_template(
                np.array([[0.0, frame.v_posterior, frame.w_inferior(frame.v_posterior)]])
            )[0]
            template_inferior_tilt = math.radians(tilt_deg(a.inferior[level].normal))
            template_mid = 0.5 * (template_lower_tilt + template_inferior_tilt)
            offset = float(
                (template_ip - template_lower_posterior) @ anterior_at_tilt(template_mid)
            )
            offset *= quad.depth_mm / frame.depth_mm
            local_inferior, local_superior = _local_tilts(
                template.body_meshes[level], frame, spline, a.superior[level].normal
            )
            # the disc takes what the splined body's own endplates leave of the segment's
            # lordosis (that body's wedge is the bone's target wedge give or take the template's
            # endplate offsets, a fraction of a degree)
            wedge = math.radians(disc.segmental_lordosis_deg) + (local_superior - local_inferior)
            mid_tilt = lower_tilt - wedge / 2
            inferior_tilt = lower_tilt - wedge
            ip_final = (
                lower_posterior
                + disc.posterior_height_mm * normal_at_tilt(mid_tilt)
                + offset * anterior_at_tilt(mid_tilt)
            )
            phi = inferior_tilt - local_inferior
            final_from_local = np.eye(4)
            final_from_local[:3, :3] = rotation_x(phi)
            final_from_local[:3, 3] = ip_final - rotation_x(phi) @ quad.corner("ip")
            vmap = replace(fit.vmap, final_from_local=final_from_local, canal=canals[level])
            self.vertebra_maps[level] = vmap
            superior_tilt = phi + local_superior
            self._normals[(level, "superior")] = normal_at_tilt(superior_tilt)
            self._normals[(level, "inferior")] = normal_at_tilt(inferior_tilt)
            lower_tilt = superior_tilt
            lower_posterior = _apply(final_from_local, quad.corner("sp")[None])[0]
            template_lower_tilt = math.radians(tilt_deg(a.superior[level].normal))
            template_lower_posterior = frame.to_template(
                np.array([[0.0, frame.v_posterior, frame.w_superior(frame.v_posterior)]])
            )[0]
            lower_level = level
        # both processes of each facet joint turn together to the joint's target angle
        placements = {level: vmap.final_from_local for level, vmap in self.vertebra_maps.items()}
        turns = fit_facet_turns(template, self.vertebra_maps, placements, t.facet_angles_deg)
        for level, turn in turns.items():
            self.vertebra_maps[level].facet_turn = turn

    def _turn_l5_s1(self) -> None:
        """Turn the L5/S1 facet joints to their target (Jentzsch 2013's 47.3° with the patient's
        spread): L5's inferior and the sacrum's superior articular processes by the same twist,
        fitted on the final pelvis and L5 (the L4/5 twist and a transitional L5 included). L5's
        part joins its FacetTurn (in its target body frame), the sacrum's is :attr:`sacral_turn`
        (the patient frame); the reach stays out of both bodies, short of L5's pedicle centres
        and of the hip bones, which keep the pelvic map alone."""
        sides = self.targets.facet_angles_deg.get("L5_S1")
        if not sides or "L5" not in self.vertebra_maps:
            return
        vmap = self.vertebra_maps["L5"]
        hips = {bone: self.pelvis_map for bone in ("hip_left", "hip_right")}
        turns = fit_facet_turns(
            self.template,
            {"L5": vmap, "S1": self.pelvis_map},
            {"L5": vmap.final_from_local, "S1": np.eye(4)},
            {"L5_S1": sides},
            meshes_of={"S1": "sacrum"},
            clear_of=hips,
        )
        if "L5" in turns:
            before = () if vmap.facet_turn is None else vmap.facet_turn.twists
            vmap.facet_turn = FacetTurn(before + turns["L5"].twists)
        self.sacral_turn = turns.get("S1")
        for bone in ("L5", "sacrum"):
            self._bone_cache.pop(bone, None)

    def _fit_bodies_and_canals(
        self,
    ) -> tuple[dict[str, _LocalFit], dict[str, CanalShift | None]]:
        """Each vertebra's local fit (body at its target width) and canal shift."""
        fits = {level: self._fit_body(level) for level in LUMBAR_LEVELS}
        shifts = self._canal_shifts(fits)
        canals = {
            level: self._fit_canal(level, fits[level], shifts[level]) for level in LUMBAR_LEVELS
        }
        return fits, canals

    def _fit_body(self, level: str) -> _LocalFit:
        """The vertebra's body fitted to its target (quadrilateral, whole-bone heights, then its
        width: :class:`BodyWiden`), with the posterior elements only scaled, and the canal that
        leaves."""
        a, template = self.anatomy, self.template
        target, frame = self.targets.vertebrae[level], a.frames[level]
        # the body's lines go where the whole bone then has the target heights
        ratio_anterior, ratio_posterior = a.bone_height_ratios[level]
        quad = TargetQuad(
            target.body_depth_mm,
            target.body_height_anterior_mm / ratio_anterior,
            target.body_height_posterior_mm / ratio_posterior,
        )
        controls, local = _vertebra_controls(template, a, level)
        designed = _designed_vertebra_map(frame, quad, target, local)
        spline = _spline(local, designed)
        for _ in range(BONE_HEIGHT_FIT_STEPS):
            quad = _bone_height_fit(template, level, frame, quad, target, spline)
            designed = _designed_vertebra_map(frame, quad, target, local)
            spline = _spline(local, designed)
        lift = _pedicle_lift(a.pedicles.get(level, {}), spline, target.pedicle_height_mm)
        vmap = VertebraMap(frame, quad, spline, controls, designed, pedicle_lift=lift)
        bone = template.bones[level]
        vmap.body_widen = BodyWiden(
            target.body_width_mm / _body_width_mm(bone, vmap),
            0.5 * (frame.v_anterior + frame.v_posterior),
            frame.v_posterior,
        )
        return _LocalFit(vmap, _local_canal_mm(bone, vmap))

    def _canal_shifts(self, fits: Mapping[str, _LocalFit]) -> dict[str, CanalShift]:
        """Each vertebra's first canal shift (what its scaled canal lacks) and the shift of each
        facet joint, shared by its two processes: the mean of the two vertebrae's (L5–S1: none,
        the sacrum keeps its canal). A level with no drawn canal keeps its own; its articular
        processes follow their joints."""
        own: dict[str, tuple[float, float]] = {}
        for level in LUMBAR_LEVELS:
            target, (width, depth) = self.targets.vertebrae[level], fits[level].canal_mm
            lateral = 0.0 if target.canal_width_mm is None else (target.canal_width_mm - width) / 2
            posterior = 0.0 if target.canal_depth_mm is None else target.canal_depth_mm - depth
            own[level] = (lateral, posterior)
        lower_of = dict(zip(LUMBAR_LEVELS, (*LUMBAR_LEVELS[1:], "S1"), strict=True))
        joints = {  # keyed by the upper vertebra
            upper: 0.0 if lower == "S1" else 0.5 * (own[upper][0] + own[lower][0])
            for upper, lower in lower_of.items()
        }
        medial_u = {
            level: _pedicle_medial_u(
                self.anatomy.pedicles.get(level, {}), 0.5 * self.anatomy.canals[level][0]
            )
            for level in LUMBAR_LEVELS
        }
        shifts = {}
        for n, level in enumerate(LUMBAR_LEVELS):
            frame, template_canal = self.anatomy.frames[level], self.anatomy.canals[level]
            above = LUMBAR_LEVELS[n - 1] if n > 0 else None
            superior = (
                None if above is None else self._joint_shift(frame, above, level, joints[above])
            )
            below = None if lower_of[level] == "S1" else own[lower_of[level]][0]
            inferior = self._joint_shift(frame, level, lower_of[level], joints[level], below)
            shifts[level] = CanalShift(
                lateral_mm=own[level][0],
                posterior_mm=own[level][1],
                depth_mm=template_canal[1],
                medial_wall_u_mm=medial_u[level],
                midline_fade_u_mm=min(medial_u.values()),
                pedicle_vw_mm=_pedicle_centre_vw(self.anatomy.pedicles.get(level, {})),
                superior_joint=superior,
                inferior_joint=inferior,
            )
        return shifts

    def _joint_shift(
        self,
        frame: BodyFrame,
        upper: str,
        lower: str,
        lateral_mm: float,
        beyond_mm: float | None = None,
    ) -> JointShift | None:
        """The facet joint ``upper``–``lower`` in ``frame`` (its template landmarks' mean v, w)
        with its lateral shift and the neighbour's (``beyond_mm``: :class:`JointShift`); None
        where the template has no such landmarks."""
        names = [f"facet_{upper}_{lower}_{side}" for side in SIDES]
        if not all(name in self.template.landmarks for name in names):
            return None
        centres = np.asarray([self.template.landmarks[name] for name in names], dtype=np.float64)
        _, v_mm, w_mm = frame.to_local(centres).mean(axis=0)
        return JointShift(float(v_mm), float(w_mm), lateral_mm, beyond_mm)

    def _fit_canal(self, level: str, fit: _LocalFit, shift: CanalShift) -> CanalShift | None:
        """The canal shift of one vertebra fitted to its target: the moved bone measured as the
        yardstick measures it and the shift corrected by secant steps (the joints' blend and the
        fades give a little less than the shift itself). With no target its own canal
        stays and only its articular processes follow their joints (None: nothing moves)."""
        target = self.targets.vertebrae[level]
        if target.canal_width_mm is None or target.canal_depth_mm is None:
            return shift if shift.superior_joint or shift.inferior_joint else None
        bone, vmap = self.template.bones[level], fit.vmap
        previous = (0.0, 0.0, *fit.canal_mm)
        for _ in range(CANAL_FIT_STEPS):
            vmap.canal = shift
            width, depth = _local_canal_mm(bone, vmap)
            error_width, error_depth = target.canal_width_mm - width, target.canal_depth_mm - depth
            if abs(error_width) < CANAL_TOLERANCE_MM and abs(error_depth) < CANAL_TOLERANCE_MM:
                break
            gain_width = _secant_gain(shift.lateral_mm, previous[0], width, previous[2], 2.0)
            gain_depth = _secant_gain(shift.posterior_mm, previous[1], depth, previous[3], 1.0)
            previous = (shift.lateral_mm, shift.posterior_mm, width, depth)
            shift = replace(
                shift,
                lateral_mm=shift.lateral_mm + error_width / gain_width,
                posterior_mm=shift.posterior_mm + error_depth / gain_depth,
            )
        vmap.canal = None
        return shift

    # landmarks -------------------------------------------------------------------------------
    def _warp_direction(self, name: str, direction: Points) -> Points:
        """A unit direction landmark (``*_normal``, ``*_axis``) carried by the local Jacobian at its
        anchor point: normals by J⁻ᵀ (they stay perpendicular to the warped surface), axes by J."""
        anchor_name = _direction_anchor(name, self.template.landmarks)
        anchor = (
            np.asarray(self.template.landmarks[anchor_name], dtype=np.float64)
            if anchor_name is not None
            else np.zeros(3)
        )
        route = anchor_name or "sacrum"
        jacobian = np.empty((3, 3))
        for k in range(3):
            step = np.zeros(3)
            step[k] = 1.0
            jacobian[:, k] = 0.5 * (
                self._warp_landmark(route, anchor + step)
                - self._warp_landmark(route, anchor - step)
            )
        if name.endswith("_normal"):
            mapped = np.linalg.solve(jacobian.T, direction)
        else:
            mapped = jacobian @ direction
        return mapped / np.linalg.norm(mapped)

    def _warp_landmark(self, name: str, value: Points) -> Points:
        parts = name.split("_")
        levels = [p for p in parts if p in LUMBAR_LEVELS or p == "S1"]
        if parts[0] in LUMBAR_LEVELS and len(levels) == 1:
            return self.warp_points(parts[0], value)
        if len(levels) == 2 and parts[0] in ("disc", "facet", "foramen", "kambin", "interlaminar"):
            first = self.warp_points(levels[0], value)
            second = self.warp_points(levels[1] if levels[1] != "S1" else "sacrum", value)
            return 0.5 * (first + second)
        flat = value.reshape(-1, 3)
        d_pelvis = np.min([self.anatomy.trees[b].query(flat)[0] for b in PELVIC_BONES], axis=0)
        d_spine = np.min([self.anatomy.trees[b].query(flat)[0] for b in LUMBAR_LEVELS], axis=0)
        if np.all(d_pelvis < d_spine):
            return self.warp_points("sacrum", value)
        return self.warp_space(value)


def refreshed_landmarks(template: BoneTemplate) -> dict[str, NDArray[np.float64]]:
    """The template's landmarks with those whose rule changed after the asset was written
    recomputed by the current rule (:mod:`models.template.landmarks`): the anterior S1 cortex,
    once taken just under the promontory (on the rim lip, so the inlet came out ≈51° instead of
    the clinical 12–38°). A template without the inputs keeps its stored value."""
    marks = dict(template.landmarks)
    needed = (
        "S1_superior_endplate_center",
        "S1_superior_endplate_normal",
        "S1_posterior_axis",
        "L5_superior_endplate_center",
        "L5_inferior_endplate_center",
    )
    if "sacrum" in template.bones and all(name in marks for name in needed):
        top, n1, v1, l5_top, l5_bottom = (np.asarray(marks[n], dtype=np.float64) for n in needed)
        with contextlib.suppress(ValueError):
            marks["S1_anterior_cortex_midline"] = s1_anterior_cortex(
                RayCaster(template.bones["sacrum"]),
                top,
                n1,
                v1,
                float(np.linalg.norm(l5_top - l5_bottom)),
            )
    return marks


def is_direction(name: str) -> bool:
    """Template landmarks named ``*_normal`` or ``*_axis`` are unit directions, not points."""
    return name.endswith(("_normal", "_axis"))


def _direction_anchor(name: str, landmarks: Mapping[str, object]) -> str | None:
    """The point landmark a direction belongs to (``facet_L4_L5_left_normal`` → ``facet_L4_L5_left``,
    ``L4_superior_endplate_normal`` → ``L4_superior_endplate_center``, ``L4_axis`` →
    ``L4_body_center``), or None (the origin, routed to the pelvis)."""
    stem = name.removesuffix("_normal").removesuffix("_axis")
    candidates = [
        stem,
        f"{stem}_center",
        stem.replace("_posterior", "") + "_body_center",
        f"{stem}_body_center",
        stem.replace("_canal", "_spinal_canal_center"),
    ]
    for candidate in candidates:
        if candidate in landmarks and not is_direction(candidate):
            return candidate
    return None


def _pedicle_lift(
    pedicles: Mapping[str, TemplatePedicle], spline: RBFInterpolator, target_mm: float
) -> PedicleLift | None:
    """The lift that gives each splined pedicle the target height (None: nothing to lift)."""
    found, lifts = tuple(pedicles.values()), []
    for pedicle in found:
        ends = pedicle.chord_ends_local()
        bottom, top, highest = (ends + spline(ends))[:, 2]
        lifts.append(lift_for(float(top - bottom), target_mm, float(highest - bottom)))
    if not any(lifts):
        return None
    return within_stretch(PedicleLift(found, tuple(lifts)), spline)


@dataclass(frozen=True)
class _LocalFit:
    """One vertebra fitted in its body frame before its canal: the local map (quadrilateral,
    controls, spline, pedicle lift; not yet placed, no canal shift) and the canal (width, depth)
    of the bone it moves."""

    vmap: VertebraMap  # not yet placed (final_from_local is the identity), no canal shift
    canal_mm: tuple[float, float]

    @property
    def quad(self) -> TargetQuad:
        return self.vmap.quad

    @property
    def spline(self) -> RBFInterpolator:
        return self.vmap.spline


def _body_width_mm(bone: TriangleMesh, vmap: VertebraMap) -> float:
    """The body width (:func:`~models.template.warp_geometry.coronal_mean_width_mm` of the whole
    bone through the body's middle, v = 0 target-local) of a vertebra moved by its local map (the
    local frame's u is the placed body's: placing only turns it about u)."""
    local = vmap.local_target(np.asarray(bone.vertices_mm))
    return coronal_mean_width_mm(local, bone.faces, 0.0)


def _local_canal_mm(bone: TriangleMesh, vmap: VertebraMap) -> tuple[float, float]:
    """The canal (width, depth; :func:`canal_mm`) of a bone moved by a vertebra's local map."""
    return canal_mm(TriangleMesh(vmap.local_target(np.asarray(bone.vertices_mm)), bone.faces))


def _secant_gain(
    shift_mm: float, previous_shift_mm: float, measured: float, previous: float, nominal: float
) -> float:
    """Measured change per unit of shift between two fits (the nominal gain when the step is too
    small for the 0.5 mm voxels of the measure), kept within half to 1.5 × the nominal."""
    step = shift_mm - previous_shift_mm
    if abs(step) < 1.0:
        return nominal
    return float(np.clip((measured - previous) / step, 0.5 * nominal, 1.5 * nominal))


def _pedicle_medial_u(pedicles: Mapping[str, TemplatePedicle], fallback_mm: float) -> float:
    """Template-local |u| of the pedicles' medial walls at the isthmus (``fallback_mm``: none)."""
    if not pedicles:
        return fallback_mm
    return float(np.mean([abs(p.u_mm) - p.half_width_mm for p in pedicles.values()]))


def _pedicle_centre_vw(pedicles: Mapping[str, TemplatePedicle]) -> tuple[float, float]:
    """Template-local (v, w) of the pedicles' isthmus centre at mid-height (the body's centre if
    none is measured)."""
    if not pedicles:
        return 0.0, 0.0
    v = float(np.mean([p.v_mm for p in pedicles.values()]))
    return v, float(np.mean([0.5 * (p.w_bottom_mm + p.w_top_mm) for p in pedicles.values()]))


def _local_tilts(
    body: TriangleMesh, frame: BodyFrame, spline: RBFInterpolator, seed: Points
) -> tuple[float, float]:
    """Tilts (rad, target-local frame) of the inferior and superior endplates of the splined body,
    fitted like every endplate, so that stacking meets the measured angles, not the design's."""
    local = frame.to_local(np.asarray(body.vertices_mm))
    warped = TriangleMesh(local + spline(local), body.faces)
    seed_local = seed @ frame.template_from_local[:3, :3]
    superior = fit_endplate(warped, seed_local, cranial=True)
    inferior = fit_endplate(warped, superior.normal, cranial=False)
    return math.radians(tilt_deg(inferior.normal)), math.radians(tilt_deg(superior.normal))


def patient_warp(template: BoneTemplate, targets: PatientTargets) -> PatientWarp:
    """The warp of ``template`` to the patient described by ``targets``."""
    return PatientWarp(template, targets)
