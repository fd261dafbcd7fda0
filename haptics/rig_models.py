"""From STP/1 messages to a tool tip and shaft direction in the LPS patient frame.

Three rig kinds, each parameterised by the calibration results (4x4 ``b_from_a`` arrays computed by
haptics/calibration.py; this module never estimates them):

``GimbalRig`` (``GIMB`` lines) — a gimbal pivoted at the skin entry point. Rig frame: origin at the
    pivot, +x the gimbal's forward direction at yaw 0 (horizontal), +z up (away from the floor),
    +y = z × x. The shaft direction (handle → tip) is
    ``d = (cos p·cos y, cos p·sin y, sin p)`` with ``y = yaw − yaw_zero``, ``p = pitch − pitch_zero``
    (yaw counter-clockwise seen from above; pitch positive with the tip above horizontal, so a
    needle entering a patient below has negative pitch). Roll turns the tool about its own shaft
    and does not move the tip (it is kept in ``raw`` for bevel display).
    ``tip = pivot + depth·d`` with ``depth = depth_scale·(depth_mm − depth_zero_mm)``; the pose in
    the patient frame is ``patient_from_rig`` applied to both.
``PoseRig`` (``POSE`` lines) — a 6-DOF tracker: ``tracker_from_tool`` from the line, the tip at
    ``tracker_from_tool @ tool_from_tip``, then ``patient_from_tracker``. Without
    ``patient_from_tracker`` the samples are ``UNCALIBRATED`` and the tracker-frame pose goes in
    ``raw``.
``ImuRig`` (``IMUQ`` lines + a depth) — orientation from the IMU quaternion (``imu_world_from_
    sensor``), yaw tared about the IMU world's vertical, shaft axis fixed in the sensor frame, and
    the tip at ``entry + depth·d`` like the gimbal. STP/1 v1 has no depth field in IMUQ: the depth
    comes from the depth field of ``GIMB`` lines the same device sends for its encoder (angles
    ignored) or from :meth:`ImuRig.set_depth_mm`. An IMU calibration level below 2 gives
    ``UNCALIBRATED`` (reference/tracking.md: "IMU rigs: require calib ≥ 2").

Device statuses map to :class:`TrackingStatus`: OK→OK, MISS→MISSING, RANGE→OUT_OF_VOLUME,
UNCAL→UNCALIBRATED, FAULT→MISSING (the device status is kept in ``raw["device_status"]``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.haptics.calibration import roll_about_shaft_deg
from fluorosim.haptics.source import ToolSample, TrackingStatus
from fluorosim.haptics.stp1 import Gimb, Imuq, Message, Pose
from fluorosim.models import frames

DEVICE_STATUS_MAP: dict[str, TrackingStatus] = {
    "OK": TrackingStatus.OK,
    "MISS": TrackingStatus.MISSING,
    "RANGE": TrackingStatus.OUT_OF_VOLUME,
    "UNCAL": TrackingStatus.UNCALIBRATED,
    "FAULT": TrackingStatus.MISSING,
}
#: Lowest IMU calibration level (0–3) accepted for a pose (reference/tracking.md).
MIN_IMU_CALIB = 2


def _matrix(value: ArrayLike | None, name: str) -> NDArray[np.float64] | None:
    return None if value is None else frames.validate_rigid(value, name)


def gimbal_direction(yaw_deg: float, pitch_deg: float) -> NDArray[np.float64]:
    """Unit shaft direction in the gimbal rig frame for yaw/pitch in degrees (see module doc)."""
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    return np.array([math.cos(p) * math.cos(y), math.cos(p) * math.sin(y), math.sin(p)])


def gimbal_angles_deg(direction_rig: ArrayLike) -> tuple[float, float]:
    """Inverse of :func:`gimbal_direction`: (yaw_deg, pitch_deg) of a rig-frame direction."""
    d = frames.unit(direction_rig, "direction")
    return math.degrees(math.atan2(d[1], d[0])), math.degrees(
        math.asin(float(np.clip(d[2], -1, 1)))
    )


def patient_from_rig_at(
    entry_lps_mm: ArrayLike,
    forward_lps: ArrayLike = frames.INFERIOR,
    up_lps: ArrayLike = frames.POSTERIOR,
) -> NDArray[np.float64]:
    """``patient_from_rig`` of a gimbal at ``entry_lps_mm`` with its axes given in LPS.

    Defaults suit a prone patient: room "up" is posterior (+y LPS), the gimbal faces the feet.
    """
    x = frames.unit(forward_lps, "forward_lps")
    z = np.asarray(up_lps, dtype=np.float64)
    z = frames.unit(z - np.dot(z, x) * x, "up_lps")
    y = np.cross(z, x)
    return frames.rigid(np.column_stack([x, y, z]), entry_lps_mm)


class RigModel(ABC):
    """Turns one STP/1 pose message into a raw (unfiltered) :class:`ToolSample`, or None."""

    #: The HELLO ``kind`` this rig reads (GIMB, POSE, IMUQ).
    kind: str = ""

    @abstractmethod
    def sample(
        self, message: Message, buttons: frozenset[str] = frozenset(), t_s: float | None = None
    ) -> ToolSample | None:
        """The sample of ``message`` at ``t_s`` (default: its device time), or None if no pose."""

    @staticmethod
    def _base(message: Pose | Gimb | Imuq) -> tuple[TrackingStatus, dict[str, Any]]:
        status = DEVICE_STATUS_MAP.get(message.status, TrackingStatus.MISSING)
        raw = {"seq": message.seq, "t_ms": message.t_ms, "device_status": message.status}
        return status, raw


class GimbalRig(RigModel):
    """A gimbal pivoted at the skin entry point (``GIMB``)."""

    kind = "GIMB"

    def __init__(
        self,
        patient_from_rig: ArrayLike | None = None,
        yaw_zero_deg: float = 0.0,
        pitch_zero_deg: float = 0.0,
        depth_zero_mm: float = 0.0,
        depth_scale: float = 1.0,
        roll_zero_deg: float = 0.0,
    ) -> None:
        self.patient_from_rig = _matrix(patient_from_rig, "patient_from_rig")
        self.roll_zero_deg = float(roll_zero_deg)
        self.yaw_zero_deg = float(yaw_zero_deg)
        self.pitch_zero_deg = float(pitch_zero_deg)
        self.depth_zero_mm = float(depth_zero_mm)
        self.depth_scale = float(depth_scale)

    def pose_rig(
        self, yaw_deg: float, pitch_deg: float, depth_mm: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(tip_mm, direction) in the rig frame."""
        d = gimbal_direction(yaw_deg - self.yaw_zero_deg, pitch_deg - self.pitch_zero_deg)
        depth = self.depth_scale * (depth_mm - self.depth_zero_mm)
        return depth * d, d

    def sample(
        self, message: Message, buttons: frozenset[str] = frozenset(), t_s: float | None = None
    ) -> ToolSample | None:
        """Sample of a ``GIMB`` line (None for other messages)."""
        if not isinstance(message, Gimb):
            return None
        status, raw = self._base(message)
        raw.update(
            yaw_deg=message.yaw_deg,
            pitch_deg=message.pitch_deg,
            roll_deg=message.roll_deg,
            depth_mm=message.depth_mm,
        )
        t_s = message.device_t_s if t_s is None else t_s
        if status != TrackingStatus.OK:
            return ToolSample(t_s, status, None, None, buttons, raw)
        tip, d = self.pose_rig(message.yaw_deg, message.pitch_deg, message.depth_mm)
        if self.patient_from_rig is None:
            raw.update(tip_rig_mm=tip, direction_rig=d)
            return ToolSample(t_s, TrackingStatus.UNCALIBRATED, None, None, buttons, raw)
        tip_lps = frames.apply_to_points(self.patient_from_rig, tip)
        d_lps = frames.apply_to_vectors(self.patient_from_rig, d)
        roll = message.roll_deg - self.roll_zero_deg
        return ToolSample(t_s, TrackingStatus.OK, tip_lps, d_lps, buttons, raw, roll)


