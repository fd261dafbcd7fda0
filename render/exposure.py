"""What the tube is asked to do (``Exposure``) and where the primary beam goes (``Collimation``).

``Exposure`` is one beam-on interval: kVp, tube current, the fluoroscopy mode and how long it
lasts (one displayed frame interval in fluoroscopy, the whole exposure for a single shot).
Modes: ``continuous`` (30 frames/s), ``pulsed`` (15 / 7.5 / 4 pps), ``low_dose`` (pulsed with
a reduced dose per pulse) and ``single_shot`` (one exposure, e.g. a saved spot image).

The beam is limited by the image receptor field (circle for an image intensifier, square for a
flat panel), the iris (circular) and two pairs of shutters. They are all described in the
detector plane, in mm from the detector centre along the detector axes u (columns) and v (rows):
the beam is the cone/pyramid from the focal spot to that region. ``exposed_field_mask`` and
``points_in_beam`` evaluate it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.render.geometry import ProjectionGeometry

MODES = ("continuous", "pulsed", "low_dose", "single_shot")
#: Pulse rates offered by the simulator's pulsed modes (carm.md / typical mobile C-arms).
PULSE_RATES_PPS = (15.0, 7.5, 4.0)
#: Frame rate of continuous fluoroscopy (video rate).
CONTINUOUS_FRAME_RATE_FPS = 30.0
#: Pulse rate of the low-dose mode when none is given.
DEFAULT_LOW_DOSE_PULSE_RATE_PPS = 7.5
FIELD_SHAPES = ("circle", "square")


class ExposureError(ValueError):
    """An exposure or collimation setting that makes no physical sense."""


@dataclass(frozen=True)
class Exposure:
    """One beam-on interval of the X-ray tube.

    ``ma`` is the tube current of the technique (the continuous-equivalent setting; pulsed modes
    scale the dose by the published pulsed fractions, see :mod:`render.dose`). ``duration_s`` is
    the pedal-down time this exposure covers (a displayed-frame interval, or the length of a
    single shot). ``field_area_cm2`` is the exposed field at the reference point; None lets the
    dose module compute it from the geometry and collimation.
    """

    kvp: float
    ma: float
    mode: str = "continuous"
    pulse_rate_pps: float | None = None
    duration_s: float = 1.0 / CONTINUOUS_FRAME_RATE_FPS
    field_area_cm2: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ExposureError(
                f"Exposure.mode: expected one of {', '.join(MODES)}, got {self.mode!r}"
            )
        if not (math.isfinite(self.kvp) and 40.0 <= self.kvp <= 150.0):
            raise ExposureError(f"Exposure.kvp: expected 40–150 kVp, got {self.kvp!r}")
        if not (math.isfinite(self.ma) and 0.0 < self.ma <= 1000.0):
            raise ExposureError(f"Exposure.ma: expected 0 < mA ≤ 1000, got {self.ma!r}")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0.0):
            raise ExposureError(f"Exposure.duration_s: expected > 0 s, got {self.duration_s!r}")
        if self.mode in ("pulsed", "low_dose"):
            rate = self.pulse_rate_pps
            if rate is None and self.mode == "low_dose":
                object.__setattr__(self, "pulse_rate_pps", DEFAULT_LOW_DOSE_PULSE_RATE_PPS)
            elif rate is None or not (math.isfinite(rate) and 0.5 <= rate <= 30.0):
                raise ExposureError(
                    f"Exposure.pulse_rate_pps: {self.mode} mode needs 0.5–30 pps, got {rate!r}"
                )
        elif self.pulse_rate_pps is not None:
            raise ExposureError(
                f"Exposure.pulse_rate_pps: only pulsed/low_dose modes have a pulse rate, "
                f"got {self.pulse_rate_pps!r} for {self.mode}"
            )
        area = self.field_area_cm2
        if area is not None and not (math.isfinite(area) and area > 0):
            raise ExposureError(f"Exposure.field_area_cm2: expected > 0 cm², got {area!r}")

    @property
    def frame_rate_hz(self) -> float | None:
        """Images per second produced in this mode (None for a single shot)."""
        if self.mode == "continuous":
            return CONTINUOUS_FRAME_RATE_FPS
        if self.mode == "single_shot":
            return None
        return float(self.pulse_rate_pps)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Collimation:
    """Iris and shutters, in mm in the detector plane from its centre (None = fully open).

    ``shutter_u_mm`` = (lower, upper) edge positions of the shutter pair along the detector
    columns' direction u; ``shutter_v_mm`` the same along v (rows).
    """

    iris_diameter_mm: float | None = None
    shutter_u_mm: tuple[float, float] | None = None
    shutter_v_mm: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.iris_diameter_mm is not None and not self.iris_diameter_mm > 0:
            raise ExposureError(
                f"Collimation.iris_diameter_mm: expected > 0, got {self.iris_diameter_mm!r}"
            )
        for name in ("shutter_u_mm", "shutter_v_mm"):
            value = getattr(self, name)
            if value is None:
                continue
            if not (len(value) == 2 and float(value[0]) < float(value[1])):
                raise ExposureError(f"Collimation.{name}: expected (lower, upper), got {value!r}")
            object.__setattr__(self, name, (float(value[0]), float(value[1])))


def _inside_field(
    x_mm: NDArray[np.float64],
    y_mm: NDArray[np.float64],
    collimation: Collimation,
    field_shape: str,
    field_mm: float | None,
) -> NDArray[np.bool_]:
    if field_shape not in FIELD_SHAPES:
        raise ExposureError(f"field_shape: expected circle or square, got {field_shape!r}")
    inside = np.ones(np.broadcast(x_mm, y_mm).shape, dtype=bool)
    if field_mm is not None:
        half = field_mm / 2
        if field_shape == "circle":
            inside &= x_mm**2 + y_mm**2 <= half**2
        else:
            inside &= (np.abs(x_mm) <= half) & (np.abs(y_mm) <= half)
    if collimation.iris_diameter_mm is not None:
        inside &= x_mm**2 + y_mm**2 <= (collimation.iris_diameter_mm / 2) ** 2
    if collimation.shutter_u_mm is not None:
        low, high = collimation.shutter_u_mm
        inside &= (x_mm >= low) & (x_mm <= high)
    if collimation.shutter_v_mm is not None:
        low, high = collimation.shutter_v_mm
        inside &= (y_mm >= low) & (y_mm <= high)
    return inside


def exposed_field_mask(
    geometry: ProjectionGeometry,
    collimation: Collimation | None = None,
    field_shape: str = "square",
    field_mm: float | None = None,
) -> NDArray[np.bool_]:
    """(H, W) True where the primary beam reaches the detector (receptor field ∩ iris ∩ shutters).

    It depends only on the detector grid and the settings, not on the pose: cached, read-only.
    """
    return _cached_mask(
        geometry.width_px,
        geometry.height_px,
        float(geometry.pixel_mm),
        collimation or Collimation(),
        field_shape,
        field_mm,
    )


@lru_cache(maxsize=16)
def _cached_mask(
    width_px: int,
    height_px: int,
    pixel_mm: float,
    collimation: Collimation,
    field_shape: str,
    field_mm: float | None,
) -> NDArray[np.bool_]:
    x = (np.arange(width_px) - (width_px - 1) / 2) * pixel_mm
    y = (np.arange(height_px) - (height_px - 1) / 2) * pixel_mm
    mask = _inside_field(
        x[None, :].astype(np.float64),
        y[:, None].astype(np.float64),
        collimation,
        field_shape,
        field_mm,
    )
    mask.setflags(write=False)
    return mask


def points_in_beam_mask(
    points_lps: ArrayLike,
    geometry: ProjectionGeometry,
    collimation: Collimation | None = None,
    field_shape: str = "square",
    field_mm: float | None = None,
) -> NDArray[np.bool_]:
    """(N,) True for each LPS point inside the primary beam between the focal spot and detector.

    Without a receptor field the beam fills the geometry's whole detector rectangle.
    """
    points = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3)
    depth = (points - geometry.source_lps_mm) @ geometry.detector_normal_lps
    in_depth = (depth > 0.0) & (depth < geometry.sid_mm)
    with np.errstate(divide="ignore", invalid="ignore"):
        pixel = geometry.project(points)
    x = (pixel[:, 0] - (geometry.width_px - 1) / 2) * geometry.pixel_mm
    y = (pixel[:, 1] - (geometry.height_px - 1) / 2) * geometry.pixel_mm
    half_w = geometry.width_px * geometry.pixel_mm / 2
    half_h = geometry.height_px * geometry.pixel_mm / 2
    on_detector = (np.abs(x) <= half_w) & (np.abs(y) <= half_h)
    x, y = np.nan_to_num(x, nan=1e9), np.nan_to_num(y, nan=1e9)
    return (
        in_depth
        & on_detector
        & _inside_field(x, y, collimation or Collimation(), field_shape, field_mm)
    )


def points_in_beam(
    points_lps: ArrayLike,
    geometry: ProjectionGeometry,
    collimation: Collimation | None = None,
    field_shape: str = "square",
    field_mm: float | None = None,
) -> bool:
    """True if any of the points (e.g. an instrument handle or a tracked hand) is in the beam."""
    return bool(
        np.any(points_in_beam_mask(points_lps, geometry, collimation, field_shape, field_mm))
    )
