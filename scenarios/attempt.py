"""What an attempt consists of: tool poses, shots, implants, step changes, with times.

The session fills an :class:`AttemptLog` as the attempt runs; scoring reads only this log (plus the
scenario and the patient), so a replayed attempt that rebuilds the same log gets the same score.
All positions are LPS mm, directions unit vectors handle → tip, times ``t_s`` since the start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.pose import ToolPose


@dataclass(frozen=True)
class PoseSample:
    """One instrument pose during the attempt."""

    t_s: float
    instrument: str
    tip_lps_mm: NDArray[np.float64]
    direction_lps: NDArray[np.float64]
    step_id: str
    roll_deg: float = 0.0

    @property
    def pose(self) -> ToolPose:
        """Tip, direction and roll as the one pose type (models.pose)."""
        return ToolPose(self.tip_lps_mm, self.direction_lps, self.roll_deg)


@dataclass(frozen=True)
class ShotRecord:
    """One exposure: a single shot or one pedal press (which may hold several pulsed frames)."""

    index: int  # 1-based, in order
    t_s: float
    joints: dict[str, float]
    view: str | None  # the named view the C-arm was sent to, if the joints still match it
    mode: str  # "single" | "pulsed"
    step_id: str
    frames: int = 1
    beam_on_s: float = 0.0
    kap_gycm2: float = 0.0
    air_kerma_mgy: float = 0.0
    image_ids: tuple[str, ...] = ()
    hand_in_beam: bool = False
    tool: PoseSample | None = None  # the instrument pose when the beam went on


@dataclass(frozen=True)
class ImplantRecord:
    """An implant placed over the current trajectory."""

    name: str
    step_id: str
    t_s: float
    tip_lps_mm: NDArray[np.float64]
    direction_lps: NDArray[np.float64]
    length_mm: float
    diameter_mm: float
    roll_deg: float = 0.0  # the triangular SIJ implant's turn about its axis (models.pose)

    @property
    def pose(self) -> ToolPose:
        """Tip, direction and roll as the one pose type (models.pose)."""
        return ToolPose(self.tip_lps_mm, self.direction_lps, self.roll_deg)


@dataclass
class AttemptLog:
    """Everything scoring needs about one attempt."""

    scenario_id: str
    mode: str = "learning"
    poses: list[PoseSample] = field(default_factory=list)
    shots: list[ShotRecord] = field(default_factory=list)
    implants: list[ImplantRecord] = field(default_factory=list)
    step_changes: list[tuple[float, str]] = field(default_factory=list)  # (t_s, step id entered)
    refused: list[tuple[float, str]] = field(default_factory=list)  # commands the mode refused
    finished_t_s: float | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)

    def poses_in_step(self, step_id: str) -> list[PoseSample]:
        """Tool poses recorded while ``step_id`` was the current step."""
        return [p for p in self.poses if p.step_id == step_id]

    def shots_in_step(self, step_id: str) -> list[ShotRecord]:
        """Shots taken while ``step_id`` was the current step."""
        return [s for s in self.shots if s.step_id == step_id]

    def final_pose(self, step_id: str) -> PoseSample | None:
        """The last tool pose of a step (None when the instrument never moved in it)."""
        poses = self.poses_in_step(step_id)
        return poses[-1] if poses else None