class PoseRig(RigModel):
    """A 6-DOF tracked tool (``POSE``): tracker pose, tip offset, registration."""

    kind = "POSE"

    def __init__(
        self,
        patient_from_tracker: ArrayLike | None = None,
        tool_from_tip: ArrayLike | None = None,
        shaft_axis_tool: ArrayLike | None = None,
    ) -> None:
        """``shaft_axis_tool``: handle→tip axis in the tool frame; default: tool origin → tip."""
        self.patient_from_tracker = _matrix(patient_from_tracker, "patient_from_tracker")
        self.tool_from_tip = (
            frames.identity()
            if tool_from_tip is None
            else frames.validate_rigid(tool_from_tip, "tool_from_tip")
        )
        if shaft_axis_tool is None:
            offset = self.tool_from_tip[:3, 3]
            if np.linalg.norm(offset) < 1.0:
                raise ValueError(
                    "PoseRig needs shaft_axis_tool when the tip is less than 1 mm from the tool "
                    "origin (tool_from_tip has no usable offset to define the shaft direction)"
                )
            shaft_axis_tool = offset
        self.shaft_axis_tool = frames.unit(shaft_axis_tool, "shaft_axis_tool")

    def sample(
        self, message: Message, buttons: frozenset[str] = frozenset(), t_s: float | None = None
    ) -> ToolSample | None:
        """Sample of a ``POSE`` line (None for other messages)."""
        if not isinstance(message, Pose):
            return None
        status, raw = self._base(message)
        raw["err_mm"] = message.err_mm
        t_s = message.device_t_s if t_s is None else t_s
        if status != TrackingStatus.OK:
            return ToolSample(t_s, status, None, None, buttons, raw)
        q = (message.qw, message.qx, message.qy, message.qz)
        rotation = frames.quaternion_to_matrix(np.asarray(q) / np.linalg.norm(q))
        tracker_from_tool = frames.rigid(rotation, (message.x_mm, message.y_mm, message.z_mm))
        tip = frames.apply_to_points(tracker_from_tool @ self.tool_from_tip, np.zeros(3))
        d = frames.apply_to_vectors(tracker_from_tool, self.shaft_axis_tool)
        raw["tracker_from_tool"] = tracker_from_tool  # what pivot calibration collects
        if self.patient_from_tracker is None:
            raw.update(tip_tracker_mm=tip, direction_tracker=d)
            return ToolSample(t_s, TrackingStatus.UNCALIBRATED, None, None, buttons, raw)
        tip_lps = frames.apply_to_points(self.patient_from_tracker, tip)
        d_lps = frames.apply_to_vectors(self.patient_from_tracker, d)
        roll = roll_about_shaft_deg(
            self.patient_from_tracker @ tracker_from_tool, self.shaft_axis_tool
        )
        return ToolSample(t_s, TrackingStatus.OK, tip_lps, d_lps, buttons, raw, roll)


