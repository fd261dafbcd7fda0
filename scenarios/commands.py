"""Typed commands a session accepts, and their JSON form (recording, scripted attempts).

Every command the GUI, a script or a replay gives goes through :meth:`Session.command`; the same
objects are written to the attempt file with :func:`command_to_json` and read back with
:func:`command_from_json`, so a replay issues exactly the commands of the original attempt.
Positions LPS mm, directions unit vectors handle → tip, roll about the shaft in degrees (an
``instrument`` action without ``roll_deg`` means 0), joints in the C-arm's own units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fluorosim.models.pose import ToolPose


class CommandError(ValueError):
    """A command that cannot be understood (a message naming the field and what was expected)."""


@dataclass(frozen=True)
class MoveCArm:
    """Move C-arm joints (a partial mapping joint → value) or go to a named view."""

    joints: dict[str, float] | None = None
    view: str | None = None


@dataclass(frozen=True)
class Pedal:
    """Fluoroscopy pedal pressed (pulsed frames while on) or released."""

    on: bool


@dataclass(frozen=True)
class Shot:
    """One single-shot exposure."""


@dataclass(frozen=True)
class InstrumentPose:
    """Where the named instrument is now: tip LPS mm, unit direction handle → tip, roll about the
    shaft in degrees (models.pose; absent from older recordings and scripts, which mean 0)."""

    instrument: str
    tip_lps_mm: tuple[float, float, float]
    direction_lps: tuple[float, float, float]
    roll_deg: float = 0.0

    @property
    def pose(self) -> ToolPose:
        """The pose as the one pose type (models.pose)."""
        return ToolPose(np.array(self.tip_lps_mm), np.array(self.direction_lps), self.roll_deg)


@dataclass(frozen=True)
class Advance:
    """Advance the current instrument along its axis (negative = withdraw), mm."""

    distance_mm: float


@dataclass(frozen=True)
class Aim:
    """Turn the current instrument about its tip to a new direction."""

    direction_lps: tuple[float, float, float]


@dataclass(frozen=True)
class SelectInstrument:
    """Pick up an instrument of the kit (a later step's instrument moves to that step)."""

    name: str


@dataclass(frozen=True)
class PlaceImplant:
    """Place an implant over the current trajectory (ends the step that asks for it)."""

    name: str


#: Fluoroscopy modes of the C-arm panel (the pedal's beam); single shots are the Shot command.
FLUORO_MODES = ("continuous", "pulsed", "low_dose")
#: Frame rate of continuous fluoroscopy (frames per second on the monitor).
CONTINUOUS_FRAME_RATE = 25.0


@dataclass(frozen=True)
class Technique:
    """The C-arm technique set on the panel: fluoroscopy mode and pulse rate, magnification level
    (0 = the full field, 1 and 2 = the model's magnification modes), and collimation as fractions
    of the field (iris diameter; shutter opening along the detector columns)."""

    fluoro_mode: str = "pulsed"
    pulse_rate_pps: float = 7.5
    magnification: int = 0
    iris_fraction: float = 1.0
    shutter_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.fluoro_mode not in FLUORO_MODES:
            raise CommandError(
                f"technique.fluoro_mode: expected one of {FLUORO_MODES}, got {self.fluoro_mode!r}"
            )
        if not 0.5 <= float(self.pulse_rate_pps) <= 30.0:
            raise CommandError(
                f"technique.pulse_rate_pps: expected 0.5–30 pps, got {self.pulse_rate_pps!r}"
            )
        if self.magnification not in (0, 1, 2):
            raise CommandError(
                f"technique.magnification: expected 0, 1 or 2, got {self.magnification!r}"
            )
        for name in ("iris_fraction", "shutter_fraction"):
            value = getattr(self, name)
            if not 0.2 <= float(value) <= 1.0:
                raise CommandError(
                    f"technique.{name}: expected a fraction 0.2–1 of the field, got {value!r}"
                )

    @property
    def frame_rate_pps(self) -> float:
        """Frames per second while the pedal is down."""
        return (
            CONTINUOUS_FRAME_RATE
            if self.fluoro_mode == "continuous"
            else float(self.pulse_rate_pps)
        )


@dataclass(frozen=True)
class NextStep:
    """Declare the current step done."""


@dataclass(frozen=True)
class Finish:
    """End the attempt and score it."""


Command = (
    MoveCArm
    | Pedal
    | Shot
    | InstrumentPose
    | Advance
    | Aim
    | SelectInstrument
    | PlaceImplant
    | NextStep
    | Finish
    | Technique
)


def _vector(value: Any, field: str) -> tuple[float, float, float]:
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise CommandError(f"{field}: expected three numbers, got {value!r}") from None
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise CommandError(f"{field}: expected three finite numbers, got {value!r}")
    return (float(array[0]), float(array[1]), float(array[2]))


def _unit(value: Any, field: str) -> tuple[float, float, float]:
    vector = np.asarray(_vector(value, field))
    norm = float(np.linalg.norm(vector))
    if norm < 1e-9:
        raise CommandError(f"{field}: expected a non-zero direction, got {value!r}")
    unit = vector / norm
    return (float(unit[0]), float(unit[1]), float(unit[2]))


def command_to_json(command: Command) -> dict[str, Any]:
    """The JSON object of a command (the scripted-attempt action syntax)."""
    if isinstance(command, MoveCArm):
        return {"carm": {"view": command.view} if command.view else dict(command.joints or {})}
    if isinstance(command, Pedal):
        return {"pedal": "on" if command.on else "off"}
    if isinstance(command, Shot):
        return {"shot": 1}
    if isinstance(command, InstrumentPose):
        return {
            "instrument": command.instrument,
            "tip_mm": list(command.tip_lps_mm),
            "direction": list(command.direction_lps),
            "roll_deg": command.roll_deg,
        }
    if isinstance(command, Advance):
        return {"advance_mm": command.distance_mm}
    if isinstance(command, Aim):
        return {"aim": list(command.direction_lps)}
    if isinstance(command, SelectInstrument):
        return {"select": command.name}
    if isinstance(command, PlaceImplant):
        return {"place_implant": command.name}
    if isinstance(command, NextStep):
        return {"next_step": True}
    if isinstance(command, Finish):
        return {"finish": True}
    if isinstance(command, Technique):
        return {
            "technique": {
                "fluoro_mode": command.fluoro_mode,
                "pulse_rate_pps": command.pulse_rate_pps,
                "magnification": command.magnification,
                "iris_fraction": command.iris_fraction,
                "shutter_fraction": command.shutter_fraction,
            }
        }
    raise CommandError(f"not a command: {command!r}")


def command_from_json(action: Any, where: str = "action") -> Command:
    """Parse one action object; CommandError naming ``where`` and the field on bad input."""
    if not isinstance(action, dict):
        raise CommandError(f"{where}: expected an object with one action, got {action!r}")
    keys = set(action) - {"t_s"}
    if "instrument" in keys:
        name = action["instrument"]
        if not isinstance(name, str) or not name:
            raise CommandError(f"{where}.instrument: expected an instrument name, got {name!r}")
        if "tip_mm" not in action or "direction" not in action:
            raise CommandError(f"{where}: an instrument action needs 'tip_mm' and 'direction'")
        roll = action.get("roll_deg", 0.0)
        if isinstance(roll, bool) or not isinstance(roll, int | float) or not math.isfinite(roll):
            raise CommandError(f"{where}.roll_deg: expected a number of degrees, got {roll!r}")
        return InstrumentPose(
            name,
            _vector(action["tip_mm"], f"{where}.tip_mm"),
            _unit(action["direction"], f"{where}.direction"),
            float(roll),
        )
    if len(keys) != 1:
        raise CommandError(
            f"{where}: expected exactly one of carm, pedal, shot, instrument, place_implant, "
            f"finish (also advance_mm, aim, select, next_step), got {sorted(keys)}"
        )
    key = keys.pop()
    value = action[key]
    if key == "carm":
        if not isinstance(value, dict) or not value:
            raise CommandError(f"{where}.carm: expected {{'view': NAME}} or {{joint: value, …}}")
        if "view" in value:
            if len(value) != 1 or not isinstance(value["view"], str):
                raise CommandError(f"{where}.carm.view: expected a view name alone, got {value!r}")
            return MoveCArm(view=value["view"])
        joints = {}
        for name, joint_value in value.items():
            if isinstance(joint_value, bool) or not isinstance(joint_value, int | float):
                raise CommandError(f"{where}.carm.{name}: expected a number, got {joint_value!r}")
            joints[str(name)] = float(joint_value)
        return MoveCArm(joints=joints)
    if key == "pedal":
        if value not in ("on", "off"):
            raise CommandError(f"{where}.pedal: expected 'on' or 'off', got {value!r}")
        return Pedal(value == "on")
    if key == "shot":
        return Shot()
    if key == "place_implant":
        if not isinstance(value, str) or not value:
            raise CommandError(f"{where}.place_implant: expected an implant name, got {value!r}")
        return PlaceImplant(value)
    if key == "finish":
        return Finish()
    if key == "next_step":
        return NextStep()
    if key == "select":
        if not isinstance(value, str) or not value:
            raise CommandError(f"{where}.select: expected an instrument name, got {value!r}")
        return SelectInstrument(value)
    if key == "advance_mm":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CommandError(f"{where}.advance_mm: expected a number (mm), got {value!r}")
        return Advance(float(value))
    if key == "aim":
        return Aim(_unit(value, f"{where}.aim"))
    if key == "technique":
        if not isinstance(value, dict):
            raise CommandError(f"{where}.technique: expected an object, got {value!r}")
        known = {
            "fluoro_mode",
            "pulse_rate_pps",
            "magnification",
            "iris_fraction",
            "shutter_fraction",
        }
        unknown = sorted(set(value) - known)
        if unknown:
            raise CommandError(
                f"{where}.technique: unknown field(s) {unknown}; expected {sorted(known)}"
            )
        try:
            return Technique(**value)
        except (TypeError, ValueError) as error:
            raise CommandError(f"{where}.{error}") from None
    raise CommandError(
        f"{where}: unknown action {key!r} (expected carm, pedal, shot, instrument, "
        "place_implant, finish, advance_mm, aim, select, next_step, technique)"
    )
