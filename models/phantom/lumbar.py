"""Lumbar vertebrae L1–L5, discs L1/2…L5/S1 and facet joints as implicit (signed-distance) shapes.

Layout first (:func:`lumbar_layout`): the spine is stacked upward from the S1 superior endplate
(the origin, normal tilted anteriorly by the sacral slope) disc by disc and body by body, each
segment turning posteriorly by its segmental lordosis (anatomy.md: 1.2/5.9/9.1/12.7/21.6° standing,
× ``lordosis_scale``). Each vertebra then lives in its own local frame (origin = body centre,
u → patient left, v → posterior, w → body axis) where the shapes are written:

- body: superelliptic kidney cross-section with a concave posterior wall and a waist, slightly
  concave endplates, wedge from its anterior/posterior heights, 1 mm cortical shell around a
  cancellous core;
- pedicles: elliptic cylinders at the published transverse angle, flaring at both ends;
- lamina plates, a caudally sloping spinous process with a bulbous tip, transverse processes,
  superior and inferior articular processes whose facing surfaces are cut by the facet-joint plane
  at the published angle to the sagittal plane (Jentzsch et al. 2013) with a 1.5 mm joint space.

Dimensions are population means from anatomy.md (Clouthier 2023; Cook & Baker 2021; Zindrick 1987;
Panjabi 1992) scaled by ``body_scale``, sex and a seeded per-patient variation of a few percent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS, SIDES
from fluorosim.models.phantom.parts import (
    PRIORITY_BONE,
    PRIORITY_DISC,
    Anchors,
    Grid,
    Painted,
    PartResult,
    PatientParameters,
)

Array = NDArray[np.float32]

# --- population means per level L1..L5 (anatomy.md) -------------------------------------------
#: Body width, the mean over its height (Panjabi 1992's trend ≈40→≈49; Clouthier 2023 L2–L5 mean
#: 46.7; the endplates are wider: :attr:`LevelDims.rim_width_mm`).
BODY_WIDTH_MM = (42.0, 44.5, 46.5, 48.0, 49.5)
#: Body depth (Clouthier 2023 L2–L5 mean 35.0; Cook & Baker 2021 L5 endplate 35.7/35.3).
BODY_DEPTH_MM = (32.5, 34.0, 35.0, 35.5, 35.5)
#: Body mid height (Clouthier 2023 L2–L5 27.8; Cook & Baker L5 30.3 ant / 26.3 post).
BODY_HEIGHT_MM = (26.5, 27.5, 28.0, 27.8, 28.3)
#: Body wedge, anterior minus posterior height as an angle (L5: atan(4.0/35.5) = 6.4°).
BODY_WEDGE_DEG = (-3.0, -1.5, 0.0, 2.0, 6.4)
#: Pedicle transverse width / height / transverse angle (Zindrick 1987; L5 width, height
#: averaged with Cook & Baker 2021: 16.1±2.3 / 12.9±1.9).
PEDICLE_WIDTH_MM = (8.7, 8.9, 10.3, 12.9, 17.0)
PEDICLE_HEIGHT_MM = (15.4, 15.0, 14.9, 14.8, 13.5)
PEDICLE_ANGLE_DEG = (10.9, 12.0, 14.4, 17.7, 29.8)
#: Pedicle length from the posterior body wall to the lamina (approx.).
PEDICLE_LENGTH_MM = (12.0, 12.5, 13.0, 13.5, 13.5)
#: Canal width (interpedicular) / midsagittal depth (Clouthier 2023 L2–L5 26.7 / 16.7;
#: Cook & Baker L5 28.2 / 15.6).
CANAL_WIDTH_MM = (23.5, 24.5, 25.5, 26.5, 28.2)
CANAL_DEPTH_MM = (17.5, 17.0, 16.8, 16.4, 15.6)
#: Spinous process: posterior body wall → tip, set so that the vertebra's antero-posterior extent
#: matches the population-mean shape (Clouthier 2023 mean mesh: 83–90 mm, L2–L5); height
#: 23.5 (16.6–31.0) (Clouthier 2023).
SPINOUS_LENGTH_MM = (43.5, 45.0, 45.5, 45.0, 41.5)
SPINOUS_HEIGHT_MM = (23.0, 24.0, 24.5, 23.5, 21.0)
#: Transverse process tip distance from the midline (tip-to-tip span of the mean mesh:
#: 83, 93, 90, 95 mm for L2–L5, Clouthier 2023; L1 approx.).
TRANSVERSE_HALF_SPAN_MM = (34.0, 37.5, 42.0, 41.0, 43.0)
#: Facet angle to the sagittal plane L1/2…L5/S1 (Jentzsch 2013 L2/3…L5/S1; L1/2 approx.).
FACET_ANGLE_DEG = (26.0, 30.4, 38.7, 47.0, 47.3)
#: Disc heights anterior / middle / posterior L1/2…L5/S1 (anatomy.md table).
DISC_HEIGHT_MM = (
    (10.8, 10.0, 7.3),
    (13.1, 11.6, 8.6),
    (15.2, 12.5, 9.1),
    (18.1, 13.8, 10.1),
    (18.7, 13.0, 8.5),
)
#: Standing segmental lordosis L1-2…L5-S1 (anatomy.md); scaled by ``lordosis_scale``.
SEGMENTAL_LORDOSIS_DEG = (1.2, 5.9, 9.1, 12.7, 21.6)

CORTICAL_SHELL_MM = 1.0
#: Ring apophysis: the cortical rim of the endplate, thicker than the 1 mm wall (approx. 2–3 mm
#: wide rim of the endplate in adults).
RING_APOPHYSIS_MM = 2.5
#: Waist: mid-height cross-section smaller than the endplates by this fraction (approx. 8–12 %;
#: the concave anterior and lateral walls).
BODY_WAIST = 0.11
#: Superellipse exponents of the axial outline (rounded, kidney-shaped body).
BODY_EXPONENT_ANTERIOR = 2.5
BODY_EXPONENT_POSTERIOR = 3.0
#: Radius rounding the edge between endplate and wall (the rounded endplate rim).
ENDPLATE_RIM_RADIUS_MM = 3.5
#: Medial step of the lamina's lateral border between pedicle and inferior articular process,
#: leaving a narrow pars interarticularis (approx.; pars ≈ 8–10 mm wide).
PARS_NOTCH_MM = 3.5
#: Caudal drop of the spinous tip below the lamina junction, as a fraction of the process height
#: (sloping caudally, yet leaving a gap to the next process on AP; approx.).
SPINOUS_TIP_DROP = 0.32
#: Cortical fraction of a 1 mm voxel holding the thin (≈0.4–0.6 mm, approx.) body wall: its HU
#: is the partial-volume mix, so the wall is not a full-density outline on projections.
WALL_CORTICAL_FRACTION = 0.65
FACET_GAP_MM = 1.5
#: Articular facet plate: half thickness, half width, half height (facets ≈14 × 17 mm, approx.).
FACET_HALF_THICKNESS_MM = 3.5
FACET_HALF_WIDTH_MM = 7.0
FACET_HALF_HEIGHT_MM = 8.5
#: T12/L1 facet angle to the sagittal plane (approx.; thoracolumbar facets are nearly sagittal).
T12_L1_FACET_ANGLE_DEG = 22.0
ENDPLATE_CONCAVITY_MM = 1.2
DISC_HU_ANNULUS = 95.0
DISC_HU_NUCLEUS = 75.0


def cancellous_hu(age_years: float) -> float:
    """Cancellous vertebral HU: 226 at 25 y falling 2.5 HU/year to ≈89 (anatomy.md, L1 QCT)."""
    return float(np.clip(226.0 - 2.5 * (age_years - 25.0), 80.0, 240.0))


def cortical_hu(age_years: float) -> float:
    """Cortical shell HU within the 700–1900 range (anatomy.md), thinning with age (approx.)."""
    return float(np.clip(1150.0 - 4.0 * (age_years - 25.0), 800.0, 1200.0))


@dataclass(frozen=True)
class LocalFrame:
    """An orthonormal frame: ``origin`` (LPS mm) and axes ``eu`` (left), ``ev`` (posterior), ``ew``."""

    origin: NDArray[np.float64]
    eu: NDArray[np.float64]
    ev: NDArray[np.float64]
    ew: NDArray[np.float64]

    def to_local(
        self,
        x: NDArray[np.floating[Any]],
        y: NDArray[np.floating[Any]],
        z: NDArray[np.floating[Any]],
    ) -> tuple[Array, Array, Array]:
        """Broadcast LPS coordinate arrays to local (u, v, w) float32 arrays."""
        dx = (x - self.origin[0]).astype(np.float32)
        dy = (y - self.origin[1]).astype(np.float32)
        dz = (z - self.origin[2]).astype(np.float32)
        u = dx * np.float32(self.eu[0]) + dy * np.float32(self.eu[1]) + dz * np.float32(self.eu[2])
        v = dx * np.float32(self.ev[0]) + dy * np.float32(self.ev[1]) + dz * np.float32(self.ev[2])
        w = dx * np.float32(self.ew[0]) + dy * np.float32(self.ew[1]) + dz * np.float32(self.ew[2])
        return u, v, w

    def point(self, u: float, v: float, w: float) -> NDArray[np.float64]:
        """The LPS position of local coordinates (u, v, w)."""
        return self.origin + u * self.eu + v * self.ev + w * self.ew

    def vector(self, u: float, v: float, w: float) -> NDArray[np.float64]:
        """The LPS direction of a local vector."""
        return u * self.eu + v * self.ev + w * self.ew

    def world_box(
        self, low: tuple[float, float, float], high: tuple[float, float, float]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Axis-aligned LPS box (low, high) enclosing the local box [low, high]."""
        corners = np.array(
            [
                self.point(u, v, w)
                for u in (low[0], high[0])
                for v in (low[1], high[1])
                for w in (low[2], high[2])
            ]
        )
        return corners.min(axis=0), corners.max(axis=0)


