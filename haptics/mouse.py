"""Mouse-and-keyboard instrument: a needle/pin model a physician finds natural, with no Qt.

The trainee picks the skin entry point (an LPS point, e.g. clicked on the skin surface), aims the
instrument about that point (yaw/pitch in degrees, from mouse drags), advances and withdraws in fine
steps (wheel notches or keys, at most 0.5 mm a step), and rotates it about its shaft. Cortical bone
resists: without a tap or drill each advance step there moves only ``cortical_step_mm`` (0.1 mm),
felt as a slower advance; with "tap" or "drill" active the full step passes. Keys map to actions
and to buttons (foot pedal …). The GUI maps Qt events to these methods; the model is pure,
deterministic, and stamps samples with an injected clock.

Aiming angles, for a prone patient seen from above (LPS frame, models/frames.py):
    yaw_deg = 0, pitch_deg = 0  → straight down, toward anterior (−y),
    yaw_deg > 0                 → the tip tilts toward the patient's left (+x),
    pitch_deg > 0               → the tip tilts toward superior/cranial (+z).
direction = cos(p)·cos(y)·A + cos(p)·sin(y)·L + sin(p)·S, with A, L, S the unit axes.
The entry point stays fixed while aiming (the shaft pivots about the skin), so the tip moves on a
sphere of radius ``depth_mm`` about the entry point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.haptics.source import InstrumentSource, ToolSample, TrackingStatus
from fluorosim.models.tissue import CORTICAL_HU, TISSUE_CLASSES, label_tissue, tissue_at_point

#: Tissue class names ``tissue_at`` may return (models.tissue).
TISSUES = tuple(TISSUE_CLASSES)
#: Largest advance per step: finer than the ~1 mm a trainee can judge on a fluoro image.
MAX_STEP_MM = 0.5
#: Advance per step in cortical bone without tap/drill (the felt resistance).
CORTICAL_STEP_MM = 0.1
DRIVERS = (None, "tap", "drill")
MAX_AIM_DEG = 85.0

#: Default keys → actions; "button:<name>" holds a button while the key is down.
DEFAULT_KEYMAP: dict[str, str] = {
    "up": "advance",
    "w": "advance",
    "down": "withdraw",
    "s": "withdraw",
    "shift+up": "advance_fine",
    "shift+down": "withdraw_fine",
    "q": "roll_ccw",
    "e": "roll_cw",
    "t": "toggle_tap",
    "d": "toggle_drill",
    "space": "button:pedal",
    "x": "button:fluoro_lateral",
}

ANTERIOR = np.array([0.0, -1.0, 0.0])
LEFT = np.array([1.0, 0.0, 0.0])
SUPERIOR = np.array([0.0, 0.0, 1.0])


def _soft_tissue(_point: NDArray[np.float64]) -> str:
    return "soft_tissue"


class MouseInstrument:
    """The instrument model driven by mouse drags, wheel notches and keys."""

    def __init__(
        self,
        tissue_at: Callable[[NDArray[np.float64]], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        step_mm: float = MAX_STEP_MM,
        fine_step_mm: float = 0.1,
        cortical_step_mm: float = CORTICAL_STEP_MM,
        max_depth_mm: float = 150.0,
        aim_deg_per_px: float = 0.2,
        roll_step_deg: float = 5.0,
        keymap: dict[str, str] | None = None,
    ) -> None:
        for name, value in (("step_mm", step_mm), ("fine_step_mm", fine_step_mm)):
            if not 0.0 < value <= MAX_STEP_MM:
                raise ValueError(f"{name} must be in (0, {MAX_STEP_MM}] mm, got {value}")
        if not 0.0 < cortical_step_mm <= step_mm:
            raise ValueError(f"cortical_step_mm must be in (0, step_mm], got {cortical_step_mm}")
        self.tissue_at = tissue_at or _soft_tissue
        self.clock = clock
        self.step_mm = step_mm
        self.fine_step_mm = fine_step_mm
        self.cortical_step_mm = cortical_step_mm
        self.max_depth_mm = max_depth_mm
        self.aim_deg_per_px = aim_deg_per_px
        self.roll_step_deg = roll_step_deg
        self.keymap = dict(DEFAULT_KEYMAP if keymap is None else keymap)
        self.entry_lps_mm: NDArray[np.float64] | None = None
        self.yaw_deg = 0.0
        self.pitch_deg = 0.0
        self.roll_deg = 0.0
        self.depth_mm = 0.0
        self.driver: str | None = None
        self.buttons: set[str] = set()
        self.last_tissue = "air"
        self.resisted_steps = 0
        self.version = 0  # bumped on every change, so a source knows when there is news

    # -- placing and aiming ------------------------------------------------------------------

    def set_entry(self, entry_lps_mm: ArrayLike) -> None:
        """Pick the skin entry point (LPS mm); the tip returns to it (depth 0)."""
        point = np.asarray(entry_lps_mm, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(point)):
            raise ValueError(f"entry point must be finite, got {point.tolist()}")
        self.entry_lps_mm = point
        self.depth_mm = 0.0
        self.version += 1

    def set_aim(self, yaw_deg: float, pitch_deg: float) -> None:
        """Aim to absolute angles (clamped to ±85°); the entry point stays where it is."""
        self.yaw_deg = float(np.clip(yaw_deg, -MAX_AIM_DEG, MAX_AIM_DEG))
        self.pitch_deg = float(np.clip(pitch_deg, -MAX_AIM_DEG, MAX_AIM_DEG))
        self.version += 1

    def point_along(self, direction_lps: ArrayLike) -> None:
        """Aim along a shaft direction (handle → tip): the inverse of :attr:`direction_lps`."""
        d = np.asarray(direction_lps, dtype=np.float64).reshape(3)
        norm = float(np.linalg.norm(d))
        if not np.isfinite(norm) or norm < 1e-12:
            raise ValueError(f"direction must be a non-zero finite vector, got {d.tolist()}")
        d = d / norm
        yaw_deg = math.degrees(math.atan2(float(d @ LEFT), float(d @ ANTERIOR)))
        pitch_deg = math.degrees(math.asin(max(-1.0, min(1.0, float(d @ SUPERIOR)))))
        self.set_aim(yaw_deg, pitch_deg)

    def aim(self, d_yaw_deg: float, d_pitch_deg: float) -> None:
        """Tilt the instrument about the entry point by the given angles."""
        self.set_aim(self.yaw_deg + d_yaw_deg, self.pitch_deg + d_pitch_deg)

    def drag(self, dx_px: float, dy_px: float) -> None:
        """A mouse drag: right → tip toward the screen's right (yaw +), up → pitch + (cranial).

        Which patient side is screen-right depends on the view; the GUI passes signed pixels
        already mapped to patient left/cranial.
        """
        self.aim(dx_px * self.aim_deg_per_px, -dy_px * self.aim_deg_per_px)

    def rotate_shaft(self, d_roll_deg: float) -> None:
        """Turn the instrument about its own shaft (bevel/handle orientation), degrees."""
        self.roll_deg = float((self.roll_deg + d_roll_deg + 180.0) % 360.0 - 180.0)
        self.version += 1

    # -- advancing ---------------------------------------------------------------------------

    @property
    def direction_lps(self) -> NDArray[np.float64]:
        """Unit shaft direction, handle toward tip."""
        yaw, pitch = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        vector = (
            math.cos(pitch) * math.cos(yaw) * ANTERIOR
            + math.cos(pitch) * math.sin(yaw) * LEFT
            + math.sin(pitch) * SUPERIOR
        )
        return vector / np.linalg.norm(vector)

    @property
    def tip_lps_mm(self) -> NDArray[np.float64] | None:
        """The tip: entry + depth · direction (None before an entry point is picked)."""
        if self.entry_lps_mm is None:
            return None
        return self.entry_lps_mm + self.depth_mm * self.direction_lps

    def _step_forward(self, step_mm: float) -> float:
        assert self.entry_lps_mm is not None
        probe = self.entry_lps_mm + (self.depth_mm + 0.5 * step_mm) * self.direction_lps
        tissue = self.tissue_at(probe)
        if tissue not in TISSUES:
            raise ValueError(f"tissue_at returned {tissue!r}; expected one of {TISSUES}")
        self.last_tissue = tissue
        if TISSUE_CLASSES[tissue].resists_advance and self.driver is None:
            self.resisted_steps += 1
            step_mm = min(step_mm, self.cortical_step_mm)
        moved = min(step_mm, self.max_depth_mm - self.depth_mm)
        self.depth_mm += moved
        return moved

    def advance(self, steps: int = 1, fine: bool = False) -> float:
        """Advance ``steps`` steps (≤ 0.5 mm each, less in cortical bone); returns mm moved."""
        if self.entry_lps_mm is None or steps <= 0:
            return 0.0
        step = self.fine_step_mm if fine else self.step_mm
        moved = sum(self._step_forward(step) for _ in range(int(steps)))
        self.version += 1
        return moved

    def withdraw(self, steps: int = 1, fine: bool = False) -> float:
        """Pull back ``steps`` steps (no resistance); never past the entry point. Returns mm."""
        if self.entry_lps_mm is None or steps <= 0:
            return 0.0
        step = self.fine_step_mm if fine else self.step_mm
        moved = min(self.depth_mm, step * int(steps))
        self.depth_mm -= moved
        self.version += 1
        return moved

    def wheel(self, notches: int) -> float:
        """Mouse wheel: positive notches advance, negative withdraw; returns signed mm."""
        return self.advance(notches) if notches > 0 else -self.withdraw(-notches)

    def set_driver(self, driver: str | None) -> None:
        """Activate "tap" or "drill" (passes cortical bone at full step), or None."""
        if driver not in DRIVERS:
            raise ValueError(f"driver must be one of {DRIVERS}, got {driver!r}")
        self.driver = driver
        self.version += 1

    # -- buttons and keys --------------------------------------------------------------------

    def press(self, button: str) -> None:
        """Hold a button (e.g. "pedal")."""
        self.buttons.add(button)
        self.version += 1

    def release(self, button: str) -> None:
        """Let go of a button."""
        self.buttons.discard(button)
        self.version += 1

    def key(self, key: str, pressed: bool = True) -> str | None:
        """Apply a key press/release through the keymap; returns the action (None if unmapped)."""
        action = self.keymap.get(key.lower())
        if action is None:
            return None
        if action.startswith("button:"):
            (self.press if pressed else self.release)(action.split(":", 1)[1])
            return action
        if not pressed:
            return action
        if action == "advance":
            self.advance()
        elif action == "withdraw":
            self.withdraw()
        elif action == "advance_fine":
            self.advance(fine=True)
        elif action == "withdraw_fine":
            self.withdraw(fine=True)
        elif action == "roll_cw":
            self.rotate_shaft(self.roll_step_deg)
        elif action == "roll_ccw":
            self.rotate_shaft(-self.roll_step_deg)
        elif action in ("toggle_tap", "toggle_drill"):
            driver = action.removeprefix("toggle_")
            self.set_driver(None if self.driver == driver else driver)
        return action

    # -- samples -----------------------------------------------------------------------------

    def sample(self) -> ToolSample:
        """The current pose as a ToolSample in the patient frame (MISSING before an entry pick)."""
        raw: dict[str, Any] = {
            "yaw_deg": self.yaw_deg,
            "pitch_deg": self.pitch_deg,
            "roll_deg": self.roll_deg,
            "depth_mm": self.depth_mm,
            "tissue": self.last_tissue,
            "driver": self.driver,
            "resisted_steps": self.resisted_steps,
        }
        tip = self.tip_lps_mm
        if tip is None:
            return ToolSample(
                self.clock(), TrackingStatus.MISSING, None, None, frozenset(self.buttons), raw
            )
        raw["entry_lps_mm"] = self.entry_lps_mm.copy()  # type: ignore[union-attr]
        return ToolSample(
            self.clock(),
            TrackingStatus.OK,
            tip,
            self.direction_lps,
            frozenset(self.buttons),
            raw,
            self.roll_deg,
        )


class MouseSource(InstrumentSource):
    """InstrumentSource over a :class:`MouseInstrument`: poll returns a sample after each change."""

    name = "mouse and keyboard"

    def __init__(self, instrument: MouseInstrument | None = None) -> None:
        super().__init__()
        self.instrument = instrument or MouseInstrument()
        self._running = False
        self._seen_version = -1

    def start(self) -> None:
        """Begin handing out samples."""
        self._running = True
        self._seen_version = -1
        self.status = TrackingStatus.OK

    def stop(self) -> None:
        """Stop handing out samples."""
        self._running = False
        self.status = TrackingStatus.DISCONNECTED

    def poll(self) -> ToolSample | None:
        """The current sample when the model changed since the last poll, else None."""
        if not self._running or self.instrument.version == self._seen_version:
            return None
        self._seen_version = self.instrument.version
        sample = self.instrument.sample()
        self.status = sample.status
        return sample


def tissue_classifier(
    patient: Any, cortical_hu: float = CORTICAL_HU
) -> Callable[[NDArray[np.float64]], str]:
    """A ``tissue_at`` callback for a :class:`models.patient.Patient` (labels + HU).

    The tissue table's class at the point (:func:`models.tissue.tissue_at_point`): bone labels
    (vertebrae, sacrum, coccyx, ilia, femora) at ≥ ``cortical_hu`` are cortical bone, below it
    cancellous; ``disc_*`` is disc, fat is fat, outside the volume or background is air, anything
    else soft tissue.
    """

    def tissue_at(point_lps_mm: NDArray[np.float64]) -> str:
        point = np.asarray(point_lps_mm, dtype=np.float64).reshape(1, 3)
        if not bool(np.asarray(patient.inside(point)).reshape(-1)[0]):
            return "air"
        label = patient.label_name(int(np.asarray(patient.labels_at(point)).reshape(-1)[0]))
        if not label_tissue(label).bone:
            return tissue_at_point(label)
        hu = float(np.asarray(patient.hu_at(point)).reshape(-1)[0])
        return tissue_at_point(label, hu, cortical_hu)

    return tissue_at
