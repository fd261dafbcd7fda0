"""Measure anatomy from a patient's LABEL volume (not from the generator's parameters).

Every function samples the label volume (nearest voxel, 0.25 mm steps along lines) in a frame
taken from the patient's landmarks: a vertebra's frame has its origin at ``X_body_center``, its
axis from the inferior to the superior endplate centre, u toward the patient's left and v toward
posterior. This is how a radiologist measures on reformatted CT, so the same code measures a
generated or an imported (labelled) patient.

Definitions (mm, degrees):
- body width: the mean of the body's left–right extents through its centre (1 mm apart over its
  height, leaving out lines that only graze an endplate's rim), as :mod:`models.yardstick` reads
  a vertebra's surface: the measure on which Clouthier's mean shape reads their published width
  (its rims are 8–12 % wider, its waist 7–10 % narrower);
  depth: midsagittal antero-posterior chord near the endplates; heights: chord along the axis at
  the anterior / posterior wall (3 mm inside; each the median over a 2 mm antero-posterior
  band) and at the centre, across gaps of at most 10 mm (the basivertebral vein's channel).
- pedicle width (Zindrick 1987's isthmus): the narrowest chord of the level's bone (body, pedicle
  and posterior elements, not the pedicle label alone) perpendicular to the pedicle axis in the
  axial plane through the pedicle centre, among chords bounded by the canal medially and soft
  tissue laterally (axis angle searched 0–45°); height: the shortest bone chord along the body
  axis just behind the isthmus centre.
- canal (as :mod:`models.yardstick` measures a vertebra's surface, so a generated patient's
  labels read what its generator drew): in axial sections of the level's bone around the
  pedicles' mid-height, the enclosed hole crossing the midline behind the body; width its full
  left–right extent (between the pedicles' medial walls), depth its midsagittal extent; medians
  over the sections where the ring is closed. Without a closed ring (a mask that leaves the arch
  open), depth falls back to the midsagittal gap between body and posterior elements.
- disc heights: chords of the disc label along the disc axis, 3 mm inside the anterior and
  posterior disc outline and at the centre.
- facet angle: angle to the sagittal plane of the plane fitted to the joint space between the
  upper vertebra's inferior and the lower vertebra's superior articular process.
- root–pedicle distance: smallest gap between the root's and the pedicle's voxels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from fluorosim.models.labels import DISC_LEVELS, LUMBAR_LEVELS
from fluorosim.models.patient import Patient
from fluorosim.models.template.warp_geometry import mean_body_width_mm

STEP_MM = 0.25
#: The canal's midsagittal depth is looked for this far (mm) below the pedicles' mid-height.
CANAL_SEARCH_DROP_MM = 6.0
#: A closed gap shallower than this (mm) is a vein channel or a label's edge, not the canal (the
#: shallowest in Clouthier 2023's 87 CTs is 13.0 mm): the search goes on to the next height.
CANAL_MIN_DEPTH_MM = 5.0
#: The canal's axial sections: sample step in the section (mm), their heights around the pedicles'
#: mid-height (mm, 1 mm apart) and the smallest hole taken as the canal (mm²; smaller ones are
#: gaps between processes, as in models.yardstick).
CANAL_SECTION_STEP_MM = 0.5
CANAL_SECTION_HEIGHTS_MM = tuple(float(h) for h in range(-8, 9))
CANAL_MIN_AREA_MM2 = 20.0
#: A root's 1 mm slab counts toward its centre line if it holds this fraction of the median
#: slab's voxels.
ROOT_SLAB_MIN_FRACTION = 0.5
#: Facet joint space is fitted within this distance of the facet landmark.
FACET_RADIUS_MM = 10.0
#: Each body height is the median chord over these antero-posterior offsets (mm) around its line:
#: one chord's ends snap to voxel faces (±half a voxel each); along a tilted endplate the
#: neighbouring lines cross the grid at other phases, and the median ignores a line that leaves
#: the body through a notch in its wall.
HEIGHT_BAND_MM = (-1.0, -0.5, 0.0, 0.5, 1.0)
#: A body height chord is not ended by a gap this short: the basivertebral vein's channel through
#: the posterior wall (soft tissue inside the body, up to ≈8 mm tall in the template's L1) is not
#: an endplate; only the same body's label is bridged, never a disc to the next body.
BODY_CHANNEL_MM = 10.0

#: Pedicle isthmus: convergence angles of the pedicle axis tried (deg; Zindrick et al. 1987:
#: transverse angle ≈11° at L1 rising to ≈30° at L5), probe positions along the axis from the
#: pedicle-centre landmark (mm, posterior positive) and the reach of each chord either side (mm).
#: The primitive generator's landmark sits mid-pedicle, 7–8 mm behind the body's posterior wall;
#: probes further forward (−10 mm) cut the corner where its pedicle label runs into the body's
#: side and read 2–4 mm narrow. The real generator's landmark is the isthmus found on the bone
#: surface, and its widths do not change for any search from ±6 to ±10 mm.
PEDICLE_AXIS_ANGLES_DEG = np.arange(0.0, 45.1, 1.0)
PEDICLE_AXIS_SEARCH_MM = (-8.0, 8.0)
PEDICLE_CHORD_REACH_MM = 35.0
#: A chord crosses the pedicle's corridor when at least this much non-bone lies medial of it (the
#: canal; a vein channel in the body's wall is shorter) and lateral of it (soft tissue) (mm).
PEDICLE_CANAL_GAP_MM = 4.0
PEDICLE_SOFT_GAP_MM = 2.0
#: The axis angle is taken only where the corridor is crossed over at least this length (mm).
PEDICLE_MIN_CORRIDOR_MM = 3.0
#: The height is the shortest vertical bone chord this far (mm) behind the isthmus centre.
PEDICLE_HEIGHT_BACK_MM = np.arange(0.0, 6.5, 1.0)


@dataclass(frozen=True)
class Frame:
    """Measurement frame (LPS): origin, u (left), v (posterior), w (axis, superior)."""

    origin: NDArray[np.float64]
    u: NDArray[np.float64]
    v: NDArray[np.float64]
    w: NDArray[np.float64]

    def point(self, a: float, b: float, c: float) -> NDArray[np.float64]:
        return self.origin + a * self.u + b * self.v + c * self.w


def _frame(origin: ArrayLike, axis: ArrayLike) -> Frame:
    w = np.asarray(axis, dtype=np.float64)
    w = w / np.linalg.norm(w)
    u = np.array([1.0, 0.0, 0.0]) - w[0] * w
    u = u / np.linalg.norm(u)
    v = np.cross(w, u)
    return Frame(np.asarray(origin, dtype=np.float64), u, v, w)


def vertebra_frame(patient: Patient, level: str) -> Frame:
    """Frame of vertebra ``level`` from its endplate-centre landmarks."""
    top = patient.landmark(f"{level}_superior_endplate_center")
    bottom = patient.landmark(f"{level}_inferior_endplate_center")
    return _frame(patient.landmark(f"{level}_body_center"), top - bottom)


def _lower_endplate(patient: Patient, lower: str) -> NDArray[np.float64]:
    if lower == "S1":
        return patient.landmarks.get("S1_superior_endplate_center", np.zeros(3))
    return patient.landmark(f"{lower}_superior_endplate_center")


def disc_frame(patient: Patient, upper: str, lower: str) -> Frame:
    """Frame of a disc: origin at its centre, axis from the lower to the upper endplate centre."""
    top = patient.landmark(f"{upper}_inferior_endplate_center")
    bottom = _lower_endplate(patient, lower)
    return _frame(0.5 * (top + bottom), top - bottom)


def _line_inside(
    patient: Patient,
    start: NDArray[np.float64],
    direction: NDArray[np.float64],
    half_length_mm: float,
    values: set[int],
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """(offsets, in ``values``?) of the samples each STEP_MM along a line through ``start``."""
    direction = np.asarray(direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction)
    offsets = np.arange(-half_length_mm, half_length_mm + STEP_MM / 2, STEP_MM)
    points = start[None, :] + offsets[:, None] * direction[None, :]
    return offsets, np.isin(patient.labels_at(points), list(values))


def chord_mm(
    patient: Patient,
    start: NDArray[np.float64],
    direction: NDArray[np.float64],
    half_length_mm: float,
    values: set[int],
    bridge_mm: float = 0.0,
) -> float:
    """Length of the contiguous run of ``values`` through the sample nearest ``start`` on a line.

    The run containing the start point (or the nearest run to it) is measured, so a neighbour
    structure along the same line is not counted. Gaps no longer than ``bridge_mm`` inside the run
    (a vascular channel through the structure) do not end it.
    """
    offsets, inside = _line_inside(patient, start, direction, half_length_mm, values)
    if not inside.any():
        return 0.0
    centre = int(np.argmin(np.abs(offsets) + np.where(inside, 0.0, 1e6)))
    if bridge_mm > 0.0:
        inside = inside | _short_gaps(inside, int(round(bridge_mm / STEP_MM)))
    lo, hi = _run_around(inside, centre)
    return float((hi - lo + 1) * STEP_MM)


def _extent_mm(
    patient: Patient,
    start: NDArray[np.float64],
    direction: NDArray[np.float64],
    half_length_mm: float,
    values: set[int],
) -> float:
    """Distance between the outermost samples of ``values`` on a line (0 if it meets none)."""
    inside = np.flatnonzero(_line_inside(patient, start, direction, half_length_mm, values)[1])
    return float((inside[-1] - inside[0] + 1) * STEP_MM) if inside.size else 0.0


def _closed_gaps(inside: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first sample, length) of every run of ``False`` samples with ``True`` on both sides."""
    index = np.flatnonzero(inside)
    pairs = zip(index[:-1], index[1:], strict=True)
    return [(int(a) + 1, int(b - a) - 1) for a, b in pairs if b - a > 1]


