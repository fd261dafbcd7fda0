"""Giving a calibration from the wizard to the open instrument source, and saying truly what happened.

A pivot calibration gives ``tool_from_tip``, a registration (or paired-point fit)
``patient_from_tracker``, a gimbal calibration the gimbal's zero angles and depth. Each is saved to
the calibration directory; whether it also takes effect depends on the device:

- an STP/1 6-DOF rig is rebuilt as a :class:`~fluorosim.haptics.rig_models.PoseRig` once the tool
  tip is known (a registration alone is kept and takes effect with the pivot);
- an STP/1 gimbal takes a gimbal calibration, mounted where :func:`scenarios.entry.gimbal_mount`
  puts it;
- a tracker source (NDI, OpenIGTLink) takes the pivot and the registration as they come;
- other sources (the mouse, a replay) take none.

The outcome's message says "applied" only when the device now uses the transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fluorosim.haptics.calibration import Calibration, save_calibration

#: Calibration kinds a device can take from the wizard (the others are only saved).
APPLIED_KINDS = ("pivot", "registration", "paired_point", "gimbal")


@dataclass(frozen=True)
class CalibrationOutcome:
    """What became of a calibration: saved where, applied or not, and the message to show."""

    applied: bool
    saved_to: Path
    message: str


class DeviceCalibrations:
    """The tip offset and registration given during this run, kept across device swaps."""

    def __init__(self) -> None:
        self.tool_from_tip: NDArray[np.float64] | None = None
        self.patient_from_tracker: NDArray[np.float64] | None = None

    def apply(
        self,
        calibration: Calibration,
        source: Any,
        patient_from_gimbal: NDArray[np.float64] | None = None,
        directory: str | Path | None = None,
    ) -> CalibrationOutcome:
        """Save ``calibration`` and give it to ``source`` where the device can use it."""
        from fluorosim.haptics.rig_models import GimbalRig, PoseRig
        from fluorosim.haptics.serial_source import SerialStp1Source

        if calibration.kind == "pivot":
            self.tool_from_tip = np.asarray(calibration.matrix, dtype=np.float64)
        elif calibration.kind in ("registration", "paired_point"):
            self.patient_from_tracker = np.asarray(calibration.matrix, dtype=np.float64)
        saved = save_calibration(calibration, directory)
        reason: str | None = None
        if calibration.kind not in APPLIED_KINDS:
            reason = f"the simulator applies {', '.join(APPLIED_KINDS)} calibrations only"
        elif calibration.kind == "gimbal":
            if isinstance(source, SerialStp1Source):
                details = calibration.details
                source.rig = GimbalRig(
                    patient_from_gimbal,
                    yaw_zero_deg=float(details.get("zero_yaw_deg", 0.0)),
                    pitch_zero_deg=float(details.get("zero_pitch_deg", 0.0)),
                    roll_zero_deg=float(details.get("zero_roll_deg", 0.0)),
                    depth_zero_mm=float(details.get("zero_depth", 0.0)),
                )
            else:
                reason = "a gimbal calibration applies to an STP/1 gimbal only"
        elif isinstance(source, SerialStp1Source):
            if self.tool_from_tip is not None:
                source.rig = PoseRig(self.patient_from_tracker, self.tool_from_tip)
            else:
                reason = "it takes effect once the pivot calibration (the tool tip) is done"
        elif hasattr(source, "patient_from_tracker"):
            if self.tool_from_tip is not None:
                source.tool_from_tip = self.tool_from_tip
            if self.patient_from_tracker is not None:
                source.patient_from_tracker = self.patient_from_tracker
        else:
            name = getattr(source, "name", "this instrument source")
            reason = f"{name} takes no calibration"
        if reason is None:
            message = (
                f"{calibration.name} applied (error {calibration.error_mm:.2f} mm), "
                f"saved to {saved}"
            )
        else:
            message = f"{calibration.name} saved to {saved}, not applied: {reason}"
        return CalibrationOutcome(reason is None, saved, message)