def sagittal_frame(origin: NDArray[np.float64], tilt_rad: float) -> LocalFrame:
    """Frame whose axis is +z tilted toward anterior (−y) by ``tilt_rad`` (about the x axis)."""
    ew = np.array([0.0, -math.sin(tilt_rad), math.cos(tilt_rad)])
    ev = np.array([0.0, math.cos(tilt_rad), math.sin(tilt_rad)])
    return LocalFrame(np.asarray(origin, dtype=np.float64), np.array([1.0, 0.0, 0.0]), ev, ew)


@dataclass(frozen=True)
class LevelDims:
    """Dimensions of one vertebra (mm, degrees)."""

    body_width_mm: float
    body_depth_mm: float
    body_height_mm: float
    body_wedge_deg: float
    pedicle_width_mm: float
    pedicle_height_mm: float
    pedicle_angle_deg: float
    pedicle_length_mm: float
    canal_width_mm: float
    canal_depth_mm: float
    spinous_length_mm: float
    spinous_height_mm: float
    transverse_half_span_mm: float

    @property
    def rim_width_mm(self) -> float:
        """Width at the endplates. ``body_width_mm`` is the body's mean width over its height (as
        Clouthier's mean shape reads their published width; :mod:`models.phantom.measure`), and
        the outline's scale 1 − BODY_WAIST (1 − (w/h)²) averages 1 − ⅔ BODY_WAIST."""
        return self.body_width_mm / (1.0 - 2.0 / 3.0 * BODY_WAIST)

    @property
    def pedicle_center_u_mm(self) -> float:
        """Distance of the pedicle isthmus centre from the midline."""
        return self.canal_width_mm / 2 + self.pedicle_width_mm / 2

    @property
    def pedicle_center_w_mm(self) -> float:
        """Pedicle centre height above the body centre (pedicles sit on the upper half)."""
        return self.body_height_mm / 2 - self.pedicle_height_mm / 2 - 1.0