def _short_gaps(inside: NDArray[np.bool_], max_samples: int) -> NDArray[np.bool_]:
    """Samples of runs of ``False`` no longer than ``max_samples`` with ``True`` on both sides."""
    gaps = np.zeros_like(inside)
    for start, length in _closed_gaps(inside):
        if length <= max_samples:
            gaps[start : start + length] = True
    return gaps


def _value(patient: Patient, name: str) -> int:
    return patient.label_value(name)


@dataclass(frozen=True)
class BodyMeasure:
    width_mm: float
    depth_mm: float
    height_anterior_mm: float
    height_posterior_mm: float
    height_center_mm: float

    @property
    def height_mm(self) -> float:
        """Mean of the anterior and posterior wall heights."""
        return 0.5 * (self.height_anterior_mm + self.height_posterior_mm)


def body_dimensions(patient: Patient, level: str) -> BodyMeasure:
    """Width, depth and heights of vertebral body ``level``."""
    f = vertebra_frame(patient, level)
    body = {_value(patient, f"{level}_body")}
    half_h = 0.5 * float(
        np.linalg.norm(
            patient.landmark(f"{level}_superior_endplate_center")
            - patient.landmark(f"{level}_inferior_endplate_center")
        )
    )
    depths = [chord_mm(patient, f.point(0, 0, w), f.v, 35, body) for w in (half_h - 3, 3 - half_h)]
    depth = float(np.mean(depths))
    # the mean width through the centre: outermost body voxels along each left–right line
    widths = np.array(
        [
            _extent_mm(patient, f.point(0, 0, w), f.u, 40, body)
            for w in np.arange(-half_h - 4.0, half_h + 4.0 + 1e-9, 1.0)
        ]
    )
    width = mean_body_width_mm(widths)
    walls = [
        float(
            np.median(
                [
                    chord_mm(patient, f.point(0, v + dv, 0), f.w, 25, body, BODY_CHANNEL_MM)
                    for dv in HEIGHT_BAND_MM
                ]
            )
        )
        for v in (-depth / 2 + 3.0, depth / 2 - 3.0)
    ]
    centre = chord_mm(patient, f.point(0, 0, 0), f.w, 25, body, BODY_CHANNEL_MM)
    return BodyMeasure(width, depth, walls[0], walls[1], centre)


