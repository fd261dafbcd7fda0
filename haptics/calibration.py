"""Calibration and registration of tracked instruments, and their files.

What it computes (reference/tracking.md, "Calibration and registration"):

- Pivot calibration of a tool tip: the tip is pivoted about a fixed point, so for every pose
  (R_i, t_i) = ``tracker_from_tool``: ``R_i p_tip + t_i = p_pivot``. Stacking ``[R_i  −I]
  [p_tip; p_pivot] = −t_i`` and solving by least squares (SVD) gives the tip in the tool frame and
  the pivot in the tracker frame. Refused when the system has rank < 6 (rotations about one axis
  only leave the tip undetermined along it) or the orientation spread is too small. The RMS
  residual is the calibration error; acceptance ≤ 1 mm optical, ≤ 2 mm electromagnetic.
- Paired-point registration tracker → phantom from ≥ 4 non-collinear landmarks (Arun, Huang &
  Blostein 1987 / Horn 1987, SVD with the reflection fix of Umeyama 1991); the fiducial
  registration error (FRE, RMS over the landmarks) and a target registration error (TRE) on a
  check point not used in the fit.
- Gimbal rigs: zero offsets at a reference pose and the depth scale from a known stroke.
- IMU rigs: yaw tare at a known heading, refused unless the sensor reports calib ≥ 2.

Every result is a :class:`Calibration` (from, to, ``matrix`` = ``to_from_from`` 4x4, error in mm,
date, kind, details), saved as a versioned JSON file named ``AToB.json`` and readable/writable in
the PLUS XML format (``<Transform From="StylusTip" To="Stylus" Matrix="…" Error="…" Date="…"/>``).
A bad file raises :class:`CalibrationError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.models.frames import FrameError, rigid_fit, rotation_about_axis, validate_rigid
from fluorosim.models.instruments import roll_toward_deg

SCHEMA_VERSION = 1

#: Acceptance limits of the pivot RMS residual (reference/tracking.md).
PIVOT_ACCEPT_MM = {"optical": 1.0, "em": 2.0}
#: Smallest spread of tool orientations (largest angle between two poses) for a pivot fit.
MIN_PIVOT_SPREAD_DEG = 15.0
#: Smallest ratio of the least to the largest singular value of the pivot system (rank 6 test).
MIN_PIVOT_CONDITION = 1e-3
#: Landmarks closer than this are duplicates (mm).
MIN_LANDMARK_SEPARATION_MM = 1.0
#: Landmarks whose second principal extent is below this are collinear (mm, RMS about the line).
MIN_LANDMARK_LINE_OFFSET_MM = 2.0
#: Lowest IMU calibration level (0–3, BNO055 style) at which a yaw tare is trusted.
MIN_IMU_CALIB = 2

#: Environment variable overriding where calibrations are kept.
CALIBRATION_DIR_ENV = "FLUOROSIM_CALIBRATION_DIR"

KINDS = ("pivot", "registration", "gimbal", "imu_tare", "manual", "plus")


class CalibrationError(ValueError):
    """A calibration that cannot be computed or a calibration file that cannot be read."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _date_text(now: Callable[[], datetime] | None) -> str:
    return (now or _utc_now)().isoformat(timespec="seconds")


