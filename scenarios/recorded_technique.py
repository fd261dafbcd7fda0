"""The technique each recorded frame was exposed with, so that a replay doses as the attempt did.

The automatic dose-rate control (:mod:`render.metering`) sets the tube current from the patient at
each pose. It has changed once (fluorosim 5 meters the patient where earlier versions gave every
view the field's typical current, 2.66 mA on the 9-inch field) and may change again. A replay that
metered afresh would give an attempt recorded before such a change another dose than its stored
report: the credentialing record would disagree with itself. So the recording carries the
technique and the replay takes it from there:

- every ``shot`` event has carried its first frame's exposure (kVp, mA, mode, pulse rate,
  duration) since the attempt format's first version;
- every ``frame`` event carries its own kVp and mA since this module (a pedal run whose pose
  moves is metered frame by frame).

:meth:`RecordedTechnique.for_frame` gives a frame's own technique, else its shot's (older
recordings: every frame of a pedal run at the technique of its first), else None, and then the
session meters as it would live. A value that is not a positive finite number is not used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordedExposure:
    """Tube voltage (kVp) and current (mA) a frame was recorded with."""

    kvp: float
    ma: float


def _exposure(data: Any) -> RecordedExposure | None:
    """The (kVp, mA) of an event's data, or None when either is missing or not usable."""
    if not isinstance(data, Mapping):
        return None
    try:
        kvp, ma = float(data["kvp"]), float(data["ma"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(kvp) and math.isfinite(ma)) or kvp <= 0.0 or ma <= 0.0:
        return None
    return RecordedExposure(kvp, ma)


@dataclass(frozen=True)
class RecordedTechnique:
    """Per frame number and per shot number (both from 1, in recording order): the exposure."""

    by_frame: dict[int, RecordedExposure] = field(default_factory=dict)
    by_shot: dict[int, RecordedExposure] = field(default_factory=dict)

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> RecordedTechnique:
        """Read the technique from an attempt's event lines (``{"kind": …, "data": {…}}``)."""
        by_frame: dict[int, RecordedExposure] = {}
        by_shot: dict[int, RecordedExposure] = {}
        frame_number = 0
        for event in events:
            data = event.get("data")
            if not isinstance(data, Mapping):
                continue
            kind = event.get("kind")
            if kind == "frame":
                frame_number += 1
                exposure = _exposure(data)
                if exposure is not None:
                    by_frame[frame_number] = exposure
            elif kind == "shot":
                exposure = _exposure(data.get("exposure"))
                index = data.get("index")
                if exposure is not None and isinstance(index, int):
                    by_shot[index] = exposure
        return cls(by_frame, by_shot)

    def for_frame(self, frame_number: int, shot_number: int) -> RecordedExposure | None:
        """The recorded technique of this frame, else of its shot, else None."""
        return self.by_frame.get(frame_number) or self.by_shot.get(shot_number)

    def __bool__(self) -> bool:
        return bool(self.by_frame or self.by_shot)