@dataclass(frozen=True)
class PedicleMeasure:
    """A pedicle's isthmus (Zindrick et al. 1987): transverse width, height, axis angle (mm, deg).

    ``isthmus_lps`` is the midpoint of the isthmus chord, ``axis_offset_mm`` its distance along the
    pedicle axis from the ``{level}_pedicle_center_{side}`` landmark (posterior positive).
    """

    width_mm: float
    height_mm: float
    axis_angle_deg: float
    isthmus_lps: tuple[float, float, float] | None = None
    axis_offset_mm: float = 0.0


def _run_around(inside: NDArray[np.bool_], centre: int) -> tuple[int, int]:
    """First and last sample of the run of True samples containing ``centre`` (True there)."""
    lo = centre
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    hi = centre
    while hi < len(inside) - 1 and inside[hi + 1]:
        hi += 1
    return lo, hi


def _isthmus_chord(
    inside: NDArray[np.bool_], body: NDArray[np.bool_], centre: int
) -> tuple[int, int] | None:
    """The bone run through ``centre`` if it is a chord across the pedicle's corridor: bone at
    the probe, the canal medially (at least PEDICLE_CANAL_GAP_MM of no bone before the run) and
    soft tissue laterally (at least PEDICLE_SOFT_GAP_MM), leaving through the pedicle's lateral
    wall, not the body's (a chord cutting the body's posterolateral corner in front of the
    pedicle); samples run medial → lateral."""
    if not inside[centre]:
        return None
    lo, hi = _run_around(inside, centre)
    if body[hi]:
        return None
    canal = int(round(PEDICLE_CANAL_GAP_MM / STEP_MM))
    soft = int(round(PEDICLE_SOFT_GAP_MM / STEP_MM))
    if lo - canal < 0 or hi + soft >= len(inside):
        return None
    if inside[lo - canal : lo].any() or inside[hi + 1 : hi + 1 + soft].any():
        return None
    return lo, hi