@dataclass(frozen=True)
class Calibration:
    """One stored transform: ``matrix`` maps ``from_frame`` coordinates into ``to_frame``."""

    from_frame: str
    to_frame: str
    matrix: NDArray[np.float64]
    error_mm: float
    date: str
    kind: str = "manual"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """PLUS-style name ``AToB``."""
        return f"{self.from_frame}To{self.to_frame}"

    def accepted(self, modality: str = "optical") -> bool:
        """Pivot acceptance: RMS ≤ 1 mm optical, ≤ 2 mm EM (other kinds: always true)."""
        if self.kind != "pivot":
            return True
        if modality not in PIVOT_ACCEPT_MM:
            raise CalibrationError(f"modality must be one of {sorted(PIVOT_ACCEPT_MM)}")
        return self.error_mm <= PIVOT_ACCEPT_MM[modality]

    def to_record(self) -> dict[str, Any]:
        """The JSON record (schema_version, name, from, to, matrix, error_mm, date, kind, details)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "from": self.from_frame,
            "to": self.to_frame,
            "matrix": [[float(v) for v in row] for row in np.asarray(self.matrix)],
            "error_mm": float(self.error_mm),
            "date": self.date,
            "kind": self.kind,
            "details": _jsonable(self.details),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------------------------------------
# Pivot calibration


def pivot_calibration(
    tracker_from_tool: ArrayLike,
    tool_frame: str = "Stylus",
    tip_frame: str = "StylusTip",
    min_spread_deg: float = MIN_PIVOT_SPREAD_DEG,
    now: Callable[[], datetime] | None = None,
) -> Calibration:
    """Tip offset of a tool pivoted about a fixed point, from N poses ``tracker_from_tool`` (N,4,4).

    Returns ``Calibration(tip_frame → tool_frame)``: translation = tip in the tool frame; the
    rotation puts the tip frame's +z along the shaft (tool origin → tip), so
    ``matrix[:3, 2]`` is the direction from handle toward tip. ``error_mm`` is the RMS of the
    3-D residuals; details hold the pivot point in the tracker frame, the max residual, the
    orientation spread and the singular values.
    """
    poses = np.asarray(tracker_from_tool, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise CalibrationError(
            f"pivot calibration: expected (N,4,4) poses, got shape {poses.shape}"
        )
    finite = np.all(np.isfinite(poses.reshape(len(poses), -1)), axis=1)
    poses = poses[finite]
    if len(poses) < 3:
        raise CalibrationError(f"pivot calibration: need at least 3 valid poses, got {len(poses)}")
    rotations = poses[:, :3, :3]
    translations = poses[:, :3, 3]
    spread_deg = _orientation_spread_deg(rotations)
    n = len(poses)
    a = np.zeros((3 * n, 6))
    a[:, :3] = rotations.reshape(3 * n, 3)
    a[:, 3:] = -np.tile(np.eye(3), (n, 1))
    b = -translations.reshape(3 * n)
    singular = np.linalg.svd(a, compute_uv=False)
    rank = int(np.sum(singular > singular[0] * MIN_PIVOT_CONDITION))
    if rank < 6:
        raise CalibrationError(
            f"pivot calibration refused: the pose system has rank {rank} < 6 "
            f"(smallest/largest singular value {singular[-1] / singular[0]:.1e}); "
            "the tool was rotated about a single axis — pivot it in two directions"
        )
    if spread_deg < min_spread_deg:
        raise CalibrationError(
            f"pivot calibration refused: orientation spread {spread_deg:.1f}° is below "
            f"{min_spread_deg:.0f}°; pivot the tool further around the tip"
        )
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    tip_tool = solution[:3]
    pivot_tracker = solution[3:]
    residuals = (a @ solution - b).reshape(n, 3)
    distances = np.linalg.norm(residuals, axis=1)
    rms_mm = float(np.sqrt(np.mean(distances**2)))
    matrix = np.eye(4)
    matrix[:3, :3] = _frame_with_z_along(np.asarray(tip_tool, dtype=np.float64))
    matrix[:3, 3] = tip_tool
    return Calibration(
        tip_frame,
        tool_frame,
        matrix,
        rms_mm,
        _date_text(now),
        "pivot",
        {
            "pivot_point_tracker_mm": pivot_tracker.tolist(),
            "max_residual_mm": float(distances.max()),
            "orientation_spread_deg": spread_deg,
            "pose_count": n,
            "singular_values": singular.tolist(),
        },
    )


def _orientation_spread_deg(rotations: NDArray[np.float64]) -> float:
    """Largest rotation angle between any pose and the pose farthest from it (two sweeps)."""

    def angles_from(reference: NDArray[np.float64]) -> NDArray[np.float64]:
        relative = np.einsum("ji,njk->nik", reference, rotations)
        cos = (np.trace(relative, axis1=1, axis2=2) - 1.0) / 2.0
        angles: NDArray[np.float64] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        return angles

    first = angles_from(rotations[0])
    far = rotations[int(np.argmax(first))]
    return float(angles_from(far).max())


def _frame_with_z_along(vector: NDArray[np.float64]) -> NDArray[np.float64]:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-9:
        return np.eye(3)
    z = vector / norm
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.column_stack([x, y, z])


# ---------------------------------------------------------------------------------------------
# Paired-point registration


def _check_point_set(points: NDArray[np.float64], label: str) -> None:
    if not np.all(np.isfinite(points)):
        raise CalibrationError(f"registration refused: {label} points contain NaN or infinity")
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.fill_diagonal(distances, np.inf)
    i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
    if distances[i, j] < MIN_LANDMARK_SEPARATION_MM:
        raise CalibrationError(
            f"registration refused: {label} landmarks {i} and {j} are duplicates "
            f"({distances[i, j]:.2f} mm apart)"
        )
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    line_offset_rms = float(np.sqrt(np.sum(singular[1:] ** 2) / len(points)))
    if line_offset_rms < MIN_LANDMARK_LINE_OFFSET_MM:
        raise CalibrationError(
            f"registration refused: {label} landmarks are (nearly) collinear "
            f"(RMS distance from their line {line_offset_rms:.2f} mm < "
            f"{MIN_LANDMARK_LINE_OFFSET_MM} mm); pick landmarks spread over the phantom"
        )


def register_paired_points(
    from_points: ArrayLike,
    to_points: ArrayLike,
    from_frame: str = "Tracker",
    to_frame: str = "Phantom",
    check_point_from: ArrayLike | None = None,
    check_point_to: ArrayLike | None = None,
    now: Callable[[], datetime] | None = None,
) -> Calibration:
    """Rigid ``to_from_from`` from ≥ 4 paired landmarks; FRE as error, TRE on an optional check point."""
    src = np.asarray(from_points, dtype=np.float64)
    dst = np.asarray(to_points, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 3 or src.shape != dst.shape:
        raise CalibrationError(
            f"registration refused: need two (N,3) point sets of the same size, got "
            f"{src.shape} and {dst.shape}"
        )
    if len(src) < 4:
        raise CalibrationError(f"registration refused: need at least 4 landmarks, got {len(src)}")
    _check_point_set(src, from_frame)
    _check_point_set(dst, to_frame)
    matrix = rigid_fit(src, dst)
    mapped = src @ matrix[:3, :3].T + matrix[:3, 3]
    residuals = np.linalg.norm(mapped - dst, axis=1)
    fre_mm = float(np.sqrt(np.mean(residuals**2)))
    details: dict[str, Any] = {
        "fre_mm": fre_mm,
        "landmark_residuals_mm": residuals.tolist(),
        "landmark_count": len(src),
    }
    if check_point_from is not None and check_point_to is not None:
        check_from = np.asarray(check_point_from, dtype=np.float64).reshape(3)
        check_to = np.asarray(check_point_to, dtype=np.float64).reshape(3)
        details["tre_mm"] = float(
            np.linalg.norm(matrix[:3, :3] @ check_from + matrix[:3, 3] - check_to)
        )
    return Calibration(
        from_frame, to_frame, matrix, fre_mm, _date_text(now), "registration", details
    )


# ---------------------------------------------------------------------------------------------
# Gimbal and IMU rigs


def depth_scale_from_stroke(
    reading_start: float, reading_end: float, known_stroke_mm: float
) -> float:
    """mm per device unit from a known stroke (e.g. a 50 mm gauge block between two readings)."""
    delta = float(reading_end) - float(reading_start)
    if not math.isfinite(delta) or abs(delta) < 1e-9:
        raise CalibrationError("depth scale refused: the two stroke readings are equal")
    if not math.isfinite(known_stroke_mm) or known_stroke_mm <= 0:
        raise CalibrationError(
            f"depth scale refused: known stroke must be > 0 mm, got {known_stroke_mm}"
        )
    return float(known_stroke_mm) / delta


def gimbal_calibration(
    zero_yaw_deg: float,
    zero_pitch_deg: float,
    zero_roll_deg: float,
    zero_depth: float,
    depth_scale_mm_per_unit: float = 1.0,
    now: Callable[[], datetime] | None = None,
) -> Calibration:
    """Gimbal zero offsets at the reference pose and the depth scale (``GimbalReadingToGimbal``).

    Apply with :func:`apply_gimbal_calibration`; the matrix is the identity (the calibration is a
    per-axis offset and scale, kept in ``details``).
    """
    values = [zero_yaw_deg, zero_pitch_deg, zero_roll_deg, zero_depth, depth_scale_mm_per_unit]
    if not all(math.isfinite(float(v)) for v in values):
        raise CalibrationError("gimbal calibration refused: a zero reading is NaN or infinite")
    return Calibration(
        "GimbalReading",
        "Gimbal",
        np.eye(4),
        0.0,
        _date_text(now),
        "gimbal",
        {
            "zero_yaw_deg": float(zero_yaw_deg),
            "zero_pitch_deg": float(zero_pitch_deg),
            "zero_roll_deg": float(zero_roll_deg),
            "zero_depth": float(zero_depth),
            "depth_scale_mm_per_unit": float(depth_scale_mm_per_unit),
        },
    )


def apply_gimbal_calibration(
    calibration: Calibration, yaw_deg: float, pitch_deg: float, roll_deg: float, depth: float
) -> tuple[float, float, float, float]:
    """Calibrated (yaw_deg, pitch_deg, roll_deg, depth_mm) from a raw gimbal reading."""
    d = calibration.details
    return (
        yaw_deg - d["zero_yaw_deg"],
        pitch_deg - d["zero_pitch_deg"],
        roll_deg - d["zero_roll_deg"],
        (depth - d["zero_depth"]) * d["depth_scale_mm_per_unit"],
    )


def yaw_of_quaternion_deg(q_wxyz: ArrayLike) -> float:
    """Heading (rotation about +z, Z-Y-X Euler) of a quaternion, in degrees."""
    w, x, y, z = np.asarray(q_wxyz, dtype=np.float64).reshape(4)
    return float(np.degrees(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))))


def imu_yaw_tare(
    q_wxyz: ArrayLike,
    calib_level: int,
    known_yaw_deg: float = 0.0,
    now: Callable[[], datetime] | None = None,
) -> Calibration:
    """Yaw tare ``ImuWorldToTaredWorld``: rotation about +z making the held pose read ``known_yaw_deg``.

    Refused below calib level 2 (magnetometer not settled; steel near the sensor makes it drift).
    """
    if int(calib_level) < MIN_IMU_CALIB:
        raise CalibrationError(
            f"IMU yaw tare refused: calibration level {calib_level} < {MIN_IMU_CALIB}; "
            "move the sensor in a figure of eight away from steel until it reports ≥ 2"
        )
    q = np.asarray(q_wxyz, dtype=np.float64).reshape(4)
    if not np.all(np.isfinite(q)) or not 0.9 <= np.linalg.norm(q) <= 1.1:
        raise CalibrationError(f"IMU yaw tare refused: invalid quaternion {q.tolist()}")
    measured = yaw_of_quaternion_deg(q / np.linalg.norm(q))
    correction_deg = known_yaw_deg - measured
    matrix = np.eye(4)
    matrix[:3, :3] = rotation_about_axis([0.0, 0.0, 1.0], correction_deg)
    return Calibration(
        "ImuWorld",
        "TaredWorld",
        matrix,
        0.0,
        _date_text(now),
        "imu_tare",
        {
            "measured_yaw_deg": measured,
            "correction_deg": correction_deg,
            "calib_level": int(calib_level),
        },
    )


# ---------------------------------------------------------------------------------------------
# Applying a tool calibration


def tip_and_direction(
    tracker_from_tool: ArrayLike,
    tool_from_tip: ArrayLike | None = None,
    patient_from_tracker: ArrayLike | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Tip point (mm) and unit shaft direction (handle → tip) in the patient (or tracker) frame.

    The shaft direction in the tool frame is the tool origin → tip vector when the tip is more
    than 1 mm from the tool origin (a stylus or needle with a marker body), else the tool's +z
    axis (an EM sensor at the tip of a needle, whose z axis runs along the needle).
    """
    tool = np.asarray(tracker_from_tool, dtype=np.float64)
    tip_cal = np.eye(4) if tool_from_tip is None else np.asarray(tool_from_tip, dtype=np.float64)
    tip_tool = tip_cal[:3, 3]
    if np.linalg.norm(tip_tool) > 1.0:
        direction_tool = tip_tool / np.linalg.norm(tip_tool)
    else:
        direction_tool = np.array([0.0, 0.0, 1.0])
    outer = (
        np.eye(4)
        if patient_from_tracker is None
        else np.asarray(patient_from_tracker, dtype=np.float64)
    )
    patient_from_tool = outer @ tool
    tip = patient_from_tool[:3, :3] @ tip_tool + patient_from_tool[:3, 3]
    direction = patient_from_tool[:3, :3] @ direction_tool
    return tip, direction / np.linalg.norm(direction)


