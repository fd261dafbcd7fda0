"""The template's pedicles, and the smooth lift of their undersides that gives each its target height.

The Visible Human Male's lumbar pedicles are tall: the shortest vertical chord through each
isthmus measures 19–24 mm, where Zindrick et al. (Spine 1987) give 15.4, 15.0, 14.9, 14.8, 14.0 mm
for L1…L5 (and L5 12.9 ± 1.9 mm in a CT series). The body-frame scaling of the warp keeps that
proportion, so the inferior vertebral notch is shallow and the exiting root, which runs under the
pedicle, has too little room: Kambin's triangle comes out 1–4 mm narrower than published.

:func:`measure_pedicles` measures each pedicle of one template vertebra in its body frame (at each
u across the pedicle the shortest vertical chord along it, the isthmus; the tallest of these is the
pedicle's height, with its bottom and top; the transverse half-width at its mid-height);
:class:`PedicleLift` is the displacement that raises each pedicle's underside by ``lift_mm`` while
its top stays: the vertical shift falls smoothly (smoothstep) from ``lift_mm`` at the underside to
zero at the top and to zero below the underside, inside a window around the pedicle that fades
out into the body's posterior wall (in front), before the lamina and the articular pillar
(behind) and the transverse process (laterally). The shift only grows upward through the pedicle (its
vertical derivative stays above −1), so the surface never folds; below the pedicle it stretches
the inferior vertebral notch, which is what deepens the notch. Behind the body's wall the notch
is open down to the disc, so the fade below the underside runs over NOTCH_FADE_PER_LIFT × the
lift (at least BELOW_FADE_MM), whatever the height of the underside above the body's inferior
endplate (the Visible Human's L3 sits 5 mm above it: a fade that had to end above the endplate
stretched the notch so steeply that the stretch bound stopped its lift at 2–4 mm). Only such a
pedicle's window ends at the wall; elsewhere (and where the isthmus lies within
NOTCH_WINDOW_MIN_MM of the wall, the Visible Human's L4 and L5) the window reaches into the wall,
so the pedicle's flare onto it rises too, and the fade ends above the endplate.
:func:`within_stretch` shrinks a vertebra's lifts until that stretch, with the spline's own, keeps
the warp's Jacobian determinant ≤ MAX_STRETCH.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.labels import SIDES
from fluorosim.models.template.asset import BoneTemplate, TriangleMesh
from fluorosim.models.template.landmarks import RayCaster
from fluorosim.models.template.warp_geometry import BodyFrame, smoothstep

Points = NDArray[np.float64]

#: Isthmus search: body-frame v offsets (mm) from the template's pedicle centre, and u offsets
#: (mm, negative: medial) across the pedicle.
ISTHMUS_SEARCH_MM = (-2.0, 4.0)
ISTHMUS_ACROSS_MM = (-5.0, 2.0)
#: Below the underside the lift fades to zero over this distance, or over NOTCH_FADE_PER_LIFT ×
#: the lift if longer (the notch stretches by at most 1.5 / NOTCH_FADE_PER_LIFT, smoothstep's
#: steepest slope over the fade).
BELOW_FADE_MM = 4.0
NOTCH_FADE_PER_LIFT = 1.0
#: Behind the isthmus the window fades out over FADE_MM, or over this × the lift if longer.
BACK_FADE_PER_LIFT = 1.0
#: The window is full within the pedicle's half-width + this, and fades out over FADE_MM more.
WINDOW_MARGIN_MM = 1.0
FADE_MM = 4.0
#: The window is full from this far in front of the isthmus to this far behind it (v, mm);
#: beyond, it fades out over FADE_MM (in front: into the body's posterior wall, so that the
#: pedicle's flare onto the wall rises with it; behind: the lamina and the articular pillar), and
#: below the underside the lift fades out above the body's inferior endplate (FLOOR_MARGIN_MM).
#: Where that endplate would cut the fade short (the lift goes :meth:`TemplatePedicle.into_notch`)
#: the window instead fades out by the body's posterior wall (over at most FADE_MM behind it):
#: the body never rises, so the fade can reach past the endplate into the notch.
WINDOW_FRONT_MM = 4.0
WINDOW_BACK_MM = 4.0
#: The window ends at the wall only where the isthmus lies at least this far behind it (the
#: Visible Human's L1–L3, 4–5 mm; its L4 and L5 isthmus lies within 1 mm of the wall, where a
#: window ending at the wall would leave the pedicle's front unlifted).
NOTCH_WINDOW_MIN_MM = 2.0
#: The lift never exceeds this fraction of the pedicle's height (no fold, no sliver).
MAX_LIFT_FRACTION = 0.4
#: The canal stays an enclosed ring (body, pedicles, laminae) over at least this height (mm): the
#: population-mean shape's ring is 5.5–8.5 mm tall at L2–L5 (Clouthier et al. 2023's 87 CTs,
#: measured as models.yardstick measures the canal). Raising a pedicle's underside above the
#: laminae's upper edge would open the canal's ring.
CANAL_RING_MIN_MM = 5.0
FLOOR_MARGIN_MM = 2.0
#: Ray reach (mm) for the chord measurements.
REACH_MM = 40.0
#: Under the pedicle the lift stretches the notch's roof; with the spline's own stretch there the
#: warp's Jacobian determinant stays under this (the warp's sanity bound is 3): where it would
#: not, the vertebra's lifts shrink by LIFT_SHRINK per try.
MAX_STRETCH = 2.85
LIFT_SHRINK = 0.85
#: Grid step (mm) of the stretch check in the lift's fade zone, and the central-difference step.
STRETCH_STEP_MM = 2.0
JACOBIAN_H_MM = 0.25


@dataclass(frozen=True)
class TemplatePedicle:
    """One pedicle of the template in its body frame (mm): isthmus centre (u, v), the bottom and
    top of its shortest vertical chord, and its transverse half-width at mid-height."""

    u_mm: float
    v_mm: float
    w_bottom_mm: float
    w_top_mm: float
    half_width_mm: float
    #: top of the axial slices where the canal is an enclosed ring (None: not found)
    ring_top_w_mm: float | None = None
    #: the lift fades out above this (the body's inferior endplate, posteriorly, plus a margin)
    #: where the window reaches into the body (no ``wall_v_mm``)
    floor_w_mm: float | None = None
    #: v of the body's posterior wall beside the pedicle: the window is zero in front of it
    wall_v_mm: float | None = None

    def into_notch(self, lift_mm: float) -> bool:
        """Whether a lift of ``lift_mm`` fades into the notch behind the wall: only where the
        body's inferior endplate (the floor) would cut its fade short and a wall is measured."""
        if self.wall_v_mm is None or self.floor_w_mm is None:
            return False
        wanted = max(BELOW_FADE_MM, NOTCH_FADE_PER_LIFT * lift_mm)
        return self.w_bottom_mm - self.floor_w_mm < wanted

    def fade_mm(self, lift_mm: float) -> float:
        """How far below the underside a lift of ``lift_mm`` fades out: over
        NOTCH_FADE_PER_LIFT × the lift, at least BELOW_FADE_MM; where the window reaches into the
        body (not :meth:`into_notch`) never past the floor."""
        fade = max(BELOW_FADE_MM, NOTCH_FADE_PER_LIFT * lift_mm)
        if not self.into_notch(lift_mm) and self.floor_w_mm is not None:
            fade = min(fade, self.w_bottom_mm - self.floor_w_mm)
        return max(fade, 1.0)

    def front_window(self, lift_mm: float) -> tuple[float, float]:
        """(v where the window becomes full, length of its fade in front of that)."""
        if self.wall_v_mm is None or not self.into_notch(lift_mm):
            return self.v_mm - WINDOW_FRONT_MM, FADE_MM
        ramp = float(np.clip(self.v_mm - self.wall_v_mm, NOTCH_WINDOW_MIN_MM, FADE_MM))
        return self.wall_v_mm + ramp, ramp

    @property
    def height_mm(self) -> float:
        return self.w_top_mm - self.w_bottom_mm

    def chord_ends_local(self) -> Points:
        """(bottom, top) of the chord and the highest its bottom may rise (the canal keeps
        CANAL_RING_MIN_MM of enclosed ring below the ring's top), body-frame points (3, 3)."""
        highest = self.w_top_mm if self.ring_top_w_mm is None else self.ring_top_w_mm
        highest = max(self.w_bottom_mm, highest - CANAL_RING_MIN_MM)
        return np.array(
            [
                [self.u_mm, self.v_mm, self.w_bottom_mm],
                [self.u_mm, self.v_mm, self.w_top_mm],
                [self.u_mm, self.v_mm, highest],
            ]
        )