@dataclass(frozen=True)
class DiscDims:
    """One disc: mid height, wedge angle and the facet angle of the joints at its level."""

    mid_height_mm: float
    wedge_deg: float
    depth_mm: float
    facet_angle_deg: float
    #: The posterolateral annulus surface where Kambin's triangle lies, as v in the lower
    #: vertebra's body frame (mm); None: the primitive disc's corner, 2 mm behind the body.
    kambin_v_mm: float | None = None

    @property
    def anterior_height_mm(self) -> float:
        return (
            self.mid_height_mm + self.depth_mm / 2 * math.tan(math.radians(self.wedge_deg / 2)) * 2
        )

    @property
    def posterior_height_mm(self) -> float:
        return (
            self.mid_height_mm - self.depth_mm / 2 * math.tan(math.radians(self.wedge_deg / 2)) * 2
        )


@dataclass(frozen=True)
class LumbarLayout:
    """Where every lumbar level and disc sits (LPS mm), computed before any voxel is painted."""

    levels: dict[str, LevelDims]
    discs: dict[str, DiscDims]
    body_frames: dict[str, LocalFrame]
    disc_frames: dict[str, LocalFrame]
    #: facet joint "L4_L5_left" → (centre, unit normal pointing to the lower vertebra's SAP side).
    facets: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]
    s1_frame: LocalFrame
    #: (level, LPS points (N, 3)) → signed distance (mm, negative inside) to that level's real
    #: bone; None for the primitive generator, whose bone is the idealised shapes themselves.
    bone_distance: Callable[[str, NDArray[np.float64]], NDArray[np.float64]] | None = field(
        default=None, compare=False, repr=False
    )
    #: (level, side, LPS points (N, 3)) → distance (mm) to the surface of the bone labelled that
    #: pedicle; None for the primitive generator (its pedicle is :func:`pedicle_sdf`).
    pedicle_distance: Callable[[str, str, NDArray[np.float64]], NDArray[np.float64]] | None = field(
        default=None, compare=False, repr=False
    )

    def superior_endplate_center(self, level: str) -> NDArray[np.float64]:
        f, d = self.body_frames[level], self.levels[level]
        return f.point(0.0, 0.0, d.body_height_mm / 2)

    def inferior_endplate_center(self, level: str) -> NDArray[np.float64]:
        f, d = self.body_frames[level], self.levels[level]
        return f.point(0.0, 0.0, -d.body_height_mm / 2)

    def pedicle_center(self, level: str, side: str) -> NDArray[np.float64]:
        f, d = self.body_frames[level], self.levels[level]
        sign = 1.0 if side == "left" else -1.0
        return f.point(
            sign * d.pedicle_center_u_mm,
            d.body_depth_mm / 2 + d.pedicle_length_mm / 2,
            d.pedicle_center_w_mm,
        )


def disc_key(upper: str, lower: str) -> str:
    return f"{upper}_{lower}"