def roll_about_shaft_deg(patient_from_tool: ArrayLike, shaft_axis_tool: ArrayLike) -> float:
    """Roll (deg, models.pose) of a 6-DOF tool: where its frame's axis least parallel to the shaft
    (x for a shaft along z) points about the shaft, measured from the zero of
    :func:`models.instruments.cross_section_axes`. Turning the tool about its shaft by θ turns the
    roll by θ; which way an implant's vertex faces at a given roll is fixed by how it sits on the
    inserter."""
    rotation = np.asarray(patient_from_tool, dtype=np.float64)[:3, :3]
    shaft = np.asarray(shaft_axis_tool, dtype=np.float64).reshape(3)
    shaft = shaft / np.linalg.norm(shaft)
    reference = np.eye(3)[int(np.argmin(np.abs(shaft)))]
    return roll_toward_deg(rotation @ shaft, rotation @ (reference - (reference @ shaft) * shaft))


def tool_roll_deg(
    tracker_from_tool: ArrayLike,
    tool_from_tip: ArrayLike | None = None,
    patient_from_tracker: ArrayLike | None = None,
) -> float:
    """The roll that goes with :func:`tip_and_direction` (same shaft axis, same frames)."""
    tip_cal = np.eye(4) if tool_from_tip is None else np.asarray(tool_from_tip, dtype=np.float64)
    tip_tool = tip_cal[:3, 3]
    shaft = tip_tool if np.linalg.norm(tip_tool) > 1.0 else np.array([0.0, 0.0, 1.0])
    outer = (
        np.eye(4)
        if patient_from_tracker is None
        else np.asarray(patient_from_tracker, dtype=np.float64)
    )
    return roll_about_shaft_deg(outer @ np.asarray(tracker_from_tool, dtype=np.float64), shaft)


