"""The one instrument pose: tip point (LPS mm), unit shaft direction (handle → tip) and roll.

Every layer that says where an instrument is carries a :class:`ToolPose`: a source's sample
(``haptics.source.ToolSample.pose``), a session command (``scenarios.commands.InstrumentPose``),
the attempt log (``scenarios.attempt.PoseSample.pose``, ``ImplantRecord.pose``) and the renderer's
placement (``models.instruments.InstrumentPose.pose``). ``roll_deg`` turns the instrument about its
own shaft; 0° puts the reference direction of :func:`models.instruments.cross_section_axes` (the
patient's superior direction projected into the cross-section, or anterior for a cranio-caudal
shaft) along the first cross-section axis, positive turns right-handed about the direction of the
shaft. A round instrument looks the same at every roll; the triangular SIJ implant does not.

Frame: LPS patient frame (models/frames.py), millimetres and degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.models import frames


def wrap_roll_deg(roll_deg: float) -> float:
    """``roll_deg`` wrapped into [−180, 180)."""
    return float((float(roll_deg) + 180.0) % 360.0 - 180.0)


@dataclass(frozen=True, eq=False)
class ToolPose:
    """Tip (LPS mm), unit direction handle → tip, roll about the shaft (degrees, [−180, 180))."""

    tip_lps_mm: NDArray[np.float64]
    direction_lps: NDArray[np.float64]
    roll_deg: float = 0.0

    def __post_init__(self) -> None:
        tip = np.asarray(self.tip_lps_mm, dtype=np.float64).reshape(-1)
        if tip.shape != (3,) or not np.all(np.isfinite(tip)):
            raise frames.FrameError(f"ToolPose: tip_lps_mm must be 3 finite mm, got {tip.tolist()}")
        direction = frames.unit(self.direction_lps, "ToolPose direction_lps")
        roll = float(self.roll_deg)
        if not math.isfinite(roll):
            raise frames.FrameError(f"ToolPose: roll_deg must be finite, got {self.roll_deg!r}")
        object.__setattr__(self, "tip_lps_mm", tip)
        object.__setattr__(self, "direction_lps", direction)
        object.__setattr__(self, "roll_deg", wrap_roll_deg(roll))

    def _key(self) -> tuple[tuple[float, ...], tuple[float, ...], float]:
        return (tuple(self.tip_lps_mm.tolist()), tuple(self.direction_lps.tolist()), self.roll_deg)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ToolPose):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def advanced(self, distance_mm: float) -> ToolPose:
        """The same pose moved ``distance_mm`` along the shaft (negative: withdrawn)."""
        return ToolPose(
            self.tip_lps_mm + float(distance_mm) * self.direction_lps,
            self.direction_lps,
            self.roll_deg,
        )

    def aimed(self, direction_lps: ArrayLike) -> ToolPose:
        """The same tip and roll with a new shaft direction (turned about the tip)."""
        return ToolPose(self.tip_lps_mm, np.asarray(direction_lps, np.float64), self.roll_deg)