@lru_cache(maxsize=32)
def lumbar_layout(params: PatientParameters) -> LumbarLayout:
    """Stack discs and bodies on the S1 endplate (origin); same parameters → same layout."""
    rng = params.rng("lumbar_layout")
    sex_scale = 0.94 if params.sex == "female" else 1.0
    patient_scale = (
        params.body_scale * sex_scale * float(np.clip(rng.normal(1.0, 0.03), 0.93, 1.07))
    )

    def vary(value: float, sd: float = 0.03) -> float:
        return float(value * patient_scale * np.clip(rng.normal(1.0, sd), 1 - 2 * sd, 1 + 2 * sd))

    levels: dict[str, LevelDims] = {}
    for n, level in enumerate(LUMBAR_LEVELS):
        levels[level] = LevelDims(
            body_width_mm=vary(BODY_WIDTH_MM[n]),
            body_depth_mm=vary(BODY_DEPTH_MM[n]),
            body_height_mm=vary(BODY_HEIGHT_MM[n]),
            body_wedge_deg=BODY_WEDGE_DEG[n],
            pedicle_width_mm=vary(PEDICLE_WIDTH_MM[n], 0.05),
            pedicle_height_mm=vary(PEDICLE_HEIGHT_MM[n], 0.04),
            pedicle_angle_deg=PEDICLE_ANGLE_DEG[n] + float(np.clip(rng.normal(0, 1.5), -3, 3)),
            pedicle_length_mm=vary(PEDICLE_LENGTH_MM[n]),
            canal_width_mm=vary(CANAL_WIDTH_MM[n], 0.04),
            canal_depth_mm=vary(CANAL_DEPTH_MM[n], 0.04),
            spinous_length_mm=vary(SPINOUS_LENGTH_MM[n], 0.04),
            spinous_height_mm=vary(SPINOUS_HEIGHT_MM[n], 0.05),
            transverse_half_span_mm=vary(TRANSVERSE_HALF_SPAN_MM[n], 0.04),
        )
    if params.variant == "transitional_l5":
        l5 = levels["L5"]
        levels["L5"] = LevelDims(**{**l5.__dict__, "transverse_half_span_mm": 52.0 * patient_scale})

    discs: dict[str, DiscDims] = {}
    for n, (upper, lower) in enumerate(DISC_LEVELS):
        anterior, mid, posterior = DISC_HEIGHT_MM[n]
        lordosis = SEGMENTAL_LORDOSIS_DEG[n] * params.lordosis_scale
        wedge = max(1.0, lordosis - BODY_WEDGE_DEG[n])
        # plane-to-plane height: the published centre height includes both endplate concavities
        mid_height = vary(mid - 2 * 0.8 * ENDPLATE_CONCAVITY_MM, 0.05)
        if params.variant == "transitional_l5" and lower == "S1":
            mid_height *= 0.55  # hypoplastic disc of a transitional segment
        if params.variant == "narrow_foramen" and upper in ("L4", "L5"):
            mid_height *= 0.7  # degenerated, collapsed disc narrows the foramen
        depth = 0.5 * (levels[upper].body_depth_mm + levels.get(lower, levels["L5"]).body_depth_mm)
        discs[disc_key(upper, lower)] = DiscDims(
            mid_height_mm=mid_height,
            wedge_deg=wedge,
            depth_mm=depth,
            facet_angle_deg=FACET_ANGLE_DEG[n] + float(np.clip(rng.normal(0, 2.0), -4, 4)),
        )

    slope = math.radians(params.sacral_slope_deg)
    s1_frame = sagittal_frame(np.zeros(3), slope)
    tilt = slope
    point = np.zeros(3)
    body_frames: dict[str, LocalFrame] = {}
    disc_frames: dict[str, LocalFrame] = {}
    for n in range(len(LUMBAR_LEVELS) - 1, -1, -1):
        upper, lower = DISC_LEVELS[n]
        disc = discs[disc_key(upper, lower)]
        d_wedge = math.radians(disc.wedge_deg)
        mid_axis = sagittal_frame(point, tilt - d_wedge / 2)
        disc_frames[disc_key(upper, lower)] = sagittal_frame(
            point + mid_axis.ew * disc.mid_height_mm / 2, tilt - d_wedge / 2
        )
        point = point + mid_axis.ew * disc.mid_height_mm
        tilt -= d_wedge
        dims = levels[upper]
        b_wedge = math.radians(dims.body_wedge_deg)
        body_axis = sagittal_frame(point, tilt - b_wedge / 2)
        center = point + body_axis.ew * dims.body_height_mm / 2
        body_frames[upper] = sagittal_frame(center, tilt - b_wedge / 2)
        point = point + body_axis.ew * dims.body_height_mm
        tilt -= b_wedge

    facets: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    l1 = levels["L1"]
    joints = [
        ("T12", "L1", body_frames["L1"], l1, l1.body_height_mm / 2 + 8.0, T12_L1_FACET_ANGLE_DEG)
    ]
    for upper, lower in DISC_LEVELS:
        disc = discs[disc_key(upper, lower)]
        if lower == "S1":
            joints.append(
                (
                    upper,
                    lower,
                    s1_frame,
                    levels["L5"],
                    disc.mid_height_mm * 0.5 + 1.0,
                    disc.facet_angle_deg,
                )
            )
        else:
            low = levels[lower]
            joints.append(
                (
                    upper,
                    lower,
                    body_frames[lower],
                    low,
                    low.body_height_mm / 2 + disc.mid_height_mm * 0.5 + 1.0,
                    disc.facet_angle_deg,
                )
            )
    for upper, lower, frame, low_dims, w_center, angle_deg in joints:
        alpha = math.radians(angle_deg)
        for side in SIDES:
            sign = 1.0 if side == "left" else -1.0
            center = frame.point(
                sign * (low_dims.pedicle_center_u_mm - 2.0),
                low_dims.body_depth_mm / 2 + low_dims.pedicle_length_mm + 5.0,
                w_center,
            )
            normal = frame.vector(sign * math.cos(alpha), -math.sin(alpha), 0.0)
            facets[f"{upper}_{lower}_{side}"] = (center, normal / np.linalg.norm(normal))
    return LumbarLayout(levels, discs, body_frames, disc_frames, facets, s1_frame)


# --- signed-distance primitives (negative inside), float32 arrays ------------------------------