# ---------------------------------------------------------------------------------------------
# Files: versioned JSON


def _field(record: dict[str, Any], key: str, where: str) -> Any:
    if key not in record:
        raise CalibrationError(f"{where}: missing field '{key}'")
    return record[key]


def calibration_from_record(record: Any, where: str = "calibration record") -> Calibration:
    """Validate a JSON record into a :class:`Calibration`; errors name ``where`` and the field."""
    if not isinstance(record, dict):
        raise CalibrationError(f"{where}: expected a JSON object, got {type(record).__name__}")
    version = _field(record, "schema_version", where)
    if version != SCHEMA_VERSION:
        raise CalibrationError(
            f"{where}: field 'schema_version' is {version!r}, this program reads {SCHEMA_VERSION}"
        )
    from_frame = _field(record, "from", where)
    to_frame = _field(record, "to", where)
    for key, value in (("from", from_frame), ("to", to_frame)):
        if not isinstance(value, str) or not value.isidentifier():
            raise CalibrationError(f"{where}: field '{key}' must be a frame name, got {value!r}")
    if "name" in record and record["name"] != f"{from_frame}To{to_frame}":
        raise CalibrationError(
            f"{where}: field 'name' is {record['name']!r} but from/to give {from_frame}To{to_frame}"
        )
    try:
        matrix = validate_rigid(
            np.asarray(_field(record, "matrix", where), dtype=np.float64), "matrix"
        )
    except (FrameError, ValueError, TypeError) as exc:
        raise CalibrationError(f"{where}: field 'matrix': {exc}") from None
    error = _field(record, "error_mm", where)
    if (
        not isinstance(error, int | float)
        or isinstance(error, bool)
        or not math.isfinite(error)
        or error < 0
    ):
        raise CalibrationError(f"{where}: field 'error_mm' must be a number ≥ 0, got {error!r}")
    date = _field(record, "date", where)
    if not isinstance(date, str):
        raise CalibrationError(f"{where}: field 'date' must be a string, got {date!r}")
    kind = record.get("kind", "manual")
    if kind not in KINDS:
        raise CalibrationError(f"{where}: field 'kind' must be one of {KINDS}, got {kind!r}")
    details = record.get("details", {})
    if not isinstance(details, dict):
        raise CalibrationError(f"{where}: field 'details' must be an object")
    return Calibration(from_frame, to_frame, matrix, float(error), date, kind, details)