class ImuRig(RigModel):
    """An IMU orientation sensor on the tool plus a depth encoder (``IMUQ`` + depth)."""

    kind = "IMUQ"

    def __init__(
        self,
        patient_from_imu_world: ArrayLike | None = None,
        shaft_axis_sensor: ArrayLike = (1.0, 0.0, 0.0),
        yaw_tare_deg: float = 0.0,
        depth_zero_mm: float = 0.0,
        depth_scale: float = 1.0,
        depth_mm: float = 0.0,
    ) -> None:
        """``patient_from_imu_world``: rotation of the IMU's world (z up) and translation = entry."""
        self.patient_from_imu_world = _matrix(patient_from_imu_world, "patient_from_imu_world")
        self.shaft_axis_sensor = frames.unit(shaft_axis_sensor, "shaft_axis_sensor")
        self.yaw_tare_deg = float(yaw_tare_deg)
        self.depth_zero_mm = float(depth_zero_mm)
        self.depth_scale = float(depth_scale)
        self.depth_mm = float(depth_mm)

    def set_depth_mm(self, depth_mm: float) -> None:
        """The encoder depth reading (mm, before zero and scale)."""
        self.depth_mm = float(depth_mm)

    def sample(
        self, message: Message, buttons: frozenset[str] = frozenset(), t_s: float | None = None
    ) -> ToolSample | None:
        """Sample of an ``IMUQ`` line; a ``GIMB`` line only updates the depth (returns None)."""
        if isinstance(message, Gimb):
            if message.status == "OK":
                self.set_depth_mm(message.depth_mm)
            return None
        if not isinstance(message, Imuq):
            return None
        status, raw = self._base(message)
        raw.update(calib=message.calib, depth_mm=self.depth_mm)
        t_s = message.device_t_s if t_s is None else t_s
        if status != TrackingStatus.OK:
            return ToolSample(t_s, status, None, None, buttons, raw)
        q = np.array([message.qw, message.qx, message.qy, message.qz])
        world_from_sensor = frames.quaternion_to_matrix(q / np.linalg.norm(q))
        tare = frames.rotation_about_axis((0.0, 0.0, 1.0), -self.yaw_tare_deg)  # IMU world z is up
        d_world = tare @ world_from_sensor @ self.shaft_axis_sensor
        depth = self.depth_scale * (self.depth_mm - self.depth_zero_mm)
        tip_world = depth * d_world
        if self.patient_from_imu_world is None or message.calib < MIN_IMU_CALIB:
            raw.update(tip_imu_world_mm=tip_world, direction_imu_world=d_world)
            return ToolSample(t_s, TrackingStatus.UNCALIBRATED, None, None, buttons, raw)
        tip_lps = frames.apply_to_points(self.patient_from_imu_world, tip_world)
        d_lps = frames.apply_to_vectors(self.patient_from_imu_world, d_world)
        patient_from_sensor = self.patient_from_imu_world[:3, :3] @ tare @ world_from_sensor
        roll = roll_about_shaft_deg(patient_from_sensor, self.shaft_axis_sensor)
        return ToolSample(t_s, TrackingStatus.OK, tip_lps, d_lps, buttons, raw, roll)


def rig_for_kind(kind: str, **calibration: Any) -> RigModel:
    """The rig model for a ``HELLO`` ``kind`` (GIMB, POSE, IMUQ) with calibration keywords."""
    if kind == "GIMB":
        return GimbalRig(**calibration)
    if kind == "POSE":
        if "shaft_axis_tool" not in calibration and calibration.get("tool_from_tip") is None:
            calibration["shaft_axis_tool"] = (0.0, 0.0, 1.0)
        return PoseRig(**calibration)
    if kind == "IMUQ":
        return ImuRig(**calibration)
    raise ValueError(f"unknown STP/1 device kind {kind!r} (expected GIMB, POSE or IMUQ)")