def smooth_union(a: Array, b: Array, k: float) -> Array:
    """Polynomial smooth minimum of two SDFs with blend radius ``k`` mm."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    result: Array = (b * (1 - h) + a * h - k * h * (1 - h)).astype(np.float32)
    return result


def segment_sdf(
    u: Array,
    v: Array,
    w: Array,
    a: tuple[float, float, float],
    b: tuple[float, float, float],
    radius_a: float,
    radius_b: float | None = None,
    scale: tuple[float, float, float] = (1, 1, 1),
) -> Array:
    """Tapered capsule from a to b (local coordinates), optionally anisotropically scaled."""
    radius_b = radius_a if radius_b is None else radius_b
    su, sv, sw = (np.float32(s) for s in scale)
    pu, pv, pw = (u - a[0]) * su, (v - a[1]) * sv, (w - a[2]) * sw
    bu, bv, bw = (b[0] - a[0]) * su, (b[1] - a[1]) * sv, (b[2] - a[2]) * sw
    length2 = float(bu * bu + bv * bv + bw * bw) or 1e-9
    t = np.clip((pu * bu + pv * bv + pw * bw) / np.float32(length2), 0.0, 1.0)
    du, dv, dw = pu - t * bu, pv - t * bv, pw - t * bw
    radius = radius_a + (radius_b - radius_a) * t
    result: Array = (np.sqrt(du * du + dv * dv + dw * dw) - radius).astype(np.float32)
    return result


def superellipse_radius(u: Array, v: Array, a: Array | float, b: Array | float, p: float) -> Array:
    """Normalised superellipse radius (1 on the outline) in the (u, v) plane."""
    # float32 at run time: the scalars are Python floats (NEP 50); the stubs say float64
    return cast(Array, ((np.abs(u) / a) ** p + (np.abs(v) / b) ** p) ** (1.0 / p))


# --- the vertebra ------------------------------------------------------------------------------


def _body_waist(w: Array, d: LevelDims) -> Array:
    """Scale of the axial outline at height ``w``: 1 at the endplates, 1 − BODY_WAIST at mid height
    (parabolic profile: the concave anterior and lateral walls of a real body)."""
    half_h = d.body_height_mm / 2
    scale: Array = (1.0 - BODY_WAIST * np.clip(1.0 - (w / half_h) ** 2, 0.0, 1.0)).astype(
        np.float32
    )
    return scale


def _body_surfaces(u: Array, v: Array, w: Array, d: LevelDims) -> tuple[Array, Array, Array]:
    """(radial SDF, top surface w, bottom surface w) of a vertebral body in its local frame."""
    half_h = d.body_height_mm / 2
    waist = _body_waist(w, d)
    a = d.rim_width_mm / 2 * waist
    # concave posterior wall: the midline keeps the nominal (midsagittal) depth, the
    # posterolateral corners bulge 2.5 mm behind it (kidney shape); the posterior wall is
    # nearly straight in height (a third of the anterior waist)
    bulge = 2.5 * (1.0 - np.clip(1.0 - (u / (0.55 * d.rim_width_mm / 2)) ** 2, 0.0, 1.0))
    back_waist = 1.0 - (1.0 - waist) / 3.0
    b = np.where(v > 0, (d.body_depth_mm / 2 + bulge) * back_waist, d.body_depth_mm / 2 * waist)
    r = np.where(
        v > 0,
        superellipse_radius(u, v, a, b, BODY_EXPONENT_POSTERIOR),
        superellipse_radius(u, v, a, b, BODY_EXPONENT_ANTERIOR),
    ).astype(np.float32)
    radial = (r - 1.0) * np.minimum(a, b)
    tan_e = math.tan(math.radians(d.body_wedge_deg / 2))
    dip = ENDPLATE_CONCAVITY_MM * np.clip(1.0 - r**2, 0.0, 1.0)
    top = half_h - v * tan_e - dip
    bottom = -half_h + v * tan_e + dip
    return radial.astype(np.float32), top.astype(np.float32), bottom.astype(np.float32)


def body_sdf(u: Array, v: Array, w: Array, d: LevelDims) -> Array:
    """Body SDF: kidney-shaped waisted cylinder between concave endplates, rims rounded."""
    radial, top, bottom = _body_surfaces(u, v, w, d)
    return _rounded_max(radial, np.maximum(w - top, bottom - w), ENDPLATE_RIM_RADIUS_MM)


def body_cortex(u: Array, v: Array, w: Array, d: LevelDims) -> tuple[Array, Array]:
    """(shell thickness mm, cortical fraction) of the body's cortex at each point.

    The shell is CORTICAL_SHELL_MM on the waist and the endplate centre, growing to
    RING_APOPHYSIS_MM at the endplate rim (ring apophysis: full within 2 mm of each endplate,
    fading out 6 mm from it). A
    thin wall only partly fills its 1 mm voxel: its HU is the cancellous value plus
    WALL_CORTICAL_FRACTION of the cortical excess, rising to the full cortical value at the rim.
    """
    radial, top, bottom = _body_surfaces(u, v, w, d)
    near_endplate = np.clip((6.0 - np.minimum(top - w, w - bottom)) / 4.0, 0.0, 1.0)
    near_rim = np.clip(1.0 + radial / 6.0, 0.0, 1.0)  # 1 on the outer wall, 0 at 6 mm inside
    ring = near_endplate * near_rim
    thickness = CORTICAL_SHELL_MM + (RING_APOPHYSIS_MM - CORTICAL_SHELL_MM) * ring
    fraction = WALL_CORTICAL_FRACTION + (1.0 - WALL_CORTICAL_FRACTION) * ring
    return thickness.astype(np.float32), fraction.astype(np.float32)


def pedicle_sdf(u: Array, v: Array, w: Array, d: LevelDims, side: str) -> Array:
    """Pedicle: elliptic cylinder along (±sin α, cos α, 0) through the isthmus centre, flaring
    into the body and the lamina (more in height than in width); vertebra-local coordinates."""
    sign = 1.0 if side == "left" else -1.0
    pw, ph = d.pedicle_width_mm / 2, d.pedicle_height_mm / 2
    lp = d.pedicle_length_mm
    alpha = math.radians(d.pedicle_angle_deg)
    du = u - sign * d.pedicle_center_u_mm
    dv = v - (d.body_depth_mm / 2 + lp / 2)
    dw = w - d.pedicle_center_w_mm
    s_axis = du * np.float32(sign * math.sin(alpha)) + dv * np.float32(math.cos(alpha))
    q1 = du * np.float32(math.cos(alpha)) - dv * np.float32(sign * math.sin(alpha))
    ends = np.clip(s_axis / (lp / 2), -1.0, 1.0) ** 2
    a = pw * (1.0 + 0.1 * ends)
    b = ph * (1.0 + np.where(s_axis > 0, 0.3, 0.12) * ends)
    radial = np.sqrt((q1 / a) ** 2 + (dw / b) ** 2)
    # first-order distance to the ellipse: (radial - 1) / |grad radial|
    gradient = np.sqrt((q1 / a**2) ** 2 + (dw / b**2) ** 2) / np.maximum(radial, 1e-6)
    distance = (radial - 1.0) / np.maximum(gradient, 1.0 / np.maximum(a, b))
    return np.maximum(distance, np.maximum(-s_axis - (lp / 2 + 5.0), s_axis - lp / 2)).astype(
        np.float32
    )


@dataclass
class VertebraShapes:
    """SDFs of one vertebra's pieces on a box (local coordinates)."""

    body: Array
    pedicles: dict[str, Array]
    posterior: Array