def _chord(caster: RayCaster, frame: BodyFrame, start: Points, direction: Points) -> float | None:
    """Distance from the body-frame point ``start`` to the surface along ``direction``."""
    origin = frame.to_template(start[None])[0]
    axis = frame.template_from_local[:3, :3] @ direction
    hits = caster.hits(origin, origin + axis * REACH_MM)
    return float(np.linalg.norm(hits[0] - origin)) if len(hits) else None


def measure_pedicles(
    template: BoneTemplate, level: str, frame: BodyFrame
) -> dict[str, TemplatePedicle]:
    """Both pedicles of one template vertebra (empty where a pedicle cannot be found)."""
    caster = RayCaster(template.bones[level])
    ring_top = canal_ring_top_mm(template.bones[level], frame)
    body = getattr(template, "body_meshes", {}).get(level)
    up, down = np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0])
    pedicles = {}
    for side in SIDES:
        name = f"{level}_pedicle_center_{side}"
        if name not in template.landmarks:
            continue
        seed = frame.to_local(np.asarray(template.landmarks[name], float)[None])[0]
        sign = 1.0 if side == "left" else -1.0
        # the pedicle's height: at each u across it the shortest vertical chord along it (its
        # isthmus), then the tallest of those (its body, not its thin medial or lateral edge)
        tallest: tuple[float, float, float, float] | None = None  # (height, u, v, w bottom)
        for du in np.arange(ISTHMUS_ACROSS_MM[0], ISTHMUS_ACROSS_MM[1] + 0.25, 1.0):
            shortest: tuple[float, float, float, float] | None = None
            for dv in np.arange(ISTHMUS_SEARCH_MM[0], ISTHMUS_SEARCH_MM[1] + 0.25, 0.5):
                point = seed + np.array([sign * du, dv, 0.0])
                above = _chord(caster, frame, point, up)
                below = _chord(caster, frame, point, down)
                if above is None or below is None:
                    continue
                if shortest is None or above + below < shortest[0]:
                    shortest = (above + below, float(point[0]), float(point[1]), point[2] - below)
            if shortest is not None and (tallest is None or shortest[0] > tallest[0]):
                tallest = shortest
        if tallest is None:
            continue
        height, u_chord, v, bottom = tallest
        middle = np.array([u_chord, v, bottom + height / 2])
        lateral = _chord(caster, frame, middle, np.array([sign, 0.0, 0.0]))
        medial = _chord(caster, frame, middle, np.array([-sign, 0.0, 0.0]))
        half_width = 0.5 * ((lateral or 4.0) + (medial or 4.0))
        u = u_chord + sign * 0.5 * ((lateral or 4.0) - (medial or 4.0))
        floor = float(frame.w_inferior(frame.v_posterior)) + FLOOR_MARGIN_MM
        pedicles[side] = TemplatePedicle(
            u,
            v,
            bottom,
            bottom + height,
            half_width,
            ring_top,
            min(floor, bottom - 1.0),
            _wall_v_mm(body, frame, u, half_width, v),
        )
    return pedicles


