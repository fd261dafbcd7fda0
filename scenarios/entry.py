"""Where the instrument meets the skin: a click on the monitor, the planned corridor, the start pose.

Headless geometry the GUI used to compute itself, so that tests and ``fluorosim replay`` reach it:

- :func:`raw_pixel` undoes the monitor's flips and quarter turns (continuous pixel coordinates,
  pixel ``i`` spans ``[i, i + 1)``);
- :func:`detector_point_lps` puts a raw continuous pixel position on the detector. The renderer's
  :class:`render.geometry.ProjectionGeometry` places ``detector_origin_lps_mm`` at the *centre* of
  pixel (row 0, col 0), so the centre of pixel ``i`` (continuous ``i + 0.5``) lies at ``i`` pixel
  pitches from the origin — the half pixel the GUI used to add is taken off here;
- :func:`picked_skin_entry` is the skin point under a click, on the ray source → clicked pixel;
- :func:`planned_corridor` is the first trajectory step's corridor as scoring resolves it
  (:func:`scenarios.scoring.steps.step_geometry`), continued outward to the skin;
- :func:`mouse_start_pose` and :func:`gimbal_mount` place the mouse instrument and an STP/1 gimbal
  on that corridor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.frames import POSTERIOR
from fluorosim.models.patient import Patient
from fluorosim.render.carm import MonitorOrientation
from fluorosim.render.geometry import ProjectionGeometry
from fluorosim.scenarios.scoring.steps import step_geometry
from fluorosim.scenarios.spec import Scenario

#: Half-width of the exam mode's random start aim (degrees, uniform in yaw and in pitch).
EXAM_AIM_JITTER_DEG = 12.0
#: How far outward from the planned entry the skin is looked for (mm).
SKIN_SEARCH_MM = 400.0


def raw_pixel(
    col: float, row: float, shown_shape: tuple[int, int], orientation: MonitorOrientation
) -> tuple[float, float]:
    """The raw detector position (col, row) shown at (col, row) of the oriented monitor image.

    Continuous pixel coordinates with pixel i spanning [i, i + 1); flips and quarter turns move the
    pixel (looked up exactly) and turn the offset within it (by the orientation's linear part).
    """
    height, width = shown_shape
    # a quarter turn swaps the raw image's rows and columns
    if orientation.rotate_quarter_turns % 2:
        height, width = width, height
    rows, cols = np.mgrid[0:height, 0:width]  # raw indices, shown as the monitor shows the image
    raw_rows = orientation.apply(rows)
    raw_cols = orientation.apply(cols)
    r = int(np.clip(np.floor(row), 0, raw_rows.shape[0] - 1))
    c = int(np.clip(np.floor(col), 0, raw_rows.shape[1] - 1))
    # how one shown pixel step (right, down) moves in raw pixels
    c2 = c + 1 if c + 1 < raw_rows.shape[1] else c - 1
    r2 = r + 1 if r + 1 < raw_rows.shape[0] else r - 1
    step_col = np.array([raw_cols[r, c2] - raw_cols[r, c], raw_rows[r, c2] - raw_rows[r, c]]) * (
        1 if c2 > c else -1
    )
    step_row = np.array([raw_cols[r2, c] - raw_cols[r, c], raw_rows[r2, c] - raw_rows[r, c]]) * (
        1 if r2 > r else -1
    )
    offset = (col - c - 0.5) * step_col + (row - r - 0.5) * step_row
    return float(raw_cols[r, c] + 0.5 + offset[0]), float(raw_rows[r, c] + 0.5 + offset[1])


def detector_point_lps(geometry: ProjectionGeometry, raw_col: float, raw_row: float) -> NDArray:
    """The detector point (LPS mm) at a raw continuous pixel position (pixel i spans [i, i + 1)).

    ``detector_origin_lps_mm`` is the centre of pixel (0, 0), i.e. continuous (0.5, 0.5), so the
    position is measured from there; :meth:`ProjectionGeometry.project` returns the same centre-based
    coordinates, so ``project(p) + 0.5`` maps back to ``p``'s ray.
    """
    return (
        geometry.detector_origin_lps_mm
        + (raw_col - 0.5) * geometry.pixel_mm * geometry.detector_u_lps
        + (raw_row - 0.5) * geometry.pixel_mm * geometry.detector_v_lps
    )


def skin_point_on_ray(
    patient: Patient, source: NDArray, pixel_lps: NDArray, near: NDArray | None
) -> NDArray | None:
    """Where the ray source→pixel crosses the skin: the entry or exit nearer to ``near``."""
    direction = (pixel_lps - source) / np.linalg.norm(pixel_lps - source)
    steps = np.arange(0.0, float(np.linalg.norm(pixel_lps - source)), 1.0)
    points = source[None, :] + steps[:, None] * direction[None, :]
    inside = (patient.labels_at(points) != 0) & patient.inside(points)
    if not inside.any():
        return None
    candidates = [
        points[int(np.argmax(inside))],
        points[len(inside) - 1 - int(np.argmax(inside[::-1]))],
    ]
    if near is None:
        return candidates[0]
    return min(candidates, key=lambda p: float(np.linalg.norm(p - near)))


def picked_skin_entry(
    patient: Patient,
    geometry: ProjectionGeometry,
    shown_shape: tuple[int, int],
    orientation: MonitorOrientation,
    col: float,
    row: float,
    near: NDArray | None,
) -> NDArray | None:
    """The skin point under a click at (col, row) of the shown image (None: no body there).

    ``near``: the instrument's current entry; of the ray's two skin crossings the nearer one wins.
    """
    raw_col, raw_row = raw_pixel(col, row, shown_shape, orientation)
    pixel_lps = detector_point_lps(geometry, raw_col, raw_row)
    return skin_point_on_ray(patient, np.asarray(geometry.source_lps_mm), pixel_lps, near)


def skin_entry(patient: Patient, entry: NDArray, target: NDArray) -> NDArray:
    """Where the line target→entry, continued outward, leaves the body (first background voxel)."""
    direction = (entry - target) / np.linalg.norm(entry - target)
    distances = np.arange(0.0, SKIN_SEARCH_MM, 1.0)
    points = entry[None, :] + distances[:, None] * direction[None, :]
    outside = (patient.labels_at(points) == 0) | ~patient.inside(points)
    index = int(np.argmax(outside)) if outside.any() else len(distances) - 1
    return points[index]


@dataclass(frozen=True)
class Corridor:
    """A planned corridor: where it meets the skin and its unit direction (skin → target)."""

    skin_lps_mm: NDArray
    direction_lps: NDArray


def planned_corridor(scenario: Scenario, patient: Patient) -> Corridor | None:
    """The first trajectory step's planned corridor on this patient (None: no trajectory step).

    Entry and target are resolved as scoring resolves them (one definition of the corridor).
    """
    step = next(
        (s for s in scenario.steps if s.kind == "trajectory" and s.entry and s.target), None
    )
    if step is None:
        return None
    plan = step_geometry(patient, scenario, step)
    skin = skin_entry(patient, plan.entry_lps_mm, plan.target_lps_mm)
    return Corridor(skin, plan.direction_lps)


def aim_angles_deg(direction_lps: NDArray) -> tuple[float, float]:
    """Yaw/pitch of the mouse instrument model for a shaft direction (see haptics.mouse)."""
    d = np.asarray(direction_lps, float) / np.linalg.norm(direction_lps)
    yaw = math.degrees(math.atan2(d[0], -d[1]))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, d[2]))))
    return yaw, pitch


@dataclass(frozen=True)
class StartPose:
    """Where the mouse instrument starts: its skin entry and aim (degrees, haptics.mouse)."""

    entry_lps_mm: NDArray
    yaw_deg: float
    pitch_deg: float


def mouse_start_pose(
    scenario: Scenario, patient: Patient, mode: str, seed: int | None
) -> StartPose | None:
    """The mouse instrument on the skin over the planned corridor, aimed along it.

    In exam mode the aim is off by up to :data:`EXAM_AIM_JITTER_DEG` in yaw and pitch (seeded by
    the attempt's seed), so the trainee has to find the direction on the images.
    """
    corridor = planned_corridor(scenario, patient)
    if corridor is None:
        return None
    yaw, pitch = aim_angles_deg(corridor.direction_lps)
    if mode == "exam":
        rng = np.random.default_rng(seed if seed is not None else 0)
        yaw += float(rng.uniform(-EXAM_AIM_JITTER_DEG, EXAM_AIM_JITTER_DEG))
        pitch += float(rng.uniform(-EXAM_AIM_JITTER_DEG, EXAM_AIM_JITTER_DEG))
    return StartPose(corridor.skin_lps_mm, yaw, pitch)


def gimbal_mount(scenario: Scenario, patient: Patient) -> NDArray | None:
    """``patient_from_rig`` of an STP/1 gimbal at the planned skin entry, facing the planned
    approach (yaw 0 / pitch 0 along its horizontal part, up posterior); None: no trajectory."""
    from fluorosim.haptics.rig_models import patient_from_rig_at

    corridor = planned_corridor(scenario, patient)
    if corridor is None:
        return None
    direction = corridor.direction_lps
    horizontal = direction - np.dot(direction, POSTERIOR) * POSTERIOR
    return patient_from_rig_at(corridor.skin_lps_mm, horizontal, POSTERIOR)


def detector_corners_lps(geometry: ProjectionGeometry) -> NDArray:
    """(4, 3) LPS centres of the detector's corner pixels (first row, then around), for the 3D
    view's beam outline."""
    u = (geometry.width_px - 1) * geometry.pixel_mm * geometry.detector_u_lps
    v = (geometry.height_px - 1) * geometry.pixel_mm * geometry.detector_v_lps
    origin = geometry.detector_origin_lps_mm
    return np.array([origin, origin + u, origin + u + v, origin + v])