def vertebra_shapes(
    u: Array,
    v: Array,
    w: Array,
    level: str,
    layout: LumbarLayout,
    params: PatientParameters,
    world: tuple[Array, Array, Array],
) -> VertebraShapes:
    """Evaluate every piece of vertebra ``level`` on local coordinates (u, v, w)."""
    d = layout.levels[level]
    n = LUMBAR_LEVELS.index(level)
    half_d = d.body_depth_mm / 2
    body = body_sdf(u, v, w, d)

    ph = d.pedicle_height_mm / 2
    wp = d.pedicle_center_w_mm
    lp = d.pedicle_length_mm
    alpha = math.radians(d.pedicle_angle_deg)
    pedicles: dict[str, Array] = {}
    posterior: Array | None = None
    frame = layout.body_frames[level]
    narrow = params.variant == "narrow_foramen"
    canal_back = half_d + d.canal_depth_mm
    lamina_t = 6.0
    junction = (0.0, canal_back + lamina_t / 2, wp - 3.0)
    lower_disc = layout.discs[disc_key(*DISC_LEVELS[n])]
    disc_below = lower_disc.mid_height_mm
    for side in SIDES:
        sign = 1.0 if side == "left" else -1.0
        ped = pedicle_sdf(u, v, w, d, side)
        pedicles[side] = ped.astype(np.float32)

        pedicle_back = (sign * (d.pedicle_center_u_mm + math.sin(alpha) * lp / 2), half_d + lp, wp)
        # lamina: plate from the pedicle's posterior end to the midline, leaning caudally
        lam_top = wp + ph * 0.6
        lam_bottom = -d.body_height_mm / 2 - disc_below * 0.55
        lean = np.float32(math.tan(math.radians(18.0)))
        v_shift = np.clip(wp - w, 0.0, None) * lean  # leans back below the pedicles
        plate2d = segment_sdf(
            u,
            v - v_shift,
            np.zeros_like(w),
            (pedicle_back[0], pedicle_back[1], 0.0),
            (sign * 2.0, junction[1], 0.0),
            lamina_t / 2,
        )
        lamina = np.maximum(plate2d, np.maximum(w - lam_top, lam_bottom - w))
        # pars interarticularis: between the pedicle and the inferior articular process the
        # lamina's lateral border steps PARS_NOTCH_MM medially (the Scotty dog's neck)
        pars_top, pars_bottom = wp - ph - 1.0, lam_bottom + 9.0
        in_band = np.clip(np.minimum(pars_top - w, w - pars_bottom) / 2.5, 0.0, 1.0)
        lateral_limit = abs(pedicle_back[0]) + lamina_t / 2 + 1.0 - (PARS_NOTCH_MM + 1.0) * in_band
        lamina = _rounded_max(lamina, sign * u - lateral_limit, 1.5)
        # transverse process: flattened capsule laterally from the pedicle-lamina junction
        tp_root = (sign * (d.pedicle_center_u_mm + 2.0), half_d + lp * 0.55, wp - 1.0)
        tp_tip = (sign * d.transverse_half_span_mm, half_d + lp * 0.55 + 3.0, wp + 2.0 - n * 0.5)
        # tapering laterally: the tip radius shrinks, the tip moves out by the same amount so
        # the tip-to-tip span (TRANSVERSE_HALF_SPAN_MM + 4 mm) is unchanged
        tp_tip = (tp_tip[0] + sign * 1.4, tp_tip[1], tp_tip[2])
        tp_radius = (6.0, 2.6)
        if params.variant == "transitional_l5" and level == "L5":
            tp_tip = (sign * d.transverse_half_span_mm, half_d + 2.0, -d.body_height_mm / 2 - 4.0)
            tp_radius = (9.0, 10.0)
        transverse = segment_sdf(
            u, v, w, tp_root, tp_tip, tp_radius[0], tp_radius[1], scale=(1.0, 1.4, 0.9)
        )
        # superior articular process: a stalk from the pedicle's end to an articular plate
        # lying lateral/anterior to the joint plane of the joint above
        above = f"{LUMBAR_LEVELS[n - 1]}_{level}" if n > 0 else f"T12_{level}"
        center, normal = layout.facets[f"{above}_{side}"]
        thick = FACET_HALF_THICKNESS_MM + (1.5 if narrow and level == "L5" else 0.0)
        plate = center + normal * (FACET_GAP_MM / 2 + thick) + frame.ew * 2.0
        if narrow and level == "L5":
            plate = plate - frame.ev * 2.5  # hypertrophic SAP bulging into the foramen
        sap = segment_sdf(
            u, v, w, (pedicle_back[0], half_d + lp - 1.0, wp), _local(frame, plate), 5.0, 4.0
        )
        sap = smooth_union(sap, _facet_plate_sdf(world, plate, normal, frame.ew, thick), 2.5)
        sap = np.maximum(sap, FACET_GAP_MM / 2 - _plane_distance(world, center, normal))
        # inferior articular process: from the lamina down to a plate medial/posterior to the
        # joint plane of the joint below
        below = DISC_LEVELS[n][1]
        center_b, normal_b = layout.facets[f"{level}_{below}_{side}"]
        plate_b = (
            center_b - normal_b * (FACET_GAP_MM / 2 + FACET_HALF_THICKNESS_MM) - frame.ew * 2.0
        )
        iap = segment_sdf(
            u,
            v,
            w,
            (sign * (d.pedicle_center_u_mm - 4.0), half_d + lp + 8.0, lam_bottom + 6.0),
            _local(frame, plate_b),
            5.0,
            4.0,
        )
        iap = smooth_union(
            iap, _facet_plate_sdf(world, plate_b, normal_b, frame.ew, FACET_HALF_THICKNESS_MM), 2.5
        )
        iap = np.maximum(iap, FACET_GAP_MM / 2 + _plane_distance(world, center_b, normal_b))
        side_union = smooth_union(lamina, transverse, 3.0)
        side_union = smooth_union(side_union, sap, 2.5)
        side_union = smooth_union(side_union, iap, 2.5)
        # below the pedicle the lamina continues into the IAP: cut it by the joint plane too
        cut = np.maximum(side_union, FACET_GAP_MM / 2 + _plane_distance(world, center_b, normal_b))
        near_joint = (w < wp - ph) & (_distance_to(world, center_b) < 14.0)
        side_union = np.where(near_joint, cut, side_union)
        posterior = side_union if posterior is None else smooth_union(posterior, side_union, 1.0)

    # spinous process: plate sloping caudally to a bulbous tip
    tip = (0.0, half_d + d.spinous_length_mm, junction[2] - SPINOUS_TIP_DROP * d.spinous_height_mm)
    t = np.clip((v - junction[1]) / (tip[1] - junction[1]), 0.0, 1.0)
    w_center = junction[2] + (tip[2] - junction[2]) * t
    half_height = d.spinous_height_mm / 2 * (1.0 - 0.2 * t)
    # tear-drop cross-section: a thin superior border thickening to the inferior border, the
    # whole process thickening toward its bulbous tip (on AP a tear-drop over the lower body)
    below_top = np.clip((w_center + half_height - w) / (2 * half_height), 0.0, 1.0)
    half_thick = 1.2 + 2.2 * below_top**1.5 + 1.5 * t**4
    # rounded plate: edges in the sagittal profile rounded by 4 mm, the thin edges by 1.5 mm
    profile = _rounded_max(
        np.abs(w - w_center) - half_height, np.maximum(v - tip[1], junction[1] - 2.0 - v), 4.0
    )
    spinous = _rounded_max(np.abs(u) - half_thick, profile, 1.5)
    spinous = smooth_union(spinous, segment_sdf(u, v, w, tip, tip, 4.5), 2.0)
    assert posterior is not None
    posterior = smooth_union(posterior, spinous.astype(np.float32), 3.0)
    return VertebraShapes(body=body, pedicles=pedicles, posterior=posterior)