def _corridor_around(valid: NDArray[np.bool_], centre: int) -> tuple[int, int]:
    """Slice bounds of the run of True in ``valid`` holding the True sample nearest ``centre``
    ((0, 0) when there is none)."""
    index = np.flatnonzero(valid)
    if index.size == 0:
        return 0, 0
    start = int(index[np.argmin(np.abs(index - centre))])
    lo, hi = _run_around(valid, start)
    return lo, hi + 1


def pedicle_dimensions(patient: Patient, level: str, side: str) -> PedicleMeasure:
    """Isthmus width and height of one pedicle, on its bone as a radiologist measures them.

    Zindrick et al. (Spine 1987) measure the pedicle isthmus: the narrowest transverse width of
    the pedicle's bone in the axial plane, perpendicular to the pedicle axis, and its height. In
    the axial plane through the ``{level}_pedicle_center_{side}`` landmark, for each axis angle
    (0–45° of convergence) chords perpendicular to the axis are laid through the level's BONE
    (body, this pedicle and the posterior elements: a pedicle label may cover only part of the
    bony bridge, as the real-anatomy generator's ~4 mm slab does) at probe points
    PEDICLE_AXIS_SEARCH_MM along the axis. A chord counts only when it crosses the pedicle's
    corridor: the canal medially and soft tissue laterally (not through the body, the transverse
    process or a vein channel), and only in the unbroken run of such chords around the landmark
    (past the transverse process's root, the lamina's junction gives short grazing chords). The
    axis angle is the one whose corridor chords are narrowest in the median (one short chord at
    a steep angle cuts the body's corner, not the pedicle); the shortest chord along that axis is
    the isthmus. Height: the shortest bone chord along the vertebra's axis from the isthmus
    centre to 6 mm behind it (through the centre itself it can run down the body's posterolateral
    corner). On the real default the widths are within 0.8 mm
    of ``real_skeleton.pedicle_geometry``'s on the bone surface (mostly under: a label chord's
    ends snap to voxel faces).
    """
    f = vertebra_frame(patient, level)
    centre = patient.landmark(f"{level}_pedicle_center_{side}")
    bone = [
        _value(patient, f"{level}_body"),
        _value(patient, f"{level}_pedicle_{side}"),
        _value(patient, f"{level}_posterior_elements"),
    ]
    sign = 1.0 if side == "left" else -1.0
    offsets = np.arange(-PEDICLE_CHORD_REACH_MM, PEDICLE_CHORD_REACH_MM + STEP_MM / 2, STEP_MM)
    middle = len(offsets) // 2
    probes = np.arange(
        PEDICLE_AXIS_SEARCH_MM[0], PEDICLE_AXIS_SEARCH_MM[1] + STEP_MM / 2, 2 * STEP_MM
    )
    angles = PEDICLE_AXIS_ANGLES_DEG
    widths = np.full((len(angles), len(probes)), np.nan)
    mids = np.zeros((len(angles), len(probes), 3))
    for i, angle_deg in enumerate(angles):
        a = math.radians(float(angle_deg))
        axis = sign * math.sin(a) * f.u + math.cos(a) * f.v
        lateral = sign * math.cos(a) * f.u - math.sin(a) * f.v
        starts = centre[None, :] + probes[:, None] * axis[None, :]
        points = starts[:, None, :] + offsets[None, :, None] * lateral[None, None, :]
        labels = patient.labels_at(points.reshape(-1, 3)).reshape(len(probes), -1)
        inside = np.isin(labels, bone)
        for k in range(len(probes)):
            run = _isthmus_chord(inside[k], labels[k] == bone[0], middle)
            if run is not None:
                widths[i, k] = (run[1] - run[0] + 1) * STEP_MM
                mids[i, k] = starts[k] + 0.5 * (offsets[run[0]] + offsets[run[1]]) * lateral
    # the corridor along each axis: the unbroken run of crossing chords around the landmark (past
    # a break lie the transverse process's root, then the lamina's junction, whose thin plates
    # give short chords that are not the pedicle's)
    corridor = np.zeros_like(widths, dtype=bool)
    for i in range(len(angles)):
        lo, hi = _corridor_around(np.isfinite(widths[i]), int(np.argmin(np.abs(probes))))
        corridor[i, lo:hi] = True
    widths = np.where(corridor, widths, np.nan)
    # the pedicle's axis: the direction along which its corridor is narrowest over its length
    # (a single short chord at a steep angle cuts the body's corner, not the pedicle)
    counts = np.sum(corridor, axis=1)
    enough = counts >= PEDICLE_MIN_CORRIDOR_MM / (2 * STEP_MM)
    if not enough.any():
        return PedicleMeasure(0.0, 0.0, 0.0)
    typical = np.where(enough, np.nanmedian(np.where(enough[:, None], widths, 0.0), axis=1), np.inf)
    i = int(np.argmin(typical))
    k = int(np.nanargmin(widths[i]))
    width, mid = float(widths[i, k]), mids[i, k]
    # height: the shortest bone chord along the vertebra's axis from the isthmus back (the chord
    # at the isthmus itself can run down the body's posterolateral corner)
    height = min(
        chord_mm(patient, mid + back * f.v, f.w, 25, set(bone)) for back in PEDICLE_HEIGHT_BACK_MM
    )
    return PedicleMeasure(
        width,
        height,
        float(angles[i]),
        (float(mid[0]), float(mid[1]), float(mid[2])),
        float(probes[k]),
    )