def _wall_v_mm(
    body: TriangleMesh | None, frame: BodyFrame, u_mm: float, half_width_mm: float, v_mm: float
) -> float | None:
    """v of the body's posterior wall across the pedicle (the body-only mesh's farthest back
    vertex there, where the pedicle was cut off); None without a body mesh or where the isthmus
    lies less than NOTCH_WINDOW_MIN_MM behind it (the window then fades into the wall)."""
    if body is None:
        return None
    local = frame.to_local(np.asarray(body.vertices_mm, dtype=np.float64))
    across = np.abs(local[:, 0] - u_mm) <= half_width_mm
    if not across.any():
        return None
    wall = float(local[across, 1].max())
    return wall if v_mm - wall >= NOTCH_WINDOW_MIN_MM else None


def _window(
    x: Points, low: float, high: float, fade_low_mm: float = FADE_MM, fade_high_mm: float = FADE_MM
) -> Points:
    """1 on [low, high], smoothstep down to 0 within ``fade_low_mm`` below and ``fade_high_mm``
    above."""
    rise = smoothstep((x - (low - fade_low_mm)) / fade_low_mm)
    fall = 1.0 - smoothstep((x - high) / fade_high_mm)
    result: Points = rise * fall
    return result


@dataclass(frozen=True)
class PedicleLift:
    """The vertical shift (target body frame) that raises each pedicle's underside by its lift,
    evaluated on template body-frame points."""

    pedicles: tuple[TemplatePedicle, ...]
    lifts_mm: tuple[float, ...]

    def __call__(self, local: Points) -> Points:
        u, v, w = local[:, 0], local[:, 1], local[:, 2]
        shift = np.zeros(len(local))
        for pedicle, lift in zip(self.pedicles, self.lifts_mm, strict=True):
            if lift == 0.0:
                continue
            reach = pedicle.half_width_mm + WINDOW_MARGIN_MM
            window = _window(u, pedicle.u_mm - reach, pedicle.u_mm + reach)
            front, front_fade = pedicle.front_window(lift)
            back = pedicle.v_mm + WINDOW_BACK_MM
            window *= _window(v, front, back, front_fade, back_fade_mm(lift))
            bottom, top = pedicle.w_bottom_mm, pedicle.w_top_mm
            fade = pedicle.fade_mm(lift)
            profile = np.where(
                w < bottom,
                smoothstep((w - (bottom - fade)) / fade),
                1.0 - smoothstep((w - bottom) / (top - bottom)),
            )
            shift += lift * window * profile
        displacement = np.zeros_like(local)
        displacement[:, 2] = shift
        return displacement