def _rounded_max(a: Array, b: Array, radius: float) -> Array:
    """Intersection of two SDFs with the convex edge rounded by ``radius`` (a rounded box)."""
    a = a + np.float32(radius)
    b = b + np.float32(radius)
    outside = np.sqrt(np.maximum(a, 0.0) ** 2 + np.maximum(b, 0.0) ** 2)
    result: Array = (outside + np.minimum(np.maximum(a, b), 0.0) - np.float32(radius)).astype(
        np.float32
    )
    return result


def _local(frame: LocalFrame, point: NDArray[np.float64]) -> tuple[float, float, float]:
    rel = point - frame.origin
    return (float(rel @ frame.eu), float(rel @ frame.ev), float(rel @ frame.ew))


def _facet_plate_sdf(
    world: tuple[Array, Array, Array],
    center: NDArray[np.float64],
    normal: NDArray[np.float64],
    axis: NDArray[np.float64],
    half_thickness_mm: float,
) -> Array:
    """Ellipsoidal articular plate: thin along the joint normal, 14 mm wide, 17 mm tall."""
    along = np.cross(axis, normal)
    along = along / np.linalg.norm(along)
    dn = _plane_distance(world, center, normal)
    dt = _plane_distance(world, center, along)
    da = _plane_distance(world, center, axis)
    radial = np.sqrt(
        (dn / half_thickness_mm) ** 2
        + (dt / FACET_HALF_WIDTH_MM) ** 2
        + (da / FACET_HALF_HEIGHT_MM) ** 2
    )
    result: Array = ((radial - 1.0) * half_thickness_mm).astype(np.float32)
    return result