@dataclass(frozen=True)
class CanalMeasure:
    depth_mm: float
    width_mm: float


def longest_closed_gap(inside: NDArray[np.bool_]) -> int:
    """The longest run of False samples with True samples on both sides (0 if none)."""
    return max((length for _, length in _closed_gaps(inside)), default=0)


def _canal_hole(section: NDArray[np.bool_], midline: int) -> NDArray[np.intp] | None:
    """Cells (u, v) of the largest enclosed hole of a bone section that crosses the midline
    column (a connected hole reaching both sides of it has cells in it), if it is at least
    CANAL_MIN_AREA_MM2."""
    from scipy import ndimage

    holes, _ = ndimage.label(ndimage.binary_fill_holes(section) & ~section)
    on_midline = np.unique(holes[midline])
    on_midline = on_midline[on_midline > 0]
    if not on_midline.size:
        return None
    sizes = np.bincount(holes.ravel())[on_midline]
    best = int(on_midline[np.argmax(sizes)])
    if sizes.max() * CANAL_SECTION_STEP_MM**2 < CANAL_MIN_AREA_MM2:
        return None
    return np.argwhere(holes == best)


def canal_dimensions(patient: Patient, level: str) -> CanalMeasure:
    """Canal width and depth of ``level`` from axial sections of its bone (see the module
    docstring): medians over the sections within ±8 mm of the pedicles' mid-height where the
    canal is an enclosed hole behind the body. Width 0.0 if no section closes."""
    f = vertebra_frame(patient, level)
    left = patient.landmark(f"{level}_pedicle_center_left")
    right = patient.landmark(f"{level}_pedicle_center_right")
    w_ped = float((0.5 * (left + right) - f.origin) @ f.w)
    bone = [
        _value(patient, f"{level}_{part}")
        for part in ("body", "posterior_elements", "pedicle_left", "pedicle_right")
    ]
    step = CANAL_SECTION_STEP_MM
    u = np.arange(-40.0, 40.0 + step / 2, step)
    v = np.arange(0.0, 70.0 + step / 2, step)  # from the body's centre backwards
    midline = len(u) // 2
    plane = u[:, None, None] * f.u + v[None, :, None] * f.v
    widths, depths = [], []
    for height in CANAL_SECTION_HEIGHTS_MM:
        points = (f.origin + (w_ped + height) * f.w + plane).reshape(-1, 3)
        section = np.isin(patient.labels_at(points), bone).reshape(len(u), len(v))
        hole = _canal_hole(section, midline)
        if hole is None:
            continue
        on_midline = hole[np.abs(hole[:, 0] - midline) <= 1, 1]
        widths.append(float(np.ptp(hole[:, 0]) + 1) * step)
        depths.append(float(np.ptp(on_midline) + 1) * step if on_midline.size else 0.0)
    if widths:
        return CanalMeasure(float(np.median(depths)), float(np.median(widths)))
    return CanalMeasure(_midsagittal_canal_gap_mm(patient, f, w_ped, bone), 0.0)


def _midsagittal_canal_gap_mm(patient: Patient, f: Frame, w_ped: float, bone: list[int]) -> float:
    """The canal's depth where no axial section closes its ring: walking posteriorly from the body
    centre (body, then the canal gap, then posterior elements), the longest gap closed by bone on
    both sides at the pedicles' mid-height, or the first lower height (the ray can pass over the
    lamina's upper border) where it is at least CANAL_MIN_DEPTH_MM (shallower: a vein channel
    or a label's edge at the body's back wall); ``f`` is the vertebra's frame."""
    offsets = np.arange(0.0, 80.0, STEP_MM)
    for drop in np.arange(0.0, CANAL_SEARCH_DROP_MM + STEP_MM / 2, STEP_MM):
        points = f.point(0, 0, w_ped - drop)[None, :] + offsets[:, None] * f.v[None, :]
        gap = longest_closed_gap(np.isin(patient.labels_at(points), bone))
        if gap * STEP_MM >= CANAL_MIN_DEPTH_MM:
            return gap * STEP_MM
    return 0.0


