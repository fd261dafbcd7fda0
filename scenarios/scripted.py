"""Scripted attempts: read the JSON, validate every step, and run it through a headless session.

Format (also produced by :mod:`scenarios.scripts`)::

    {"scenario": "sij-lateral", "patient": {"seed": 0}, "mode": "learning",
     "steps": [{"t_s": 0.0, "carm": {"view": "true_lateral_sacrum"}},
               {"t_s": 1.0, "carm": {"orbital_deg": 90.0, "angular_deg": -5.0}},
               {"t_s": 2.0, "pedal": "on"}, {"t_s": 2.5, "pedal": "off"}, {"t_s": 3.0, "shot": 1},
               {"t_s": 4.0, "instrument": "guide_pin", "tip_mm": [x, y, z],
                "direction": [dx, dy, dz]},
               {"t_s": 9.0, "place_implant": "sij_implant"}, {"t_s": 10.0, "finish": true}]}

``t_s`` must not decrease. Coordinates are the LPS patient frame of ``fluorosim phantom export``
(mm); directions point from the handle toward the tip. An ``instrument`` step may add
``"roll_deg"`` (the turn about the shaft, models.pose; absent = 0), which orients the triangular
SIJ implant placed from it. ``mode`` is optional (learning).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluorosim.scenarios import commands as cmd

if TYPE_CHECKING:
    from fluorosim.scenarios.scoring.report import Report
    from fluorosim.scenarios.session import Session


class ScriptFormatError(ValueError):
    """A scripted attempt that cannot be run; the message names the file, step and field."""


@dataclass(frozen=True)
class Script:
    """A validated scripted attempt."""

    scenario: str
    patient: dict[str, Any]
    mode: str
    actions: list[tuple[float, cmd.Command]]


def parse_script(data: Any, source: str = "script") -> Script:
    """Validate a scripted attempt (already parsed JSON)."""
    if not isinstance(data, dict):
        raise ScriptFormatError(f"{source}: expected a JSON object with scenario, patient, steps")
    scenario = data.get("scenario")
    if not isinstance(scenario, str) or not scenario:
        raise ScriptFormatError(f"{source}: scenario: expected a scenario id, got {scenario!r}")
    patient = data.get("patient", {})
    if not isinstance(patient, dict):
        raise ScriptFormatError(
            f"{source}: patient: expected an object of parameters, got {patient!r}"
        )
    mode = data.get("mode", "learning")
    if mode not in ("learning", "exam"):
        raise ScriptFormatError(f"{source}: mode: expected 'learning' or 'exam', got {mode!r}")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ScriptFormatError(f"{source}: steps: expected a non-empty list of actions")
    actions: list[tuple[float, cmd.Command]] = []
    previous = 0.0
    for index, step in enumerate(steps):
        where = f"{source}: steps[{index}]"
        if not isinstance(step, dict):
            raise ScriptFormatError(f"{where}: expected an object, got {step!r}")
        t_s = step.get("t_s")
        if isinstance(t_s, bool) or not isinstance(t_s, int | float) or t_s < previous:
            raise ScriptFormatError(
                f"{where}.t_s: expected a time in seconds ≥ {previous:g} (not decreasing), got {t_s!r}"
            )
        previous = float(t_s)
        try:
            actions.append((float(t_s), cmd.command_from_json(step, where)))
        except cmd.CommandError as exc:
            raise ScriptFormatError(str(exc)) from None
    return Script(scenario, patient, mode, actions)


def load_script(path: str | Path) -> Script:
    """Read and validate a scripted attempt file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScriptFormatError(
            f"{path.name}: not a text file (expected a scripted attempt in JSON "
            "or an attempt recording)"
        ) from None
    except OSError as exc:
        raise ScriptFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptFormatError(
            f"{path.name}: not valid JSON (line {exc.lineno}: {exc.msg})"
        ) from None
    return parse_script(data, path.name)


def run_actions(session: Session, actions: list[tuple[float, cmd.Command]]) -> Report:
    """Drive a session through timed commands (stepping time to each); returns the report."""
    for t_s, command in actions:
        if session.finished:
            break
        session.step(max(0.0, t_s - session.t_s))
        session.command(command)
    if not session.finished:
        session.command(cmd.Finish())
    assert session.report is not None  # Finish scores the attempt
    return session.report