def _distance_to(
    world: tuple[Array, Array, Array], point: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Distance (float64: the point's float64 coordinates promote the float32 grid)."""
    x, y, z = world
    distance: NDArray[np.float64] = np.sqrt(
        (x - point[0]) ** 2 + (y - point[1]) ** 2 + (z - point[2]) ** 2
    )
    return distance


def _plane_distance(
    world: tuple[Array, Array, Array], center: NDArray[np.float64], normal: NDArray[np.float64]
) -> Array:
    x, y, z = world
    result: Array = (
        (x - center[0]) * np.float32(normal[0])
        + (y - center[1]) * np.float32(normal[1])
        + (z - center[2]) * np.float32(normal[2])
    ).astype(np.float32)
    return result


def _texture(rng: np.random.Generator, shape: tuple[int, ...], amplitude_hu: float) -> Array:
    """Smoothed Gaussian noise with standard deviation ``amplitude_hu`` (trabecular texture)."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    smooth = ndimage.gaussian_filter(noise, sigma=0.8, mode="nearest")
    sd = float(smooth.std()) or 1.0
    result: Array = (smooth * np.float32(amplitude_hu / sd)).astype(np.float32)
    return result


def vertebra_local_box(
    layout: LumbarLayout, level: str
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    d = layout.levels[level]
    n = LUMBAR_LEVELS.index(level)
    disc_below = layout.discs[disc_key(*DISC_LEVELS[n])].mid_height_mm
    disc_above = layout.discs[disc_key(LUMBAR_LEVELS[n - 1], level)].mid_height_mm if n else 10.0
    span = max(d.transverse_half_span_mm + 12.0, d.rim_width_mm / 2 + 4)
    low = (-span, -d.body_depth_mm / 2 - 4.0, -d.body_height_mm / 2 - disc_below - 20.0)
    high = (
        span,
        d.body_depth_mm / 2 + d.spinous_length_mm + 8.0,
        d.body_height_mm / 2 + disc_above + 10.0,
    )
    return low, high


def lumbar_part(grid: Grid, params: PatientParameters, anchors: Anchors) -> PartResult:
    """Paint L1–L5 (body, pedicles, posterior elements) and the five discs; lumbar landmarks."""
    layout = lumbar_layout(params)
    result = PartResult()
    rng = params.rng("lumbar_texture")
    hu_cancellous = cancellous_hu(params.age_years)
    hu_cortical = cortical_hu(params.age_years)
    hu_posterior_core = hu_cancellous + 120.0

    for level in LUMBAR_LEVELS:
        frame = layout.body_frames[level]
        d = layout.levels[level]
        low, high = frame.world_box(*vertebra_local_box(layout, level))
        box = grid.box(low, high)
        x, y, z = grid.coordinates(box)
        u, v, w = frame.to_local(x, y, z)
        shape = np.broadcast_shapes(u.shape, v.shape, w.shape)
        u, v, w = (np.broadcast_to(a, shape) for a in (u, v, w))
        world = cast(
            "tuple[Array, Array, Array]",
            tuple(np.broadcast_to(a.astype(np.float32), shape) for a in (x, y, z)),
        )
        shapes = vertebra_shapes(u, v, w, level, layout, params, world)
        texture = _texture(rng, shape, 40.0)
        body_mask = shapes.body <= 0
        cortex_mm, cortex_fraction = body_cortex(u, v, w, d)
        shell_hu = hu_cancellous + (hu_cortical - hu_cancellous) * cortex_fraction
        body_hu = np.where(shapes.body > -cortex_mm, shell_hu, hu_cancellous + texture).astype(
            np.float32
        )
        result.pieces.append(Painted(f"{level}_body", box, body_mask, body_hu, PRIORITY_BONE))
        for side, ped in shapes.pedicles.items():
            mask = (ped <= 0) & ~body_mask & (v >= d.body_depth_mm / 2 - 4.0)
            hu = np.where(ped > -1.5, hu_cortical, hu_posterior_core + texture).astype(np.float32)
            result.pieces.append(
                Painted(f"{level}_pedicle_{side}", box, mask, hu, PRIORITY_BONE + 1)
            )
        posterior = shapes.posterior
        pedicle_any = (shapes.pedicles["left"] <= 0) | (shapes.pedicles["right"] <= 0)
        mask = (posterior <= 0) & ~body_mask & ~pedicle_any
        hu = np.where(posterior > -1.5, hu_cortical, hu_posterior_core + texture).astype(np.float32)
        result.pieces.append(
            Painted(f"{level}_posterior_elements", box, mask, hu, PRIORITY_BONE + 1)
        )
        result.landmarks.update(_level_landmarks(layout, level))

    for upper, lower in DISC_LEVELS:
        result.pieces.append(_disc_piece(grid, layout, upper, lower))
        key = disc_key(upper, lower)
        result.landmarks[f"disc_{key}_center"] = layout.disc_frames[key].origin.copy()
        for side in SIDES:
            result.landmarks[f"facet_{key}_{side}"] = layout.facets[f"{key}_{side}"][0].copy()

    return result


def _level_landmarks(layout: LumbarLayout, level: str) -> dict[str, NDArray[np.float64]]:
    frame, d = layout.body_frames[level], layout.levels[level]
    wp = d.pedicle_center_w_mm
    junction_w = wp - 3.0
    marks = {
        f"{level}_body_center": frame.origin.copy(),
        f"{level}_superior_endplate_center": layout.superior_endplate_center(level),
        f"{level}_inferior_endplate_center": layout.inferior_endplate_center(level),
        f"{level}_spinous_tip": frame.point(
            0.0,
            d.body_depth_mm / 2 + d.spinous_length_mm + 4.5,
            junction_w - SPINOUS_TIP_DROP * d.spinous_height_mm,
        ),
    }
    for side in SIDES:
        marks[f"{level}_pedicle_center_{side}"] = layout.pedicle_center(level, side)
    return marks


def _disc_piece(grid: Grid, layout: LumbarLayout, upper: str, lower: str) -> Painted:
    """A disc fills the space between the adjacent endplate surfaces inside its outline."""
    key = disc_key(upper, lower)
    frame = layout.disc_frames[key]
    disc = layout.discs[key]
    up = layout.levels[upper]
    lo = layout.levels.get(lower, up)
    width = 0.5 * (up.rim_width_mm + lo.rim_width_mm) + 1.0
    depth = disc.depth_mm + 1.0
    reach = disc.mid_height_mm + 8.0
    low, high = frame.world_box(
        (-width / 2 - 2, -depth / 2 - 2, -reach), (width / 2 + 2, depth / 2 + 2, reach)
    )
    box = grid.box(low, high)
    x, y, z = grid.coordinates(box)
    u, v, w = frame.to_local(x, y, z)
    shape = np.broadcast_shapes(u.shape, v.shape, w.shape)
    u, v, w = (np.broadcast_to(a, shape) for a in (u, v, w))
    bulge = 2.5 * (1.0 - np.clip(1.0 - (u / (0.55 * width / 2)) ** 2, 0.0, 1.0))
    b = np.where(v > 0, depth / 2 + bulge, depth / 2)
    r = np.where(
        v > 0,
        superellipse_radius(u, v, width / 2, b, 3.2),
        superellipse_radius(u, v, width / 2, b, 2.3),
    )
    inside = r <= 1.0
    fu, fv, fw = layout.body_frames[upper].to_local(x, y, z)
    _, _, bottom_upper = _body_surfaces(fu, fv, fw, up)
    # the annulus fills the rounded endplate rims up to the bone
    rim = np.float32(ENDPLATE_RIM_RADIUS_MM)
    below_upper = (fw <= bottom_upper) | (
        (fw <= bottom_upper + rim) & (body_sdf(fu, fv, fw, up) > 0)
    )
    if lower == "S1":
        sx, sy, sz = layout.s1_frame.to_local(x, y, z)
        above_lower = sz > 0
    else:
        lu, lv, lw = layout.body_frames[lower].to_local(x, y, z)
        _, top_lower, _ = _body_surfaces(lu, lv, lw, lo)
        above_lower = (lw > top_lower) | ((lw > top_lower - rim) & (body_sdf(lu, lv, lw, lo) > 0))
    mask = inside & below_upper & above_lower & (np.abs(w) < reach)
    nucleus = superellipse_radius(u * 1.0, v - 2.0, width / 2 * 0.5, depth / 2 * 0.45, 2.0) <= 1.0
    hu = np.where(nucleus, DISC_HU_NUCLEUS, DISC_HU_ANNULUS).astype(np.float32)
    return Painted(f"disc_{key}", box, np.ascontiguousarray(mask), hu, PRIORITY_DISC)


def layout_anchors(layout: LumbarLayout) -> dict[str, NDArray[np.float64]]:
    """The lumbar poses other parts may use (``anchors.extra``)."""
    extra: dict[str, NDArray[np.float64]] = {}
    for level in LUMBAR_LEVELS:
        frame = layout.body_frames[level]
        extra[f"{level}_body_center"] = frame.origin.copy()
        extra[f"{level}_superior_endplate_center"] = layout.superior_endplate_center(level)
        extra[f"{level}_inferior_endplate_center"] = layout.inferior_endplate_center(level)
        extra[f"{level}_axis"] = frame.ew.copy()
    for name, (center, normal) in layout.facets.items():
        extra[f"facet_{name}_center"] = center.copy()
        extra[f"facet_{name}_normal"] = normal.copy()
    return extra