@dataclass(frozen=True)
class DiscMeasure:
    anterior_mm: float
    middle_mm: float
    posterior_mm: float
    depth_mm: float


def disc_heights(patient: Patient, upper: str, lower: str) -> DiscMeasure:
    """Disc heights along its axis at the anterior edge, centre and posterior edge."""
    f = disc_frame(patient, upper, lower)
    disc = {_value(patient, f"disc_{upper}_{lower}")}
    offsets = np.arange(-30.0, 30.0 + STEP_MM / 2, STEP_MM)
    points = f.origin[None, :] + offsets[:, None] * f.v[None, :]
    inside = np.nonzero(np.isin(patient.labels_at(points), list(disc)))[0]
    if inside.size == 0:
        return DiscMeasure(0.0, 0.0, 0.0, 0.0)
    front, back = offsets[inside.min()], offsets[inside.max()]
    heights = [
        chord_mm(patient, f.point(0, v, 0), f.w, 20, disc)
        for v in (front + 3.0, 0.5 * (front + back), back - 3.0)
    ]
    anterior, middle, posterior = heights
    return DiscMeasure(anterior, middle, posterior, float(back - front + STEP_MM))


def _voxels(
    patient: Patient,
    name: str,
    mask_extra: Callable[[NDArray[np.float64]], NDArray[np.bool_]] | None = None,
) -> NDArray[np.float64]:
    ijk = np.argwhere(patient.labels == _value(patient, name))
    points = ijk @ patient.lps_from_voxel[:3, :3].T + patient.lps_from_voxel[:3, 3]
    if mask_extra is not None:
        points = points[mask_extra(points)]
    return points


def facet_angle_deg(patient: Patient, upper: str, lower: str, side: str) -> float:
    """Angle between the facet joint plane (upper IAP ↔ lower SAP) and the sagittal plane."""
    sign = 1.0 if side == "left" else -1.0
    lower_name = f"{lower}_posterior_elements" if lower != "S1" else "sacrum"
    f = disc_frame(patient, upper, lower)

    joint = patient.landmarks.get(f"facet_{upper}_{lower}_{side}")

    def near_joint(points: NDArray[np.float64]) -> NDArray[np.bool_]:
        if joint is not None:
            near: NDArray[np.bool_] = np.linalg.norm(points - joint, axis=1) < FACET_RADIUS_MM
            return near
        rel = points - f.origin
        return (sign * points[:, 0] > 4.0) & (np.abs(rel @ f.w) < 25.0) & (rel @ f.v > 0)

    up = _voxels(patient, f"{upper}_posterior_elements", near_joint)
    low = _voxels(patient, lower_name, near_joint)
    if len(up) == 0 or len(low) == 0:
        return math.nan
    distance, index = cKDTree(up).query(low, distance_upper_bound=3.1)
    close = np.isfinite(distance)
    if close.sum() < 6:
        return math.nan
    mids = 0.5 * (low[close] + up[index[close]])
    centred = mids - mids.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    normal = vt[-1]
    nu, nv = abs(float(normal @ f.u)), abs(float(normal @ f.v))
    return math.degrees(math.atan2(nv, nu))


def root_pedicle_distance_mm(patient: Patient, level: str, side: str) -> float:
    """Smallest gap between root ``level`` and the pedicle of the same level and side."""
    root = _voxels(patient, f"root_{level}_{side}")
    pedicle = _voxels(patient, f"{level}_pedicle_{side}")
    if len(root) == 0 or len(pedicle) == 0:
        return math.nan
    distance, _ = cKDTree(pedicle).query(root)
    return float(distance.min() - float(patient.spacing_mm[0]))


def foramen_height_mm(patient: Patient, upper: str, lower: str, side: str) -> float:
    """Foraminal height: gap along the disc axis between the pedicle above and the one below."""
    f = disc_frame(patient, upper, lower)
    above = _voxels(patient, f"{upper}_pedicle_{side}")
    below = _voxels(patient, f"{lower}_pedicle_{side}") if lower != "S1" else np.empty((0, 3))
    if len(above) == 0 or len(below) == 0:
        return math.nan
    return float((above - f.origin).dot(f.w).min() - (below - f.origin).dot(f.w).max()) - float(
        patient.spacing_mm[0]
    )