def back_fade_mm(lift_mm: float) -> float:
    """How far behind the window's full part a lift of ``lift_mm`` fades out: FADE_MM, or the
    lift itself if longer (the shear across the fade stays ≤ 1.5, smoothstep's steepest slope, so
    the lamina's triangles, 1–3 mm, follow the smooth map without turning over)."""
    return max(FADE_MM, BACK_FADE_PER_LIFT * lift_mm)


def fade_zone(pedicle: TemplatePedicle, lift_mm: float) -> Points:
    """Body-frame grid points (STRETCH_STEP_MM apart) where the lift of ``pedicle`` stretches:
    its window, below the underside down to where the lift fades out."""
    reach = pedicle.half_width_mm + WINDOW_MARGIN_MM + FADE_MM
    bottom = pedicle.w_bottom_mm
    front, front_fade = pedicle.front_window(lift_mm)
    axes = (
        np.arange(pedicle.u_mm - reach, pedicle.u_mm + reach + 1e-9, STRETCH_STEP_MM),
        np.arange(
            front - front_fade,
            pedicle.v_mm + WINDOW_BACK_MM + back_fade_mm(lift_mm) + 1e-9,
            STRETCH_STEP_MM,
        ),
        np.arange(bottom - pedicle.fade_mm(lift_mm), bottom + 1e-9, STRETCH_STEP_MM / 2),
    )
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def largest_stretch(lift: PedicleLift, spline: Callable[[Points], Points]) -> float:
    """The largest Jacobian determinant of ``x ↦ x + spline(x) + lift(x)`` (body frame) over the
    lift's fade zones (central differences)."""
    points = np.concatenate(
        [fade_zone(p, m) for p, m in zip(lift.pedicles, lift.lifts_mm, strict=True) if m > 0.0]
    )
    jacobian = np.empty((len(points), 3, 3))
    for k in range(3):
        step = np.zeros(3)
        step[k] = JACOBIAN_H_MM
        ahead, behind = points + step, points - step
        forward = ahead + spline(ahead) + lift(ahead)
        backward = behind + spline(behind) + lift(behind)
        jacobian[:, :, k] = (forward - backward) / (2 * JACOBIAN_H_MM)
    return float(np.linalg.det(jacobian).max())


def within_stretch(
    lift: PedicleLift, spline: Callable[[Points], Points], tries: int = 12
) -> PedicleLift | None:
    """``lift`` shrunk (all of the vertebra's lifts together, by LIFT_SHRINK per try) until the
    warp's Jacobian determinant under the pedicles stays ≤ MAX_STRETCH; None when even the
    smallest tried lift would not (the spline alone stretches there)."""
    for _ in range(tries):
        if largest_stretch(lift, spline) <= MAX_STRETCH:
            return lift
        lift = PedicleLift(lift.pedicles, tuple(m * LIFT_SHRINK for m in lift.lifts_mm))
    return None


def lift_for(height_now_mm: float, target_mm: float, room_mm: float = math.inf) -> float:
    """The lift (mm) that brings a pedicle measuring ``height_now_mm`` to ``target_mm``: only ever
    raises the underside (a pedicle already at or under its target is left alone), at most
    MAX_LIFT_FRACTION of its height and at most ``room_mm`` (what the canal's ring allows)."""
    most = min(MAX_LIFT_FRACTION * height_now_mm, max(room_mm, 0.0))
    return float(np.clip(height_now_mm - target_mm, 0.0, most))


def canal_ring_top_mm(mesh: TriangleMesh, frame: BodyFrame) -> float | None:
    """Body-frame w (mm) of the highest axial slice where the vertebra's canal is an enclosed
    ring (None: no ring), on the same 0.5 mm solid as :mod:`models.yardstick` measures canals."""
    from fluorosim.models import yardstick
    from fluorosim.models.template.convert import to_polydata

    solid, low = yardstick.solid_in_frame(to_polydata(mesh), frame.template_from_local)
    sections = yardstick.canal_sections(solid, low)
    if not sections:
        return None
    return float(low[2] + max(section.s for section in sections) * yardstick.MEASURE_VOXEL_MM)