def default_calibration_dir() -> Path:
    """``$FLUOROSIM_CALIBRATION_DIR``, else ``<platformdirs user data dir>/fluorosim/calibrations``."""
    override = os.environ.get(CALIBRATION_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("fluorosim")) / "calibrations"


def save_calibration(calibration: Calibration, directory: str | Path | None = None) -> Path:
    """Write ``<directory>/<AToB>.json`` (atomically: temp file then rename); returns the path.

    ``directory`` defaults to :func:`default_calibration_dir`.
    """
    folder = Path(directory) if directory is not None else default_calibration_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{calibration.name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(calibration.to_record(), indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def load_calibration(path: str | Path) -> Calibration:
    """Read one calibration JSON file; a bad file raises :class:`CalibrationError` naming it."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{file}: cannot read calibration file ({exc})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{file}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return calibration_from_record(record, str(file))


def load_calibrations(
    directory: str | Path | None = None,
) -> tuple[dict[str, Calibration], list[str]]:
    """All ``*.json`` calibrations in a folder, by name, and one message per file that was refused.

    A bad file does not stop the others from loading (at start-up the program reports it and
    carries on uncalibrated for that transform).
    """
    found: dict[str, Calibration] = {}
    problems: list[str] = []
    folder = Path(directory) if directory is not None else default_calibration_dir()
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.glob("*.json")):
        try:
            calibration = load_calibration(path)
        except CalibrationError as exc:
            problems.append(str(exc))
            continue
        found[calibration.name] = calibration
    return found, problems


# ---------------------------------------------------------------------------------------------
# Files: PLUS XML


def read_plus_calibrations(path: str | Path) -> list[Calibration]:
    """``<Transform From To Matrix Error Date/>`` elements of a PLUS configuration/results file."""
    file = Path(path)
    try:
        root = ET.parse(file).getroot()
    except (OSError, ET.ParseError) as exc:
        raise CalibrationError(f"{file}: not a readable PLUS XML file ({exc})") from None
    calibrations = []
    for index, element in enumerate(root.iter("Transform")):
        where = f"{file}: Transform #{index + 1}"
        from_frame = element.get("From")
        to_frame = element.get("To")
        if not from_frame or not to_frame:
            raise CalibrationError(f"{where}: missing attribute 'From' or 'To'")
        where = f"{file}: Transform {from_frame}To{to_frame}"
        matrix_text = element.get("Matrix")
        if matrix_text is None:
            raise CalibrationError(f"{where}: missing attribute 'Matrix'")
        try:
            values = [float(v) for v in matrix_text.split()]
        except ValueError:
            raise CalibrationError(f"{where}: attribute 'Matrix' holds a non-number") from None
        if len(values) != 16:
            raise CalibrationError(
                f"{where}: attribute 'Matrix' has {len(values)} numbers, expected 16"
            )
        matrix = np.asarray(values).reshape(4, 4)
        try:
            matrix = _orthonormalised(matrix)
            validate_rigid(matrix, "Matrix")
        except FrameError as exc:
            raise CalibrationError(f"{where}: attribute 'Matrix': {exc}") from None
        error_text = element.get("Error", "0")
        try:
            error_mm = float(error_text)
        except ValueError:
            raise CalibrationError(
                f"{where}: attribute 'Error' is not a number: {error_text!r}"
            ) from None
        calibrations.append(
            Calibration(
                from_frame,
                to_frame,
                matrix,
                error_mm,
                element.get("Date", ""),
                "plus",
                {"source": str(file), "matrix_as_stored": values},
            )
        )
    return calibrations


def _orthonormalised(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """PLUS writes rotations with ~6 significant digits: snap to the nearest rotation (SVD)."""
    result = np.array(matrix, dtype=np.float64)
    if not np.all(np.isfinite(result)):
        return result
    u, singular, vt = np.linalg.svd(result[:3, :3])
    if np.abs(singular - 1.0).max() < 1e-3:
        result[:3, :3] = u @ vt
    return result


def write_plus_calibrations(calibrations: Sequence[Calibration], path: str | Path) -> Path:
    """Write calibrations as a PLUS ``<PlusConfiguration><CoordinateDefinitions>`` file."""
    root = ET.Element("PlusConfiguration", version="1.2")
    definitions = ET.SubElement(root, "CoordinateDefinitions")
    for calibration in calibrations:
        rows = "\n".join(
            "\t".join(f"{v:.10g}" for v in row) for row in np.asarray(calibration.matrix)
        )
        ET.SubElement(
            definitions,
            "Transform",
            From=calibration.from_frame,
            To=calibration.to_frame,
            Matrix=rows,
            Error=f"{calibration.error_mm:.6g}",
            Date=calibration.date,
        )
    ET.indent(root)
    file = Path(path)
    file.write_text(ET.tostring(root, encoding="unicode") + "\n", encoding="utf-8")
    return file