def kambin_incircle_diameter_mm(patient: Patient, upper: str, lower: str, side: str) -> float:
    """Inscribed-circle diameter of Kambin's triangle (the widest cannula) from its landmarks."""
    tag = f"kambin_{upper}_{lower}_{side}"
    a, b, c = (patient.landmark(f"{tag}_{k}") for k in ("apex", "base_medial", "base_lateral"))
    sides = [np.linalg.norm(b - c), np.linalg.norm(c - a), np.linalg.norm(a - b)]
    area = 0.5 * float(np.linalg.norm(np.cross(b - a, c - a)))
    return 4 * area / float(sum(sides))


def root_disc_angle_deg(patient: Patient, upper: str, lower: str, side: str) -> float:
    """Angle between the exiting root and the disc plane inside Kambin's triangle.

    The disc plane's normal is the disc's axis (between its endplate centres) turned into the
    lower vertebra's sagittal plane: over the 7–10 mm between the two centres a sub-millimetre
    left–right offset of either rolls the axis by degrees, which read as a root steeper on one
    side and flatter on the other by as much (the default's L1-L2 on generator 5.9: 8° of roll,
    42.8° left and 61.4° right). Our spines have no coronal tilt; the sagittal one (the disc's
    wedge) is kept."""
    f = disc_frame(patient, upper, lower)
    plane_normal = f.w
    if lower != "S1":
        left = vertebra_frame(patient, lower).u
        plane_normal = plane_normal - (plane_normal @ left) * left
        plane_normal = plane_normal / np.linalg.norm(plane_normal)
    tag = f"kambin_{upper}_{lower}_{side}"
    apex, lateral = patient.landmark(f"{tag}_apex"), patient.landmark(f"{tag}_base_lateral")
    lo, hi = sorted([float((apex - f.origin) @ f.w), float((lateral - f.origin) @ f.w)])
    sign = 1.0 if side == "left" else -1.0
    u_lo = float((apex - f.origin) @ f.u) * sign

    def in_triangle_band(points: NDArray[np.float64]) -> NDArray[np.bool_]:
        rel = points - f.origin
        height = rel @ f.w
        return (height > lo + 1.0) & (height < hi - 1.0) & (sign * (rel @ f.u) > u_lo - 2.0)

    root = _voxels(patient, f"root_{upper}_{side}", in_triangle_band)
    if len(root) < 10:
        return math.nan
    # centre line: centroids of 1 mm height slabs (the ganglion bulge is symmetric about it); a
    # slab the band cuts short (under half the median count: the band's medial edge clips the
    # root where it leaves the sac) has its centroid off the line and is left out
    height = (root - f.origin) @ f.w
    bins = np.floor(height).astype(int)
    slabs, counts = np.unique(bins, return_counts=True)
    whole = slabs[counts >= ROOT_SLAB_MIN_FRACTION * np.median(counts)]
    centroids = np.array([root[bins == b].mean(axis=0) for b in whole])
    if len(centroids) < 3:
        return math.nan
    centred = centroids - centroids.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return math.degrees(math.asin(min(1.0, abs(float(vt[0] @ plane_normal)))))


@dataclass(frozen=True)
class BodyShapeMeasure:
    """Outline of a body: waist and rounded rims (mm)."""

    #: widest left–right chord near the endplates (1–5 mm inside either) / at mid height
    width_endplate_mm: float
    width_mid_mm: float
    #: midsagittal antero-posterior chord near the endplates (largest) / at mid height
    depth_endplate_mm: float
    depth_mid_mm: float
    #: body centre → anterior wall, near the endplates (largest) / at mid height
    front_endplate_mm: float
    front_mid_mm: float
    #: height of the anterior wall on its outermost 1 mm vs 6 mm inside (rim rounding shortens it)
    height_at_edge_mm: float
    height_inside_mm: float

    @property
    def waist_fraction(self) -> float:
        """Relative shrinkage of the mid-height cross-section (width × depth) against the
        outline near the endplates."""
        return 1.0 - (self.width_mid_mm * self.depth_mid_mm) / (
            self.width_endplate_mm * self.depth_endplate_mm
        )


def body_shape(patient: Patient, level: str) -> BodyShapeMeasure:
    """Waist and rim rounding of body ``level`` measured on its label (chords along u, v, w)."""
    f = vertebra_frame(patient, level)
    body = {_value(patient, f"{level}_body")}
    half_h = 0.5 * body_dimensions(patient, level).height_center_mm

    def width(w: float) -> float:
        return max(chord_mm(patient, f.point(0, v, w), f.u, 40, body) for v in range(-12, 9, 2))

    def front(w: float) -> float:
        offsets = np.arange(0.0, 30.0, STEP_MM)
        points = f.point(0, 0, w)[None, :] - offsets[:, None] * f.v[None, :]
        inside = np.isin(patient.labels_at(points), list(body))
        return float(offsets[np.nonzero(inside)[0].max()]) if inside.any() else 0.0

    near = [s * (half_h - k) for s in (1.0, -1.0) for k in (1.0, 2.0, 3.0, 4.0, 5.0)]
    front_end = max(front(w) for w in near)
    wall = front(0.0)
    return BodyShapeMeasure(
        width_endplate_mm=max(width(w) for w in near),
        width_mid_mm=width(0.0),
        depth_endplate_mm=max(chord_mm(patient, f.point(0, 0, w), f.v, 35, body) for w in near),
        depth_mid_mm=chord_mm(patient, f.point(0, 0, 0), f.v, 35, body),
        front_endplate_mm=front_end,
        front_mid_mm=wall,
        height_at_edge_mm=chord_mm(patient, f.point(0, -(front_end - 0.5), 0), f.w, 25, body),
        height_inside_mm=chord_mm(patient, f.point(0, -(wall - 6.0), 0), f.w, 25, body),
    )


def spinous_extent_mm(patient: Patient, level: str) -> tuple[float, float]:
    """(lowest, highest) LPS z of the spinous process of ``level``: its posterior-element voxels
    in the midline band (|u| < 5 mm) more than 16 mm behind the canal (past the laminae, whose
    midline junction sits ≈3–12 mm behind it), i.e. the process's shadow on an AP image."""
    f = vertebra_frame(patient, level)
    points = _voxels(patient, f"{level}_posterior_elements")
    rel = points - f.origin
    depth = body_dimensions(patient, level).depth_mm
    canal = canal_dimensions(patient, level).depth_mm
    keep = (np.abs(rel @ f.u) < 5.0) & (rel @ f.v > depth / 2 + canal + 16.0)
    z = points[keep][:, 2]
    return (float(z.min()), float(z.max())) if z.size else (math.nan, math.nan)


def spinous_gap_mm(patient: Patient, upper: str, lower: str) -> float:
    """Cranio-caudal gap on an AP projection between the spinous processes of two levels."""
    return spinous_extent_mm(patient, upper)[0] - spinous_extent_mm(patient, lower)[1]


def body_cortex_hu(patient: Patient, level: str) -> tuple[float, float]:
    """(ring apophysis HU, waist wall HU): the densest HU on the outermost 3 mm of the anterior
    wall 2 mm below the superior endplate, and at mid height."""
    f = vertebra_frame(patient, level)
    body = _value(patient, f"{level}_body")
    half_h = 0.5 * body_dimensions(patient, level).height_center_mm

    def outer_max(w: float) -> float:
        offsets = np.arange(0.0, 30.0, STEP_MM)
        points = f.point(0, 0, w)[None, :] - offsets[:, None] * f.v[None, :]
        inside = patient.labels_at(points) == body
        if not inside.any():
            return math.nan
        last = int(np.nonzero(inside)[0].max())
        window = slice(max(0, last - int(3.0 / STEP_MM)), last + 1)
        return float(patient.hu_at(points[window]).max())

    return outer_max(half_h - 2.0), outer_max(0.0)


def measure_all(patient: Patient) -> dict[str, dict[str, float]]:
    """Every measurement per level / disc / side (for ``fluorosim phantom show`` and tests)."""
    table: dict[str, dict[str, float]] = {}
    for level in LUMBAR_LEVELS:
        body = body_dimensions(patient, level)
        canal = canal_dimensions(patient, level)
        row = {f"body_{k}": v for k, v in asdict(body).items()}
        row["body_height_mm"] = body.height_mm
        row.update({f"canal_{k}": v for k, v in asdict(canal).items()})
        for side in ("left", "right"):
            ped = pedicle_dimensions(patient, level, side)
            row[f"pedicle_width_{side}_mm"] = ped.width_mm
            row[f"pedicle_height_{side}_mm"] = ped.height_mm
        table[level] = row
    for upper, lower in DISC_LEVELS:
        disc = disc_heights(patient, upper, lower)
        row = {f"disc_{k}": v for k, v in asdict(disc).items()}
        for side in ("left", "right"):
            row[f"facet_angle_{side}_deg"] = facet_angle_deg(patient, upper, lower, side)
            row[f"root_pedicle_{side}_mm"] = root_pedicle_distance_mm(patient, upper, side)
            row[f"kambin_incircle_diameter_{side}_mm"] = kambin_incircle_diameter_mm(
                patient, upper, lower, side
            )
            row[f"root_disc_angle_{side}_deg"] = root_disc_angle_deg(patient, upper, lower, side)
            row[f"foramen_height_{side}_mm"] = foramen_height_mm(patient, upper, lower, side)
        table[f"{upper}_{lower}"] = row
    return table
